"""The messages ranks exchange: sums over every rank (all-reduce) and copies from rank 0
(broadcast), over MPI (mpi4py) between processes on the CPU and over NCCL between GPUs.

    comm = Communicator()            # MPI.COMM_WORLD: every process mpiexec started
    comm.rank, comm.size             # this process's number, how many there are
    comm.allreduce_sum_(array)       # in place: array becomes the sum of every rank's array
    comm.broadcast_(array)           # in place: array becomes rank 0's array

Arrays are NumPy or CuPy arrays, contiguous, float32 or float64. A CuPy array goes
GPU to GPU through NCCL (cupy.cuda.nccl) when CuPy has it; otherwise, or with
``gpu_transport='host'``, it is copied to the host explicitly, sent by MPI and copied
back (slower, but any MPI works).

Why mpi4py: MPI is what ChainerMN and Horovod run on. One launcher (``mpiexec -n 4``)
starts the ranks on one machine or across many, and its all-reduce is a tuned, tested
algorithm we need not write. The ``mpich`` wheel brings an MPI library with it, so
``pip install "minicnn[mpi]"`` is all a machine needs.
"""
import os

import numpy

from .. import backend

INSTALL = 'pip install "minicnn[mpi]"  (that is: pip install mpi4py mpich)'


def import_mpi():
    """mpi4py's MPI module, or an ImportError that says what to install."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as error:  # no mpi4py, or mpi4py without a loadable libmpi
        missing = "no mpi4py" if isinstance(error, ImportError) and "mpi4py" in str(error) else "no usable MPI library"
        raise ImportError(f"minicnn.distributed needs mpi4py and an MPI library, and this Python has "
                          f"{missing} ({error}). Install them with: {INSTALL}") from error
    return MPI


class Communicator:
    """A group of ranks that sum and copy arrays together.

    mpi_comm: an mpi4py communicator (default MPI.COMM_WORLD).
    gpu_transport: 'nccl' (GPU to GPU), 'host' (through host memory by MPI), or None:
    NCCL where CuPy has it, else the host.
    """

    def __init__(self, mpi_comm=None, gpu_transport=None):
        MPI = import_mpi()
        if gpu_transport not in (None, "nccl", "host"):
            raise ValueError(f"gpu_transport must be 'nccl', 'host' or None, got {gpu_transport!r}")
        self.MPI = MPI
        self.mpi = MPI.COMM_WORLD if mpi_comm is None else mpi_comm
        self.rank, self.size = self.mpi.Get_rank(), self.mpi.Get_size()
        # The ranks on this machine (they share its cores and GPUs): numbered 0..local_size-1.
        self.local = self.mpi.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = self.local.Get_rank(), self.local.Get_size()
        self.gpu_transport = gpu_transport
        self._nccl = None

    @property
    def is_root(self):
        """True on rank 0, the rank that prints, saves and plots."""
        return self.rank == 0

    def __repr__(self):
        return f"Communicator(rank={self.rank}, size={self.size}, local_rank={self.local_rank})"

    # --- arrays --------------------------------------------------------------------
    def allreduce_sum_(self, array):
        """array (any shape, contiguous) <- the elementwise sum of it over every rank."""
        if self.size == 1:
            return array
        if backend.get_array_module(array) is numpy:
            self.mpi.Allreduce(self.MPI.IN_PLACE, _checked(array), op=self.MPI.SUM)
        elif self._use_nccl():
            self._nccl_channel().allreduce_sum_(array)
        else:  # explicit copies through the host
            host = backend.to_numpy(array).copy()
            self.mpi.Allreduce(self.MPI.IN_PLACE, _checked(host), op=self.MPI.SUM)
            array[...] = backend.to_device(host, backend.device_of(array))
        return array

    def allreduce_sums_(self, arrays):
        """Several arrays summed at once, in non-blocking messages that MPI may overlap
        (the gradient buckets). NumPy arrays only; GPU arrays go one by one by NCCL."""
        if self.size == 1:
            return arrays
        if any(backend.get_array_module(a) is not numpy for a in arrays):
            for a in arrays:
                self.allreduce_sum_(a)
            return arrays
        requests = [self.mpi.Iallreduce(self.MPI.IN_PLACE, _checked(a), op=self.MPI.SUM) for a in arrays]
        self.MPI.Request.Waitall(requests)
        return arrays

    def broadcast_(self, array, root=0):
        """array <- root's array, on every rank."""
        if self.size == 1:
            return array
        if backend.get_array_module(array) is numpy:
            self.mpi.Bcast(_checked(array), root=root)
        elif self._use_nccl():
            self._nccl_channel().broadcast_(array, root)
        else:
            host = backend.to_numpy(array).copy()
            self.mpi.Bcast(_checked(host), root=root)
            array[...] = backend.to_device(host, backend.device_of(array))
        return array

    # --- small Python values -------------------------------------------------------------
    def allreduce_max(self, value):
        """The largest of every rank's number (e.g. 'does any rank want to stop?')."""
        return self.mpi.allreduce(value, op=self.MPI.MAX)

    def broadcast_object(self, value, root=0):
        """A picklable Python value from root to every rank."""
        return self.mpi.bcast(value, root=root)

    def barrier(self):
        self.mpi.Barrier()

    # --- NCCL --------------------------------------------------------------------------
    def _use_nccl(self):
        """Whether GPU arrays go by NCCL; decided once (the first GPU array), not per message."""
        if self.gpu_transport is None:
            try:
                from cupy.cuda import nccl  # noqa: F401
                self.gpu_transport = "nccl"
            except ImportError:
                self.gpu_transport = "host"
        elif self.gpu_transport == "nccl" and self._nccl is None:
            try:
                from cupy.cuda import nccl  # noqa: F401,F811
            except ImportError:
                raise ImportError("gpu_transport='nccl' but this CuPy has no NCCL (cupy.cuda.nccl); install "
                                  "NCCL for CuPy, or use gpu_transport='host'") from None
        return self.gpu_transport == "nccl"

    def _nccl_channel(self):
        if self._nccl is None:
            self._nccl = NcclChannel(self)
        return self._nccl


class NcclChannel:
    """NCCL between the ranks' GPUs: rank 0 makes a unique id and MPI hands it to the
    others; then sums and copies go GPU to GPU on the current stream."""

    def __init__(self, comm):
        from cupy.cuda import nccl
        self.nccl = nccl
        uid = nccl.get_unique_id() if comm.rank == 0 else None
        uid = comm.broadcast_object(uid)
        self.comm = nccl.NcclCommunicator(comm.size, uid, comm.rank)
        self.types = {numpy.dtype(numpy.float32): nccl.NCCL_FLOAT32,
                      numpy.dtype(numpy.float64): nccl.NCCL_FLOAT64}

    def _type(self, array):
        if array.dtype not in self.types or not array.flags.c_contiguous:
            raise TypeError(f"NCCL sums contiguous float32/float64 arrays, got {array.dtype} "
                            f"(contiguous: {array.flags.c_contiguous})")
        return self.types[array.dtype]

    def allreduce_sum_(self, array):
        import cupy
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, self._type(array),
                            self.nccl.NCCL_SUM, cupy.cuda.get_current_stream().ptr)

    def broadcast_(self, array, root):
        import cupy
        self.comm.bcast(array.data.ptr, array.size, self._type(array), root,
                        cupy.cuda.get_current_stream().ptr)


def _checked(array):
    """The array itself, if MPI can send it as it is (contiguous float32/float64)."""
    if array.dtype not in (numpy.float32, numpy.float64) or not array.flags.c_contiguous:
        raise TypeError(f"MPI sums contiguous float32/float64 arrays here, got {array.dtype} "
                        f"(contiguous: {array.flags.c_contiguous})")
    return array


def world_size_from_environment():
    """How many ranks the launcher started, read from the variables MPICH (PMI_SIZE) or
    Open MPI (OMPI_COMM_WORLD_SIZE) set, without starting MPI; 1 when none is set."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1
