"""The GPU half of the suite, run on every machine: on tests/cupy_stand_in, a CPU stand-in
for CuPy, wherever there is no GPU. A rehearsal, not a GPU result: it runs each GPU test's
Python (every ``xp.`` call, the kernels' arguments, each host/device boundary) under CuPy's
rules (a separate array type, no implicit copies), with the kernels compiled as C++. What only
a GPU shows (CUDA itself, cuBLAS, TF32, speed) stays for a GPU machine, where these tests
skip and the GPU half runs on the GPU itself.

Where the real CuPy is installed (it imports without a GPU), two more checks read what the
stand-in recorded: that CuPy has every NumPy name the GPU half reached, and that every kernel
call builds (nvcc, sm_90) as CuPy's own code generator renders it.

Each runs in a process of its own with the stand-in first on the path, so this process's
``cupy`` (none, or the real one) is never touched."""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from conftest import GPU_REASON, STAND_IN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.join(ROOT, "tests", "cupy_stand_in")

pytestmark = [
    pytest.mark.skipif(shutil.which("g++") is None, reason="the stand-in compiles its kernels with g++"),
    pytest.mark.skipif(GPU_REASON is None and not STAND_IN,
                       reason="a GPU is here: the GPU half runs on it (pytest --device-half gpu)"),
]


def run(command, timeout, **env):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [FOLDER, ROOT, os.environ.get("PYTHONPATH")])),
               MPLBACKEND="Agg", CUPY_STAND_IN_FLOAT64="raise", **env)  # float32 work must stay float32
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, done.stdout[-6000:] + done.stderr[-2000:]


def run_pytest(*args, timeout, **env):
    return run(["-m", "pytest", "-q", "-p", "no:cacheprovider", *args], timeout, **env)


def real_cupy_tool(name, record):
    """Run tests/cupy_stand_in/NAME on the record with the real CuPy (the tool drops the
    stand-in from its path itself)."""
    return run([os.path.join(FOLDER, name), str(record)], 300)


@pytest.fixture(scope="module")
def gpu_half(tmp_path_factory):
    """The GPU half run once on the stand-in, recording which NumPy names and which kernel
    calls it reached: (exit status, output, the record's path)."""
    record = tmp_path_factory.mktemp("stand-in") / "reached.txt"
    returncode, output = run_pytest("--device-half", "gpu", "-rs", os.path.join(ROOT, "tests"), timeout=1200,
                                    CUPY_STAND_IN_RECORD=str(record))
    return returncode, output, record


def test_the_committed_launch_counts_are_current():
    """benchmarks/results/launches-stand-in.md, the device operations per training step of
    the seed models, must say what benchmarks/launches.py counts now: a change to the GPU path
    that adds (or saves) launches shows in that table's diff. Two of its models here, one
    with batch-norm and dropout (the whole table: python benchmarks/launches.py --out ...)."""
    table = open(os.path.join(ROOT, "benchmarks", "results", "launches-stand-in.md")).read()
    models = ["seed000_sequential", "seed004_base"]
    returncode, output = run([os.path.join(ROOT, "benchmarks", "launches.py"), "--models", *models], 300)
    assert returncode == 0, output
    for model in models:
        now = next(line for line in output.splitlines() if line.startswith(f"| {model} |"))
        assert now in table.splitlines(), f"launches.py now counts {now!r}; rerun it with --out"


# Only a real CuPy knows which of NumPy's names it lacks and how it renders a kernel; it
# imports without a GPU (pip install cupy-cuda13x; .ci/run installs it where it can).
needs_real_cupy = pytest.mark.skipif(importlib.util.find_spec("cupy") is None,
                                     reason="the real CuPy is not installed (pip install cupy-cuda13x)")


def test_the_stand_in_refuses_what_cupy_refuses():
    returncode, output = run_pytest(os.path.join(FOLDER, "check_stand_in.py"), timeout=300)
    assert returncode == 0, output


def test_the_gpu_half_passes_on_the_stand_in(gpu_half):
    """Every test marked gpu and every gpu half, as `pytest --device-half gpu` runs them on a
    GPU machine (its only skips: what needs real hardware, or MPI where it is missing), with
    the stand-in's float64 rule on: no float32 array on the device turns float64 because a
    float64 NumPy scalar met it."""
    returncode, output, _ = gpu_half
    assert returncode == 0, output
    assert " passed" in output and " failed" not in output, output


@needs_real_cupy
def test_cupy_has_every_numpy_name_the_gpu_half_reached(gpu_half):
    """The stand-in lends all of NumPy; CuPy has most of it. Every function, ufunc and array
    method the GPU half used must be one CuPy has, and take the call as it was made (as many
    positional arguments, the same keywords) wherever CuPy's signature can be read."""
    record = gpu_half[2]
    assert record.exists(), gpu_half[1]
    returncode, output = real_cupy_tool("compare_with_cupy.py", record)
    assert returncode == 0 and "lacks or refuses 0" in output, output


@needs_real_cupy
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (the CUDA compiler) is not on the PATH")
def test_every_kernel_call_builds_as_cupy_renders_it(gpu_half):
    """Each kernel call of the GPU half (its argument kinds, dtypes and dimensions), rendered
    by CuPy's own code generator and built for sm_90 with no warning by nvcc and, where its
    library loads, by NVRTC as CuPy calls it."""
    record = gpu_half[2]
    assert record.exists(), gpu_half[1]
    returncode, output = real_cupy_tool("compile_with_cupy.py", record)
    assert returncode == 0 and " 0 failed" in output, output
