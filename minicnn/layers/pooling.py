"""Pooling layers with Keras's arguments, channels-last: MaxPooling2D, AveragePooling2D
(a window slid over the image, the arithmetic of convolutional.py) and
GlobalAveragePooling2D, GlobalMaxPooling2D (the whole image at once)."""
from .. import functional as F
from ..functions.conv import normalize_padding, pair
from .base import Layer
from .convolutional import _spatial_output, window_arithmetic


class Pooling2D(Layer):
    """What max- and average-pooling share: a pool_size window moved by strides (default:
    the pool size, as Keras), 'valid' or 'same' padding, no weights. (N, H, W, C) -> (N, oh, ow, C)."""
    summary_note = ""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        self.pool_size = pair(pool_size, f"{kind} pool_size")
        self.strides = pair(strides, f"{kind} strides") if strides is not None else self.pool_size
        self.padding = normalize_padding(padding)
        if not isinstance(self.padding, str):
            raise ValueError(f"{kind} padding must be 'valid' or 'same', got {padding!r}")

    def check_input_shape(self, input_shape):
        _spatial_output(self, input_shape, *self.pool_size, *self.strides)

    def compute_output_shape(self, input_shape):
        return (*_spatial_output(self, input_shape, *self.pool_size, *self.strides), input_shape[2])

    def arithmetic(self):
        return window_arithmetic(self, *self.pool_size, *self.strides) + [
            ("channels", None, self.input_shape[2], "unchanged: each channel pooled on its own"),
            ("params", None, 0, self.summary_note)]

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling2D(Pooling2D):
    """Max over pool_size windows. Input (N, H, W, C) -> (N, oh, ow, C). No weights."""
    summary_note = "a maximum has nothing to learn"

    def call(self, x, training):
        return F.max_pool2d(x, self.pool_size, self.strides, self.padding)


class AveragePooling2D(Pooling2D):
    """Mean over pool_size windows. Input (N, H, W, C) -> (N, oh, ow, C). No weights.
    padding='same' averages only the cells inside the image, as Keras does."""
    summary_note = "a mean has nothing to learn"

    def call(self, x, training):
        return F.avg_pool2d(x, self.pool_size, self.strides, self.padding)


class GlobalPooling2D(Layer):
    """What the global poolings share: one window the size of the whole image, so
    (N, H, W, C) -> (N, C), or (N, 1, 1, C) with keepdims=True. No weights."""

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def check_input_shape(self, input_shape):
        self.require_images(input_shape)

    def compute_output_shape(self, input_shape):
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def shaped(self, y):
        """(N, C) -> (N, 1, 1, C) when keepdims, else as it is."""
        return y.reshape(y.shape[0], 1, 1, y.shape[1]) if self.keepdims else y

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(GlobalPooling2D):
    """Each channel's mean over the whole image: (N, H, W, C) -> (N, C), or (N, 1, 1, C)
    with keepdims=True. What ResNets use instead of Flatten before their last Dense."""

    def arithmetic(self):
        H, W, C = self.input_shape
        return [("features", None, C, f"one mean per channel, over its {H}*{W} values"),
                ("params", None, 0, "a mean has nothing to learn")]

    def call(self, x, training):
        return self.shaped(F.global_avg_pool2d(x))


class GlobalMaxPooling2D(GlobalPooling2D):
    """Each channel's maximum over the whole image: (N, H, W, C) -> (N, C), or (N, 1, 1, C)
    with keepdims=True. It is max-pooling with one window the size of the image, so the
    gradient goes where MaxPooling2D's would: to the maximum's position."""

    def arithmetic(self):
        H, W, C = self.input_shape
        return [("features", None, C, f"one maximum per channel, over its {H}*{W} values"),
                ("params", None, 0, "a maximum has nothing to learn")]

    def call(self, x, training):
        whole = tuple(x.shape[1:3])
        y = F.max_pool2d(x, whole, whole)  # (N, 1, 1, C)
        return y if self.keepdims else y.reshape(y.shape[0], y.shape[3])
