"""Keras's image preprocessing layers that change an image's size: Resizing (to any size,
bilinear or nearest) and CenterCrop (the middle window). RandomCrop (augmentation.py)
shares their rule for an image that does not fit. Shapes: (N, H, W, C) -> (N, height, width, C).

That rule is Keras's "smart resize": cut from the image's centre the largest window with
the target's aspect ratio, then resize the window to the target. The content is not
stretched; a little of the longer side is lost instead.

The resize is functions/resize.py's (two matrix products), so all three pass gradients
to their input in inference; nothing in them is learned.
"""
from .. import functional as F
from ..autograd import Tensor
from ..backend import get_array_module
from ..functions import resize as resize_fn
from .base import Layer


def aspect_window(H, W, height, width):
    """(top, left, rows, cols): the largest window centred in an H x W image whose sides
    have the ratio height : width (Keras's crop_to_aspect_ratio, its rounding kept)."""
    rows = max(min(H, int(W * height / width)), 1)
    cols = max(min(W, int(H * width / height)), 1)
    return (H - rows) // 2, (W - cols) // 2, rows, cols


def smart_resize(x, size, interpolation="bilinear"):
    """x Tensor (N, H, W, C) -> (N, height, width, C): the centred window of the target's
    aspect ratio (aspect_window), resized to size (height, width)."""
    _, H, W, _ = x.shape
    top, left, rows, cols = aspect_window(H, W, *size)
    if (rows, cols) != (H, W):
        x = x[:, top:top + rows, left:left + cols, :]  # a slice: its backward puts gy back, zeros around
    return F.resize(x, size, interpolation)


def target_size(height, width, what):
    """(height, width) as positive ints, or a ValueError naming ``what``."""
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (height, width)):
        raise ValueError(f"{what}: height and width must be positive ints, got {height!r} and {width!r}")
    return height, width


class SizedOutput(Layer):
    """What the three share: a target (height, width), images in, (height, width, C) out."""

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = target_size(height, width, type(self).__name__)

    def check_input_shape(self, input_shape):
        self.require_images(input_shape)

    def compute_output_shape(self, input_shape):
        return (self.height, self.width, input_shape[2])

    def arithmetic(self):
        H, W, _ = self.input_shape
        return [("height", None, self.height, f"from {H}"), ("width", None, self.width, f"from {W}"),
                ("params", None, 0, "a fixed resampling, nothing learned")]

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class Resizing(SizedOutput):
    """Each image resized to (height, width), up or down by any factor: 'bilinear' (Keras's
    default) or 'nearest', pixel edges aligned (PyTorch's align_corners=False).

    crop_to_aspect_ratio=True first cuts the centred window of the target's aspect ratio
    (no stretching; smart resize). pad_to_aspect_ratio=True instead grows the shorter side,
    centred, with fill_value (fill_mode 'constant', Keras's only one), so nothing is lost.
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, **kwargs):
        super().__init__(height, width, **kwargs)
        if interpolation not in resize_fn.INTERPOLATIONS:
            raise ValueError(f"Resizing: interpolation must be one of {resize_fn.INTERPOLATIONS}, "
                             f"got {interpolation!r}")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Resizing: crop_to_aspect_ratio and pad_to_aspect_ratio cannot both be True")
        if fill_mode != "constant":
            raise ValueError(f"Resizing: fill_mode must be 'constant' (Keras's only one), got {fill_mode!r}")
        self.interpolation = interpolation
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = bool(crop_to_aspect_ratio), bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value = fill_mode, float(fill_value)

    def call(self, x, training):
        size = (self.height, self.width)
        if self.crop_to_aspect_ratio:
            return smart_resize(x, size, self.interpolation)
        if self.pad_to_aspect_ratio:
            x = self._pad_to_aspect(x)
        return F.resize(x, size, self.interpolation)

    def _pad_to_aspect(self, x):
        """x grown to the smallest centred canvas of the target's aspect ratio (Keras's rounding)."""
        _, H, W, _ = x.shape
        rows = max(H, int(W * self.height / self.width))
        cols = max(W, int(H * self.width / self.height))
        if (rows, cols) == (H, W):
            return x
        top, left = (rows - H) // 2, (cols - W) // 2
        pads = ((top, rows - H - top), (left, cols - W - left))
        padded = F.zero_pad2d(x, pads)
        if not self.fill_value:
            return padded
        # fill_value added where the border is: the image's own pixels stay exact copies
        border = get_array_module(x.data).full((1, rows, cols, 1), self.fill_value, dtype=x.dtype)
        border[:, top:top + H, left:left + W] = 0
        return padded + Tensor(border)

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio, "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
                "fill_mode": self.fill_mode, "fill_value": self.fill_value}


class CenterCrop(SizedOutput):
    """The (height, width) window in the middle of each image, its top-left corner at
    ((H - height) // 2, (W - width) // 2). An image smaller than that along either side is
    smart-resized instead (the centred window of the target's aspect ratio, resized), as Keras's."""

    def call(self, x, training):
        _, H, W, _ = x.shape
        if H < self.height or W < self.width:
            return smart_resize(x, (self.height, self.width))
        top, left = (H - self.height) // 2, (W - self.width) // 2
        return x[:, top:top + self.height, left:left + self.width, :]
