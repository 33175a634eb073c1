"""Activations by name, as Keras accepts them (``activation='relu'``)."""
from .autograd import Tensor


def linear(x):
    return x


relu = Tensor.relu  # what activation='relu' means (layers recognise it: functional.fuses_bias_relu)

_BY_NAME = {
    "linear": linear,
    "relu": relu,
    "sigmoid": Tensor.sigmoid,
    "tanh": Tensor.tanh,
    "gelu": Tensor.gelu,  # exact (erf), as Keras's gelu and PyTorch's GELU() default
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
