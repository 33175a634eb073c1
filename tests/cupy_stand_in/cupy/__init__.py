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
"""
import contextlib
import ctypes
import hashlib
import operator
import os
import subprocess
import sys
import tempfile
import threading
import time
import types
import weakref

import numpy

__version__ = "0.0+cpu-stand-in"
STAND_IN = True  # how the tests and gpu_check tell this from the real CuPy

# --- which of NumPy's names the GPU path reaches through the stand-in ---------------------------
# CuPy has most of NumPy's functions and methods, not all. With CUPY_STAND_IN_RECORD=FILE set,
# each name reached through NumPy (cupy.<name>, array.<name>, a NumPy function or ufunc called on
# device arrays), each such call's count of positional arguments and its keywords, and each
# kernel call are appended to FILE at exit; compare_with_cupy.py and compile_with_cupy.py check
# them against a real CuPy.
_reached = set()


def _reach(kind, name):
    if _record_file:
        _reached.add(f"{kind} {name}")


def _write_reached():
    with open(_record_file, "a") as f:
        f.writelines(f"{entry}\n" for entry in sorted(_reached))


_record_file = os.environ.get("CUPY_STAND_IN_RECORD")
if _record_file:
    import atexit
    atexit.register(_write_reached)

# --- host waits, for cupyx.allow_synchronize -------------------------------------------------
_thread = threading.local()


class DeviceSynchronized(RuntimeError):
    """Raised where the device would be waited for while cupyx.allow_synchronize(False)."""


def _synchronizes(where):
    if getattr(_thread, "forbid_sync", False):
        raise DeviceSynchronized(f"device synchronization detected: {where}")


# --- the array ----------------------------------------------------------------------------
_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")


def _from_host(host):
    array = object.__new__(ndarray)
    array._host = host
    if host.base is None and _memory_hooks():
        _announce_malloc(host)
    return array


def _unwrap(value, where):
    """The NumPy array behind a stand-in array; NumPy arrays refused, as CuPy refuses them."""
    if isinstance(value, ndarray):
        return value._host
    if isinstance(value, numpy.ndarray):
        raise TypeError(f"Unsupported type {type(value)} in {where}: a NumPy (host) array where a "
                        "CuPy (device) array is needed; copy it explicitly with cupy.asarray")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, where) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, numpy.ndarray):
        return _from_host(value)
    if isinstance(value, numpy.generic):  # CuPy's reductions return 0-d arrays
        return _from_host(numpy.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


# functions whose result's size depends on the data: CuPy must wait for the device to know it
_SIZED_BY_DATA = {"nonzero", "flatnonzero", "argwhere", "unique", "compress", "extract"}


def _call(function, where, args, kwargs):
    if where.rstrip("()").rsplit(".", 1)[-1] in _SIZED_BY_DATA:
        _synchronizes(f"{where} (its result's size)")
    _reach("call", f"{where.rstrip('()')}|{len(args)}|{','.join(sorted(kwargs))}")  # for the arity check
    args = _unwrap(args, where)
    result = function(*args, **_unwrap(kwargs, where))
    if "dtype" not in kwargs:  # float64 asked for is not a silent promotion
        result = _promoted(result, args, where)
    return _wrap(result)


class ndarray:
    """A device array: a NumPy array only this module touches."""
    __slots__ = ("_host", "__weakref__")
    __hash__ = None

    def __init__(self, shape, dtype=float, order="C"):
        self._host = numpy.empty(shape, dtype, order=order)
        if _memory_hooks():
            _announce_malloc(self._host)

    # explicit copies and host waits
    def get(self, stream=None, order="C", out=None):
        _synchronizes("ndarray.get()")
        if out is not None:
            out[...] = self._host
            return out
        return numpy.array(self._host, order=order)

    def set(self, array, stream=None):
        if not isinstance(array, numpy.ndarray):
            raise TypeError(f"set() takes a numpy.ndarray, not {type(array)}")
        self._host[...] = array

    def item(self, *args):
        _synchronizes("ndarray.item()")
        return self._host.item(*args)

    def tolist(self):
        _synchronizes("ndarray.tolist()")
        return self._host.tolist()

    def __float__(self):
        _synchronizes("float() of an array")
        return float(self._host)

    def __int__(self):
        _synchronizes("int() of an array")
        return int(self._host)

    def __complex__(self):
        _synchronizes("complex() of an array")
        return complex(self._host)

    def __bool__(self):
        _synchronizes("bool() of an array")
        return bool(self._host)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    # NumPy functions and ufuncs called on device arrays run on the device (CuPy implements both)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"numpy.{ufunc.__name__}"
        _reach("cupy", ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}")
        out = kwargs.get("out")
        inputs = _unwrap(inputs, where)
        result = getattr(ufunc, method)(*inputs, **_unwrap(kwargs, where))
        if "dtype" not in kwargs:  # float64 asked for is not a silent promotion
            result = _promoted(result, inputs, where)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, function, types_, args, kwargs):
        _reach("cupy", function.__name__)
        return _call(function, f"numpy.{function.__name__}", args, kwargs)

    # everything else: NumPy's attribute, results wrapped
    def __getattr__(self, name):
        if name.startswith("__") or name == "_host":
            raise AttributeError(name)
        value = getattr(self._host, name)
        _reach("ndarray", name)
        if callable(value):
            return lambda *args, **kwargs: _call(value, f"ndarray.{name}()", args, kwargs)
        return _wrap(value)

    def __getitem__(self, key):
        key = _unwrap(key, "an index")
        if _has_boolean_mask(key):
            _synchronizes("indexing with a boolean mask (the result's size)")
        return _wrap(self._host[key])

    def __setitem__(self, key, value):
        key = _unwrap(key, "an index")
        if _has_boolean_mask(key):
            _synchronizes("indexing with a boolean mask")
        self._host[key] = _unwrap(value, "an assignment")

    def __len__(self):
        return len(self._host)

    def __iter__(self):
        return (_wrap(row) for row in self._host)

    def __repr__(self):
        return repr(self._host).replace("array(", "stand_in_array(", 1)

    def __reduce__(self):  # pickling copies to the host and back, as CuPy's does
        return (_rebuild, (numpy.array(self._host),))

    @property
    def T(self):
        return _from_host(self._host.T)


def _rebuild(host):
    return _from_host(host)


def _has_boolean_mask(key):
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, numpy.ndarray) and k.dtype == numpy.bool_ for k in keys)


def _promoted(result, operands, where):
    """With CUPY_STAND_IN_FLOAT64=raise: a float64 result from float32 arrays and no float64
    array (a float64 NumPy scalar did it) is an error: the silent promotion minicnn rules out."""
    if _float64_rule and isinstance(result, numpy.ndarray) and result.dtype == numpy.float64:
        dtypes = [o.dtype for o in operands if isinstance(o, numpy.ndarray)]
        if numpy.float32 in dtypes and numpy.float64 not in dtypes:
            raise TypeError(f"{where}: float32 arrays promoted to float64 by "
                            f"{[type(o).__name__ for o in operands if not isinstance(o, numpy.ndarray)]}")
    return result


_float64_rule = os.environ.get("CUPY_STAND_IN_FLOAT64") == "raise"


def _binary(op):
    def forward(self, other):
        other = _unwrap(other, f"operator {op.__name__}")
        return _wrap(_promoted(op(self._host, other), (self._host, other), f"operator {op.__name__}"))

    def reflected(self, other):
        other = _unwrap(other, f"operator {op.__name__}")
        return _wrap(_promoted(op(other, self._host), (other, self._host), f"operator {op.__name__}"))
    return forward, reflected


def _in_place(op):
    def method(self, other):
        op(self._host, _unwrap(other, f"operator {op.__name__}"))  # writes into self._host
        return self
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift"):
    _op = getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    _forward, _reflected = _binary(_op)
    setattr(ndarray, f"__{_name}__", _forward)
    setattr(ndarray, f"__r{_name}__", _reflected)
    setattr(ndarray, f"__i{_name}__", _in_place(getattr(operator, f"i{_name}")))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(getattr(operator, _name))[0])
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", (lambda op: lambda self: _wrap(op(self._host)))(getattr(operator, _name)))


# --- creating arrays and moving them -----------------------------------------------------------
def asarray(a, dtype=None, order=None, *, blocking=False):
    """Host data (a NumPy array, a list, a number) copied to the device; a device array as is."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return _from_host(numpy.array(_unwrap_host_side(a), dtype=dtype, order=order or "K"))


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(obj, ndarray):
        return _from_host(numpy.array(obj._host, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
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
    return _from_host(numpy.ascontiguousarray(a._host, dtype=dtype))


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


def __getattr__(name):  # every other cupy.<name>: NumPy's, on stand-in arrays
    if name.startswith("__") or not hasattr(numpy, name):
        raise AttributeError(f"module 'cupy' (the CPU stand-in) has no attribute {name!r}")
    return _expose(getattr(numpy, name), f"cupy.{name}")


# --- ElementwiseKernel: the body compiled as C++ ----------------------------------------------------
_C_TYPES = {"float32": ("float", ctypes.c_float), "float64": ("double", ctypes.c_double),
            "int32": ("int", ctypes.c_int), "int64": ("long long", ctypes.c_longlong),
            "bool": ("bool", ctypes.c_bool), "uint8": ("unsigned char", ctypes.c_ubyte),
            "int8": ("signed char", ctypes.c_byte)}
_build_lock = threading.Lock()
_libraries = {}


def _parse(params, outputs):
    parsed = []
    for text in params.split(","):
        words = text.split()
        raw = words[0] == "raw"
        type_, name = words[-2], words[-1]
        parsed.append((raw, type_, name, outputs))
    return parsed


class ElementwiseKernel:
    """CuPy's ElementwiseKernel(in_params, out_params, operation, name), run on the CPU."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, **kwargs):
        self.params = _parse(in_params, False) + _parse(out_params, True)
        self.n_in = len(self.params) - len(_parse(out_params, True))
        self.operation, self.name, self.preamble = operation, name, preamble

    def __call__(self, *args, size=None, **kwargs):
        if len(args) not in (self.n_in, len(self.params)):
            raise TypeError(f"{self.name}: wrong number of arguments: {len(args)} given, "
                            f"{self.n_in} or {len(self.params)} expected")
        for value in args:
            _unwrap(value, f"kernel {self.name}")  # NumPy arrays refused here too
        T = self._resolve_T(args)
        shape = self._shape(args, size)
        values, kinds, keep = [], [], []
        outputs = []
        for index, (raw, type_, name, is_out) in enumerate(self.params):
            dtype = numpy.dtype(T if type_ == "T" else type_)
            given = args[index] if index < len(args) else None
            if is_out:
                if raw:
                    raise NotImplementedError(f"{self.name}: raw outputs are not emulated")
                if given is None:
                    given = ndarray(shape, dtype)
                elif given.dtype != dtype or given.shape != shape:
                    raise TypeError(f"{self.name}: output {name} is {given.dtype}{given.shape}, "
                                    f"the kernel makes {dtype}{shape}")
                host = given._host if given._host.flags.c_contiguous else numpy.empty(shape, dtype)
                outputs.append((given, host))
                values.append(host)
                kinds.append("out")
            elif isinstance(given, ndarray):
                if type_ != "T" and given.dtype != dtype:
                    raise TypeError(f"{self.name}: {name} must be {dtype}, got {given.dtype}")
                host = given._host if raw else numpy.broadcast_to(given._host, shape)
                values.append(numpy.ascontiguousarray(host))
                kinds.append("raw" if raw else "in")
            else:
                if raw:
                    raise TypeError(f"{self.name}: raw parameter {name} needs an array, got {type(given)}")
                values.append(dtype.type(given))
                kinds.append("scalar")
            keep.append(dtype)
        if _record_file:
            self._reach(args, shape, keep, kinds)
        function = self._compile(keep, kinds)
        c_args = [v.ctypes.data_as(ctypes.c_void_p) if isinstance(v, numpy.ndarray)
                  else _C_TYPES[d.name][1](v) for v, d in zip(values, keep)]
        function(*c_args, ctypes.c_longlong(int(numpy.prod(shape))))
        for given, host in outputs:
            if host is not given._host:
                given._host[...] = host
        results = [given for given, _ in outputs]
        return results[0] if len(results) == 1 else tuple(results)

    def _reach(self, args, shape, dtypes, kinds):
        """Record this call as CuPy would compile it (compile_with_cupy.py builds it so): each
        argument's kind and dtype, the arrays' dimensions after CuPy's reduce_dims (all
        non-raw arrays C-contiguous and of the loop's shape: one dimension), 32-bit indexing."""
        arrays = [a for a, (raw, _, _, _) in zip(args, self.params) if isinstance(a, ndarray) and not raw]
        flat = all(a.flags.c_contiguous and a.shape == shape for a in arrays)
        parts = []
        for index, (kind, dtype) in enumerate(zip(kinds, dtypes)):
            given = args[index] if index < len(args) else None
            ndim = (given.ndim if kind == "raw" else 1 if flat else len(shape)) if kind != "scalar" else 0
            parts.append(f"{kind}:{dtype.name}:{ndim}")
        small = all(a._host.nbytes < 2 ** 31 for a in args if isinstance(a, ndarray))
        T = next((d.name for (_, t, _, _), d in zip(self.params, dtypes) if t == "T"), "-")
        _reach("kernel", f"{self.name}|{T}|{','.join(parts)}|{int(small)}|{1 if flat else len(shape)}")

    def _resolve_T(self, args):
        found = set()
        for (raw, type_, name, _), value in zip(self.params, args):
            if type_ == "T" and isinstance(value, (ndarray, numpy.generic)):
                found.add(numpy.dtype(value.dtype))
        if len(found) > 1:
            raise TypeError(f"{self.name}: type is mismatched: T bound to {sorted(map(str, found))}")
        if found:
            return found.pop()
        for (_, type_, _, _), value in zip(self.params, args):
            if type_ == "T":
                return numpy.result_type(value)
        return numpy.dtype(numpy.float64)

    def _shape(self, args, size):
        shapes = [value.shape for (raw, _, _, _), value in zip(self.params, args)
                  if not raw and isinstance(value, ndarray)]
        if shapes:
            if size is not None:
                raise ValueError(f"{self.name}: size= is given with array arguments")
            return numpy.broadcast_shapes(*shapes)
        if size is None:
            raise ValueError(f"{self.name}: loop size is undetermined (every argument is raw or a scalar)")
        return (int(size),)

    def _compile(self, dtypes, kinds):
        T = next((d for (_, t, _, _), d in zip(self.params, dtypes) if t == "T"), numpy.dtype("float64"))
        for dtype in dtypes:
            if dtype.name not in _C_TYPES:
                raise NotImplementedError(f"{self.name}: the stand-in compiles no kernel for {dtype}")
        params, binds = [], []
        for (raw, type_, name, _), dtype, kind in zip(self.params, dtypes, kinds):
            ctype = "T" if type_ == "T" else _C_TYPES[dtype.name][0]
            if kind == "raw":
                params.append(f"const {ctype}* {name}")
            elif kind == "scalar":
                params.append(f"const {ctype} {name}")
            elif kind == "in":
                params.append(f"const {ctype}* _in_{name}")
                binds.append(f"const {ctype} {name} = _in_{name}[i];")
            else:
                params.append(f"{ctype}* _out_{name}")
                binds.append(f"{ctype}& {name} = _out_{name}[i];")
        source = (
            "#include <cmath>\n#include <cstddef>\n"
            "using std::erf; using std::exp; using std::log; using std::sqrt; using std::fabs;\n"
            f"typedef {_C_TYPES[T.name][0]} T;\n{self.preamble}\n"
            f'extern "C" void {self.name}({", ".join(params)}, long long _size) {{\n'
            # every i is independent (on a GPU each is a thread of its own): the loop splits over cores
            "  #pragma omp parallel for schedule(static)\n"
            f"  for (ptrdiff_t i = 0; i < _size; ++i) {{\n    {' '.join(binds)}\n{self.operation};\n  }}\n}}\n")  # CuPy adds the ; too
        library = _build(source)
        function = getattr(library, self.name)
        function.restype = None
        return function


def _build(source):
    """Compile a C++ source into a shared library once (cached on disk across processes)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    with _build_lock:
        if digest in _libraries:
            return _libraries[digest]
        folder = os.path.join(tempfile.gettempdir(), f"cupy-stand-in-{os.getuid()}")
        os.makedirs(folder, exist_ok=True)
        library = os.path.join(folder, f"{digest}.so")
        if not os.path.exists(library):
            cpp = os.path.join(folder, f"{digest}.{os.getpid()}.cpp")
            with open(cpp, "w") as f:
                f.write(source)
            partial = f"{library}.{os.getpid()}"
            done = subprocess.run(["g++", "-O2", "-fopenmp", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Werror",
                                   "-o", partial, cpp], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"the stand-in could not compile a kernel:\n{done.stderr}\n{source}")
            os.replace(partial, library)  # atomic: another process never loads half a file
            os.remove(cpp)
        _libraries[digest] = ctypes.CDLL(library)
        return _libraries[digest]


# --- cupy.random --------------------------------------------------------------------------------
class Generator:
    """CuPy's Generator, with the methods of CuPy's own that minicnn could reach for."""

    def __init__(self, seed=None):
        # Not NumPy's stream for the same seed: CuPy's XORWOW draws other numbers.
        entropy = [0x5EED, seed] if isinstance(seed, int) else None
        self._numpy = numpy.random.default_rng(numpy.random.SeedSequence(entropy))

    def random(self, size=None, dtype=numpy.float64, out=None):
        return self._fill(self._numpy.random(size, dtype=dtype), out)

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        return self._fill(self._numpy.standard_normal(size, dtype=dtype), out)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        return _from_host(self._numpy.uniform(low, high, size).astype(dtype, copy=False))

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        return _from_host(numpy.asarray(self._numpy.integers(int(low), None if high is None else int(high),
                                                              size, dtype=dtype, endpoint=endpoint)))

    @staticmethod
    def _fill(host, out):
        host = numpy.asarray(host)
        if out is None:
            return _from_host(host)
        out._host[...] = host
        return out


random = types.ModuleType("cupy.random")
random.Generator = Generator
random.default_rng = lambda seed=None: Generator(seed)

# --- cupy.cuda ------------------------------------------------------------------------------------
cuda = types.ModuleType("cupy.cuda")
runtime = types.ModuleType("cupy.cuda.runtime")
cuda.runtime = runtime
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
cuda.Device, cuda.Stream, cuda.Event = Device, Stream, Event
cuda.get_current_stream = lambda device_id=None: _stream
cuda.get_elapsed_time = get_elapsed_time
cuda.is_available = lambda: True


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


def _memory_hooks():
    return getattr(_thread, "memory_hooks", None)


def _announce_malloc(host):
    size = host.nbytes
    mem_size = -(-size // 512) * 512  # CuPy's pool rounds to 512 bytes
    info = dict(device_id=0, size=size, mem_size=mem_size, mem_ptr=host.ctypes.data, pmem_id=0)
    hooks = list(_memory_hooks())
    for hook in hooks:
        hook.malloc_postprocess(**info)
    weakref.finalize(host, lambda: [hook.free_postprocess(**info) for hook in hooks])


cuda.MemoryHook = MemoryHook


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

for _module in (random, cuda, runtime):
    sys.modules[_module.__name__] = _module
