"""What minicnn/functions/fast_gpu.py (and fast_gpu_sums.py, which it imports) asks CuPy to
compile, read without CuPy or a GPU.

Both build their kernels with ``cupy.ElementwiseKernel(inputs, outputs, body, name)``
at import time. Importing it under a stand-in ``cupy`` module that only records those four
strings gives every kernel's source, which the kernel tests then compile themselves: as
C++ on the CPU (test_gpu_kernel_source.py, to check the arithmetic against the NumPy
reference) and as CUDA with nvcc (test_gpu_kernel_cuda.py, to check what only the CUDA
compiler sees)."""
import importlib
import sys
import types

MODULE = "minicnn.functions.fast_gpu"
MODULES = (MODULE, "minicnn.functions.fast_gpu_sums")


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
        module = importlib.import_module(MODULE)
        dtypes = module.KERNEL_DTYPES
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
    indexed by the body), 'in' (element i of an array), 'scalar' or 'out'."""
    params = []
    for words in (s.strip().split() for s in inputs.split(",")):
        if words[0] == "raw":
            params.append(("raw", words[1], words[2]))
        elif words[0] in ("T", "bool"):
            params.append(("in", words[0], words[1]))
        else:
            params.append(("scalar", words[0], words[1]))
    for kind, name in (s.strip().split() for s in outputs.split(",")):
        params.append(("out", kind, name))
    return params
