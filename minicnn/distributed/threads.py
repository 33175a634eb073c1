"""How minicnn uses the cores of one process: a thread pool that splits the batch.

NumPy's copies and elementwise loops run on one core, but they release the GIL, so
threads working on separate samples of the batch run them side by side; the fast CPU
kernels (functions/*_cpu.py) call ``over_batch`` for that. GEMMs inside that work run
with BLAS held to one thread (``blas_single_threaded``), or the two pools would fight.

The GIL still serialises every Python line between those NumPy calls. Processes do not
share it: data-parallel training over MPI (data_parallel.py) runs one process per core
("rank"), each with ``set_threads(1)``, so each rank's pool is the calling thread alone.

``chunks_of`` is the other half of the cache blocking the kernels do: it cuts one
thread's share of the batch into pieces whose temporaries fit in that core's L2 cache.
"""
import contextlib
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

try:  # sets how many threads BLAS uses, for the one-thread-per-core blocked convolutions
    from threadpoolctl import ThreadpoolController
except ImportError:  # then BLAS keeps its own threads: correct, only slower
    ThreadpoolController = None

THREADS = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)
CHUNK_BYTES = 2 << 20  # one chunk's temporaries per core: about half of a 4 MiB L2 cache
CHUNK_MIN_PIXELS = 1024  # ...but enough output pixels that gW's GEMM (summing over them) stays efficient
# Work smaller than this runs on the calling thread. Handing work to a pool thread and
# waiting for it costs 0.07-0.4 ms on the 2-core test machine (the worker's core must wake
# up), while a ReLU over 2 MB takes 0.1-0.3 ms on one core. Measured side by side on
# training steps (one process, 2 cores): seed001_model0 at batch 16 went from 10.6 to 6.3
# ms, the seed models at batch 32 by 0-11%, and batch 128 stayed within the noise; a
# 4 MiB threshold made resnet20 at batch 128 10-16% slower (its 2 MiB batch-norms).
POOL_MIN_BYTES = 2 << 20
_pool = None  # (process id, executor, its threads): a forked child gets a pool of its own
_blas = None  # threadpoolctl's controller, made on first use (it scans the loaded libraries)


@contextlib.contextmanager
def blas_single_threaded():
    """BLAS on one thread inside the block: our own threads split the work instead."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController() if ThreadpoolController is not None else False
    if not _blas:
        yield
        return
    with _blas.limit(limits=1, user_api="blas"):
        yield


def over_batch(work, n, blas_threads=None, nbytes=None):
    """Call work(s) for slices s of range(n), one per core, on threads; returns the results
    in slice order, once all are done.

    OpenBLAS runs the GEMMs on every core, but NumPy's own copies and elementwise loops
    run on one. They release the GIL, though, so threads working on separate samples of
    the batch run them in parallel: the memory-bound steps below use every core too.
    blas_threads=1: work calls GEMMs of its own, so BLAS must not start more threads.
    nbytes: about how many bytes the whole work streams through (for a convolution, the
    size of the im2col matrix it stands for); under POOL_MIN_BYTES the calling thread does
    it all, in one call work(slice(0, n)), since the hand-off would cost more than it saves.
    """
    global _pool
    chunks = min(THREADS, n)
    if chunks < 2 or (nbytes is not None and nbytes < POOL_MIN_BYTES):
        return [work(slice(0, n))]
    # A new pool after a fork (threads do not survive one) or once THREADS was raised.
    if _pool is None or _pool[0] != os.getpid() or _pool[2] < chunks:
        _pool = (os.getpid(), ThreadPoolExecutor(THREADS, thread_name_prefix="minicnn"), THREADS)
    bounds = [n * k // chunks for k in range(chunks + 1)]
    limit = blas_single_threaded() if blas_threads == 1 else contextlib.nullcontext()
    with limit:
        # Each thread runs in a copy of the caller's context, so settings kept in context
        # variables hold there too: numpy.errstate (a scaled float16 backward ignores the
        # overflow the loss scale is there to catch, training.train_step).
        futures = [_pool[1].submit(contextvars.copy_context().run, work, slice(a, b))
                   for a, b in zip(bounds, bounds[1:])]
        return [future.result() for future in futures]  # re-raises an exception from a thread


def chunks_of(share, bytes_per_image, pixels_per_image):
    """Split a slice of the batch into slices of as many images as fit in CHUNK_BYTES, and
    at least CHUNK_MIN_PIXELS output pixels (small late-layer images come many to a chunk)."""
    step = max(1, CHUNK_BYTES // max(1, bytes_per_image), -(-CHUNK_MIN_PIXELS // pixels_per_image))
    return [slice(a, min(a + step, share.stop)) for a in range(share.start, share.stop, step)]


def add_in_order(parts):
    """The per-thread partial sums added in thread order: a fixed order, so a result does
    not depend on which thread finished first."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def sum_over_batch(a):
    """a (N, ..., F) -> (F,): the sum over every axis but the last (a bias gradient),
    each thread summing its share of the batch."""
    axes = tuple(range(a.ndim - 1))
    return add_in_order(over_batch(lambda s: a[s].sum(axis=axes), a.shape[0], nbytes=a.nbytes))



def set_threads(n):
    """Use n threads (n >= 1) for the batch-splitting kernels from now on; returns the
    previous count. A data-parallel rank sets 1: the other cores belong to other ranks."""
    global THREADS
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_threads: n must be a positive int, got {n!r}")
    previous, THREADS = THREADS, n
    return previous
