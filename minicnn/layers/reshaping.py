"""ZeroPadding2D: a border of zeros around each image, with Keras's arguments."""
from .. import functional as F
from .base import Layer


def _pads(padding):
    """Keras's forms: n (all sides), (rows, cols) (symmetric), or ((top, bottom), (left, right))."""
    if isinstance(padding, int):
        pads = ((padding, padding), (padding, padding))
    elif len(padding) == 2 and all(isinstance(p, int) for p in padding):
        pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    else:
        pads = tuple(tuple(int(v) for v in p) for p in padding)
    if len(pads) != 2 or any(len(p) != 2 or min(p) < 0 for p in pads):
        raise ValueError(f"ZeroPadding2D: padding must be n, (rows, cols) or ((top, bottom), (left, right)) "
                         f"of non-negative ints, got {padding!r}")
    return pads


class ZeroPadding2D(Layer):
    """(N, H, W, C) -> (N, top + H + bottom, left + W + right, C), the border filled with 0."""

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.padding = _pads(padding)

    def check_input_shape(self, input_shape):
        self.require_images(input_shape)

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        return (input_shape[0] + top + bottom, input_shape[1] + left + right, input_shape[2])

    def arithmetic(self):
        (top, bottom), (left, right) = self.padding
        H, W, _ = self.input_shape
        return [("height", f"{top} + {H} + {bottom}", H + top + bottom, ""),
                ("width", f"{left} + {W} + {right}", W + left + right, ""),
                ("params", None, 0, "zeros have nothing to learn")]

    def call(self, x, training):
        return F.zero_pad2d(x, self.padding)

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}
