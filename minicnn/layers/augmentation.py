"""Keras's random augmentation layers: RandomFlip, RandomTranslation, RandomRotation,
RandomZoom, RandomShear, RandomCrop (geometric), RandomContrast and RandomBrightness (photometric);
RandomErasing and RandomGrayscale are in erasing.py, the colour layers in color.py and
tone.py, RandAugment in randaugment.py.

Put in the model (usually first), they change each training batch's images afresh and
pass images through unchanged in inference, so the augmentation travels with the saved
model. They draw from the layer's own random stream (base.RandomStream), reseeded by fit
every epoch, and resample with data.affine_sample (bilinear, or interpolation='nearest'),
the Loader's Augment's code.

They give no gradient to their input (an augmentation sits on the data, before any
weight); a layer that needs one raises, naming itself. Shapes: (N, H, W, C) -> the same,
but RandomCrop's (N, height, width, C).
"""
import math

import numpy

from ..autograd import Tensor
from ..backend import get_array_module
from ..data import affine_sample
from .base import Layer, RandomStream
from .image_preprocessing import SizedOutput, smart_resize

# Keras's fill modes, as data._fill_index names them: Keras's 'reflect' repeats the edge pixel
FILL_MODES = {"reflect": "symmetric", "wrap": "wrap", "nearest": "nearest", "constant": "constant"}


def factor_range(factor, what, limit=None):
    """Keras's factor: f gives (-f, f); (low, high) as given. A ValueError names ``what``."""
    low, high = (-factor, factor) if isinstance(factor, (int, float)) else tuple(factor)
    if low > high or (limit is not None and max(abs(low), abs(high)) > limit):
        bound = "" if limit is None else f" within [-{limit}, {limit}]"
        raise ValueError(f"{what} must be a number f (drawn from [-f, f]) or (low, high) with low <= high"
                         f"{bound}, got {factor!r}")
    return float(low), float(high)


class RandomAugmentation(RandomStream, Layer):
    """What the three share: a seed, images in, training-only, no gradient to the input."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.start_random_stream(seed)

    def check_input_shape(self, input_shape):
        self.require_images(input_shape)

    def call(self, x, training):
        if not training:
            return x
        if x.requires_grad:
            raise ValueError(f"{self.describe()}: it passes no gradient to its input; put it on the data, "
                             "before any layer with weights (first in the model)")
        return Tensor(self.augment(x.data, self.rng(x.data)))

    def _fill(self, fill_mode, fill_value):
        if fill_mode not in FILL_MODES:
            raise ValueError(f"{type(self).__name__}: fill_mode must be one of {sorted(FILL_MODES)}, got {fill_mode!r}")
        self.fill_mode, self.fill_value = fill_mode, float(fill_value)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class RandomFlip(RandomAugmentation):
    """Each image mirrored with probability 1/2: left-right ('horizontal'), upside down
    ('vertical'), or each of the two on its own draw ('horizontal_and_vertical', Keras's default)."""

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        if mode not in self.MODES:
            raise ValueError(f"RandomFlip: mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def augment(self, x, rng):
        n = x.shape[0]
        if self.mode != "vertical":
            x = _where(rng.random(n, dtype=numpy.float32) < 0.5, x[:, :, ::-1], x)
        if self.mode != "horizontal":
            x = _where(rng.random(n, dtype=numpy.float32) < 0.5, x[:, ::-1], x)
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class RandomTranslation(RandomAugmentation):
    """Each image moved by a random fraction of its size: down by height_factor * H (drawn
    from [-f, f], or (low, high)), right by width_factor * W; what comes in from outside is
    fill_mode's: 'reflect' (Keras's default: d c b a | a b c d), 'wrap', 'nearest',
    'constant' (fill_value)."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(seed, **kwargs)
        self.height_factor = factor_range(height_factor, "RandomTranslation: height_factor", 1.0)
        self.width_factor = factor_range(width_factor, "RandomTranslation: width_factor", 1.0)
        self.interpolation = _interpolation(self, interpolation)
        self._fill(fill_mode, fill_value)

    def augment(self, x, rng):
        n, h, w, _ = x.shape
        xp = get_array_module(x)
        shift_y = _uniform(rng, n, *self.height_factor) * numpy.float32(h)
        shift_x = _uniform(rng, n, *self.width_factor) * numpy.float32(w)
        no_turn, no_flip = xp.zeros(n, dtype=numpy.float32), xp.zeros(n, dtype=bool)
        return affine_sample(x, no_turn, shift_y, shift_x, no_flip, FILL_MODES[self.fill_mode], self.fill_value,
                             interpolation=self.interpolation)

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": list(self.width_factor), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


class RandomRotation(RandomAugmentation):
    """Each image turned about its centre by a random fraction of a full turn: factor f
    draws from [-f, f] * 2 pi (Keras's: 0.1 is up to 36 degrees), positive counter-clockwise;
    fill_mode as RandomTranslation's."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = factor_range(factor, "RandomRotation: factor")
        self.interpolation = _interpolation(self, interpolation)
        self._fill(fill_mode, fill_value)

    def augment(self, x, rng):
        n = x.shape[0]
        xp = get_array_module(x)
        # affine_sample turns clockwise on the screen (rows grow downwards) for a positive
        # angle; Keras's positive factor turns counter-clockwise
        angles = _uniform(rng, n, *self.factor) * numpy.float32(-2 * math.pi)
        no_shift, no_flip = xp.zeros(n, dtype=numpy.float32), xp.zeros(n, dtype=bool)
        return affine_sample(x, angles, no_shift, no_shift, no_flip, FILL_MODES[self.fill_mode], self.fill_value,
                             interpolation=self.interpolation)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


class RandomZoom(RandomAugmentation):
    """Each image zoomed about its centre: height_factor f draws the vertical zoom from
    1 + [-f, f] (or 1 + [low, high]), a positive value zooming out (the content shrinks by
    that fraction, fill_mode's pixels around it), a negative one zooming in; width_factor
    the same horizontally, or None (Keras's default) for the vertical zoom, keeping the
    aspect ratio. Factors within [-1, 1]; fill_mode as RandomTranslation's."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(seed, **kwargs)
        self.height_factor = factor_range(height_factor, "RandomZoom: height_factor", 1.0)
        self.width_factor = None if width_factor is None else factor_range(width_factor, "RandomZoom: width_factor", 1.0)
        self.interpolation = _interpolation(self, interpolation)
        self._fill(fill_mode, fill_value)

    def augment(self, x, rng):
        n = x.shape[0]
        xp = get_array_module(x)
        zoom_y = 1 + _uniform(rng, n, *self.height_factor)
        zoom_x = zoom_y if self.width_factor is None else 1 + _uniform(rng, n, *self.width_factor)
        no_turn, no_flip = xp.zeros(n, dtype=numpy.float32), xp.zeros(n, dtype=bool)
        return affine_sample(x, no_turn, no_turn, no_turn, no_flip, FILL_MODES[self.fill_mode], self.fill_value,
                             zoom=(zoom_y, zoom_x), interpolation=self.interpolation)

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": None if self.width_factor is None else list(self.width_factor),
                "fill_mode": self.fill_mode, "interpolation": self.interpolation, "fill_value": self.fill_value}


class RandomShear(RandomAugmentation):
    """Each image sheared, as Keras 3's: x_factor f draws a horizontal shear s_x from
    [-f, f] (or [low, high], within [-1, 1]), y_factor likewise s_y, and one random sign
    flips both; an output pixel d rows from the centre then reads the input s_x * d columns
    to the side (and d columns from the centre, s_y * d rows up or down). Keras shears
    about the top-left corner, which also moves the image; this shears about the centre,
    as torchvision's. fill_mode as RandomTranslation's."""

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.x_factor = _shear_range(x_factor, "RandomShear: x_factor")
        self.y_factor = _shear_range(y_factor, "RandomShear: y_factor")
        self.interpolation = _interpolation(self, interpolation)
        self._fill(fill_mode, fill_value)

    def augment(self, x, rng):
        n = x.shape[0]
        xp = get_array_module(x)
        sign = numpy.float32(1) - numpy.float32(2) * (_uniform(rng, n, 0, 1) > numpy.float32(0.5)).astype(numpy.float32)
        shear_y, shear_x = _uniform(rng, n, *self.y_factor) * sign, _uniform(rng, n, *self.x_factor) * sign
        no_turn, no_flip = xp.zeros(n, dtype=numpy.float32), xp.zeros(n, dtype=bool)
        return affine_sample(x, no_turn, no_turn, no_turn, no_flip, FILL_MODES[self.fill_mode], self.fill_value,
                             interpolation=self.interpolation, shear=(shear_y, shear_x))

    def get_config(self):
        return {**super().get_config(), "x_factor": list(self.x_factor), "y_factor": list(self.y_factor),
                "fill_mode": self.fill_mode, "interpolation": self.interpolation, "fill_value": self.fill_value}


def _shear_range(factor, what):
    """Keras's shear factor: f in [0, 1] gives (-f, f); (low, high) as given, within [-1, 1]."""
    if isinstance(factor, (int, float)):
        if not 0 <= factor <= 1:
            raise ValueError(f"{what} must be a number in [0, 1] or (low, high) within [-1, 1], got {factor!r}")
        return -float(factor), float(factor)
    low, high = sorted(map(float, factor))
    if not -1 <= low <= high <= 1:
        raise ValueError(f"{what} must be a number in [0, 1] or (low, high) within [-1, 1], got {factor!r}")
    return low, high


class RandomCrop(RandomAugmentation, SizedOutput):
    """In training, a (height, width) window at a random place in each image, every pixel
    an exact copy. In inference, and for an image smaller than the window, Keras's smart
    resize instead (image_preprocessing.py): the centred window of the target's aspect
    ratio, resized to (height, width); an image already that size passes unchanged.

    Unlike Keras's, which cuts every image of a batch at one place, each image draws its
    own (as torchvision's RandomCrop, applied per image, does): more variety per batch.
    Inference resizes, so ZeroPadding2D(4) before RandomCrop(32, 32) would shrink the padded
    test images; pad-and-crop is data.Augment's whole-pixel shifts (width_shift_range=4)."""

    def __init__(self, height, width, seed=None, **kwargs):
        super().__init__(seed, height=height, width=width, **kwargs)

    def call(self, x, training):
        _, H, W, _ = x.shape
        if training and H >= self.height and W >= self.width:
            return super().call(x, training)  # augment, below; no gradient to the input
        return smart_resize(x, (self.height, self.width))

    def augment(self, x, rng):
        n, h, w, _ = x.shape
        xp = get_array_module(x)
        top, left = (_offsets(rng, n, h - self.height), _offsets(rng, n, w - self.width))
        rows = top[:, None] + xp.arange(self.height)                      # (n, height)
        cols = left[:, None] + xp.arange(self.width)                      # (n, width)
        return x[xp.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (n, height, width, C)


class _Photometric(RandomAugmentation):
    """A per-image change of pixel values kept within value_range (Keras's default (0, 255):
    give (0, 1) for images already scaled so)."""

    def _value_range(self, value_range):
        low, high = value_range
        if not low < high:
            raise ValueError(f"{type(self).__name__}: value_range must be (low, high) with low < high, "
                             f"got {value_range!r}")
        self.value_range = (float(low), float(high))

    def clip(self, x):
        low, high = self.value_range
        return get_array_module(x).clip(x, x.dtype.type(low), x.dtype.type(high))

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}


class RandomContrast(_Photometric):
    """Each image's contrast scaled by a factor drawn from [1 - lower, 1 + upper] (factor f:
    lower = upper = f, in [0, 1]): every pixel becomes (x - mean) * factor + mean, mean that
    image's channel mean over its pixels, then clipped to value_range, as Keras 3."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        lower, upper = (factor, factor) if isinstance(factor, (int, float)) else tuple(factor)
        if not (0 <= lower <= 1 and upper >= 0):
            raise ValueError(f"RandomContrast: factor must be f in [0, 1] or (lower, upper) with 0 <= lower <= 1 "
                             f"and upper >= 0, got {factor!r}")
        self.factor = (float(lower), float(upper))
        self._value_range(value_range)

    def augment(self, x, rng):
        lower, upper = self.factor
        scale = _uniform(rng, x.shape[0], 1 - lower, 1 + upper)[:, None, None, None]
        mean = x.mean(axis=(1, 2), keepdims=True)
        return self.clip((x - mean) * scale.astype(x.dtype) + mean)


class RandomBrightness(_Photometric):
    """Each image brightened by a shift drawn from [-f, f] (or [low, high]) times the width
    of value_range, the same for all its pixels and channels, then clipped to value_range;
    factors within [-1, 1], as Keras's."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = factor_range(factor, "RandomBrightness: factor", 1.0)
        self._value_range(value_range)

    def augment(self, x, rng):
        low, high = self.value_range
        shift = _uniform(rng, x.shape[0], *self.factor) * numpy.float32(high - low)
        return self.clip(x + shift.astype(x.dtype)[:, None, None, None])


def _uniform(rng, n, low, high):
    """(n,) float32 draws from [low, high), on rng's device."""
    return rng.random(n, dtype=numpy.float32) * numpy.float32(high - low) + numpy.float32(low)


def _offsets(rng, n, most):
    """(n,) int32 draws from 0..most, each equally likely, on rng's device."""
    drawn = (rng.random(n, dtype=numpy.float32) * numpy.float32(most + 1)).astype(numpy.int32)
    return get_array_module(drawn).minimum(drawn, most)  # float32 rounding may reach most + 1


def _where(choose, a, b):
    """Per image: a where choose (n,) is True, else b."""
    return get_array_module(a).where(choose[:, None, None, None], a, b)


def _interpolation(layer, interpolation):
    """'bilinear' (Keras's default) or 'nearest', else a ValueError naming the layer."""
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"{type(layer).__name__}: interpolation must be 'bilinear' or 'nearest', "
                         f"got {interpolation!r}")
    return interpolation
