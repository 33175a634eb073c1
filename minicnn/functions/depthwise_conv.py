"""Depthwise 2-D convolution: every input channel filtered on its own, channels-last.

Shapes:
  x  (N, H, W, C)     W  (kh, kw, C, M)  (Keras's depthwise_kernel; M = depth_multiplier)
  b  (C*M,)           y  (N, oh, ow, C*M): output channel c*M + m is input channel c
                                           filtered by W[:, :, c, m]

A Conv2D mixes all C input channels into each output channel: kh*kw*C weights per output.
A depthwise convolution does not mix them at all: kh*kw weights per output, so it costs
about 1/C of a Conv2D's arithmetic. MobileNet puts a 1x1 Conv2D after it to do the mixing
(the pair is SeparableConv2D). With no sum over channels there is no matrix product to
hand to BLAS: the loop runs over the kh*kw kernel taps, and tap (i, j) is one strided
slice of the padded input (the pixels that tap meets, conv.tap) times that tap's (C, M)
weights, broadcast over the batch and the positions.
"""
import numpy

from ..backend import accurate_sum, fast_kernels_enabled, get_array_module
from . import depthwise_conv_cpu
from .conv import conv_setup, pair, tap


def depthwise_conv2d_forward(x, W, b=None, strides=1, padding="valid", dilation=1):
    """y = depthwise_conv(x, W) + b: x (N, H, W, C), W (kh, kw, C, M), b (C*M,) or None
    -> y (N, oh, ow, C*M). Padding, output size and dilation (dy, dx) as conv2d's."""
    kh, kw, C, M = W.shape
    (sy, sx), ((pt, pb), (pl, pr)), (oh, ow) = conv_setup("depthwise_conv2d", x, W, strides, padding, dilation)
    dy, dx = pair(dilation, "dilation")
    xp = get_array_module(x)
    padded = xp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))) if pt or pb or pl or pr else x
    cache = (padded, W, (pt, pb, pl, pr), (sy, sx), (dy, dx), b is not None)
    if fast_kernels_enabled() and xp is numpy:  # the same loop, on every core, in cache (depthwise_conv_cpu.py)
        return depthwise_conv_cpu.depthwise_forward(padded, W, b, (sy, sx), (dy, dx), oh, ow), cache
    y = xp.zeros((x.shape[0], oh, ow, C, M), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):  # (N, oh, ow, C, 1) * (C, M): each channel times its own M weights
            y += padded[:, tap(i * dy, sy, oh), tap(j * dx, sx, ow), :, None] * W[i, j]
    y = y.reshape(x.shape[0], oh, ow, C * M)
    if b is not None:
        y += b
    return y, cache


def depthwise_conv2d_backward(gy, cache):
    """gy (N, oh, ow, C*M) -> gx (N, H, W, C), gW (kh, kw, C, M), gb (C*M,) or None.

    The same tap loop: tap (i, j)'s weight gradient sums, over the batch and the positions,
    the pixels it met times gy; its share of gx is gy times its weights, summed over M and
    added back into the strided slice it read (within one tap those pixels are distinct)."""
    padded, W, (pt, pb, pl, pr), (sy, sx), (dy, dx), has_bias = cache
    xp = get_array_module(gy)
    H, W_ = padded.shape[1], padded.shape[2]
    if fast_kernels_enabled() and xp is numpy:
        g_padded, gW, gb = depthwise_conv_cpu.depthwise_backward(gy, padded, W, (sy, sx), (dy, dx), has_bias)
        return g_padded[:, pt:H - pb, pl:W_ - pr, :], gW, gb
    kh, kw, C, M = W.shape
    N, oh, ow, _ = gy.shape
    gy5 = gy.reshape(N, oh, ow, C, M)
    gW = xp.empty_like(W)
    g_padded = xp.zeros_like(padded)
    for i in range(kh):
        for j in range(kw):
            rows, cols = tap(i * dy, sy, oh), tap(j * dx, sx, ow)
            gW[i, j] = xp.einsum("nhwc,nhwcm->cm", padded[:, rows, cols, :], gy5)
            g_padded[:, rows, cols, :] += xp.einsum("nhwcm,cm->nhwc", gy5, W[i, j])
    gx = g_padded[:, pt:H - pb, pl:W_ - pr, :]
    gb = accurate_sum(gy.reshape(-1, C * M), axis=0) if has_bias else None
    return gx, gW, gb
