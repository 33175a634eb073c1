"""Faster CPU (NumPy) convolution: the same numbers as the reference in conv.py
(tests/test_fast_kernels.py checks that); read that first.

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
in cache. Only x, y and the gradients travel to and from memory.

Thin inputs (RGB, fewer than conv.ROWS_MIN_CHANNELS channels) take the planar im2col
(conv2d_planar_forward): a patch of 27 floats is too short a row for either GEMM above.
Strides across and narrow images take im2col + GEMM, blocked as above. conv.cpu_path
chooses among the three.
Measured on the 2-core test machine (benchmarks/run.py), blocking took a 32x32x32->32
convolution from 38 to 20 ms forward and 56 to 40 ms backward at batch 128.

Shapes: x (N, H, W, C), W (kh, kw, C, F), b (F,), y (N, oh, ow, F), Wp = W + pl + pr.
"""
import numpy
from numpy.lib.stride_tricks import as_strided

from ..backend import matmul
from ..distributed.threads import add_in_order, chunks_of, over_batch
from . import conv  # the reference; conv.py imports this module, so only conv.tap is used, at call time


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
    over_batch(work, N, nbytes=padded.nbytes)
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
            Z = matmul(rows.reshape(-1, kh * C), W_rows).reshape(-1, oh, Wp, kw, F)
            out = y[s]  # output column c takes Z's column c + j, tap j
            if b is not None:
                numpy.add(Z[:, :, 0:ow, 0, :], b, out=out)
            else:
                out[...] = Z[:, :, 0:ow, 0, :]
            for j in range(1, kw):
                out += Z[:, :, j:j + ow, j, :]
    over_batch(work, N, blas_threads=1, nbytes=kh * kw * x_padded.nbytes)
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
            gW_rows += matmul(rows.T, gZ)
            if has_bias:  # a matrix-vector product sums over pixels far faster than sum(axis=0)
                g = gy[s].reshape(-1, F)
                gb += matmul(numpy.ones(len(g), dtype=g.dtype), g)
            if gx is not None:
                # Adjoint of unroll_rows: kernel row i of output row r came from padded row r*sy + i.
                g_rows = matmul(gZ, W_rows.T).reshape(-1, oh, Wp, kh, C)
                g = gx[s]
                g[...] = 0
                for i in range(kh):
                    g[:, conv.tap(i, sy, oh), :, :] += g_rows[:, :, :, i, :]
        return gW_rows, gb
    parts = over_batch(work, N, blas_threads=1, nbytes=kh * kw * x_padded.nbytes)
    gW = add_in_order([p[0] for p in parts]).reshape(kh, C, kw, F).transpose(0, 2, 1, 3)
    gb = add_in_order([p[1] for p in parts]) if has_bias else None
    return (None if gx is None else unpad_nhwc(gx, pads)), numpy.ascontiguousarray(gW), gb


def conv2d_planar_forward(x, W, b, strides, pads, oh, ow):
    """im2col with the patch matrix stored transposed, for thin inputs (RGB and other
    inputs of few channels), any stride.

    x (N, H, W, C), W (kh, kw, C, F), b (F,) or None -> y (N, oh, ow, F).

    With C = 3, a patch row (kh*kw*C = 27 floats) is too short for either of the other
    paths: the strided copy into col moves runs of kw*C = 9 floats, and a GEMM with
    K = 27 spends more time packing its operands than multiplying. Here instead:
      1. x goes channel-first ("planar"): x_planar (C, N, Hp, Wp), padded on the way;
      2. colT (K + 1, N*oh*ow), K = kh*kw*C: row (i, j, c) is channel c of x_planar seen
         through tap (i, j), one strided slice whose rows are ow contiguous floats; the
         last row is all ones, so the bias rides in the GEMM as one more kernel row;
      3. y (N*oh*ow, F) = colTᵀ @ [W; b], one GEMM (BLAS reads colTᵀ without a copy).
    colT is kept for the backward, where gW = colT @ gy is a GEMM over every pixel: the
    column matrix is 9x the thin input (27 floats a pixel), cheaper to keep than redo.
    """
    kh, kw, C, F = W.shape
    sy, sx = strides
    N, H, W_in, _ = x.shape
    (pt, pb), (pl, pr) = pads
    K, P = kh * kw * C, oh * ow
    has_bias = b is not None
    colT = numpy.empty((K + has_bias, N * P), dtype=x.dtype)
    W_col = W.reshape(K, F)
    if has_bias:
        W_col = numpy.concatenate([W_col, b.reshape(1, F)])
    y = numpy.empty((N, oh, ow, F), dtype=x.dtype)

    def work(s):
        n = s.stop - s.start
        x_planar = numpy.zeros((C, n, H + pt + pb, W_in + pl + pr), dtype=x.dtype)
        x_planar[:, :, pt:pt + H, pl:pl + W_in] = x[s].transpose(3, 0, 1, 2)
        cols = colT[:, s.start * P:s.stop * P]  # this share's pixels: a view
        taps = cols[:K].reshape(kh, kw, C, n, oh, ow)
        for i in range(kh):
            for j in range(kw):
                taps[i, j] = x_planar[:, :, conv.tap(i, sy, oh), conv.tap(j, sx, ow)]
        if has_bias:
            cols[K] = 1
        matmul(cols.T, W_col, out=y[s].reshape(-1, F))
    over_batch(work, N, blas_threads=1, nbytes=colT.nbytes)
    return y, (colT, W, x.shape, strides, pads, has_bias)


def conv2d_planar_backward(gy, cache, input_grad=True):
    """gy (N, oh, ow, F) -> gx (N, H, W, C) or None, gW (kh, kw, C, F), gb (F,) or None.

    [gW; gb] = colT @ gy in one GEMM (colT's row of ones gives gb). For gx, the adjoint
    of the forward's steps: gcolT = W_col @ gyᵀ, added back tap by tap into a planar
    gradient, which goes back to channels-last without its padding."""
    colT, W, x_shape, (sy, sx), pads, has_bias = cache
    kh, kw, C, F = W.shape
    N, oh, ow, _ = gy.shape
    _, H, W_in, _ = x_shape
    (pt, pb), (pl, pr) = pads
    K, P = kh * kw * C, oh * ow
    W_col = W.reshape(K, F)
    gx = numpy.empty(x_shape, dtype=gy.dtype) if input_grad else None

    def work(s):
        n = s.stop - s.start
        cols = colT[:, s.start * P:s.stop * P]
        g = gy[s].reshape(-1, F)
        gW_and_b = matmul(cols, g)
        if gx is not None:
            g_taps = matmul(W_col, g.T).reshape(kh, kw, C, n, oh, ow)
            g_planar = numpy.zeros((C, n, H + pt + pb, W_in + pl + pr), dtype=gy.dtype)
            for i in range(kh):
                for j in range(kw):
                    g_planar[:, :, conv.tap(i, sy, oh), conv.tap(j, sx, ow)] += g_taps[i, j]
            gx[s] = g_planar[:, :, pt:pt + H, pl:pl + W_in].transpose(1, 2, 3, 0)
        return gW_and_b
    gW_and_b = add_in_order(over_batch(work, N, blas_threads=1, nbytes=colT.nbytes))
    gb = gW_and_b[K] if has_bias else None
    return gx, gW_and_b[:K].reshape(W.shape), gb


def conv2d_im2col_forward(x, W, b, strides, pads, oh, ow):
    """im2col + GEMM as in conv.py, blocked: for strides across and narrow images (thin
    inputs take the planar path above).
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
            matmul(col.reshape(-1, kh * kw * C), W_col, out=out)
            if b is not None:
                out += b
    over_batch(work, x.shape[0], blas_threads=1, nbytes=kh * kw * x_padded.nbytes)
    return y, (x_padded, W, strides, pads, b is not None)


def conv2d_im2col_backward(gy, cache, input_grad=True):
    """gy (N, oh, ow, F) -> gx (N, H, W, C) or None, gW (kh, kw, C, F), gb (F,) or None."""
    x_padded, W, (sy, sx), pads, has_bias = cache
    kh, kw, C, F = W.shape
    N, oh, ow, _ = gy.shape
    W_col = W.reshape(-1, F)
    gx = numpy.empty(x_padded.shape, dtype=gy.dtype) if input_grad else None

    def work(share):
        gW = numpy.zeros_like(W)  # in W's shape, added to through a 2-D view (no reshape after)
        gW_col = gW.reshape(-1, F)
        gb = numpy.zeros(F, dtype=gy.dtype)
        for s in chunks_of(share, oh * ow * 2 * (kh * kw * C + F) * gy.itemsize, oh * ow):
            col = im2col_strided(x_padded[s], kh, kw, sy, sx, oh, ow)
            g = gy[s].reshape(-1, F)
            gW_col += matmul(col.reshape(-1, kh * kw * C).T, g)
            if has_bias:  # a matrix-vector product sums over pixels far faster than sum(axis=0)
                gb += matmul(numpy.ones(len(g), dtype=g.dtype), g)
            if gx is not None:  # col2im of gcol, as in conv.py
                gcol = matmul(g, W_col.T).reshape(col.shape)
                g_x = gx[s]
                g_x[...] = 0
                for i in range(kh):
                    for j in range(kw):
                        g_x[:, conv.tap(i, sy, oh), conv.tap(j, sx, ow), :] += gcol[:, :, :, i, j, :]
        return gW, gb
    parts = over_batch(work, N, blas_threads=1, nbytes=kh * kw * x_padded.nbytes)
    gW = add_in_order([p[0] for p in parts])  # an array of its own: autograd keeps it as .grad
    gb = add_in_order([p[1] for p in parts]) if has_bias else None
    return (None if gx is None else unpad_nhwc(gx, pads)), gW, gb

