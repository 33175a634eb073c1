"""Keras's Muon (Jordan et al. 2024, "MomentUm Orthogonalized by Newton-Schulz"): a
momentum for each weight matrix, replaced before the step by the nearest matrix whose
singular values are all about 1, so the step moves every direction of the matrix alike."""
import numbers
import re

import numpy

from .. import backend
from .adam import adam_step, step_size
from .base import Optimizer


def orthogonalize(x, steps, a=3.4445, b=-4.7750, c=2.0315):
    """x (rows, cols) -> about U V^T, where x = U S V^T is its singular value decomposition:
    x with every singular value moved to about 1 (Keras's zeropower_via_newtonschulz5).

    Why it works: x / ||x|| (Frobenius) has its singular values s in (0, 1], and the step
    x <- a x + (b x x^T + c (x x^T)^2) x = U p(S) V^T changes only them, each by the
    quintic p(s) = a s + b s^3 + c s^5. These a, b, c make p steep at 0 (slope 3.4445), so five
    steps take a random matrix's singular values into about 0.7..1.13 (one below a
    thousandth of the largest stays further down); exactly 1 would need many more steps,
    and Muon trains as well without. A wide x is worked on as it is, a tall
    one transposed, so x x^T is the smaller of the two Gram matrices. Three GEMMs a step,
    in x's dtype (Keras's; PyTorch and Jordan's code work in bfloat16).
    """
    xp = backend.get_array_module(x)
    f = x.dtype.type
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / (xp.sqrt(xp.sum(x * x)) + f(1e-7))  # the spectral norm is at most the Frobenius norm: s <= 1
    for _ in range(steps):
        gram = backend.matmul(x, x.T)
        x = f(a) * x + backend.matmul(f(b) * gram + f(c) * backend.matmul(gram, gram), x)
    return x.T if tall else x


class Muon(Optimizer):
    """Keras's Muon. Each kernel w of 2 axes or more (the "Muon weights"), with slot m:

        m = momentum * m + g
        u = g + momentum * m   (nesterov; else u = m)
        w -= lr * sqrt(max(rows, cols)) * rms_rate * orthogonalize(u as a (rows, cols) matrix)

    The factor sqrt(max(rows, cols)) * rms_rate (Liu et al. 2025, "Muon is scalable")
    gives the step about AdamW's root mean square, so Muon can take AdamW's learning rate
    and weight decay (rms_rate=None: no factor). Every other weight (biases, batch-norm
    scales, and any whose name matches an ``exclude_layers`` pattern, or contains
    "embedding" while exclude_embeddings is set) takes Keras's AdamW step instead, with
    slots m and v, adam_beta_1, adam_beta_2, epsilon, the rate lr * adam_lr_ratio and
    adam_weight_decay. Keras advises excluding the output layer: exclude_layers=["^dense_1/"]
    (a pattern is searched for in the weight's name, "dense_1/kernel").

    Decoupled weight decay (w -= lr * decay * w, before the step, as Keras applies it):
    weight_decay on the Muon weights, adam_weight_decay on the others; a parameter group
    that sets weight_decay sets it for all its members.

    One departure from Keras, flatten_kernels=True: a kernel of more than 2 axes (Conv2D's
    (kh, kw, in, out)) is a Muon weight, orthogonalized as the matrix (kh * kw * in, out)
    and reshaped back, as Jordan's CIFAR-10 runs train their convolutions. Keras's rule,
    flatten_kernels=False, gives such kernels the AdamW step, which in a CNN leaves Muon the
    dense layers alone. The slot v of a Muon weight is a 0-d placeholder (Keras keeps none).
    """

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, adam_beta_1=0.9, adam_beta_2=0.999, adam_weight_decay=0.004,
                 epsilon=1e-7, weight_decay=0.004, *, exclude_layers=None, exclude_embeddings=True,
                 muon_a=3.4445, muon_b=-4.7750, muon_c=2.0315, adam_lr_ratio=1, momentum=0.95, ns_steps=5,
                 nesterov=True, rms_rate=0.2, flatten_kernels=True, decay=0.0, lr=None, l2=0.0, clipnorm=None,
                 global_clipnorm=None, clipvalue=None, **kwargs):
        super().__init__(learning_rate, decay, weight_decay, lr, l2, clipnorm, global_clipnorm, clipvalue,
                         **kwargs)
        if not (0 <= adam_beta_1 < 1 and 0 <= adam_beta_2 < 1 and epsilon > 0 and 0 <= momentum < 1):
            raise ValueError(f"Muon: need 0 <= adam_beta_1, adam_beta_2, momentum < 1 and epsilon > 0; got "
                             f"{adam_beta_1}, {adam_beta_2}, {momentum}, {epsilon}")
        if not (isinstance(ns_steps, numbers.Integral) and ns_steps >= 1):
            raise ValueError(f"Muon: ns_steps (Newton-Schulz steps) must be a positive int, got {ns_steps!r}")
        if not (adam_lr_ratio > 0 and (rms_rate is None or rms_rate > 0) and (adam_weight_decay or 0) >= 0):
            raise ValueError(f"Muon: need adam_lr_ratio > 0, rms_rate > 0 (or None) and adam_weight_decay >= 0 "
                             f"(or None); got {adam_lr_ratio}, {rms_rate}, {adam_weight_decay}")
        if isinstance(exclude_layers, str):  # Keras would search for each of its characters
            raise TypeError(f"Muon: exclude_layers must be a list of regular expressions, got the string "
                            f"{exclude_layers!r}; write [{exclude_layers!r}]")
        if not all(isinstance(pattern, str) for pattern in exclude_layers or ()):
            raise TypeError(f"Muon: exclude_layers must be a list of regular expressions (strings), "
                            f"got {exclude_layers!r}")
        self.exclude_layers = list(exclude_layers or ())
        for pattern in self.exclude_layers:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"Muon: exclude_layers pattern {pattern!r} is not a regular expression: {error}")
        self.adam_beta_1, self.adam_beta_2, self.epsilon = adam_beta_1, adam_beta_2, epsilon
        self.adam_weight_decay, self.adam_lr_ratio = adam_weight_decay, adam_lr_ratio
        self.exclude_embeddings, self.flatten_kernels = bool(exclude_embeddings), bool(flatten_kernels)
        self.muon_a, self.muon_b, self.muon_c = muon_a, muon_b, muon_c
        self.momentum, self.ns_steps, self.nesterov, self.rms_rate = momentum, int(ns_steps), bool(nesterov), rms_rate

    def takes_adam(self, p):
        """True if parameter p takes the AdamW step, False for the Muon step (the class's docstring)."""
        ndim = len(p.shape)
        if ndim < 2 or (ndim > 2 and not self.flatten_kernels):
            return True
        name = p.name or ""
        if self.exclude_embeddings and "embedding" in name.lower():
            return True
        return any(re.search(pattern, name) for pattern in self.exclude_layers)

    def _own_weight_decay(self, p):
        return self.adam_weight_decay if self.takes_adam(p) else self.weight_decay

    def new_slot(self, name, p):
        if name == "v" and not self.takes_adam(p):  # a Muon weight has no second moment
            return backend.get_array_module(p.data).zeros((), p.data.dtype)
        return super().new_slot(name, p)

    def _update(self, i, w, g, lr):
        m = self.slots["m"][i]
        if self.takes_adam(self.params[i]):
            rate = step_size(lr * self.adam_lr_ratio, self.adam_beta_1, self.adam_beta_2, self.iterations + 1)
            adam_step(w, g, m, self.slots["v"][i], rate, self.adam_beta_1, self.adam_beta_2, self.epsilon)
            return
        f = w.dtype.type
        m *= f(self.momentum)
        m += g
        u = g + f(self.momentum) * m if self.nesterov else m
        matrix = u.reshape(-1, u.shape[-1])  # a conv kernel (kh, kw, in, out) as (kh * kw * in, out)
        step = orthogonalize(matrix, self.ns_steps, self.muon_a, self.muon_b, self.muon_c)
        if self.rms_rate is not None:
            lr = lr * numpy.sqrt(max(matrix.shape)) * self.rms_rate
        w -= f(lr) * step.reshape(w.shape)

    def get_config(self):
        return {**super().get_config(), "adam_beta_1": self.adam_beta_1, "adam_beta_2": self.adam_beta_2,
                "adam_weight_decay": self.adam_weight_decay, "epsilon": self.epsilon,
                "exclude_layers": list(self.exclude_layers), "exclude_embeddings": self.exclude_embeddings,
                "muon_a": self.muon_a, "muon_b": self.muon_b, "muon_c": self.muon_c,
                "adam_lr_ratio": self.adam_lr_ratio, "momentum": self.momentum, "ns_steps": self.ns_steps,
                "nesterov": self.nesterov, "rms_rate": self.rms_rate, "flatten_kernels": self.flatten_kernels}
