"""Zero padding around images, channels-last: x (N, H, W, C) -> (N, top+H+bottom, left+W+right, C)."""
from ..backend import get_array_module


def zero_pad2d_forward(x, pads):
    """pads ((top, bottom), (left, right)). The backward is the crop back to the input."""
    (top, bottom), (left, right) = pads
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))), (x.shape, top, left)


def zero_pad2d_backward(gy, cache):
    """gy (N, H + top + bottom, W + left + right, C) -> gx (N, H, W, C)."""
    (_, height, width, _), top, left = cache
    return gy[:, top:top + height, left:left + width, :]
