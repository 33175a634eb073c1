"""Keras 3's colour augmentations: RandomHue, RandomSaturation and RandomColorJitter (which
also takes RandomBrightness and RandomContrast of augmentation.py), RandomInvert,
Solarization and RandomPosterization, with the hue-saturation-value conversions they use.

Like every augmentation layer they act in training only, each image drawn afresh from the
layer's random stream, and pass no gradient to their input. Images are (N, H, W, C) with
values in ``value_range`` (Keras's default (0, 255); give (0, 1) for scaled images), and
come out the same shape and dtype, within value_range.
"""
import numpy

from ..backend import get_array_module
from .augmentation import RandomAugmentation, RandomBrightness, RandomContrast, _Photometric, _uniform, _where
from .erasing import _fraction_range


def rgb_to_hsv(rgb):
    """(..., 3) red, green, blue in [0, 1] -> (..., 3) hue, saturation, value in [0, 1]:
    value the largest channel, saturation (largest - smallest) / largest, hue the angle
    round the colour wheel in turns (0 red, 1/3 green, 2/3 blue), 0 for a grey."""
    xp = get_array_module(rgb)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value, smallest = rgb.max(axis=-1), rgb.min(axis=-1)
    spread = value - smallest
    safe_spread = xp.where(spread > 0, spread, rgb.dtype.type(1))  # greys: any hue, 0 taken
    saturation = xp.where(value > 0, spread / xp.where(value > 0, value, rgb.dtype.type(1)), rgb.dtype.type(0))
    sixths = xp.where(value == r, (g - b) / safe_spread,                    # between yellow and magenta
                      xp.where(value == g, (b - r) / safe_spread + 2,       # between cyan and yellow
                               (r - g) / safe_spread + 4))                  # between magenta and cyan
    hue = xp.where(spread > 0, (sixths / rgb.dtype.type(6)) % 1, rgb.dtype.type(0))
    return xp.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(hsv):
    """The inverse of rgb_to_hsv: (..., 3) hue, saturation, value in [0, 1] -> (..., 3) RGB.
    Each channel is value * (1 - saturation * ramp), the ramp of that channel's distance
    round the wheel (k = (n + 6 hue) mod 6, n = 5, 3, 1 for red, green, blue): 0 where the
    hue is that channel's colour, 1 opposite it."""
    xp = get_array_module(hsv)
    f = hsv.dtype.type
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    channels = []
    for n in (5, 3, 1):
        k = (f(n) + hue * f(6)) % f(6)
        ramp = xp.clip(xp.minimum(k, f(4) - k), f(0), f(1))
        channels.append(value * (f(1) - saturation * ramp))
    return xp.stack(channels, axis=-1)


_unit_range = _fraction_range  # Keras's [0, 1] factor: f gives (0, f); (low, high) within [0, 1]


def _signs(backwards):
    """(n,) bool -> (n,) float32: -1 where True (Keras turns the hue back above 0.5), else +1."""
    return numpy.float32(1) - numpy.float32(2) * backwards.astype(numpy.float32)


class _ColorAugmentation(RandomAugmentation):
    """value_range, and the change of scale to and from [0, 1] that the colour arithmetic wants."""

    needs_rgb = False

    _value_range = _Photometric._value_range  # (low, high), low < high, else a ValueError naming the layer

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        if self.needs_rgb and input_shape[-1] != 3:
            raise ValueError(f"{self.describe()}: changes the colour of RGB images, so needs 3 channels; got input "
                             f"shape {(None, *input_shape)}")

    def to_unit(self, x):
        low, high = self.value_range
        return (x - x.dtype.type(low)) / x.dtype.type(high - low)

    def from_unit(self, u, dtype):
        """Back to value_range, clipped into it."""
        low, high = self.value_range
        xp = get_array_module(u)
        return (xp.clip(u, 0, 1) * dtype.type(high - low) + dtype.type(low)).astype(dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "value_range": list(self.value_range)}


class RandomHue(_ColorAugmentation):
    """Each image's hue turned round the colour wheel by a random amount, as Keras 3: an
    amount drawn from ``factor``'s range (f gives [0, f], within [0, 1]) times half a turn,
    in a random direction; factor=1.0 reaches the opposite colour. Saturation and
    brightness (value) are kept."""

    needs_rgb = True

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_range(factor, "RandomHue: factor")
        self._value_range(value_range)

    def augment(self, x, rng):
        n = x.shape[0]
        direction = _signs(backwards=_uniform(rng, n, 0, 1) > numpy.float32(0.5))
        turn = direction * _uniform(rng, n, *self.factor) * numpy.float32(0.5)           # (n,) in turns
        hsv = rgb_to_hsv(self.to_unit(x))
        hue = (hsv[..., 0] + turn.astype(x.dtype)[:, None, None]) % x.dtype.type(1)
        return self.from_unit(hsv_to_rgb(get_array_module(x).stack([hue, hsv[..., 1], hsv[..., 2]], -1)), x.dtype)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomSaturation(_ColorAugmentation):
    """Each image's saturation multiplied by f / (1 - f), f drawn from ``factor``'s range
    (a number gives [0, f], within [0, 1]), as Keras 3: f = 0 makes it grey, 0.5 leaves it,
    1 saturates every colour fully; the result is kept within [0, 1] (Keras clips it to
    value_range, which for (0, 255) lets it leave the colour space)."""

    needs_rgb = True

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_range(factor, "RandomSaturation: factor")
        self._value_range(value_range)

    def augment(self, x, rng):
        xp, f = get_array_module(x), x.dtype.type
        drawn = _uniform(rng, x.shape[0], *self.factor).astype(x.dtype)
        # f / (1 - f), with f = 1 a huge finite scale: any colour to full saturation, a grey kept grey
        scale = (drawn / xp.maximum(f(1) - drawn, f(1e-7)))[:, None, None]
        hsv = rgb_to_hsv(self.to_unit(x))
        saturation = xp.clip(hsv[..., 1] * scale, f(0), f(1))
        return self.from_unit(hsv_to_rgb(xp.stack([hsv[..., 0], saturation, hsv[..., 2]], -1)), x.dtype)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomColorJitter(_ColorAugmentation):
    """Keras 3's RandomColorJitter: RandomBrightness, RandomContrast, RandomSaturation and
    RandomHue, in that order, each given its factor (None leaves that one out) and
    value_range, drawing from this layer's one random stream."""

    needs_rgb = True

    def __init__(self, value_range=(0, 255), brightness_factor=None, contrast_factor=None, saturation_factor=None,
                 hue_factor=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self._value_range(value_range)
        given = {"brightness_factor": (RandomBrightness, brightness_factor),
                 "contrast_factor": (RandomContrast, contrast_factor),
                 "saturation_factor": (RandomSaturation, saturation_factor), "hue_factor": (RandomHue, hue_factor)}
        self.factors = {name: (list(factor) if isinstance(factor, (list, tuple)) else factor)
                        for name, (_, factor) in given.items()}
        # the parts only lend their arithmetic (augment): no weights, no stream of their own
        self.parts = [cls(factor, value_range=value_range) for cls, factor in given.values() if factor is not None]
        if not self.parts:
            raise ValueError("RandomColorJitter: give at least one of brightness_factor, contrast_factor, "
                             "saturation_factor, hue_factor")

    def augment(self, x, rng):
        for part in self.parts:
            x = part.augment(x, rng)
        return x

    def get_config(self):
        return {**super().get_config(), **self.factors}


class RandomInvert(_ColorAugmentation):
    """Each image, with a probability drawn from ``factor``'s range (f gives [0, f]; Keras's
    default 1.0, so half the images on average), made its negative: low + high - x (Keras
    writes high - x, the same for value_range (0, 255) or (0, 1))."""

    def __init__(self, factor=1.0, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_range(factor, "RandomInvert: factor")
        self._value_range(value_range)

    def augment(self, x, rng):
        n = x.shape[0]
        probability = _uniform(rng, n, *self.factor)
        invert = _uniform(rng, n, 0, 1) < probability
        low, high = self.value_range
        return _where(invert, x.dtype.type(low + high) - x, x)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class Solarization(_ColorAugmentation):
    """Keras 3's Solarization, on the image seen in 0..255: add a shift drawn from
    addition_factor's range times 255 (the same for the whole image), clip to 0..255, then
    invert (255 - x) every pixel at or above a threshold drawn from threshold_factor's range
    times 255. At Keras's defaults (both 0) every image is inverted; threshold_factor
    (0.5, 0.5) inverts only the bright half of the values. (Keras scales only the upper end
    of each range by 255; both ends are here.)"""

    def __init__(self, addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.addition_factor = _unit_range(addition_factor, "Solarization: addition_factor")
        self.threshold_factor = _unit_range(threshold_factor, "Solarization: threshold_factor")
        self._value_range(value_range)

    def augment(self, x, rng):
        xp, f, n = get_array_module(x), x.dtype.type, x.shape[0]
        addition = (_uniform(rng, n, *self.addition_factor) * numpy.float32(255)).astype(x.dtype)
        threshold = (_uniform(rng, n, *self.threshold_factor) * numpy.float32(255)).astype(x.dtype)
        shifted = xp.clip(self.to_unit(x) * f(255) + addition[:, None, None, None], f(0), f(255))
        solarized = xp.where(shifted < threshold[:, None, None, None], shifted, f(255) - shifted)
        return self.from_unit(solarized / f(255), x.dtype)

    def get_config(self):
        return {**super().get_config(), "addition_factor": list(self.addition_factor),
                "threshold_factor": list(self.threshold_factor)}


class RandomPosterization(_ColorAugmentation):
    """Each image, seen in 0..255 as whole numbers (cut down, as a cast to uint8), keeps only
    its ``factor`` highest bits per channel (the rest set to 0): 1 leaves 0 and 128, 8
    leaves it whole. factor is a number of bits from 1 to 8, or (low, high) to draw one per
    image from low..high, both included."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        pair = list(factor) if isinstance(factor, (list, tuple)) else [factor, factor]
        whole = len(pair) == 2 and all(isinstance(bits, (int, numpy.integer)) for bits in pair)
        low, high = sorted(pair) if whole else (0, 0)
        if not (whole and 1 <= low <= high <= 8):
            raise ValueError(f"RandomPosterization: factor must be a whole number of bits from 1 to 8, or (low, high) "
                             f"of them, got {factor!r}")
        self.factor = (int(low), int(high))
        self._value_range(value_range)

    def augment(self, x, rng):
        xp, n = get_array_module(x), x.shape[0]
        low, high = self.factor
        bits = xp.minimum((_uniform(rng, n, 0, 1) * numpy.float32(high - low + 1)).astype(numpy.int32), high - low)
        dropped = (8 - low - bits).astype(x.dtype)                                      # (n,) bits set to 0
        step = (x.dtype.type(2) ** dropped)[:, None, None, None]
        levels = xp.floor(xp.clip(self.to_unit(x) * x.dtype.type(255), 0, 255))         # 0..255, whole
        return self.from_unit(xp.floor(levels / step) * step / x.dtype.type(255), x.dtype)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}
