"""Losses that compare the output with its target value by value, with Keras's names:
MeanSquaredError ('mse'), MeanAbsoluteError ('mae'), Huber, MeanSquaredLogarithmicError
('msle'), MeanAbsolutePercentageError ('mape'), LogCosh, Poisson, BinaryCrossentropy,
BinaryFocalCrossentropy, Hinge, SquaredHinge. For regression (a number, a vector, a whole
image per sample: an autoencoder's input), counts (Poisson) and yes/no outputs (one sigmoid
per label; the hinges take -1/1 or 0/1 targets and a tanh or linear output).

The cross-entropies of losses.py compare a row of class scores with a class label; these
take a target y_true shaped as the output (or (N,) for an output of one value) and:
  1. an elementwise loss l(y_true, y_pred), shaped as the output;
  2. its mean over each sample's values: one loss per sample, (N,);
  3. times sample_weight (N,) when given; then Keras's 'sum_over_batch_size': the sum
     over the batch divided by N (reduction='mean'), or the sum ('sum').
All of it is Tensor arithmetic (autograd.py), so the gradients come from the ops'
own backwards: no hand-written derivative here. (row_losses.py holds the two that compare
a whole row at once: KLDivergence and CosineSimilarity.)
"""
import numpy

from . import backend, functional as F
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
    yes_no = False          # targets are not 0/1 answers (BinaryCrossentropy's are)
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
        per_sample = self.per_sample(y_true, y_pred)
        if sample_weight is not None:
            per_sample = per_sample * sample_weight.astype(per_sample.dtype, copy=False)
        total = per_sample.sum()
        return total * (1.0 / len(per_sample)) if self.reduction == "mean" else total

    def per_sample(self, y_true, y_pred):
        """Steps 1 and 2: each sample's loss, a Tensor (N,) (metrics.LossValues reads it too)."""
        pred = _widened(y_pred)
        if tuple(y_true.shape) != pred.shape:
            if y_true.size != pred.data.size:
                raise ValueError(f"{type(self).__name__}: targets of shape {tuple(y_true.shape)} do not match "
                                 f"the output's {pred.shape}")
            y_true = y_true.reshape(pred.shape)  # (N,) for an output of (N, 1)
        target = Tensor(y_true.astype(pred.dtype, copy=False))
        per_value = self.elementwise(target, pred)  # (N, ...); a row loss's: (N, ...) less the last axis
        return per_value.mean(axis=tuple(range(1, per_value.ndim))) if per_value.ndim > 1 else per_value

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

    yes_no = True  # targets are 0/1 answers: 'accuracy' counts them, class_weight weighs 0 and 1

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="mean"):
        super().__init__(reduction)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"{type(self).__name__}: label_smoothing must be in [0, 1), got {label_smoothing}")
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


class MeanSquaredLogarithmicError(ElementwiseLoss):
    """(log(1 + p) - log(1 + y))², averaged (values below eps taken as eps, as Keras): the
    squared error of the logarithms, for targets spanning orders of magnitude, where being
    off by 10% should cost the same at 10 as at 10 000."""

    def elementwise(self, target, pred):
        d = (pred.clip(EPSILON, numpy.inf) + 1.0).log() - (target.clip(EPSILON, numpy.inf) + 1.0).log()
        return d * d


class MeanAbsolutePercentageError(ElementwiseLoss):
    """100 |y - p| / max(|y|, eps), averaged: the error as a percentage of the target."""

    def elementwise(self, target, pred):
        xp = backend.get_array_module(target.data)
        scale = xp.maximum(xp.abs(target.data), target.dtype.type(EPSILON))  # a constant: the target's own
        return absolute(target - pred) * (100.0 / scale)


class LogCosh(ElementwiseLoss):
    """log(cosh(p - y)), averaged: about d²/2 for small errors and |d| - log 2 for large ones,
    as Huber's, but smooth everywhere. Written as d + softplus(-2d) - log 2, which never
    overflows cosh."""

    def elementwise(self, target, pred):
        d = pred - target
        return d + F.softplus(d * -2.0) - float(numpy.log(2.0))


class Poisson(ElementwiseLoss):
    """p - y log(p + eps), averaged: the negative log-likelihood (up to a constant) of counts
    y under a Poisson rate p; the output must be positive (a softplus or exp)."""

    def elementwise(self, target, pred):
        return pred - target * (pred + EPSILON).log()


class BinaryFocalCrossentropy(BinaryCrossentropy):
    """Keras's BinaryFocalCrossentropy (Lin et al. 2017): binary cross-entropy times
    (1 - p_t)^gamma, p_t the probability given to the true answer, so the many answers the
    model already gets right count for little and the hard ones dominate (gamma=0 is the
    plain loss). apply_class_balancing=True also weighs yes targets by alpha and no targets by
    1 - alpha. from_logits and label_smoothing as BinaryCrossentropy's."""

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, reduction="mean"):
        super().__init__(from_logits, label_smoothing, reduction)
        if not 0 <= alpha <= 1 or not gamma >= 0:
            raise ValueError(f"BinaryFocalCrossentropy: need 0 <= alpha <= 1 and gamma >= 0; got {alpha}, {gamma}")
        self.apply_class_balancing, self.alpha, self.gamma = bool(apply_class_balancing), float(alpha), float(gamma)

    def elementwise(self, target, pred):
        cross_entropy = super().elementwise(target, pred)
        if self.label_smoothing:  # p_t against the smoothed target too, as Keras
            target = target * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        p = F.sigmoid(pred) if self.from_logits else pred
        p_true = target * p + (1.0 - target) * (1.0 - p)
        loss = (1.0 - p_true) ** self.gamma * cross_entropy if self.gamma else cross_entropy
        if self.apply_class_balancing:
            loss = (target * self.alpha + (1.0 - target) * (1.0 - self.alpha)) * loss
        return loss

    def get_config(self):
        return {**super().get_config(), "apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha,
                "gamma": self.gamma}


def _hinge_targets(target):
    """Keras's: targets that are all 0 or 1 become -1 or 1; -1/1 targets stay. Decided on the
    device (a where, no synchronisation)."""
    xp = backend.get_array_module(target.data)
    t = target.data
    binary = ((t == 0) | (t == 1)).all()
    return Tensor(xp.where(binary, t * t.dtype.type(2) - t.dtype.type(1), t))


class Hinge(ElementwiseLoss):
    """max(1 - y p, 0), averaged, targets -1/1 (0/1 are converted): the SVM's margin loss,
    zero once the output is on the right side by at least 1."""

    def elementwise(self, target, pred):
        return (1.0 - _hinge_targets(target) * pred).relu()


class SquaredHinge(Hinge):
    """max(1 - y p, 0)², averaged: the hinge, squared (smooth where the margin is met)."""

    def elementwise(self, target, pred):
        margin = super().elementwise(target, pred)
        return margin * margin


BY_NAME = {"mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
           "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
           "msle": MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
           "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
           "huber": Huber, "log_cosh": LogCosh, "logcosh": LogCosh, "poisson": Poisson,
           "binary_crossentropy": BinaryCrossentropy, "binary_focal_crossentropy": BinaryFocalCrossentropy,
           "hinge": Hinge, "squared_hinge": SquaredHinge}
CLASSES = (MeanSquaredError, MeanAbsoluteError, MeanSquaredLogarithmicError, MeanAbsolutePercentageError, Huber,
           LogCosh, Poisson, BinaryCrossentropy, BinaryFocalCrossentropy, Hinge, SquaredHinge)
