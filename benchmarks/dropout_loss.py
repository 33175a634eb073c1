"""Does minicnn's dropout act like PyTorch's? (issue 17's loss gap on seed003_6layer)

The same trained weights in both engines (benchmarks/torch_reference.py's translation),
the same training images: the loss in evaluation mode (no dropout) must agree to float32
rounding, and the loss in training mode (dropout on), averaged over many mask draws, must
agree within the draws' standard error. A dropout that dropped more, or scaled the kept
units otherwise, would show here as a difference of the means.

    python benchmarks/dropout_loss.py --model runs/.../model.npz --data DIR [--images 1024] [--draws 100]
"""
import argparse
import os
import sys
import time

import numpy
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch_reference  # noqa: E402  (benchmarks/, beside this file)
import minicnn  # noqa: E402
from minicnn import Tensor, no_grad  # noqa: E402
from minicnn.datasets import cifar10  # noqa: E402
from minicnn.models import load_model  # noqa: E402


def twins(path):
    """The saved minicnn model and its PyTorch translation, holding the same weights."""
    model = load_model(path)
    net, _ = torch_reference.translate(model)
    return model, torch_reference.copy_weights(model, net)


def losses(model, net, x, y, draws):
    """{engine: (evaluation-mode loss, training-mode losses, one per mask draw)}."""
    def ours(training):
        with no_grad():
            p = model(Tensor(x), training=training).data  # the model ends in a softmax
        return float(-numpy.log(p[numpy.arange(len(y)), y]).mean())

    def theirs(training):
        net.train(training)
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)))
    return {name: (fn(False), numpy.array([fn(True) for _ in range(draws)]))
            for name, fn in (("minicnn", ours), ("torch", theirs))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a saved minicnn model (model.npz) with Dropout layers")
    p.add_argument("--data", required=True, help="cifar-10-batches-py folder")
    p.add_argument("--images", type=int, default=1024, help="the first N training images")
    p.add_argument("--draws", type=int, default=100, help="mask draws per engine")
    p.add_argument("--seed", type=int, default=123)
    args = p.parse_args(argv)
    if args.images < 1 or args.draws < 2:
        p.error("--images must be at least 1 and --draws at least 2")
    torch.set_num_threads(1)
    minicnn.set_seed(args.seed)
    torch.manual_seed(args.seed)
    model, net = twins(args.model)
    (x, y), _ = cifar10.load_data(args.data, download=False)
    x = x[:args.images].astype(numpy.float32) / numpy.float32(255)
    y = y[:args.images].reshape(-1).astype(numpy.int64)
    start = time.perf_counter()
    found = losses(model, net, x, y, args.draws)
    for name, (evaluation, training) in found.items():
        print(f"{name}: evaluation-mode loss {evaluation:.6f}; training-mode loss mean {training.mean():.5f}, "
              f"sd {training.std(ddof=1):.5f}, standard error {training.std(ddof=1) / numpy.sqrt(len(training)):.5f}")
    difference = found["minicnn"][1].mean() - found["torch"][1].mean()
    error = numpy.sqrt(sum(t.var(ddof=1) / len(t) for _, t in found.values()))
    print(f"training-mode difference (minicnn - torch): {difference:+.5f} +- {error:.5f} "
          f"({args.draws} draws each on {len(y)} images, {time.perf_counter() - start:.0f} s)")
    return found


if __name__ == "__main__":
    main()
