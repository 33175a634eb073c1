"""Dense, Flatten, Reshape, Permute, Identity, Activation, Rescaling, Dropout and SpatialDropout2D, with Keras's arguments."""
import math

from .. import activations, functional as F
from ..functions import dropout as dropout_fn
from .base import Layer, RandomStream, set_weight_options, weight_options_config


class Dense(Layer):
    """Fully connected. Input (N, D_in) -> (N, units); of higher rank, as in Keras, along the
    last axis at every position: (N, d1, ..., D_in) -> (N, d1, ..., units).

    Weights: ``kernel`` (D_in, units) Glorot-uniform, ``bias`` (units,) zeros.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_constraint=None, bias_constraint=None, kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units = units
        self.activation_name, self.activation = activations.get(activation)
        self.use_bias = use_bias
        set_weight_options(self, kernel_initializer, bias_initializer, kernel_constraint, bias_constraint,
                           kernel_regularizer, bias_regularizer)
        self.kernel = self.bias = None

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1:
            raise self.error("expects input of rank >= 2 (batch, ..., features)", input_shape)
        if self.built and input_shape[-1] != self.kernel.shape[0]:
            raise self.error(f"expects {self.kernel.shape[0]} input features on the last axis", input_shape)

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        constraint=self.bias_constraint)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def arithmetic(self):
        d_in = self.input_shape[-1]
        weights = f"({d_in} + 1)*{self.units}" if self.use_bias else f"{d_in}*{self.units}"
        return [("units", None, self.units, ""),
                ("params", weights, self.count_params(),
                 "(inputs + 1 bias) per unit" if self.use_bias else "one weight per input per unit, no bias")]

    def pre_activation(self, x):
        """The output before the activation (a model's loss takes a softmax layer's so)."""
        x = self.cast_input(x)  # called directly, not through __call__, by the models
        return F.dense(x, self.compute_weight(self.kernel), self.compute_weight(self.bias))

    def call(self, x, training):
        if self.activation is activations.relu and self.use_bias and F.fuses_bias_relu(x):
            # on a GPU the bias joins the ReLU's kernel: one launch fewer each way
            return F.bias_relu(F.dense(x, self.compute_weight(self.kernel), None),
                               self.compute_weight(self.bias))
        return self.activation(self.pre_activation(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation_name,
                "use_bias": self.use_bias, **weight_options_config(self)}


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...), in row-major (channels-last) order."""

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1:
            raise self.error("expects input of rank >= 2 (batch, ...)", input_shape)

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def arithmetic(self):
        return [("features", "*".join(str(n) for n in self.input_shape), self.output_shape[0],
                 "all values of the input in one row"), ("params", None, 0, "no weights")]

    def call(self, x, training):
        return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    """(N, *input_shape) -> (N, *target_shape), the values in row-major order (Keras's
    Reshape). One entry of target_shape may be -1: the size that keeps the element count."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target = tuple(target_shape)
        if not all(isinstance(n, int) and (n >= 1 or n == -1) for n in target) or target.count(-1) > 1:
            raise ValueError(f"Reshape: target_shape holds positive ints and at most one -1, got {target_shape!r}")
        self.target_shape = target

    def compute_output_shape(self, input_shape):
        size, known = math.prod(input_shape), math.prod(n for n in self.target_shape if n != -1)
        if (size % known if -1 in self.target_shape else size != known):
            raise self.error(f"cannot reshape {size} values to {self.target_shape}", input_shape)
        return tuple(size // known if n == -1 else n for n in self.target_shape)

    def arithmetic(self):
        return [("shape", "*".join(str(n) for n in self.input_shape), self.output_shape,
                 "the same values, regrouped"), ("params", None, 0, "no weights")]

    def call(self, x, training):
        return x.reshape(x.shape[0], *self.compute_output_shape(x.shape[1:]))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Keras's Permute(dims): the axes after the batch reordered, dims a permutation of
    1..rank (1-based, the batch axis 0 staying first): Permute((3, 1, 2)) turns images
    (N, H, W, C) into (N, C, H, W), and Permute((2, 3, 1)) turns a channels-first array
    back to the channels-last layout every image layer here takes."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims) if isinstance(dims, (list, tuple)) else None
        if not dims or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims) \
                or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..rank (the batch axis 0 excluded), "
                             f"e.g. (2, 1); got {dims!r}")
        self.dims = dims

    def check_input_shape(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise self.error(f"dims={self.dims} reorders {len(self.dims)} axes after the batch", input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[d - 1] for d in self.dims)

    def arithmetic(self):
        return [("shape", f"axes {self.dims} of {self.input_shape}", self.output_shape, "the same values, reordered"),
                ("params", None, 0, "no weights")]

    def call(self, x, training):
        return F.permute(x, (0, *self.dims))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class Identity(Layer):
    """Keras's Identity: the input unchanged (a placeholder where a block may or may not
    transform, e.g. a residual branch's shortcut)."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def arithmetic(self):
        return [("shape", None, self.output_shape, "the input itself"), ("params", None, 0, "no weights")]

    def call(self, x, training):
        return x


class Activation(Layer):
    """Applies a named activation ('relu', 'softmax', ...); shape unchanged."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation_name, self.activation = activations.get(activation)

    def pre_activation(self, x):
        return x

    def call(self, x, training):
        return self.activation(x)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation_name}


class Rescaling(Layer):
    """y = x * scale + offset, constants (Keras's Rescaling); shape unchanged, no weights.
    Used to scale inputs (1/255) or, as in airbench, a network's logits (1/9)."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = float(scale), float(offset)

    def call(self, x, training):
        y = x * self.scale  # a Python number takes x's dtype: no float64 promotion
        return y + self.offset if self.offset else y

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Dropout(RandomStream, Layer):
    """Inverted dropout in training, identity in inference; shape unchanged.

    rate: fraction of inputs zeroed, 0 <= rate < 1. noise_shape (Keras's): the shape of
    the mask, one entry per axis of the input, batch axis included: None takes the input's
    size, 1 shares one draw along that axis (``(None, 1, 1, None)`` drops whole channels,
    as SpatialDropout2D). seed: for this layer's own random stream (default: drawn from
    ``minicnn.set_seed``'s generator).
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"{type(self).__name__}: rate must be in [0, 1), got {rate!r}")
        if noise_shape is not None and not all(n is None or (isinstance(n, int) and n >= 1) for n in noise_shape):
            raise ValueError(f"{type(self).__name__}: noise_shape holds None or positive ints, got {noise_shape!r}")
        self.rate, self.seed = float(rate), seed
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.start_random_stream(seed)

    def check_input_shape(self, input_shape):
        if self.noise_shape is None:
            return
        if len(self.noise_shape) != len(input_shape) + 1:
            raise self.error(f"noise_shape {self.noise_shape} needs one entry per input axis, batch included",
                             input_shape)
        for n, size in zip(self.noise_shape[1:], input_shape):
            if n is not None and n not in (1, size):
                raise self.error(f"noise_shape {self.noise_shape}: each entry is None, 1 or the input's size",
                                 input_shape)

    def mask_shape(self, shape):
        """The mask's shape for an input of ``shape``: the input's, or noise_shape filled in."""
        if self.noise_shape is None:
            return shape
        return tuple(size if n is None else n for n, size in zip(self.noise_shape, shape))

    def call(self, x, training):
        if not training or self.rate == 0:
            return x
        # with a noise_shape the mask is smaller than x and broadcasts: one draw per shared axis
        mask = dropout_fn.dropout_mask(self.mask_shape(x.shape), self.rate, self.rng(x.data), x.dtype)
        return F.dropout(x, self.rate, mask=mask)

    def get_config(self):
        config = {**super().get_config(), "rate": self.rate, "seed": self.seed}
        if self.noise_shape is not None:
            config["noise_shape"] = list(self.noise_shape)
        return config


class SpatialDropout2D(Dropout):
    """Dropout of whole feature maps: each (image, channel) kept or zeroed as one, (N, H, W, C)
    -> same shape. Neighbouring pixels of one map are strongly correlated, so dropping
    single pixels hides little from the next convolution; dropping the map does (Tompson et
    al. 2015). Keras's SpatialDropout2D, channels-last: noise_shape (N, 1, 1, C)."""

    def __init__(self, rate, seed=None, **kwargs):
        kwargs.pop("noise_shape", None)  # always (None, 1, 1, None); a saved config may carry it
        super().__init__(rate, noise_shape=(None, 1, 1, None), seed=seed, **kwargs)

    def check_input_shape(self, input_shape):
        self.require_images(input_shape)

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]
        return config
