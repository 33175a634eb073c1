"""cupy.cuda, stand-in: one device, streams, events timed by the host's clock, a MemoryHook."""
import os
import time
import types

from ._array import _synchronizes, _thread

runtime = types.ModuleType("cupy.cuda.runtime")  # cupy.cuda.runtime.getDeviceCount() and the like
_MEMORY = 16 << 30
runtime.getDeviceCount = lambda: 1
runtime.getDeviceProperties = lambda device: {
    "name": b"CuPy CPU stand-in (NumPy; not a GPU)", "totalGlobalMem": _MEMORY,
    "multiProcessorCount": os.cpu_count(), "major": 0, "minor": 0}
runtime.runtimeGetVersion = lambda: 0
runtime.driverGetVersion = lambda: 0
runtime.deviceSynchronize = lambda: _synchronizes("cupy.cuda.runtime.deviceSynchronize()")


class CUDARuntimeError(RuntimeError):
    pass


runtime.CUDARuntimeError = CUDARuntimeError


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise CUDARuntimeError(f"cudaErrorInvalidDevice: the stand-in has one device, not {self.id}")

    compute_capability = "00"
    mem_info = property(lambda self: (_MEMORY, _MEMORY))

    def use(self):
        pass

    def synchronize(self):
        _synchronizes("Device.synchronize()")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Stream:
    """Work runs at once on the CPU, so a stream is only a name; synchronize() is a host wait."""
    ptr = 0

    def __init__(self, null=False, non_blocking=False, ptds=False):
        pass

    def synchronize(self):
        _synchronizes("Stream.synchronize()")

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Event:
    """Timed with the host's clock: work is done when its call returns."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        _synchronizes("Event.synchronize()")

    done = property(lambda self: True)


def get_elapsed_time(start, end):
    """Milliseconds between two recorded events."""
    _synchronizes("cupy.cuda.get_elapsed_time()")
    return (end.time - start.time) * 1e3


_stream = Stream()
Stream.null = _stream


def get_current_stream(device_id=None):
    return _stream


def is_available():
    return True


class MemoryHook:
    """Called for each array the stand-in allocates and, when NumPy frees it, for its release."""
    name = "MemoryHook"

    def __enter__(self):
        _thread.__dict__.setdefault("memory_hooks", []).append(self)
        return self

    def __exit__(self, *exc):
        _thread.memory_hooks.remove(self)
        return False

    def malloc_postprocess(self, **info):
        pass

    def free_postprocess(self, **info):
        pass


