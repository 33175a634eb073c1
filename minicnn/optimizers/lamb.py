"""Keras's Lamb (You et al. 2020, "Large Batch Optimization for Deep Learning"): Adam's
step, rescaled per weight array so that its size is the learning rate times the array's
own size."""
from .. import backend
from .adam import Adam


class Lamb(Adam):
    """Keras's Lamb, Adam's slots m and v, and for each weight array w as a whole:

        m, v as Adam's;   u = (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon)
        ratio = ||w|| / ||u||   (1 where either norm is 0: a zero weight still moves)
        w -= lr * ratio * u

    so every array moves by lr * ||w|| in norm, whatever the scale of its gradients: a
    layer with tiny gradients and one with huge ones change by the same fraction, which is
    what lets very large batches (large rates) train stably. The norms are those of the
    weights after decoupled weight decay, as Keras 3 applies it first. On a GPU the ratio
    stays a device array (no host synchronisation). Adam's arguments, checks, slots and
    config; only the rule differs (and has no fused GPU kernel: base.py runs it as array code).
    """

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
