"""Input: where a functional model starts (``x = Input((32, 32, 3))``)."""
from ..symbolic import Symbol
from .base import Layer


class InputLayer(Layer):
    """Holds the shape of a model's input (without the batch axis); no weights, no work."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not shape or any(not isinstance(n, int) or n < 1 for n in shape):
            raise ValueError(f"Input: shape must be the sizes of one sample, positive ints without the batch "
                             f"axis, e.g. (32, 32, 3); got {shape!r}")
        self.shape = shape
        self.compute_dtype = self.dtype  # the data as they come: the first layer casts them if it must
        self.built, self.input_shape, self.output_shape = True, shape, shape

    def call(self, x, training):
        return x

    def get_config(self):
        return {**super().get_config(), "shape": list(self.shape)}


def Input(shape, dtype=None, name=None):
    """A symbolic batch of inputs of ``shape`` (no batch axis) to build a functional model on;
    dtype: the data's, float32 unless the global policy is "float64" or "float16" (under
    "mixed_float16" the data stay float32: the first layer casts them)."""
    layer = InputLayer(shape, name=name, dtype=dtype)
    return Symbol(layer.shape, layer.dtype, layer)
