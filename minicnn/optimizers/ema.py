"""Keras's use_ema: an exponential moving average of every trained weight, kept beside the
weights by the optimizer, and put in their place once training ends.

    ema = w                                        after the first step
    ema = m * ema + (1 - m) * w                    after each later one (m = ema_momentum)

The average of the last ~1/(1 - m) steps' weights sits nearer the middle of the valley that
SGD's noisy steps circle, so it usually scores better than the last step's weights (Polyak
averaging). The averages are the optimizer's slot "ema" (not one of its slot_names, which the
update rules read): saved with the model and the checkpoints, so a resumed run averages on.
``fit`` ends by copying them into the weights (Optimizer.finalize_variable_values, as Keras
3's); ema_overwrite_frequency=n copies them every n steps instead of waiting for the end;
callbacks.SwapEMAWeights evaluates with them while training goes on with the raw weights.
"""
import contextlib
import numbers

import numpy

from .. import backend

SLOT = "ema"


def check_options(name, use_ema, ema_momentum, ema_overwrite_frequency):
    """A ValueError naming the option out of range."""
    if not isinstance(ema_momentum, numbers.Real) or not 0 <= ema_momentum < 1:
        raise ValueError(f"{name}: ema_momentum must be in [0, 1), got {ema_momentum!r}")
    if ema_overwrite_frequency is not None and (isinstance(ema_overwrite_frequency, bool) or not isinstance(
            ema_overwrite_frequency, int) or ema_overwrite_frequency < 1):
        raise ValueError(f"{name}: ema_overwrite_frequency must be an int >= 1 or None, got "
                         f"{ema_overwrite_frequency!r}")
    if ema_overwrite_frequency is not None and not use_ema:
        raise ValueError(f"{name}: ema_overwrite_frequency needs use_ema=True")


def first_average(p):
    """A parameter's average before any step: the weight itself (the first step replaces it)."""
    return p.data.copy()


def inner(optimizer):
    """The optimizer that holds the averages (a LossScaleOptimizer's inner one)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def update(optimizer):
    """After a step (iterations not yet counted): each trainable weight's average moves toward
    it, and every ema_overwrite_frequency steps the weights become their averages."""
    if optimizer.ema_swapped:
        raise RuntimeError(f"{type(optimizer).__name__}.step(): the weights are swapped with their averages "
                           "(SwapEMAWeights); swap them back before training on")
    m = 0.0 if optimizer.iterations == 0 else optimizer.ema_momentum
    # frozen since the optimizer was built: its weight does not move
    pairs = [(p.data, average) for p, average in zip(optimizer.params, optimizer.slots[SLOT]) if p.requires_grad]
    kernels = _fused_gpu(pairs)
    if kernels is not None:  # on a GPU: up to 16 averages a launch, the same arithmetic
        kernels.average_update(pairs, m)
    else:
        for w, average in pairs:
            f = average.dtype.type
            average *= f(m)
            average += f(1 - m) * w
    every = optimizer.ema_overwrite_frequency
    if every and (optimizer.iterations + 1) % every == 0:
        overwrite(optimizer)


def _fused_gpu(pairs):
    """functions/fast_gpu_updates, when every weight and average is a GPU array of a dtype its
    kernels are built for and the fast kernels are on; else None (the array code above)."""
    if not pairs or not backend.fast_kernels_enabled() or backend.get_array_module(pairs[0][0]) is numpy:
        return None
    from ..functions import fast_gpu, fast_gpu_updates  # imports CuPy; only reached with GPU arrays
    for w, average in pairs:
        if not fast_gpu.handles(w, average) or w.dtype != average.dtype:
            return None
    return fast_gpu_updates


def overwrite(optimizer):
    """Each trainable weight := its average (in place, on its device); weights swapped with
    their averages are swapped back first."""
    if optimizer.ema_swapped:
        swap(optimizer)
    for p, average in zip(optimizer.params, optimizer.slots[SLOT]):
        if p.requires_grad:
            p.data[...] = average.astype(p.data.dtype, copy=False)


def swap(optimizer):
    """Exchange each trainable weight with its average (SwapEMAWeights): twice is no change.
    optimizer.ema_swapped says which way round they are."""
    for p, average in zip(optimizer.params, optimizer.slots[SLOT]):
        if p.requires_grad:
            xp = backend.get_array_module(p.data)
            held = xp.copy(p.data)
            p.data[...] = average
            average[...] = held
    optimizer.ema_swapped = not optimizer.ema_swapped


@contextlib.contextmanager
def unswapped(optimizer):
    """The raw weights in place for a while (a backup must hold the state training goes on
    from), then the averages again if they were."""
    optimizer = inner(optimizer)
    swapped = optimizer.ema_swapped
    if swapped:
        swap(optimizer)
    try:
        yield
    finally:
        if swapped:
            swap(optimizer)
