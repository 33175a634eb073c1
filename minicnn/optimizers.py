"""SGD (momentum, Nesterov, time-based decay) and Adam with Keras's update rules.

One interface: ``build(params)`` once, then per step ``zero_grad()``, backward,
``step()``. Each optimizer only writes ``_update(i, w, g, lr)``, an in-place update of
one parameter's array from its gradient. State (``iterations`` and per-parameter
slots such as momenta) is exposed by ``state_dict()``/``load_state_dict()`` so a run
can resume exactly where it stopped.

Weight decay comes two ways: ``weight_decay`` shrinks w directly (decoupled, as Keras 3
and AdamW), ``l2`` adds l2 * w to the gradient so it also feeds the momentum (PyTorch
SGD's weight_decay). Parameter groups give some parameters their own options.
``Lookahead`` keeps an average of the weights and pulls the model back to it.
"""
import numpy

from . import backend
from .autograd import no_grad


class Optimizer:
    slot_names = ()

    def __init__(self, learning_rate=0.01, decay=0.0, weight_decay=None, lr=None, l2=0.0):
        if lr is not None:  # Keras 2's spelling, used by the seed tutorials
            learning_rate = lr
        if learning_rate <= 0 or decay < 0 or (weight_decay or 0) < 0 or l2 < 0:
            raise ValueError(f"{type(self).__name__}: need learning_rate > 0, decay >= 0, "
                             f"weight_decay >= 0, l2 >= 0; got {learning_rate}, {decay}, "
                             f"{weight_decay}, {l2}")
        self.learning_rate, self.decay, self.weight_decay = learning_rate, decay, weight_decay
        self.l2 = l2
        self.iterations = 0
        self.params = None
        self.options = []  # per parameter: (lr_scale, weight_decay, l2)
        self.slots = {}

    def build(self, params):
        """Bind to a list of parameter Tensors (the order defines the state's order).

        Items may also be PyTorch-style groups, dicts
        ``{"params": [...], "lr_scale": 64.0, "weight_decay": ..., "l2": ...}``, whose
        options replace the optimizer's own for those parameters: the learning rate is
        multiplied by lr_scale (airbench trains batch-norm shifts at 64x this way).
        Parameters with requires_grad False are left out.
        """
        self.params, self.options = [], []
        for item in params:
            if isinstance(item, dict):
                unknown = set(item) - {"params", "lr_scale", "weight_decay", "l2"}
                if unknown or "params" not in item:
                    raise ValueError(f"a parameter group is a dict with 'params' and optionally "
                                     f"'lr_scale', 'weight_decay', 'l2'; got keys {sorted(item)}")
                options = (float(item.get("lr_scale", 1.0)), item.get("weight_decay", self.weight_decay),
                           item.get("l2", self.l2))
                if options[0] <= 0 or (options[1] or 0) < 0 or options[2] < 0:
                    raise ValueError(f"parameter group: need lr_scale > 0, weight_decay >= 0, "
                                     f"l2 >= 0; got {options}")
                members = list(item["params"])
            else:
                options, members = (1.0, self.weight_decay, self.l2), [item]
            for p in members:
                if any(p is q for q in self.params):
                    raise ValueError(f"parameter {p.name} appears twice in the optimizer's parameters")
                if p.requires_grad:
                    self.params.append(p)
                    self.options.append(options)
        self.slots = {name: [backend.get_array_module(p.data).zeros_like(p.data) for p in self.params]
                      for name in self.slot_names}
        return self

    @property
    def current_learning_rate(self):
        """Keras 2's time-based decay: lr / (1 + decay * iterations)."""
        return self.learning_rate / (1.0 + self.decay * self.iterations)

    def zero_grad(self):
        for p in self.params or ():
            p.grad = None

    def step(self, params=None):
        """Update every bound parameter that has a gradient, then apply its constraint."""
        if self.params is None:
            if params is None:
                raise RuntimeError(f"{type(self).__name__}.step(): call build(params) first")
            self.build(params)
        lr = self.current_learning_rate
        with no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None or not p.requires_grad:
                    continue
                w, g = p.data, p.grad
                lr_scale, weight_decay, l2 = self.options[i]
                if l2:  # PyTorch's weight_decay: l2 * w joins the gradient (and the momentum)
                    g = g + w.dtype.type(l2) * w
                if weight_decay:  # decoupled, as Keras 3: w -= lr * wd * w
                    w -= w.dtype.type(lr * lr_scale * weight_decay) * w
                self._update(i, w, g, lr * lr_scale)
                if getattr(p, "constraint", None) is not None:
                    w[...] = p.constraint(w)
        self.iterations += 1

    def apply_gradients(self, grads_and_vars):
        """Keras-style: ``[(grad, param), ...]``."""
        pairs = list(grads_and_vars)
        for g, p in pairs:
            p.grad = g
        if self.params is None:
            self.build([p for _, p in pairs])
        self.step()

    def _update(self, i, w, g, lr):
        raise NotImplementedError

    # --- state for exact resumption ----------------------------------------------
    def state_dict(self):
        """{'iterations': int, 'slots': {name: [array per parameter]}, 'config': {...},
        'options': [[lr_scale, weight_decay, l2] per parameter]}.

        Arrays are host (NumPy) copies, so the state can be saved anywhere. The options
        carry the parameter groups, so a resumed run keeps e.g. airbench's 64x shifts."""
        return {"iterations": self.iterations, "config": self.get_config(),
                "options": [list(o) for o in self.options],
                "slots": {k: [backend.to_numpy(a).copy() for a in v] for k, v in self.slots.items()}}

    def load_state_dict(self, state):
        if self.params is None:
            raise RuntimeError("load_state_dict(): build(params) first, so slots have a place to go")
        for name in self.slot_names:
            arrays = state["slots"].get(name)
            if arrays is None or len(arrays) != len(self.params):
                raise ValueError(f"optimizer state has {0 if arrays is None else len(arrays)} "
                                 f"'{name}' slots for {len(self.params)} parameters")
            for slot, array, p in zip(self.slots[name], arrays, self.params):
                if tuple(array.shape) != p.shape:
                    raise ValueError(f"optimizer slot '{name}' for {p.name} has shape "
                                     f"{tuple(array.shape)}, parameter has {p.shape}")
                slot[...] = backend.to_device(array, backend.device_of(slot), dtype=slot.dtype)
        options = state.get("options")  # absent in states saved before groups existed
        if options is not None:  # as PyTorch: the saved group options replace the built ones
            if len(options) != len(self.params):
                raise ValueError(f"optimizer state has options for {len(options)} parameters, "
                                 f"the optimizer has {len(self.params)}")
            self.options = [(float(o[0]), o[1], float(o[2])) for o in options]
        self.iterations = int(state["iterations"])

    def get_config(self):
        return {"name": type(self).__name__, "learning_rate": self.learning_rate,
                "decay": self.decay, "weight_decay": self.weight_decay, "l2": self.l2}


class SGD(Optimizer):
    """Keras's SGD: v = momentum * v - lr * g; w += v, or with Nesterov
    w += momentum * v - lr * g (the gradient taken "ahead")."""

    slot_names = ("momentum",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, decay=0.0,
                 weight_decay=None, lr=None, l2=0.0):
        super().__init__(learning_rate, decay, weight_decay, lr, l2)
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
        v = self.slots["momentum"][i]
        v *= mu
        v -= lr * g
        if self.nesterov:
            w += mu * v - lr * g
        else:
            w += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras's Adam: m, v moving averages of g and g^2, and
    w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, decay=0.0,
                 weight_decay=None, lr=None, l2=0.0):
        super().__init__(learning_rate, decay, weight_decay, lr, l2)
        if not (0 <= beta_1 < 1 and 0 <= beta_2 < 1 and epsilon > 0):
            raise ValueError(f"Adam: need 0 <= beta_1, beta_2 < 1 and epsilon > 0; "
                             f"got {beta_1}, {beta_2}, {epsilon}")
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _update(self, i, w, g, lr):
        xp = backend.get_array_module(w)
        t = self.iterations + 1
        step = lr * numpy.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        m, v = self.slots["m"][i], self.slots["v"][i]
        m += w.dtype.type(1 - self.beta_1) * (g - m)
        v += w.dtype.type(1 - self.beta_2) * (g * g - v)
        w -= w.dtype.type(step) * m / (xp.sqrt(v) + w.dtype.type(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Lookahead:
    """An exponential moving average of *all* of a model's weights, batch-norm moving
    statistics included, that the model is pulled back to (airbench's "lookahead").

    ``update(decay)``: average = decay * average + (1 - decay) * w, then w = average, for
    every weight. decay 0 leaves the model as it is; decay 1 puts the average in place
    unchanged (how airbench ends: the final weights are the average). Call it every few
    optimizer steps; the optimizer's momenta are left alone.
    """

    def __init__(self, weights):
        self.weights = list(weights)
        self.average = [w.data.copy() for w in self.weights]

    def update(self, decay):
        if not 0 <= decay <= 1:
            raise ValueError(f"Lookahead.update: decay must be in [0, 1], got {decay}")
        for w, average in zip(self.weights, self.average):
            average += w.data.dtype.type(1 - decay) * (w.data - average)
            w.data[...] = average


def deserialize(config):
    """An optimizer from its get_config() dict."""
    config = dict(config)
    name = config.pop("name", None)
    classes = {"SGD": SGD, "Adam": Adam}
    if name not in classes:
        raise ValueError(f"unknown optimizer class {name!r}; known: {sorted(classes)}")
    return classes[name](**config)


def get(identifier):
    """'sgd' / 'adam' (Keras defaults) or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    by_name = {"sgd": SGD, "adam": Adam}
    if isinstance(identifier, str) and identifier.lower() in by_name:
        return by_name[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; use 'sgd', 'adam' or an Optimizer instance")
