"""Gradient clipping, as Keras's ``clipnorm``, ``global_clipnorm`` and ``clipvalue``.

A step whose gradient is unusually large (a bad batch, a learning rate a little too high)
can throw the weights far from where training was going. Clipping bounds the step:

- ``clip_by_value(g, c)``: every element into [-c, c]. The direction can change.
- ``clip_by_norm(g, c)``: g * c / max(||g||, c). One parameter's gradient is scaled down,
  never up, to length at most c; its direction is kept.
- ``clip_by_global_norm(grads, c)``: the same, with ||.|| taken over *all* gradients
  together (PyTorch's ``clip_grad_norm_``), so their proportions are kept too.

Each takes and returns arrays (host or device) and keeps their dtype; a norm stays on the
device as a 0-d array, so a GPU step never waits for it. A gradient that holds NaN or inf
stays non-finite (its norm is), which the loss check of ``fit`` or the loss scaler sees.
The optimizer clips after the gradients are unscaled and averaged over workers, and before
the weight decay, the L2 term and the update rule, in Keras's order.
"""
import numbers

import numpy

from .. import backend

CLIP_OPTIONS = ("clipnorm", "global_clipnorm", "clipvalue")


def squared_norm(g):
    """sum(g * g) as a 0-d array of g's dtype, on g's device."""
    return (g * g).sum()


def clip_by_value(g, clipvalue):
    """g (any shape) with each element put into [-clipvalue, clipvalue]; same shape, dtype."""
    c = g.dtype.type(clipvalue)
    return backend.get_array_module(g).clip(g, -c, c)


def clip_by_norm(g, clipnorm):
    """g (any shape) scaled by clipnorm / max(||g||, clipnorm): unchanged when its L2 norm is
    at most clipnorm, else rescaled to that length. Same shape and dtype."""
    xp, c = backend.get_array_module(g), g.dtype.type(clipnorm)
    return g * (c / xp.maximum(xp.sqrt(squared_norm(g)), c))


def global_norm(grads):
    """sqrt of the sum of every element squared over all arrays of grads: a 0-d array on
    their device, in the widest of their dtypes (float32 for float32 and float16 together)."""
    dtype = numpy.result_type(*(g.dtype for g in grads))
    total = squared_norm(grads[0].astype(dtype, copy=False))
    for g in grads[1:]:
        total = total + squared_norm(g.astype(dtype, copy=False))
    return backend.get_array_module(total).sqrt(total)


def clip_by_global_norm(grads, clipnorm):
    """Every array of grads scaled by one factor, clipnorm / max(global_norm, clipnorm), so
    the gradients' joint L2 norm is at most clipnorm. A list of arrays, shapes and dtypes kept."""
    if not grads:
        return []
    norm = global_norm(grads)
    c = norm.dtype.type(clipnorm)
    scale = c / backend.get_array_module(norm).maximum(norm, c)
    return [g * scale.astype(g.dtype, copy=False) for g in grads]


def check_options(owner, clipnorm, global_clipnorm, clipvalue):
    """Keras's rule: each option None or a positive number, and at most one of them set
    (they would contradict one another). Raises ValueError naming the problem."""
    given = {name: value for name, value in zip(CLIP_OPTIONS, (clipnorm, global_clipnorm, clipvalue))
             if value is not None}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise ValueError(f"{owner}: {name} must be a positive number or None, got {value!r}")
    if len(given) > 1:
        raise ValueError(f"{owner}: only one of clipnorm, global_clipnorm and clipvalue can be set; "
                         f"got {', '.join(f'{k}={v}' for k, v in given.items())}")


def clip_gradients(grads, clipnorm=None, global_clipnorm=None, clipvalue=None):
    """grads clipped by whichever option is set (at most one: check_options), as a new list;
    the same list when none is."""
    if clipnorm is not None:
        return [clip_by_norm(g, clipnorm) for g in grads]
    if global_clipnorm is not None:
        return clip_by_global_norm(grads, global_clipnorm)
    if clipvalue is not None:
        return [clip_by_value(g, clipvalue) for g in grads]
    return grads
