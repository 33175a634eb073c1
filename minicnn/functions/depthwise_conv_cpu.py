"""Faster CPU (NumPy) depthwise convolution: the same numbers as the tap loop of
depthwise_conv.py (tests/test_fast_kernels.py checks that); read that first.

Why the reference is slow on a CPU: each of the kh*kw taps makes a temporary as large as
the output (the slice times its weights) and adds it in, and the backward sums over the
batch with einsum, which does not use BLAS. Every tap streams the whole batch through
main memory, 9 passes each way for a 3x3 kernel, on one core.

Here, as in conv_cpu.py, each core takes its share of the batch (over_batch) and works on
a few images at a time (chunks_of), so the taps' reads and writes stay in its cache; the
products go into one buffer allocated per chunk (numpy.multiply(..., out=)), and the
weight gradient's sum over the pixels is a product with a vector of ones: BLAS sums far
faster than numpy.sum(axis=0).

Shapes: padded (N, Hp, Wp, C) (the padded input), W (kh, kw, C, M), y (N, oh, ow, C*M).
"""
import numpy

from ..backend import matmul
from ..distributed.threads import add_in_order, chunks_of, over_batch
from .conv import tap


def depthwise_forward(padded, W, b, strides, dilation, oh, ow):
    """padded (N, Hp, Wp, C), W (kh, kw, C, M), b (C*M,) or None -> y (N, oh, ow, C*M)."""
    kh, kw, C, M = W.shape
    (sy, sx), (dy, dx) = strides, dilation
    N = padded.shape[0]
    y = numpy.empty((N, oh, ow, C, M), dtype=padded.dtype)

    # With one filter per channel (M = 1, MobileNet's) drop the M axis: NumPy's inner loop
    # then runs along the C channels, not along an axis of length 1 (forward 25 -> 19 ms
    # for a 3x3 kernel over 128x32x32x32 on the 2-core test machine).
    weights = W[..., 0] if M == 1 else W
    y_taps = y[..., 0] if M == 1 else y

    def work(share):
        for s in chunks_of(share, 3 * oh * ow * C * M * y.itemsize, oh * ow):
            out = y_taps[s]
            product = numpy.empty_like(out)
            for i in range(kh):
                for j in range(kw):
                    pixels = padded[s, tap(i * dy, sy, oh), tap(j * dx, sx, ow), :]  # (n, oh, ow, C)
                    if M > 1:
                        pixels = pixels[..., None]  # each channel times its own M weights
                    if i == 0 and j == 0:
                        numpy.multiply(pixels, weights[0, 0], out=out)
                    else:
                        numpy.multiply(pixels, weights[i, j], out=product)
                        out += product
            out = y[s]
            if b is not None:
                out += b.reshape(C, M)
    over_batch(work, N, nbytes=kh * kw * y.nbytes)
    return y.reshape(N, oh, ow, C * M)


def depthwise_backward(gy, padded, W, strides, dilation, has_bias):
    """gy (N, oh, ow, C*M) -> g_padded (N, Hp, Wp, C), gW (kh, kw, C, M), gb (C*M,) or None."""
    kh, kw, C, M = W.shape
    (sy, sx), (dy, dx) = strides, dilation
    N, oh, ow, _ = gy.shape
    gy5 = gy.reshape(N, oh, ow, C, M)
    g_padded = numpy.empty_like(padded)

    g_taps = gy.reshape(N, oh, ow, C) if M == 1 else gy5  # as the forward: no axis of length 1
    weights = W[..., 0] if M == 1 else W

    def work(share):
        gW = numpy.zeros((kh, kw, C * M), dtype=gy.dtype)
        gb = numpy.zeros(C * M, dtype=gy.dtype)
        for s in chunks_of(share, 3 * oh * ow * C * M * gy.itemsize, oh * ow):
            g = g_taps[s]
            ones = numpy.ones(g.shape[0] * oh * ow, dtype=gy.dtype)
            product = numpy.empty_like(g)
            back = g_padded[s]
            back[...] = 0
            if has_bias:
                gb += matmul(ones, g.reshape(-1, C * M))
            for i in range(kh):
                for j in range(kw):
                    rows, cols = tap(i * dy, sy, oh), tap(j * dx, sx, ow)
                    pixels = padded[s, rows, cols, :]
                    # gW[i, j, c, m]: the pixels tap (i, j) met times gy, summed over the pixels
                    numpy.multiply(pixels if M == 1 else pixels[..., None], g, out=product)
                    gW[i, j] += matmul(ones, product.reshape(-1, C * M))
                    # gx: gy times the tap's weights, summed over the M filters of each channel
                    numpy.multiply(g, weights[i, j], out=product)
                    back[:, rows, cols, :] += product if M == 1 else product.sum(axis=-1)
        return gW, gb
    parts = over_batch(work, N, blas_threads=1, nbytes=2 * kh * kw * gy.nbytes)
    gW = add_in_order([p[0] for p in parts]).reshape(W.shape)
    gb = add_in_order([p[1] for p in parts]) if has_bias else None
    return g_padded, gW, gb
