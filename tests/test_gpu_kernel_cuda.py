"""Every CUDA kernel of minicnn/functions/fast_gpu.py, built by the real CUDA compiler
(nvcc) for the H100/H200's architecture, sm_90, in each dtype the kernels are used with
(fast_gpu.KERNEL_DTYPES). Any compiler error *or warning* fails the test. For float16, T is
CuPy's own ``float16`` class, from the headers of the installed CuPy package (which imports
without a GPU): CuPy compiles float16 kernels with that class, and its conversions decide
what the body's arithmetic means; skipped, with the reason, where CuPy is not installed.

test_gpu_kernel_source.py already checks the kernels' arithmetic as C++ on the CPU. This
checks what only the CUDA compiler sees: that the body is valid CUDA with T = float and
T = double, that no variable is left unused, that no register spills to local memory, and
that a float32 kernel does no double-precision arithmetic (a literal such as ``0.3``
without a ``(T)`` cast makes the product float64: silent, and much slower on a GPU,
whose float64 units are few).

How a kernel is rendered: as CuPy renders an ElementwiseKernel. One file per dtype with
``typedef <dtype> T``; each kernel is an ``extern "C" __global__`` function whose
parameters are the raw arrays (indexed by the body), the elementwise inputs and outputs
(element ``i`` of their array, bound to the parameter's name) and the int32 scalars,
looping over ``i`` with a grid-stride loop, as CuPy's CUPY_FOR does. Skipped, with the
reason, where nvcc is not on the PATH.
"""
import os
import shutil
import subprocess
import sys

import numpy
import pytest

from kernel_recorder import parameters, record_kernels

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc (the CUDA compiler) is not on the PATH")

ARCH = "sm_90"  # the H100 and H200
_CUDA_TYPES = {numpy.dtype(numpy.float16): "float16", numpy.dtype(numpy.float32): "float",
               numpy.dtype(numpy.float64): "double"}


def cupy_include_folder():
    """The installed CuPy's C++ headers (cupy/_core/include, holding cupy/float16.cuh), found
    on sys.path without importing cupy (which in a test may be the stand-in); None if absent."""
    for entry in sys.path:
        folder = os.path.join(entry or ".", "cupy", "_core", "include")
        if os.path.isfile(os.path.join(folder, "cupy", "float16.cuh")):
            return folder
    return None
_SCALAR_TYPES = {"int32": "int", "int64": "long long", "bool": "bool"}  # and of raw arrays


def as_cuda(name, inputs, outputs, body):
    """One ElementwiseKernel as CUDA source, T left to a typedef above it."""
    params, bind = [], []
    for kind, type_, arg in parameters(inputs, outputs):
        ctype = "T" if type_ == "T" else _SCALAR_TYPES[type_]
        if kind in ("raw", "rawout"):
            params.append(f"{ctype}* {arg}")
        elif kind == "scalar":
            params.append(f"{ctype} {arg}")
        elif kind == "in":
            params.append(f"const {ctype}* _raw_{arg}")
            bind.append(f"const {ctype} {arg} = _raw_{arg}[i];")
        else:
            params.append(f"{ctype}* _raw_{arg}")
            bind.append(f"{ctype}& {arg} = _raw_{arg}[i];")
    return (f'extern "C" __global__ void {name}({", ".join(params)}, ptrdiff_t _size) {{\n'
            "  for (ptrdiff_t i = (ptrdiff_t)blockIdx.x * blockDim.x + threadIdx.x; i < _size;\n"
            "       i += (ptrdiff_t)blockDim.x * gridDim.x) {\n"
            f"    {' '.join(bind)}\n{body}\n  }}\n}}\n")


def build(kernels, dtype, folder):
    """Compile {name: (inputs, outputs, body)} with T = dtype for ARCH. Returns
    (ok, compiler output, a table saying which source lines hold which kernel)."""
    ctype = _CUDA_TYPES[numpy.dtype(dtype)]
    lines = ["#include <cstddef>", f"typedef {ctype} T;"]
    include = []
    if ctype == "float16":  # CuPy's class; its carray.cuh uses assert without including it
        include = ["-I", cupy_include_folder()]
        lines = ["#include <cassert>", "#include <cupy/float16.cuh>"] + lines
    where = []
    for name, parts in kernels.items():
        text = as_cuda(name, *parts).splitlines()
        where.append(f"  lines {len(lines) + 1}-{len(lines) + len(text)}: {name}")
        lines += text
    source = folder / f"kernels_{ctype}.cu"
    source.write_text("\n".join(lines) + "\n")
    ptxas = ["-warn-spills", "-warn-lmem-usage"]
    if ctype != "double":  # float32 kernels must not compute in float64
        ptxas.append("-warn-double-usage")
    command = [NVCC, f"-arch={ARCH}", "-std=c++17", *include, "-c", str(source), "-o", str(source.with_suffix(".o")),
               "--Werror", "all-warnings", "-Xptxas", ",".join(ptxas)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = (done.stdout + done.stderr).strip()
    ok = done.returncode == 0 and "warning" not in output.lower()
    return ok, f"$ {' '.join(command)}\n{output}\n{source}:\n" + "\n".join(where)


@pytest.fixture(scope="module")
def recorded():
    return record_kernels()


def test_every_kernel_is_declared_for_float16_float32_and_float64(recorded):
    kernels, dtypes = recorded
    assert len(kernels) >= 7  # im2col, col2im, max-pool forward/backward, relu x2, gelu
    assert {numpy.dtype(d) for d in dtypes} == set(map(numpy.dtype, _CUDA_TYPES))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_every_kernel_builds_for_sm90_without_a_warning(recorded, dtype, tmp_path):
    kernels, dtypes = recorded
    assert numpy.dtype(dtype) in {numpy.dtype(d) for d in dtypes}
    if dtype == "float16" and cupy_include_folder() is None:
        pytest.skip("CuPy is not installed: its float16 class (cupy/float16.cuh) is what T is for float16")
    ok, report = build(kernels, dtype, tmp_path)
    assert ok, f"nvcc rejected or warned about fast_gpu's kernels with T = {dtype}:\n{report}"


@pytest.mark.parametrize("body, what", [
    ("int unused = 0; y = x;", "an unused variable"),
    # 0.3 has no exact float32 value, so x * 0.3 is computed in float64 (x * 0.5 is not:
    # the compiler proves float32 gives the same result and drops the promotion).
    ("y = x * 0.3;", "float64 arithmetic in a float32 kernel"),
    ("y = x +;", "a syntax error"),
])
def test_the_build_catches_a_planted_fault(body, what, tmp_path):
    """The check can fail: each planted fault must be reported (not compiled in silence)."""
    planted = {"planted": ("T x", "T y", body)}
    ok, report = build(planted, "float32", tmp_path)
    assert not ok, f"{what} was compiled without a word:\n{report}"
