"""BatchNormalization over the last axis (features of (N, D), channels of (N, H, W, C))."""
from .. import functional as F
from ..autograd import Tensor
from .base import Layer


class BatchNormalization(Layer):
    """Keras semantics: in training, normalise with the batch's mean and variance and
    update moving = moving * momentum + batch * (1 - momentum); in inference use the
    moving averages.

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
