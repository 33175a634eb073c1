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


def _truncated_normal(shape, rng=None):
    """Unit normal draws, each beyond +-2 drawn again (Keras's truncated_normal), float64."""
    rng = rng or host_rng()
    values = rng.standard_normal(size=shape)
    while (out := numpy.abs(values) > 2).any():
        values[out] = rng.standard_normal(size=int(out.sum()))
    return values


TRUNCATED_STD = 0.87962566103423978  # the std of a unit normal cut at +-2: divided out below


def he_normal(shape, dtype):
    """N(0, 2/fan_in) truncated at 2 std (Keras's he_normal)."""
    fan_in, _ = _fans(shape)
    return (_truncated_normal(shape) * (math.sqrt(2.0 / fan_in) / TRUNCATED_STD)).astype(dtype)


def glorot_normal(shape, dtype):
    """N(0, 2/(fan_in + fan_out)) truncated at 2 std (Keras's glorot_normal)."""
    fan_in, fan_out = _fans(shape)
    return (_truncated_normal(shape) * (math.sqrt(2.0 / (fan_in + fan_out)) / TRUNCATED_STD)).astype(dtype)


def lecun_normal(shape, dtype):
    """N(0, 1/fan_in) truncated at 2 std (Keras's lecun_normal, what selu expects)."""
    fan_in, _ = _fans(shape)
    return (_truncated_normal(shape) * (math.sqrt(1.0 / fan_in) / TRUNCATED_STD)).astype(dtype)


def lecun_uniform(shape, dtype):
    """U(-limit, limit) with limit = sqrt(3 / fan_in): variance 1/fan_in (Keras's lecun_uniform)."""
    fan_in, _ = _fans(shape)
    limit = math.sqrt(3.0 / fan_in)
    return host_rng().uniform(-limit, limit, size=shape).astype(dtype)


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


# --- Keras's initializers with arguments: objects, saved with their config ---------------------
class Initializer:
    """``init(shape, dtype)`` -> a host array, as the functions above. ``seed``: where given,
    every call draws the same values (Keras's seeded initializers do); else the shared
    generator (minicnn.set_seed) draws them."""

    def __init__(self, seed=None):
        self.seed = seed

    def _rng(self):
        return host_rng() if self.seed is None else numpy.random.default_rng(self.seed)

    def get_config(self):
        return {"seed": self.seed}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class RandomNormal(Initializer):
    """N(mean, stddev**2), Keras's defaults mean 0, stddev 0.05."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        if not stddev >= 0:
            raise ValueError(f"RandomNormal: stddev must be >= 0, got {stddev!r}")
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype):
        return (self._rng().standard_normal(size=shape) * self.stddev + self.mean).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class TruncatedNormal(RandomNormal):
    """N(mean, stddev**2), each draw beyond 2 stddev from the mean drawn again (so the
    values' spread is 0.88 stddev: Keras's TruncatedNormal does not correct it)."""

    def __call__(self, shape, dtype):
        return (_truncated_normal(shape, self._rng()) * self.stddev + self.mean).astype(dtype)


class RandomUniform(Initializer):
    """U(minval, maxval), Keras's defaults -0.05, 0.05."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        if not minval <= maxval:
            raise ValueError(f"RandomUniform: minval must be <= maxval, got {minval!r}, {maxval!r}")
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype):
        return self._rng().uniform(self.minval, self.maxval, size=shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class Constant(Initializer):
    """Every value ``value``."""

    def __init__(self, value=0.0):
        super().__init__(None)
        self.value = float(value)

    def __call__(self, shape, dtype):
        return numpy.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class Orthogonal(Initializer):
    """A kernel whose columns (or rows, if fewer) are orthonormal, times ``gain``: the kernel
    seen as a (prod(shape[:-1]), shape[-1]) matrix, the Q of a normal matrix's QR with its
    signs fixed by R's diagonal so Q is uniformly distributed (Keras's Orthogonal, Saxe et al.)."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape, dtype):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: needs a kernel of rank >= 2, got shape {tuple(shape)}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q, r = numpy.linalg.qr(self._rng().standard_normal((max(rows, cols), min(rows, cols))))
        q *= numpy.sign(numpy.diag(r))
        return (self.gain * (q if rows >= cols else q.T)).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, **super().get_config()}


_CLASSES = {cls.__name__: cls for cls in (RandomNormal, TruncatedNormal, RandomUniform, Constant, Orthogonal)}

_BY_NAME = {"glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal, "he_normal": he_normal,
            "he_uniform": he_uniform, "lecun_normal": lecun_normal, "lecun_uniform": lecun_uniform,
            "torch_default": torch_default, "dirac": dirac, "zeros": zeros, "ones": ones,
            # Keras's names for the classes, with their defaults
            "random_normal": RandomNormal(), "truncated_normal": TruncatedNormal(),
            "random_uniform": RandomUniform(), "orthogonal": Orthogonal(), "constant": Constant()}


def serialize(initializer):
    """A name (str), an Initializer's {"class_name", "config"}, or None for a function of
    the user's own (layers.base._named then saves the default name)."""
    if isinstance(initializer, str):
        return initializer
    if isinstance(initializer, Initializer) and type(initializer).__name__ in _CLASSES:
        return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
    return next((name for name, f in _BY_NAME.items() if f is initializer), None)


def get(identifier):
    """A name, a callable ``(shape, dtype) -> array`` or serialize()'s dict -> the callable."""
    if isinstance(identifier, dict):
        if identifier.get("class_name") not in _CLASSES:
            raise ValueError(f"unknown initializer {identifier!r}; known classes: {sorted(_CLASSES)}")
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if callable(identifier):
        return identifier
    if identifier not in _BY_NAME:
        raise ValueError(f"unknown initializer {identifier!r}; known: {sorted(_BY_NAME)}")
    return _BY_NAME[identifier]
