"""Layers that take several inputs: Add (a residual connection's sum), Subtract, Multiply,
Average, Maximum, Minimum (elementwise, Keras's merging layers) and Concatenate."""
from .. import functional as F, symbolic
from ..autograd import Tensor
from .base import Layer


class Merge(Layer):
    """Base of the layers called on a list of two or more inputs of compatible shapes."""

    def __call__(self, inputs, training=None):
        if symbolic.is_symbolic(inputs):
            if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
                raise ValueError(f"{self.describe()}: call it on a list of two or more inputs")
            return symbolic.call(self, list(inputs))
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"{self.describe()}: call it on a list of two or more tensors, got {type(inputs).__name__}")
        inputs = [self.cast_input(x if isinstance(x, Tensor) else Tensor(x)) for x in inputs]
        for x in inputs:
            if x.device != inputs[0].device:
                raise TypeError(f"{self.describe()}: its inputs are on different devices "
                                f"({', '.join(t.device for t in inputs)}); move them explicitly")
        self.build_for([x.shape[1:] for x in inputs], inputs[0].device)
        return self.call(inputs, self.training if training is None else training)

    def build_for(self, input_shapes, device=None):
        input_shapes = [tuple(s) for s in input_shapes]
        self.check_input_shapes(input_shapes)
        if not self.built:
            self.device = device
            self.built, self.input_shape = True, input_shapes
            self.output_shape = self.compute_output_shape(input_shapes)
        return self.compute_output_shape(input_shapes)

    def arithmetic(self):
        return self.shape_items() + [("params", None, 0, "no weights")]


def _axis_name(rank, axis):
    """What summary(arithmetic=True) calls a sample's axis (no batch axis)."""
    if rank == 1:
        return "features"
    return ["height", "width", "channels"][axis] if rank == 3 else f"axis {axis + 1}"


class Add(Merge):
    """The elementwise sum of its inputs, all of one shape: (N, ...) each -> (N, ...). In a
    residual block, Add()([x, f(x)]) lets the gradient reach x unchanged through the sum."""

    def shape_items(self):
        rank = len(self.output_shape)
        return [(_axis_name(rank, rank - 1), None, self.output_shape[-1],
                 f"each of the {len(self.input_shape)} inputs', added elementwise")]

    def check_input_shapes(self, shapes):
        if any(s != shapes[0] for s in shapes):
            raise self.error(f"adds inputs of one shape; got {', '.join(str((None,) + s) for s in shapes)}")

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def call(self, inputs, training):
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


class Subtract(Add):
    """inputs[0] - inputs[1], elementwise: exactly two inputs of one shape."""

    def check_input_shapes(self, shapes):
        if len(shapes) != 2:
            raise self.error(f"subtracts exactly two inputs; got {len(shapes)}")
        super().check_input_shapes(shapes)

    def shape_items(self):
        return [(_axis_name(len(self.output_shape), len(self.output_shape) - 1), None, self.output_shape[-1],
                 "the first input minus the second, elementwise")]

    def call(self, inputs, training):
        return inputs[0] - inputs[1]


class Multiply(Add):
    """The elementwise product of its inputs, all of one shape (a gate: x * sigmoid(g))."""

    def shape_items(self):
        return [(_axis_name(len(self.output_shape), len(self.output_shape) - 1), None, self.output_shape[-1],
                 f"each of the {len(self.input_shape)} inputs', multiplied elementwise")]

    def call(self, inputs, training):
        product = inputs[0]
        for x in inputs[1:]:
            product = product * x
        return product


class Average(Add):
    """The elementwise mean of its inputs, all of one shape (an ensemble's outputs)."""

    def shape_items(self):
        return [(_axis_name(len(self.output_shape), len(self.output_shape) - 1), None, self.output_shape[-1],
                 f"the mean of the {len(self.input_shape)} inputs, elementwise")]

    def call(self, inputs, training):
        return super().call(inputs, training) * (1.0 / len(inputs))


class Maximum(Add):
    """The elementwise maximum of its inputs, all of one shape. max(a, b) = a + relu(b - a):
    the gradient goes to the larger input, and at a tie to the earlier one (as TensorFlow's)."""

    def shape_items(self):
        return [(_axis_name(len(self.output_shape), len(self.output_shape) - 1), None, self.output_shape[-1],
                 f"the largest of the {len(self.input_shape)} inputs, elementwise")]

    def call(self, inputs, training):
        largest = inputs[0]
        for x in inputs[1:]:
            largest = largest + (x - largest).relu()
        return largest


class Minimum(Add):
    """The elementwise minimum of its inputs, all of one shape: min(a, b) = a - relu(a - b),
    the gradient to the smaller input (at a tie, the earlier one)."""

    def shape_items(self):
        return [(_axis_name(len(self.output_shape), len(self.output_shape) - 1), None, self.output_shape[-1],
                 f"the smallest of the {len(self.input_shape)} inputs, elementwise")]

    def call(self, inputs, training):
        smallest = inputs[0]
        for x in inputs[1:]:
            smallest = smallest - (smallest - x).relu()
        return smallest


class Concatenate(Merge):
    """Inputs joined along ``axis`` (default -1, the channels), equal in every other axis."""

    def shape_items(self):
        rank = len(self.output_shape)
        axis = self._axis(rank)
        return [(_axis_name(rank, axis), " + ".join(str(s[axis]) for s in self.input_shape),
                 self.output_shape[axis], "the inputs side by side")]

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if axis == 0:
            raise ValueError("Concatenate: axis 0 is the batch; join along a sample's axes (1, 2, ... or -1)")
        self.axis = axis

    def _axis(self, rank):
        """This layer's axis within one sample's shape (no batch axis)."""
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise self.error(f"axis {self.axis} is outside inputs of rank {rank + 1}")
        return axis

    def check_input_shapes(self, shapes):
        rank = len(shapes[0])
        axis = self._axis(rank)
        others = [tuple(n for i, n in enumerate(s) if i != axis) for s in shapes]
        if any(len(s) != rank for s in shapes) or any(o != others[0] for o in others):
            raise self.error(f"joins inputs equal in all but axis {self.axis}; got "
                             f"{', '.join(str((None,) + s) for s in shapes)}")

    def compute_output_shape(self, input_shapes):
        axis = self._axis(len(input_shapes[0]))
        out = list(input_shapes[0])
        out[axis] = sum(s[axis] for s in input_shapes)
        return tuple(out)

    def call(self, inputs, training):
        return F.concatenate(inputs, self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
