"""ReLU, LeakyReLU, PReLU, ELU and Softmax as layers of their own, with Keras's arguments
(the plain activations by name are ``Activation('relu')`` or ``activation='relu'``)."""
from .. import constraints, functional as F, regularizers
from .base import Layer, _named, initializer_option
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


class PReLU(Layer):
    """A leaky ReLU whose slope below 0 is learned (He et al. 2015): x for x >= 0, alpha * x
    below, written relu(x) - alpha * relu(-x) so the gradients come from the Tensor ops.
    ``alpha`` has the input's shape (H, W, C) with 1 on shared_axes (counted as Keras does,
    1 the first axis after the batch): shared_axes=[1, 2] learns one slope per channel,
    as the paper's CNNs do. Keras's default alpha_initializer 'zeros' starts it as a ReLU."""

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        shared = () if shared_axes is None else ((shared_axes,) if isinstance(shared_axes, int) else tuple(shared_axes))
        if not all(isinstance(a, int) and a >= 1 for a in shared):
            raise ValueError(f"PReLU: shared_axes are axes after the batch (1, 2, ...), got {shared_axes!r}")
        self.shared_axes = shared
        self.alpha_initializer = initializer_option(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        self.alpha = None

    def regularized_weights(self):
        return [(self.alpha_regularizer, self.alpha)]

    def check_input_shape(self, input_shape):
        if any(a > len(input_shape) for a in self.shared_axes):
            raise self.error(f"shared_axes {list(self.shared_axes)} are not all axes of the input", input_shape)

    def build(self, input_shape):
        shape = tuple(1 if axis + 1 in self.shared_axes else size for axis, size in enumerate(input_shape))
        self.alpha = self.add_weight("alpha", shape, self.alpha_initializer, constraint=self.alpha_constraint)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def arithmetic(self):
        return [("output", None, "shape unchanged", ""),
                ("params", "*".join(str(n) for n in self.alpha.shape), self.count_params(),
                 "one learned slope per position not shared")]

    def call(self, x, training):
        return x.relu() - self.compute_weight(self.alpha) * (-x).relu()

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": _named(self.alpha_initializer, "zeros"),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": list(self.shared_axes) or None}


class ELU(Layer):
    """Keras's ELU layer: x for x > 0, alpha * (e^x - 1) below. Shape unchanged."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if alpha < 0:
            raise ValueError(f"ELU: alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, x, training):
        return F.elu(x, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


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
