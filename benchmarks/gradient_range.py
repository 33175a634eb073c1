"""How large the speed run's gradients are, layer by layer, and so which loss scale suits
it in mixed_float16 (examples/speedrun.py's HYP["loss_scale"]).

    python benchmarks/gradient_range.py --data DIR [--batch 1024]

One float32 training batch of the airbench94 net at its start (stem whitened, summed
label-smoothed loss, as the recipe trains). For each layer's input gradient: its largest
magnitude, its median, and the shares of its nonzero values that float16 would flush to
zero (below 6e-8) or hold only as subnormals (below 6.1e-5); then each weight's largest
gradient. A scale s overflows float16 where max * s > 65504 and underflows where it
leaves many values below 6e-8 / s.
"""
import argparse
import os
import sys

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minicnn  # noqa: E402
import speedrun  # noqa: E402
from minicnn import initializers, losses  # noqa: E402
from minicnn.autograd import Tensor  # noqa: E402
from minicnn.datasets import cifar10  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="cifar-10-batches-py folder (default: the usual places)")
    p.add_argument("--batch", type=int, default=speedrun.HYP["batch_size"])
    args = p.parse_args(argv)
    (x, y), _ = cifar10.load_data(args.data, download=False)
    x = speedrun.normalize(x[:max(args.batch, speedrun.HYP["whiten_images"])])
    labels = numpy.eye(10, dtype=numpy.float32)[y[:args.batch, 0]]
    minicnn.set_seed(0)
    model = speedrun.make_net()
    model.build((32, 32, 3), "cpu")
    model.layers[0].kernel.data[...] = initializers.patch_whitening(x[:speedrun.HYP["whiten_images"]], 2)
    loss_fn = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=speedrun.HYP["label_smoothing"],
                                             reduction="sum")
    # each layer's input made a leaf of its own, so backward leaves every layer's input gradient
    inputs, outputs, h = [], [], x[:args.batch]
    for layer in model.layers:
        inputs.append(Tensor(numpy.ascontiguousarray(h), requires_grad=True))
        outputs.append(layer(inputs[-1], training=True))
        h = outputs[-1].data
    loss = loss_fn(labels, outputs[-1])
    loss.backward()
    print(f"summed loss of a batch of {args.batch}: {float(loss.data):.1f}")
    print("layer (input gradient)        max       median    <6e-8   <6.1e-5")
    for i in range(len(model.layers) - 1, -1, -1):
        if i < len(model.layers) - 1:
            outputs[i].backward(inputs[i + 1].grad)
        size = numpy.abs(inputs[i].grad)
        nonzero = size[size > 0]
        print(f"{i:2d} {type(model.layers[i]).__name__:22s} {size.max():9.2e} {numpy.median(nonzero):9.2e} "
              f"{numpy.mean(nonzero < 6e-8):7.3f} {numpy.mean(nonzero < 6.1e-5):7.3f}")
    print("largest weight gradient: " + ", ".join(
        f"{w.name} {numpy.abs(w.grad).max():.1e}" for w in model.trainable_weights if w.grad is not None))


if __name__ == "__main__":
    main()
