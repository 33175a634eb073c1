"""Keras 3's tone and detail augmentations: AutoContrast and Equalization (each image's
values stretched, or spread evenly over the range), RandomColorDegeneration (a blend
towards grey) and RandomSharpness (a blend towards, or away from, a blurred copy), and the
image functions under them, which RandAugment (randaugment.py) also uses.

The functions take images in [0, 1], (N, H, W, C), and return the same shape in [0, 1];
the layers change value_range to [0, 1] and back, as color.py's do.
"""
import numpy

from ..backend import get_array_module
from .augmentation import _uniform
from .color import _ColorAugmentation, _unit_range
from .erasing import LUMA

# PIL's SMOOTH filter, which its (and torchvision's, and Keras's) sharpness blends with
SMOOTH = numpy.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], numpy.float32) / 13


def grey(x):
    """(N, H, W, 3) -> (N, H, W, 3): each pixel's BT.601 luma in all three channels."""
    xp = get_array_module(x)
    return xp.broadcast_to((x @ xp.asarray(LUMA, dtype=x.dtype))[..., None], x.shape)


def blend(degenerate, x, factor):
    """degenerate + factor * (x - degenerate), clipped to [0, 1]: PIL's ImageEnhance, the one
    rule of brightness (towards black), colour (grey), contrast (the mean grey) and
    sharpness (a blur). factor (N,): 0 gives the degenerate image, 1 the image, 2 twice as
    far from the degenerate as the image is."""
    xp = get_array_module(x)
    f = factor.astype(x.dtype)[:, None, None, None]
    return xp.clip(degenerate + f * (x - degenerate), 0, 1)


def smoothed(x):
    """(N, H, W, C) -> the same: each inner pixel the SMOOTH-weighted mean of its 3x3
    neighbourhood, channel by channel; the one-pixel border left as it is (as PIL's filter)."""
    out = x.copy()
    h, w = x.shape[1], x.shape[2]
    if h < 3 or w < 3:
        return out
    inner = sum(x[:, dy:h - 2 + dy, dx:w - 2 + dx] * x.dtype.type(SMOOTH[dy, dx])
                for dy in range(3) for dx in range(3))
    out[:, 1:-1, 1:-1] = inner
    return out


def auto_contrast(x):
    """Each image's channels stretched on their own so the darkest value becomes 0 and the
    brightest 1; a channel of one value is left as it is."""
    xp = get_array_module(x)
    low, high = x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)
    spread = high - low
    stretched = (x - low) / xp.where(spread > 0, spread, x.dtype.type(1))
    return xp.where(spread > 0, stretched, x)


def equalize(x, bins=256):
    """Histogram equalisation of each image's channels on their own, as Keras 3's
    Equalization: the values in ``bins`` levels, each level mapped to its share of the
    pixels at or below it (the cumulative histogram, less the first level's count, over
    the rest), so the output's levels are spread evenly over [0, 1]. A channel with one
    level is left as it is."""
    xp = get_array_module(x)
    n, h, w, c = x.shape
    level = xp.clip((x * x.dtype.type(bins - 1)).astype(xp.int32), 0, bins - 1)           # (N, H, W, C)
    which = (xp.arange(n, dtype=xp.int32)[:, None, None, None] * c + xp.arange(c, dtype=xp.int32)) * bins
    counts = xp.bincount((which + level).ravel(), minlength=n * c * bins).reshape(n * c, bins)
    cumulative = xp.cumsum(counts, axis=1)                                                 # (N*C, bins)
    first = xp.where(cumulative > 0, cumulative, h * w + 1).min(axis=1, keepdims=True)     # the first level's count
    rest = xp.maximum(h * w - first, 1)
    table = xp.clip(xp.rint((cumulative - first) * 255.0 / rest), 0, 255).astype(x.dtype) / x.dtype.type(255)
    mapped = table.ravel()[which + level]
    several = ((counts > 0).sum(axis=1) > 1).reshape(n, 1, 1, c)
    return xp.where(several, mapped, x)


class AutoContrast(_ColorAugmentation):
    """Keras 3's AutoContrast: each image's channels stretched over all of value_range (in
    training and inference alike, as Keras's: it is not random)."""

    def __init__(self, value_range=(0, 255), **kwargs):
        super().__init__(None, **kwargs)
        self._value_range(value_range)

    def call(self, x, training):
        return super().call(x, training=True)

    def augment(self, x, rng):
        return self.from_unit(auto_contrast(self.to_unit(x)), x.dtype)

    def get_config(self):
        config = super().get_config()
        del config["seed"]  # nothing random
        return config


class Equalization(_ColorAugmentation):
    """Keras 3's Equalization: histogram equalisation of each image's channels, ``bins``
    levels (Keras's default 256), in training only (as Keras's)."""

    def __init__(self, value_range=(0, 255), bins=256, **kwargs):
        super().__init__(None, **kwargs)
        if not isinstance(bins, (int, numpy.integer)) or not 2 <= bins <= 256:
            raise ValueError(f"Equalization: bins must be a whole number from 2 to 256, got {bins!r}")
        self.bins = int(bins)
        self._value_range(value_range)

    def augment(self, x, rng):
        return self.from_unit(equalize(self.to_unit(x), self.bins), x.dtype)

    def get_config(self):
        config = {**super().get_config(), "bins": self.bins}
        del config["seed"]  # nothing random
        return config


class RandomColorDegeneration(_ColorAugmentation):
    """Keras 3's: each image blended towards its grey version by f drawn from ``factor``'s
    range (a number gives [0, f], within [0, 1]): f = 0 leaves it, 1 makes it grey."""

    needs_rgb = True

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_range(factor, "RandomColorDegeneration: factor")
        self._value_range(value_range)

    def augment(self, x, rng):
        unit = self.to_unit(x)
        return self.from_unit(blend(grey(unit), unit, 1 - _uniform(rng, x.shape[0], *self.factor)), x.dtype)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomSharpness(_ColorAugmentation):
    """Keras 3's: each image's sharpness set by f drawn from ``factor``'s range (a number
    gives [0, f], within [0, 1]): the image blended with its SMOOTH-filtered copy by 2f, so
    f = 0 is the blurred copy, 0.5 the image, 1 sharpened twice as far from the blur. The
    border pixels are kept, as PIL's filter keeps them (Keras pads with zeros there)."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_range(factor, "RandomSharpness: factor")
        self._value_range(value_range)

    def augment(self, x, rng):
        unit = self.to_unit(x)
        sharpness = _uniform(rng, x.shape[0], *self.factor) * numpy.float32(2)
        return self.from_unit(blend(smoothed(unit), unit, sharpness), x.dtype)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}
