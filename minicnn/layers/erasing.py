"""Keras 3's RandomErasing and RandomGrayscale: augmentations that take something away from
an image (a patch of it, its colour) so the network cannot lean on that one thing.

Like the layers of augmentation.py they act in training only, each image drawn afresh from
the layer's random stream, and pass no gradient to their input. Shapes: (N, H, W, C) -> the
same.
"""
import numpy

from ..backend import get_array_module
from .augmentation import RandomAugmentation, _uniform, _where

# ITU-R BT.601 luma, the weights Keras's (and TensorFlow's) rgb_to_grayscale uses
LUMA = (0.2989, 0.5870, 0.1140)


def _fraction_range(value, what):
    """Keras's (0, 1) factor: f gives (0, f), (low, high) as given, each within [0, 1]."""
    low, high = (0.0, float(value)) if isinstance(value, (int, float)) else sorted(map(float, value))
    if not 0 <= low <= high <= 1:
        raise ValueError(f"{what} must be a number in [0, 1] or (low, high) within [0, 1], got {value!r}")
    return low, high


class RandomErasing(RandomAugmentation):
    """Each image (in turn, with a probability drawn from ``factor``'s range) has one
    rectangle replaced, as Keras 3 does it (Zhong et al., 2017, "Random Erasing"):

    - the rectangle spans sqrt(a) of the width and sqrt(b) of the height, a and b drawn
      from ``scale`` (so 0.02 to 0.33 of each side's square), placed anywhere inside;
    - it is filled with ``fill_value`` (a number, or one per channel), or where that is
      None with Gaussian noise times value_range's top, clipped to ``value_range``;
    - factor f gives a probability drawn from [0, f] for each image, (low, high) from
      there, and the image is erased with that probability: so factor=1.0, Keras's
      default, erases half the images on average (Keras's docstring says every one; its
      code, followed here, does this)."""

    def __init__(self, factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _fraction_range(factor, "RandomErasing: factor")
        self.scale = _fraction_range(scale, "RandomErasing: scale")
        if fill_value is not None and not isinstance(fill_value, (int, float)) and len(fill_value) != 3:
            raise ValueError(f"RandomErasing: fill_value must be None (noise), a number or three numbers (R, G, B), "
                             f"got {fill_value!r}")
        low, high = value_range
        if not low < high:
            raise ValueError(f"RandomErasing: value_range must be (low, high) with low < high, got {value_range!r}")
        self.fill_value = fill_value if fill_value is None or isinstance(fill_value, (int, float)) else list(fill_value)
        self.value_range = (float(low), float(high))

    def augment(self, x, rng):
        xp, (n, h, w, c) = get_array_module(x), x.shape
        width_share = xp.sqrt(_uniform(rng, n, *self.scale))
        height_share = xp.sqrt(_uniform(rng, n, *self.scale))
        left = _uniform(rng, n, 0, 1) * (w - width_share * w)
        top = _uniform(rng, n, 0, 1) * (h - height_share * h)
        columns, rows = xp.arange(w, dtype=numpy.float32), xp.arange(h, dtype=numpy.float32)
        inside_x = (columns >= left[:, None]) & (columns < (left + width_share * w)[:, None])  # (n, W)
        inside_y = (rows >= top[:, None]) & (rows < (top + height_share * h)[:, None])          # (n, H)
        erase = _uniform(rng, n, 0, 1) < _uniform(rng, n, *self.factor)                          # (n,)
        patch = (inside_y[:, :, None] & inside_x[:, None, :] & erase[:, None, None])[..., None]  # (n, H, W, 1)
        low, high = self.value_range
        if self.fill_value is None:
            fill = rng.standard_normal(x.shape, dtype=numpy.float32) * numpy.float32(high)
        else:
            fill = xp.asarray(numpy.broadcast_to(numpy.asarray(self.fill_value, numpy.float32), (c,)))
        fill = xp.clip(fill, numpy.float32(low), numpy.float32(high)).astype(x.dtype)
        return xp.where(patch, fill, x)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "scale": list(self.scale),
                "fill_value": self.fill_value, "value_range": list(self.value_range)}


class RandomGrayscale(RandomAugmentation):
    """Each image, with probability ``factor`` (Keras's default 0.5), made grey: every
    channel becomes the image's luma 0.2989 R + 0.5870 G + 0.1140 B, so it keeps its 3
    channels, as Keras 3 does."""

    def __init__(self, factor=0.5, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        if not isinstance(factor, (int, float)) or not 0 <= factor <= 1:
            raise ValueError(f"RandomGrayscale: factor is a probability in [0, 1], got {factor!r}")
        self.factor = float(factor)

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        if input_shape[-1] != 3:
            raise ValueError(f"{self.describe()}: turns RGB images grey, so needs 3 channels; got input shape "
                             f"{(None, *input_shape)}")

    def augment(self, x, rng):
        xp = get_array_module(x)
        luma = x @ xp.asarray(LUMA, dtype=x.dtype)  # (n, H, W)
        grey = xp.broadcast_to(luma[..., None], x.shape)
        return _where(rng.random(x.shape[0], dtype=numpy.float32) < numpy.float32(self.factor), grey, x)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
