"""Keras's SGD: plain, with momentum, or Nesterov momentum."""
from .base import Optimizer, chunked


class SGD(Optimizer):
    """Keras's SGD: v = momentum * v - lr * g; w += v, or with Nesterov
    w += momentum * v - lr * g (the gradient taken "ahead")."""

    slot_names = ("momentum",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, decay=0.0,
                 weight_decay=None, lr=None, l2=0.0, clipnorm=None, global_clipnorm=None, clipvalue=None, **kwargs):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue,
                         **kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        self.momentum, self.nesterov = momentum, nesterov
        if not momentum:
            self.slot_names = ()  # plain SGD keeps no state

    def _update(self, i, w, g, lr):
        lr = w.dtype.type(lr)
        if not self.momentum:
            w -= lr * g
            return
        mu = w.dtype.type(self.momentum)
        for w, g, v in chunked(w, g, self.slots["momentum"][i]):  # a cache-sized piece at a time
            v *= mu
            v -= lr * g
            if self.nesterov:
                w += mu * v - lr * g
            else:
                w += v

    def _update_all_fused(self, kernels, tensors):
        """The rule above for every parameter, in a few GPU kernels (fast_gpu_updates)."""
        if self.momentum:
            kernels.sgd_momentum_update(tensors, self.momentum, self.nesterov)
        else:
            kernels.sgd_update(tensors)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
