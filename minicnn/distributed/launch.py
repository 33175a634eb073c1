"""Starting ranks on this machine, and giving each its share of the cores.

``python examples/train_cifar.py --workers 2`` re-runs itself as
``mpiexec -n 2 python examples/train_cifar.py ...`` (``spawn``); across machines one runs
``mpiexec`` oneself, with the hosts MPI should use. In each rank, ``use_my_cores`` pins
the process to its share of the machine's cores and holds NumPy's BLAS and minicnn's
thread pool (threads.py) to that many threads: two ranks on two cores each get one, and
no rank's threads wait on another's.
"""
import importlib.util
import os
import shutil
import signal
import subprocess
import sys

from . import threads
from .communicator import INSTALL

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def mpiexec_path():
    """The mpiexec beside this Python (the mpich wheel puts one there), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


def require_mpi():
    """Raise an error naming the install command unless mpi4py and mpiexec are here."""
    missing = [what for what, found in (("mpi4py", importlib.util.find_spec("mpi4py") is not None),
                                        ("an MPI library with mpiexec", mpiexec_path() is not None)) if not found]
    if missing:
        raise RuntimeError(f"--workers needs {' and '.join(missing)}, and this machine has not got "
                           f"{'it' if len(missing) == 1 else 'them'}. Install with: {INSTALL}")


def spawn(workers, script, argv):
    """Run ``python script argv`` as ``workers`` ranks under mpiexec; returns its exit status.
    Each rank starts with BLAS held to its share of the cores (set before NumPy loads)."""
    require_mpi()
    per_rank = str(max(1, (os.cpu_count() or 1) // workers))
    env = dict(os.environ, MINICNN_WORKERS=str(workers), **{name: per_rank for name in THREAD_VARIABLES})
    command = [mpiexec_path(), "-n", str(workers), sys.executable, script, *argv]
    launcher = subprocess.Popen(command, env=env)
    # A kill of this process (SIGTERM) goes on to mpiexec, which passes it to every rank:
    # no rank is left running on its own.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: launcher.send_signal(signum))
    try:
        while True:
            try:
                return launcher.wait()
            except KeyboardInterrupt:  # Ctrl-C reached mpiexec too; wait for the ranks to stop
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def use_my_gpu(comm):
    """Make GPU (local rank mod GPUs on this machine) this rank's current device."""
    import cupy
    count = cupy.cuda.runtime.getDeviceCount()
    cupy.cuda.Device(comm.local_rank % count).use()
    return comm.local_rank % count


def use_my_cores(comm):
    """Pin this rank to its share of this machine's cores and size every thread pool to it.
    Returns the cores it got."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    machine = os.cpu_count() or len(cores)
    if len(cores) * comm.local_size > machine:  # not already pinned by the launcher: take a slice
        share = max(1, len(cores) // comm.local_size)
        start = (comm.local_rank * share) % len(cores)
        cores = cores[start:start + share]
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cores)
    threads.set_threads(len(cores))
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=len(cores))  # BLAS too (it may have started with more)
    except ImportError:
        pass
    return cores
