"""Transposed 2-D convolution (Keras's Conv2DTranspose, PyTorch's ConvTranspose2d): the
backward of a convolution, run as a layer of its own. Channels-last.

A strided Conv2D maps a large image to a small one; its input gradient (conv.py's
col2im(gy · Wᵀ)) maps the small one back to the large one's shape. A transposed
convolution is exactly that map, with its own trained kernel: every input pixel spreads
its channels, times the kernel, over a kh x kw window of the output, windows ``strides``
apart, and the overlaps add. That makes an image larger (a decoder's, a GAN generator's
upsampling step), which is why it is sometimes called a "deconvolution" (it is not the
inverse of a convolution; only its transpose).

Shapes:
  x  (N, H, W, C)         W  (kh, kw, F, C)  (Keras's layout: a Conv2D kernel from F to C
                                             channels, whose transpose this is)
  b  (F,)                 y  (N, oh, ow, F)
Output size along an axis (Keras's deconv_output_length), k the dilated window:
  'valid'   (H - 1) * s + k        (H * s when k < s: the rows no window reaches are 0)
  'same'    H * s
  output_padding p (0 <= p < s) instead: (H - 1) * s + k - 2 * (k // 2 if 'same' else 0) + p
The method: the "canvas" of every window's full reach, (H - 1) * s + k rows, is col2im of
x · Wᵀ; the output is the canvas cropped. 'same' crops as the Conv2D it transposes pads
(TensorFlow's rule): the odd row of the padding at the bottom, so ``before`` = total // 2
rows come off the top. The backward is the Conv2D itself: im2col of gy on the canvas.
"""
from ..backend import accurate_sum, get_array_module, matmul
from .conv import col2im, dilated_size, im2col, normalize_padding, pair


def transpose_output_size(size, k, s, padding, output_padding=None):
    """One axis's output length, as Keras computes it (k: the dilated window)."""
    if output_padding is None:
        return size * s if padding == "same" else size * s + max(k - s, 0)
    pad = k // 2 if padding == "same" else 0
    return (size - 1) * s + k - 2 * pad + output_padding


def crop_before(out, size, k, s, padding):
    """Rows (or columns) cropped off the canvas's start: what the transposed Conv2D pads
    before, on an input of ``out`` rows ('same': half the total, rounded down)."""
    if padding != "same":
        return 0
    return max((size - 1) * s + k - out, 0) // 2


def transpose_geometry(x_shape, W_shape, strides, padding, output_padding, dilation):
    """((sy, sx), (dy, dx), (oh, ow), (top, left), canvas (Hc, Wc)) for x (N, H, W, C), W (kh, kw, F, C)."""
    _, H, W_, _ = x_shape
    kh, kw = W_shape[:2]
    (sy, sx), (dy, dx) = pair(strides, "strides"), pair(dilation, "dilation")
    padding = normalize_padding(padding)
    if padding not in ("valid", "same"):
        raise ValueError(f"conv2d_transpose: padding must be 'valid' or 'same', got {padding!r}")
    pads_out = (None, None) if output_padding is None else pair_non_negative(output_padding)
    for p, s in zip(pads_out, (sy, sx)):
        if p is not None and p >= s:
            raise ValueError(f"conv2d_transpose: output_padding must be smaller than the stride, got "
                             f"{output_padding!r} with strides {(sy, sx)}")
    k_h, k_w = dilated_size(kh, dy), dilated_size(kw, dx)
    oh = transpose_output_size(H, k_h, sy, padding, pads_out[0])
    ow = transpose_output_size(W_, k_w, sx, padding, pads_out[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"conv2d_transpose: the output would be {oh}x{ow} for input {x_shape}")
    if padding == "same" and output_padding is not None and (-(-oh // sy), -(-ow // sx)) != (H, W_):
        # then no 'same' Conv2D maps the output back to the input's size: nothing to transpose
        raise ValueError(f"conv2d_transpose: output_padding {output_padding!r} with 'same' padding gives "
                         f"{oh}x{ow}, which a 'same' convolution with strides {(sy, sx)} maps to "
                         f"{-(-oh // sy)}x{-(-ow // sx)}, not the input's {H}x{W_}; leave output_padding "
                         f"out or use 'valid'")
    top, left = crop_before(oh, H, k_h, sy, padding), crop_before(ow, W_, k_w, sx, padding)
    canvas = ((H - 1) * sy + k_h, (W_ - 1) * sx + k_w)
    return (sy, sx), (dy, dx), (oh, ow), (top, left), canvas


def pair_non_negative(value):
    """output_padding: 1 -> (1, 1); (0, 1) as it is; a ValueError for anything else."""
    value = (value, value) if isinstance(value, int) else tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v >= 0 for v in value):
        raise ValueError(f"conv2d_transpose: output_padding must be a non-negative int or a pair, got {value!r}")
    return value


def crop_canvas(canvas, top, left, oh, ow):
    """canvas (N, Hc, Wc, F) -> (N, oh, ow, F) from row ``top``, column ``left``; rows past the
    canvas's end (no window reaches them) are 0."""
    xp = get_array_module(canvas)
    N, Hc, Wc, F = canvas.shape
    if top + oh <= Hc and left + ow <= Wc:
        return canvas[:, top:top + oh, left:left + ow, :]
    y = xp.zeros((N, oh, ow, F), dtype=canvas.dtype)
    kept_h, kept_w = min(oh, Hc - top), min(ow, Wc - left)
    y[:, :kept_h, :kept_w, :] = canvas[:, top:top + kept_h, left:left + kept_w, :]
    return y


def conv2d_transpose_forward(x, W, b=None, strides=1, padding="valid", output_padding=None, dilation=1):
    """y = conv_transpose(x, W) + b: x (N, H, W, C), W (kh, kw, F, C), b (F,) or None -> y (N, oh, ow, F)."""
    if x.ndim != 4:
        raise ValueError(f"conv2d_transpose expects x of rank 4 (N, H, W, C), got shape {x.shape}")
    kh, kw, F, C = W.shape
    if x.shape[3] != C:
        raise ValueError(f"conv2d_transpose: input has {x.shape[3]} channels, kernel {W.shape} expects {C}")
    (sy, sx), dilation, (oh, ow), (top, left), (Hc, Wc) = transpose_geometry(
        x.shape, W.shape, strides, padding, output_padding, dilation)
    N, H, W_, _ = x.shape
    # Each input pixel's (kh, kw, F) contribution: x (N*H*W, C) @ Wᵀ (C, kh*kw*F), a patch row
    # of the canvas per pixel; col2im adds the overlapping windows (Conv2D's backward).
    W2 = W.reshape(kh * kw * F, C)
    patches = matmul(x.reshape(-1, C), W2.T).reshape(N, H, W_, kh, kw, F)
    canvas = col2im(patches, (N, Hc, Wc, F), sy, sx, ((0, 0), (0, 0)), dilation)
    y = crop_canvas(canvas, top, left, oh, ow)
    if b is not None:
        y = y + b
    return y, (x, W, (sy, sx), dilation, (top, left), (Hc, Wc), b is not None)


def conv2d_transpose_backward(gy, cache):
    """gy (N, oh, ow, F) -> gx (N, H, W, C), gW (kh, kw, F, C), gb (F,) or None.

    The Conv2D this op transposes: gy placed back on the canvas (0 where it was cropped),
    im2col of it gives each input pixel's window, and two GEMMs give gx = col · W and
    gW = colᵀ · x."""
    x, W, (sy, sx), dilation, (top, left), (Hc, Wc), has_bias = cache
    xp = get_array_module(gy)
    kh, kw, F, C = W.shape
    N, H, W_, _ = x.shape
    oh, ow = gy.shape[1:3]
    g_canvas = xp.zeros((N, Hc, Wc, F), dtype=gy.dtype)
    kept_h, kept_w = min(oh, Hc - top), min(ow, Wc - left)
    g_canvas[:, top:top + kept_h, left:left + kept_w, :] = gy[:, :kept_h, :kept_w, :]
    col = im2col(g_canvas, kh, kw, sy, sx, ((0, 0), (0, 0)), dilation=dilation)  # (N, H, W, kh, kw, F)
    col = col.reshape(N * H * W_, kh * kw * F)
    W2 = W.reshape(kh * kw * F, C)
    gx = matmul(col, W2).reshape(x.shape)
    gW = matmul(col.T, x.reshape(-1, C)).reshape(W.shape)
    gb = accurate_sum(gy.reshape(-1, F), axis=0) if has_bias else None
    return gx, gW, gb
