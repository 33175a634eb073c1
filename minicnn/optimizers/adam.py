"""Keras's Adam: per-parameter step sizes from moving averages of g and g^2."""
import numpy

from .. import backend
from .base import Optimizer, chunked


class Adam(Optimizer):
    """Keras's Adam: m, v moving averages of g and g^2, and
    w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, decay=0.0,
                 weight_decay=None, lr=None, l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue)
        if not (0 <= beta_1 < 1 and 0 <= beta_2 < 1 and epsilon > 0):
            raise ValueError(f"Adam: need 0 <= beta_1, beta_2 < 1 and epsilon > 0; "
                             f"got {beta_1}, {beta_2}, {epsilon}")
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _step_size(self, lr):
        """lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), t the step about to be taken."""
        t = self.iterations + 1
        return lr * numpy.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        step = self._step_size(lr)
        for w, g, m, v in chunked(w, g, self.slots["m"][i], self.slots["v"][i]):  # cache-sized pieces
            m += w.dtype.type(1 - self.beta_1) * (g - m)
            v += w.dtype.type(1 - self.beta_2) * (g * g - v)
            w -= w.dtype.type(step) * m / (xp.sqrt(v) + w.dtype.type(self.epsilon))

    def _update_all_fused(self, kernels, tensors):
        """The rule above for every parameter, in a few GPU kernels (fast_gpu_updates)."""
        kernels.adam_update([(w, g, slots, self._step_size(rate), decay, l2)
                             for w, g, slots, rate, decay, l2 in tensors],
                            1 - self.beta_1, 1 - self.beta_2, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Keras's AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay on by
    default, w -= lr * weight_decay * w each step beside Adam's update (base.py applies it,
    as it does for any optimizer given weight_decay). Keras's default decay 0.004."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 decay=0.0, lr=None, l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number (use Adam for none)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, decay, weight_decay, lr, l2, clipnorm,
                         global_clipnorm, clipvalue)
