"""Upsampling images by whole factors, channels-last: x (N, H, W, C) -> (N, H*sh, W*sw, C).

'nearest' repeats each pixel into an sh x sw block; its backward adds each block's
gradients back into the one pixel they came from.

'bilinear' (Keras's and PyTorch's with align_corners=False) is functions/resize.py's
resize to (H*sh, W*sw): the output pixel i sits at input coordinate (i + 0.5) / s - 0.5
and mixes the two input pixels on either side of it by distance, as two matrix products.
"""
from . import resize

INTERPOLATIONS = ("nearest", "bilinear")


def upsample_nearest_forward(x, size):
    """x (N, H, W, C), size (sh, sw) -> y (N, H*sh, W*sw, C): each pixel an sh x sw block."""
    sh, sw = size
    return x.repeat(sh, axis=1).repeat(sw, axis=2), (sh, sw)


def upsample_nearest_backward(gy, cache):
    """gy (N, H*sh, W*sw, C) -> gx (N, H, W, C): each block's gradients summed."""
    sh, sw = cache
    N, Hs, Ws, C = gy.shape
    return gy.reshape(N, Hs // sh, sh, Ws // sw, sw, C).sum(axis=(2, 4))


def upsample_bilinear_forward(x, size):
    """x (N, H, W, C), size (sh, sw) -> y (N, H*sh, W*sw, C): a resize by whole factors."""
    _, H, W, _ = x.shape
    return resize.resize_forward(x, (H * size[0], W * size[1]), "bilinear")


upsample_bilinear_backward = resize.resize_backward  # gx = A_hᵀ gy A_w (functions/resize.py)
