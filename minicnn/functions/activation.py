"""Elementwise functions and softmax. Shapes: y has the shape of x."""
import numpy

from ..backend import fast_kernels_enabled, get_array_module
from . import fast_cpu


def exp_forward(x):
    y = get_array_module(x).exp(x)
    return y, y


def exp_backward(gy, y):
    return gy * y


def log_forward(x):
    return get_array_module(x).log(x), x


def log_backward(gy, x):
    return gy / x


def relu_forward(x):
    """max(0, x). The gradient at exactly 0 is taken as 0, as PyTorch and Keras do."""
    if fast_kernels_enabled():
        if get_array_module(x) is not numpy:
            from . import fast_gpu  # imports CuPy; only reached with GPU arrays
            return fast_gpu.relu_forward(x)
        if x.ndim > 1:
            return fast_cpu.relu_forward(x)
    positive = x > 0
    return x * positive, positive


def relu_backward(gy, positive):
    if fast_kernels_enabled():
        if get_array_module(gy) is not numpy:
            from . import fast_gpu
            return fast_gpu.relu_backward(gy, positive)
        if gy.ndim > 1:
            return fast_cpu.relu_backward(gy, positive)
    return gy * positive


def sigmoid_forward(x):
    xp = get_array_module(x)
    # 1/(1+exp(-x)) overflows exp for very negative x; tanh form is stable everywhere.
    y = 0.5 * (xp.tanh(0.5 * x) + 1)
    return y, y


def sigmoid_backward(gy, y):
    return gy * y * (1 - y)


def tanh_forward(x):
    y = get_array_module(x).tanh(x)
    return y, y


def tanh_backward(gy, y):
    return gy * (1 - y * y)


def softmax_forward(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``; the max is subtracted first so exp never overflows."""
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_backward(gy, cache):
    y, axis = cache
    # Jacobian-vector product of softmax: y * (gy - <gy, y>)
    return y * (gy - (gy * y).sum(axis=axis, keepdims=True))


def log_softmax_forward(x, axis=-1):
    """x - logsumexp(x) along ``axis``, computed stably."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return y, (y, axis)


def log_softmax_backward(gy, cache):
    y, axis = cache
    xp = get_array_module(y)
    return gy - xp.exp(y) * gy.sum(axis=axis, keepdims=True)


def clip_forward(x, low, high):
    """Values limited to [low, high]; no gradient flows where x was clipped."""
    xp = get_array_module(x)
    inside = (x >= low) & (x <= high)
    return xp.clip(x, low, high), inside


def clip_backward(gy, inside):
    return gy * inside
