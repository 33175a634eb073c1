"""Build every minicnn kernel call the stand-in saw, as the real CuPy would build it on a GPU:
CuPy's own code generator (the same CArray/CIndexer parameters, typedefs and loop), CuPy's
headers, for the H100/H200 (sm_90), failing on any warning: with NVRTC, CuPy's own compiler,
given CuPy's options, where its library loads (pip install "nvidia-cuda-nvrtc>=13,<14"), and
with nvcc, whose ptxas also catches float64 arithmetic in a float32 kernel.

    CUPY_STAND_IN_RECORD=/tmp/reached PYTHONPATH=tests/cupy_stand_in python -m pytest --device-half gpu tests
    python tests/cupy_stand_in/compile_with_cupy.py /tmp/reached   # with the real CuPy, no GPU needed

tests/test_gpu_kernel_cuda.py already builds each kernel body with nvcc in a rendering of its
own; this one uses CuPy's rendering, for the argument kinds, dtypes and dimensions each call
really had. It leans on CuPy's private _core._kernel (written against CuPy 14.2): if that
moves, it says so and stops. Exit status 1 if a build fails."""
import os
import subprocess
import sys
import tempfile

ARCH = "sm_90"
KINDS = {"raw": 1, "rawout": 1, "in": 1, "out": 1, "scalar": 3}  # CuPy's _ArgKind: NDARRAY = 1, INDEXER, SCALAR
INDEXER = 2


def variants(path):
    """{(name, T, args, index_32_bits, loop_ndim)} from the record's kernel lines."""
    with open(path) as f:
        lines = {line.split(None, 1)[1].strip() for line in f if line.startswith("kernel ")}
    return sorted(tuple(line.split("|")) for line in lines)


def cupy_source(kernel, T, args, small, loop_ndim, numpy, cupy, internals):
    kernel_module, scalar, carray, core = internals
    infos = []
    for part in args.split(","):
        kind, dtype, ndim = part.split(":")
        kind_number = KINDS[kind]
        type_ = scalar.CScalar if kind == "scalar" else cupy.ndarray
        contiguous = kind in ("raw", "rawout") or loop_ndim == "1"
        infos.append(kernel_module._ArgInfo(kind_number, type_, numpy.dtype(dtype).type, int(ndim),
                                            contiguous, small == "1"))
    infos.append(kernel_module._ArgInfo(INDEXER, carray.Indexer, None, int(loop_ndim), True, small == "1"))
    type_map = kernel_module._TypeMap((("T", numpy.dtype(T).type),) if T != "-" else ())
    code = kernel_module._get_elementwise_kernel_code(tuple(infos), type_map, kernel.params, kernel.operation,
                                                      kernel.name, kernel.preamble)
    return "".join(f"#include <{header}>\n" for header in core._cupy_header_list) + code


def nvrtc_build(source, include):
    """'' if NVRTC builds source as CuPy would for sm_90 with an empty log, else the log."""
    from cupy_backends.cuda.libs import nvrtc
    program = nvrtc.createProgram(source, "kernel.cu", [], [])
    options = [*include, "--std=c++17", "-ftz=true", "--device-as-default-execution-space", f"-arch={ARCH}"]
    try:
        nvrtc.compileProgram(program, options)
    except Exception as error:  # NVRTC_ERROR_COMPILATION and the like
        return f"NVRTC: {error}\n{nvrtc.getProgramLog(program)}"
    log = nvrtc.getProgramLog(program).strip()
    return f"NVRTC: {log}" if log else ""


def nvrtc_available():
    try:
        from cupy_backends.cuda.libs import nvrtc
        return ".".join(map(str, nvrtc.getVersion()))
    except Exception:  # the library is not installed or does not load
        return None


def main(path):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # not the stand-in beside it
    sys.path.insert(0, os.path.dirname(os.path.dirname(here)))  # minicnn itself
    import numpy
    import cupy
    if getattr(cupy, "STAND_IN", False):
        sys.exit("this needs the real CuPy: run it without tests/cupy_stand_in on PYTHONPATH")
    try:
        from cupy._core import _kernel as kernel_module, _scalar as scalar, _carray as carray, core
        internals = (kernel_module, scalar, carray, core)
        # the include folders CuPy itself compiles with: its headers, CCCL's, and the CUDA
        # toolkit's, where cuda_fp16.h (which its float16 class includes) lies
        include = [o for o in core.assemble_cupy_compiler_options(()) if o.startswith("-I")]
    except (ImportError, AttributeError) as error:
        sys.exit(f"CuPy {cupy.__version__} has moved the internals this uses ({error})")
    from minicnn.functions import fast_gpu, fast_gpu_sums, fast_gpu_updates
    kernels = {k.name: k for module in (fast_gpu, fast_gpu_sums, fast_gpu_updates) for k in vars(module).values()
               if isinstance(k, cupy.ElementwiseKernel)}
    seen = variants(path)
    nvrtc_version = nvrtc_available()
    built, failed, skipped = 0, [], set()
    with tempfile.TemporaryDirectory() as folder:
        for number, (name, T, args, small, loop_ndim) in enumerate(seen):
            if name not in kernels:
                skipped.add(name)  # not minicnn's (the stand-in's erf, a check's own probe)
                continue
            source = os.path.join(folder, f"{number}.cu")
            with open(source, "w") as f:
                f.write(cupy_source(kernels[name], T, args, small, loop_ndim, numpy, cupy, internals))
            ptxas = "-warn-spills,-warn-lmem-usage" + (",-warn-double-usage" if T == "float32" else "")
            done = subprocess.run(["nvcc", f"-arch={ARCH}", "-std=c++17", "--cubin", *include, source,
                                   "-o", source + ".cubin", "--Werror", "all-warnings", "-Xptxas", ptxas],
                                  capture_output=True, text=True)
            output = (done.stdout + done.stderr).strip()
            problems = [f"nvcc: {output}"] if done.returncode != 0 or "warning" in output.lower() else []
            if nvrtc_version:
                with open(source) as f:
                    problems += [log for log in [nvrtc_build(f.read(), include)] if log]
            if problems:
                failed.append(f"{name} T={T} ({args}; 32-bit index {small}, loop ndim {loop_ndim}):\n"
                              + "\n".join(problems))
            built += 1
    compilers = "nvcc" + (f" and NVRTC {nvrtc_version}" if nvrtc_version else " (NVRTC not loadable: nvcc only)")
    print(f"CuPy {cupy.__version__}'s rendering, {compilers} for {ARCH}: {built} kernel variants of "
          f"{len({v[0] for v in seen if v[0] in kernels})} kernels built, {len(failed)} failed"
          + (f"; not minicnn's, left out: {', '.join(sorted(skipped))}" if skipped else "")
          + "".join(f"\n{failure}" for failure in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
