"""Where does a training step's time go? minicnn's step, op by op, on the CPU or the GPU.

    python benchmarks/profile_step.py --device gpu --model seed004_base [--batch 128] [--steps 20]

Every op that goes through ``autograd.apply`` (convolution, pooling, batch-norm, dense,
activations, dropout, the loss: everything minicnn.functional provides) is timed, forward
and backward apart, and so is the optimizer's update; what is left of the step (Tensor
arithmetic and reshapes, the graph walk, Python) is shown as "the rest".

Two clocks per op:
  * host: the Python call, from entering the op to its return. On a GPU that is the cost
    of launching its kernels, not of running them (CuPy returns before the GPU is done);
  * device (GPU only): CUDA events recorded on the current stream just before and after
    the op, read once the step is over, so no synchronisation is added inside the step.
On a GPU, if the step's wall time is close to the sum of the host times and well above
the sum of the device times, the GPU waits for Python: the step is launch-bound, and
fewer, larger kernels or a CUDA graph are the fix, not faster kernels. The events add a
few microseconds per op to the host times.

Prints a table (ms per step, averaged over --steps steps after --warmup) and writes it
with --out FILE.md.
"""
import argparse
import collections
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from minicnn import autograd, backend, functional  # noqa: E402


class OpTimer:
    """Times every autograd.apply op while installed (``with OpTimer(gpu) as timer:``).

    host[name], device[name]: seconds summed over the calls; calls[name]: how many.
    Names are the forward function's without '_forward', plus ' (backward)'."""

    def __init__(self, gpu):
        self.gpu = gpu
        self.host = collections.Counter()
        self.calls = collections.Counter()
        self.device = collections.Counter()
        self._events = []  # (name, start event, end event), read by collect()

    def _timed(self, name, fn, *args, **kwargs):
        if self.gpu:
            import cupy
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
        begin = time.perf_counter()
        out = fn(*args, **kwargs)
        self.host[name] += time.perf_counter() - begin
        self.calls[name] += 1
        if self.gpu:
            end.record()
            self._events.append((name, start, end))
        return out

    def apply(self, forward, backward, *inputs, **params):
        name = autograd.op_name(forward)

        def timed_backward(gy, cache):
            return self._timed(name + " (backward)", backward, gy, cache)
        # still the op's own backward to autograd, which keeps the gradients of minicnn's ops
        # without copying them (autograd._minicnn_op): timing must not add copies to the step
        timed_backward.__module__ = getattr(backward, "__module__", None) or ""
        return self._timed(name, self._original_apply, forward, timed_backward, *inputs, **params)

    def collect(self):
        """Read the CUDA events of the ops so far (call after synchronising)."""
        import cupy
        for name, start, end in self._events:
            self.device[name] += cupy.cuda.get_elapsed_time(start, end) / 1e3
        self._events.clear()

    def __enter__(self):
        self._original_apply = autograd.apply
        functional.apply = autograd.apply = self.apply
        return self

    def __exit__(self, *exc):
        functional.apply = autograd.apply = self._original_apply


def profile(name, batch, device, steps, warmup):
    """{'rows': [(op, calls, host s, device s or None)], 'step': wall s, 'update': host s, ...}
    per step, averaged over ``steps`` steps."""
    import run as bench
    gpu = device == "gpu"
    model, train, _ = bench.minicnn_step(name, batch, "cupy" if gpu else "numpy")

    def synchronize():
        if gpu:
            import cupy
            cupy.cuda.get_current_stream().synchronize()
    for _ in range(warmup):
        train()
    synchronize()
    with OpTimer(gpu) as timer:
        update = model.optimizer.step
        model.optimizer.step = lambda *a, **k: timer._timed("optimizer update", update, *a, **k)
        try:
            begin = time.perf_counter()
            for _ in range(steps):
                train()
            synchronize()
            wall = (time.perf_counter() - begin) / steps
        finally:
            del model.optimizer.step  # the class's method again
        if gpu:
            timer.collect()
    names = sorted(timer.host, key=lambda n: -(timer.device[n] if gpu else timer.host[n]))
    rows = [(n, timer.calls[n] / steps, timer.host[n] / steps, timer.device[n] / steps if gpu else None)
            for n in names]
    return {"model": name, "batch": batch, "device": device, "steps": steps, "step": wall, "rows": rows}


def markdown(result):
    gpu = result["device"] == "gpu"
    step = result["step"]
    lines = [f"# {result['model']}, batch {result['batch']}, {result['device']}: one training step, op by op", "",
             f"Step (wall, averaged over {result['steps']} steps): {1e3 * step:.2f} ms.", "",
             "| op | calls per step | host ms | " + ("device ms | device share of the step |" if gpu else "share of the step |"),
             "| --- | --- | --- | " + ("--- | --- |" if gpu else "--- |")]
    host_total = device_total = 0.0
    for name, calls, host, dev in result["rows"]:
        host_total += host
        if gpu:
            device_total += dev
            lines.append(f"| {name} | {calls:g} | {1e3 * host:.3f} | {1e3 * dev:.3f} | {100 * dev / step:.1f}% |")
        else:
            lines.append(f"| {name} | {calls:g} | {1e3 * host:.3f} | {100 * host / step:.1f}% |")
    rest = step - host_total
    lines.append(f"| the rest (Tensor arithmetic, graph walk, Python) | | {1e3 * rest:.3f} | " + ("| |" if gpu else
                                                                                                 f"{100 * rest / step:.1f}% |"))
    lines.append("")
    lines.append(f"Ops' host time: {1e3 * host_total:.2f} ms of the {1e3 * step:.2f} ms step.")
    if gpu:
        lines.append(f"Ops' device time: {1e3 * device_total:.2f} ms: the GPU is busy "
                     f"{100 * device_total / step:.0f}% of the step. Far below 100% with host times "
                     "near the step: launch-bound (see the docstring).")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--model", default="seed004_base")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", default=None, help="also write the table to this .md file")
    args = p.parse_args(argv)
    if args.device == "gpu" and backend.gpu_unavailable_reason() is not None:
        p.error(f"--device gpu: {backend.gpu_unavailable_reason()}")
    text = markdown(profile(args.model, args.batch, args.device, args.steps, args.warmup))
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
