"""Keras's Adagrad and Adadelta: each weight's step from its own accumulated squared gradients."""
from .. import backend
from .base import Optimizer, chunked


class Adagrad(Optimizer):
    """Keras's Adagrad (Duchi et al. 2011):

        a += g^2                                   (slot "accumulator", from initial_accumulator_value)
        w -= lr * g / sqrt(a + epsilon)            (epsilon inside the root, as Keras)

    The accumulator only grows, so a weight that has had large gradients takes ever
    smaller steps, and a rarely-moved one keeps large steps: good for sparse features,
    and why the rate decays on its own. Keras starts a at 0.1 (PyTorch at 0).
    """

    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, decay=0.0,
                 weight_decay=None, lr=None, l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None, **kwargs):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue,
                         **kwargs)
        if not (initial_accumulator_value >= 0 and epsilon > 0):
            raise ValueError(f"Adagrad: need initial_accumulator_value >= 0 and epsilon > 0; "
                             f"got {initial_accumulator_value}, {epsilon}")
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), epsilon

    def new_slot(self, name, p):
        return backend.get_array_module(p.data).full_like(p.data, self.initial_accumulator_value)

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        f = w.dtype.type
        for w, g, a in chunked(w, g, self.slots["accumulator"][i]):  # cache-sized pieces
            a += g * g
            w -= f(lr) * g / xp.sqrt(a + f(self.epsilon))

    def _update_all_fused(self, kernels, tensors):
        """The rule above for every parameter, in a few GPU kernels (fast_gpu_updates)."""
        kernels.adagrad_update(tensors, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Keras's Adadelta (Zeiler 2012): the step's size is the ratio of two running root
    mean squares, of past steps and of gradients, so it carries the weight's own units:

        G = rho * G + (1 - rho) * g^2                          (slot "accumulated_grad")
        delta = sqrt(D + epsilon) / sqrt(G + epsilon) * g
        D = rho * D + (1 - rho) * delta^2                      (slot "accumulated_delta")
        w -= lr * delta

    Zeiler's method has no learning rate (lr 1.0, PyTorch's default); Keras's default is
    0.001, which makes it learn very slowly: pass learning_rate=1.0 for the paper's.
    """

    slot_names = ("accumulated_grad", "accumulated_delta")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, decay=0.0, weight_decay=None, lr=None,
                 l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None, **kwargs):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue,
                         **kwargs)
        if not (0 <= rho < 1 and epsilon > 0):
            raise ValueError(f"Adadelta: need 0 <= rho < 1 and epsilon > 0; got {rho}, {epsilon}")
        self.rho, self.epsilon = rho, epsilon

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        f = w.dtype.type
        rho, eps = f(self.rho), f(self.epsilon)
        for w, g, G, D in chunked(w, g, self.slots["accumulated_grad"][i], self.slots["accumulated_delta"][i]):
            G *= rho
            G += f(1 - self.rho) * (g * g)
            delta = xp.sqrt(D + eps) / xp.sqrt(G + eps) * g
            D *= rho
            D += f(1 - self.rho) * (delta * delta)
            w -= f(lr) * delta

    def _update_all_fused(self, kernels, tensors):
        """The rule above for every parameter, in a few GPU kernels (fast_gpu_updates)."""
        kernels.adadelta_update(tensors, self.rho, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
