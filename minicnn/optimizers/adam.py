"""Keras's Adam and its kin: per-parameter step sizes from moving averages of g and g^2
(AdamW, Nadam), or of g and the largest recent |g| (Adamax)."""
import numpy

from .. import backend
from .base import Optimizer, chunked


def step_size(lr, beta_1, beta_2, t):
    """Adam's rate at step t, its bias corrections folded in: lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)."""
    return lr * numpy.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)


def adam_step(w, g, m, v, step, beta_1, beta_2, epsilon):
    """Adam's rule in place on w and its slots m, v (all one shape), step from step_size:
    m, v move toward g, g^2, and w -= step * m / (sqrt(v) + epsilon). (Muon's AdamW half too.)"""
    xp = backend.get_array_module(w)
    f = w.dtype.type
    for w, g, m, v in chunked(w, g, m, v):  # cache-sized pieces
        m += f(1 - beta_1) * (g - m)
        v += f(1 - beta_2) * (g * g - v)
        w -= f(step) * m / (xp.sqrt(v) + f(epsilon))


class Adam(Optimizer):
    """Keras's Adam: m, v moving averages of g and g^2, and
    w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, decay=0.0,
                 weight_decay=None, lr=None, l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None, **kwargs):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue,
                         **kwargs)
        if not (0 <= beta_1 < 1 and 0 <= beta_2 < 1 and epsilon > 0):
            raise ValueError(f"{type(self).__name__}: need 0 <= beta_1, beta_2 < 1 and epsilon > 0; "
                             f"got {beta_1}, {beta_2}, {epsilon}")
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _step_size(self, lr):
        """lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), t the step about to be taken."""
        return step_size(lr, self.beta_1, self.beta_2, self.iterations + 1)

    def _update(self, i, w, g, lr):
        adam_step(w, g, self.slots["m"][i], self.slots["v"][i], self._step_size(lr), self.beta_1, self.beta_2,
                  self.epsilon)

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
                 decay=0.0, lr=None, l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number (use Adam for none)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, decay, weight_decay, lr, l2, clipnorm,
                         global_clipnorm, clipvalue, **kwargs)


class Nadam(Adam):
    """Keras's Nadam (Dozat 2016): Adam with Nesterov's momentum, the gradient's share
    taken "ahead", and the momentum warmed up over training by the schedule
    u_t = beta_1 * (1 - 0.5 * 0.96^(0.004 t)) (PyTorch's NAdam with momentum_decay 0.004):

        m, v as Adam's;   P_t = u_1 * u_2 * ... * u_t
        m_hat = u_{t+1} * m / (1 - P_{t+1}) + (1 - u_t) * g / (1 - P_t)
        w -= lr * m_hat / (sqrt(v / (1 - beta_2^t)) + epsilon)
    """

    def _momentum_schedule(self):
        """(u_t, u_{t+1}, P_t, P_{t+1}) for t the step about to be taken. P_t is a running
        product: from the last step's when there is one, else (after a resume) multiplied
        out again in the same order, so a resumed run takes an unbroken run's steps."""
        def u(step):
            return self.beta_1 * (1 - 0.5 * 0.96 ** (0.004 * step))
        t = self.iterations + 1
        known_t, product = getattr(self, "_products", (0, 1.0))
        if known_t == t - 1:
            product *= u(t)
        elif known_t != t:
            product = 1.0
            for step in range(1, t + 1):
                product *= u(step)
        self._products = (t, product)
        return u(t), u(t + 1), product, product * u(t + 1)

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        f = w.dtype.type
        u_t, u_next, product, product_next = self._momentum_schedule()
        t = self.iterations + 1
        m_share, g_share = f(lr * u_next / (1 - product_next)), f(lr * (1 - u_t) / (1 - product))
        unbias_v = f(1 / (1 - self.beta_2 ** t))
        for w, g, m, v in chunked(w, g, self.slots["m"][i], self.slots["v"][i]):  # cache-sized pieces
            m += f(1 - self.beta_1) * (g - m)
            v += f(1 - self.beta_2) * (g * g - v)
            w -= (m_share * m + g_share * g) / (xp.sqrt(v * unbias_v) + f(self.epsilon))

    def _update_all_fused(self, kernels, tensors):
        """The rule above for every parameter, in a few GPU kernels (fast_gpu_updates): each
        parameter's two shares of its own rate, as _update computes them."""
        u_t, u_next, product, product_next = self._momentum_schedule()
        unbias_v = 1 / (1 - self.beta_2 ** (self.iterations + 1))
        kernels.nadam_update([(w, g, slots, (rate * u_next / (1 - product_next), rate * (1 - u_t) / (1 - product)),
                               decay, l2) for w, g, slots, rate, decay, l2 in tensors],
                             1 - self.beta_1, 1 - self.beta_2, self.epsilon, unbias_v)


class Adamax(Adam):
    """Keras's Adamax (Kingma & Ba 2015, section 7): Adam with the infinity norm in place
    of the root mean square, so a step is never larger than lr / (1 - beta_1^t):

        m = beta_1 * m + (1 - beta_1) * g                    (slot "m")
        u = max(beta_2 * u, |g|)                             (slot "u": no bias to correct)
        w -= lr / (1 - beta_1^t) * m / (u + epsilon)
    """

    slot_names = ("m", "u")

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        f = w.dtype.type
        step = f(lr / (1 - self.beta_1 ** (self.iterations + 1)))
        for w, g, m, u in chunked(w, g, self.slots["m"][i], self.slots["u"][i]):  # cache-sized pieces
            m += f(1 - self.beta_1) * (g - m)
            xp.maximum(u * f(self.beta_2), xp.abs(g), out=u)
            w -= step * m / (u + f(self.epsilon))

    def _update_all_fused(self, kernels, tensors):
        """The rule above for every parameter, in a few GPU kernels (fast_gpu_updates)."""
        kernels.adamax_update([(w, g, slots, rate / (1 - self.beta_1 ** (self.iterations + 1)), decay, l2)
                               for w, g, slots, rate, decay, l2 in tensors],
                              1 - self.beta_1, self.beta_2, self.epsilon)
