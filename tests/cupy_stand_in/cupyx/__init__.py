"""The part of cupyx that minicnn reaches, for the CPU stand-in of CuPy (see cupy/__init__.py
beside this folder): ``allow_synchronize`` (the host-wait detector) and ``scipy.special.erf``."""
import contextlib
import sys
import types

import cupy
from cupy import DeviceSynchronized, _thread


@contextlib.contextmanager
def allow_synchronize(allow):
    """allow=False: every host wait inside the block raises DeviceSynchronized."""
    previous = getattr(_thread, "forbid_sync", False)
    _thread.forbid_sync = not allow
    try:
        yield
    finally:
        _thread.forbid_sync = previous


scipy = types.ModuleType("cupyx.scipy")
special = types.ModuleType("cupyx.scipy.special")
scipy.special = special
_erf = cupy.ElementwiseKernel("T x", "T y", "y = erf(x);", "cupyx_stand_in_erf")


def erf(x):
    """CuPy's erf takes float16 too (it computes in float32): so does this one."""
    if x.dtype == "float16":
        return _erf(x.astype("float32")).astype("float16")
    return _erf(x)


special.erf = erf
for _module in (scipy, special):
    sys.modules[_module.__name__] = _module
