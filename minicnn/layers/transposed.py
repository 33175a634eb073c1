"""Conv2DTranspose with Keras's arguments: the layer that makes an image larger with a
trained kernel (decoders, U-Nets, GAN generators); functions/conv_transpose.py has the
arithmetic, the backward of a Conv2D."""
from .. import activations, functional as F
from ..functions.conv import dilated_size, normalize_padding, pair
from ..functions.conv_transpose import pair_non_negative, transpose_output_size
from .base import Layer, set_weight_options, weight_options_config


def size_expression(n, k, s, padding, output_padding):
    """transpose_output_size's formula with this axis's numbers in, as Python."""
    if output_padding is not None:
        pad = k // 2 if padding == "same" else 0
        return f"({n} - 1)*{s} + {k} - 2*{pad} + {output_padding}"
    if padding == "same" or k < s:
        return f"{n}*{s}"
    return f"({n} - 1)*{s} + {k}"


class Conv2DTranspose(Layer):
    """Transposed 2-D convolution. Input (N, H, W, C) -> output (N, oh, ow, filters), with
    oh = H * strides for 'same', (H - 1) * strides + kernel for 'valid' (or Keras's formula
    with output_padding; functions/conv_transpose.py).

    Weights: ``kernel`` (kh, kw, filters, C) Glorot-uniform (Keras's layout: the output
    channels before the input ones), ``bias`` (filters,) zeros.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_constraint=None, bias_constraint=None, kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"Conv2DTranspose: filters must be a positive int, got {filters!r}")
        self.filters = filters
        self.kernel_size = pair(kernel_size, "Conv2DTranspose kernel_size")
        self.strides = pair(strides, "Conv2DTranspose strides")
        self.padding = normalize_padding(padding)
        if self.padding not in ("valid", "same"):
            raise ValueError(f"Conv2DTranspose: padding must be 'valid' or 'same', got {padding!r}")
        self.output_padding = None if output_padding is None else pair_non_negative(output_padding)
        if self.output_padding is not None and any(p >= s for p, s in zip(self.output_padding, self.strides)):
            raise ValueError(f"Conv2DTranspose: output_padding {self.output_padding} must be smaller than the "
                             f"strides {self.strides}")
        self.dilation_rate = pair(dilation_rate, "Conv2DTranspose dilation_rate")
        self.activation_name, self.activation = activations.get(activation)
        self.use_bias = use_bias
        set_weight_options(self, kernel_initializer, bias_initializer, kernel_constraint, bias_constraint,
                           kernel_regularizer, bias_regularizer)
        self.kernel = self.bias = None

    def _output_hw(self, input_shape):
        windows = [dilated_size(k, d) for k, d in zip(self.kernel_size, self.dilation_rate)]
        extra = self.output_padding or (None, None)
        return tuple(transpose_output_size(n, k, s, self.padding, p)
                     for n, k, s, p in zip(input_shape[:2], windows, self.strides, extra))

    def check_input_shape(self, input_shape):
        self.require_images(input_shape)
        if min(self._output_hw(input_shape)) < 1:
            raise self.error(f"the output would be {self._output_hw(input_shape)}", input_shape)
        if self.built and input_shape[2] != self.kernel.shape[3]:
            raise self.error(f"expects {self.kernel.shape[3]} input channels (it was built for "
                             f"{(None,) + self.input_shape})", input_shape)

    def build(self, input_shape):
        kh, kw = self.kernel_size
        self.kernel = self.add_weight("kernel", (kh, kw, self.filters, input_shape[2]),
                                      self.kernel_initializer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                        constraint=self.bias_constraint)

    def compute_output_shape(self, input_shape):
        return (*self._output_hw(input_shape), self.filters)

    def arithmetic(self):
        (kh, kw), (sy, sx), (H, W, C) = self.kernel_size, self.strides, self.input_shape
        oh, ow = self._output_hw(self.input_shape)
        extra = self.output_padding or (None, None)
        windows = [dilated_size(k, d) for k, d in zip(self.kernel_size, self.dilation_rate)]
        height, width = (size_expression(n, k, s, self.padding, p) for n, k, s, p in zip((H, W), windows,
                                                                                           (sy, sx), extra))
        weights = f"(({kh}*{kw}*{C}) + 1)*{self.filters}" if self.use_bias else f"({kh}*{kw}*{C})*{self.filters}"
        return [("height", height, oh, "each input pixel spreads over a window, windows strides apart"),
                ("width", width, ow, ""), ("channels", None, self.filters, "one per filter"),
                ("params", weights, self.count_params(),
                 "f*f*c_in weights + 1 bias per filter" if self.use_bias else "f*f*c_in weights per filter")]

    def pre_activation(self, x):
        """The output before the activation."""
        x = self.cast_input(x)
        return F.conv2d_transpose(x, self.compute_weight(self.kernel), self.compute_weight(self.bias), self.strides,
                                  self.padding, self.output_padding, self.dilation_rate)

    def call(self, x, training):
        return self.activation(self.pre_activation(x))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "output_padding": self.output_padding,
                "dilation_rate": self.dilation_rate, "activation": self.activation_name, "use_bias": self.use_bias,
                **weight_options_config(self)}
