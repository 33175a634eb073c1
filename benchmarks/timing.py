"""How benchmarks/run.py times things, measures memory and names the machine.

Rules (the same for every backend, so ratios taken in one run are fair):
  * the first call is timed on its own and reported as ``first_s`` (on a GPU it pays for
    kernel compilation and the memory pool's first allocations), then excluded;
  * on a GPU the timed region is bracketed by CUDA events and the event is waited on,
    so queued work is counted; on a CPU, time.perf_counter;
  * the figure reported is the median over the repeats.
"""
import contextlib
import os
import platform
import statistics
import time
import tracemalloc

import numpy


class Backend:
    """One engine on one device: 'numpy', 'cupy', 'torch-cpu' or 'torch-cuda'.

    threads: for NumPy, the cores it may use (BLAS's threads and minicnn's own, held for
    every timed or measured call); None lets it use all of them."""

    def __init__(self, name, threads=None):
        self.name = name
        self.threads = threads if name.startswith("numpy") else None
        self.gpu = name in ("cupy", "torch-cuda")
        if name == "cupy":
            import cupy
            self.cupy = cupy
        if name.startswith("torch"):
            import torch
            self.torch = torch

    def synchronize(self):
        if self.name == "cupy":
            self.cupy.cuda.get_current_stream().synchronize()
        elif self.name == "torch-cuda":
            self.torch.cuda.synchronize()

    @contextlib.contextmanager
    def held(self):
        """NumPy held to ``self.threads`` cores while the block runs (nothing otherwise)."""
        if self.threads is None:
            yield
            return
        from threadpoolctl import threadpool_limits
        from minicnn.distributed import threads
        saved = threads.set_threads(self.threads)  # how many chunks run at once
        try:
            with threadpool_limits(limits=self.threads):
                yield
        finally:
            threads.set_threads(saved)

    def _timed(self, fn):
        """Seconds one call of fn takes, GPU work included."""
        if self.name == "cupy":
            start, end = self.cupy.cuda.Event(), self.cupy.cuda.Event()
            start.record()
            fn()
            end.record()
            end.synchronize()
            return self.cupy.cuda.get_elapsed_time(start, end) / 1000
        if self.name == "torch-cuda":
            start = self.torch.cuda.Event(enable_timing=True)
            end = self.torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000
        begin = time.perf_counter()
        fn()
        return time.perf_counter() - begin

    def measure(self, fn, repeats=5, min_time=0.0):
        """{'first_s', 'median_s', 'repeats'}: the first call alone, then the median of
        ``repeats`` more (more, up to 50, while their total is under ``min_time``)."""
        self.synchronize()
        with self.held():
            first = self._timed(fn)
            times = []
            while len(times) < repeats or (sum(times) < min_time and len(times) < 50):
                times.append(self._timed(fn))
        return {"first_s": first, "median_s": statistics.median(times), "repeats": len(times)}

    # --- memory -------------------------------------------------------------------------
    def peak_memory(self, fn):
        """Bytes of array memory at the peak of one call of fn, measured on a call of its
        own (the trackers would slow the timed ones), or None where it cannot be measured.

        NumPy: tracemalloc, which NumPy reports every array buffer to. CuPy: a memory hook
        adding up the pool's allocations and frees. PyTorch CUDA: max_memory_allocated.
        PyTorch CPU: None (its allocator reports to neither)."""
        if self.name.startswith("numpy"):
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            with self.held():
                fn()
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            return peak
        if self.name == "cupy":
            self.synchronize()
            with _CupyPeak(self.cupy) as hook:
                fn()
                self.synchronize()
            return hook.peak
        if self.name == "torch-cuda":
            self.synchronize()
            base = self.torch.cuda.memory_allocated()
            self.torch.cuda.reset_peak_memory_stats()
            fn()
            self.synchronize()
            return self.torch.cuda.max_memory_allocated() - base
        return None


class _CupyPeak:
    """Peak of (bytes allocated - bytes freed) through CuPy's memory pool while active."""

    def __init__(self, cupy):
        hook = self

        class Hook(cupy.cuda.MemoryHook):
            name = "minicnn_peak"

            def malloc_postprocess(self, **info):  # CuPy passes device_id, mem_size, ... by name
                hook.current += info["mem_size"]
                hook.peak = max(hook.peak, hook.current)

            def free_postprocess(self, **info):
                hook.current -= info["mem_size"]
        self.current = self.peak = 0
        self.hook = Hook()

    def __enter__(self):
        self.hook.__enter__()
        return self

    def __exit__(self, *exc):
        self.hook.__exit__(*exc)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device):
    """What the results were measured on: CPU, cores, GPU, library versions."""
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": numpy.__version__, "blas": _blas_name()}
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    if device == "gpu":
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["gpu_memory_gib"] = round(props["totalGlobalMem"] / 2 ** 30, 1)
        info["cupy"] = cupy.__version__
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    return info


def _blas_name():
    try:
        config = numpy.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        return "unknown"


def slug(info, device):
    """A file name for the machine: 'cpu-<cpu model>-<N>cores' or 'gpu-<gpu name>'."""
    text = f"gpu-{info['gpu']}" if device == "gpu" else f"cpu-{info['cpu']}-{info['cores']}cores"
    keep = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    while "--" in keep:
        keep = keep.replace("--", "-")
    return keep.strip("-")


def sgemm_gflops(xp, size=2048, repeats=5, backend=None):
    """The machine's float32 GEMM speed (GFLOP/s) on a size^3 product: the 'GEMM floor' unit."""
    rng = numpy.random.default_rng(0)
    a = xp.asarray(rng.standard_normal((size, size), dtype=numpy.float32))
    b = xp.asarray(rng.standard_normal((size, size), dtype=numpy.float32))
    timing = (backend or Backend("numpy")).measure(lambda: a @ b, repeats)
    return 2 * size ** 3 / timing["median_s"] / 1e9


def write_report(out, slug, report, markdown_text):
    """benchmarks/results/<slug>.json (everything measured) and .md (the tables); returns
    the path without its extension."""
    import json
    os.makedirs(out, exist_ok=True)
    base = os.path.join(out, slug)
    with open(base + ".json", "w") as f:
        json.dump(report, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(markdown_text)
    return base
