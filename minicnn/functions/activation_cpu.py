"""Faster CPU (NumPy) ReLU and GELU: the same numbers as the reference in activation.py
(tests/test_fast_kernels.py checks that), the batch split over the cores
(distributed/threads.py), GELU fused so its temporaries stay in the cache."""
import math

import numpy

from ..distributed.threads import over_batch


def relu_forward(x):
    """x (N, ...) -> (max(0, x), x > 0), the batch split over the cores."""
    y = numpy.empty_like(x)
    positive = numpy.empty(x.shape, dtype=bool)

    def work(s):
        numpy.greater(x[s], 0, out=positive[s])
        # One pass, where a product with the bool mask would convert it to floats on the
        # way (1.6x slower). Negatives give +0.0 here and -0.0 in the reference's product:
        # equal numbers (PyTorch gives +0.0 too); a NaN stays NaN in both.
        numpy.maximum(x[s], x.dtype.type(0), out=y[s])
    over_batch(work, len(x), nbytes=x.nbytes)
    return y, positive


def relu_backward(gy, positive):
    return multiply(gy, positive)


def multiply(a, b):
    """a * b for arrays of one shape (N, ...), the batch split over the cores."""
    out = numpy.empty_like(a)
    over_batch(lambda s: numpy.multiply(a[s], b[s], out=out[s]), len(a), nbytes=a.nbytes)
    return out


GELU_CHUNK = 65536  # elements at a time: the temporaries below (256 KiB each) stay in the L2 cache


def gelu_forward(x):
    """float32 x -> (x * Phi(x), slope Phi(x) + x * phi(x)), as activation.gelu_forward
    with its erf formula, but fused: each core takes a share of the elements and runs all
    twenty-odd steps on GELU_CHUNK of them at a time, in place, instead of twenty passes
    over arrays of the batch's size through main memory.

    With u = |x| / sqrt 2 and t = 1 / (1 + p u): the tail q = P(X > |x|) = 0.5 poly(t) t
    exp(-u^2), Phi(x) = 1 - q for x >= 0 and q below, and exp(-u^2) = exp(-x^2 / 2) is
    the normal density up to 1 / sqrt(2 pi): the slope needs no second exp."""
    from .activation import _ERF_A, _ERF_P
    f = x.dtype.type
    flat = numpy.ascontiguousarray(x).reshape(-1)
    y, slope = numpy.empty_like(flat), numpy.empty_like(flat)

    def work(s):
        for a in range(s.start, s.stop, GELU_CHUNK):
            b = min(a + GELU_CHUNK, s.stop)
            xs = flat[a:b]
            u = numpy.abs(xs)
            u *= f(1 / math.sqrt(2))
            e = numpy.multiply(u, u)
            numpy.negative(e, out=e)
            numpy.exp(e, out=e)  # exp(-x^2/2)
            t = numpy.multiply(u, f(_ERF_P), out=u)
            t += 1
            numpy.reciprocal(t, out=t)
            q = numpy.multiply(t, f(_ERF_A[4]))
            for coefficient in reversed(_ERF_A[:4]):  # Horner, as activation.erf
                q += f(coefficient)
                q *= t
            q *= e
            q *= f(0.5)  # the tail P(X > |x|)
            cdf = numpy.subtract(f(0.5), q, out=q)
            numpy.copysign(cdf, xs, out=cdf)
            cdf += f(0.5)  # 1 - tail for x >= 0, tail for x < 0
            numpy.multiply(xs, cdf, out=y[a:b])
            e *= xs
            e *= f(1 / math.sqrt(2 * math.pi))
            numpy.add(cdf, e, out=slope[a:b])
    over_batch(work, flat.size, nbytes=8 * flat.nbytes)  # twenty-odd passes in the cache: worth splitting sooner
    return y.reshape(x.shape), slope.reshape(x.shape)
