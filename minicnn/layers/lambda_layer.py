"""Keras's Lambda: a function of Tensors as a layer, for a step too small for a class of
its own (``Lambda(lambda x: x * 2 - 1)``, a channel split, a custom pooling).

The function gets the input Tensor (N, ...) and returns a Tensor; written with Tensor
arithmetic and minicnn.functional, it is differentiable like any other layer. Its output
shape is found by calling it once on one sample of zeros, or given as output_shape.

A saved file cannot hold it: Keras pickles the function's bytecode, which is tied to one
Python version and runs arbitrary code on loading. model.save says so by name;
model.save_weights keeps the weights of the other layers for a model rebuilt in code.
"""
import numpy

from .. import backend
from ..autograd import Tensor, no_grad
from .base import Layer


class Lambda(Layer):
    """function(x, **arguments) -> Tensor; output_shape (no batch axis), when given, is
    checked against what the function returns."""

    not_saveable = ("it holds a Python function, which a saved file cannot hold safely (Keras pickles its "
                    "bytecode)")

    def __init__(self, function, output_shape=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, got {type(function).__name__}")
        self.function, self.arguments = function, dict(arguments or {})
        self.declared_shape = None if output_shape is None else tuple(output_shape)

    def compute_output_shape(self, input_shape):
        xp = backend.get_array_module(backend.to_device(numpy.zeros(1), self.device))
        with no_grad():
            out = self.call(Tensor(xp.zeros((1,) + tuple(input_shape), dtype=self.compute_dtype)), False)
        shape = tuple(out.shape[1:])
        if self.declared_shape is not None and shape != self.declared_shape:
            raise self.error(f"output_shape {self.declared_shape} was given, but the function returns "
                             f"{(None,) + shape}", input_shape)
        return shape

    def call(self, x, training):
        out = self.function(x, **self.arguments)
        if not isinstance(out, Tensor):
            raise TypeError(f"{self.describe()}: the function must return a minicnn Tensor (use Tensor arithmetic "
                            f"and minicnn.functional on its input), got {type(out).__name__}")
        return out

    def get_config(self):
        return {**super().get_config(), "function": getattr(self.function, "__name__", "function"),
                "output_shape": None if self.declared_shape is None else list(self.declared_shape)}
