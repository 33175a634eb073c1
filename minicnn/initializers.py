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


def he_uniform(shape, dtype):
    """U(-limit, limit) with limit = sqrt(6 / fan_in) (Keras's he_uniform): variance 2/fan_in,
    which keeps a ReLU network's activations the same size layer after layer."""
    fan_in, _ = _fans(shape)
    limit = math.sqrt(6.0 / fan_in)
    return host_rng().uniform(-limit, limit, size=shape).astype(dtype)


def torch_default(shape, dtype):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what PyTorch's Linear and Conv2d start from
    (kaiming_uniform with a = sqrt(5) works out to this)."""
    fan_in, _ = _fans(shape)
    limit = 1 / math.sqrt(fan_in)
    return host_rng().uniform(-limit, limit, size=shape).astype(dtype)


def dirac(shape, dtype):
    """A conv kernel (kh, kw, C, F) whose first min(C, F) filters pass their input channel
    straight through (1 at the kernel's centre tap for channel i of filter i, 0 elsewhere),
    the rest drawn as torch_default. A deep stack of such convs starts close to the
    identity map on those channels, which lets airbench train at a high learning rate."""
    if len(shape) != 4:
        raise ValueError(f"dirac: needs a conv kernel shape (kh, kw, C, F), got {shape}")
    kernel = torch_default(shape, dtype)
    kh, kw, c_in, filters = shape
    passed = min(c_in, filters)
    kernel[..., :passed] = 0
    kernel[(kh - 1) // 2, (kw - 1) // 2, numpy.arange(passed), numpy.arange(passed)] = 1
    return kernel


def patch_whitening(images, kernel_size=2, eps=5e-4):
    """A conv kernel (k, k, C, 2*k*k*C) that whitens k x k patches of ``images`` (N, H, W, C),
    for airbench's frozen first layer. Returns a host (NumPy) float32 array.

    Each patch is a vector of k*k*C numbers; their (uncentred) covariance matrix has
    eigenvectors v with eigenvalues lam. Filter v / sqrt(lam + eps) gives every direction
    of patch space unit variance, so the network sees decorrelated inputs. The filters come
    largest eigenvalue first, then all of them again negated (a GELU after the layer then
    keeps both signs of each component)."""
    from . import backend
    xp = backend.get_array_module(images)
    if images.ndim != 4:
        raise ValueError(f"patch_whitening: images must be (N, H, W, C), got shape {images.shape}")
    n, height, width, channels = images.shape
    k = kernel_size
    oh, ow = height - k + 1, width - k + 1
    # Patch vectors in the kernel's (row, column, channel) order, one per output pixel.
    taps = [images[:, i:i + oh, j:j + ow, :] for i in range(k) for j in range(k)]
    patches = xp.concatenate(taps, axis=-1).reshape(-1, k * k * channels)
    covariance = backend.to_numpy(patches.T @ patches).astype(numpy.float64) / len(patches)
    eigenvalues, eigenvectors = numpy.linalg.eigh(covariance)  # ascending
    order = numpy.argsort(eigenvalues)[::-1]
    filters = eigenvectors[:, order] / numpy.sqrt(eigenvalues[order] + eps)  # columns
    kernel = filters.reshape(k, k, channels, k * k * channels)
    return numpy.concatenate([kernel, -kernel], axis=-1).astype(numpy.float32)


def zeros(shape, dtype):
    return numpy.zeros(shape, dtype=dtype)


def ones(shape, dtype):
    return numpy.ones(shape, dtype=dtype)


_BY_NAME = {"glorot_uniform": glorot_uniform, "he_normal": he_normal, "he_uniform": he_uniform,
            "torch_default": torch_default,
            "dirac": dirac, "zeros": zeros, "ones": ones}


def get(identifier):
    if callable(identifier):
        return identifier
    if identifier not in _BY_NAME:
        raise ValueError(f"unknown initializer {identifier!r}; known: {sorted(_BY_NAME)}")
    return _BY_NAME[identifier]
