"""Per-channel sums on the GPU (CuPy), and the training batch-norm built on them. Same
numbers as the reference code in normalization.py and conv.py, to float32 rounding
(tests/test_fast_kernels.py, wherever a GPU is present); read those first.

Why not ``a.sum(axis=0)``: CuPy's reduction gives each block of 512 threads at least 32
outputs (its ``_get_block_specs``), so summing an activation (M, C) over its M = N*H*W
rows into C = 32 or 64 channel sums runs on one or two blocks: one or two of an H100's
132 streaming multiprocessors read every byte. A conv's bias gradient and batch-norm's
four sums are such reductions. Here the rows are split into ``parts`` interleaved
shares: one thread per (part, channel) adds up its share (thread (p, c) reads rows p,
p + parts, p + 2*parts, ... of channel c; neighbouring threads read neighbouring floats,
so the reads coalesce), which keeps every multiprocessor busy; then CuPy's reduction
adds the few partial rows, (parts, C), where its block layout costs little.

Batch-norm's training step then takes 4 kernels forward and 4 backward, where the array
code of normalization.py launches about 14 and 10 (each a pass over the activation). The
gradients these sums give (a bias's, batch-norm's gamma's and beta's) are arrays of their
own, not views of one array: autograd keeps such an array as a weight's .grad, where it
would copy a view (one more kernel per weight per step).

This module imports CuPy, so it is only imported when a CuPy array reaches an op.
"""
import cupy

from ..backend import accurate_sum  # float16 partial rows added in float32
from .normalization import BatchNormCache

# CuPy's float16 (cupy/float16.cuh) converts to float for every operation and rounds back to
# half where it is stored, so a float16 kernel computes in float32 between loads and stores.
# A sum kept in a T variable would still round at each step, losing digits as it grows (from
# 2048 on, adding 1 to a float16 changes nothing), so every kernel's running sums are of type
# A: float for float16 (what T + float gives), T itself for float32 and float64.
ACCUMULATOR = "typedef decltype(T() + 0.0f) A;"

THREADS = 1 << 18  # enough threads for full occupancy on an H100's 132 multiprocessors
MIN_ROWS_PER_THREAD = 32  # below this a thread's loop is shorter than the launch is worth
MAX_PARTS = 1024  # the partial rows CuPy's reduction adds afterwards: keep that pass small


def _partial_sums_kernel(name, inputs, terms, prologue=""):
    """A kernel with one thread per element (part, k, c) of partial (parts, K, C): thread
    (part, k, c) adds ``terms[k]`` over rows part, part + parts, ... of channel c. A term
    is a C expression of ``at``, the flat index of (row, c) in the (rows, C) inputs."""
    if len(terms) == 1:
        which, term = "", terms[0]
    else:  # every thread of one k takes the same branch: no divergence within a warp
        which = f"const int k = (i / C) % {len(terms)};"
        # each term as A: with T = float16 one would be float16 and another float (a product),
        # and C++ refuses a ?: between two types that convert both ways
        term = " : ".join(f"k == {k} ? (A)({t})" for k, t in enumerate(terms[:-1])) + f" : (A)({terms[-1]})"
    return cupy.ElementwiseKernel(
        inputs + ", int32 rows, int32 C, int32 parts", "T partial",
        f"""
        const int c = i % C;
        {which}
        const int part = i / ((long long)C * {len(terms)});
        {prologue}
        {ACCUMULATOR}
        A total = 0;
        for (long long r = part; r < rows; r += parts) {{
            const long long at = r * C + c;
            total += {term};
        }}
        partial = total;
        """,
        name)


channel_sums_kernel = _partial_sums_kernel("minicnn_channel_sums", "raw T a", ["a[at]"])

# A max-norm constraint's squared norms: a Dense or Conv2D kernel's squares summed per output unit
channel_sums_of_squares_kernel = _partial_sums_kernel(
    "minicnn_channel_sums_of_squares", "raw T a", ["a[at] * a[at]"])

# The batch's mean and variance in one pass over x. A one-pass variance, E[x^2] - E[x]^2,
# loses every digit when the mean is large against the spread; sums of d = x - shift with a
# shift near the mean do not (the "shifted data" algorithm). Each channel's first value is
# such a shift: d is then of the order of the spread.
batch_norm_moments_kernel = _partial_sums_kernel(
    "minicnn_batch_norm_moments", "raw T x", ["x[at] - shift", "(x[at] - shift) * (x[at] - shift)"],
    prologue="const T shift = x[c];")

batch_norm_grad_sums_kernel = _partial_sums_kernel(
    "minicnn_batch_norm_grad_sums", "raw T gy, raw T x_hat", ["gy[at]", "gy[at] * x_hat[at]"])

# ReLU's backward and its bias's gradient in one pass over gy (activation.bias_relu_backward):
# thread (part, c) writes gx = gy * mask on its share of channel c's rows and adds up what it
# wrote. Every (row, c) belongs to one thread's share, so gx is written once everywhere.
relu_backward_bias_sums_kernel = cupy.ElementwiseKernel(
    "raw T gy, raw bool positive, int32 rows, int32 C, int32 parts", "raw T gx, T partial",
    """
    const int c = i % C;
    const int part = i / C;
    """ + ACCUMULATOR + """
    A total = 0;
    for (long long r = part; r < rows; r += parts) {
        const long long at = r * C + c;
        const T g = gy[at] * (T)positive[at];   // relu_backward: gy * mask
        gx[at] = g;
        total += g;
    }
    partial = total;
    """,
    "minicnn_relu_backward_bias_sums")

batch_norm_statistics_kernel = cupy.ElementwiseKernel(
    "T shifted_sum, T shifted_squares, T shift, int32 m, T eps", "T mean, T var, T inv_std",
    """
    const T d = shifted_sum / (T)m;         // mean - shift
    const T v = shifted_squares / (T)m - d * d;
    mean = shift + d;
    var = v > (T)0 ? v : (T)0;              // rounding can leave a tiny negative
    inv_std = (T)1 / sqrt(var + eps);
    """,
    "minicnn_batch_norm_statistics")

moving_averages_kernel = cupy.ElementwiseKernel(  # normalization.update_moving_averages
    "T mean, T var, T keep", "T moving_mean, T moving_var",
    """
    moving_mean = moving_mean * keep + mean * ((T)1 - keep);
    moving_var = moving_var * keep + var * ((T)1 - keep);
    """,
    "minicnn_batch_norm_moving_averages")

batch_norm_normalise_kernel = cupy.ElementwiseKernel(
    "T x, raw T mean, raw T inv_std, raw T gamma, raw T beta, int32 C", "T x_hat, T y",
    """
    const int c = i % C;
    x_hat = (x - mean[c]) * inv_std[c];
    y = gamma[c] * x_hat + beta[c];
    """,
    "minicnn_batch_norm_normalise")

batch_norm_input_grad_kernel = cupy.ElementwiseKernel(
    "T gy, T x_hat, raw T gamma, raw T inv_std, raw T gbeta, raw T ggamma, int32 m, int32 C", "T gx",
    """
    const int c = i % C;
    gx = gamma[c] * inv_std[c] / (T)m * ((T)m * gy - gbeta[c] - x_hat * ggamma[c]);
    """,
    "minicnn_batch_norm_input_grad")


def parts_for(rows, width):
    """How many interleaved shares to split ``rows`` rows into, for partial sums ``width``
    wide (K*C): enough threads, each with a loop worth its launch, and few partial rows."""
    return max(1, min(rows // MIN_ROWS_PER_THREAD, THREADS // width, MAX_PARTS))


def _partial_sums(kernel, arrays, rows, C, K, parts):
    """Run a partial-sums kernel over (rows, C) arrays: its partial rows (parts, K, C)."""
    if rows >= 1 << 31:
        raise ValueError(f"{rows} rows: the sums index rows with 32-bit integers")
    partial = cupy.empty((parts, K, C), dtype=arrays[0].dtype)
    kernel(*arrays, rows, C, parts, partial)
    return partial


def _sum_rows(kernel, arrays, rows, C, K):
    """Run a partial-sums kernel over (rows, C) arrays, then add its partial rows: (K, C)."""
    parts = parts_for(rows, K * C)
    partial = _partial_sums(kernel, arrays, rows, C, K, parts)
    return partial[0] if parts == 1 else accurate_sum(partial, axis=0)


def _separate_sums(kernel, arrays, rows, C, K):
    """Like _sum_rows, as K arrays (C,) each of its own, not views of one (K, C): gradients
    that autograd can keep as the weights' .grad without copying them (autograd.py)."""
    parts = parts_for(rows, K * C)
    partial = _partial_sums(kernel, arrays, rows, C, K, parts)
    return [accurate_sum(partial[:, k], axis=0) for k in range(K)]


def channel_sums(a):
    """a (..., C) -> (C,): the sum over every axis but the last (a bias gradient), an array
    of its own (not a view)."""
    C = a.shape[-1]
    flat = cupy.ascontiguousarray(a).reshape(-1)
    rows = a.size // C
    if parts_for(rows, C) > 1:
        return _separate_sums(channel_sums_kernel, [flat], rows, C, 1)[0]
    sums = cupy.empty(C, dtype=a.dtype)  # one part: the kernel writes the sums themselves
    channel_sums_kernel(flat, rows, C, 1, sums.reshape(1, 1, C))
    return sums


def channel_sums_of_squares(a):
    """a (..., C) -> (C,): the sum of a * a over every axis but the last (each output unit's
    squared norm, for constraints.MaxNorm). One kernel, and CuPy's sum of its partial rows
    when there are several; the result may be a view."""
    C = a.shape[-1]
    return _sum_rows(channel_sums_of_squares_kernel, [cupy.ascontiguousarray(a).reshape(-1)],
                     a.size // C, C, 1)[0]


def relu_backward_bias_sums(gy, positive):
    """gy, positive (..., C) -> gx = gy * positive like gy, and gb (C,), gx summed over every
    axis but the last: one pass over gy, then CuPy's sum of the partial rows if there are
    several. gb is an array of its own (not a view), as channel_sums'."""
    gy, positive = cupy.ascontiguousarray(gy), cupy.ascontiguousarray(positive)
    C = gy.shape[-1]
    rows = gy.size // C
    if rows >= 1 << 31:
        raise ValueError(f"{rows} rows: the sums index rows with 32-bit integers")
    parts = parts_for(rows, C)
    gx = cupy.empty_like(gy)
    if parts == 1:  # one part: the kernel writes the sums themselves
        gb = cupy.empty(C, dtype=gy.dtype)
        relu_backward_bias_sums_kernel(gy, positive, rows, C, 1, gx, gb.reshape(1, C))
        return gx, gb
    partial = cupy.empty((parts, C), dtype=gy.dtype)
    relu_backward_bias_sums_kernel(gy, positive, rows, C, parts, gx, partial)
    return gx, accurate_sum(partial, axis=0)


def batch_norm_train_forward(x, gamma, beta, eps):
    """x (N, ..., C), gamma, beta (C,) -> y like x, and the cache the backward needs.

    Kernels: the shifted moments (and CuPy's sum of their partial rows), the statistics
    (C threads), then x_hat and y in one pass."""
    x = cupy.ascontiguousarray(x)
    C = x.shape[-1]
    rows = x.size // C
    flat = x.reshape(-1)
    moments = _sum_rows(batch_norm_moments_kernel, [flat], rows, C, 2)
    mean, var, inv_std = batch_norm_statistics_kernel(
        moments[0], moments[1], flat[:C], rows, x.dtype.type(eps))
    x_hat, y = batch_norm_normalise_kernel(x, mean, inv_std, cupy.ascontiguousarray(gamma),
                                           cupy.ascontiguousarray(beta), C)
    return y, BatchNormCache(x_hat, gamma, inv_std, tuple(range(x.ndim - 1)), mean, var)


def batch_norm_train_backward(gy, cache):
    """gy like x -> gx, ggamma, gbeta (the formula of normalization.py's reference)."""
    gy = cupy.ascontiguousarray(gy)
    C = gy.shape[-1]
    rows = gy.size // C
    x_hat = cupy.ascontiguousarray(cache.x_hat)
    gbeta, ggamma = _separate_sums(batch_norm_grad_sums_kernel, [gy.reshape(-1), x_hat.reshape(-1)],
                                   rows, C, 2)
    gx = batch_norm_input_grad_kernel(gy, x_hat, cupy.ascontiguousarray(cache.gamma), cache.inv_std,
                                      gbeta, ggamma, rows, C)
    return gx, ggamma, gbeta
