"""Faster CPU (NumPy) versions of convolution and max-pooling. Same numbers as the
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

Shapes: x (N, H, W, C), W (kh, kw, C, F), b (F,), y (N, oh, ow, F), Wp = W + pl + pr.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy
from numpy.lib.stride_tricks import as_strided

THREADS = min(os.cpu_count() or 1, 8)
_pool = None  # (process id, executor): a forked child gets a pool of its own


def over_batch(work, n):
    """Call work(s) for slices s of range(n), one per core, on threads; returns when done.

    OpenBLAS runs the GEMMs on every core, but NumPy's own copies and elementwise loops
    run on one. They release the GIL, though, so threads working on separate samples of
    the batch run them in parallel: the memory-bound steps below use every core too.
    """
    global _pool
    chunks = min(THREADS, n)
    if chunks < 2:
        work(slice(0, n))
        return
    if _pool is None or _pool[0] != os.getpid():  # threads do not survive a fork
        _pool = (os.getpid(), ThreadPoolExecutor(THREADS, thread_name_prefix="minicnn"))
    bounds = [n * k // chunks for k in range(chunks + 1)]
    for future in [_pool[1].submit(work, slice(a, b)) for a, b in zip(bounds, bounds[1:])]:
        future.result()  # re-raises an exception from the thread


def sum_over_batch(a):
    """a (N, ..., F) -> (F,): the sum over every axis but the last (a bias gradient),
    each thread summing its share of the batch, then the partial sums added in batch
    order (a fixed order, so the result does not depend on which thread finished first)."""
    axes = tuple(range(a.ndim - 1))
    partial = {}

    def work(s):
        partial[s.start] = a[s].sum(axis=axes)
    over_batch(work, a.shape[0])
    return numpy.sum([partial[k] for k in sorted(partial)], axis=0, dtype=a.dtype)


def pad_nhwc(x, pads):
    """(N, H, W, C) -> zero-padded (N, H + pt + pb, W + pl + pr, C); x itself if no padding."""
    (pt, pb), (pl, pr) = pads
    if not (pt or pb or pl or pr):
        return x
    N, H, W, C = x.shape
    padded = numpy.zeros((N, H + pt + pb, W + pl + pr, C), dtype=x.dtype)
    padded[:, pt:pt + H, pl:pl + W, :] = x
    return padded


def unroll_rows(x_padded, kh, sy, oh):
    """(N, Hp, Wp, C) -> rows (N, oh, Wp, kh, C) with rows[n, r, c, i] = x_padded[n, r*sy + i, c].

    A strided view reads the kh overlapping input rows of every output row without
    copying; one copy makes it contiguous for the GEMM.
    """
    N, _, Wp, C = x_padded.shape
    s = x_padded.strides
    view = as_strided(x_padded, (N, oh, Wp, kh, C), (s[0], sy * s[1], s[2], s[1], s[3]),
                      writeable=False)
    rows = numpy.empty(view.shape, dtype=x_padded.dtype)
    over_batch(lambda b: numpy.copyto(rows[b], view[b]), N)
    return rows


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
    rows = unroll_rows(x_padded, kh, sy, oh)
    # W_rows[(i, c), (j, f)] = W[i, j, c, f]: the kernel rows down, the kernel columns across.
    W_rows = W.transpose(0, 2, 1, 3).reshape(kh * C, kw * F)
    Z = (rows.reshape(-1, kh * C) @ W_rows).reshape(N, oh, Wp, kw, F)
    y = numpy.empty((N, oh, ow, F), dtype=x.dtype)

    def add_width_taps(s):  # output column c takes Z's column c + j, tap j
        if b is not None:
            numpy.add(Z[s, :, 0:ow, 0, :], b, out=y[s])
        else:
            y[s] = Z[s, :, 0:ow, 0, :]
        for j in range(1, kw):
            y[s] += Z[s, :, j:j + ow, j, :]
    over_batch(add_width_taps, N)
    return y, (rows, W_rows, W.shape, (Hp, Wp), sy, pads, b is not None)


def conv2d_rows_backward(gy, cache, input_grad=True):
    """gy (N, oh, ow, F) -> gx (N, H, W, C) or None, gW (kh, kw, C, F), gb (F,) or None."""
    rows, W_rows, (kh, kw, C, F), (Hp, Wp), sy, pads, has_bias = cache
    N, oh, ow, _ = gy.shape
    # gZ[n, r, c, j] = gy[n, r, c - j] where 0 <= c - j < ow, else 0 (adjoint of the shifted sum)
    gZ = numpy.empty((N, oh, Wp, kw, F), dtype=gy.dtype)

    def shift_gy(s):
        for j in range(kw):
            gZ[s, :, :j, j, :] = 0
            gZ[s, :, j:j + ow, j, :] = gy[s]
            gZ[s, :, j + ow:, j, :] = 0
    over_batch(shift_gy, N)
    gZ = gZ.reshape(-1, kw * F)
    gW = (rows.reshape(-1, kh * C).T @ gZ).reshape(kh, C, kw, F).transpose(0, 2, 1, 3)
    gb = sum_over_batch(gy) if has_bias else None
    if not input_grad:
        return None, numpy.ascontiguousarray(gW), gb
    g_rows = (gZ @ W_rows.T).reshape(N, oh, Wp, kh, C)
    # Adjoint of unroll_rows: kernel row i of output row r came from padded row r*sy + i.
    gx = numpy.empty((N, Hp, Wp, C), dtype=gy.dtype)

    def add_row_taps(s):
        gx[s] = 0
        for i in range(kh):
            gx[s, i:i + sy * (oh - 1) + 1:sy, :, :] += g_rows[s, :, :, i, :]
    over_batch(add_row_taps, N)
    (pt, pb), (pl, pr) = pads
    return gx[:, pt:Hp - pb, pl:Wp - pr, :], numpy.ascontiguousarray(gW), gb


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
    gx = numpy.empty_like(gy)
    over_batch(lambda s: numpy.multiply(gy[s], positive[s], out=gx[s]), len(gy))
    return gx
