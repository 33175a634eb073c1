"""Batches you make yourself, for fit, evaluate and predict: Keras's ``fit(generator,
steps_per_epoch=...)`` and the loop over a PyTorch-style DataLoader.

The source yields (x_batch, y_batch) or (x_batch, y_batch, sample_weight_batch), NumPy or
CuPy arrays (predict takes x_batch alone too). Two kinds, told apart as Keras tells them:

  * a one-shot iterator, such as a generator: it is read on from epoch to epoch, so an
    epoch is the next steps_per_epoch batches, which must be given;
  * anything iterable afresh (an object whose __iter__ starts over, or a Keras-style
    Sequence with __len__ and __getitem__): every epoch reads it from the start, and an
    epoch is all of it, or its first steps_per_epoch batches.

A list or a tuple is not a source: Keras reads those as several inputs, so fit refuses
them by name rather than guess. Each batch reaches the model's device with one explicit
copy (where it is not there already) in the model's dtype. The first batch is checked as
fit checks arrays (shapes, labels, NaN); later ones for their shapes and lengths only, so
reading them costs the GPU no synchronisation.
"""
import numpy

from . import backend


def is_source(x):
    """True for what BatchStream reads: an iterator, or an iterable that is not an array, a
    list, a tuple, a dict or a string."""
    if hasattr(x, "shape") or isinstance(x, (list, tuple, dict, str, bytes)):
        return False
    return hasattr(x, "__next__") or hasattr(x, "__iter__") or (hasattr(x, "__getitem__") and hasattr(x, "__len__"))


class BatchStream:
    """Batches from ``source`` on ``device``: ``for xb, yb in stream.batches(epoch)``, as a
    minicnn.data.Loader gives them. steps: batches per epoch (steps_per_epoch); labels=False
    for predict, whose batches may be x alone."""

    def __init__(self, source, steps=None, what="fit", device=None, dtype="float32", labels=True):
        self.source, self.what, self.labels_wanted = source, what, labels
        self.one_shot = hasattr(source, "__next__")
        if steps is None:
            if self.one_shot or not hasattr(source, "__len__"):
                raise ValueError(f"{what}(): x is a generator (or an iterable without a length), so an epoch has "
                                 "no end of its own: give steps_per_epoch= (steps= for evaluate and predict), "
                                 "the number of batches that make one")
            steps = len(source)
        if isinstance(steps, bool) or not isinstance(steps, (int, numpy.integer)) or steps < 1:
            raise ValueError(f"{what}(): the number of steps must be a positive int, got {steps!r}")
        self.steps = int(steps)
        self.device, self.dtype = device or backend.get_device(), numpy.dtype(dtype)
        self._running = iter(source) if self.one_shot else None
        self._ahead = []  # a one-shot source's batches read ahead (the first, to check it), not yet trained on
        first = self._read(self._running if self.one_shot else self._epoch_items(), 0, 0)
        if self.one_shot:
            self._ahead.append(first)
        self.first = first  # (x, y, w or None) on the device, for fit's checks
        self.batch_size = len(first[0])
        self.sample_weight = True if first[2] is not None else None  # as a Loader's: "the batches carry weights"

    def __len__(self):
        return self.steps

    def _epoch_items(self):
        """A fresh pass over a re-iterable source (index by index for a Sequence)."""
        if hasattr(self.source, "__iter__"):
            return iter(self.source)
        return (self.source[i] for i in range(len(self.source)))

    def _read(self, items, epoch, step):
        """The next batch of ``items`` as device arrays (x, y or None, w or None), or a
        ValueError saying what the source gave instead."""
        where = f"{self.what}(): batch {step + 1} of epoch {epoch + 1}"
        try:
            item = next(items)
        except StopIteration:
            raise ValueError(f"{where}: the source ran out after {step} batches, but an epoch is {self.steps} "
                             "(steps_per_epoch); a generator should loop for ever, as Keras's do") from None
        parts = tuple(item) if isinstance(item, (tuple, list)) else (item,)
        if not parts or len(parts) > 3 or (self.labels_wanted and len(parts) < 2):
            raise ValueError(f"{where}: expected (x_batch, y_batch) or (x_batch, y_batch, sample_weight), got "
                             f"{type(item).__name__} of {len(parts)} items")
        for name, array in zip(("x", "y", "sample_weight"), parts):
            if not (hasattr(array, "shape") and hasattr(array, "dtype")):
                raise TypeError(f"{where}: {name} must be a NumPy or CuPy array, got {type(array).__name__}")
        x, y, w = (*parts, None, None)[:3]
        if len(x) == 0 or any(a is not None and len(a) != len(x) for a in (y, w)):
            raise ValueError(f"{where}: x holds {len(x)} samples, y and sample_weight must hold as many (and some)")
        if not step:
            self.home = backend.device_of(x)  # where the source keeps its batches: predict answers there
        x = backend.to_device(x, self.device).astype(self.dtype, copy=False)
        if y is not None:
            y = backend.to_device(y, self.device, dtype=self.dtype if y.dtype.kind == "f" else None)
        if w is not None:
            w = backend.to_device(w, self.device, dtype=numpy.float32)
        if step and (x.shape[1:] != self.first[0].shape[1:]
                     or (y is not None and self.first[1] is not None and y.shape[1:] != self.first[1].shape[1:])):
            raise ValueError(f"{where}: x has shape {x.shape} and y {None if y is None else y.shape}; the first "
                             f"batch had {self.first[0].shape} and {None if self.first[1] is None else self.first[1].shape}")
        return x, y, w

    def batches(self, epoch=0, weights=False):
        """Yield (x_batch, y_batch), or with weights=True (x_batch, y_batch, weights),
        the weights 1 where a batch carries none; steps of them."""
        items = self._running if self.one_shot else self._epoch_items()
        for step in range(self.steps):
            x, y, w = self._ahead.pop(0) if self._ahead else self._read(items, epoch, step)
            if not weights:
                yield x, y
            else:
                yield x, y, (w if w is not None else backend.get_array_module(x).ones(len(x), dtype=numpy.float32))
