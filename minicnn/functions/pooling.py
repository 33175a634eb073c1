"""2-D max-pooling, channels-last.

x (N, H, W, C) -> y (N, oh, ow, C). Each output is the max over a ph x pw window;
the backward sends gy to the position that won (the first one on ties, as PyTorch).
"""
import numpy

from ..backend import fast_kernels_enabled, get_array_module
from . import pooling_cpu
from .conv import conv_geometry, normalize_padding, pair, tap


def _tap_slices(i, j, sy, sx, oh, ow):
    return (slice(None), tap(i, sy, oh), tap(j, sx, ow))


def max_pool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """x (N, H, W, C) -> y (N, oh, ow, C); strides default to the pool size (Keras).

    Loops over the ph*pw window taps, keeping the running max and which tap holds it
    (``winner``), so the backward needs no scatter.
    """
    xp = get_array_module(x)
    if x.ndim != 4:
        raise ValueError(f"max_pool2d expects x of rank 4 (N, H, W, C), got shape {x.shape}")
    ph, pw = pair(pool_size, "pool_size")
    sy, sx = pair(strides if strides is not None else (ph, pw), "strides")
    padding = normalize_padding(padding)
    pads, (oh, ow) = conv_geometry(x.shape, ph, pw, sy, sx, padding)
    (pt, pb), (pl, pr) = pads
    if fast_kernels_enabled():
        if xp is numpy and (sy, sx) == (ph, pw) and not (pt or pb or pl or pr):
            y, saved = pooling_cpu.max_pool2d_tiles_forward(x, ph, pw, oh, ow)
            return y, ("tiles", saved)
        if xp is not numpy:
            from . import fast_gpu
            if fast_gpu.handles(x):
                y, saved = fast_gpu.max_pool2d_forward(x, (ph, pw), (sy, sx), pads, oh, ow)
                return y, ("gpu", saved)
    if pt or pb or pl or pr:  # padded cells must never win the max
        x = xp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-xp.inf)
    y = None
    winner = xp.zeros((x.shape[0], oh, ow, x.shape[3]), dtype=xp.int32)
    for k in range(ph * pw):  # the window's k-th tap, row by row
        window = x[_tap_slices(k // pw, k % pw, sy, sx, oh, ow)]
        if y is None:
            y = window.copy()
            continue
        better = window > y  # strict: the first maximum wins ties
        y = xp.where(better, window, y)
        winner = xp.where(better, k, winner)
    return y, ("taps", (winner, x.shape, (ph, pw), (sy, sx), pads))


def max_pool2d_backward(gy, cache):
    """gy (N, oh, ow, C) -> gx (N, H, W, C)."""
    method, saved = cache
    if method == "tiles":
        return pooling_cpu.max_pool2d_tiles_backward(gy, saved)
    if method == "gpu":
        from . import fast_gpu
        return fast_gpu.max_pool2d_backward(gy, saved)
    winner, padded_shape, (ph, pw), (sy, sx), pads = saved
    xp = get_array_module(gy)
    _, oh, ow, _ = gy.shape
    gx = xp.zeros(padded_shape, dtype=gy.dtype)
    zero = gy.dtype.type(0)
    for k in range(ph * pw):
        # Overlapping windows (stride < pool) can route several outputs to one input: +=.
        gx[_tap_slices(k // pw, k % pw, sy, sx, oh, ow)] += xp.where(winner == k, gy, zero)
    (pt, pb), (pl, pr) = pads
    return gx[:, pt:padded_shape[1] - pb, pl:padded_shape[2] - pr, :]
