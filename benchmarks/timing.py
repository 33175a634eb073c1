"""How benchmarks/run.py times things, measures memory and names the machine.

Rules (the same for every backend, so ratios taken in one run are fair):
  * the first call is timed on its own and reported as ``first_s`` (on a GPU it pays for
    kernel compilation and the memory pool's first allocations), then excluded;
  * on a GPU the timed region is bracketed by CUDA events and the event is waited on,
    so queued work is counted; on a CPU, time.perf_counter;
  * the figure reported is the median over the repeats.
"""
import os
import platform
import statistics
import time

import numpy


class Backend:
    """One engine on one device: 'numpy', 'cupy', 'torch-cpu' or 'torch-cuda'."""

    def __init__(self, name):
        self.name = name
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
        first = self._timed(fn)
        times = []
        while len(times) < repeats or (sum(times) < min_time and len(times) < 50):
            times.append(self._timed(fn))
        return {"first_s": first, "median_s": statistics.median(times), "repeats": len(times)}

    # --- memory -------------------------------------------------------------------------
    def reset_peak_memory(self):
        if self.name == "cupy":
            self.cupy.get_default_memory_pool().free_all_blocks()
            self._peak = 0
        elif self.name == "torch-cuda":
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
        else:
            _reset_rss_peak()

    def sample_memory(self):
        """CuPy's pool has no peak counter: call this where the peak is (after the forward)."""
        if self.name == "cupy":
            self._peak = max(self._peak, self.cupy.get_default_memory_pool().used_bytes())

    def peak_memory(self):
        """Bytes: GPU memory in use at the peak (CuPy pool used_bytes at the sampled points,
        PyTorch max_memory_allocated) or, on a CPU, the process's peak resident set."""
        if self.name == "cupy":
            return self._peak
        if self.name == "torch-cuda":
            return self.torch.cuda.max_memory_allocated()
        return _rss_peak()


def _reset_rss_peak():
    """Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _rss_peak():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
