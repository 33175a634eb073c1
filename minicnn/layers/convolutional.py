"""Conv2D with Keras's arguments, channels-last, and the sliding-window arithmetic it
shares with the pooling layers (pooling.py)."""
from .. import activations, functional as F
from ..functions.conv import conv_geometry, dilated_size, normalize_padding, pair
from .base import Layer, set_weight_options, weight_options_config


def _spatial_output(layer, input_shape, kh, kw, sy, sx):
    """(oh, ow) of a sliding window over (H, W, C), or a ValueError naming the layer."""
    layer.require_images(input_shape)
    try:
        return conv_geometry((None,) + tuple(input_shape), kh, kw, sy, sx, layer.padding)[1]
    except ValueError as error:
        raise layer.error(str(error)) from None


def outsize_expression(n, f, s, pads):
    """The output-size formula floor((n + 2p - f) / s) + 1 with this axis's numbers filled
    in, as Python; padding odd in total ('same') shows its two sides: n + before + after."""
    before, after = pads
    padding = f" + 2*{before}" if before == after else f" + {before} + {after}"
    return f"floor(({n}{padding} - {f}) / {s}) + 1"


def window_arithmetic(layer, kh, kw, sy, sx):
    """Height and width items of ``Layer.arithmetic`` for a sliding window; one item
    when both axes have the same numbers."""
    H, W, _ = layer.input_shape
    (rows, cols), (oh, ow) = conv_geometry((None, *layer.input_shape), kh, kw, sy, sx, layer.padding)
    height, width = outsize_expression(H, kh, sy, rows), outsize_expression(W, kw, sx, cols)
    if height == width:
        return [("height, width", height, oh, "")]
    return [("height", height, oh, ""), ("width", width, ow, "")]


class Conv2D(Layer):
    """2-D convolution. Input (N, H, W, C) -> output (N, oh, ow, filters).

    Weights: ``kernel`` (kh, kw, C / groups, filters) Glorot-uniform, ``bias`` (filters,) zeros.
    dilation_rate: the spacing of the kernel's taps (a 3x3 kernel at rate 2 sees a 5x5
    window). groups: the channels split into this many groups, each convolved with its own
    filters / groups filters (ResNeXt); C and filters must both divide by it. Unlike Keras,
    strides and a dilation rate above 1 may be combined (as PyTorch allows).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", dilation_rate=(1, 1), groups=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_constraint=None, bias_constraint=None, kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"Conv2D: filters must be a positive int, got {filters!r}")
        if not isinstance(groups, int) or groups <= 0 or filters % groups:
            raise ValueError(f"Conv2D: groups must be a positive int that divides filters ({filters}), "
                             f"got {groups!r}")
        self.filters, self.groups = filters, groups
        self.kernel_size = pair(kernel_size, "Conv2D kernel_size")
        self.strides = pair(strides, "Conv2D strides")
        self.dilation_rate = pair(dilation_rate, "Conv2D dilation_rate")
        self.padding = normalize_padding(padding)
        self.activation_name, self.activation = activations.get(activation)
        self.use_bias = use_bias
        set_weight_options(self, kernel_initializer, bias_initializer, kernel_constraint, bias_constraint,
                           kernel_regularizer, bias_regularizer)
        self.kernel = self.bias = None

    def window(self):
        """(kh, kw) of the window the kernel spans: its size when dilated."""
        return tuple(dilated_size(k, d) for k, d in zip(self.kernel_size, self.dilation_rate))

    def check_input_shape(self, input_shape):
        _spatial_output(self, input_shape, *self.window(), *self.strides)
        if input_shape[2] % self.groups:
            raise self.error(f"input channels must divide into its {self.groups} groups", input_shape)
        if self.built and input_shape[2] != self.kernel.shape[2] * self.groups:
            raise self.error(f"expects {self.kernel.shape[2] * self.groups} input channels (it was built for "
                             f"{(None,) + self.input_shape})", input_shape)

    def build(self, input_shape):
        kh, kw = self.kernel_size
        self.kernel = self.add_weight("kernel", (kh, kw, input_shape[2] // self.groups, self.filters),
                                      self.kernel_initializer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                        constraint=self.bias_constraint)

    def compute_output_shape(self, input_shape):
        return (*_spatial_output(self, input_shape, *self.window(), *self.strides), self.filters)

    def arithmetic(self):
        (kh, kw), (sy, sx), C = self.kernel_size, self.strides, self.input_shape[2]
        c_in = "c_in"
        if self.groups > 1:  # each filter sees its group's channels only
            C, c_in = f"{C}//{self.groups}", f"c_in/{self.groups}"
        weights = f"(({kh}*{kw}*{C}) + 1)*{self.filters}" if self.use_bias else f"({kh}*{kw}*{C})*{self.filters}"
        sizes = window_arithmetic(self, *self.window(), sy, sx)
        if self.dilation_rate != (1, 1):  # the window, not the kernel, is the f of the formula
            sizes = [(what, expression, value, "f: the dilated window, (k - 1)*d + 1")
                     for what, expression, value, _ in sizes]
        return sizes + [
            ("channels", None, self.filters, "one per filter"),
            ("params", weights, self.count_params(),
             f"(f*f*{c_in} weights + 1 bias) per filter" if self.use_bias else f"f*f*{c_in} weights per filter, no bias")]

    def pre_activation(self, x):
        """The output before the activation (a model's loss takes a softmax layer's so)."""
        x = self.cast_input(x)  # called directly, not through __call__, by the models
        return F.conv2d(x, self.compute_weight(self.kernel), self.compute_weight(self.bias), self.strides, self.padding,
                        self.dilation_rate, self.groups)

    def call(self, x, training):
        if self.activation is activations.relu and self.use_bias and F.fuses_bias_relu(x):
            # on a GPU the bias joins the ReLU's kernel: one launch fewer each way
            return F.bias_relu(F.conv2d(x, self.compute_weight(self.kernel), None, self.strides, self.padding,
                                        self.dilation_rate, self.groups),
                               self.compute_weight(self.bias))
        return self.activation(self.pre_activation(x))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "dilation_rate": self.dilation_rate,
                "groups": self.groups, "activation": self.activation_name, "use_bias": self.use_bias,
                **weight_options_config(self)}
