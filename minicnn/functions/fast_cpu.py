"""Faster CPU (NumPy) versions of convolution, max-pooling, batch-norm and ReLU. Same numbers as the
reference code in conv.py and pooling.py (tests/test_fast_kernels.py checks that);
read those first.

Why the reference is slow on a CPU: im2col copies every input pixel kh*kw times into
a column matrix 9x the size of the input (3x3 kernels), in chunks of C floats. On a
2-core machine that copy, and col2im's adds back, cost more than the GEMM itself.

Convolution by kernel rows ("row unrolling", stride 1 along the width):
  1. rows (N, oh, Wp, kh, C): only the kh kernel *rows* are unrolled, so rows is kh
     times the (padded) input, not kh*kw, and each output row r sees the whole padded
     width Wp. One strided-view copy.
  2. One GEMM  Z = rows (N*oh*Wp, kh*C) @ W_rows (kh*C, kw*F): every input column c
     multiplied by every kernel column j at once. Both GEMM sides are wide (3C and 3F),
     which suits OpenBLAS better than im2col's (9C, F).
  3. y[n, r, c] = sum_j Z[n, r, c + j, j]: kw shifted slices of Z added (the width
     taps). Columns near the right edge are computed and thrown away: Wp/ow extra work
     (34/32 for a padded 32-wide image), which is why stride > 1 along the width keeps
     to im2col.
The backward runs the same steps in reverse: gZ holds gy at the kw shifts, then two
GEMMs give gW = rowsᵀ gZ and g_rows = gZ W_rowsᵀ, and kh shifted adds give gx.

Cache blocking. A training-size batch makes every temporary above (rows, Z, gZ, g_rows)
tens of megabytes, so each step would stream them through main memory, and on a small
machine that traffic costs as much as the GEMM. Instead each core takes its share of
the batch and runs all the steps on a few images at a time (a "chunk", sized so its
temporaries fit in the core's L2 cache), with BLAS held to one thread per core. The
GEMMs are then smaller, but everything they read was written a moment ago and is still
in cache. Only x, y and the gradients travel to and from memory. The other inputs
(thin RGB ones, strides across, narrow images) take im2col + GEMM, blocked the same way.
Measured on the 2-core test machine (benchmarks/run.py), blocking took a 32x32x32->32
convolution from 38 to 20 ms forward and 56 to 40 ms backward at batch 128.

Shapes: x (N, H, W, C), W (kh, kw, C, F), b (F,), y (N, oh, ow, F), Wp = W + pl + pr.
"""
import contextlib
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy
from numpy.lib.stride_tricks import as_strided

from .normalization import BatchNormCache

try:  # sets how many threads BLAS uses, for the one-thread-per-core blocked convolutions
    from threadpoolctl import ThreadpoolController
except ImportError:  # then BLAS keeps its own threads: correct, only slower
    ThreadpoolController = None

THREADS = min(os.cpu_count() or 1, 8)
CHUNK_BYTES = 2 << 20  # one chunk's temporaries per core: about half of a 4 MiB L2 cache
CHUNK_MIN_PIXELS = 1024  # ...but enough output pixels that gW's GEMM (summing over them) stays efficient
_pool = None  # (process id, executor, its threads): a forked child gets a pool of its own
_blas = None  # threadpoolctl's controller, made on first use (it scans the loaded libraries)


@contextlib.contextmanager
def blas_single_threaded():
    """BLAS on one thread inside the block: our own threads split the work instead."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController() if ThreadpoolController is not None else False
    if not _blas:
        yield
        return
    with _blas.limit(limits=1, user_api="blas"):
        yield


def over_batch(work, n, blas_threads=None):
    """Call work(s) for slices s of range(n), one per core, on threads; returns the results
    in slice order, once all are done.

    OpenBLAS runs the GEMMs on every core, but NumPy's own copies and elementwise loops
    run on one. They release the GIL, though, so threads working on separate samples of
    the batch run them in parallel: the memory-bound steps below use every core too.
    blas_threads=1: work calls GEMMs of its own, so BLAS must not start more threads.
    """
    global _pool
    chunks = min(THREADS, n)
    if chunks < 2:
        return [work(slice(0, n))]
    # A new pool after a fork (threads do not survive one) or once THREADS was raised.
    if _pool is None or _pool[0] != os.getpid() or _pool[2] < chunks:
        _pool = (os.getpid(), ThreadPoolExecutor(THREADS, thread_name_prefix="minicnn"), THREADS)
    bounds = [n * k // chunks for k in range(chunks + 1)]
    limit = blas_single_threaded() if blas_threads == 1 else contextlib.nullcontext()
    with limit:
        futures = [_pool[1].submit(work, slice(a, b)) for a, b in zip(bounds, bounds[1:])]
        return [future.result() for future in futures]  # re-raises an exception from a thread


def chunks_of(share, bytes_per_image, pixels_per_image):
    """Split a slice of the batch into slices of as many images as fit in CHUNK_BYTES, and
    at least CHUNK_MIN_PIXELS output pixels (small late-layer images come many to a chunk)."""
    step = max(1, CHUNK_BYTES // max(1, bytes_per_image), -(-CHUNK_MIN_PIXELS // pixels_per_image))
    return [slice(a, min(a + step, share.stop)) for a in range(share.start, share.stop, step)]


def add_in_order(parts):
    """The per-thread partial sums added in thread order: a fixed order, so a result does
    not depend on which thread finished first."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def sum_over_batch(a):
    """a (N, ..., F) -> (F,): the sum over every axis but the last (a bias gradient),
    each thread summing its share of the batch."""
    axes = tuple(range(a.ndim - 1))
    return add_in_order(over_batch(lambda s: a[s].sum(axis=axes), a.shape[0]))


def pad_nhwc(x, pads):
    """(N, H, W, C) -> zero-padded (N, H + pt + pb, W + pl + pr, C); x itself if no padding."""
    (pt, pb), (pl, pr) = pads
    if not (pt or pb or pl or pr):
        return x
    N, H, W, C = x.shape
    padded = numpy.empty((N, H + pt + pb, W + pl + pr, C), dtype=x.dtype)

    def work(s):  # zero only the border, then copy x inside it
        p = padded[s]
        p[:, :pt], p[:, pt + H:], p[:, :, :pl], p[:, :, pl + W:] = 0, 0, 0, 0
        p[:, pt:pt + H, pl:pl + W] = x[s]
    over_batch(work, N)
    return padded


def unpad_nhwc(x_padded, pads):
    """The view of a padded (N, Hp, Wp, C) array without its border."""
    (pt, pb), (pl, pr) = pads
    _, Hp, Wp, _ = x_padded.shape
    return x_padded[:, pt:Hp - pb, pl:Wp - pr, :]


def unroll_rows(x_padded, kh, sy, oh):
    """(N, Hp, Wp, C) -> rows (N, oh, Wp, kh, C) with rows[n, r, c, i] = x_padded[n, r*sy + i, c].

    A strided view reads the kh overlapping input rows of every output row without
    copying; one copy makes it contiguous for the GEMM.
    """
    N, _, Wp, C = x_padded.shape
    s = x_padded.strides
    view = as_strided(x_padded, (N, oh, Wp, kh, C), (s[0], sy * s[1], s[2], s[1], s[3]),
                      writeable=False)
    return numpy.ascontiguousarray(view)


def im2col_strided(x_padded, kh, kw, sy, sx, oh, ow):
    """(N, Hp, Wp, C) -> col (N, oh, ow, kh, kw, C), as conv.im2col, in one copy of a strided
    view. Each patch row (j, c) is kw*C contiguous floats in x, so the copy moves chunks of
    kw*C rather than C: the better choice when C is small (an RGB input layer)."""
    N, _, _, C = x_padded.shape
    s = x_padded.strides
    view = as_strided(x_padded, (N, oh, ow, kh, kw, C), (s[0], sy * s[1], sx * s[2], s[1], s[2], s[3]),
                      writeable=False)
    return numpy.ascontiguousarray(view)


def conv2d_rows_forward(x, W, b, sy, pads, oh, ow):
    """x (N, H, W, C), W (kh, kw, C, F), b (F,) or None, stride (sy, 1) -> y (N, oh, ow, F)."""
    kh, kw, C, F = W.shape
    x_padded = pad_nhwc(x, pads)
    N, Hp, Wp, _ = x_padded.shape
    # W_rows[(i, c), (j, f)] = W[i, j, c, f]: the kernel rows down, the kernel columns across.
    W_rows = numpy.ascontiguousarray(W.transpose(0, 2, 1, 3).reshape(kh * C, kw * F))
    y = numpy.empty((N, oh, ow, F), dtype=x.dtype)

    def work(share):
        for s in chunks_of(share, oh * Wp * (kh * C + kw * F) * x.itemsize, oh * Wp):
            rows = unroll_rows(x_padded[s], kh, sy, oh)
            Z = (rows.reshape(-1, kh * C) @ W_rows).reshape(-1, oh, Wp, kw, F)
            out = y[s]  # output column c takes Z's column c + j, tap j
            if b is not None:
                numpy.add(Z[:, :, 0:ow, 0, :], b, out=out)
            else:
                out[...] = Z[:, :, 0:ow, 0, :]
            for j in range(1, kw):
                out += Z[:, :, j:j + ow, j, :]
    over_batch(work, N, blas_threads=1)
    # Keep the padded input, not rows: unrolling again in the backward is a copy within
    # the cache, cheaper than storing kh times the input and reading it back from memory.
    return y, (x_padded, W_rows, W.shape, sy, pads, b is not None)


def conv2d_rows_backward(gy, cache, input_grad=True):
    """gy (N, oh, ow, F) -> gx (N, H, W, C) or None, gW (kh, kw, C, F), gb (F,) or None."""
    x_padded, W_rows, (kh, kw, C, F), sy, pads, has_bias = cache
    N, oh, ow, _ = gy.shape
    _, Hp, Wp, _ = x_padded.shape
    gx = numpy.empty(x_padded.shape, dtype=gy.dtype) if input_grad else None

    def work(share):
        gW_rows = numpy.zeros_like(W_rows)
        gb = numpy.zeros(F, dtype=gy.dtype)
        for s in chunks_of(share, oh * Wp * 2 * (kh * C + kw * F) * gy.itemsize, oh * Wp):
            rows = unroll_rows(x_padded[s], kh, sy, oh).reshape(-1, kh * C)
            # gZ[n, r, c, j] = gy[n, r, c - j] where 0 <= c - j < ow, else 0 (adjoint of the shifted sum)
            gZ = numpy.zeros((s.stop - s.start, oh, Wp, kw, F), dtype=gy.dtype)
            for j in range(kw):
                gZ[:, :, j:j + ow, j, :] = gy[s]
            gZ = gZ.reshape(-1, kw * F)
            gW_rows += rows.T @ gZ
            if has_bias:  # a matrix-vector product sums over pixels far faster than sum(axis=0)
                g = gy[s].reshape(-1, F)
                gb += numpy.ones(len(g), dtype=g.dtype) @ g
            if gx is not None:
                # Adjoint of unroll_rows: kernel row i of output row r came from padded row r*sy + i.
                g_rows = (gZ @ W_rows.T).reshape(-1, oh, Wp, kh, C)
                g = gx[s]
                g[...] = 0
                for i in range(kh):
                    g[:, i:i + sy * (oh - 1) + 1:sy, :, :] += g_rows[:, :, :, i, :]
        return gW_rows, gb
    parts = over_batch(work, N, blas_threads=1)
    gW = add_in_order([p[0] for p in parts]).reshape(kh, C, kw, F).transpose(0, 2, 1, 3)
    gb = add_in_order([p[1] for p in parts]) if has_bias else None
    return (None if gx is None else unpad_nhwc(gx, pads)), numpy.ascontiguousarray(gW), gb


def conv2d_im2col_forward(x, W, b, strides, pads, oh, ow):
    """im2col + GEMM as in conv.py, blocked: for thin inputs (RGB) and strides across.
    x (N, H, W, C), W (kh, kw, C, F), b (F,) or None -> y (N, oh, ow, F)."""
    kh, kw, C, F = W.shape
    sy, sx = strides
    x_padded = pad_nhwc(x, pads)
    W_col = W.reshape(-1, F)
    y = numpy.empty((x.shape[0], oh, ow, F), dtype=x.dtype)

    def work(share):
        for s in chunks_of(share, oh * ow * (kh * kw * C + F) * x.itemsize, oh * ow):
            col = im2col_strided(x_padded[s], kh, kw, sy, sx, oh, ow)
            out = y[s].reshape(-1, F)
            numpy.matmul(col.reshape(-1, kh * kw * C), W_col, out=out)
            if b is not None:
                out += b
    over_batch(work, x.shape[0], blas_threads=1)
    return y, (x_padded, W, strides, pads, b is not None)


def conv2d_im2col_backward(gy, cache, input_grad=True):
    """gy (N, oh, ow, F) -> gx (N, H, W, C) or None, gW (kh, kw, C, F), gb (F,) or None."""
    x_padded, W, (sy, sx), pads, has_bias = cache
    kh, kw, C, F = W.shape
    N, oh, ow, _ = gy.shape
    W_col = W.reshape(-1, F)
    gx = numpy.empty(x_padded.shape, dtype=gy.dtype) if input_grad else None

    def work(share):
        gW = numpy.zeros_like(W_col)
        gb = numpy.zeros(F, dtype=gy.dtype)
        for s in chunks_of(share, oh * ow * 2 * (kh * kw * C + F) * gy.itemsize, oh * ow):
            col = im2col_strided(x_padded[s], kh, kw, sy, sx, oh, ow)
            g = gy[s].reshape(-1, F)
            gW += col.reshape(-1, kh * kw * C).T @ g
            if has_bias:  # a matrix-vector product sums over pixels far faster than sum(axis=0)
                gb += numpy.ones(len(g), dtype=g.dtype) @ g
            if gx is not None:  # col2im of gcol, as in conv.py
                gcol = (g @ W_col.T).reshape(col.shape)
                g_x = gx[s]
                g_x[...] = 0
                for i in range(kh):
                    for j in range(kw):
                        g_x[:, i:i + sy * (oh - 1) + 1:sy, j:j + sx * (ow - 1) + 1:sx, :] += gcol[:, :, :, i, j, :]
        return gW, gb
    parts = over_batch(work, N, blas_threads=1)
    gW = add_in_order([p[0] for p in parts]).reshape(W.shape)
    gb = add_in_order([p[1] for p in parts]) if has_bias else None
    return (None if gx is None else unpad_nhwc(gx, pads)), gW, gb


def max_pool2d_tiles_forward(x, ph, pw, oh, ow):
    """Max-pooling with stride = pool size and no padding (the usual 2x2/2): the windows
    tile the image, so x reshapes (no copy) to (N, oh, ph, ow, pw, C) and window tap
    (i, j) is the view [:, :, i, :, j, :]. x (N, H, W, C) -> y (N, oh, ow, C).

    The forward is only a chain of elementwise maxima. Which tap won is worked out in
    the backward from x and y, because NumPy's masked updates (copyto(where=)) that
    the reference's bookkeeping would need cost several times the maxima themselves.
    """
    N, _, _, C = x.shape
    tiles = x[:, :oh * ph, :ow * pw, :].reshape(N, oh, ph, ow, pw, C)
    y = numpy.empty((N, oh, ow, C), dtype=x.dtype)

    def work(s):
        t, out = tiles[s], y[s]
        numpy.maximum(t[:, :, 0, :, 0, :], t[:, :, (1 // pw) % ph, :, 1 % pw, :], out=out)
        for tap in range(2, ph * pw):
            numpy.maximum(out, t[:, :, tap // pw, :, tap % pw, :], out=out)
    over_batch(work, N)
    return y, (tiles, y, x.shape)


def max_pool2d_tiles_backward(gy, cache):
    """gy (N, oh, ow, C) -> gx (N, H, W, C). A tap wins where it equals the max and no
    earlier tap did (the first maximum wins ties, as in the reference and PyTorch); its
    view of gx gets gy there and 0 elsewhere. The taps cover every pixel of the tiled
    part once, so there is no zero-fill (but for rows/columns an odd size leaves over)
    and no scatter."""
    tiles, y, x_shape = cache
    N, oh, ph, ow, pw, C = tiles.shape
    gx = numpy.empty(x_shape, dtype=gy.dtype)
    gx[:, oh * ph:, :, :] = 0
    gx[:, :, ow * pw:, :] = 0
    g_tiles = gx[:, :oh * ph, :ow * pw, :].reshape(N, oh, ph, ow, pw, C)

    def work(s):
        t, m, g, g_t = tiles[s], y[s], gy[s], g_tiles[s]
        won = numpy.empty(m.shape, dtype=bool)
        claimed = numpy.zeros(m.shape, dtype=bool)
        for tap in range(ph * pw):
            i, j = tap // pw, tap % pw
            numpy.equal(t[:, :, i, :, j, :], m, out=won)
            numpy.greater(won, claimed, out=won)  # won and not claimed
            claimed |= won
            numpy.multiply(g, won, out=g_t[:, :, i, :, j, :])
    over_batch(work, N)
    return gx


def _sum_rows(a):
    """a (M, C) -> (C,): the column sums as a matrix-vector product, several times faster
    than a.sum(axis=0), which NumPy runs as M small additions of C-long rows."""
    return numpy.ones(len(a), dtype=a.dtype) @ a


def batch_norm_train_forward(x, gamma, beta, eps):
    """normalization.batch_norm_train_forward on the cores, a few images at a time.
    x (N, ..., C), gamma/beta (C,) -> y like x, and the same cache as the reference.

    Three passes over x, each thread on its share of the batch: the sum (-> mean); x - mean
    and its squares' sum (-> var), the centred values kept in x_hat; then x_hat scaled and
    y = gamma * x_hat + beta while the chunk is in cache. The partial sums are added in
    thread order, so results do not depend on timing.
    """
    N, C = x.shape[0], x.shape[-1]
    m = x.size // C
    per_image = 2 * x[0].size * x.itemsize
    x_hat = numpy.empty_like(x)
    y = numpy.empty_like(x)

    def total(share):
        return sum(_sum_rows(x[s].reshape(-1, C)) for s in chunks_of(share, per_image, 1))
    mean = add_in_order(over_batch(total, N, blas_threads=1)) / m

    def centre(share):
        squares = numpy.zeros(C, dtype=x.dtype)
        for s in chunks_of(share, per_image, 1):
            d = x_hat[s].reshape(-1, C)
            numpy.subtract(x[s].reshape(-1, C), mean, out=d)
            squares += numpy.einsum("ij,ij->j", d, d)
        return squares
    var = add_in_order(over_batch(centre, N)) / m
    inv_std = 1 / numpy.sqrt(var + eps)

    def normalise(share):
        for s in chunks_of(share, per_image, 1):
            x_hat[s] *= inv_std
            numpy.multiply(x_hat[s], gamma, out=y[s])
            y[s] += beta
    over_batch(normalise, N)
    return y, BatchNormCache(x_hat, gamma, inv_std, tuple(range(x.ndim - 1)), mean, var)


def batch_norm_train_backward(gy, cache):
    """gy like x -> gx, ggamma, gbeta as normalization.batch_norm_train_backward:
    gx = (gamma * inv_std / m) * (m * gy - gbeta - x_hat * ggamma), in two passes."""
    x_hat, gamma, inv_std = cache.x_hat, cache.gamma, cache.inv_std
    N, C = gy.shape[0], gy.shape[-1]
    m = gy.size // C
    per_image = 3 * gy[0].size * gy.itemsize

    def sums(share):
        gbeta, ggamma = numpy.zeros(C, dtype=gy.dtype), numpy.zeros(C, dtype=gy.dtype)
        for s in chunks_of(share, per_image, 1):
            g, xh = gy[s].reshape(-1, C), x_hat[s].reshape(-1, C)
            gbeta += _sum_rows(g)
            ggamma += numpy.einsum("ij,ij->j", g, xh)
        return gbeta, ggamma
    parts = over_batch(sums, N, blas_threads=1)
    gbeta, ggamma = add_in_order([p[0] for p in parts]), add_in_order([p[1] for p in parts])
    scale = gamma * inv_std  # gx = scale * gy - (x_hat * ggamma + gbeta) * scale / m
    shift_x_hat, shift = scale * ggamma / m, scale * gbeta / m
    gx = numpy.empty_like(gy)

    def combine(share):
        for s in chunks_of(share, per_image, 1):
            out = gx[s]
            numpy.multiply(x_hat[s], shift_x_hat, out=out)
            out += shift
            numpy.subtract(gy[s] * scale, out, out=out)
    over_batch(combine, N)
    return gx, ggamma, gbeta


def relu_forward(x):
    """x (N, ...) -> (max(0, x), x > 0), the batch split over the cores."""
    y = numpy.empty_like(x)
    positive = numpy.empty(x.shape, dtype=bool)

    def work(s):
        numpy.greater(x[s], 0, out=positive[s])
        numpy.multiply(x[s], positive[s], out=y[s])  # not maximum: keeps -0.0 and NaN as the reference
    over_batch(work, len(x))
    return y, positive


def relu_backward(gy, positive):
    return multiply(gy, positive)


def multiply(a, b):
    """a * b for arrays of one shape (N, ...), the batch split over the cores."""
    out = numpy.empty_like(a)
    over_batch(lambda s: numpy.multiply(a[s], b[s], out=out[s]), len(a))
    return out


GELU_CHUNK = 65536  # elements at a time: the temporaries below (256 KiB each) stay in the L2 cache


def gelu_forward(x):
    """float32 x -> (x * Phi(x), slope Phi(x) + x * phi(x)), as activation.gelu_forward
    with its erf formula, but fused: each core takes a share of the elements and runs all
    twenty-odd steps on GELU_CHUNK of them at a time, in place, instead of twenty passes
    over arrays of the batch's size through main memory.

    With u = |x| / sqrt 2 and t = 1 / (1 + p u): the tail q = P(X > |x|) = 0.5 poly(t) t
    exp(-u^2), Phi(x) = 1 - q for x >= 0 and q below, and exp(-u^2) = exp(-x^2 / 2) is
    the normal density up to 1 / sqrt(2 pi): the slope needs no second exp."""
    from .activation import _ERF_A, _ERF_P
    f = x.dtype.type
    flat = numpy.ascontiguousarray(x).reshape(-1)
    y, slope = numpy.empty_like(flat), numpy.empty_like(flat)

    def work(s):
        for a in range(s.start, s.stop, GELU_CHUNK):
            b = min(a + GELU_CHUNK, s.stop)
            xs = flat[a:b]
            u = numpy.abs(xs)
            u *= f(1 / math.sqrt(2))
            e = numpy.multiply(u, u)
            numpy.negative(e, out=e)
            numpy.exp(e, out=e)  # exp(-x^2/2)
            t = numpy.multiply(u, f(_ERF_P), out=u)
            t += 1
            numpy.reciprocal(t, out=t)
            q = numpy.multiply(t, f(_ERF_A[4]))
            for coefficient in reversed(_ERF_A[:4]):  # Horner, as activation.erf
                q += f(coefficient)
                q *= t
            q *= e
            q *= f(0.5)  # the tail P(X > |x|)
            cdf = numpy.subtract(f(0.5), q, out=q)
            numpy.copysign(cdf, xs, out=cdf)
            cdf += f(0.5)  # 1 - tail for x >= 0, tail for x < 0
            numpy.multiply(xs, cdf, out=y[a:b])
            e *= xs
            e *= f(1 / math.sqrt(2 * math.pi))
            numpy.add(cdf, e, out=slope[a:b])
    over_batch(work, flat.size)
    return y.reshape(x.shape), slope.reshape(x.shape)
