"""Where arrays live: NumPy on the CPU or CuPy on an NVIDIA GPU.

This is the only module that imports CuPy. Everything else either asks an array
which module it belongs to (``get_array_module(x)``, the Chainer idiom: stateless
functions follow their inputs) or asks for the module of the current device
(``xp()``, used when creating fresh arrays such as parameters).

Moving data between host and device is always explicit (``to_device``,
``to_numpy``): mixing a NumPy and a CuPy array in one operation raises instead of
silently copying.
"""
import contextlib
import ctypes
import os
import sys

import numpy

DEFAULT_DTYPE = numpy.float32
_DEVICES = ("cpu", "gpu")
_current_device = "cpu"

try:  # CuPy is optional; remember why it is missing to say so later.
    import cupy as _cupy
    _cupy_import_error = None
except Exception as error:  # ImportError, or a broken CUDA install
    _cupy = None
    _cupy_import_error = error


def gpu_unavailable_reason():
    """None if a GPU can be used, otherwise a sentence that says what is missing."""
    if _cupy is None:
        return (f"CuPy is not installed or failed to import ({_cupy_import_error}); "
                "install it with `pip install -e .[gpu]` or `pip install cupy-cuda12x` "
                "(pick the wheel matching your CUDA version)")
    try:
        count = _cupy.cuda.runtime.getDeviceCount()
    except Exception as error:
        return f"CuPy is installed but cannot reach a CUDA GPU ({error})"
    if count == 0:
        return "CuPy is installed but no CUDA GPU is visible"
    return None


def gpu_available():
    return gpu_unavailable_reason() is None


def _check_name(name):
    if name not in _DEVICES:
        raise ValueError(f"device must be 'cpu' or 'gpu', got {name!r}")
    if name == "gpu":
        reason = gpu_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"cannot use device 'gpu': {reason}")


def resolve_device(name):
    """'cpu' or 'gpu' as given; 'auto': the GPU when CuPy sees one, else the CPU.
    Returns (device, a sentence saying why, for the examples to print)."""
    if name != "auto":
        _check_name(name)
        return name, f"device: {name}"
    reason = gpu_unavailable_reason()
    if reason is None:
        props = _cupy.cuda.runtime.getDeviceProperties(_cupy.cuda.Device().id)
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return "gpu", f"device: gpu ({gpu}; --device auto)"
    return "cpu", f"device: cpu (--device auto, and no GPU: {reason})"


def set_device(name):
    """Make 'cpu' (NumPy) or 'gpu' (CuPy) the device new arrays are created on."""
    global _current_device
    _check_name(name)
    _current_device = name


def get_device():
    return _current_device


@contextlib.contextmanager
def device(name):
    """``with minicnn.device('gpu'): ...`` runs the block on that device."""
    global _current_device
    _check_name(name)
    previous, _current_device = _current_device, name
    try:
        yield
    finally:
        _current_device = previous


def xp():
    """The array module (numpy or cupy) of the current device."""
    return _cupy if _current_device == "gpu" else numpy


# --- TF32: float32 matrix products on the GPU's tensor cores ----------------------------
def set_tf32(enabled):
    """Let the GPU's float32 matrix products (the GEMMs of every convolution and dense
    layer) run on its tensor cores in TF32: each input rounded to 10 mantissa bits, the sums
    kept in float32; several times float32's speed on an A100 or H100. TensorFlow (so Keras)
    does this by default on those GPUs, and PyTorch for its cuDNN convolutions; CuPy does
    not unless asked, and minicnn's tests leave it off so that CPU and GPU agree to float32
    rounding. The examples turn it on for the GPU (``--tf32 off`` to keep full float32).
    No effect on the CPU."""
    os.environ["CUPY_TF32"] = "1" if enabled else "0"  # what CuPy reads at its first float32 product
    # ...and after one: set the compute type directly, as CuPy's own tests do. Only with a GPU to
    # use: CuPy asks the CUDA runtime here, which raises where CuPy is installed without a GPU.
    if _cupy is not None and gpu_unavailable_reason() is None:
        try:
            from cupy._core import _routines_linalg as linalg
            mode = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
        except (ImportError, AttributeError):  # another CuPy layout: the variable alone must do
            return
        linalg.set_compute_type(numpy.float32, mode)


def tf32_enabled():
    """Whether set_tf32(True) (or CUPY_TF32=1 in the environment) asked for TF32."""
    return os.environ.get("CUPY_TF32", "0").strip() not in ("", "0")


# --- fast kernels or the plain reference ----------------------------------------------
# Conv, pooling and the fused activations have a plain reference implementation (im2col,
# one loop over window taps) that is the one to read first, and faster versions for each
# device (minicnn/functions/*_cpu.py, fast_gpu.py) that compute the same numbers. The
# fast ones are on by default; tests and teaching switch them off to compare.
_fast_kernels = True


def fast_kernels_enabled():
    return _fast_kernels


@contextlib.contextmanager
def fast_kernels(enabled=True):
    """``with minicnn.backend.fast_kernels(False): ...`` runs the block on the reference code."""
    global _fast_kernels
    previous, _fast_kernels = _fast_kernels, bool(enabled)
    try:
        yield
    finally:
        _fast_kernels = previous


def keep_freed_memory():
    """Ask glibc's malloc to keep freed large blocks for reuse instead of returning them.

    A training step allocates the same large temporaries (im2col columns, gradients) over
    and over. By default glibc gives every block over 32 MiB back to the OS when it is
    freed, so the next step's identical array is page-faulted in again, a page at a time:
    on the 2-core test machine that was 15-20% of a step. Raising the thresholds makes the
    allocator reuse the memory, as PyTorch's caching allocators do on purpose. The cost is
    that the process keeps its peak memory. Set MINICNN_KEEP_FREED_MEMORY=0 to opt out.
    """
    if not sys.platform.startswith("linux") or os.environ.get("MINICNN_KEEP_FREED_MEMORY") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): nothing to tune
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1))


keep_freed_memory()


def accurate_sum(a, axis=None, keepdims=False):
    """a.sum(axis), but a float16 array is summed in float32 and the sum rounded once to
    float16 (as PyTorch and CuPy's kernels do): NumPy adds float16 in float16, where from
    2048 on adding 1 changes nothing, so a bias gradient over a batch's 4096 pixels came
    out 2% low. Other dtypes are summed as they are."""
    if a.dtype == numpy.float16:
        return a.sum(axis=axis, keepdims=keepdims, dtype=numpy.float32).astype(numpy.float16)
    return a.sum(axis=axis, keepdims=keepdims)


def matmul(a, b, out=None):
    """a @ b (into ``out`` if given). NumPy multiplies float16 matrices without BLAS, about
    50x slower than float32, although it adds the products in float32 anyway; so float16
    on the CPU goes through float32 BLAS and is rounded once to float16: the same numbers
    within one float16 rounding (the order of the float32 sums differs), as cuBLAS gives
    CuPy's float16 products. Every other case is plain ``@``."""
    if a.dtype == numpy.float16 and isinstance(a, numpy.ndarray):
        product = numpy.matmul(a.astype(numpy.float32), b.astype(numpy.float32))
        if out is None:
            return product.astype(numpy.float16)
        out[...] = product
        return out
    if out is None:
        return a @ b
    return get_array_module(a).matmul(a, b, out=out)


def get_array_module(*arrays):
    """numpy or cupy, whichever the given arrays belong to."""
    if _cupy is not None:
        return _cupy.get_array_module(*arrays)
    return numpy


def is_array(obj):
    """True for a NumPy or CuPy ndarray (not for Python numbers or lists)."""
    return isinstance(obj, numpy.ndarray) or is_gpu_array(obj)


def is_gpu_array(array):
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def device_of(array):
    return "gpu" if is_gpu_array(array) else "cpu"


def to_device(array, name=None, dtype=None):
    """Explicit copy of ``array`` onto device ``name`` (default: the current one)."""
    name = name or _current_device
    _check_name(name)
    if name == "gpu":
        return _cupy.asarray(array, dtype=dtype)
    if is_gpu_array(array):
        array = array.get()
    return numpy.asarray(array, dtype=dtype)


def to_numpy(array):
    """Explicit copy to the host (a no-op for NumPy arrays)."""
    return array.get() if is_gpu_array(array) else numpy.asarray(array)


def default_rng(seed=None, module=None):
    """A random Generator for ``module`` (numpy or cupy); both have ``random(shape, dtype)``."""
    module = module or xp()
    return module.random.default_rng(seed)


def synchronize():
    """Wait for queued GPU work (a no-op on the CPU); needed for honest timing."""
    if _cupy is not None and _current_device == "gpu":
        _cupy.cuda.get_current_stream().synchronize()
