"""ReLU, LeakyReLU and Softmax as layers of their own, with Keras's arguments (the plain
activations by name are ``Activation('relu')`` or ``activation='relu'``)."""
from .. import functional as F
from .base import Layer
from .core import Activation


class ReLU(Layer):
    """Keras's ReLU layer: max_value above max_value (None: no cap), x from threshold up to
    it, negative_slope * (x - threshold) below threshold. Shape unchanged."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"ReLU: max_value must be >= 0 or None, got {max_value}")
        if negative_slope < 0:
            raise ValueError(f"ReLU: negative_slope must be >= 0, got {negative_slope}")
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, x, training):
        if self.max_value is None and self.negative_slope == 0 and self.threshold == 0:
            return x.relu()  # the plain one: the fast kernels
        return F.relu_family(x, self.negative_slope, self.max_value, self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(Layer):
    """x for x >= 0, negative_slope * x below (Keras's default slope 0.3). Shape unchanged."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2's name for it
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be >= 0, got {negative_slope}")
        self.negative_slope = negative_slope

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, x, training):
        return F.leaky_relu(x, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class Softmax(Activation):
    """exp(x) / sum(exp(x)) along ``axis`` (default the last), shape unchanged: Keras's
    Softmax layer. As a model's last layer over the classes it is Activation('softmax'):
    the loss takes the logits before it, the stable way (losses.py)."""

    def __init__(self, axis=-1, **kwargs):
        kwargs.pop("activation", None)  # always softmax
        super().__init__("softmax", **kwargs)
        if not isinstance(axis, int):
            raise ValueError(f"Softmax: axis must be an int, got {axis!r}")
        self.axis = axis
        if axis != -1:  # not over the classes: the model's loss must not take it for one
            self.activation_name = f"softmax over axis {axis}"
            self.activation = lambda x: x.softmax(axis)

    def get_config(self):
        config = {**super().get_config(), "axis": self.axis}
        del config["activation"]
        return config
