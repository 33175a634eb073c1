"""Cross-entropy losses with Keras's names, and the registry of every loss compile()
takes by name (the elementwise ones, MSE, MAE, Huber, binary cross-entropy and the rest, are in
elementwise_losses.py; KL divergence and cosine similarity, which compare whole rows, in
row_losses.py).

``from_logits=False`` (Keras's default) means the model outputs probabilities. When
the model's last step is a softmax, ``Sequential`` hands the loss the logits before
it instead, and the fused, numerically stable softmax cross-entropy is used: the
same value, without ever taking log of a rounded-to-zero probability.
"""
import numpy

from . import elementwise_losses, functional as F, row_losses
from .elementwise_losses import (BinaryCrossentropy, BinaryFocalCrossentropy, ElementwiseLoss, Hinge, Huber,  # noqa: F401
                                 LogCosh, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError,
                                 MeanSquaredLogarithmicError, Poisson, SquaredHinge)
from .row_losses import CategoricalHinge, CosineSimilarity, KLDivergence  # noqa: F401
from .functions.loss import one_hot_targets


def _widened(scores):
    """float16 scores (a Tensor) as float32; others, and None, as they are."""
    if scores is not None and scores.dtype == numpy.float16:
        return scores.astype(numpy.float32)
    return scores


class CategoricalCrossentropy:
    """Targets are one-hot rows (N, K) (integer labels are accepted too)."""
    sparse = False
    classifies = True     # labels are classes: class_weight and the argmax accuracy apply
    takes_logits = True   # a final softmax's input is welcome (the fused, stable form)

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="mean"):
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.from_logits, self.label_smoothing, self.reduction = from_logits, label_smoothing, reduction

    def __call__(self, y_true, y_pred, logits=None, check=True, sample_weight=None):
        """y_pred: model output (N, K); logits: pre-softmax Tensor when known; sample_weight:
        (N,) on the model's device, each sample's loss times its weight (divided by N all
        the same, as Keras). A float16 model's scores are taken as float32 (as Keras's
        losses do): float16's exponent and logarithm lose too much for a loss, and the
        cast's gradient goes back as float16."""
        y_pred, logits = _widened(y_pred), _widened(logits)
        if self.from_logits or logits is not None:
            return F.softmax_cross_entropy(y_pred if self.from_logits else logits, y_true,
                                           self.label_smoothing, self.reduction, check, sample_weight)
        # Probabilities from some other output (e.g. sigmoid): Keras rescales rows to
        # sum to 1 and clips away from 0 and 1 before the log.
        eps = 1e-7
        p = (y_pred / y_pred.sum(axis=1, keepdims=True)).clip(eps, 1 - eps)
        targets = one_hot_targets(y_true, p.shape[1], p.dtype, self.label_smoothing, check)
        if sample_weight is not None:  # a weight per row: a constant of the loss, like the targets
            targets = targets * sample_weight.astype(targets.dtype)[:, None]
        loss = -(p.log() * targets).sum()
        return loss * (1.0 / len(p)) if self.reduction == "mean" else loss

    def get_config(self):
        return {"name": type(self).__name__, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "reduction": self.reduction}


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Targets are integer class indices (N,) or (N, 1)."""
    sparse = True

    def __init__(self, from_logits=False, reduction="mean"):
        super().__init__(from_logits, 0.0, reduction)

    def get_config(self):
        config = super().get_config()
        del config["label_smoothing"]
        return config


class CategoricalFocalCrossentropy(CategoricalCrossentropy):
    """Keras's CategoricalFocalCrossentropy (Lin et al. 2017): each row's cross-entropy
    with the true class's term times alpha (1 - p)^gamma, so the samples already classified
    with confidence count for little and the hard ones (and, in an imbalanced set, the rare
    classes, which stay hard longest) dominate; gamma=0, alpha=1 is the plain loss:

        loss = -sum over k of alpha (1 - p_k)^gamma t_k log p_k

    Targets as CategoricalCrossentropy's (one-hot rows or integer labels, label_smoothing).
    From logits (a final softmax's input, or from_logits=True) log p is the stable log-softmax;
    from probabilities, Keras's rescaled and clipped rows."""

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, reduction="mean"):
        super().__init__(from_logits, label_smoothing, reduction)
        if not alpha > 0 or not gamma >= 0:
            raise ValueError(f"CategoricalFocalCrossentropy: need alpha > 0 and gamma >= 0; got {alpha}, {gamma}")
        self.alpha, self.gamma = float(alpha), float(gamma)

    def __call__(self, y_true, y_pred, logits=None, check=True, sample_weight=None):
        y_pred, logits = _widened(y_pred), _widened(logits)
        if self.from_logits or logits is not None:
            log_p = (y_pred if self.from_logits else logits).log_softmax(axis=1)
            p = log_p.exp()
        else:
            eps = 1e-7
            p = (y_pred / y_pred.sum(axis=1, keepdims=True)).clip(eps, 1 - eps)
            log_p = p.log()
        targets = one_hot_targets(y_true, p.shape[1], p.dtype, self.label_smoothing, check)
        if sample_weight is not None:  # a weight per row: a constant of the loss, like the targets
            targets = targets * sample_weight.astype(targets.dtype)[:, None]
        focus = (1.0 - p) ** self.gamma if self.gamma else None
        terms = log_p * targets if focus is None else focus * log_p * targets
        loss = -(terms.sum() * self.alpha)
        return loss * (1.0 / len(p)) if self.reduction == "mean" else loss

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


_BY_NAME = {"categorical_crossentropy": CategoricalCrossentropy,
            "categorical_focal_crossentropy": CategoricalFocalCrossentropy,
            "sparse_categorical_crossentropy": SparseCategoricalCrossentropy, **elementwise_losses.BY_NAME,
            **row_losses.BY_NAME}


def deserialize(config):
    """A loss from its get_config() dict."""
    classes = {cls.__name__: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                             CategoricalFocalCrossentropy,
                                             *elementwise_losses.CLASSES, *row_losses.CLASSES)}
    config = dict(config)
    name = config.pop("name", None)
    if name not in classes:
        raise ValueError(f"unknown loss class {name!r}; known: {sorted(classes)}")
    return classes[name](**config)


def get(identifier):
    if isinstance(identifier, (CategoricalCrossentropy, ElementwiseLoss)):
        return identifier
    if identifier not in _BY_NAME:
        raise ValueError(f"unknown loss {identifier!r}; known: {sorted(_BY_NAME)} "
                         f"or a minicnn.losses object")
    return _BY_NAME[identifier]()
