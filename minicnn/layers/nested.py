"""A model used as a layer of another, as Keras allows: ``Sequential([base, Dense(10)])``
or ``y = base(x)`` in a functional model. The usual reason is transfer learning: a trained
base, frozen with ``base.trainable = False``, under a new head.

The inner model's layers become this layer's sub-layers (base.Layer.sublayers), so the
outer model sees their weights, regularizers, training mode, freezing and random streams
without knowing it holds a model; a saved file stores the inner model's architecture in
this layer's config and its weights in order with the others. Shapes: the inner model's,
(N, *model.input_shape) -> (N, *model.output_shape).
"""
from .base import Layer


class NestedModel(Layer):
    """Wraps a Sequential or functional ``Model`` (or the config one was saved as)."""

    def __init__(self, model, name=None, trainable=None, dtype=None):
        if isinstance(model, dict):  # from a saved file
            from ..saving import rebuild_model
            model = rebuild_model(model, "a nested model")
        super().__init__(name=name, trainable=model.trainable, dtype=dtype)
        if model._many != (False, False):
            raise ValueError(f"{model.name}: only a model of one input and one output can be a layer")
        self.model = model
        self.inner_layers = model.layers  # the model's own list: what sublayers walks
        if trainable is not None:
            self.trainable = trainable
        if model.built:
            self.built, self.device = True, model.device
            self.input_shape, self.output_shape = tuple(model.input_shape), tuple(model.output_shape)
            self.input_shape_hint = self.input_shape  # first in a Sequential, it builds that model

    @property
    def name(self):
        """Its own name if given, else the model's (made unique in the outer model, as a
        layer's default name is: a second nested 'sequential' becomes 'sequential_1')."""
        return self._name or self.model.name

    @property
    def type_name(self):
        """As Keras's summary: (Sequential) or (Functional)."""
        from ..models import Sequential
        return "Sequential" if isinstance(self.model, Sequential) else "Functional"

    @property
    def trainable(self):
        return self.model.trainable

    @trainable.setter
    def trainable(self, value):
        """Freezing the layer freezes the model inside, and the other way round."""
        self._trainable = bool(value)
        self.model.trainable = value

    # --- what a Keras user reaches for on a nested model, from the model inside ------
    @property
    def layers(self):
        """The inner model's layers (Keras: model.get_layer('base').layers)."""
        return self.model.layers

    def get_layer(self, name=None, index=None):
        """One of the inner model's layers, by name or index (Model.get_layer)."""
        return self.model.get_layer(name, index)

    def summary(self, *args, **kwargs):
        """The inner model's summary (Model.summary)."""
        return self.model.summary(*args, **kwargs)

    def get_config(self):
        from ..saving import model_config
        return {**super().get_config(), "trainable": self.model.trainable, "model": model_config(self.model)}

    @property
    def activation_name(self):
        """The inner model's output activation: 'softmax' lets the outer model's loss take
        the logits before it (pre_activation), for the fused cross-entropy."""
        last = self.model.outputs[0].layer if hasattr(self.model, "outputs") else self.model.layers[-1]
        return last.activation_name

    def check_input_shape(self, input_shape):
        if self.model.built and tuple(input_shape) != tuple(self.model.input_shape):
            raise self.error(f"the model inside takes inputs {(None,) + tuple(self.model.input_shape)}",
                             input_shape)

    def build(self, input_shape):
        if not self.model.built:
            self.model.build(input_shape, self.device)

    def compute_output_shape(self, input_shape):
        return tuple(self.model.output_shape)

    def cast_input(self, x):
        return x  # the inner model's first layer casts what it must

    def call(self, x, training):
        return self.model(x, training=training)

    def pre_activation(self, x, training):
        """The inner model's output before its final softmax."""
        output, logits = self.model._forward_logits(x, training)
        return output if logits is None else logits

    def arithmetic(self):
        return [("output", None, self.output_shape, f"the {len(self.inner_layers)} layers of {self.model.name}"),
                ("params", None, self.count_params(), "its layers' weights")]
