"""More than one core, more than one machine: how minicnn spreads a training step.

    threads.py         one process: a thread pool splits each batch over the cores
    communicator.py    several processes (ranks) under MPI: all-reduce and broadcast of
                       arrays (MPI on the CPU, NCCL between GPUs)
    data_parallel.py   every rank a replica of the model on its own shard of each batch,
                       gradients summed over the ranks before each step
    sync_batchnorm.py  batch statistics over the whole global batch, if asked
    launch.py          ``--workers N``: starting ranks, each pinned to its share of cores

Typical use, in a script started by ``mpiexec -n 2 python train.py``::

    from minicnn import distributed
    comm = distributed.Communicator()
    distributed.use_my_cores(comm)
    model.compile(...)
    distributed.data_parallel(model, comm)
    model.fit(x, y, batch_size=128, epochs=10, verbose=1 if comm.is_root else 0)

mpi4py is needed only by the last three (``pip install "minicnn[mpi]"``), and loaded
only when a Communicator is made.
"""
from .communicator import Communicator, world_size_from_environment
from .data_parallel import DataParallel, data_parallel
from .launch import spawn, use_my_cores, use_my_gpu

__all__ = ["Communicator", "DataParallel", "data_parallel", "spawn", "use_my_cores", "use_my_gpu",
           "world_size_from_environment"]
