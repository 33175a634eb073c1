"""Upsampling images by whole factors, channels-last: x (N, H, W, C) -> (N, H*sh, W*sw, C).

'nearest' repeats each pixel into an sh x sw block; its backward adds each block's
gradients back into the one pixel they came from.

'bilinear' (Keras's and PyTorch's with align_corners=False) places the output pixel i
at input coordinate (i + 0.5) / s - 0.5 (pixel centres line up, not corners) and mixes the
two input pixels on either side of it by distance, clamping at the border. Along one
axis that is a fixed matrix A (out, in): each row holds the two weights, summing to 1.
Rows and columns are interpolated separately, so y = A_h x A_wᵀ for each image and
channel, and the backward is the same with the transposes: gx = A_hᵀ gy A_w.
"""
import functools

import numpy

from ..backend import get_array_module, matmul

INTERPOLATIONS = ("nearest", "bilinear")


def upsample_nearest_forward(x, size):
    """x (N, H, W, C), size (sh, sw) -> y (N, H*sh, W*sw, C): each pixel an sh x sw block."""
    sh, sw = size
    return x.repeat(sh, axis=1).repeat(sw, axis=2), (sh, sw)


def upsample_nearest_backward(gy, cache):
    """gy (N, H*sh, W*sw, C) -> gx (N, H, W, C): each block's gradients summed."""
    sh, sw = cache
    N, Hs, Ws, C = gy.shape
    return gy.reshape(N, Hs // sh, sh, Ws // sw, sw, C).sum(axis=(2, 4))


@functools.lru_cache(maxsize=64)  # the same few shapes every step: one host-to-device copy each, once
def bilinear_matrix(size, scale, xp, dtype):
    """A (size*scale, size): row i mixes the two input pixels nearest to the output pixel's
    centre, (i + 0.5) / scale - 0.5, clamped to the image, with weights 1 - t and t."""
    centres = numpy.maximum((numpy.arange(size * scale) + 0.5) / scale - 0.5, 0.0)
    low = numpy.floor(centres).astype(int)
    high = numpy.minimum(low + 1, size - 1)
    t = centres - low
    A = numpy.zeros((size * scale, size))
    rows = numpy.arange(size * scale)
    numpy.add.at(A, (rows, low), 1 - t)  # add: at the border low == high, and the two weights join
    numpy.add.at(A, (rows, high), t)
    return xp.asarray(A.astype(dtype))


def upsample_bilinear_forward(x, size):
    """x (N, H, W, C), size (sh, sw) -> y (N, H*sh, W*sw, C), y = A_h x A_wᵀ per image and channel."""
    xp = get_array_module(x)
    N, H, W, C = x.shape
    dtype = numpy.dtype(x.dtype)
    A_h, A_w = bilinear_matrix(H, size[0], xp, dtype), bilinear_matrix(W, size[1], xp, dtype)
    rows = matmul(A_h, x.transpose(1, 0, 2, 3).reshape(H, -1)).reshape(-1, N, W, C)  # (H*sh, N, W, C)
    both = matmul(A_w, rows.transpose(2, 1, 0, 3).reshape(W, -1))                      # (W*sw, N*H*sh*C)
    y = both.reshape(-1, N, H * size[0], C).transpose(1, 2, 0, 3)
    return xp.ascontiguousarray(y), (A_h, A_w)


def upsample_bilinear_backward(gy, cache):
    """gy (N, H*sh, W*sw, C) -> gx (N, H, W, C) = A_hᵀ gy A_w per image and channel."""
    A_h, A_w = cache
    N, Hs, Ws, C = gy.shape
    H, W = A_h.shape[1], A_w.shape[1]
    cols = matmul(A_w.T, gy.transpose(2, 0, 1, 3).reshape(Ws, -1)).reshape(W, N, Hs, C)
    gx = matmul(A_h.T, cols.transpose(2, 1, 0, 3).reshape(Hs, -1)).reshape(H, N, W, C)
    return get_array_module(gy).ascontiguousarray(gx.transpose(1, 0, 2, 3))
