"""Layers that change an image's size, not its values, with Keras's arguments:
ZeroPadding2D (a border of zeros), Cropping2D (a border cut off), UpSampling2D (each
pixel repeated or interpolated)."""
from .. import functional as F
from ..functions import upsampling
from ..functions.conv import pair
from .base import Layer


def _pads(padding, what="ZeroPadding2D: padding"):
    """Keras's forms: n (all sides), (rows, cols) (symmetric), or ((top, bottom), (left, right))."""
    try:
        if isinstance(padding, int):
            pads = ((padding, padding), (padding, padding))
        elif len(padding) == 2 and all(isinstance(p, int) for p in padding):
            pads = ((padding[0], padding[0]), (padding[1], padding[1]))
        else:
            pads = tuple(tuple(int(v) for v in p) for p in padding)
    except (TypeError, ValueError):  # a mix of the forms, or not numbers at all
        pads = ()
    if len(pads) != 2 or any(len(p) != 2 or min(p) < 0 for p in pads):
        raise ValueError(f"{what} must be n, (rows, cols) or ((top, bottom), (left, right)) "
                         f"of non-negative ints, got {padding!r}")
    return pads


class ZeroPadding2D(Layer):
    """(N, H, W, C) -> (N, top + H + bottom, left + W + right, C), the border filled with 0."""

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.padding = _pads(padding)

    def check_input_shape(self, input_shape):
        self.require_images(input_shape)

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        return (input_shape[0] + top + bottom, input_shape[1] + left + right, input_shape[2])

    def arithmetic(self):
        (top, bottom), (left, right) = self.padding
        H, W, _ = self.input_shape
        return [("height", f"{top} + {H} + {bottom}", H + top + bottom, ""),
                ("width", f"{left} + {W} + {right}", W + left + right, ""),
                ("params", None, 0, "zeros have nothing to learn")]

    def call(self, x, training):
        return F.zero_pad2d(x, self.padding)

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}


class Cropping2D(Layer):
    """(N, H, W, C) -> (N, H - top - bottom, W - left - right, C): the border cut off
    (ZeroPadding2D's inverse; U-Net crops skip connections to fit). cropping takes
    ZeroPadding2D's forms; the gradient of the cut-off pixels is zero."""

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pads(cropping, "Cropping2D: cropping")

    def check_input_shape(self, input_shape):
        self.require_images(input_shape)
        (top, bottom), (left, right) = self.cropping
        if top + bottom >= input_shape[0] or left + right >= input_shape[1]:
            raise self.error(f"cropping {[list(p) for p in self.cropping]} leaves no pixels", input_shape)

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.cropping
        return (input_shape[0] - top - bottom, input_shape[1] - left - right, input_shape[2])

    def arithmetic(self):
        (top, bottom), (left, right) = self.cropping
        H, W, _ = self.input_shape
        return [("height", f"{H} - {top} - {bottom}", H - top - bottom, ""),
                ("width", f"{W} - {left} - {right}", W - left - right, ""),
                ("params", None, 0, "a cut has nothing to learn")]

    def call(self, x, training):
        (top, bottom), (left, right) = self.cropping
        _, H, W, _ = x.shape
        return x[:, top:H - bottom, left:W - right, :]  # a slice: its backward puts gy back, zeros around

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping]}


class UpSampling2D(Layer):
    """(N, H, W, C) -> (N, H*sh, W*sw, C). interpolation 'nearest' repeats each pixel into
    an sh x sw block; 'bilinear' mixes the two nearest pixels along each axis, pixel
    centres aligned (Keras's, and PyTorch's with align_corners=False)."""

    def __init__(self, size=(2, 2), interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = pair(size, "UpSampling2D size")
        if interpolation not in upsampling.INTERPOLATIONS:
            raise ValueError(f"UpSampling2D: interpolation must be one of {upsampling.INTERPOLATIONS}, "
                             f"got {interpolation!r}")
        self.interpolation = interpolation

    def check_input_shape(self, input_shape):
        self.require_images(input_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0] * self.size[0], input_shape[1] * self.size[1], input_shape[2])

    def arithmetic(self):
        (sh, sw), (H, W, _) = self.size, self.input_shape
        how = "each pixel repeated" if self.interpolation == "nearest" else "the nearest two mixed"
        return [("height", f"{H}*{sh}", H * sh, how), ("width", f"{W}*{sw}", W * sw, ""),
                ("params", None, 0, "a fixed resampling, nothing learned")]

    def call(self, x, training):
        return F.upsample2d(x, self.size, self.interpolation)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "interpolation": self.interpolation}
