"""2-D convolution by im2col + one matrix multiply (GEMM), channels-last.

Names as in Chainer: x (input), W (kernel), b (bias), gy/gx/gW/gb (gradients),
kh, kw (kernel height/width), sy, sx (strides), ph/pw (padding), dy, dx (dilation).

Shapes:
  x   (N, H, W, C)          W  (kh, kw, C, F)   (Keras layout)     b (F,)
  col (N, oh, ow, kh, kw, C): every kh x kw x C patch, flattened to one GEMM row
  y   (N, oh, ow, F)

Two options of Keras's and PyTorch's Conv2D change which pixels a patch holds and which
weights meet them, not the method:
  dilation (dy, dx): the kernel's taps are spread dy rows and dx columns apart, so a 3x3
      kernel at dilation 2 sees a 5x5 window (every other pixel) with 9 weights. The
      window's size, (kh - 1) * dy + 1, takes kh's place in the padding and output-size
      arithmetic, and tap i reads input row i * dy (+ the stride's steps).
  groups G: the C input channels split into G groups of C/G, and the F filters into G
      groups of F/G; filter group g sees only channel group g, so W is (kh, kw, C/G, F)
      and the one GEMM becomes G smaller ones (each patch row's channels split G ways).
The fast CPU and GPU paths below cover the plain convolution (dilation 1, one group), the
one every model in examples/ uses; dilated and grouped convolutions take the reference.
"""
import functools
import math

import numpy

from ..backend import accurate_sum, fast_kernels_enabled, get_array_module, matmul
from . import conv_cpu


def pair(value, what):
    """2 -> (2, 2); (2, 3) -> (2, 3); anything else is an error naming ``what``."""
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f"{what} must be a positive int or a pair of them, got {value!r}")
    return value


def normalize_padding(padding):
    """'valid', 'same' (any case) or a non-negative int or (ph, pw) pair."""
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid', 'same' or an int, got {padding!r}")
        return padding.lower()
    if isinstance(padding, int):
        padding = (padding, padding)
    padding = tuple(padding)
    if len(padding) != 2 or not all(isinstance(p, int) and p >= 0 for p in padding):
        raise ValueError(f"padding must be 'valid', 'same' or a non-negative int, got {padding!r}")
    return padding


def pad_amounts(size, k, s, padding):
    """(before, after) padding along one axis of length ``size``.

    'same' follows TensorFlow/Keras: the output has ceil(size / s) positions and,
    when the total padding is odd, the extra row/column goes after (bottom/right).
    """
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = math.ceil(size / s)
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2
    return padding, padding


def get_conv_outsize(size, k, s, pad_before, pad_after):
    """Output length: floor((size + padding - k) / s) + 1."""
    return (size + pad_before + pad_after - k) // s + 1


@functools.lru_cache(maxsize=4096)  # a pure function of a few ints, asked twice per conv per step
def conv_geometry(x_shape, kh, kw, sy, sx, padding):
    """Padding per side ((pt, pb), (pl, pr)) and output size (oh, ow) for an (N, H, W, C) input."""
    _, H, W, _ = x_shape
    rows = pad_amounts(H, kh, sy, padding if isinstance(padding, str) else padding[0])
    cols = pad_amounts(W, kw, sx, padding if isinstance(padding, str) else padding[1])
    if H + sum(rows) < kh or W + sum(cols) < kw:
        raise ValueError(f"kernel {kh}x{kw} is larger than the padded input "
                         f"{H + sum(rows)}x{W + sum(cols)} (input {x_shape})")
    return (rows, cols), (get_conv_outsize(H, kh, sy, *rows), get_conv_outsize(W, kw, sx, *cols))


def tap(i, stride, count):
    """Along one axis, the input positions kernel tap i meets for ``count`` outputs with
    this stride: i, i + stride, ..., i + stride * (count - 1), as one strided slice."""
    return slice(i, i + stride * (count - 1) + 1, stride)


def dilated_size(k, d):
    """The window a kernel of k taps spans when its taps are d apart: (k - 1) * d + 1."""
    return (k - 1) * d + 1


def conv_setup(op, x, W, strides, padding, dilation=1, groups=1):
    """What a convolution op (``op`` names it in errors) works out from x (N, H, W, C) and
    its kernel W (kh, kw, C / groups, ...) before any arithmetic: ((sy, sx), pads, (oh, ow)),
    or a ValueError for an input that is not a batch of images or has the wrong channels."""
    if x.ndim != 4:
        raise ValueError(f"{op} expects x of rank 4 (N, H, W, C), got shape {x.shape}")
    kh, kw, C = W.shape[:3]
    if x.shape[3] != C * groups:
        per_group = f" ({C} per group x {groups} groups)" if groups > 1 else ""
        raise ValueError(f"{op}: input has {x.shape[3]} channels, kernel {W.shape} expects {C * groups}{per_group}")
    sy, sx = pair(strides, "strides")
    dy, dx = pair(dilation, "dilation")
    return (sy, sx), *conv_geometry(x.shape, dilated_size(kh, dy), dilated_size(kw, dx), sy, sx,
                                    normalize_padding(padding))


def im2col(x, kh, kw, sy, sx, pads, fill=0, dilation=(1, 1)):
    """(N, H, W, C) -> (N, oh, ow, kh, kw, C) patches.

    Loops only over the kh*kw kernel taps: tap (i, j) sees the input pixels
    x[i*dy + sy*r, j*dx + sx*c] for every output position (r, c), which is one strided
    slice, copied at once. (dy, dx) is the dilation, (1, 1) for a plain convolution.
    """
    xp = get_array_module(x)
    dy, dx = dilation
    (pt, pb), (pl, pr) = pads
    if pt or pb or pl or pr:
        x = xp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    N, H, W, C = x.shape
    oh, ow = (H - dilated_size(kh, dy)) // sy + 1, (W - dilated_size(kw, dx)) // sx + 1
    col = xp.empty((N, oh, ow, kh, kw, C), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            col[:, :, :, i, j, :] = x[:, tap(i * dy, sy, oh), tap(j * dx, sx, ow), :]
    return col


def col2im(col, x_shape, sy, sx, pads, dilation=(1, 1)):
    """Adjoint of im2col: (N, oh, ow, kh, kw, C) -> (N, H, W, C), summing overlaps.

    Same tap loop as im2col, with += into the strided slice. Within one tap the
    slice positions are distinct, so no scatter-add (np.add.at) is needed.
    """
    xp = get_array_module(col)
    dy, dx = dilation
    N, oh, ow, kh, kw, C = col.shape
    (pt, pb), (pl, pr) = pads
    H, W = x_shape[1] + pt + pb, x_shape[2] + pl + pr
    gx = xp.zeros((N, H, W, C), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            gx[:, tap(i * dy, sy, oh), tap(j * dx, sx, ow), :] += col[:, :, :, i, j, :]
    return gx[:, pt:H - pb, pl:W - pr, :]


# Which CPU path (see conv_cpu.py), as measured by benchmarks/run.py and tests on one core:
# below ROWS_MIN_CHANNELS input channels (RGB, and other thin inputs) the planar im2col,
# whose copies move whole image rows and whose GEMM carries the bias; kernel rows for
# wider inputs at stride 1 across, unless the image is so narrow that the columns it
# computes and throws away (Wp/ow: 6/4 on a 4x4 VGG block) cost more than im2col's
# copies save; blocked im2col for the rest (strides across, narrow images).
ROWS_MIN_CHANNELS = 12
ROWS_MAX_WASTE = 1.25


def cpu_path(C, kw, sx, ow):
    """'planar', 'rows' or 'im2col-blocked': the fast CPU convolution for this shape."""
    if C < ROWS_MIN_CHANNELS:
        return "planar"
    if sx == 1 and (ow + kw - 1) / ow <= ROWS_MAX_WASTE:
        return "rows"
    return "im2col-blocked"


def group_patches(col, g, groups):
    """Group g's share of every patch row: col (N, oh, ow, kh, kw, C) -> (N*oh*ow, kh*kw*C/groups),
    the C/groups channels of group g at each of the kh*kw taps."""
    N, oh, ow, kh, kw, C = col.shape
    Cg = C // groups
    return col.reshape(-1, kh * kw, groups, Cg)[:, :, g, :].reshape(-1, kh * kw * Cg)


def group_outputs(g, F, groups):
    """The output channels (filters) of group g, as a slice of F."""
    return slice(g * (F // groups), (g + 1) * (F // groups))


def conv2d_forward(x, W, b=None, strides=1, padding="valid", input_grad=True, dilation=1, groups=1):
    """y = conv(x, W) + b.

    x (N, H, W, C), W (kh, kw, C / groups, F), b (F,) or None  ->  y (N, oh, ow, F)
    input_grad: False when x needs no gradient (the first layer), so the backward
    skips gx, its most expensive part.
    dilation (dy, dx) and groups: as Keras's dilation_rate and groups (module docstring).
    """
    kh, kw, Cg, F = W.shape
    if not isinstance(groups, int) or groups < 1 or F % groups:
        raise ValueError(f"conv2d: groups must be a positive int that divides the {F} filters, got {groups!r}")
    (sy, sx), pads, (oh, ow) = conv_setup("conv2d", x, W, strides, padding, dilation, groups)
    dilation = pair(dilation, "dilation")
    xp = get_array_module(x)
    plain = dilation == (1, 1) and groups == 1
    if fast_kernels_enabled() and xp is numpy and plain:
        path = cpu_path(Cg, kw, sx, ow)
        if path == "planar":
            y, saved = conv_cpu.conv2d_planar_forward(x, W, b, (sy, sx), pads, oh, ow)
        elif path == "rows":
            y, saved = conv_cpu.conv2d_rows_forward(x, W, b, sy, pads, oh, ow)
        else:
            y, saved = conv_cpu.conv2d_im2col_forward(x, W, b, (sy, sx), pads, oh, ow)
        return y, (path, saved, input_grad)
    if fast_kernels_enabled() and plain:
        from . import fast_gpu  # imports CuPy; only reached with GPU arrays
        if fast_gpu.handles(x, W):
            y, saved = fast_gpu.conv2d_forward(x, W, b, (sy, sx), pads, oh, ow)
            return y, ("gpu", saved, input_grad)
    col = im2col(x, kh, kw, sy, sx, pads, dilation=dilation)
    # One GEMM: (N*oh*ow, kh*kw*C) @ (kh*kw*C, F). W's Keras layout flattens in the
    # same (kh, kw, C) order as a patch row, so no transpose is needed.
    W2 = W.reshape(-1, F)
    if groups == 1:
        y = matmul(col.reshape(-1, kh * kw * Cg), W2)
    else:  # one GEMM per group: its channels of each patch times its filters' columns
        y = xp.concatenate([matmul(group_patches(col, g, groups), W2[:, group_outputs(g, F, groups)])
                            for g in range(groups)], axis=1)
    if b is not None:
        y += b
    saved = (col, W, x.shape, (sy, sx), pads, b is not None, dilation, groups)
    return y.reshape(x.shape[0], oh, ow, F), ("im2col", saved, input_grad)


def conv2d_backward(gy, cache):
    """gy (N, oh, ow, F) -> gx (N, H, W, C) (None if not wanted), gW (kh, kw, C / groups, F),
    gb (F,) or None.

    Two GEMMs and a col2im: gW = colᵀ·gy, gcol = gy·Wᵀ, gx = col2im(gcol); with groups,
    two of each per group, each group's columns of col and gy alone.
    """
    method, saved, input_grad = cache
    if method == "planar":
        return conv_cpu.conv2d_planar_backward(gy, saved, input_grad)
    if method == "rows":
        return conv_cpu.conv2d_rows_backward(gy, saved, input_grad)
    if method == "im2col-blocked":
        return conv_cpu.conv2d_im2col_backward(gy, saved, input_grad)
    if method == "gpu":
        from . import fast_gpu
        return fast_gpu.conv2d_backward(gy, saved, input_grad)
    col, W, x_shape, (sy, sx), pads, has_bias, dilation, groups = saved
    kh, kw, Cg, F = W.shape
    gy2, W2 = gy.reshape(-1, F), W.reshape(-1, F)
    gb = accurate_sum(gy2, axis=0) if has_bias else None
    xp = get_array_module(gy)
    if groups == 1:
        gW = matmul(col.reshape(-1, kh * kw * Cg).T, gy2)
    else:
        gW = xp.concatenate([matmul(group_patches(col, g, groups).T, gy2[:, group_outputs(g, F, groups)])
                             for g in range(groups)], axis=1)
    gW = gW.reshape(W.shape)
    if not input_grad:
        return None, gW, gb
    if groups == 1:
        gcol = matmul(gy2, W2.T)
    else:  # group g's gradient goes back to its own channels of each patch row
        gcol = xp.stack([matmul(gy2[:, outputs], W2[:, outputs].T).reshape(-1, kh * kw, Cg)
                         for outputs in (group_outputs(g, F, groups) for g in range(groups))], axis=2)
    gx = col2im(gcol.reshape(col.shape), x_shape, sy, sx, pads, dilation)
    return gx, gW, gb
