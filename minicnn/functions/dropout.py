"""Inverted dropout: zero a fraction ``rate`` of x and scale the rest by 1/(1-rate),
so nothing needs rescaling at inference, where dropout is the identity."""
import numpy

from ..backend import fast_kernels_enabled, get_array_module


def dropout_mask(shape, rate, rng, dtype):
    """The scaled keep-mask: 0 with probability ``rate``, else 1/(1-rate).

    rng: a numpy or cupy ``Generator`` (explicit, so runs are reproducible). For float16
    (mixed precision) the uniform draws are float32, which is what the generators make:
    the same draws, and so the same mask, as a float32 model's.
    """
    dtype = numpy.dtype(dtype)
    u = rng.random(shape, dtype=numpy.float32 if dtype == numpy.float16 else dtype)
    if fast_kernels_enabled() and get_array_module(u) is not numpy and u.dtype == dtype:
        from . import fast_gpu  # imports CuPy; only reached with GPU arrays
        if fast_gpu.handles(u):
            return fast_gpu.dropout_mask(u, rate)  # the two lines below in one kernel
    keep = u >= rate
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - rate))


def dropout_forward(x, mask):
    """x (any shape) * mask (same shape) -> y. Passing the mask in keeps this op pure."""
    return x * mask, mask


def dropout_backward(gy, mask):
    return gy * mask
