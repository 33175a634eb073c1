"""Keras's RMSprop: each weight's step divided by the root of its recent squared gradients."""
from .. import backend
from .base import Optimizer, chunked


class RMSprop(Optimizer):
    """Keras's RMSprop (Hinton 2012; the optimizer of Keras's own CIFAR-10 CNN example):

        v = rho * v + (1 - rho) * g^2                      (slot "velocity")
        step = lr * g / sqrt(v + epsilon)                  (epsilon inside the root, as Keras)
        w -= step, or with momentum: m = momentum * m + step; w -= m   (slot "momentum")

    centered=True also keeps the mean gradient a = rho * a + (1 - rho) * g (slot
    "average_gradient") and divides by sqrt(v - a^2 + epsilon), the gradient's variance
    rather than its second moment. Unlike Adam there is no bias correction: v starts at 0,
    so the first steps are large (lr / sqrt(1 - rho), about 3.2 lr, for rho 0.9).
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, decay=0.0,
                 weight_decay=None, lr=None, l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None, **kwargs):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue,
                         **kwargs)
        if not (0 <= rho < 1 and 0 <= momentum < 1 and epsilon > 0):
            raise ValueError(f"RMSprop: need 0 <= rho < 1, 0 <= momentum < 1 and epsilon > 0; "
                             f"got {rho}, {momentum}, {epsilon}")
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, bool(centered)
        # only the state this configuration uses, as Keras
        self.slot_names = ("velocity",) + (("momentum",) if momentum else ()) + \
            (("average_gradient",) if self.centered else ())

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        f = w.dtype.type
        rho, eps = f(self.rho), f(self.epsilon)
        slots = [self.slots[name][i] for name in self.slot_names]
        for w, g, v, *rest in chunked(w, g, *slots):  # cache-sized pieces
            v *= rho
            v += f(1 - self.rho) * (g * g)
            if self.centered:
                a = rest[-1]
                a *= rho
                a += f(1 - self.rho) * g
                step = f(lr) * g / xp.sqrt(v - a * a + eps)
            else:
                step = f(lr) * g / xp.sqrt(v + eps)
            if self.momentum:
                m = rest[0]
                m *= f(self.momentum)
                m += step
                w -= m
            else:
                w -= step

    def _update_all_fused(self, kernels, tensors):
        """The rule above for every parameter, in a few GPU kernels (fast_gpu_updates)."""
        kernels.rmsprop_update(tensors, self.rho, self.momentum, self.epsilon, self.centered)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}
