"""The airbench94 recipe in PyTorch: the reference that examples/speedrun.py is measured
against, on the same CIFAR-10 copy, the same machine, in the same way.

    python benchmarks/speedrun_torch.py --device cpu|gpu [--runs N] [--data DIR]

PyTorch is an optional dependency: minicnn never imports it, only this benchmark does.
Same hyper-parameters (examples/speedrun.HYP), schedule and timing rules as our
speedrun: data on the device before the clock starts; the clock covers the whitening
set-up and training; evaluation (6-pass TTA) is timed apart. On a GPU the net runs in
float16 with float32 batch-norm, as airbench does; on the CPU in float32.
"""
import math
import os
import sys
import time

import numpy
import torch
from torch import nn
import torch.nn.functional as tF

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from minicnn.datasets import cifar10  # noqa: E402  (reading the pickles only)
from speedrun import (HYP, MEAN, STD, check_args, learning_rates, lookahead_decay, lr_factor,  # noqa: E402
                      make_parser, report, summarize, warm_up)


class BatchNorm(nn.BatchNorm2d):
    """Scale frozen at 1, shift trained; eps 1e-12; running = m * running + (1 - m) * batch."""

    def __init__(self, channels, momentum):
        super().__init__(channels, eps=1e-12, momentum=1 - momentum)
        self.weight.requires_grad = False


def conv(c_in, c_out):
    layer = nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)
    nn.init.dirac_(layer.weight.data[:c_in])  # identity on the first c_in filters
    return layer


def make_net(hyp, device):
    blocks, c_in = [], 24
    for width in hyp["widths"]:
        m = hyp["batchnorm_momentum"]
        blocks += [conv(c_in, width), nn.MaxPool2d(2), BatchNorm(width, m), nn.GELU(),
                   conv(width, width), BatchNorm(width, m), nn.GELU()]
        c_in = width
    stem = nn.Conv2d(3, 24, 2, bias=True)
    stem.bias.data.zero_()
    stem.weight.requires_grad = False
    net = nn.Sequential(stem, nn.GELU(), *blocks, nn.MaxPool2d(3), nn.Flatten(),
                        nn.Linear(c_in, 10, bias=False))
    net = net.to(device).to(memory_format=torch.channels_last)
    if device.type == "cuda":
        net = net.half()
        for module in net.modules():
            if isinstance(module, BatchNorm):
                module.float()
    return net


def whiten(stem, images, eps=5e-4):
    """Set the stem to whiten 2x2 patches of images (N, 3, H, W): eigenvectors of the patch
    covariance over sqrt(eigenvalue + eps), largest first, then their negations."""
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1)  # N, C, oh, ow, 2, 2
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).float()
    covariance = (patches.T @ patches) / len(patches)
    values, vectors = torch.linalg.eigh(covariance.double())
    values, vectors = values.flip(0), vectors.flip(1)
    filters = (vectors / torch.sqrt(values + eps)).T.reshape(12, 3, 2, 2)
    stem.weight.data[:] = torch.cat([filters, -filters]).to(stem.weight.dtype)


def batches(images, labels, hyp, epoch, generator, state):
    """airbench's loader: a random half pre-mirrored once, all mirrored on odd epochs,
    2-pixel reflect-padded random translations, a fresh order, last partial batch dropped."""
    n, size, pad = len(images), images.shape[-1], hyp["translate"]
    if "padded" not in state:
        flip = torch.rand(n, generator=generator, device=images.device) < 0.5
        flipped = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        state["padded"] = tF.pad(flipped, (pad,) * 4, mode="reflect")
    padded = state["padded"]
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=images.device)
    out = torch.empty_like(images)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            which = (shifts[0] == dy) & (shifts[1] == dx)
            out[which] = padded[which, :, dy:dy + size, dx:dx + size]
    if epoch % 2 == 1:
        out = out.flip(-1)
    order = torch.randperm(n, generator=generator, device=images.device)
    b = hyp["batch_size"]
    for i in range(n // b):
        take = order[i * b:(i + 1) * b]
        yield out[take], labels[take]


def tta_logits(net, images, batch_size=2000):
    def mirrored(x):
        return 0.5 * (net(x) + net(x.flip(-1)))
    out = []
    with torch.no_grad():
        for x in images.split(batch_size):
            padded = tF.pad(x, (1,) * 4, mode="reflect")
            size = x.shape[-1]
            moved = 0.5 * (mirrored(padded[..., :size, :size]) + mirrored(padded[..., 2:, 2:]))
            out.append(0.5 * (mirrored(x) + moved))
    return torch.cat(out)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train(x_train, y_train, x_test, y_test, seed, hyp=HYP, verbose=True):
    device = x_train.device
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    net = make_net(hyp, device)
    lr, l2, l2_shifts = learning_rates(hyp)
    shifts = [p for m in net.modules() if isinstance(m, BatchNorm) for p in [m.bias]]
    others = [p for p in net.parameters() if p.requires_grad and all(p is not s for s in shifts)]
    optimizer = torch.optim.SGD([{"params": shifts, "lr": lr * hyp["bias_scaler"], "weight_decay": l2_shifts},
                                 {"params": others, "lr": lr, "weight_decay": l2}],
                                momentum=hyp["momentum"], nesterov=True)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    steps_per_epoch = len(x_train) // hyp["batch_size"]
    total_steps = math.ceil(steps_per_epoch * hyp["epochs"])
    stem = net[0]
    dtype = next(net.parameters()).dtype
    x_train, x_test = x_train.to(dtype), x_test.to(dtype)

    sync(device)
    start = time.perf_counter()
    whiten(stem, x_train[:hyp["whiten_images"]])
    average = {k: v.clone() for k, v in net.state_dict().items()}

    def pull_to_average(decay):
        for (key, value) in net.state_dict().items():
            if value.is_floating_point():
                average[key].lerp_(value, 1 - decay)
                value.copy_(average[key])

    step, state = 0, {}
    for epoch in range(math.ceil(hyp["epochs"])):
        stem.bias.requires_grad = epoch < hyp["whiten_bias_epochs"]
        net.train()
        for images, labels in batches(x_train, y_train, hyp, epoch, generator, state):
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * lr_factor(step, total_steps)
            logits = net(images).float() * hyp["scaling_factor"]
            loss = tF.cross_entropy(logits, labels, label_smoothing=hyp["label_smoothing"], reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 5 == 0:
                pull_to_average(lookahead_decay(step, total_steps))
            if step >= total_steps:
                pull_to_average(1.0)
                break
        if verbose:
            sync(device)
            print(f"  epoch {epoch + 1:2d}  step {step:3d}  {time.perf_counter() - start:7.1f} s", flush=True)
    sync(device)
    train_seconds = time.perf_counter() - start

    start = time.perf_counter()
    net.eval()
    logits = tta_logits(lambda x: net(x).float() * hyp["scaling_factor"], x_test)
    accuracy = (logits.argmax(1) == y_test).float().mean().item()
    return accuracy, train_seconds, time.perf_counter() - start


def load(data_path, device, limit=None):
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(data_path, download=False)
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)

    def images(x):  # uint8 NHWC -> normalised float32 NCHW, channels-last in memory
        x = torch.from_numpy(x).to(device).permute(0, 3, 1, 2).float() / 255
        return ((x - mean.to(device)) / std.to(device)).contiguous(memory_format=torch.channels_last)

    def labels(y):
        return torch.from_numpy(y[:, 0].astype(numpy.int64)).to(device)
    arrays = images(x_train), labels(y_train), images(x_test), labels(y_test)
    sync(torch.device(device))
    return (*arrays, time.perf_counter() - start)


def main(argv=None):
    p = make_parser("airbench94 in PyTorch (reference)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's)")
    args = check_args(p, p.parse_args(argv))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "gpu" if torch.cuda.is_available() else "cpu"
        print(f"device: {args.device} (--device auto)")
    device = torch.device("cuda" if args.device == "gpu" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("speedrun_torch: --device gpu but PyTorch sees no CUDA GPU")
    hyp = {**HYP, "epochs": args.epochs}
    x_train, y_train, x_test, y_test, load_seconds = load(args.data, device, args.limit)
    print(f"PyTorch {torch.__version__} on {device}; data loaded in {load_seconds:.1f} s")
    if device.type == "cuda" and not args.no_warmup:
        seconds = warm_up(train, x_train, y_train, x_test, y_test, hyp, args.seed)
        print(f"warm-up run (cuDNN set-up, first allocations; not timed): {seconds:.1f} s", flush=True)
    results = []
    for run in range(args.runs):
        results.append(train(x_train, y_train, x_test, y_test, args.seed + run, hyp, verbose=not args.quiet))
        report(run, results[-1])
    summarize(results, f"{device} (PyTorch)", load_seconds)
    return results


if __name__ == "__main__":
    main()
