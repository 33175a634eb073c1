"""The GPU half of the suite, run on every machine: on tests/cupy_stand_in, a CPU stand-in
for CuPy, wherever there is no GPU. A rehearsal, not a GPU result: it runs each GPU test's
Python (every ``xp.`` call, the kernels' arguments, each host/device boundary) under CuPy's
rules (a separate array type, no implicit copies), with the kernels compiled as C++. What only
a GPU shows (CUDA itself, cuBLAS, TF32, speed) stays for a GPU machine, where these two tests
skip and the GPU half runs on the GPU itself.

Each runs pytest in a process of its own with the stand-in first on the path, so this
process's ``cupy`` (none, or the real one) is never touched."""
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


def run_pytest(*args, timeout):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [FOLDER, ROOT, os.environ.get("PYTHONPATH")])),
               MPLBACKEND="Agg", CUPY_STAND_IN_FLOAT64="raise")  # float32 work must stay float32
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout[-6000:] + done.stderr[-2000:]


def test_the_stand_in_refuses_what_cupy_refuses():
    returncode, output = run_pytest(os.path.join(FOLDER, "check_stand_in.py"), timeout=300)
    assert returncode == 0, output


def test_the_gpu_half_passes_on_the_stand_in():
    """Every test marked gpu and every gpu half, as `pytest --device-half gpu` runs them on a
    GPU machine (its only skips: what needs real hardware, or MPI where it is missing), with
    the stand-in's float64 rule on: no float32 array on the device turns float64 because a
    float64 NumPy scalar met it."""
    returncode, output = run_pytest("--device-half", "gpu", "-rs", os.path.join(ROOT, "tests"), timeout=1200)
    assert returncode == 0, output
    assert " passed" in output and " failed" not in output, output
