"""Keras's Adafactor (Shazeer & Stern 2018): Adam's second moment kept as the average of
each row and each column, not of each weight, and steps sized relative to the weights."""
from .. import backend
from .base import Optimizer


def _rms(x):
    """The root mean square of an array, as an array (0-d: no host synchronisation)."""
    xp = backend.get_array_module(x)
    return xp.sqrt(xp.mean(x * x))


class Adafactor(Optimizer):
    """Keras's Adafactor. With t the step about to be taken and G = g^2 + epsilon_1:

        rho   = min(lr, 1 / sqrt(t))                 the rate, decaying by itself
        alpha = max(epsilon_2, rms(w)) * rho         the step's size, relative to the weights'
        b     = 1 - t^beta_2_decay                   0 at the first step: no bias to correct
        w of 2 dims or more (factored over its last two, as Keras: a kernel (kh, kw, in, out)
        gets one row and one column average per (kh, kw) position):
            r = b * r + (1 - b) * mean(G, last axis)          slot "r", shape w.shape[:-1]
            c = b * c + (1 - b) * mean(G, second-last axis)   slot "c", w.shape[:-2] + w.shape[-1:]
            v = (r / mean(r, last axis))[..., None] * c[..., None, :]
        w of fewer dims:
            v = b * v + (1 - b) * G                           slot "v", w's shape
        u = g / sqrt(v);   w -= alpha * u / max(1, rms(u) / clip_threshold)

    The factored v is rebuilt from r and c every step, so it is not kept: a (in, out)
    kernel's second moment costs in + out numbers, not in * out. The unused slots of a
    weight are 0-d placeholders (Keras's too). Keras 3 clamps the rate to 1 / sqrt(t)
    whether or not relative_step is set; so does this, and relative_step is kept only for
    the config. Adafactor has no momentum (Keras's has no beta_1). One departure: v is
    floored at the dtype's smallest normal number before the root, so a float32 gradient
    with a zero row and a zero column gives a zero step there, not Keras's NaN.
    """

    slot_names = ("r", "c", "v")

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                 clip_threshold=1.0, relative_step=True, decay=0.0, weight_decay=None, lr=None, l2=0.0,
                 clipnorm=None, global_clipnorm=None, clipvalue=None, **kwargs):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue,
                         **kwargs)
        if not (beta_2_decay < 0 and epsilon_1 > 0 and epsilon_2 >= 0 and clip_threshold > 0):
            raise ValueError(f"Adafactor: need beta_2_decay < 0, epsilon_1 > 0, epsilon_2 >= 0 and "
                             f"clip_threshold > 0; got {beta_2_decay}, {epsilon_1}, {epsilon_2}, {clip_threshold}")
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = beta_2_decay, epsilon_1, epsilon_2
        self.clip_threshold, self.relative_step = clip_threshold, bool(relative_step)

    def new_slot(self, name, p):
        """r and c for a weight of 2 dims or more, v for one of fewer; 0-d zeros otherwise."""
        shape = p.data.shape
        if name == "r" and len(shape) >= 2:
            shape = shape[:-1]
        elif name == "c" and len(shape) >= 2:
            shape = shape[:-2] + shape[-1:]
        elif name in ("r", "c") or (name == "v" and len(shape) >= 2):
            shape = ()
        else:  # v of a 1-d weight, or use_ema's average
            return super().new_slot(name, p)
        return backend.get_array_module(p.data).zeros(shape, p.data.dtype)

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        f = w.dtype.type
        t = self.iterations + 1
        rho = min(lr, t ** -0.5)
        alpha = xp.maximum(f(self.epsilon_2), _rms(w)) * f(rho)
        squared = g * g + f(self.epsilon_1)
        b = f(1 - t ** self.beta_2_decay)
        if w.ndim >= 2:
            r, c = self.slots["r"][i], self.slots["c"][i]
            r[...] = b * r + (1 - b) * xp.mean(squared, axis=-1)
            c[...] = b * c + (1 - b) * xp.mean(squared, axis=-2)
            v = (r / xp.mean(r, axis=-1, keepdims=True))[..., None] * c[..., None, :]
        else:
            v = self.slots["v"][i]
            v[...] = b * v + (1 - b) * squared
        # floored at the dtype's smallest normal number: where a whole row and a whole column
        # of g are 0 (a dead ReLU filter fed by a dead channel), v is about 1e-30 * 1e-30 /
        # mean(r), which is 0 in float32, and Keras's g / sqrt(v) would be 0 / 0 = NaN there.
        u = g / xp.sqrt(xp.maximum(v, f(xp.finfo(w.dtype).tiny)))
        w -= alpha * u / xp.maximum(f(1), _rms(u) / f(self.clip_threshold))

    def get_config(self):
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step}
