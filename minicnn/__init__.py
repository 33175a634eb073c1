"""minicnn: a readable convolutional-network engine on NumPy (CPU) and CuPy (GPU).

Data flows: layers -> functional (autograd glue) -> functions (raw arrays) ->
backend (numpy/cupy); losses -> Tensor.backward -> optimizers.
"""
import os as _os

# Must run before NumPy loads OpenBLAS: after each GEMM, OpenBLAS's idle worker threads
# spin for about 2^28 cycles (~0.1 s) before sleeping, holding cores that NumPy's own
# loops then wait for (20% of a training step on a 2-core machine). 2^4 cycles instead.
# Scripts that import numpy before minicnn set it themselves (examples/train_cifar.py).
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from . import activations, backend, constraints, functional, initializers, layers, losses
from . import mixed_precision, models, optimizers, utils
from .autograd import Tensor, no_grad
from .backend import device, get_device, set_device
from .gradcheck import GradcheckError, gradcheck
from .random import set_seed

__version__ = "0.1.0"


def __getattr__(name):
    if name == "xp":  # minicnn.xp: the array module of the current device
        return backend.xp()
    raise AttributeError(f"module 'minicnn' has no attribute {name!r}")


__all__ = ["Tensor", "no_grad", "set_device", "get_device", "device", "gradcheck",
           "GradcheckError", "set_seed", "layers", "models", "optimizers", "losses",
           "constraints", "functional", "backend", "mixed_precision", "utils"]
