"""How many operations a training step puts on the GPU, op by op, counted without a GPU.

    python benchmarks/launches.py [--models seed004_base resnet20] [--batch 32] [--out FILE.md]

A small model's step on a big GPU is bound by launches, not by arithmetic: every kernel,
cuBLAS call or device copy costs the host some microseconds to start, however little it
does, and the GPU waits for them. Fewer operations per step is then the fix (fused kernels,
gradients kept without copies), and this is the count to cut; benchmarks/profile_step.py on a
GPU tells whether a step is launch-bound at all.

The count comes from tests/cupy_stand_in, the CPU stand-in for CuPy, which adds one for each
operation that would launch work on a real GPU (its _array.py says which) and none for
views, reshapes and allocations: about one per CuPy call, within a kernel here and there of
what CuPy itself launches. It does not depend on the machine, so a change to the GPU path
can be checked here, before a GPU is there. This script puts the stand-in first on the path
itself; it runs the GPU path (--device gpu) on it.

Each model runs one step to build everything, then one counted step (SGD with momentum, on
a random batch, as benchmarks/run.py times it). Columns: the ops' forward and backward
(autograd.apply: convolution, pooling, batch-norm, dense, activations, dropout, the loss),
the optimizer's update, and the rest (Tensor arithmetic, the metrics, the loss bookkeeping).
The table's last column counts the same step with the reference kernels, the plain array code
that the fused ones replace. Writes the tables with --out (benchmarks/results/launches-stand-in.md holds them for the
seed models; tests/test_cupy_stand_in.py checks that it is current).
"""
import argparse
import collections
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if "cupy" in sys.modules and not getattr(sys.modules["cupy"], "STAND_IN", False):
    raise SystemExit("launches.py counts on the CuPy stand-in: run it as a script of its own")
sys.path[:0] = [os.path.join(ROOT, "tests", "cupy_stand_in"), ROOT, HERE]

import cupy  # noqa: E402  (the stand-in)
from minicnn import autograd, functional, zoo  # noqa: E402

MODELS = ["seed000_sequential", "seed001_model0", "seed001_model1", "seed002_cnn", "seed003_4layer",
          "seed003_6layer", "seed004_base", "seed004_vgg16", "resnet20"]
TRANSFERS = ("copy host->device", "copy device->host")


class PhaseCounter:
    """Charges each stand-in launch to the op (or optimizer) running when it happens, while
    installed (``with PhaseCounter(model) as counter:``). counts[phase][operation] = launches."""

    def __init__(self, model):
        self.model = model
        self.counts = collections.defaultdict(collections.Counter)
        self.phase = "rest"

    def _in(self, phase, fn, *args, **kwargs):
        outer, before = self.phase, collections.Counter(cupy.stand_in_launches)
        self._charge(outer, before)
        self.phase = phase
        try:
            return fn(*args, **kwargs)
        finally:
            self._charge(phase, collections.Counter(cupy.stand_in_launches))
            self.phase = outer

    def _charge(self, phase, now):
        """Add the launches since the last mark to ``phase``; mark now."""
        self.counts[phase].update(now - self._mark)
        self._mark = now

    def apply(self, forward, backward, *inputs, **params):
        name = autograd.op_name(forward)

        def counted_backward(gy, cache):
            return self._in(f"{name} (backward)", backward, gy, cache)
        # still the op's own backward to autograd, which keeps minicnn's gradients uncopied
        counted_backward.__module__ = getattr(backward, "__module__", None) or ""
        return self._in(name, self._original_apply, forward, counted_backward, *inputs, **params)

    def __enter__(self):
        self._mark = collections.Counter(cupy.stand_in_launches)
        self._original_apply = autograd.apply
        functional.apply = autograd.apply = self.apply
        step = self.model.optimizer.step
        self.model.optimizer.step = lambda *a, **k: self._in("optimizer update", step, *a, **k)
        return self

    def __exit__(self, *exc):
        self._charge(self.phase, collections.Counter(cupy.stand_in_launches))
        functional.apply = autograd.apply = self._original_apply
        del self.model.optimizer.step  # the class's method again


def count(name, batch, fast=True):
    """{phase: Counter(operation -> launches)} for one training step of zoo model ``name``;
    fast=False: with the reference kernels, the plain array code that the fused kernels replace."""
    import run as bench
    model, train, _ = bench.minicnn_step(name, batch, "cupy", fast=fast)
    train()  # builds the optimizer's slots, compiles the kernels
    with PhaseCounter(model) as counter:
        train()
    return dict(counter.counts)


def totals(counts):
    """(forward, backward, optimizer, rest, all, host<->device copies) of count()'s result."""
    def launches(phase):
        return sum(v for k, v in counts[phase].items() if k not in TRANSFERS)
    forward = sum(launches(p) for p in counts if p not in ("rest", "optimizer update") and not p.endswith("(backward)"))
    backward = sum(launches(p) for p in counts if p.endswith("(backward)"))
    optimizer = launches("optimizer update") if "optimizer update" in counts else 0
    rest = launches("rest") if "rest" in counts else 0
    transfers = sum(c[k] for c in counts.values() for k in TRANSFERS)
    return forward, backward, optimizer, rest, forward + backward + optimizer + rest, transfers


def markdown(results, batch, plain=None):
    """The tables of count()'s results; plain: {name: all launches with the reference kernels}."""
    lines = [f"# Device operations per training step (batch {batch}), counted on the CuPy stand-in", "",
             "`python benchmarks/launches.py --out benchmarks/results/launches-stand-in.md`: one SGD-with-momentum",
             "step of each model on the GPU path, counted by tests/cupy_stand_in (one per kernel, cuBLAS call",
             "or device copy; none for views and allocations). Not a timing: on a GPU each launch costs the",
             "host microseconds, so in a launch-bound step this is the count to cut. The last column is",
             "the same step with the reference kernels (`backend.fast_kernels(False)`): the plain array",
             "code that minicnn's fused kernels replace.", "",
             "| model | forward | backward | optimizer | the rest | all | host<->device copies | as plain array code |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, counts in results.items():
        lines.append(f"| {name} | " + " | ".join(str(v) for v in totals(counts)) + f" | {plain[name]} |")
    for name, counts in results.items():
        lines += ["", f"## {name}", "", "| op | launches | of which |", "| --- | --- | --- |"]
        for phase, ops in sorted(counts.items(), key=lambda item: -sum(item[1].values())):
            if not ops:
                continue
            which = ", ".join(f"{op} x{n}" for op, n in sorted(ops.items(), key=lambda item: (-item[1], item[0])))
            lines.append(f"| {phase} | {sum(ops.values())} | {which} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--out", default=None, help="also write the tables to this .md file")
    args = p.parse_args(argv)
    unknown = sorted(set(args.models) - set(zoo.MODELS))
    if unknown:
        p.error(f"--models: no such zoo model {unknown}; choose from {sorted(zoo.MODELS)}")
    results = {name: count(name, args.batch) for name in args.models}
    plain = {name: totals(count(name, args.batch, fast=False))[4] for name in args.models}
    text = markdown(results, args.batch, plain)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
