"""Faster CPU (NumPy) max-pooling for the usual case, windows that tile the image: the
same numbers as the reference in pooling.py (tests/test_fast_kernels.py checks that).
Each core takes its share of the batch (distributed/threads.py)."""
import numpy

from ..distributed.threads import over_batch


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
    over_batch(work, N, nbytes=x.nbytes)
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
    over_batch(work, N, nbytes=gx.nbytes)
    return gx

