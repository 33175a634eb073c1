"""A stand-in for CuPy that runs on the CPU, on NumPy: for rehearsing minicnn's GPU code on a
machine that has no GPU. It is NOT a GPU and proves nothing about speed or CUDA; it runs the
Python half of the GPU path (every ``xp.`` call, every ElementwiseKernel's arguments, every
host/device boundary) so that the first real GPU run does not spend its minutes on those.

Put its folder first on the path (``PYTHONPATH=tests/cupy_stand_in``) and ``import cupy``
gets this module. What it keeps of CuPy, because that is where CPU-only code goes wrong:

* a separate array type. ``cupy.ndarray`` is not a ``numpy.ndarray``; ``numpy.asarray`` of
  one raises TypeError, as CuPy's does ("Implicit conversion to a NumPy array is not
  allowed"); a NumPy array given to a cupy function, a cupy array's operator, a kernel, an
  index or an assignment raises TypeError. Only ``cupy.asarray``/``cupy.array`` (host to
  device) and ``.get()``/``cupy.asnumpy`` (device to host) copy. Stricter than CuPy in one
  place: ``gpu_array[...] = numpy_array`` is refused here (minicnn never copies implicitly).
* reductions and integer indexing return 0-d arrays, not Python or NumPy scalars;
* ``ElementwiseKernel``: the body is compiled as C++ (g++) with ``T`` and every typed
  parameter resolved as CuPy resolves them (T must be the same dtype in every array and
  NumPy scalar bound to it; a Python number takes it), non-raw arguments broadcast to the
  output's shape, outputs allocated when not given, ``i`` the flat element index;
* ``cupy.random.default_rng``: a Generator with only the methods CuPy's has that minicnn
  might call (random, standard_normal, uniform, integers), drawing a stream unlike NumPy's
  for the same seed (as CuPy's is), so no test can lean on equal draws;
* ``cupyx.allow_synchronize(False)`` raises ``cupyx.DeviceSynchronized`` at every host wait
  (``get``, ``float``/``int``/``bool`` of an array, ``item``, boolean-mask indexing, a
  stream's or event's synchronize);
* ``cupy.cuda``: one device, streams and events (timed with the host clock), and a
  MemoryHook that sees each array the stand-in allocates.

And one rule of minicnn's own, with CUPY_STAND_IN_FLOAT64=raise: an operation whose array
operands are float32 (none float64) and whose result is float64, not asked for with dtype=,
raises TypeError (a float64 NumPy scalar promoted it: silent, and slow on a GPU).

What it does not have: cuBLAS's rounding, NVRTC, ``cupy._core``, NCCL, CUDA graphs, TF32,
real memory figures or timings. Anything measured under it measures NumPy.

Where each piece is: _array.py (the array type, its refusals, the host-wait detector, the
float64 rule, what a run records), _kernel.py (ElementwiseKernel), random.py, cuda.py; this
file, the functions that create and move arrays and every other name, lent from NumPy.
"""
import sys
import types

import numpy

from . import cuda, random  # noqa: F401
from ._array import (DeviceSynchronized, _IMPLICIT, _call, _from_host, _launched, _matmul, _reach,  # noqa: F401
                     _thread, ndarray)
from ._array import launches as stand_in_launches  # noqa: F401  (the stand-in's own: see _array.py)
from ._kernel import ElementwiseKernel  # noqa: F401

__version__ = "0.0+cpu-stand-in"
STAND_IN = True  # how the tests and gpu_check tell this from the real CuPy


# --- creating arrays and moving them -----------------------------------------------------------
def asarray(a, dtype=None, order=None, *, blocking=False):
    """Host data (a NumPy array, a list, a number) copied to the device; a device array as is."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    _launched("copy host->device")
    return _from_host(numpy.array(_unwrap_host_side(a), dtype=dtype, order=order or "K"))


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(obj, ndarray):
        _launched("cupy.array (a copy)")
        return _from_host(numpy.array(obj._host, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    _launched("copy host->device")
    return _from_host(numpy.array(_unwrap_host_side(obj), dtype=dtype, order=order, ndmin=ndmin))


def _unwrap_host_side(obj):
    if isinstance(obj, (list, tuple)) and any(isinstance(v, ndarray) for v in obj):
        raise TypeError(_IMPLICIT)  # what CuPy says of a list mixing device arrays into host data
    return obj


def asnumpy(a, stream=None, order="C", out=None):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return numpy.asarray(a, order=order)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else numpy


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)} in ascontiguousarray")
    host = numpy.ascontiguousarray(a._host, dtype=dtype)
    if host is a._host:
        return a  # as CuPy: already contiguous, the same array
    _launched("cupy.ascontiguousarray (a copy)")
    return _from_host(host)


_PASSED_THROUGH = (type, numpy.dtype)


class _Proxy:
    """A NumPy function, ufunc or submodule whose array arguments and results are the stand-in's."""

    def __init__(self, target, where):
        self._target, self._where = target, where

    def __call__(self, *args, **kwargs):
        return _call(self._target, self._where, args, kwargs)

    def __getattr__(self, name):
        return _expose(getattr(self._target, name), f"{self._where}.{name}")


def _expose(value, where):
    _reach("cupy", where.split(".", 1)[1])
    if isinstance(value, _PASSED_THROUGH) or not (callable(value) or isinstance(value, types.ModuleType)):
        return value  # dtypes, scalar types, constants
    return _Proxy(value, where)


def matmul(*args, **kwargs):  # NumPy's, with float16 multiplied as cuBLAS does (_array._matmul)
    _reach("cupy", "matmul")
    return _call(_matmul, "cupy.matmul", args, kwargs)


def __getattr__(name):  # every other cupy.<name>: NumPy's, on stand-in arrays
    if name.startswith("__") or not hasattr(numpy, name):
        raise AttributeError(f"module 'cupy' (the CPU stand-in) has no attribute {name!r}")
    return _expose(getattr(numpy, name), f"cupy.{name}")


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


_pool = _MemoryPool()
get_default_memory_pool = lambda: _pool  # noqa: E731
get_default_pinned_memory_pool = lambda: _pool  # noqa: E731
