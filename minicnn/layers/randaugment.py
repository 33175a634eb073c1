"""RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data augmentation with
a reduced search space"), with Keras 3's arguments: each image goes through ``num_ops``
operations, each picked at random from the paper's fourteen, all at one strength.

The fourteen, at strength f = ``factor`` (0 to 1; the paper's magnitude M is 30 f, so
torchvision's default magnitude 9 is f = 0.3), each signed one turned either way at random:

    identity, auto_contrast, equalize           (no strength)
    rotate         +-30 f degrees
    shear_x/_y     +-0.3 f (a pixel d rows from the centre reads 0.3 f d columns aside)
    translate_x/_y +-0.45 f of the image's width / height (the paper's 150 of 331 pixels)
    brightness, color, contrast, sharpness
                   PIL's enhancement by 1 +- 0.9 f: a blend from black, grey, the mean grey,
                   a blur (tone.blend)
    posterize      int(8 - 4 f) bits kept
    solarize       values at or above 1 - f inverted

as torchvision's RandAugment does them, but each image draws its own operations (Keras 3
draws them once per batch; torchvision once per image, in the data loader); what falls
outside after a geometric one is black (value_range's low end). The picks and signs are
drawn on the host (a few per image) and copied to the device explicitly; the operations
run where the batch is. Shapes: (N, H, W, 3) -> the same.
"""
import math

import numpy

from .. import backend
from ..backend import get_array_module
from ..data import affine_sample
from .augmentation import _interpolation
from .color import _ColorAugmentation
from .tone import auto_contrast, blend, equalize, grey, smoothed

OPERATIONS = ("identity", "auto_contrast", "equalize", "rotate", "solarize", "color", "posterize", "contrast",
              "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y")


class RandAugment(_ColorAugmentation):
    """Keras 3's RandAugment(value_range, num_ops, factor, interpolation, seed): ``num_ops``
    of the fourteen operations (the module's docstring) in turn on every image, each image
    picking its own, at strength ``factor`` (Keras's default 0.5; a single number, the
    paper's one magnitude for every operation). Training only, as every augmentation."""

    needs_rgb = True

    def __init__(self, value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear", seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        if not isinstance(num_ops, (int, numpy.integer)) or num_ops < 0:
            raise ValueError(f"RandAugment: num_ops must be a whole number >= 0, got {num_ops!r}")
        if not isinstance(factor, (int, float)) or not 0 <= factor <= 1:
            raise ValueError(f"RandAugment: factor is the one strength of every operation, a number in [0, 1] "
                             f"(the paper's magnitude / 30), got {factor!r}")
        self.num_ops, self.factor = int(num_ops), float(factor)
        self.interpolation = _interpolation(self, interpolation)
        self._value_range(value_range)
        self._host = None

    def reseed(self, seed):
        super().reseed(seed)
        self._host = None

    def _host_rng(self, like):
        """The host generator of the picks and signs, from this layer's stream seed (reseeded
        as the device stream is, by fit every epoch)."""
        self.rng(like)  # fixes the stream's seed where none was given
        if self._host is None:
            self._host = numpy.random.default_rng(self._stream_seed)
        return self._host

    def augment(self, x, rng):
        host, device, n = self._host_rng(x), backend.device_of(x), x.shape[0]
        images = self.to_unit(x)
        for _ in range(self.num_ops):
            picks = host.integers(0, len(OPERATIONS), n)
            signs = host.choice(numpy.array([-1, 1], numpy.float32), n)
            out = images.copy()
            for k, name in enumerate(OPERATIONS):
                members = numpy.flatnonzero(picks == k)
                if name == "identity" or members.size == 0:
                    continue
                which = backend.to_device(members, device)
                out[which] = self.operation(name, images[which], backend.to_device(signs[members], device))
            images = out
        return self.from_unit(images, x.dtype)

    def operation(self, name, x, sign):
        """One operation on images x in [0, 1], (m, H, W, 3); sign (m,) +-1 float32."""
        xp, f, m = get_array_module(x), self.factor, x.shape[0]
        enhance = 1 + sign * numpy.float32(0.9 * f)
        zero, no_flip = xp.zeros(m, dtype=numpy.float32), xp.zeros(m, dtype=bool)

        def moved(angles=zero, shift_y=zero, shift_x=zero, shear=None):
            return affine_sample(x, angles, shift_y, shift_x, no_flip, "constant", 0.0,
                                 interpolation=self.interpolation, shear=shear)

        if name == "auto_contrast":
            return auto_contrast(x)
        if name == "equalize":
            return equalize(x)
        if name == "rotate":
            return moved(angles=sign * numpy.float32(math.radians(30 * f)))
        if name == "solarize":
            return xp.where(x >= x.dtype.type(1 - f), 1 - x, x)
        if name == "color":
            return blend(grey(x), x, enhance)
        if name == "posterize":
            step = x.dtype.type(2 ** (8 - int(8 - 4 * f)))
            return xp.floor(xp.floor(xp.clip(x * 255, 0, 255)) / step) * step / x.dtype.type(255)
        if name == "contrast":
            mean = grey(x)[..., :1].mean(axis=(1, 2, 3), keepdims=True)
            return blend(xp.broadcast_to(mean, x.shape), x, enhance)
        if name == "brightness":
            return blend(xp.zeros_like(x), x, enhance)
        if name == "sharpness":
            return blend(smoothed(x), x, enhance)
        if name in ("shear_x", "shear_y"):
            amount = sign * numpy.float32(0.3 * f)
            return moved(shear=(zero, amount) if name == "shear_x" else (amount, zero))
        if name == "translate_x":
            return moved(shift_x=sign * numpy.float32(0.45 * f * x.shape[2]))
        if name == "translate_y":
            return moved(shift_y=sign * numpy.float32(0.45 * f * x.shape[1]))
        raise ValueError(f"RandAugment: no operation {name!r}; the operations are {OPERATIONS}")

    def get_config(self):
        return {**super().get_config(), "num_ops": self.num_ops, "factor": self.factor,
                "interpolation": self.interpolation}
