"""Keras's ``keras.utils.to_categorical``, so the tutorials' data preparation translates
line for line: ``y_train = minicnn.utils.to_categorical(y_train, 10)``; and, as
``keras.utils.image_dataset_from_directory``, a folder of your own images
(datasets/image_folder.py). ``SummaryWriter`` (event_file.py) writes TensorBoard's files from
a loop of your own, with PyTorch's names."""
import numbers

import numpy

from . import backend
from .datasets.image_folder import image_dataset_from_directory  # noqa: F401  (Keras's keras.utils name)
from .event_file import SummaryWriter  # noqa: F401  (torch.utils.tensorboard's name)


def to_categorical(y, num_classes=None, dtype="float32"):
    """Integer class labels -> one-hot rows, on y's own device.

    y: integers of any shape, e.g. (N,) or CIFAR-10's (N, 1) (a last axis of size 1 is
    dropped, as Keras does). num_classes: defaults to max(y) + 1. Returns y.shape +
    (num_classes,) in ``dtype``, 1 at each label's class and 0 elsewhere."""
    xp = backend.get_array_module(y) if hasattr(y, "dtype") else numpy
    y = xp.asarray(y)
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and bool((y == xp.round(y)).all())):
        raise ValueError(f"to_categorical: labels must be integers, got {y.dtype} values that are not")
    y = y.astype(numpy.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if y.size and int(y.min()) < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, found {int(y.min())}")
    largest = int(y.max()) if y.size else -1
    if num_classes is None:
        num_classes = largest + 1
    elif not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"to_categorical: num_classes must be a positive int, got {num_classes!r}")
    elif largest >= num_classes:
        raise ValueError(f"to_categorical: label {largest} is out of range for num_classes={num_classes}")
    # row i of the identity is the one-hot row of class i: index it by the labels
    return xp.eye(num_classes, dtype=dtype)[y]
