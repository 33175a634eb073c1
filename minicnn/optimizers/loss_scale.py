"""Dynamic loss scaling, for training in float16 (mixed_precision.py): Keras 3's
LossScaleOptimizer, PyTorch's GradScaler.

float16's smallest number is 6e-8 (its smallest normal one 6e-5): a gradient below it
becomes 0 on the way back through a float16 network, and many do. So the loss is
multiplied by a large ``scale`` (2^15 to start) before backward, which lifts every
gradient by the same factor, and each weight's gradient is divided by it before the
update. Too large a scale overflows (float16 stops at 65504): then some gradient is
infinite or NaN, that step is skipped and the scale halved. After ``dynamic_growth_steps``
good steps in a row it is doubled, so it stays near the largest scale that does not
overflow.

Checking the gradients means reading one number from the GPU every step (a wait for the
step's backward to finish), as PyTorch's GradScaler does.
"""
import numbers

import numpy

from .. import backend


def _inner(name, settable=False):
    """A property that reads (and, settable, sets) the inner optimizer's attribute ``name``."""
    def get(self):
        return getattr(self.inner_optimizer, name)

    def set_(self, value):
        setattr(self.inner_optimizer, name, value)
    return property(get, set_ if settable else None)


class LossScaleOptimizer:
    """Wraps an optimizer (SGD, Adam): ``scale_loss(loss)`` before backward, then ``step()``
    unscales the gradients and steps the inner optimizer, or skips the step when a gradient
    is not finite. Everything else (parameters, slots, learning rate, iterations: only
    the steps taken count) is the inner optimizer's."""

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000):
        from .base import Optimizer
        if not isinstance(inner_optimizer, Optimizer):
            raise TypeError(f"LossScaleOptimizer wraps an Optimizer (SGD, Adam), got {type(inner_optimizer).__name__}")
        if not isinstance(initial_scale, numbers.Real) or not initial_scale > 0:
            raise ValueError(f"LossScaleOptimizer: initial_scale must be a positive number, got {initial_scale!r}")
        if not isinstance(dynamic_growth_steps, numbers.Integral) or dynamic_growth_steps < 1:
            raise ValueError(f"LossScaleOptimizer: dynamic_growth_steps must be a positive int, "
                             f"got {dynamic_growth_steps!r}")
        self.inner_optimizer = inner_optimizer
        self.initial_scale, self.dynamic_growth_steps = float(initial_scale), int(dynamic_growth_steps)
        self.scale = self.initial_scale
        self.good_steps = 0  # finite steps in a row since the scale last changed
        self.skipped_steps = 0  # steps skipped for a gradient that was not finite, in all

    # --- the loss scaling --------------------------------------------------------------
    def scale_loss(self, loss):
        """The Tensor to call backward on: loss * scale."""
        return loss * self.scale

    def step(self, params=None):
        """Unscale the gradients; if all are finite, step the inner optimizer (and double
        the scale after dynamic_growth_steps such steps), else skip and halve the scale."""
        inner = self.inner_optimizer
        if inner.params is None:
            inner.step(params)  # builds it, or says why it cannot
            return
        grads = [p.grad for p in inner.params if p.grad is not None]
        if unscale_gradients(grads, 1.0 / self.scale):
            inner.step()
            self.good_steps += 1
            if self.good_steps == self.dynamic_growth_steps:
                self.scale, self.good_steps = self.scale * 2, 0
        else:
            self.scale, self.good_steps = self.scale / 2, 0
            self.skipped_steps += 1

    # --- the inner optimizer's ------------------------------------------------------------
    def build(self, params):
        self.inner_optimizer.build(params)
        return self

    def rebind(self, params):
        self.inner_optimizer.rebind(params)
        return self

    def zero_grad(self):
        self.inner_optimizer.zero_grad()

    def finalize_variable_values(self, params=None):
        self.inner_optimizer.finalize_variable_values(params)

    params = _inner("params")
    slots = _inner("slots")
    slot_names = _inner("slot_names")
    use_ema = _inner("use_ema")
    options = _inner("options")
    schedule = _inner("schedule")
    current_learning_rate = _inner("current_learning_rate")
    iterations = _inner("iterations", settable=True)
    learning_rate = _inner("learning_rate", settable=True)  # callbacks set it (ReduceLROnPlateau)

    # --- state for exact resumption ---------------------------------------------------------
    def state_dict(self):
        """The inner optimizer's state, and the scale's under 'loss_scale'."""
        return {**self.inner_optimizer.state_dict(), "config": self.get_config(),
                "loss_scale": {"scale": self.scale, "good_steps": self.good_steps,
                               "skipped_steps": self.skipped_steps}}

    def load_state_dict(self, state):
        self.inner_optimizer.load_state_dict(state)
        saved = state.get("loss_scale")
        if saved is not None:
            scale = saved["scale"]
            if not isinstance(scale, numbers.Real) or not scale > 0:
                raise ValueError(f"loss scale state: scale must be a positive number, got {scale!r}")
            self.scale = float(scale)
            self.good_steps, self.skipped_steps = int(saved["good_steps"]), int(saved.get("skipped_steps", 0))

    def get_config(self):
        return {"name": "LossScaleOptimizer", "inner_optimizer": self.inner_optimizer.get_config(),
                "initial_scale": self.initial_scale, "dynamic_growth_steps": self.dynamic_growth_steps}

    def __repr__(self):
        return f"<LossScaleOptimizer of {type(self.inner_optimizer).__name__}, scale {self.scale:g}>"


def unscale_gradients(grads, inverse_scale):
    """g *= inverse_scale in place for each gradient array; True if every one is finite.

    On a GPU the verdict is one device number read back (bool()): the only wait the step
    has. NaN and infinities stay what they are when multiplied, so unscaling first and
    checking after finds the same. On a GPU with the fast kernels on, one kernel does it
    for up to 16 gradients (functions/fast_gpu_updates.py)."""
    kernels = _fused_gpu(grads)
    if kernels is not None:
        return not bool(kernels.unscale_and_check(grads, inverse_scale)[0])
    verdict = None
    for g in grads:
        g *= g.dtype.type(inverse_scale)
        finite = backend.get_array_module(g).isfinite(g).all()
        verdict = finite if verdict is None else verdict & finite
    return True if verdict is None else bool(verdict)


def _fused_gpu(grads):
    """functions/fast_gpu_updates when every gradient is a GPU array its kernels are built
    for (contiguous, as autograd leaves a weight's gradient) and the fast kernels are on;
    else None."""
    if not grads or not backend.fast_kernels_enabled() or backend.get_array_module(grads[0]) is numpy:
        return None
    from ..functions import fast_gpu, fast_gpu_updates  # imports CuPy; only reached with GPU arrays
    if not fast_gpu.handles(*grads) or not all(g.flags.c_contiguous for g in grads):
        return None
    return fast_gpu_updates
