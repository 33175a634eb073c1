"""Faster CPU (NumPy) batch-norm for training: the same numbers as the reference in
normalization.py (tests/test_fast_kernels.py checks that), a few images at a time on
every core (distributed/threads.py)."""
import numpy

from ..distributed.threads import add_in_order, chunks_of, over_batch
from .normalization import BatchNormCache


def _sum_rows(a):
    """a (M, C) -> (C,): the column sums as a matrix-vector product, several times faster
    than a.sum(axis=0), which NumPy runs as M small additions of C-long rows."""
    return numpy.ones(len(a), dtype=a.dtype) @ a


def batch_norm_train_forward(x, gamma, beta, eps):
    """normalization.batch_norm_train_forward on the cores, a few images at a time.
    x (N, ..., C), gamma/beta (C,) -> y like x, and the same cache as the reference.

    Three passes over x, each thread on its share of the batch: the sum (-> mean); x - mean
    and its squares' sum (-> var), the centred values kept in x_hat; then x_hat scaled and
    y = gamma * x_hat + beta while the chunk is in cache. The partial sums are added in
    thread order, so results do not depend on timing.
    """
    N, C = x.shape[0], x.shape[-1]
    m = x.size // C
    per_image = 2 * x[0].size * x.itemsize
    x_hat = numpy.empty_like(x)
    y = numpy.empty_like(x)

    def total(share):
        return sum(_sum_rows(x[s].reshape(-1, C)) for s in chunks_of(share, per_image, 1))
    mean = add_in_order(over_batch(total, N, blas_threads=1)) / m

    def centre(share):
        squares = numpy.zeros(C, dtype=x.dtype)
        for s in chunks_of(share, per_image, 1):
            d = x_hat[s].reshape(-1, C)
            numpy.subtract(x[s].reshape(-1, C), mean, out=d)
            squares += numpy.einsum("ij,ij->j", d, d)
        return squares
    var = add_in_order(over_batch(centre, N)) / m
    inv_std = 1 / numpy.sqrt(var + eps)

    def normalise(share):
        for s in chunks_of(share, per_image, 1):
            x_hat[s] *= inv_std
            numpy.multiply(x_hat[s], gamma, out=y[s])
            y[s] += beta
    over_batch(normalise, N)
    return y, BatchNormCache(x_hat, gamma, inv_std, tuple(range(x.ndim - 1)), mean, var)


def batch_norm_train_backward(gy, cache):
    """gy like x -> gx, ggamma, gbeta as normalization.batch_norm_train_backward:
    gx = (gamma * inv_std / m) * (m * gy - gbeta - x_hat * ggamma), in two passes."""
    x_hat, gamma, inv_std = cache.x_hat, cache.gamma, cache.inv_std
    N, C = gy.shape[0], gy.shape[-1]
    m = gy.size // C
    per_image = 3 * gy[0].size * gy.itemsize

    def sums(share):
        gbeta, ggamma = numpy.zeros(C, dtype=gy.dtype), numpy.zeros(C, dtype=gy.dtype)
        for s in chunks_of(share, per_image, 1):
            g, xh = gy[s].reshape(-1, C), x_hat[s].reshape(-1, C)
            gbeta += _sum_rows(g)
            ggamma += numpy.einsum("ij,ij->j", g, xh)
        return gbeta, ggamma
    parts = over_batch(sums, N, blas_threads=1)
    gbeta, ggamma = add_in_order([p[0] for p in parts]), add_in_order([p[1] for p in parts])
    scale = gamma * inv_std  # gx = scale * gy - (x_hat * ggamma + gbeta) * scale / m
    shift_x_hat, shift = scale * ggamma / m, scale * gbeta / m
    gx = numpy.empty_like(gy)

    def combine(share):
        for s in chunks_of(share, per_image, 1):
            out = gx[s]
            numpy.multiply(x_hat[s], shift_x_hat, out=out)
            out += shift
            numpy.subtract(gy[s] * scale, out, out=out)
    over_batch(combine, N)
    return gx, ggamma, gbeta

