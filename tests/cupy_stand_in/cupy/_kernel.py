"""The stand-in's ElementwiseKernel: the body compiled as C++ (g++, OpenMP), with CuPy's rules
for T, broadcasting and outputs."""
import ctypes
import hashlib
import os
import subprocess
import tempfile
import threading

import numpy

from . import _array
from ._array import _reach, _unwrap, ndarray

_C_TYPES = {"float16": ("float16", ctypes.c_uint16),  # scalars passed as their bits (see _FLOAT16)
            "float32": ("float", ctypes.c_float), "float64": ("double", ctypes.c_double),
            "int32": ("int", ctypes.c_int), "int64": ("long long", ctypes.c_longlong),
            "bool": ("bool", ctypes.c_bool), "uint8": ("unsigned char", ctypes.c_ubyte),
            "int8": ("signed char", ctypes.c_byte)}
# CuPy's float16 (cupy/_core/include/cupy/float16.cuh) in C++ on the CPU: a 2-byte IEEE half
# that converts to float implicitly and is made from a float implicitly (from int, double or
# bool only explicitly), so arithmetic on it is float arithmetic rounded to half on every
# store: the same conversions, hence the same overloads and roundings, as CuPy's class.
# _Float16 (GCC 12 on x86-64) holds the bits. A float16 scalar argument crosses ctypes as its
# 16 bits (a struct holding a _Float16 would travel in a vector register, not as an integer).
_FLOAT16 = """
struct float16 {
  _Float16 data_;
  float16() = default;
  float16(float v) : data_((_Float16)v) {}
  explicit float16(double v) : data_((_Float16)(float)v) {}
  explicit float16(int v) : data_((_Float16)(float)v) {}
  explicit float16(unsigned int v) : data_((_Float16)(float)v) {}
  explicit float16(long long v) : data_((_Float16)(float)v) {}
  explicit float16(bool v) : data_((_Float16)(float)v) {}
  operator float() const { return (float)data_; }
  float16& operator=(const float16&) = default;
  template <typename U> float16& operator=(const U& rhs) { *this = static_cast<float16>(rhs); return *this; }
  template <typename U> float16& operator+=(const U& rhs) { *this = *this + rhs; return *this; }
  template <typename U> float16& operator-=(const U& rhs) { *this = *this - rhs; return *this; }
  template <typename U> float16& operator*=(const U& rhs) { *this = *this * rhs; return *this; }
  template <typename U> float16& operator/=(const U& rhs) { *this = *this / rhs; return *this; }
  static float16 from_bits(unsigned short bits) { float16 h; __builtin_memcpy(&h.data_, &bits, 2); return h; }
};
"""
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
            if is_out and raw:  # an array the body indexes and writes, as CuPy: it must be given
                if not isinstance(given, ndarray):
                    raise ValueError(f"{self.name}: raw output {name} must be given as an array")
                if type_ != "T" and given.dtype != dtype:
                    raise TypeError(f"{self.name}: {name} must be {dtype}, got {given.dtype}")
                host = given._host if given._host.flags.c_contiguous else numpy.ascontiguousarray(given._host)
                outputs.append((given, host))
                values.append(host)
                kinds.append("rawout")
            elif is_out:
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
        if _array._record_file:
            self._reach(args, shape, keep, kinds)
        function = self._compile(keep, kinds)
        _array._launched(f"kernel {self.name}")
        c_args = [v.ctypes.data_as(ctypes.c_void_p) if isinstance(v, numpy.ndarray)
                  else ctypes.c_uint16(int(numpy.float16(v).view(numpy.uint16))) if d == numpy.float16
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
            ndim = (given.ndim if kind in ("raw", "rawout") else 1 if flat else len(shape)) if kind != "scalar" else 0
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
            elif kind == "rawout":
                params.append(f"{ctype}* {name}")
            elif kind == "scalar" and dtype == numpy.float16:  # as its bits: see _FLOAT16
                params.append(f"const unsigned short _bits_{name}")
                binds.append(f"const float16 {name} = float16::from_bits(_bits_{name});")
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
            f"{_FLOAT16 if numpy.dtype(numpy.float16) in dtypes else ''}"
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

