"""Keras's Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): every
weight moves by exactly the learning rate, in the direction of the sign of a momentum."""
from .. import backend
from .base import Optimizer, chunked


class Lion(Optimizer):
    """Keras's Lion, one slot (the momentum m):

        w -= lr * sign(beta_1 * m + (1 - beta_1) * g)     (the old m, tilted toward g)
        m  = beta_2 * m + (1 - beta_2) * g                (then m, remembering longer)

    Only the sign of the step is learned: each weight moves by lr or not at all, so the
    update's norm is larger than Adam's and a good rate is 3-10x smaller than AdamW's, with
    3-10x its weight decay for the same lr * weight_decay (Keras's advice). Half Adam's
    memory: no second moment.
    """

    slot_names = ("m",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, decay=0.0, weight_decay=None, lr=None,
                 l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None, **kwargs):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue,
                         **kwargs)
        if not (0 < beta_1 <= 1 and 0 <= beta_2 <= 1):  # beta_1 = 0 would be plain signSGD, as Keras refuses
            raise ValueError(f"Lion: need 0 < beta_1 <= 1 and 0 <= beta_2 <= 1; got {beta_1}, {beta_2}")
        self.beta_1, self.beta_2 = beta_1, beta_2

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        f = w.dtype.type
        for w, g, m in chunked(w, g, self.slots["m"][i]):  # cache-sized pieces
            w -= f(lr) * xp.sign(f(self.beta_1) * m + f(1 - self.beta_1) * g)
            m += f(1 - self.beta_2) * (g - m)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
