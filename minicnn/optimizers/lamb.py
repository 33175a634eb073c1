"""Keras's Lamb (You et al. 2020, "Large Batch Optimization for Deep Learning"): Adam's
step, rescaled per weight array so that its size is the learning rate times the array's
own size."""
from .. import backend
from .base import Optimizer


class Lamb(Optimizer):
    """Keras's Lamb, Adam's slots m and v, and for each weight array w as a whole:

        m, v as Adam's;   u = (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon)
        ratio = ||w|| / ||u||   (1 where either norm is 0: a zero weight still moves)
        w -= lr * ratio * u

    so every array moves by lr * ||w|| in norm, whatever the scale of its gradients: a
    layer with tiny gradients and one with huge ones change by the same fraction, which is
    what lets very large batches (large rates) train stably. The norms are those of the
    weights after decoupled weight decay, as Keras 3 applies it first. On a GPU the ratio
    stays a device array (no host synchronisation).
    """

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, decay=0.0,
                 weight_decay=None, lr=None, l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None, **kwargs):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue,
                         **kwargs)
        if not (0 <= beta_1 < 1 and 0 <= beta_2 < 1 and epsilon > 0):
            raise ValueError(f"Lamb: need 0 <= beta_1, beta_2 < 1 and epsilon > 0; "
                             f"got {beta_1}, {beta_2}, {epsilon}")
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        f = w.dtype.type
        t = self.iterations + 1
        m, v = self.slots["m"][i], self.slots["v"][i]
        m += f(1 - self.beta_1) * (g - m)
        v += f(1 - self.beta_2) * (g * g - v)
        u = (m / f(1 - self.beta_1 ** t)) / (xp.sqrt(v / f(1 - self.beta_2 ** t)) + f(self.epsilon))
        w_norm, u_norm = xp.sqrt(xp.sum(w * w)), xp.sqrt(xp.sum(u * u))
        both = (w_norm > 0) & (u_norm > 0)
        ratio = xp.where(both, w_norm / xp.where(both, u_norm, f(1)), f(1))  # no 0/0 where either is 0
        w -= f(lr) * ratio * u

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
