"""How close can a NumPy convolution get to PyTorch's on one core? Each 3x3 convolution
of resnet20 and seed004_vgg16, at one rank's share of the batch, timed three ways side by
side on one core (rounds interleaved):

  * PyTorch's convolution (oneDNN, one thread), forward and backward (gx and gW);
  * minicnn's (the fast CPU path conv.cpu_path picks), forward and backward;
  * the GEMMs alone that minicnn's path must do, block by block as its kernels cut the
    batch for the cache, on random arrays of the same shapes, at this machine's BLAS
    speed (one thread): no copies, no shifted adds, nothing else.

    python benchmarks/conv_ceiling.py [--batch 64] [--rounds 3]

The last figure is a floor for any convolution built on BLAS GEMMs of those shapes. Where
it is above PyTorch's whole convolution, no rearranging of the NumPy around the GEMMs can
reach PyTorch: the GEMMs themselves would have to be faster. The rows path does its
GEMMs on the padded width (Wp / ow more columns than needed); the table gives their
GFLOP/s over the convolution's own multiply-adds, 2 N oh ow kh kw C F.

Writes benchmarks/results/<machine>-conv-ceiling.md (and .json). PyTorch is required.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import numpy  # noqa: E402

from minicnn.distributed import threads  # noqa: E402
from minicnn.functions import conv  # noqa: E402

# (model, image size, channels in, channels out, how many such convolutions the model has)
LAYERS = [
    ("resnet20", 32, 16, 16, 6),
    ("resnet20", 16, 32, 32, 5),
    ("resnet20", 8, 64, 64, 5),
    ("seed004_vgg16", 32, 64, 64, 1),
    ("seed004_vgg16", 16, 128, 128, 1),
    ("seed004_vgg16", 8, 256, 256, 2),
    ("seed004_vgg16", 4, 512, 512, 2),
    ("seed004_vgg16", 2, 512, 512, 3),
]


def median_ms(fn, repeats):
    fn()  # the first call apart: allocations, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def gemm_shapes(N, H, C, F, k=3):
    """The GEMMs minicnn's CPU path runs for a stride-1 'same' k x k convolution of an
    (N, H, H, C) input, cache block by cache block as the kernels in conv_cpu.py cut the
    batch (threads.chunks_of): (path, forward [(M, K, N), ...], backward [...])."""
    path = conv.cpu_path(C, k, 1, H)
    if path == "rows":  # rows (m, k*C) @ W_rows (k*C, k*F); gW += rows^T @ gZ; g_rows = gZ @ W_rows^T
        pixels, K, Z = H * (H + k - 1), k * C, k * F
        forward = [(m, K, Z) for m in _block_rows(N, pixels, pixels * (K + Z) * 4)]
        backward = [shape for m in _block_rows(N, pixels, 2 * pixels * (K + Z) * 4)
                    for shape in ((K, m, Z), (m, Z, K))]
    elif path == "im2col-blocked":  # col (m, k*k*C) @ (k*k*C, F), and its two adjoints
        pixels, K = H * H, k * k * C
        forward = [(m, K, F) for m in _block_rows(N, pixels, pixels * (K + F) * 4)]
        backward = [shape for m in _block_rows(N, pixels, 2 * pixels * (K + F) * 4) for shape in ((K, m, F), (m, F, K))]
    else:
        raise ValueError(f"no GEMM model for the {path} path")
    return path, forward, backward


def _block_rows(N, pixels_per_image, bytes_per_image):
    """The GEMM row counts of the cache blocks one core cuts a batch of N images into."""
    return [(s.stop - s.start) * pixels_per_image for s in threads.chunks_of(slice(0, N), bytes_per_image, pixels_per_image)]


def gemms(shapes, rng):
    """A function running GEMMs of these shapes on random float32 arrays (one set of arrays
    per distinct shape: the blocks reuse them, as the kernels reuse their cache blocks)."""
    arrays = {shape: (rng.standard_normal(shape[:2], dtype=numpy.float32),
                      rng.standard_normal(shape[1:], dtype=numpy.float32),
                      numpy.empty((shape[0], shape[2]), dtype=numpy.float32)) for shape in set(shapes)}
    operands = [arrays[shape] for shape in shapes]

    def run():
        for a, b, out in operands:
            numpy.matmul(a, b, out=out)
    return run


def measure(batch, rounds, repeats):
    import torch
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    saved = threads.set_threads(1)
    rng = numpy.random.default_rng(0)
    cases = []
    for model, H, C, F, count in LAYERS:
        x = rng.standard_normal((batch, H, H, C), dtype=numpy.float32)
        W = (rng.standard_normal((3, 3, C, F), dtype=numpy.float32) / numpy.sqrt(9 * C)).astype(numpy.float32)
        y, cache = conv.conv2d_forward(x, W, None, 1, "same")
        gy = rng.standard_normal(y.shape, dtype=numpy.float32)
        tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
        tw = torch.from_numpy(W.transpose(3, 2, 0, 1).copy()).requires_grad_(True)
        ty = torch.nn.functional.conv2d(tx, tw, padding=1)
        tgy = torch.from_numpy(gy.transpose(0, 3, 1, 2).copy())
        path, forward_shapes, backward_shapes = gemm_shapes(batch, H, C, F)

        def torch_forward(tx=tx, tw=tw):
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, padding=1)

        def torch_backward(ty=ty, tgy=tgy, tx=tx, tw=tw):
            torch.autograd.grad(ty, (tx, tw), tgy, retain_graph=True)
        cases.append({
            "model": model, "image": H, "C": C, "F": F, "count": count, "path": path,
            "flops": 2 * batch * H * H * 9 * C * F,
            "runs": {
                "torch forward": torch_forward,
                "torch backward": torch_backward,
                "minicnn forward": lambda x=x, W=W: conv.conv2d_forward(x, W, None, 1, "same"),
                "minicnn backward": lambda gy=gy, cache=cache: conv.conv2d_backward(gy, cache),
                "GEMMs forward": gemms(forward_shapes, rng),
                "GEMMs backward": gemms(backward_shapes, rng),
            }})
    from threadpoolctl import threadpool_limits
    try:
        with threadpool_limits(limits=1):  # BLAS on one thread: one core, as one rank of --workers has
            for _ in range(rounds):
                for case in cases:
                    for name, fn in case["runs"].items():
                        case.setdefault("ms", {}).setdefault(name, []).append(median_ms(fn, repeats))
    finally:
        threads.set_threads(saved)
        torch.set_num_threads(torch_threads)
    rows = []
    for case in cases:
        ms = {name: statistics.median(v) for name, v in case["ms"].items()}
        rows.append({k: case[k] for k in ("model", "image", "C", "F", "count", "path", "flops")}
                    | {"ms": ms, "rounds_ms": case["ms"]})
    return rows


def markdown(rows, batch, slug, info, command):
    lines = [f"# One core: minicnn's 3x3 convolutions, the GEMMs they need, and PyTorch's: {slug}", "",
             f"Measured {time.strftime('%Y-%m-%d')} with `{command}`, one core (BLAS, PyTorch and minicnn on one "
             f"thread), batch {batch}, medians of the rounds' medians, ms.", "",
             "| machine | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", "| model | layer | path | PyTorch fwd + bwd | minicnn fwd + bwd | GEMMs alone fwd + bwd | "
              "GEMMs alone / PyTorch | minicnn / PyTorch | GEMM GFLOP/s (of the conv's own) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ms = r["ms"]
        torch_ms = ms["torch forward"] + ms["torch backward"]
        ours = ms["minicnn forward"] + ms["minicnn backward"]
        gemm = ms["GEMMs forward"] + ms["GEMMs backward"]
        rate = 3 * r["flops"] / (gemm * 1e-3) / 1e9  # forward, gW and gx: three times the conv's multiply-adds
        lines.append(f"| {r['model']} | {r['image']}x{r['image']}x{r['C']}->{r['F']} (x{r['count']}) | {r['path']} "
                     f"| {ms['torch forward']:.2f} + {ms['torch backward']:.2f} "
                     f"| {ms['minicnn forward']:.2f} + {ms['minicnn backward']:.2f} "
                     f"| {ms['GEMMs forward']:.2f} + {ms['GEMMs backward']:.2f} "
                     f"| {gemm / torch_ms:.2f} | {ours / torch_ms:.2f} | {rate:.0f} |")
    lines += ["", "GEMMs alone: the matrix products minicnn's path runs, block by block as its kernels "
              "cut the batch (shapes in `benchmarks/conv_ceiling.py`), timed on random arrays with nothing "
              "around them. "
              "Where that column is above 1, even a convolution that cost no more than its GEMMs "
              "would be slower than PyTorch's on this core."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64, help="one rank's share of batch 128 on 2 workers")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    import timing
    rows = measure(args.batch, args.rounds, args.repeats)
    info = timing.machine("cpu") | {"torch_threads": 1}  # as measure() ran it
    command = "python benchmarks/conv_ceiling.py" + "".join(
        f" --{k} {v}" for k, v in (("batch", args.batch), ("rounds", args.rounds)) if v != p.get_default(k))
    slug = timing.slug(info, "cpu") + "-conv-ceiling"
    text = markdown(rows, args.batch, slug, info, command)
    timing.write_report(args.out, slug, {"batch": args.batch, "machine": info, "rows": rows}, text)
    print(text)


if __name__ == "__main__":
    main()
