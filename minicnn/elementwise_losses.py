"""Losses that compare the output with its target value by value, with Keras's names:
MeanSquaredError ('mse'), MeanAbsoluteError ('mae'), Huber, BinaryCrossentropy. For
regression (a number, a vector, a whole image per sample: an autoencoder's input) and for
yes/no outputs (one sigmoid per label).

The cross-entropies of losses.py compare a row of class scores with a class label; these
take a target y_true shaped as the output (or (N,) for an output of one value) and:
  1. an elementwise loss l(y_true, y_pred), shaped as the output;
  2. its mean over each sample's values: one loss per sample, (N,);
  3. times sample_weight (N,) when given; then Keras's 'sum_over_batch_size': the sum
     over the batch divided by N (reduction='mean'), or the sum ('sum').
All of it is Tensor arithmetic (autograd.py), so the gradients come from the ops'
own backwards: no hand-written derivative here.
"""
import numpy

from .autograd import Tensor

EPSILON = 1e-7  # Keras's backend.epsilon(): probabilities are clipped to [eps, 1 - eps]


def _widened(scores):
    """float16 outputs (a Tensor) as float32: a loss summed in float16 loses too much."""
    return scores.astype(numpy.float32) if scores.dtype == numpy.float16 else scores


def absolute(d):
    """|d| as relu(d) + relu(-d): its gradient is sign(d), and 0 at 0 (as PyTorch's)."""
    return d.relu() + (-d).relu()


class ElementwiseLoss:
    """Base class: subclasses define ``elementwise(target, pred)``, Tensors of the output's
    shape, and their options' ``get_config``."""
    sparse = False          # labels are not class indices
    classifies = False      # no class labels: class_weight and the argmax accuracy do not apply
    takes_logits = False    # wants the model's output itself, after any final softmax
    from_logits = False

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def __call__(self, y_true, y_pred, logits=None, check=True, sample_weight=None):
        """y_true: an array on the output's device, shaped as y_pred (N, ...) or (N,) when
        each output is one value; y_pred: the output Tensor (``logits`` is not used: these
        losses take the output after its activation). -> a scalar Tensor."""
        pred = _widened(y_pred)
        if tuple(y_true.shape) != pred.shape:
            if y_true.size != pred.data.size:
                raise ValueError(f"{type(self).__name__}: targets of shape {tuple(y_true.shape)} do not match "
                                 f"the output's {pred.shape}")
            y_true = y_true.reshape(pred.shape)  # (N,) for an output of (N, 1)
        target = Tensor(y_true.astype(pred.dtype, copy=False))
        per_value = self.elementwise(target, pred)
        per_sample = per_value.mean(axis=tuple(range(1, pred.ndim))) if pred.ndim > 1 else per_value
        if sample_weight is not None:
            per_sample = per_sample * sample_weight.astype(pred.dtype, copy=False)
        total = per_sample.sum()
        return total * (1.0 / len(per_sample)) if self.reduction == "mean" else total

    def get_config(self):
        return {"name": type(self).__name__, "reduction": self.reduction}


class MeanSquaredError(ElementwiseLoss):
    """(y_true - y_pred)², averaged: the regression loss."""

    def elementwise(self, target, pred):
        d = pred - target
        return d * d


class MeanAbsoluteError(ElementwiseLoss):
    """|y_true - y_pred|, averaged: less swayed by outliers than the squared error."""

    def elementwise(self, target, pred):
        return absolute(pred - target)


class Huber(ElementwiseLoss):
    """Squared for errors up to delta, linear beyond: 0.5 d² if |d| <= delta, else
    delta * (|d| - 0.5 delta). Written as 0.5 q² + delta * (|d| - q) with q = min(|d|, delta)."""

    def __init__(self, delta=1.0, reduction="mean"):
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"Huber: delta must be > 0, got {delta!r}")
        self.delta = float(delta)

    def elementwise(self, target, pred):
        size = absolute(pred - target)
        q = size.clip(0.0, self.delta)
        return q * q * 0.5 + (size - q) * self.delta

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class BinaryCrossentropy(ElementwiseLoss):
    """-(y log p + (1 - y) log(1 - p)) per value, targets in [0, 1] (one yes/no per output
    unit: a sigmoid output). from_logits=True takes the scores before the sigmoid and uses
    the stable form max(z, 0) - z y + log(1 + e^-|z|), which never takes the log of a
    probability rounded to 0. label_smoothing s moves the targets to y (1 - s) + s / 2."""

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="mean"):
        super().__init__(reduction)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"BinaryCrossentropy: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.from_logits, self.label_smoothing = from_logits, float(label_smoothing)

    def elementwise(self, target, pred):
        if self.label_smoothing:
            target = target * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            z = pred
            return z.relu() - z * target + ((-absolute(z)).exp() + 1.0).log()
        p = pred.clip(EPSILON, 1.0 - EPSILON)  # as Keras: no log(0)
        return -(target * p.log() + (1.0 - target) * (1.0 - p).log())

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


BY_NAME = {"mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
           "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
           "huber": Huber, "binary_crossentropy": BinaryCrossentropy}
CLASSES = (MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy)
