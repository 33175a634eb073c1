"""Resizing images to any size, channels-last: x (N, H, W, C) -> (N, OH, OW, C).

Both interpolations are Keras's (TensorFlow's resize, antialias off) and PyTorch's
interpolate with align_corners=False: the output pixel i of OH sits at input coordinate
(i + 0.5) * H / OH - 0.5, so the images' outer edges line up, not their corner pixels.

'bilinear' mixes the two input pixels on either side of that point by distance,
clamping at the border. 'nearest' takes the one pixel whose square holds it,
floor((i + 0.5) * H / OH) (PyTorch's 'nearest-exact').

Along one axis either is a fixed matrix A (OH, H) whose rows sum to 1, the same for
every image and channel. Rows and columns are resampled one after the other,
y = A_h x A_wᵀ per image and channel: two matrix products. The backward is the same
with the transposes, gx = A_hᵀ gy A_w, because a matrix's adjoint is its transpose.
Nothing is learned, and the matrices are tiny (OH x H), so the cost is two GEMMs.
"""
import functools

import numpy

from ..backend import get_array_module, matmul

INTERPOLATIONS = ("bilinear", "nearest")


@functools.lru_cache(maxsize=64)  # the same few shapes every step: one host-to-device copy each, once
def interpolation_matrix(in_size, out_size, interpolation, xp, dtype):
    """A (out_size, in_size): row i says how much of each input pixel output pixel i takes."""
    centres = (numpy.arange(out_size) + 0.5) * (in_size / out_size)  # in input pixels, edges at 0 and in_size
    rows = numpy.arange(out_size)
    A = numpy.zeros((out_size, in_size))
    if interpolation == "nearest":
        A[rows, numpy.minimum(numpy.floor(centres).astype(int), in_size - 1)] = 1.0
    else:
        # pixel j's centre is at j + 0.5: the point lies t of the way from pixel low to low + 1
        position = numpy.maximum(centres - 0.5, 0.0)
        low = numpy.floor(position).astype(int)
        high = numpy.minimum(low + 1, in_size - 1)
        t = position - low
        numpy.add.at(A, (rows, low), 1 - t)  # add: at the border low == high, and the two weights join
        numpy.add.at(A, (rows, high), t)
    return xp.asarray(A.astype(dtype))


def resize_forward(x, size, interpolation="bilinear"):
    """x (N, H, W, C), size (OH, OW) -> y (N, OH, OW, C) = A_h x A_wᵀ per image and channel."""
    xp = get_array_module(x)
    N, H, W, C = x.shape
    OH, OW = size
    dtype = numpy.dtype(x.dtype)
    A_h = interpolation_matrix(H, OH, interpolation, xp, dtype)
    A_w = interpolation_matrix(W, OW, interpolation, xp, dtype)
    rows = matmul(A_h, x.transpose(1, 0, 2, 3).reshape(H, -1)).reshape(OH, N, W, C)
    both = matmul(A_w, rows.transpose(2, 1, 0, 3).reshape(W, -1))               # (OW, N*OH*C)
    y = both.reshape(OW, N, OH, C).transpose(1, 2, 0, 3)
    return xp.ascontiguousarray(y), (A_h, A_w)


def resize_backward(gy, cache):
    """gy (N, OH, OW, C) -> gx (N, H, W, C) = A_hᵀ gy A_w per image and channel."""
    A_h, A_w = cache
    N, OH, OW, C = gy.shape
    H, W = A_h.shape[1], A_w.shape[1]
    cols = matmul(A_w.T, gy.transpose(2, 0, 1, 3).reshape(OW, -1)).reshape(W, N, OH, C)
    gx = matmul(A_h.T, cols.transpose(2, 1, 0, 3).reshape(OH, -1)).reshape(H, N, W, C)
    return get_array_module(gy).ascontiguousarray(gx.transpose(1, 0, 2, 3))
