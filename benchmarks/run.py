"""Speed of minicnn, side by side with PyTorch (and NumPy with CuPy), in one run.

    python benchmarks/run.py --device cpu [--against torch]
    python benchmarks/run.py --device gpu [--against torch]
    python benchmarks/run.py --device cpu --workers 2   # data-parallel over MPI ranks: workers.py

What it measures (timing rules in benchmarks/timing.py):
  * layers: forward and backward of conv (at the seed models' shapes), im2col and
    col2im alone, max-pool, batch-norm, dense and softmax cross-entropy, at batch 128;
  * steps: a whole training step (SGD with momentum) and inference for every seed model
    at batch sizes 32 to 512, with peak memory, images/second, and the GEMM floor: the
    model's multiply-adds at this machine's own float32 GEMM speed;
  * on a GPU, host->device transfer time for a batch and for the whole data set, and the
    same step on NumPy (this machine's CPU) for the CuPy/NumPy ratio.
minicnn runs with its fast kernels ("numpy", "cupy") and, on the CPU, its plain reference
kernels too ("numpy-ref") at batch 128, to show what the fast path buys.

--precision mixed_float16 times the steps in mixed precision on both engines: minicnn's
Keras-style policy (float32 weights, float16 arithmetic, dynamic loss scaling) beside
PyTorch's autocast to float16 with its GradScaler. NumPy as the CuPy/NumPy baseline of a
GPU run stays in float32 (the fastest the CPU does: NumPy's float16 is slow); the layer
table is float32 throughout.

Writes benchmarks/results/<machine>.json, .md (the tables) and .png (images/second
against batch size per backend). PyTorch is only a reference; minicnn never imports it.
"""
import argparse
import importlib.util
import os
import sys
import time


os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy loads OpenBLAS: see minicnn/__init__.py
import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minicnn  # noqa: E402
from minicnn import backend, mixed_precision, optimizers, zoo  # noqa: E402
from minicnn.autograd import Tensor, no_grad  # noqa: E402
from minicnn.functions import conv, dense as dense_fn, conv_cpu, loss as loss_fn  # noqa: E402
from minicnn.functions import depthwise_conv, normalization as bn, pooling  # noqa: E402
import timing  # noqa: E402

# seed001_model2, seed004_base and seed004_augmented repeat an architecture listed here.
MODELS = ["seed000_sequential", "seed001_model0", "seed001_model1", "seed002_cnn",
          "seed003_4layer", "seed003_6layer", "seed004_vgg16", "resnet20"]
BATCH_SIZES = [32, 64, 128, 256, 512]

# (label, input H=W, C, F, padding) of the convolutions in the seed models
CONV_CASES = [
    ("conv 32x32x3->32 same (first layer)", 32, 3, 32, "same"),
    ("conv 32x32x32->32 valid", 32, 32, 32, "valid"),
    ("conv 32x32x32->32 same", 32, 32, 32, "same"),
    ("conv 15x15x32->64 same", 15, 32, 64, "same"),
    ("conv 13x13x64->128 valid", 13, 64, 128, "valid"),
    ("conv 8x8x128->128 same", 8, 128, 128, "same"),
    ("conv 4x4x512->512 same (VGG block 4)", 4, 512, 512, "same"),
]


# --- per-layer cases: each returns (forward, backward) closures on one backend ---------------
def _rng():
    return numpy.random.default_rng(0)


def minicnn_layer(kind, spec, xp, fast=True):
    """Closures timing minicnn's raw-array function ``kind`` on module xp (numpy/cupy)."""
    r = _rng()

    def arr(*shape):
        return xp.asarray(r.standard_normal(shape, dtype=numpy.float32))

    N = 128
    state = {}
    if kind == "conv":
        H, C, F, padding = spec
        x, W, b = arr(N, H, H, C), arr(3, 3, C, F), arr(F)
        first = C == 3  # the first layer's input needs no gradient

        def forward():
            with backend.fast_kernels(fast):
                state["y"], state["cache"] = conv.conv2d_forward(x, W, b, 1, padding, input_grad=not first)

        def backward():
            with backend.fast_kernels(fast):
                conv.conv2d_backward(state["gy"], state["cache"])
    elif kind in ("im2col", "rows"):
        H, C, _, _ = spec
        x = arr(N, H + 2, H + 2, C)
        pads = ((0, 0), (0, 0))
        if kind == "im2col" and not fast:
            def forward():
                state["y"] = conv.im2col(x, 3, 3, 1, 1, pads)

            def backward():
                conv.col2im(state["gy"], x.shape, 1, 1, pads)
        elif kind == "im2col":
            if xp is numpy:
                def forward():
                    state["y"] = conv_cpu.im2col_strided(x, 3, 3, 1, 1, H, H)
            else:
                from minicnn.functions import fast_gpu

                def forward():
                    state["y"] = fast_gpu.im2col(x, 3, 3, (1, 1), H, H)

                def backward():
                    fast_gpu.col2im(state["gy"], x.shape, (1, 1))
        else:
            def forward():
                state["y"] = conv_cpu.unroll_rows(x, 3, 1, H)
    elif kind == "depthwise":
        H, C = spec
        x, W, b = arr(N, H, H, C), arr(3, 3, C, 1), arr(C)

        def forward():
            with backend.fast_kernels(fast):
                state["y"], state["cache"] = depthwise_conv.depthwise_conv2d_forward(x, W, b, 1, "same")

        def backward():
            with backend.fast_kernels(fast):
                depthwise_conv.depthwise_conv2d_backward(state["gy"], state["cache"])
    elif kind == "maxpool":
        H, C = spec
        x = arr(N, H, H, C)

        def forward():
            with backend.fast_kernels(fast):
                state["y"], state["cache"] = pooling.max_pool2d_forward(x, 2)

        def backward():
            with backend.fast_kernels(fast):
                pooling.max_pool2d_backward(state["gy"], state["cache"])
    elif kind == "batchnorm":
        x = arr(N, *spec)
        gamma, beta = xp.ones(spec[-1], numpy.float32), xp.zeros(spec[-1], numpy.float32)

        def forward():
            with backend.fast_kernels(fast):
                state["y"], state["cache"] = bn.batch_norm_train_forward(x, gamma, beta)

        def backward():
            with backend.fast_kernels(fast):
                bn.batch_norm_train_backward(state["gy"], state["cache"])
    elif kind == "dense":
        d_in, d_out = spec
        x, W, b = arr(N, d_in), arr(d_in, d_out), arr(d_out)

        def forward():
            state["y"], state["cache"] = dense_fn.dense_forward(x, W, b)

        def backward():
            dense_fn.dense_backward(state["gy"], state["cache"])
    elif kind == "softmax_ce":
        logits = arr(N, spec[0])
        labels = xp.asarray(r.integers(0, spec[0], N))

        def forward():
            state["y"], state["cache"] = loss_fn.softmax_cross_entropy_forward(logits, labels, check=False)

        def backward():
            loss_fn.softmax_cross_entropy_backward(xp.ones((), numpy.float32), state["cache"])
    else:
        raise ValueError(kind)
    forward()
    state["gy"] = xp.asarray(r.standard_normal(state["y"].shape, dtype=numpy.float32))
    return forward, (backward if "backward" in locals() else None)


def torch_layer(kind, spec, device):
    """The same case in PyTorch (NCHW, its natural layout), or None where it has no twin."""
    import torch
    import torch.nn.functional as TF
    g = torch.Generator().manual_seed(0)
    N = 128

    def arr(*shape, grad=True):
        return torch.randn(*shape, generator=g).to(device).requires_grad_(grad)

    state = {}
    if kind == "conv":
        H, C, F, padding = spec
        x, W, b = arr(N, C, H, H, grad=C != 3), arr(F, C, 3, 3), arr(F)
        inputs = [t for t in (x, W, b) if t.requires_grad]

        def run():
            return TF.conv2d(x, W, b, padding=1 if padding == "same" else 0)
    elif kind == "depthwise":
        H, C = spec
        x, W, b = arr(N, C, H, H), arr(C, 1, 3, 3), arr(C)
        inputs = [x, W, b]

        def run():
            return TF.conv2d(x, W, b, padding=1, groups=C)
    elif kind == "maxpool":
        H, C = spec
        x = arr(N, C, H, H)
        inputs = [x]

        def run():
            return TF.max_pool2d(x, 2)
    elif kind == "batchnorm":
        shape = (N, spec[-1], *spec[:-1]) if len(spec) == 3 else (N, spec[0])
        x, gamma, beta = arr(*shape), arr(spec[-1]), arr(spec[-1])
        mean, var = torch.zeros(spec[-1], device=device), torch.ones(spec[-1], device=device)
        inputs = [x, gamma, beta]

        def run():
            return TF.batch_norm(x, mean, var, gamma, beta, training=True, eps=1e-3)
    elif kind == "dense":
        x, W, b = arr(N, spec[0]), arr(spec[1], spec[0]), arr(spec[1])
        inputs = [x, W, b]

        def run():
            return TF.linear(x, W, b)
    elif kind == "softmax_ce":
        x = arr(N, spec[0])
        labels = torch.randint(0, spec[0], (N,), generator=g).to(device)
        inputs = [x]

        def run():
            return TF.cross_entropy(x, labels)
    else:
        return None

    def forward():
        state["y"] = run()

    def backward():
        torch.autograd.grad(state["y"], inputs, state["gy"], retain_graph=True)
    forward()
    state["gy"] = torch.randn(state["y"].shape, generator=g).to(device)
    return forward, backward


def layer_cases():
    cases = [(label, "conv", (H, C, F, pad)) for label, H, C, F, pad in CONV_CASES]
    cases += [
        ("im2col 32x32x32, 3x3 (col2im as backward)", "im2col", (32, 32, None, None)),
        ("unroll kernel rows 32x32x32, 3x3", "rows", (32, 32, None, None)),
        ("depthwise 3x3 32x32x32 same (MobileNet's)", "depthwise", (32, 32)),
        ("max-pool 2x2 on 30x30x32", "maxpool", (30, 32)),
        ("batch-norm 15488 features (seed 000)", "batchnorm", (15488,)),
        ("batch-norm 32x32x32 channels", "batchnorm", (32, 32, 32)),
        ("dense 2304->512", "dense", (2304, 512)),
        ("softmax cross-entropy, 10 classes", "softmax_ce", (10,)),
    ]
    return cases


def bench_layers(backends, repeats):
    rows = []
    for label, kind, spec in layer_cases():
        row = {"layer": label, "kind": kind}
        for be in backends:
            if be.name in ("numpy", "numpy-ref", "cupy"):
                xp = be.cupy if be.name == "cupy" else numpy
                if kind == "rows" and xp is not numpy:
                    continue
                fns = minicnn_layer(kind, spec, xp, fast=be.name != "numpy-ref")
            else:
                fns = torch_layer(kind, spec, "cuda" if be.gpu else "cpu")
                if fns is None:
                    continue
            forward, backward = fns
            row[be.name] = {"forward": be.measure(forward, repeats, min_time=0.2)}
            if backward is not None:
                row[be.name]["backward"] = be.measure(backward, repeats, min_time=0.2)
        rows.append(row)
        print(f"  {label}: " + ", ".join(
            f"{k} {v['forward']['median_s'] * 1e3:.2f}/{v.get('backward', {}).get('median_s', float('nan')) * 1e3:.2f} ms"
            for k, v in row.items() if isinstance(v, dict)), flush=True)
    return rows


# --- whole training steps ----------------------------------------------------------------
def forward_flops(model):
    """Multiply-adds x 2 of one forward pass per image (convolutions and dense layers)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            oh, ow, F = layer.output_shape
            kh, kw, C, _ = layer.kernel.shape
            total += 2 * oh * ow * kh * kw * C * F
        elif kind == "Dense":
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def minicnn_step(name, batch, xp_name, fast=True, precision="float32"):
    """(model, train_step, inference) closures for a zoo model on numpy or cupy; the model's
    layers made under the dtype policy ``precision`` (compile adds loss scaling for mixed_float16)."""
    device = "gpu" if xp_name == "cupy" else "cpu"
    with mixed_precision.policy_scope(precision), minicnn.device(device):
        minicnn.set_seed(0)
        model = zoo.MODELS[name]()
        model.build(zoo.INPUT_SHAPE, device)
        model.compile(optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
        model.optimizer.build(model.trainable_weights)
        r = _rng()
        x = backend.to_device(r.standard_normal((batch, 32, 32, 3), dtype=numpy.float32), device)
        y = backend.to_device(r.integers(0, 10, batch), device)
    x_tensor = Tensor(x)

    def train():
        with backend.fast_kernels(fast):
            model.train_on_batch(x_tensor, y)

    def infer():
        with backend.fast_kernels(fast), no_grad():
            model(x_tensor, training=False)
    return model, train, infer


def torch_step(model, batch, device, precision="float32"):
    """(train_step, inference) closures for the PyTorch translation of ``model``; with
    precision mixed_float16, under autocast to float16 with a GradScaler (PyTorch's AMP)."""
    import contextlib
    import torch
    import torch_reference
    net, _ = torch_reference.translate(model)
    if isinstance(net, torch_reference.GraphNet):
        net.nchw = True  # fed NCHW below
    else:
        net = torch.nn.Sequential(*list(net)[1:])  # drop the NHWC->NCHW permute: feed NCHW
    net = net.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    mixed = precision == "mixed_float16"
    kind = "cuda" if device == "cuda" else "cpu"

    def autocast():
        return torch.autocast(kind, dtype=torch.float16) if mixed else contextlib.nullcontext()
    scaler = torch.amp.GradScaler(kind, enabled=mixed)

    def train():
        net.train()
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = torch.nn.functional.cross_entropy(net(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def infer():
        net.eval()
        with torch.no_grad(), autocast():
            net(x)
    return train, infer


def step_precision(be, backends, precision):
    """The precision backend ``be`` runs the steps in: ``precision``, except NumPy as the
    CuPy/NumPy baseline of a GPU run, which stays float32 (see the docstring at the top)."""
    if be.name == "numpy" and any(b.gpu for b in backends):
        return "float32"
    return precision


def bench_steps(backends, models, batch_sizes, repeats, gemm_gflops, precision="float32"):
    results = []
    for name in models:
        for batch in batch_sizes:
            entry = {"model": name, "batch": batch}
            for be in backends:
                if be.name == "numpy-ref" and batch != 128:
                    continue  # the reference kernels only at the headline batch size
                if be.name == "numpy" and any(b.name == "cupy" for b in backends) and batch != 128:
                    continue  # on a GPU machine, NumPy only for the CuPy/NumPy ratio at 128
                dtypes = step_precision(be, backends, precision)
                if be.name.startswith("torch"):
                    if "reference" not in entry:
                        model = zoo.MODELS[name]()
                        model.build(zoo.INPUT_SHAPE, "cpu")
                    train, infer = torch_step(model, batch, "cuda" if be.gpu else "cpu", dtypes)
                else:
                    model, train, infer = minicnn_step(name, batch, "cupy" if be.gpu else "numpy",
                                                       fast=be.name != "numpy-ref", precision=dtypes)
                    entry["reference"] = True
                step = be.measure(train, repeats, min_time=0.5)
                entry.setdefault("flops_per_image", forward_flops(model))
                inference = be.measure(infer, repeats, min_time=0.5)
                entry[be.name] = {"train": step, "inference": inference, "peak_bytes": be.peak_memory(train),
                                  "precision": dtypes,
                                  "train_images_per_s": batch / step["median_s"],
                                  "inference_images_per_s": batch / inference["median_s"]}
                print(f"  {name} batch {batch} {be.name} ({dtypes}): step {step['median_s'] * 1e3:.1f} ms "
                      f"(first {step['first_s'] * 1e3:.0f}), inference {inference['median_s'] * 1e3:.1f} ms",
                      flush=True)
            flops = 3 * entry["flops_per_image"] * batch  # forward + two backward GEMMs
            entry["gemm_floor_s"] = {k: flops / (g * 1e9) for k, g in gemm_gflops.items()}
            results.append(entry)
    return results


def bench_transfers(backends):
    """Host->device copies, timed apart from the steps: a batch of 128 and the whole training set."""
    out = {}
    for be in backends:
        if not be.gpu:
            continue
        r = _rng()
        batch = r.standard_normal((128, 32, 32, 3), dtype=numpy.float32)
        dataset = r.integers(0, 256, (50000, 32, 32, 3), dtype=numpy.uint8)
        if be.name == "cupy":
            copy = be.cupy.asarray
        else:
            def copy(a):
                return be.torch.from_numpy(a).to("cuda")
        out[be.name] = {"batch_128_float32_s": be.measure(lambda: copy(batch), 5)["median_s"],
                        "cifar_train_uint8_s": be.measure(lambda: copy(dataset), 3)["median_s"]}
    return out


# --- reports -------------------------------------------------------------------------------
def _ms(seconds):
    return f"{seconds * 1e3:.1f}" if seconds is not None else "-"


def markdown(report):
    info, names = report["machine"], report["backends"]
    lines = [f"# minicnn benchmarks: {report['slug']}", "",
             f"Measured {report['date']} with `{report['command']}`.", "",
             "| machine | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["| float32 GEMM (2048^3) | " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in report["gemm_gflops"].items()) + " |", ""]
    torch_name = next((n for n in names if n.startswith("torch")), None)
    main = "cupy" if "cupy" in names else "numpy"
    precision = report.get("precision", "float32")
    lines += [f"## Training step and inference at batch 128 (median ms), {precision}", ""]
    if precision != "float32":
        lines += ["Precision of each engine's steps: " + ", ".join(
            f"{n} {p}" for n, p in report.get("step_precision", {}).items()) + ". Layers: float32.", ""]
    head = ["model"] + [f"{n} step" for n in names] + ([f"{main}/torch step"] if torch_name else [])
    head += ["GEMM floor", "% of floor"] + [f"{n} infer" for n in names]
    head += ([f"{main}/torch infer"] if torch_name else []) + [f"{n} peak MiB" for n in names]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for e in report["steps"]:
        if e["batch"] != 128:
            continue
        floor = e["gemm_floor_s"].get(main)
        cells = [e["model"]] + [_ms(e[n]["train"]["median_s"]) if n in e else "-" for n in names]
        if torch_name:
            cells.append(f"{e[main]['train']['median_s'] / e[torch_name]['train']['median_s']:.2f}")
        cells += [_ms(floor), f"{100 * floor / e[main]['train']['median_s']:.0f}%"]
        cells += [_ms(e[n]["inference"]["median_s"]) if n in e else "-" for n in names]
        if torch_name:
            cells.append(f"{e[main]['inference']['median_s'] / e[torch_name]['inference']['median_s']:.2f}")
        cells += [f"{e[n]['peak_bytes'] / 2 ** 20:.0f}" if n in e and e[n]["peak_bytes"] is not None
                  else "-" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    if "cupy" in names and "numpy" in names:
        lines += ["", f"CuPy against NumPy on this machine's CPU ({info.get('numpy_threads', 'all')} threads), "
                  "training step at batch 128: " + ", ".join(
            f"{e['model']} {e['numpy']['train']['median_s'] / e['cupy']['train']['median_s']:.0f}x"
            for e in report["steps"] if e["batch"] == 128 and "numpy" in e)]
    lines += ["", "## Training images per second by batch size", ""]
    batches = sorted({e["batch"] for e in report["steps"]})
    lines += ["| model | backend | " + " | ".join(str(b) for b in batches) + " |",
              "| --- | --- |" + " --- |" * len(batches)]
    for model in dict.fromkeys(e["model"] for e in report["steps"]):
        for n in names:
            cells = [f"{e[n]['train_images_per_s']:.0f}" if n in e else "-"
                     for b in batches for e in report["steps"] if e["model"] == model and e["batch"] == b]
            lines.append(f"| {model} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "## Layers at batch 128: forward / backward (median ms)", ""]
    lines += ["| layer | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for row in report["layers"]:
        cells = []
        for n in names:
            t = row.get(n)
            cells.append("-" if t is None else
                         f"{_ms(t['forward']['median_s'])} / {_ms(t.get('backward', {}).get('median_s'))}")
        lines.append(f"| {row['layer']} | " + " | ".join(cells) + " |")
    if report.get("transfers"):
        lines += ["", "## Host to device copies (median ms), not part of any step above", ""]
        for n, t in report["transfers"].items():
            lines.append(f"- {n}: a float32 batch of 128 {_ms(t['batch_128_float32_s'])}, "
                         f"the 50,000-image uint8 training set {_ms(t['cifar_train_uint8_s'])}")
    lines += ["", "First calls (kernel compilation, first allocations) are excluded from the medians; "
              "they are in the JSON as `first_s`. `numpy-ref` is minicnn with its plain reference "
              "kernels (im2col, tap loops). GEMM floor: 3 x the forward multiply-adds (forward and the "
              "two backward GEMMs) at the float32 GEMM speed above. Peak memory of one training step, measured on "
              "a call of its own: NumPy array bytes (tracemalloc), CuPy pool allocations (a memory "
              "hook), PyTorch max_memory_allocated on CUDA; PyTorch CPU reports to neither ('-').", ""]
    return "\n".join(lines)


def plot(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = list(dict.fromkeys(e["model"] for e in report["steps"]))
    cols = min(4, len(models))
    rows = -(-len(models) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, model in zip(axes.flat, models):
        for n in report["backends"]:
            points = [(e["batch"], e[n]["train_images_per_s"]) for e in report["steps"]
                      if e["model"] == model and n in e]
            if points:
                ax.plot(*zip(*points), marker="o", label=n)
        ax.set_xscale("log", base=2)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("batch size")
        ax.set_ylabel("training images/s")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    fig.suptitle(f"Training throughput: {report['slug']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def torch_has_cuda():
    import torch
    return torch.cuda.is_available()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "gpu"], required=True)
    p.add_argument("--against", choices=["torch", "none"], default="torch",
                   help="run PyTorch beside minicnn when it is importable (default)")
    p.add_argument("--models", nargs="+", default=MODELS, choices=sorted(zoo.MODELS))
    p.add_argument("--batch-sizes", nargs="+", type=int, default=BATCH_SIZES)
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3 CPU, 10 GPU)")
    p.add_argument("--skip-layers", action="store_true")
    p.add_argument("--numpy-threads", type=int, default=None,
                   help="cores NumPy may use (BLAS and minicnn's threads); default: 2 with --device gpu "
                        "(the CuPy/NumPy ratio is taken against a 2-core CPU), all of them with --device cpu")
    p.add_argument("--tf32", choices=["off", "on"], default="off",
                   help="GPU float32 matrix products on tensor cores in TF32, for CuPy (CUPY_TF32) and PyTorch "
                        "(matmul and cuDNN) alike (default off: true float32 on both)")
    p.add_argument("--precision", choices=["float32", "mixed_float16"], default="float32",
                   help="the steps' precision on both engines: float32 (default), or mixed_float16 (float32 "
                        "weights, float16 arithmetic, loss scaling: minicnn's policy, PyTorch's autocast with "
                        "GradScaler); the results' names gain -mixed_float16")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    p.add_argument("--tag", default="", help="added to the output file names")
    p.add_argument("--workers", type=int, default=None,
                   help="time the training step on N MPI ranks (data-parallel) beside one process and PyTorch "
                        "with every core, at --batch-sizes (default 128): see benchmarks/workers.py")
    p.add_argument("--rounds", type=int, default=3, help="with --workers: rounds of all engines, medians taken")
    args = p.parse_args(argv)
    if args.workers is not None:
        if args.workers < 1 or args.device != "cpu":
            p.error("--workers N needs N >= 1 and --device cpu (several GPUs: not measured yet)")
        import workers
        if args.batch_sizes == BATCH_SIZES:
            args.batch_sizes = [128]
        return workers.bench(args, None, {"argv": sys.argv[1:] if argv is None else list(argv)})
    if args.numpy_threads is not None and args.numpy_threads < 1:
        p.error(f"--numpy-threads must be at least 1, got {args.numpy_threads}")
    numpy_threads = args.numpy_threads or (2 if args.device == "gpu" else None)

    if args.device == "gpu" and not backend.gpu_available():
        sys.exit(f"error: --device gpu: {backend.gpu_unavailable_reason()}")
    # CuPy reads CUPY_TF32 at its first float32 matrix product, which has not happened yet.
    os.environ["CUPY_TF32"] = "1" if args.tf32 == "on" else "0"
    names = ["cupy", "numpy"] if args.device == "gpu" else ["numpy", "numpy-ref"]
    if args.against == "torch":
        if importlib.util.find_spec("torch") is None:
            print("PyTorch is not importable: minicnn only", file=sys.stderr)
        elif args.device == "gpu" and not torch_has_cuda():
            print("PyTorch is installed without CUDA (torch.cuda.is_available() is False): minicnn only",
                  file=sys.stderr)
        else:
            names.append("torch-cuda" if args.device == "gpu" else "torch-cpu")
    backends = [timing.Backend(n, threads=numpy_threads) for n in names]
    if "torch-cuda" in names:
        torch = backends[-1].torch
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
    repeats = args.repeats or (10 if args.device == "gpu" else 3)
    info = timing.machine(args.device)
    slug = timing.slug(info, args.device) + (f"-{args.precision}" if args.precision != "float32" else "")
    slug += f"-{args.tag}" if args.tag else ""
    gemm = {"numpy": timing.sgemm_gflops(numpy, backend=backends[names.index("numpy")])}
    if args.device == "gpu":
        gemm["cupy"] = timing.sgemm_gflops(backends[0].cupy, 8192, backend=backends[0])
    print(f"{slug}: float32 GEMM " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in gemm.items()), flush=True)

    info["numpy_threads"] = numpy_threads or "all"
    if args.device == "gpu":
        info["tf32"] = args.tf32
    report = {"slug": slug, "machine": info, "backends": names, "gemm_gflops": gemm, "precision": args.precision,
              "step_precision": {be.name: step_precision(be, backends, args.precision) for be in backends},
              "date": time.strftime("%Y-%m-%d"), "command": "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    report["layers"] = [] if args.skip_layers else bench_layers(backends, repeats)
    report["steps"] = bench_steps(backends, args.models, args.batch_sizes, repeats, gemm, args.precision)
    report["transfers"] = bench_transfers(backends)
    base = timing.write_report(args.out, slug, report, markdown(report))
    plot(report, base + ".png")
    print(f"wrote {base}.json, .md, .png")


if __name__ == "__main__":
    main()
