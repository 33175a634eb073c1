"""Activations by name, as Keras accepts them (``activation='relu'``)."""
from . import functional as F
from .autograd import Tensor


def linear(x):
    return x


def leaky_relu(x):
    """x where x >= 0, 0.2 * x below: Keras 3's activation='leaky_relu' (its LeakyReLU
    layer's default slope is 0.3)."""
    return F.leaky_relu(x, negative_slope=0.2)


relu = Tensor.relu  # what activation='relu' means (layers recognise it: functional.fuses_bias_relu)

_BY_NAME = {
    "linear": linear,
    "relu": relu,
    "sigmoid": Tensor.sigmoid,
    "tanh": Tensor.tanh,
    "gelu": Tensor.gelu,  # exact (erf), as Keras's gelu and PyTorch's GELU() default
    "leaky_relu": leaky_relu,
    "relu6": F.relu6,
    "elu": F.elu,
    "selu": F.selu,
    "silu": F.silu,
    "swish": F.swish,
    "softplus": F.softplus,
    "softmax": Tensor.softmax,
    "log_softmax": Tensor.log_softmax,
}

NAMES = tuple(_BY_NAME)


def get(identifier):
    """None, a name or a callable Tensor -> Tensor; returns (name, function)."""
    if identifier is None:
        return "linear", linear
    if callable(identifier):
        return getattr(identifier, "__name__", "custom"), identifier
    if identifier not in _BY_NAME:
        raise ValueError(f"unknown activation {identifier!r}; known: {sorted(_BY_NAME)}")
    return identifier, _BY_NAME[identifier]
