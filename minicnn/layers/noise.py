"""Keras's noise layers, regularizers like Dropout, active in training only (identity in
inference), shape unchanged:

    GaussianNoise(stddev)   y = x + n,  n ~ N(0, stddev^2) drawn afresh for every element
    GaussianDropout(rate)   y = x * n,  n ~ N(1, rate / (1 - rate)): Dropout's mean and
                            variance of the multiplier, without its zeros

The noise is a constant of the step, so the gradient is 1 (GaussianNoise) or n
(GaussianDropout): Tensor arithmetic gives both. Each layer draws from its own random
stream (base.RandomStream), reseeded by fit every epoch, as Dropout's.
"""
import math

import numpy

from ..autograd import Tensor
from .base import Layer, RandomStream


def normal_noise(rng, shape, dtype, mean, stddev):
    """An array of ``shape`` in ``dtype`` drawn from N(mean, stddev^2) on rng's device;
    drawn in float32 for float16, which the GPU's generator does not draw."""
    draw_dtype = numpy.float64 if numpy.dtype(dtype) == numpy.float64 else numpy.float32
    noise = rng.standard_normal(shape, dtype=draw_dtype)
    noise *= draw_dtype(stddev)
    if mean:
        noise += draw_dtype(mean)
    return noise.astype(dtype, copy=False)


class GaussianNoise(RandomStream, Layer):
    """x + N(0, stddev^2) noise in training (Keras's): a data augmentation of sorts for
    real-valued inputs, or a regularizer between layers."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(stddev, (int, float)) and stddev >= 0):
            raise ValueError(f"GaussianNoise: stddev must be a number >= 0, got {stddev!r}")
        self.stddev, self.seed = float(stddev), seed
        self.start_random_stream(seed)

    def call(self, x, training):
        if not training or self.stddev == 0:
            return x
        return x + Tensor(normal_noise(self.rng(x.data), x.shape, x.dtype, 0.0, self.stddev))

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(RandomStream, Layer):
    """x times N(1, rate / (1 - rate)) noise in training (Keras's; Srivastava et al. 2014):
    the multiplier has inverted Dropout's mean 1 and variance, but is never 0."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(rate, (int, float)) and 0 <= rate < 1):
            raise ValueError(f"GaussianDropout: rate must be in [0, 1), got {rate!r}")
        self.rate, self.seed = float(rate), seed
        self.start_random_stream(seed)

    def call(self, x, training):
        if not training or self.rate == 0:
            return x
        stddev = math.sqrt(self.rate / (1 - self.rate))
        return x * Tensor(normal_noise(self.rng(x.data), x.shape, x.dtype, 1.0, stddev))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
