"""Batches you make yourself, for fit, evaluate and predict: Keras's ``fit(generator,
steps_per_epoch=...)`` and the loop over a PyTorch-style DataLoader.

The source yields (x_batch, y_batch) or (x_batch, y_batch, sample_weight_batch), NumPy or
CuPy arrays (predict takes x_batch alone too); for a model of several inputs x_batch is a
list of arrays, one per input, and for one of several outputs y_batch a list of arrays, one
per output, or a dict keyed by output name. Two kinds, told apart as Keras tells them:

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

    def __init__(self, source, steps=None, what="fit", device=None, dtype="float32", labels=True, targets=None):
        self.source, self.what, self.labels_wanted = source, what, labels
        self.targets = targets  # a model of several outputs: y (list or dict) -> a list in output order
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
        self.batch_size = _length(first[0])
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
        x, y, w = (list(p) if isinstance(p, tuple) else p for p in (*parts, None, None)[:3])
        if y is not None and self.targets is not None:
            try:
                y = self.targets(y, self.what)
            except (TypeError, ValueError) as error:
                raise type(error)(f"{where}: {str(error).split('(): ', 1)[-1]}") from None
        for name, value in (("x", x), ("y", y), ("sample_weight", w)):
            if value is not None and not all(_is_array(a) for a in (value if _is_list(value, name) else [value])):
                raise TypeError(f"{where}: {name} must be a NumPy or CuPy array{_LIST_NOTE.get(name, '')}, got "
                                f"{_describe(value)}")
        n = _length(x)
        if n == 0 or any(len(a) != n for a in _arrays(x)[1:] + _arrays(y) + _arrays(w)):
            raise ValueError(f"{where}: x holds {[len(a) for a in _arrays(x)] if isinstance(x, list) else n} "
                             "samples; y and sample_weight must hold as many (and some)")
        if not step:
            self.home = backend.device_of(_arrays(x)[0])  # where the source keeps its batches: predict answers there
        x = _each(x, lambda a: backend.to_device(a, self.device).astype(self.dtype, copy=False))
        if y is not None:
            y = _each(y, lambda a: backend.to_device(a, self.device, dtype=self.dtype if a.dtype.kind == "f" else None))
        if w is not None:
            w = backend.to_device(w, self.device, dtype=numpy.float32)
        if step and (_shapes(x) != _shapes(self.first[0])
                     or (y is not None and self.first[1] is not None and _shapes(y) != _shapes(self.first[1]))):
            raise ValueError(f"{where}: x has shape {_shapes(x, True)} and y {_shapes(y, True)}; the first batch had "
                             f"{_shapes(self.first[0], True)} and {_shapes(self.first[1], True)}")
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
                xp = backend.get_array_module(_arrays(x)[0])
                yield x, y, (w if w is not None else xp.ones(_length(x), dtype=numpy.float32))


# --- a batch's parts: an array, or for x and y a list of arrays (several inputs, outputs) ---
_LIST_NOTE = {"x": " (or a list of them, one per input)", "y": " (or a list of them, one per output)"}


def _is_array(a):
    return hasattr(a, "shape") and hasattr(a, "dtype")


def _is_list(value, name):
    return name in _LIST_NOTE and isinstance(value, list) and bool(value)


def _arrays(value):
    """The arrays of a part: [] for None, the list itself, or [the array]."""
    return [] if value is None else list(value) if isinstance(value, list) else [value]


def _length(value):
    return len(_arrays(value)[0])


def _each(value, change):
    return [change(a) for a in value] if isinstance(value, list) else change(value)


def _shapes(value, whole=False):
    """Each array's shape past the batch axis (whole: with it, for messages)."""
    if value is None:
        return None
    shapes = [tuple(a.shape) if whole else tuple(a.shape[1:]) for a in _arrays(value)]
    return shapes if isinstance(value, list) else shapes[0]


def _describe(value):
    if isinstance(value, (list, tuple)):
        first = f", the first a {type(value[0]).__name__}" if value else ""
        return f"a {type(value).__name__} of {len(value)}{first}"
    return type(value).__name__
