"""What every optimizer shares: parameters, groups, the update loop, weight decay, state.

One interface: ``build(params)`` once, then per step ``zero_grad()``, backward,
``step()``. Each optimizer only writes ``_update(i, w, g, lr)``, an in-place update of
one parameter's array from its gradient; SGD, Adam and RMSprop also write ``_update_all_fused``,
the same rule for all parameters at once in a few GPU kernels (functions/fast_gpu_updates.py),
which ``step`` takes on a GPU. State (``iterations`` and per-parameter
slots such as momenta) is exposed by ``state_dict()``/``load_state_dict()`` so a run
can resume exactly where it stopped.

Weight decay comes two ways: ``weight_decay`` shrinks w directly (decoupled, as Keras 3
and AdamW), ``l2`` adds l2 * w to the gradient so it also feeds the momentum (PyTorch
SGD's weight_decay). Parameter groups give some parameters their own options.
SGD, Adam and the rest (sgd.py, adam.py, rmsprop.py, adagrad.py) each add only their update rule. ``clipnorm``,
``global_clipnorm`` or ``clipvalue`` clip the gradients first (clipping.py), as Keras's do.
"""
import numbers

import numpy

from .. import backend, constraints
from ..autograd import no_grad
from . import clipping, ema, schedules


OWN = object()  # a parameter group that sets no weight_decay: each parameter takes the optimizer's own
UPDATE_CHUNK = 1 << 15  # elements: a piece of w, g, the slots and the temporaries fits in an L2 cache


def fused_gpu(optimizer, due):
    """functions/fast_gpu_updates, when the optimizer has a fused rule for every due
    parameter: each array (the parameter, its gradient, its slots) a GPU array of one dtype
    its kernels are built for, with the fast kernels on; else None, and ``step`` runs the
    rule as array code, parameter by parameter (on a GPU, one kernel per operation)."""
    if not backend.fast_kernels_enabled() or not due or not optimizer._has_fused_rule():
        return None
    first = optimizer.params[due[0]].data
    if backend.get_array_module(first) is numpy:
        return None
    from ..functions import fast_gpu, fast_gpu_updates  # imports CuPy; only reached with GPU arrays
    for i in due:
        p = optimizer.params[i]
        arrays = (p.data, p.grad, *(optimizer.slots[name][i] for name in optimizer.slot_names))
        if not fast_gpu.handles(*arrays) or any(a.dtype != p.data.dtype for a in arrays):
            return None
    return fast_gpu_updates


def chunked(*arrays):
    """Matching pieces of same-shaped arrays (a parameter, its gradient, its slots), for an
    update rule to run one piece at a time; the arrays themselves where that cannot help.

    Why: NumPy runs ``v *= mu; v -= lr * g; w += v`` as whole-array passes, and for a
    3-million-weight layer each pass streams megabytes through main memory. On a piece
    that fits in the cache only the first touch reaches memory: about half the traffic.
    The numbers are identical (the same elementwise operations in the same order)."""
    first = arrays[0]
    if (backend.get_array_module(first) is not numpy or first.size <= UPDATE_CHUNK
            or not all(a.flags.c_contiguous for a in arrays)):
        return [arrays]
    flat = [a.reshape(-1) for a in arrays]
    return [[f[start:start + UPDATE_CHUNK] for f in flat] for start in range(0, first.size, UPDATE_CHUNK)]


class Optimizer:
    """learning_rate: a number, or a ``schedules.LearningRateSchedule`` evaluated at every
    step (then ``decay`` must stay 0: a schedule says all there is to say).
    clipnorm / global_clipnorm / clipvalue (at most one): each parameter's gradient clipped
    to that L2 norm, all gradients together to that norm, or each element to [-c, c],
    before anything else the step does (clipping.py); the clipped array replaces p.grad.
    use_ema / ema_momentum (0.99) / ema_overwrite_frequency: Keras's moving average of the
    weights, which fit puts in their place at the end (ema.py); every optimizer takes them."""
    slot_names = ()

    def __init__(self, learning_rate=0.01, decay=0.0, weight_decay=None, lr=None, l2=0.0,
                 clipnorm=None, global_clipnorm=None, clipvalue=None, *, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None):
        if lr is not None:  # Keras 2's spelling, used by the seed tutorials
            learning_rate = lr
        if isinstance(learning_rate, dict):  # a saved schedule, from get_config()
            learning_rate = schedules.deserialize(learning_rate)
        name = type(self).__name__
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            if decay:
                raise ValueError(f"{name}: decay={decay} and a learning-rate schedule both set the rate; "
                                 "give one (put the decay into the schedule)")
        elif not isinstance(learning_rate, numbers.Real) or not learning_rate > 0:
            raise ValueError(f"{name}: learning_rate must be a positive number or a LearningRateSchedule, "
                             f"got {learning_rate!r}")
        if decay < 0 or (weight_decay or 0) < 0 or l2 < 0:
            raise ValueError(f"{name}: need decay >= 0, weight_decay >= 0, l2 >= 0; got {decay}, "
                             f"{weight_decay}, {l2}")
        self._learning_rate, self.decay, self.weight_decay = learning_rate, decay, weight_decay
        self.l2 = l2
        clipping.check_options(name, clipnorm, global_clipnorm, clipvalue)
        self.clipnorm, self.global_clipnorm, self.clipvalue = clipnorm, global_clipnorm, clipvalue
        ema.check_options(name, use_ema, ema_momentum, ema_overwrite_frequency)  # Keras's weight averaging: ema.py
        self.use_ema, self.ema_momentum = bool(use_ema), float(ema_momentum)
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.ema_swapped = False  # SwapEMAWeights has put the averages in the weights' place (ema.swap)
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
                lr_scale, weight_decay, l2 = (float(item.get("lr_scale", 1.0)), item.get("weight_decay", OWN),
                                              item.get("l2", self.l2))
                if lr_scale <= 0 or (weight_decay is not OWN and (weight_decay or 0) < 0) or l2 < 0:
                    raise ValueError(f"parameter group: need lr_scale > 0, weight_decay >= 0, l2 >= 0; got "
                                     f"{ {k: item[k] for k in ('lr_scale', 'weight_decay', 'l2') if k in item} }")
                members = list(item["params"])
            else:
                (lr_scale, weight_decay, l2), members = (1.0, OWN, self.l2), [item]
            for p in members:
                if any(p is q for q in self.params):
                    raise ValueError(f"parameter {p.name} appears twice in the optimizer's parameters")
                if p.requires_grad:  # a group's weight_decay, else the optimizer's own for p
                    decay = self._own_weight_decay(p) if weight_decay is OWN else weight_decay
                    self.params.append(p)
                    self.options.append((lr_scale, decay, l2))
        self.slots = {name: [self.new_slot(name, p) for p in self.params] for name in self._all_slot_names}
        return self

    def _own_weight_decay(self, p):
        """The decoupled decay of parameter p outside a group that sets one: weight_decay
        (Muon gives the weights its AdamW rule trains their own)."""
        return self.weight_decay

    @property
    def _all_slot_names(self):
        """The rule's slots, then the weights' averages where use_ema is set (ema.py)."""
        return self.slot_names + ((ema.SLOT,) if self.use_ema else ())

    def new_slot(self, name, p):
        """The starting value of slot ``name`` for parameter p: zeros, on p's device (Adagrad's
        accumulator starts elsewhere; use_ema's average at the weight itself)."""
        if name == ema.SLOT:
            return ema.first_average(p)
        return backend.get_array_module(p.data).zeros_like(p.data)

    def rebind(self, params):
        """Bind to ``params`` (a list of Tensors) again, keeping the slots and options of
        every parameter bound already: a model that gained a layer (or lost one) since
        build() trains the new weights, and the old ones keep their momenta. New
        parameters start from new slots (new_slot) and the optimizer's own options."""
        if self.params is None:
            return self.build(params)
        index = {id(p): i for i, p in enumerate(self.params)}
        kept = [index.get(id(p)) for p in params]
        self.params = list(params)
        self.options = [self.options[i] if i is not None else (1.0, self._own_weight_decay(p), self.l2)
                        for i, p in zip(kept, self.params)]
        self.slots = {name: [slots[i] if i is not None else self.new_slot(name, p)
                             for i, p in zip(kept, self.params)] for name, slots in self.slots.items()}
        return self

    @property
    def schedule(self):
        """The LearningRateSchedule in use, or None for a fixed rate."""
        rate = self._learning_rate
        return rate if isinstance(rate, schedules.LearningRateSchedule) else None

    @property
    def learning_rate(self):
        """The rate of the next step: the fixed rate, or the schedule at ``iterations``."""
        schedule = self.schedule
        return float(schedule(self.iterations)) if schedule else self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if self.schedule is not None:  # as Keras: the schedule alone decides
            raise TypeError(f"{type(self).__name__} was given a learning-rate schedule "
                            f"({self.schedule!r}), so its rate cannot be set; build the optimizer with a "
                            "number to set it by hand (LearningRateScheduler, ReduceLROnPlateau)")
        if not isinstance(value, numbers.Real) or not value > 0:
            raise ValueError(f"learning_rate must be a positive number, got {value!r}")
        self._learning_rate = float(value)

    @property
    def current_learning_rate(self):
        """The rate the next step uses: learning_rate, with Keras 2's time-based decay
        lr / (1 + decay * iterations) when decay is set."""
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
            due = [i for i, p in enumerate(self.params) if p.grad is not None and p.requires_grad]
            self._clip_gradients(due)
            kernels = fused_gpu(self, due)
            if kernels is not None:  # on a GPU: all of them in a few kernels, the same arithmetic
                self._update_all_fused(kernels, [self._fused_inputs(i, lr) for i in due])
            else:
                for i in due:
                    self._update_with_penalties(i, lr)
            for i in due:
                p = self.params[i]
                if getattr(p, "constraint", None) is not None:
                    constraints.apply(p.constraint, p.data)
            if self.use_ema:
                ema.update(self)
        self.iterations += 1

    def finalize_variable_values(self, params=None):
        """Keras 3's: with use_ema, each trained weight becomes its moving average (fit calls
        this once its epochs are done); without, nothing."""
        if self.use_ema and self.params is not None:
            with no_grad():
                ema.overwrite(self)

    def _clip_gradients(self, due):
        """Replace the gradient of each due parameter by its clipped value, where a clip
        option is set: after loss scaling and the workers' average, before the penalties."""
        options = (self.clipnorm, self.global_clipnorm, self.clipvalue)
        if all(option is None for option in options):
            return
        clipped = clipping.clip_gradients([self.params[i].grad for i in due], *options)
        for i, g in zip(due, clipped):
            self.params[i].grad = g

    def _update_with_penalties(self, i, lr):
        """Parameter i's update as array code: its L2 term and decoupled decay, then the rule."""
        p = self.params[i]
        w, g = p.data, p.grad
        lr_scale, weight_decay, l2 = self.options[i]
        if l2:  # PyTorch's weight_decay: l2 * w joins the gradient (and the momentum)
            g = g + w.dtype.type(l2) * w
        if weight_decay:  # decoupled, as Keras 3: w -= lr * wd * w
            w -= w.dtype.type(lr * lr_scale * weight_decay) * w
        self._update(i, w, g, lr * lr_scale)

    def _fused_inputs(self, i, lr):
        """(w, g, slots, rate, decay, l2) of parameter i for functions/fast_gpu_updates:
        the numbers _update_with_penalties works with, for the kernel to do the same."""
        p = self.params[i]
        lr_scale, weight_decay, l2 = self.options[i]
        slots = tuple(self.slots[name][i] for name in self.slot_names)
        return (p.data, p.grad, slots, lr * lr_scale, lr * lr_scale * weight_decay if weight_decay else 0.0, l2)

    def _has_fused_rule(self):
        """True if the class whose ``_update`` is in use also wrote ``_update_all_fused``:
        a subclass with an update rule of its own runs that rule, never its parent's kernel."""
        for cls in type(self).__mro__:
            if "_update" in vars(cls):
                return "_update_all_fused" in vars(cls)
        return False

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

    # A subclass may add, beside _update, the same rule for every parameter at once:
    # def _update_all_fused(self, kernels, tensors): tensors as _fused_inputs gives them,
    # kernels the module functions/fast_gpu_updates.

    # --- state for exact resumption ----------------------------------------------
    def state_dict(self):
        """{'iterations': int, 'slots': {name: [array per parameter]}, 'config': {...},
        'options': [[lr_scale, weight_decay, l2] per parameter]}.

        Arrays are host (NumPy) copies, so the state can be saved anywhere. The options
        carry the parameter groups, so a resumed run keeps e.g. airbench's 64x shifts."""
        slots = {k: [backend.to_numpy(a).copy() for a in v] for k, v in self.slots.items()}
        if self.ema_swapped:  # SwapEMAWeights put the averages in the weights: they are the averages
            slots[ema.SLOT] = [backend.to_numpy(p.data).copy() for p in self.params]
        return {"iterations": self.iterations, "config": self.get_config(),
                "options": [list(o) for o in self.options], "slots": slots}

    def load_state_dict(self, state):
        if self.params is None:
            raise RuntimeError("load_state_dict(): build(params) first, so slots have a place to go")
        for name in self._all_slot_names:
            arrays = state["slots"].get(name)
            if arrays is None and name == ema.SLOT:  # use_ema turned on for a run saved without: start here
                continue
            if arrays is None or len(arrays) != len(self.params):
                raise ValueError(f"optimizer state has {0 if arrays is None else len(arrays)} "
                                 f"'{name}' slots for {len(self.params)} parameters")
            for slot, array, p in zip(self.slots[name], arrays, self.params):
                if tuple(array.shape) != tuple(slot.shape):  # the parameter's, or the rule's own (Adafactor)
                    raise ValueError(f"optimizer slot '{name}' for {p.name} (shape {p.shape}) has shape "
                                     f"{tuple(array.shape)}, the optimizer's slot {tuple(slot.shape)}")
                slot[...] = backend.to_device(array, backend.device_of(slot), dtype=slot.dtype)
        options = state.get("options")  # absent in states saved before groups existed
        if options is not None:  # as PyTorch: the saved group options replace the built ones
            if len(options) != len(self.params):
                raise ValueError(f"optimizer state has options for {len(options)} parameters, "
                                 f"the optimizer has {len(self.params)}")
            self.options = [(float(o[0]), o[1], float(o[2])) for o in options]
        self.iterations = int(state["iterations"])

    def get_config(self):
        rate = schedules.serialize(self.schedule) if self.schedule else self._learning_rate
        config = {"name": type(self).__name__, "learning_rate": rate,
                  "decay": self.decay, "weight_decay": self.weight_decay, "l2": self.l2,
                  **{name: getattr(self, name) for name in clipping.CLIP_OPTIONS}}
        if self.use_ema:
            config.update(use_ema=True, ema_momentum=self.ema_momentum,
                          ema_overwrite_frequency=self.ema_overwrite_frequency)
        return config
