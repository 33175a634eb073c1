"""Symbolic inputs for Keras's functional API: ``x = Input((32, 32, 3))``, then
``y = Conv2D(16, 3)(x)``, ``z = Add()([x, y])``, ... and ``Model(x, z)``.

A Symbol stands for a batch of tensors that does not exist yet: it knows its shape
(without the batch axis), its dtype, and which layer made it from which symbols. Calling
a layer on symbols builds the layer for their shapes at once (so shape errors appear
where the model is written) and records the call; ``Model`` then walks those records
from its outputs back to its inputs to get the order in which to run the layers.
"""
import numpy

from . import backend


class Symbol:
    """The output of ``layer`` applied to ``inputs`` (Symbols), or an Input (layer is an
    InputLayer, inputs empty). ``shape`` excludes the batch axis."""

    def __init__(self, shape, dtype, layer, inputs=()):
        self.shape, self.dtype = tuple(shape), numpy.dtype(dtype)
        self.layer, self.inputs = layer, list(inputs)

    @property
    def name(self):
        return self.layer.name

    def __repr__(self):
        return f"<Symbol {self.layer.name}: shape {(None,) + self.shape}, {self.dtype}>"


def is_symbolic(x):
    """A Symbol, or a list/tuple holding one."""
    if isinstance(x, (list, tuple)):
        return any(isinstance(item, Symbol) for item in x)
    return isinstance(x, Symbol)


def call(layer, inputs):
    """Record ``layer`` applied to Symbol(s) ``inputs`` and build it for their shapes."""
    many = isinstance(inputs, (list, tuple))
    items = list(inputs) if many else [inputs]
    strangers = [item for item in items if not isinstance(item, Symbol)]
    if strangers:
        raise TypeError(f"{layer.describe()}: a functional model's layers take Input(...) or the outputs "
                        f"of other layers, not {type(strangers[0]).__name__} (mix no arrays in)")
    for item in items:
        if not layer.takes_dtype(item.dtype):  # the casts a call would make (Layer.takes_dtype)
            raise TypeError(f"{layer.describe()}: its input {item.name} is {item.dtype} but the layer computes in "
                            f"{layer.compute_dtype}; give both the same dtype")
    shapes = [item.shape for item in items] if many else items[0].shape
    output_shape = layer.build_for(shapes, layer.device if layer.built else backend.get_device())
    return Symbol(output_shape, layer.compute_dtype, layer, items)


def graph(inputs, outputs):
    """The call records between ``inputs`` and ``outputs`` (Symbols), each after the ones it
    reads: [(symbol, [its input symbols])], inputs excluded. Raises if an output depends
    on a Symbol that is not among ``inputs``."""
    known = {id(s) for s in inputs}
    order, seen, stack = [], set(known), [(s, False) for s in reversed(outputs)]
    while stack:
        symbol, expanded = stack.pop()
        if expanded:
            order.append(symbol)
            continue
        if id(symbol) in seen:
            continue
        if not symbol.inputs:
            raise ValueError(f"the outputs depend on {symbol.name}, which is not among the model's inputs "
                             f"({', '.join(s.name for s in inputs)})")
        seen.add(id(symbol))
        stack.append((symbol, True))
        stack.extend((s, False) for s in reversed(symbol.inputs) if id(s) not in seen)
    return order
