"""2-D average pooling, channels-last, as Keras computes it.

x (N, H, W, C) -> y (N, oh, ow, C). Each output is the mean of a ph x pw window. With
padding='same', a window that hangs over the edge averages only the cells inside the
image (Keras's and TensorFlow's rule; PyTorch's avg_pool2d would count the zero padding
unless count_include_pad=False). The backward spreads each gy evenly over the cells its
window averaged.
"""
from ..backend import get_array_module
from .conv import conv_geometry, normalize_padding, pair
from .pooling import _tap_slices


def _cells_per_window(xp, shape, pads, pool, strides, out, dtype):
    """(oh, ow, 1): how many real (unpadded) cells each window covers."""
    (pt, pb), (pl, pr) = pads
    inside = xp.pad(xp.ones(shape[1:3] + (1,), dtype=dtype), ((pt, pb), (pl, pr), (0, 0)))
    count = 0
    for tap in range(pool[0] * pool[1]):
        count = count + inside[_tap_slices(tap // pool[1], tap % pool[1], *strides, *out)[1:]]
    return count


def avg_pool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """x (N, H, W, C) -> y (N, oh, ow, C); strides default to the pool size (Keras).
    A loop over the ph*pw window taps adds up strided views of the (zero-padded) input."""
    xp = get_array_module(x)
    if x.ndim != 4:
        raise ValueError(f"avg_pool2d expects x of rank 4 (N, H, W, C), got shape {x.shape}")
    ph, pw = pair(pool_size, "pool_size")
    sy, sx = pair(strides if strides is not None else (ph, pw), "strides")
    pads, (oh, ow) = conv_geometry(x.shape, ph, pw, sy, sx, normalize_padding(padding))
    (pt, pb), (pl, pr) = pads
    padded = xp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))) if pt or pb or pl or pr else x
    total = 0
    for tap in range(ph * pw):
        total = total + padded[_tap_slices(tap // pw, tap % pw, sy, sx, oh, ow)]
    count = _cells_per_window(xp, x.shape, pads, (ph, pw), (sy, sx), (oh, ow), x.dtype)
    return total / count, (x.shape, padded.shape, (ph, pw), (sy, sx), pads, count)


def avg_pool2d_backward(gy, cache):
    """gy (N, oh, ow, C) -> gx (N, H, W, C): each cell gets gy / count from every window
    that averaged it."""
    x_shape, padded_shape, (ph, pw), (sy, sx), pads, count = cache
    xp = get_array_module(gy)
    _, oh, ow, _ = gy.shape
    share = gy / count
    gx = xp.zeros(padded_shape, dtype=gy.dtype)
    for tap in range(ph * pw):
        gx[_tap_slices(tap // pw, tap % pw, sy, sx, oh, ow)] += share
    (pt, _), (pl, _) = pads
    return gx[:, pt:pt + x_shape[1], pl:pl + x_shape[2], :]
