"""Keras's Normalization: inputs standardised, (x - mean) / sqrt(variance), with a mean
and variance per feature that ``adapt(data)`` computes once from the training data (or
that are given). They are the layer's weights, not trainable, so the saved model carries
its own preprocessing. Shapes: any (N, ...) -> the same; the statistics have the shape of
the kept axes, (C,) for images with the default axis=-1 (one per channel).
"""
import numpy

from .. import backend
from ..autograd import Tensor
from .base import Layer

EPSILON = 1e-7  # Keras's backend.epsilon(): the smallest standard deviation divided by


def kept_axes(axis, rank, what):
    """axis (None, an int or a tuple of ints, batch axis 0 excluded) as sorted positive
    axes of an input of ``rank`` (batch axis included), or a ValueError naming ``what``."""
    if axis is None:
        return ()
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    positive = []
    for a in axes:
        p = a + rank if isinstance(a, int) and a < 0 else a
        if not isinstance(p, int) or not 1 <= p < rank:
            raise ValueError(f"{what}: axis {axis!r} must name axes 1..{rank - 1} (or -{rank - 1}..-1) of an input "
                             f"of rank {rank}; the batch axis 0 has no statistics of its own")
        positive.append(p)
    return tuple(sorted(set(positive)))


def mean_and_variance(data, kept, piece=4096):
    """The mean and (population) variance of data (N, ...) over every axis but ``kept``,
    in float64 on data's device, piece by piece: each piece's own mean and sum of squared
    deviations, joined to the running ones by Chan et al.'s rule, so no float64 copy of the
    whole data is made and large means do not swallow small variances."""
    xp = backend.get_array_module(data)
    reduce = tuple(a for a in range(data.ndim) if a not in kept)
    count, mean, squares = 0, 0.0, 0.0
    for start in range(0, len(data), piece):
        part = data[start:start + piece].astype(numpy.float64)
        n = part.size // int(numpy.prod([data.shape[a] for a in kept], dtype=numpy.int64))
        part_mean = part.mean(axis=reduce, keepdims=True)
        part_squares = ((part - part_mean) ** 2).sum(axis=reduce, keepdims=True)
        delta = part_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        squares = squares + part_squares + delta * delta * (count * n / total)
        count = total
    shape = tuple(data.shape[a] for a in kept)
    return xp.reshape(mean, shape), xp.reshape(squares / count, shape)


class Normalization(Layer):
    """(x - mean) / max(sqrt(variance), 1e-7) for each index of the kept ``axis`` (Keras's
    default -1: each feature, or each channel of an image; None: one mean and variance for
    everything). invert=True undoes it: x * sqrt(variance) + mean.

    ``adapt(data)`` computes them from data (N, ...) before training, as Keras's; or give
    ``mean`` and ``variance`` (numbers or arrays that broadcast to the kept axes' shape).
    Until either happens the mean is 0 and the variance 1: the layer passes x unchanged."""

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: give both mean and variance, or neither (adapt() computes them)")
        if axis is not None and not (isinstance(axis, int) or all(isinstance(a, int) for a in axis)):
            raise ValueError(f"Normalization: axis must be None, an int or a tuple of ints, got {axis!r}")
        self.axis = axis if axis is None or isinstance(axis, int) else tuple(axis)
        self.invert = bool(invert)
        self.input_mean = None if mean is None else numpy.asarray(mean, dtype=numpy.float64)
        self.input_variance = None if variance is None else numpy.asarray(variance, dtype=numpy.float64)
        if self.input_variance is not None and (self.input_variance < 0).any():
            raise ValueError("Normalization: variance must be >= 0")

    def check_input_shape(self, input_shape):
        kept_axes(self.axis, len(input_shape) + 1, self.describe())

    def build(self, input_shape):
        kept = kept_axes(self.axis, len(input_shape) + 1, self.describe())
        shape = tuple(input_shape[a - 1] for a in kept)
        self.mean = self.add_weight("mean", shape, "zeros", trainable=False)
        self.variance = self.add_weight("variance", shape, "ones", trainable=False)
        if self.input_mean is not None:
            try:
                given = [numpy.broadcast_to(v, shape) for v in (self.input_mean, self.input_variance)]
            except ValueError:
                raise self.error(f"mean {self.input_mean.shape} and variance {self.input_variance.shape} do not "
                                 f"broadcast to the kept axes' shape {shape}", input_shape) from None
            self._store(*(backend.to_device(v, self.device) for v in given))

    def adapt(self, data, batch_size=None):
        """Set the mean and variance from data (N, ...), a NumPy or CuPy array of the
        layer's input shape; builds the layer when it is not built. batch_size: samples
        read at a time (default 4096); the statistics do not depend on it."""
        if not hasattr(data, "shape") or not hasattr(data, "dtype") or data.dtype.kind not in "biuf":
            raise TypeError(f"{self.describe()}: adapt() takes a NumPy or CuPy array of numbers, "
                            f"got {getattr(data, 'dtype', type(data).__name__)}")
        if len(data) == 0:
            raise ValueError(f"{self.describe()}: adapt() got no samples")
        xp = backend.get_array_module(data)
        if not bool(xp.isfinite(data).all()):
            raise ValueError(f"{self.describe()}: adapt() data hold NaN or infinite values")
        if not self.built:
            self.build_for(data.shape[1:], backend.device_of(data))
        elif tuple(data.shape[1:]) != tuple(self.input_shape):
            raise self.error(f"adapt() data of shape {tuple(data.shape)} do not match the input shape "
                             f"{(None,) + tuple(self.input_shape)} it was built for")
        kept = kept_axes(self.axis, data.ndim, self.describe())
        mean, variance = mean_and_variance(data, kept, batch_size or 4096)
        self._store(backend.to_device(mean, self.device), backend.to_device(variance, self.device))

    def _store(self, mean, variance):
        self.mean.data[...] = mean.astype(self.mean.dtype)
        self.variance.data[...] = variance.astype(self.variance.dtype)

    def _broadcast(self, array, rank):
        """A (kept sizes) statistic as (1, ..., 1) with those sizes on the kept axes."""
        kept = kept_axes(self.axis, rank, self.describe())
        shape = [1] * rank
        for a, size in zip(kept, array.shape):
            shape[a] = size
        return array.reshape(shape)

    def call(self, x, training):
        xp = backend.get_array_module(x.data)
        mean = self._broadcast(self.mean.data, x.ndim).astype(x.dtype)
        std = xp.maximum(xp.sqrt(self._broadcast(self.variance.data, x.ndim)), EPSILON).astype(x.dtype)
        if self.invert:
            return x * std + mean
        return (x - mean) * (1 / std)  # constants of the model: the gradient is 1 / std

    def get_config(self):
        config = {**super().get_config(), "axis": list(self.axis) if isinstance(self.axis, tuple) else self.axis,
                  "invert": self.invert}
        if self.input_mean is not None:
            config.update(mean=self.input_mean.tolist(), variance=self.input_variance.tolist())
        return config
