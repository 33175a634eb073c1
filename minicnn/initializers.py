"""Weight initialisers with Keras's names and formulas. Each takes a shape and
dtype and returns a host (NumPy) array; the layer moves it to its device."""
import math

import numpy

from .random import host_rng


def _fans(shape):
    """fan_in, fan_out as Keras computes them: a conv kernel (kh, kw, c_in, c_out)
    counts each input/output channel kh*kw times."""
    if len(shape) < 2:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, dtype):
    """U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)) (Keras's default)."""
    fan_in, fan_out = _fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return host_rng().uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, dtype):
    """N(0, 2/fan_in) truncated at 2 std (Keras's he_normal)."""
    fan_in, _ = _fans(shape)
    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978  # std of a unit normal cut at +-2
    values = host_rng().standard_normal(size=shape)
    while (out := numpy.abs(values) > 2).any():
        values[out] = host_rng().standard_normal(size=int(out.sum()))
    return (values * std).astype(dtype)


def zeros(shape, dtype):
    return numpy.zeros(shape, dtype=dtype)


def ones(shape, dtype):
    return numpy.ones(shape, dtype=dtype)


_BY_NAME = {"glorot_uniform": glorot_uniform, "he_normal": he_normal, "zeros": zeros, "ones": ones}


def get(identifier):
    if callable(identifier):
        return identifier
    if identifier not in _BY_NAME:
        raise ValueError(f"unknown initializer {identifier!r}; known: {sorted(_BY_NAME)}")
    return _BY_NAME[identifier]
