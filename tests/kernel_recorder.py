"""What minicnn/functions/fast_gpu.py, fast_gpu_sums.py and fast_gpu_updates.py ask CuPy to
compile, read without CuPy or a GPU.

Each builds their kernels with ``cupy.ElementwiseKernel(inputs, outputs, body, name)``
at import time. Importing it under a stand-in ``cupy`` module that only records those four
strings gives every kernel's source, which the kernel tests then compile themselves: as
C++ on the CPU (test_gpu_kernel_source.py, to check the arithmetic against the NumPy
reference) and as CUDA with nvcc (test_gpu_kernel_cuda.py, to check what only the CUDA
compiler sees)."""
import importlib
import sys
import types

MODULE = "minicnn.functions.fast_gpu"
MODULES = (MODULE, "minicnn.functions.fast_gpu_sums", "minicnn.functions.fast_gpu_updates")


def record_kernels():
    """({name: (inputs, outputs, body)}, KERNEL_DTYPES) of MODULES, CuPy or not."""
    recorded = {}
    stand_in = types.ModuleType("cupy")
    stand_in.ElementwiseKernel = lambda inputs, outputs, body, name: recorded.setdefault(
        name, (inputs, outputs, body))
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = stand_in
    try:
        for name in MODULES:
            sys.modules.pop(name, None)
        for name in MODULES:
            importlib.import_module(name)
        dtypes = sys.modules[MODULE].KERNEL_DTYPES
    finally:
        for name in MODULES:
            sys.modules.pop(name, None)  # a real CuPy gets a fresh import
        if saved is None:
            sys.modules.pop("cupy")
        else:
            sys.modules["cupy"] = saved
    return recorded, dtypes


def parameters(inputs, outputs):
    """[(kind, type, name)] of a kernel's signature: kind is 'raw' (the whole array,
    indexed by the body), 'in' (element i of an array), 'scalar', 'out' (element i of an
    output) or 'rawout' (a whole output array, indexed and written by the body)."""
    params = []
    for words in (s.strip().split() for s in inputs.split(",")):
        if words[0] == "raw":
            params.append(("raw", words[1], words[2]))
        elif words[0] in ("T", "bool"):
            params.append(("in", words[0], words[1]))
        else:
            params.append(("scalar", words[0], words[1]))
    for words in (s.strip().split() for s in outputs.split(",")):
        if words[0] == "raw":
            params.append(("rawout", words[1], words[2]))
        else:
            params.append(("out", words[0], words[1]))
    return params
