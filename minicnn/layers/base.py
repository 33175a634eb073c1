"""The Layer base class: weights registered automatically, built lazily from the
first input (like Keras), train/eval mode, Keras-ordered get/set_weights."""
import re

import numpy

from .. import backend, constraints, initializers, mixed_precision, regularizers, symbolic
from ..autograd import Tensor, no_grad
from ..random import new_seed


def _snake(name):
    """Keras's default layer names: 'Conv2DTranspose' -> 'conv2d_transpose', 'ReLU' -> 're_lu'."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower().replace("2_d", "2d")


def weight_options_config(layer):
    """The initializer, constraint and regularizer arguments of Conv2D and Dense, as
    JSON-able config."""
    return {"kernel_initializer": _named(layer.kernel_initializer),
            "bias_initializer": _named(layer.bias_initializer),
            "kernel_constraint": constraints.serialize(layer.kernel_constraint),
            "bias_constraint": constraints.serialize(layer.bias_constraint),
            "kernel_regularizer": regularizers.serialize(layer.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(layer.bias_regularizer)}


def set_weight_options(layer, kernel_initializer, bias_initializer, kernel_constraint, bias_constraint,
                       kernel_regularizer, bias_regularizer):
    """Store Conv2D's and Dense's weight arguments (names or objects) on the layer."""
    layer.kernel_initializer, layer.bias_initializer = initializer_option(kernel_initializer), initializer_option(
        bias_initializer)
    layer.kernel_constraint = constraints.get(kernel_constraint)
    layer.bias_constraint = constraints.get(bias_constraint)
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)


def initializer_option(value):
    """An initializer argument checked now, as Keras does (an unknown name raises here, not at
    build): a name stays a name, to be saved as one; a saved config becomes its object."""
    resolved = initializers.get(value)
    return value if isinstance(value, str) else resolved


def _named(initializer, default="glorot_uniform"):
    """Initializers are saved by name, or an Initializer object by its config; a function
    of the user's own as the weight's default (its values are in the saved weights anyway)."""
    return initializers.serialize(initializer) or default


class RandomStream:
    """For layers that draw random numbers (Dropout, the Random* augmentation layers): a
    Generator of the layer's own on its device. ``fit`` reseeds it every epoch from the
    run's seed (Model.reseed), or from the layer's own ``seed`` where one was given, so a
    resumed run draws what an uninterrupted one would have."""

    def start_random_stream(self, seed):
        self._stream_seed, self._rng = seed, None

    def reseed(self, seed):
        """Restart this layer's random stream from ``seed`` (``fit`` does so every epoch)."""
        self._stream_seed, self._rng = seed, None

    def rng(self, like):
        """This layer's Generator on the device of ``like`` (created on first use)."""
        module = backend.get_array_module(like)
        if self._rng is None or self._rng[0] is not module:
            if self._stream_seed is None:
                self._stream_seed = new_seed()
            self._rng = (module, backend.default_rng(self._stream_seed, module))
        return self._rng[1]


class Layer:
    """Subclasses define ``build(input_shape)`` (create weights with ``add_weight``),
    ``compute_output_shape(input_shape)``, ``check_input_shape(input_shape)`` and
    ``call(x, training)``. Shapes given to these exclude the batch axis.

    dtype: a dtype policy (mixed_precision.py) or its name, "float32" unless the global
    policy says otherwise. ``self.dtype`` is the dtype of the weights, ``self.compute_dtype``
    the dtype of the arithmetic and the output: the same but under "mixed_float16"."""

    activation_name = None  # layers that end in an activation say which

    def __init__(self, name=None, input_shape=None, trainable=True, dtype=None):
        self._name = name
        self.input_shape_hint = tuple(input_shape) if input_shape is not None else None
        self._trainable = trainable
        self.dtype_policy = mixed_precision.get(dtype)
        self.dtype = self.dtype_policy.variable_dtype
        self.compute_dtype = self.dtype_policy.compute_dtype
        self.built = False
        self.training = True
        self.input_shape = None  # per-example shape the layer was built for
        self.output_shape = None
        self.device = None
        self._weights = []

    # --- identity ----------------------------------------------------------
    @property
    def name(self):
        return self._name or _snake(type(self).__name__)

    @property
    def type_name(self):
        """What a summary prints in brackets after the name: the class's name."""
        return type(self).__name__

    def describe(self):
        return f"{self.type_name} '{self.name}'"

    def error(self, message, input_shape=None):
        shape = f" (got input shape {(None,) + tuple(input_shape)})" if input_shape is not None else ""
        return ValueError(f"{self.describe()}: {message}{shape}")

    def require_images(self, input_shape):
        """Raise unless the input is a batch of images (N, H, W, C): input_shape (H, W, C)."""
        if len(input_shape) != 3:
            raise self.error("expects input of rank 4 (batch, height, width, channels)", input_shape)

    # --- weights -------------------------------------------------------------
    def add_weight(self, name, shape, initializer, trainable=True, constraint=None):
        """Create, register and return a weight Tensor on the layer's device."""
        host = initializers.get(initializer)(tuple(shape), self.dtype)
        weight = Tensor(backend.to_device(host, self.device), requires_grad=trainable and self._trainable,
                        name=f"{self.name}/{name}")
        weight.trainable, weight.constraint = trainable, constraint
        self._weights.append(weight)
        return weight

    def compute_weight(self, weight):
        """A weight as ``call`` computes with it: itself, or under a mixed policy its
        float16 copy, a differentiable cast whose gradient arrives in the weight's float32."""
        if weight is None or weight.dtype == self.compute_dtype:
            return weight
        return weight.astype(self.compute_dtype)

    def __setattr__(self, name, value):
        """Assign as usual, and note the name if the value may hold sub-layers: a layer, a
        list (it may be filled later) or a tuple with a layer in it. As in PyTorch's Module,
        walking the layer tree (every training step does, for the regularizers' penalties)
        then reads those few attributes instead of testing each of a layer's twenty-odd."""
        object.__setattr__(self, name, value)
        holders = self.__dict__.setdefault("_sublayer_holders", set())
        if isinstance(value, (Layer, list)) or (isinstance(value, tuple) and any(isinstance(v, Layer) for v in value)):
            holders.add(name)
        else:
            holders.discard(name)

    def __delattr__(self, name):
        object.__delattr__(self, name)
        self.__dict__.get("_sublayer_holders", set()).discard(name)

    @property
    def sublayers(self):
        """Layers this layer owns as attributes (or in lists of them), in the order they
        were assigned: a residual block written as a class holds its convolutions so."""
        found, attributes = [], self.__dict__
        holders = attributes.get("_sublayer_holders", ())
        for name, value in attributes.items():
            if name in holders:  # a set lookup per attribute: cheap beside isinstance
                items = value if isinstance(value, (list, tuple)) else (value,)
                found += [item for item in items if isinstance(item, Layer)]
        return found

    @property
    def weights(self):
        """Its own weights, then its sub-layers' (so an optimizer and a saved file see them)."""
        return list(self._weights) + [w for layer in self.sublayers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for w in self.weights if w.requires_grad]

    @property
    def non_trainable_weights(self):
        return [w for w in self.weights if not w.requires_grad]

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freeze (False) or unfreeze the layer; state such as moving averages stays untrained."""
        self._trainable = bool(value)
        for w in self._weights:
            w.requires_grad = self._trainable and w.trainable
        for layer in self.sublayers:
            layer.trainable = value

    def count_params(self):
        return sum(w.size for w in self.weights)

    def arithmetic(self):
        """How this layer's output shape and parameter count follow from its input shape,
        for ``model.summary(arithmetic=True)``: a list of (what, expression, value, note).
        An expression is valid Python (with ``floor`` = math.floor) that evaluates to
        value, or None where there is nothing to compute. Subclasses with a shape rule
        or weights override this; the default is a layer that keeps its input's shape."""
        return [("output", None, "shape unchanged", ""), ("params", None, self.count_params(), "no weights")]

    def get_weights(self):
        """Host (NumPy) copies of the weights, in Keras's order and shapes."""
        return [backend.to_numpy(w.data).copy() for w in self.weights]

    def set_weights(self, arrays):
        """Copy arrays into the weights in place (so optimizers keep their references)."""
        weights = self.weights
        if len(arrays) != len(weights):
            raise ValueError(f"{self.describe()} has {len(weights)} weights "
                             f"({[w.name for w in weights]}), got {len(arrays)} arrays")
        for w, array in zip(weights, arrays):
            if tuple(array.shape) != w.shape:
                raise ValueError(f"{self.describe()}: weight {w.name} has shape {w.shape}, "
                                 f"got an array of shape {tuple(array.shape)}")
            w.data[...] = backend.to_device(array, backend.device_of(w.data), dtype=w.dtype)

    def to(self, device):
        """Move the weights explicitly to 'cpu' or 'gpu'."""
        for w in self._weights:
            w.data = backend.to_device(w.data, device)
            w.grad = None
        for layer in self.sublayers:
            layer.to(device)
        if self.built:
            self.device = device
        return self

    # --- building and calling ----------------------------------------------------
    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (no batch axis)."""

    def compute_output_shape(self, input_shape):
        """The output shape (no batch axis). A layer made of sub-layers finds it by running
        itself once on one sample of zeros (which also builds the sub-layers); others keep
        their input's shape unless they say otherwise."""
        if self.sublayers:
            xp = backend.get_array_module(backend.to_device(numpy.zeros(1), self.device))
            with no_grad():
                out = self.call(Tensor(xp.zeros((1,) + tuple(input_shape), dtype=self.compute_dtype)), False)
            return tuple(out.shape[1:])
        return tuple(input_shape)

    def check_input_shape(self, input_shape):
        """Raise ``self.error(...)`` when an input of this shape cannot work."""

    def build_for(self, input_shape, device=None):
        """Validate ``input_shape``, build on first use, return the output shape."""
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        if not self.built:
            self.device = device or backend.get_device()
            self.build(input_shape)
            self.built, self.input_shape = True, input_shape
            self.output_shape = self.compute_output_shape(input_shape)
        return self.compute_output_shape(input_shape)

    def __call__(self, x, training=None):
        """x: Tensor (batch, ...) -> Tensor. ``training`` overrides the layer's mode.
        On a Symbol (functional API) it records the call and returns a Symbol."""
        if symbolic.is_symbolic(x):
            return symbolic.call(self, x)
        if not isinstance(x, Tensor):
            x = Tensor(x)
        x = self.cast_input(x)
        if self.built and x.device != self.device:
            raise TypeError(f"{self.describe()}: weights are on {self.device} but the input is on "
                            f"{x.device}; move one of them explicitly (model.to(...), backend.to_device)")
        shape = x.shape[1:]
        if not (self.built and shape == self.input_shape):  # that shape was checked at the build
            self.build_for(shape, x.device)
        return self.call(x, self.training if training is None else training)

    def call(self, x, training):
        raise NotImplementedError

    def takes_dtype(self, dtype):
        """True if an input of ``dtype`` is taken (cast to compute_dtype where it differs).
        Only two casts are made unasked, both as Keras makes them: a layer under a mixed
        policy narrows float32 to its float16, and a float32 layer widens float16 (the
        output of a mixed layer) without loss. Anything else (float64 to float32, integer
        images) is refused: converting silently would hide a mistake."""
        dtype = numpy.dtype(dtype)
        if dtype == self.compute_dtype:
            return True
        narrows = self.dtype_policy.is_mixed and dtype == self.dtype
        widens = dtype == numpy.float16 and self.compute_dtype == numpy.float32
        return narrows or widens

    def cast_input(self, x):
        """x (a Tensor) in compute_dtype, or a TypeError naming the dtypes (takes_dtype)."""
        if x.dtype == self.compute_dtype:
            return x
        if not self.takes_dtype(x.dtype):
            raise TypeError(f"{self.describe()}: input dtype is {x.dtype} but the layer computes in "
                            f"{self.compute_dtype}; cast the input explicitly or create the layer with "
                            f"dtype='{x.dtype}'")
        return x.astype(self.compute_dtype)

    def regularization_losses(self):
        """The penalties of this layer's (and its sub-layers') regularizers on their current
        weights (Tensors)."""
        own = [penalty(w) for penalty, w in self.regularized_weights()
               if penalty is not None and w is not None and w.requires_grad]
        return own + [p for layer in self.sublayers for p in layer.regularization_losses()]

    def regularized_weights(self):
        """(regularizer or None, weight) pairs: Conv2D's and Dense's kernel and bias; a layer
        whose weights have other names (DepthwiseConv2D) lists its own."""
        return [(getattr(self, "kernel_regularizer", None), getattr(self, "kernel", None)),
                (getattr(self, "bias_regularizer", None), getattr(self, "bias", None))]

    def get_config(self):
        return {"name": self.name, "trainable": self._trainable, "dtype": self.dtype_policy.name}

    @classmethod
    def from_config(cls, config):
        """A new layer, not built, from ``get_config()``'s dict (Keras's)."""
        return cls(**config)

    def __repr__(self):
        return f"<{self.describe()}, built={self.built}>"
