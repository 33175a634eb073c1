"""DepthwiseConv2D and SeparableConv2D (MobileNet's, Xception's), with Keras's arguments.

A Conv2D's filter looks at every input channel at once. These split that into two steps:
a depthwise convolution filters each channel on its own (functions/depthwise_conv.py),
then, in SeparableConv2D, a 1x1 Conv2D mixes the channels. For 3x3 filters from C to F
channels that is 9*C + C*F weights instead of 9*C*F: about 9 times fewer for wide layers.
"""
from .. import activations, constraints, functional as F, regularizers
from ..functions.conv import dilated_size, normalize_padding, pair
from .base import Layer, _named, initializer_option
from .convolutional import _spatial_output, window_arithmetic


def _options(layer, prefix, initializer, constraint, regularizer):
    """Store one weight's initializer, constraint and regularizer as ``{prefix}_...``."""
    setattr(layer, f"{prefix}_initializer", initializer_option(initializer))
    setattr(layer, f"{prefix}_constraint", constraints.get(constraint))
    setattr(layer, f"{prefix}_regularizer", regularizers.get(regularizer))


def _options_config(layer, *prefixes):
    config = {}
    for prefix in prefixes:
        config[f"{prefix}_initializer"] = _named(getattr(layer, f"{prefix}_initializer"))
        config[f"{prefix}_constraint"] = constraints.serialize(getattr(layer, f"{prefix}_constraint"))
        config[f"{prefix}_regularizer"] = regularizers.serialize(getattr(layer, f"{prefix}_regularizer"))
    return config


class DepthwiseConv2D(Layer):
    """Each input channel convolved with its own depth_multiplier filters: (N, H, W, C) ->
    (N, oh, ow, C * depth_multiplier), output channel c * depth_multiplier + m from channel c.

    Weights: ``depthwise_kernel`` (kh, kw, C, depth_multiplier) Glorot-uniform, ``bias``
    (C * depth_multiplier,) zeros, with Keras's depthwise_initializer, depthwise_constraint
    and depthwise_regularizer arguments for the kernel.
    """

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, dilation_rate=(1, 1),
                 activation=None, use_bias=True, depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_constraint=None, bias_constraint=None, depthwise_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(depth_multiplier, int) or depth_multiplier <= 0:
            raise ValueError(f"{type(self).__name__}: depth_multiplier must be a positive int, got {depth_multiplier!r}")
        self.kernel_size = pair(kernel_size, f"{type(self).__name__} kernel_size")
        self.strides = pair(strides, f"{type(self).__name__} strides")
        self.padding = normalize_padding(padding)
        self.depth_multiplier = depth_multiplier
        self.dilation_rate = pair(dilation_rate, f"{type(self).__name__} dilation_rate")
        self.activation_name, self.activation = activations.get(activation)
        self.use_bias = use_bias
        _options(self, "depthwise", depthwise_initializer, depthwise_constraint, depthwise_regularizer)
        _options(self, "bias", bias_initializer, bias_constraint, bias_regularizer)
        self.depthwise_kernel = self.bias = None

    def regularized_weights(self):
        return [(self.depthwise_regularizer, self.depthwise_kernel), (self.bias_regularizer, self.bias)]

    def window(self):
        """(kh, kw) of the window the kernel spans: its size when dilated."""
        return tuple(dilated_size(k, d) for k, d in zip(self.kernel_size, self.dilation_rate))

    def check_input_shape(self, input_shape):
        _spatial_output(self, input_shape, *self.window(), *self.strides)
        if self.built and input_shape[2] != self.depthwise_kernel.shape[2]:
            raise self.error(f"expects {self.depthwise_kernel.shape[2]} input channels", input_shape)

    def build(self, input_shape):
        kh, kw = self.kernel_size
        self.depthwise_kernel = self.add_weight("depthwise_kernel", (kh, kw, input_shape[2], self.depth_multiplier),
                                                self.depthwise_initializer, constraint=self.depthwise_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.output_channels(input_shape),), self.bias_initializer,
                                        constraint=self.bias_constraint)

    def output_channels(self, input_shape):
        return input_shape[2] * self.depth_multiplier

    def compute_output_shape(self, input_shape):
        return (*_spatial_output(self, input_shape, *self.window(), *self.strides),
                self.output_channels(input_shape))

    def arithmetic(self):
        (kh, kw), (sy, sx), C, M = self.kernel_size, self.strides, self.input_shape[2], self.depth_multiplier
        weights = f"{kh}*{kw}*{C}*{M} + {C * M}" if self.use_bias else f"{kh}*{kw}*{C}*{M}"
        return window_arithmetic(self, *self.window(), sy, sx) + [
            ("channels", f"{C}*{M}", C * M, "depth_multiplier filters per input channel"),
            ("params", weights, self.count_params(), "f*f weights per filter, one input channel each")]

    def pre_activation(self, x):
        x = self.cast_input(x)
        return F.depthwise_conv2d(x, self.compute_weight(self.depthwise_kernel), self.compute_weight(self.bias),
                                  self.strides, self.padding, self.dilation_rate)

    def call(self, x, training):
        return self.activation(self.pre_activation(x))

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "depth_multiplier": self.depth_multiplier, "dilation_rate": self.dilation_rate,
                "activation": self.activation_name, "use_bias": self.use_bias,
                **_options_config(self, "depthwise", "bias")}


class SeparableConv2D(DepthwiseConv2D):
    """A depthwise convolution, then a 1x1 convolution to ``filters`` channels that mixes
    them, then the bias and the activation: (N, H, W, C) -> (N, oh, ow, filters).

    Weights: ``depthwise_kernel`` (kh, kw, C, depth_multiplier), ``pointwise_kernel``
    (1, 1, C * depth_multiplier, filters), both Glorot-uniform, and ``bias`` (filters,).
    The 1x1 step is an ordinary Conv2D's GEMM, fast paths included.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, dilation_rate=(1, 1),
                 activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, dilation_rate, activation, use_bias,
                         depthwise_initializer,
                         bias_initializer, depthwise_constraint, bias_constraint, depthwise_regularizer,
                         bias_regularizer, **kwargs)
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"SeparableConv2D: filters must be a positive int, got {filters!r}")
        self.filters = filters
        _options(self, "pointwise", pointwise_initializer, pointwise_constraint, pointwise_regularizer)
        self.pointwise_kernel = None

    def regularized_weights(self):
        return super().regularized_weights() + [(self.pointwise_regularizer, self.pointwise_kernel)]

    def build(self, input_shape):
        kh, kw = self.kernel_size
        C, M = input_shape[2], self.depth_multiplier
        self.depthwise_kernel = self.add_weight("depthwise_kernel", (kh, kw, C, M), self.depthwise_initializer,
                                                constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_weight("pointwise_kernel", (1, 1, C * M, self.filters),
                                                self.pointwise_initializer, constraint=self.pointwise_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                        constraint=self.bias_constraint)

    def output_channels(self, input_shape):
        return self.filters

    def arithmetic(self):
        (kh, kw), (sy, sx), C, M = self.kernel_size, self.strides, self.input_shape[2], self.depth_multiplier
        weights = f"{kh}*{kw}*{C}*{M} + {C * M}*{self.filters}" + (f" + {self.filters}" if self.use_bias else "")
        return window_arithmetic(self, *self.window(), sy, sx) + [
            ("channels", None, self.filters, f"a 1x1 convolution mixes the {C * M} filtered channels"),
            ("params", weights, self.count_params(), "depthwise filters, then one weight per channel per filter")]

    def pre_activation(self, x):
        x = self.cast_input(x)
        filtered = F.depthwise_conv2d(x, self.compute_weight(self.depthwise_kernel), None, self.strides, self.padding,
                                      self.dilation_rate)
        return F.conv2d(filtered, self.compute_weight(self.pointwise_kernel), self.compute_weight(self.bias))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, **_options_config(self, "pointwise")}
