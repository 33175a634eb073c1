"""Faster GPU (CuPy) versions of im2col/col2im, convolution, max-pooling and ReLU. Same
numbers as the reference code in conv.py, pooling.py and activation.py (checked by
tests/test_fast_kernels.py wherever a GPU is present); read those first.

Why custom kernels: the reference's Python loops over kernel taps launch one strided
copy kernel per tap (9 launches and 9 passes over memory for a 3x3 im2col; more for
col2im's read-modify-write adds). Here each is one kernel, one thread per *output*
element, that gathers what it needs:
  * im2col: a thread per column entry (n, r, c, i, j, ch) reads its input pixel, or
    writes 0 for padding, so no padded copy of x is made;
  * col2im: a thread per input pixel sums the column entries that read it, so no
    atomic adds and no zero-filled buffer are needed;
  * max-pool: a thread per output keeps the running max and which tap won; the
    backward is a gather per input pixel, again without atomics, correct for
    overlapping windows too.
The GEMMs stay 2-D (N*oh*ow, kh*kw*C) @ (kh*kw*C, F), the shape cuBLAS is fastest on.
On a GPU a small network's step is mostly launches, each costing the host microseconds
whatever its size, so dropout's mask is one kernel after the random draws (the reference:
three), and the softmax cross-entropy one kernel per row and a sum forward (fourteen) and
one backward (three). Per-channel sums (bias gradients, batch-norm) are in fast_gpu_sums.py;
the optimizers' updates, every parameter in a few launches, in fast_gpu_updates.py.

This module imports CuPy, so it is only imported when a CuPy array reaches an op.
"""
import numpy

import cupy

from .fast_gpu_sums import ACCUMULATOR, channel_sums

# The dtypes these kernels are compiled for and used with: float32 for training, float64 for
# the gradient checks, float16 for mixed precision (mixed_precision.py; the running sums of a
# float16 kernel are float: fast_gpu_sums.ACCUMULATOR). Arrays of other dtypes take the
# reference code, which is plain CuPy array code; tests/test_gpu_kernel_cuda.py builds every
# kernel in each of these with nvcc.
KERNEL_DTYPES = (numpy.float16, numpy.float32, numpy.float64)
_KERNEL_DTYPE_SET = frozenset(map(numpy.dtype, KERNEL_DTYPES))


def handles(*arrays):
    """True if every array's dtype is one the kernels are built for. A loop over a set of
    dtypes, not all() over the tuple: a training step asks this about ninety times, and
    this way each costs a third as much host time."""
    for a in arrays:
        if a.dtype not in _KERNEL_DTYPE_SET:
            return False
    return True


_INDEX = "long long"  # index arithmetic in 64 bits: a column matrix can pass 2^31 elements

im2col_kernel = cupy.ElementwiseKernel(
    "raw T x, int32 H, int32 W, int32 C, int32 oh, int32 ow, int32 kh, int32 kw, "
    "int32 sy, int32 sx, int32 pt, int32 pl",
    "T col",
    f"""
    {_INDEX} rest = i;
    const int ch = rest % C; rest /= C;
    const int j = rest % kw; rest /= kw;
    const int ki = rest % kh; rest /= kh;
    const int c = rest % ow; rest /= ow;
    const int r = rest % oh;
    const {_INDEX} n = rest / oh;
    const int y = r * sy + ki - pt, x_ = c * sx + j - pl;
    col = (y >= 0 && y < H && x_ >= 0 && x_ < W) ? x[((n * H + y) * W + x_) * C + ch] : (T)0;
    """,
    "minicnn_im2col_nhwc")

def _gather_over_windows(inputs, term, name):
    """A kernel with one thread per input pixel (n, y, x_, ch) of gx (N, H, W, C) that sums
    ``term`` over every window tap (ki, j) of every output (r, c) whose window reads that
    pixel: the adjoint of a sliding window, written as a gather, so no atomics. ``term``
    sees o_rc = (n * oh + r) * ow + c and may use ki, j, ch. Used by col2im and by
    max-pool's backward, which differ only in what one tap contributes."""
    return cupy.ElementwiseKernel(
        inputs + ", int32 H, int32 W, int32 C, int32 oh, int32 ow, int32 kh, int32 kw, "
        "int32 sy, int32 sx, int32 pt, int32 pl",
        "T gx",
        f"""
        {_INDEX} rest = i;
        const int ch = rest % C; rest /= C;
        const int x_ = rest % W; rest /= W;
        const int y = rest % H;
        const {_INDEX} n = rest / H;
        {ACCUMULATOR}
        A sum = 0;
        for (int ki = 0; ki < kh; ++ki) {{
            const int ry = y + pt - ki;       // = r * sy for the output row r whose tap ki reads y
            if (ry < 0 || ry % sy != 0 || ry / sy >= oh) continue;
            for (int j = 0; j < kw; ++j) {{
                const int cx = x_ + pl - j;
                if (cx < 0 || cx % sx != 0 || cx / sx >= ow) continue;
                const {_INDEX} o_rc = (n * oh + ry / sy) * ow + cx / sx;
                {term}
            }}
        }}
        gx = sum;
        """,
        name)


col2im_kernel = _gather_over_windows(
    "raw T col", "sum += col[((o_rc * kh + ki) * kw + j) * C + ch];", "minicnn_col2im_nhwc")

max_pool_forward_kernel = cupy.ElementwiseKernel(
    "raw T x, int32 H, int32 W, int32 C, int32 oh, int32 ow, int32 ph, int32 pw, "
    "int32 sy, int32 sx, int32 pt, int32 pl",
    "T y, int32 winner",
    f"""
    {_INDEX} rest = i;
    const int ch = rest % C; rest /= C;
    const int c = rest % ow; rest /= ow;
    const int r = rest % oh;
    const {_INDEX} n = rest / oh;
    T best = 0;
    int arg = -1;
    for (int tap = 0; tap < ph * pw; ++tap) {{
        const int yy = r * sy + tap / pw - pt, xx = c * sx + tap % pw - pl;
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;   // padding never wins
        const T v = x[((n * H + yy) * W + xx) * C + ch];
        if (arg < 0 || v > best) {{ best = v; arg = tap; }}      // strict: first max wins ties
    }}
    y = best;
    winner = arg;
    """,
    "minicnn_max_pool_forward_nhwc")

max_pool_backward_kernel = _gather_over_windows(
    "raw T gy, raw int32 winner",
    "if (winner[o_rc * C + ch] == ki * kw + j) sum += gy[o_rc * C + ch];",
    "minicnn_max_pool_backward_nhwc")

relu_forward_kernel = cupy.ElementwiseKernel(
    "T x", "T y, bool positive",
    "positive = x > (T)0; y = x * (T)positive;",  # x * mask, as the reference: NaN stays NaN
    "minicnn_relu_forward")

relu_backward_kernel = cupy.ElementwiseKernel(
    "T gy, bool positive", "T gx", "gx = gy * (T)positive;", "minicnn_relu_backward")


def im2col(x, kh, kw, strides, oh, ow, pads=((0, 0), (0, 0))):
    """x (N, H, W, C) -> col (N, oh, ow, kh, kw, C), zero where a tap falls in the padding."""
    x = cupy.ascontiguousarray(x)
    N, H, W, C = x.shape
    col = cupy.empty((N, oh, ow, kh, kw, C), dtype=x.dtype)
    (pt, _), (pl, _) = pads
    im2col_kernel(x, H, W, C, oh, ow, kh, kw, strides[0], strides[1], pt, pl, col)
    return col


def col2im(col, x_shape, strides, pads=((0, 0), (0, 0))):
    """col (N, oh, ow, kh, kw, C) -> gx (N, H, W, C), the adjoint of im2col."""
    col = cupy.ascontiguousarray(col)
    N, oh, ow, kh, kw, C = col.shape
    _, H, W, _ = x_shape
    gx = cupy.empty(x_shape, dtype=col.dtype)
    (pt, _), (pl, _) = pads
    col2im_kernel(col, H, W, C, oh, ow, kh, kw, strides[0], strides[1], pt, pl, gx)
    return gx


def conv2d_forward(x, W, b, strides, pads, oh, ow):
    """x (N, H, W, C), W (kh, kw, C, F), b (F,) or None -> y (N, oh, ow, F)."""
    kh, kw, C, F = W.shape
    col = im2col(x, kh, kw, strides, oh, ow, pads).reshape(-1, kh * kw * C)
    y = col @ W.reshape(-1, F)
    if b is not None:
        y += b
    return y.reshape(x.shape[0], oh, ow, F), (col, W, x.shape, strides, pads, oh, ow, b is not None)


def conv2d_backward(gy, saved, input_grad=True):
    """gy (N, oh, ow, F) -> gx (N, H, W, C) or None, gW (kh, kw, C, F), gb (F,) or None."""
    col, W, x_shape, strides, pads, oh, ow, has_bias = saved
    kh, kw, C, F = W.shape
    gy2 = cupy.ascontiguousarray(gy).reshape(-1, F)
    # gW made in its own shape (colᵀ·gy written through a 2-D view of it), not a reshaped view
    # of the product: autograd keeps an array of its own as .grad, and copies a view
    gW = cupy.empty(W.shape, dtype=gy2.dtype)
    cupy.matmul(col.T, gy2, out=gW.reshape(-1, F))
    gb = channel_sums(gy2) if has_bias else None  # not gy2.sum(axis=0): see fast_gpu_sums
    if not input_grad:
        return None, gW, gb
    gcol = (gy2 @ W.reshape(-1, F).T).reshape(x_shape[0], oh, ow, kh, kw, C)
    return col2im(gcol, x_shape, strides, pads), gW, gb


def max_pool2d_forward(x, pool, strides, pads, oh, ow):
    """x (N, H, W, C) -> y (N, oh, ow, C) and the winning tap of each window."""
    x = cupy.ascontiguousarray(x)
    N, H, W, C = x.shape
    y = cupy.empty((N, oh, ow, C), dtype=x.dtype)
    winner = cupy.empty((N, oh, ow, C), dtype=cupy.int32)
    (pt, _), (pl, _) = pads
    max_pool_forward_kernel(x, H, W, C, oh, ow, pool[0], pool[1], strides[0], strides[1], pt, pl,
                            y, winner)
    return y, (winner, x.shape, pool, strides, pads)


def max_pool2d_backward(gy, saved):
    """gy (N, oh, ow, C) -> gx (N, H, W, C)."""
    winner, x_shape, pool, strides, pads = saved
    gy = cupy.ascontiguousarray(gy)
    _, oh, ow, C = gy.shape
    _, H, W, _ = x_shape
    gx = cupy.empty(x_shape, dtype=gy.dtype)
    (pt, _), (pl, _) = pads
    max_pool_backward_kernel(gy, winner, H, W, C, oh, ow, pool[0], pool[1], strides[0], strides[1],
                             pt, pl, gx)
    return gx

gelu_forward_kernel = cupy.ElementwiseKernel(
    "T x", "T y, T slope",
    ACCUMULATOR + """
    // constants as A, float for float16: (T)0.5 would convert a double to half at run time
    const T cdf = (A)0.5 * ((A)1 + erf(x * (A)0.70710678118654752));
    y = x * cdf;
    slope = cdf + x * (A)0.39894228040143268 * exp((A)-0.5 * x * x);""",  # 1/sqrt(2), 1/sqrt(2 pi)
    "minicnn_gelu_forward")


bias_relu_forward_kernel = cupy.ElementwiseKernel(  # activation.bias_relu_forward's three lines
    "T x, T b", "T y, bool positive",
    "const T z = x + b; positive = z > (T)0; y = z * (T)positive;",  # b broadcast along the last axis
    "minicnn_bias_relu_forward")


def bias_relu_forward(x, b):
    """x (..., C), b (C,) -> max(0, x + b) and its mask, in one kernel."""
    return bias_relu_forward_kernel(x, b)


def relu_forward(x):
    """One kernel for y = max(0, x) and its mask (the reference takes two)."""
    return relu_forward_kernel(x)


def relu_backward(gy, positive):
    return relu_backward_kernel(gy, positive)


def gelu_forward(x):
    """One kernel for x * Phi(x) and its slope Phi(x) + x phi(x) (the reference takes ten)."""
    return gelu_forward_kernel(x)


# --- dropout's mask and the softmax cross-entropy, fused (dropout.py and loss.py hold the array code)
dropout_mask_kernel = cupy.ElementwiseKernel(
    "T u, T rate, T scale", "T mask",
    "mask = u >= rate ? scale : (T)0;",  # the reference's (u >= rate).astype(T) * scale
    "minicnn_dropout_mask")

# One thread per row of logits (N, K): the row's maximum, log of its shifted exponentials'
# sum, and its loss, in the reference's order of operations. A small network's loss was 14
# launches (most on a (N, K) array of a few kilobytes); now the one-hot targets, this and
# the sum of the rows' losses.
softmax_cross_entropy_rows_kernel = cupy.ElementwiseKernel(
    "raw T logits, raw T targets, int32 K, T scale", "T row_loss, T top, T log_sum",
    f"""
    const {_INDEX} row = i * ({_INDEX})K;
    T best = logits[row];
    for (int k = 1; k < K; ++k) best = logits[row + k] > best ? logits[row + k] : best;
    {ACCUMULATOR}
    A total = 0;
    for (int k = 0; k < K; ++k) total += exp(logits[row + k] - best);
    const T log_total = log(total);
    A loss = 0;
    for (int k = 0; k < K; ++k) loss -= targets[row + k] * ((logits[row + k] - best) - log_total);
    row_loss = loss * scale;
    top = best;
    log_sum = log_total;
    """,
    "minicnn_softmax_cross_entropy_rows")

softmax_cross_entropy_grad_kernel = cupy.ElementwiseKernel(
    "T targets, raw T logits, raw T top, raw T log_sum, T gloss, T divisor, int32 K", "T g",
    f"""
    const {_INDEX} n = i / K;
    g = ((exp((logits[i] - top[n]) - log_sum[n]) - targets) * gloss) / divisor;
    """,
    "minicnn_softmax_cross_entropy_grad")

# Weighted rows (fit's class_weight and sample_weight): the forward kernel above takes the
# targets times each row's weight w (the loss -sum w t log p is the same sum), and since the
# gradient of -sum_k t'_k log softmax(z)_k is (sum_k t'_k) p - t', a row's is w p - w t.
softmax_cross_entropy_weighted_grad_kernel = cupy.ElementwiseKernel(
    "T weighted_targets, raw T logits, raw T top, raw T log_sum, raw T weights, T gloss, T divisor, int32 K",
    "T g",
    f"""
    const {_INDEX} n = i / K;
    g = ((exp((logits[i] - top[n]) - log_sum[n]) * weights[n] - weighted_targets) * gloss) / divisor;
    """,
    "minicnn_softmax_cross_entropy_weighted_grad")


def dropout_mask(u, rate):
    """u uniform in [0, 1) -> the scaled keep-mask: 0 where u < rate, else 1/(1-rate)."""
    t = u.dtype.type
    return dropout_mask_kernel(u, t(rate), t(1.0 / (1.0 - rate)))


one_hot_kernel = cupy.ElementwiseKernel(
    "raw int64 labels, int32 K", "T targets",
    "targets = labels[i / K] == i % K ? (T)1 : (T)0;",  # thread i: row i / K, class i % K
    "minicnn_one_hot")


def one_hot(labels, K, dtype):
    """labels (N,) integers -> (N, K) rows of dtype, 1 at each label: one kernel, where
    ``(labels[:, None] == arange(K)).astype(dtype)`` launches three."""
    labels = cupy.ascontiguousarray(labels.astype(cupy.int64, copy=False))
    return one_hot_kernel(labels, K, cupy.empty((len(labels), K), dtype=dtype))


def softmax_cross_entropy_forward(logits, targets, reduction, weights=None):
    """logits, targets (N, K), weights (N,) or None -> the loss (0-d) and what the backward
    needs; with weights each row's loss times its weight (one more launch: the targets')."""
    logits, targets = cupy.ascontiguousarray(logits), cupy.ascontiguousarray(targets)
    if weights is not None:
        weights = cupy.ascontiguousarray(weights.astype(logits.dtype, copy=False))
        targets = targets * weights[:, None]
    N, K = logits.shape
    t = logits.dtype.type
    row_loss, top, log_sum = (cupy.empty(N, dtype=logits.dtype) for _ in range(3))
    softmax_cross_entropy_rows_kernel(logits, targets, K, t(1.0 / N if reduction == "mean" else 1.0),
                                      row_loss, top, log_sum)
    return row_loss.sum(), (logits, targets, top, log_sum, reduction, weights)


def softmax_cross_entropy_backward(gloss, saved):
    """gloss (0-d) -> glogits (N, K) = (softmax - targets) * gloss [/ N], each row times its
    weight where there are weights."""
    logits, targets, top, log_sum, reduction, weights = saved
    N, K = logits.shape
    t = logits.dtype.type
    gloss = gloss.astype(logits.dtype, copy=False) if isinstance(gloss, cupy.ndarray) else t(gloss)
    divisor = t(N if reduction == "mean" else 1)
    if weights is not None:
        return softmax_cross_entropy_weighted_grad_kernel(targets, logits, top, log_sum, weights, gloss, divisor, K)
    return softmax_cross_entropy_grad_kernel(targets, logits, top, log_sum, gloss, divisor, K)
