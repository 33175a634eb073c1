"""Elementwise functions and softmax. Shapes: y has the shape of x."""
import math

import numpy

from ..backend import accurate_sum, fast_kernels_enabled, get_array_module
from . import activation_cpu


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
            if fast_gpu.handles(x):
                return fast_gpu.relu_forward(x)
        elif x.ndim > 1:
            return activation_cpu.relu_forward(x)
    positive = x > 0
    return x * positive, positive


def relu_backward(gy, positive):
    if fast_kernels_enabled():
        if get_array_module(gy) is not numpy:
            from . import fast_gpu
            if fast_gpu.handles(gy):
                return fast_gpu.relu_backward(gy, positive)
        elif gy.ndim > 1:
            return activation_cpu.relu_backward(gy, positive)
    return gy * positive


def bias_relu_forward(x, b):
    """x (..., C), b (C,) -> y = max(0, x + b) like x, and its mask: a conv or dense
    layer's bias and its ReLU as one op. On a GPU that is one kernel each way (fast_gpu),
    where a bias add and a ReLU are two launches forward and three backward with the bias's
    gradient; the CPU's convolutions add their bias inside their GEMM, so layers use this
    only on a GPU (functional.fuses_bias_relu)."""
    if fast_kernels_enabled() and get_array_module(x) is not numpy:
        from . import fast_gpu  # imports CuPy; only reached with GPU arrays
        if fast_gpu.handles(x, b):
            return fast_gpu.bias_relu_forward(x, b)
    z = x + b
    positive = z > 0
    return z * positive, positive


def bias_relu_backward(gy, positive):
    """gy (..., C) -> gx = gy * mask (relu_backward), gb (C,) = gx summed over every axis
    but the last (a bias's gradient)."""
    if fast_kernels_enabled() and get_array_module(gy) is not numpy:
        from . import fast_gpu, fast_gpu_sums
        if fast_gpu.handles(gy):
            return fast_gpu_sums.relu_backward_bias_sums(gy, positive)
    gx = gy * positive
    return gx, accurate_sum(gx, axis=tuple(range(gx.ndim - 1)))


def relu_family_forward(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's ReLU layer (LeakyReLU too): x for threshold <= x < max_value, max_value
    above it, negative_slope * (x - threshold) below the threshold. Cache: the slope
    of each element (1, 0 above max_value, or negative_slope), which is the backward."""
    xp = get_array_module(x)
    f = x.dtype.type
    below = x < f(threshold)
    y = xp.where(below, f(negative_slope) * (x - f(threshold)), x)
    slope = xp.where(below, f(negative_slope), f(1))
    if max_value is not None:
        above = x >= f(max_value)
        y = xp.where(above, f(max_value), y)
        slope = xp.where(above, f(0), slope)
    return y, slope.astype(x.dtype)


def relu_family_backward(gy, slope):
    return gy * slope


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


# Abramowitz & Stegun 7.1.26: erf(x) = 1 - t(a1 + t(a2 + ... a5)) exp(-x^2), t = 1/(1 + p x),
# for x >= 0, absolute error below 1.5e-7. Evaluated in float32 the error stays below 5e-7
# (measured, tests/test_speedrun.py): a few float32 steps of 6e-8 near 1, from which small
# erf values are a difference. Phi = (1 + erf) / 2, which GELU uses, needs no better.
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_exact_erf = numpy.vectorize(math.erf, otypes=[numpy.float64])


def erf(x):
    """The error function, elementwise. NumPy has none: float32 uses the A&S polynomial
    above (a dozen array operations); float64, which minicnn uses for gradient checks,
    calls math.erf per element (exact, slow); CuPy has its own."""
    xp = get_array_module(x)
    if xp is not numpy:
        import cupyx.scipy.special  # only reached with GPU arrays
        return cupyx.scipy.special.erf(x)
    if x.dtype == numpy.float64:
        return _exact_erf(x)
    f = x.dtype.type
    z = numpy.abs(x)
    t = 1 / (1 + f(_ERF_P) * z)
    poly = f(_ERF_A[4])
    for a in reversed(_ERF_A[:4]):  # Horner: a1 + t(a2 + t(a3 + t(a4 + t a5)))
        poly = poly * t + f(a)
    y = 1 - poly * t * numpy.exp(-z * z)
    return numpy.copysign(y, x)  # erf is odd


def gelu_forward(x, approximate="none"):
    """GELU(x) = x * Phi(x), Phi the standard normal CDF: 0.5 * (1 + erf(x / sqrt 2)).
    approximate='tanh' uses 0.5 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) for Phi,
    as PyTorch's GELU(approximate='tanh').

    Cache: the slope dy/dx = Phi(x) + x Phi'(x), computed here while Phi is at hand
    (Phi' is the normal density, or the derivative of the tanh formula)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    xp = get_array_module(x)
    if fast_kernels_enabled() and approximate == "none":
        if xp is not numpy:
            from . import fast_gpu  # imports CuPy; only reached with GPU arrays
            if fast_gpu.handles(x):
                return fast_gpu.gelu_forward(x)  # one fused kernel, CUDA's own erf
        elif x.dtype == numpy.float32:
            return activation_cpu.gelu_forward(x)  # the same formula, fused and on every core
        elif x.dtype == numpy.float16:  # NumPy's float16 arithmetic is slow: in float32, rounded once
            y, slope = activation_cpu.gelu_forward(x.astype(numpy.float32))
            return y.astype(numpy.float16), slope.astype(numpy.float16)
    f = x.dtype.type
    if approximate == "none":
        cdf = f(0.5) * (1 + erf(x * f(1 / math.sqrt(2))))
        density = f(1 / math.sqrt(2 * math.pi)) * xp.exp(f(-0.5) * x * x)
    else:  # Phi = 0.5 (1 + tanh(u)), u = k (x + c x^3): Phi' = 0.5 (1 - tanh(u)^2) k (1 + 3c x^2)
        k, c = f(math.sqrt(2 / math.pi)), f(0.044715)
        tanh_u = xp.tanh(k * (x + c * x * x * x))
        cdf = f(0.5) * (1 + tanh_u)
        density = f(0.5) * (1 - tanh_u * tanh_u) * k * (1 + 3 * c * x * x)
    return x * cdf, cdf + x * density


def gelu_backward(gy, slope):
    if fast_kernels_enabled() and get_array_module(gy) is numpy and gy.ndim > 1:
        return activation_cpu.multiply(gy, slope)
    return gy * slope


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
