"""BatchNormalization over the last axis (features of (N, D), channels of (N, H, W, C)),
LayerNormalization, each example over its own axes, and GroupNormalization, each example
over groups of its channels."""
from .. import backend, functional as F
from ..autograd import Tensor
from .base import Layer, _named, initializer_option


class BatchNormalization(Layer):
    """Keras semantics: in training, normalise with the batch's mean and variance and
    update moving = moving * momentum + batch * (1 - momentum); in inference use the
    moving averages.

    With ``trainable = False`` it runs in inference mode even in training, as Keras's.

    Weights (Keras order): ``gamma`` (C,) ones and ``beta`` (C,) zeros, trained;
    ``moving_mean`` (C,) zeros and ``moving_variance`` (C,) ones, state (non-trainable).
    Under a mixed policy all four stay float32 and so does the arithmetic (a float16 input
    is widened, the output narrowed back): sums over a whole batch lose too much in float16.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError("BatchNormalization: only axis=-1 (channels-last) is supported, "
                             f"got axis={axis!r}")
        if not 0 <= momentum <= 1 or epsilon <= 0:
            raise ValueError(f"BatchNormalization: need 0 <= momentum <= 1 and epsilon > 0, "
                             f"got momentum={momentum}, epsilon={epsilon}")
        self.momentum, self.epsilon, self.center, self.scale = momentum, epsilon, center, scale
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None
        self.sync = None  # a distributed.Communicator: statistics over every rank (sync_batchnorm)

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1:
            raise self.error("expects input of rank >= 2 (batch, ..., features)", input_shape)
        if self.built and input_shape[-1] != self.moving_mean.shape[0]:
            raise self.error(f"expects {self.moving_mean.shape[0]} features on the last axis",
                             input_shape)

    def build(self, input_shape):
        channels = (input_shape[-1],)
        if self.scale:
            self.gamma = self.add_weight("gamma", channels, "ones")
        if self.center:
            self.beta = self.add_weight("beta", channels, "zeros")
        self.moving_mean = self.add_weight("moving_mean", channels, "zeros", trainable=False)
        self.moving_variance = self.add_weight("moving_variance", channels, "ones", trainable=False)

    def arithmetic(self):
        trained = [name for name, w in (("gamma", self.gamma), ("beta", self.beta)) if w is not None]
        per_feature = len(trained) + 2
        return [("output", None, "shape unchanged", ""),
                ("params", f"{per_feature}*{self.input_shape[-1]}", self.count_params(),
                 f"{', '.join(trained + ['moving mean', 'moving variance'])} per feature; "
                 f"the moving averages are not trained")]

    def call(self, x, training):
        # Frozen (trainable=False), it runs in inference mode, as Keras's does since TF 2.0:
        # fine-tuning a model above a frozen base must not move the base's statistics.
        training = training and self._trainable
        # scale=False / center=False: a constant 1 / 0 on the same device, not a weight
        gamma = self.gamma if self.gamma is not None else Tensor(self.moving_mean.data * 0 + 1)
        beta = self.beta if self.beta is not None else Tensor(self.moving_mean.data * 0)
        if x.dtype != self.dtype:  # mixed precision: the statistics in float32, the output float16
            x = x.astype(self.dtype)
        y = F.batch_norm(x, gamma, beta, self.moving_mean, self.moving_variance,
                         self.momentum, self.epsilon, training, comm=self.sync)
        return y.astype(self.compute_dtype) if y.dtype != self.compute_dtype else y

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


class LayerNormalization(Layer):
    """Keras's LayerNormalization: each example normalised over ``axis`` (by default the
    last: the channels at each pixel, the features of a vector), then scaled by ``gamma``
    and shifted by ``beta``, both shaped as the input along those axes. The same in
    training and inference: nothing is averaged over the batch (functions/layer_norm.py).

    axis: an int or a list of them, counted on the whole input (N, ...) as Keras does; the
    batch axis 0 cannot be one. As in BatchNormalization, a float16 input is normalised in
    float32 and the output narrowed back.
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        if not axes or not all(isinstance(a, int) for a in axes) or len(set(axes)) != len(axes):
            raise ValueError(f"LayerNormalization: axis must be an int or a list of distinct ints, got {axis!r}")
        if 0 in axes:
            raise ValueError("LayerNormalization: axis 0 is the batch; normalising across examples is "
                             "BatchNormalization's job")
        if epsilon <= 0:
            raise ValueError(f"LayerNormalization: epsilon must be > 0, got {epsilon}")
        self.axis, self.epsilon, self.center, self.scale = axis, epsilon, center, scale
        self.beta_initializer = initializer_option(beta_initializer)
        self.gamma_initializer = initializer_option(gamma_initializer)
        self.gamma = self.beta = None

    def axes(self, input_shape):
        """The normalised axes of the whole input (N, *input_shape), as non-negative ints."""
        rank = len(input_shape) + 1
        axes = (self.axis,) if isinstance(self.axis, int) else tuple(self.axis)
        if not all(-rank <= a < rank for a in axes) or any(a % rank == 0 for a in axes):
            raise self.error(f"axis {self.axis!r} is not an axis of the input other than the batch",
                             input_shape)
        return tuple(sorted(a % rank for a in axes))

    def param_shape(self, input_shape):
        return tuple(input_shape[a - 1] for a in self.axes(input_shape))

    def check_input_shape(self, input_shape):
        shape = self.param_shape(input_shape)
        if self.built and shape != self.param_shape(self.input_shape):
            raise self.error(f"expects sizes {self.param_shape(self.input_shape)} on axis {self.axis!r} (it was "
                             f"built for {(None,) + self.input_shape})", input_shape)

    def build(self, input_shape):
        shape = self.param_shape(input_shape)
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer)
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer)

    def arithmetic(self):
        shape = self.param_shape(self.input_shape)
        trained = [name for name, w in (("gamma", self.gamma), ("beta", self.beta)) if w is not None]
        size = "*".join(str(s) for s in shape)
        return [("output", None, "shape unchanged", "each example's mean and variance over axis "
                 f"{self.axis!r}, none over the batch"),
                ("params", f"{len(trained)}*{size}", self.count_params(),
                 f"{', '.join(trained) or 'nothing'} per normalised position")]

    def call(self, x, training):
        axes = self.axes(x.shape[1:])
        if x.dtype != self.dtype:  # mixed precision: the statistics in float32, the output float16
            x = x.astype(self.dtype)
        gamma, beta = self.gamma, self.beta
        if gamma is None or beta is None:
            xp = backend.get_array_module(x.data)
            shape = self.param_shape(x.shape[1:])
            gamma = gamma if gamma is not None else Tensor(xp.ones(shape, dtype=x.dtype))
            beta = beta if beta is not None else Tensor(xp.zeros(shape, dtype=x.dtype))
        y = F.layer_norm(x, gamma, beta, axes, self.epsilon)
        return y.astype(self.compute_dtype) if y.dtype != self.compute_dtype else y

    def get_config(self):
        axis = self.axis if isinstance(self.axis, int) else list(self.axis)
        return {**super().get_config(), "axis": axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "beta_initializer": _named(self.beta_initializer, "zeros"),
                "gamma_initializer": _named(self.gamma_initializer, "ones")}


class GroupNormalization(Layer):
    """Keras's GroupNormalization (Wu and He, 2018): each example's channels split into
    ``groups`` groups of C / groups, each group normalised over its channels and every
    position together, then a per-channel ``gamma`` and ``beta`` (C,). groups=1 is a layer
    norm over the whole image; groups=C normalises each channel of each image on its own
    (instance normalisation). Like LayerNormalization it uses no batch statistics, so it
    trains as well at batch 2 as at 256. Channels last (axis=-1) only.

    The arithmetic: x (N, ..., C) viewed as (N, ..., groups, C / groups), F.layer_norm over
    every axis of that but the batch and the group axis (with gamma 1, beta 0), back to x's
    shape, then gamma and beta per channel.
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"GroupNormalization: groups must be a positive int, got {groups!r}")
        if axis != -1:
            raise ValueError(f"GroupNormalization: only axis=-1 (channels-last) is supported, got axis={axis!r}")
        if epsilon <= 0:
            raise ValueError(f"GroupNormalization: epsilon must be > 0, got {epsilon}")
        self.groups, self.axis, self.epsilon, self.center, self.scale = groups, axis, epsilon, center, scale
        self.beta_initializer = initializer_option(beta_initializer)
        self.gamma_initializer = initializer_option(gamma_initializer)
        self.gamma = self.beta = None

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1 or input_shape[-1] % self.groups:
            raise self.error(f"the channels must divide into its {self.groups} groups", input_shape)
        if self.built and input_shape[-1] != self.input_shape[-1]:
            raise self.error(f"expects {self.input_shape[-1]} channels", input_shape)

    def build(self, input_shape):
        channels = (input_shape[-1],)
        if self.scale:
            self.gamma = self.add_weight("gamma", channels, self.gamma_initializer)
        if self.center:
            self.beta = self.add_weight("beta", channels, self.beta_initializer)

    def arithmetic(self):
        C = self.input_shape[-1]
        trained = [name for name, w in (("gamma", self.gamma), ("beta", self.beta)) if w is not None]
        return [("output", None, "shape unchanged", f"each example's {self.groups} groups of {C // self.groups} "
                 "channels normalised alone"),
                ("params", f"{len(trained)}*{C}", self.count_params(), f"{', '.join(trained) or 'nothing'} per channel")]

    def call(self, x, training):
        if x.dtype != self.dtype:  # mixed precision: the statistics in float32, the output float16
            x = x.astype(self.dtype)
        shape, C = x.shape, x.shape[-1]
        grouped = x.reshape(*shape[:-1], self.groups, C // self.groups)
        axes = tuple(a for a in range(1, grouped.ndim) if a != grouped.ndim - 2)  # all but batch and group
        xp = backend.get_array_module(x.data)
        sizes = tuple(grouped.shape[a] for a in axes)
        ones, zeros = Tensor(xp.ones(sizes, dtype=x.dtype)), Tensor(xp.zeros(sizes, dtype=x.dtype))
        y = F.layer_norm(grouped, ones, zeros, axes, self.epsilon).reshape(*shape)
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y.astype(self.compute_dtype) if y.dtype != self.compute_dtype else y

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": _named(self.beta_initializer, "zeros"),
                "gamma_initializer": _named(self.gamma_initializer, "ones")}

