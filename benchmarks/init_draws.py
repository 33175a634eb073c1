"""Do minicnn's initial weights start training where PyTorch's do? (issue 17's loss gap)

For each seed, the zoo model built by minicnn (``set_seed(S)``, as train_cifar.py builds
it) and the same architecture initialised by PyTorch (``torch.manual_seed(S)``, Keras's
Glorot-uniform kernels and zero biases, as torch_reference.py initialises it), both run
through the same PyTorch forward pass on the same training images in evaluation mode:
the initial loss, the spread of the logits and the norm of the whole gradient. If
minicnn's initialiser drew from another distribution (a wrong fan, a wrong limit, layers
that share their draws), these would differ between the two sets of seeds.

    python benchmarks/init_draws.py --data DIR [--model seed003_6layer] [--seeds 80] [--images 512]
"""
import argparse
import os
import sys
import time

import numpy
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import loss_gap  # noqa: E402  (benchmarks/, beside this file)
import torch_reference  # noqa: E402
import minicnn  # noqa: E402
from minicnn import zoo  # noqa: E402
from minicnn.datasets import cifar10  # noqa: E402

MEASURES = ("initial loss", "sd of the logits", "gradient norm")


def start(net, x, y):
    """(loss, sd of the logits, norm of the gradient of every parameter) of net on x (N, 32, 32, 3)
    float32 in [0, 1], y (N,) int64, in evaluation mode (no dropout draws)."""
    net.eval()
    net.zero_grad(set_to_none=True)
    logits = net(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in net.parameters()))
    return loss.item(), logits.std().item(), norm.item()


def measure(name, seeds, x, y):
    """{engine: (seeds, 3) array of start() for minicnn's and PyTorch's initial weights}."""
    found = {"minicnn": [], "torch": []}
    for seed in seeds:
        minicnn.set_seed(seed)
        model, _ = zoo.build(name)
        net, _ = torch_reference.translate(model)
        found["minicnn"].append(start(torch_reference.copy_weights(model, net), x, y))
        torch.manual_seed(seed)
        found["torch"].append(start(torch_reference.translate(model)[0], x, y))  # its own initialisers
    return {engine: numpy.array(rows) for engine, rows in found.items()}


def report(found):
    print("| measure | minicnn's init: mean, sd | PyTorch's init: mean, sd | t-test p | rank-sum p | spread p |")
    print("| --- | --- | --- | --- | --- | --- |")
    for column, what in enumerate(MEASURES):
        a, b = found["minicnn"][:, column], found["torch"][:, column]
        print(f"| {what} | {a.mean():.4f}, {a.std(ddof=1):.4f} | {b.mean():.4f}, {b.std(ddof=1):.4f} | "
              f"{loss_gap.welch(a, b)[2]:.3f} | {loss_gap.mann_whitney(a, b)[2]:.3f} | "
              f"{loss_gap.spread_test(a, b)[2]:.3f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None)
    p.add_argument("--model", choices=sorted(zoo.MODELS), default="seed003_6layer")
    p.add_argument("--seeds", type=int, default=80, help="seeds 0 .. N-1 of each engine")
    p.add_argument("--images", type=int, default=512, help="the first N training images")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.seeds < 2 or args.images < 1:
        p.error(f"--seeds must be at least 2 and --images at least 1 (got {args.seeds}, {args.images})")
    if args.threads:
        torch.set_num_threads(args.threads)
    (x, y), _ = cifar10.load_data(args.data)
    x = torch.from_numpy(x[:args.images].astype(numpy.float32) / 255)
    y = torch.from_numpy(y[:args.images, 0].astype(numpy.int64))
    began = time.perf_counter()
    found = measure(args.model, range(args.seeds), x, y)
    print(f"{args.model}, seeds 0-{args.seeds - 1} of each engine, the first {len(y)} training images "
          f"({time.perf_counter() - began:.0f} s):\n")
    report(found)
    return found


if __name__ == "__main__":
    main()
