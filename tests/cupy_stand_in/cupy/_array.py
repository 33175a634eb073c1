"""The stand-in's array: a NumPy array behind a type of its own, which refuses every implicit
crossing of the host/device line as CuPy's does; the host-wait detector; what a run records."""
import collections
import operator
import os
import threading
import weakref

import numpy

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

# --- device operations: what a step costs a GPU that waits for Python -------------------------
# A small step on a GPU is bound by launches: each costs the host microseconds, however little
# the kernel does. Every operation that would put work on a real GPU's stream (a kernel, a
# cuBLAS call, a memset, a copy within the device) adds one to launches[its name]; views,
# reshapes and allocations add none; copies between host and device count under "copy
# host->device" and "copy device->host". About one per operation: CuPy's own count may differ
# by a kernel here and there (a reduction done in two passes). benchmarks/launches.py reads it.
launches = collections.Counter()

_ALLOCATE_ONLY = {"empty", "empty_like"}  # no kernel: memory from the pool, left as it is


def _launched(name):
    launches[name] += 1


def _owns_new_data(value, inputs):
    """Whether a NumPy result is new memory (a copy, a computed array), not an input or a view;
    a NumPy scalar is a reduction's result (CuPy's is a 0-d array a kernel wrote)."""
    return isinstance(value, numpy.generic) or (
        isinstance(value, numpy.ndarray) and value.base is None and not any(value is a for a in inputs))


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
    name, inputs = where.rstrip("()"), (*args, getattr(function, "__self__", None))  # a method's array too
    if name.rsplit(".", 1)[-1] not in _ALLOCATE_ONLY and (
            kwargs.get("out") is not None
            or any(_owns_new_data(r, inputs) for r in (result if isinstance(result, tuple) else (result,)))):
        _launched(name)
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
        _launched("copy device->host")
        if out is not None:
            out[...] = self._host
            return out
        return numpy.array(self._host, order=order)

    def set(self, array, stream=None):
        if not isinstance(array, numpy.ndarray):
            raise TypeError(f"set() takes a numpy.ndarray, not {type(array)}")
        _launched("copy host->device")
        self._host[...] = array

    def item(self, *args):
        _synchronizes("ndarray.item()")
        _launched("copy device->host")
        return self._host.item(*args)

    def tolist(self):
        _synchronizes("ndarray.tolist()")
        _launched("copy device->host")
        return self._host.tolist()

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    # NumPy functions and ufuncs called on device arrays run on the device (CuPy implements both)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"numpy.{ufunc.__name__}"
        _reach("cupy", ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}")
        out = kwargs.get("out")
        _launched(where if method == "__call__" else f"{where}.{method}")
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
        result = self._host[key]
        if isinstance(result, numpy.ndarray) and not numpy.may_share_memory(result, self._host):
            _launched("indexing (a gather)")  # an integer array's index: a copy (CuPy: a view)
        return _wrap(result)

    def __setitem__(self, key, value):
        key = _unwrap(key, "an index")
        if _has_boolean_mask(key):
            _synchronizes("indexing with a boolean mask")
        _launched("assignment into an array")
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
        _launched(f"operator {op.__name__}")
        return _wrap(_promoted(op(self._host, other), (self._host, other), f"operator {op.__name__}"))

    def reflected(self, other):
        other = _unwrap(other, f"operator {op.__name__}")
        _launched(f"operator {op.__name__}")
        return _wrap(_promoted(op(other, self._host), (other, self._host), f"operator {op.__name__}"))
    return forward, reflected


def _in_place(op):
    def method(self, other):
        _launched(f"operator {op.__name__}")
        op(self._host, _unwrap(other, f"operator {op.__name__}"))  # writes into self._host
        return self
    return method


def _host_value(convert):
    """float(), int(), complex(), bool() of an array: a host wait for its value, as in CuPy."""
    def method(self):
        _synchronizes(f"{convert.__name__}() of an array")
        _launched("copy device->host")
        return convert(self._host)
    return method


for _convert in (float, int, complex, bool):
    setattr(ndarray, f"__{_convert.__name__}__", _host_value(_convert))
def _matmul(a, b, out=None, **kwargs):
    """numpy.matmul; float16 as cuBLAS multiplies it for CuPy, in float32 and rounded once to
    float16 (NumPy's own float16 product gives the same numbers to a rounding, 50x slower)."""
    if getattr(a, "dtype", None) == numpy.float16 and getattr(b, "dtype", None) == numpy.float16 and not kwargs:
        product = numpy.matmul(a.astype(numpy.float32), b.astype(numpy.float32))
        if out is None:
            return product.astype(numpy.float16)
        out[...] = product
        return out
    return numpy.matmul(a, b, out=out, **kwargs)


_matmul.__name__ = "matmul"
for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift"):
    _op = _matmul if _name == "matmul" else getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    _forward, _reflected = _binary(_op)
    setattr(ndarray, f"__{_name}__", _forward)
    setattr(ndarray, f"__r{_name}__", _reflected)
    setattr(ndarray, f"__i{_name}__", _in_place(getattr(operator, f"i{_name}")))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(getattr(operator, _name))[0])
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", (lambda op: lambda self: (_launched(f"operator {op.__name__}"),
                                                             _wrap(op(self._host)))[1])(getattr(operator, _name)))


# --- memory hooks (cupy.cuda.MemoryHook): told of each array the stand-in allocates -------------
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
