"""Precision, recall, the area under the ROC curve and the F-scores, as Keras's metrics of
those names (``metrics=["accuracy", Precision(), Recall(), AUC(), F1Score()]``, or the names
"precision", "recall", "auc", "f1_score"). AUC, which draws a whole curve, is in
area_under_curve.py; what it shares with the others (reading the answers) is here.

Each output is read as a yes/no answer for its sample: the output is a probability (a
sigmoid's, or a softmax's), "yes" where it is above the threshold, and the truth is the
target (binary labels 0/1, or, for integer class labels of a softmax output, the one-hot
row). Over all of them, as Keras counts:

    precision = true positives / predicted positives    (of the yeses, how many are right)
    recall    = true positives / actual positives       (of the true ones, how many are found)
    AUC       = area under the curve of recall (true-positive rate) against false-positive
                rate as the threshold sweeps from 0 to 1: the chance that a random positive
                scores above a random negative

None of these is a mean over samples, so each batch adds a small vector of counts on the
device (true positives, predicted positives, ...: no synchronisation) and the epoch's figure
is computed from their totals (``result``), as Keras's stateful metrics do. Some figures are
several numbers, as in Keras: precision or recall at a list of thresholds, the F-scores
with average=None (one per class); the logs then hold a list of floats. class_id=k keeps
only output k: the precision or recall of class k; top_k=k (Precision and Recall) counts
only each sample's k largest outputs as possible yeses. Given in weighted_metrics, each answer
counts with its sample's weight (sample_weight, times class_weight's in training).
"""
import numpy

from . import backend
from .metrics import true_classes


class ConfusionMetric:
    """What Precision, Recall and AUC share: reading outputs and targets as yes/no answers."""
    takes_output = True  # probabilities, not the logits the fused cross-entropy took

    def __init__(self, name, class_id):
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(class_id, (int, numpy.integer))
                                     or class_id < 0):
            raise ValueError(f"{type(self).__name__}: class_id must be an output index >= 0 or None, got {class_id!r}")
        self.name, self.class_id = name, class_id

    def table(self, scores, labels, weights=None):
        """(scores, truth, weights) as a table of samples by outputs: the outputs (N, K),
        whether each is truly yes (N, K) bool, and each one's sample weight (N, K), or None;
        K = 1 with class_id (that output alone)."""
        xp = backend.get_array_module(scores)
        # float16 outputs (mixed precision) compared in float32: 1/199 and its neighbours are
        # not float16 numbers, and thresholds would merge
        scores = scores.reshape(len(scores), -1).astype(numpy.promote_types(scores.dtype, numpy.float32), copy=False)
        if scores.shape[1] > 1 and (labels.ndim == 1 or labels.shape[1:] == (1,)):  # class labels: one-hot rows
            truth = xp.zeros(scores.shape, dtype=bool)
            truth[xp.arange(len(scores)), true_classes(labels)] = True
        else:
            truth = labels.reshape(scores.shape) != 0
        if weights is not None:  # each sample's weight for every one of its outputs
            weights = xp.broadcast_to(weights.reshape(-1, 1), scores.shape)
        top_k = getattr(self, "top_k", None)
        if top_k is not None and top_k < scores.shape[1]:  # Keras's: outside a sample's k largest, never a yes
            # stable, so ties go to the lower index, as top_k's (CuPy's argsort is always stable)
            order = xp.argsort(-scores, axis=1, kind="stable") if xp is numpy else xp.argsort(-scores, axis=1)
            largest = order[:, :top_k]
            kept = xp.zeros(scores.shape, dtype=bool)
            kept[xp.arange(len(scores))[:, None], largest] = True
            scores = xp.where(kept, scores, scores.dtype.type(-numpy.inf))
        if self.class_id is not None:
            if self.class_id >= scores.shape[1]:
                raise ValueError(f"{self.name}: class_id={self.class_id}, but the output has {scores.shape[1]} values")
            keep = slice(self.class_id, self.class_id + 1)
            scores, truth = scores[:, keep], truth[:, keep]
            weights = None if weights is None else weights[:, keep]
        return scores, truth, weights

    def answers(self, scores, labels, weights=None):
        """table's (scores, truth, weights) flattened over samples and outputs: (M,) each,
        every output of every sample one yes/no answer."""
        scores, truth, weights = self.table(scores, labels, weights)
        return scores.reshape(-1), truth.reshape(-1), None if weights is None else weights.reshape(-1)

    def get_config(self):
        return {"class_name": type(self).__name__, "name": self.name, "class_id": self.class_id}


class ConstantsOnDevice:
    """Constants of a metric (thresholds, label weights) kept on the host, copied once to each
    device and dtype they are used in (an explicit copy, then reused: no transfer per batch)."""

    def __init__(self, values):
        self.values, self._copies = values, {}

    def on(self, scores):
        key = (backend.device_of(scores), scores.dtype)
        if key not in self._copies:
            self._copies[key] = backend.to_device(self.values.astype(scores.dtype), key[0])
        return self._copies[key]


def weighted_count(mask, weights, axis=None):
    """How many are True in mask (over axis), each counted with its weight where given
    (weights shaped as mask's leading axes: (M,) for an (M, T) mask, (N, K) for (N, K, T))."""
    if weights is None:
        return mask.sum(axis=axis)
    return (mask * weights.reshape(weights.shape + (1,) * (mask.ndim - weights.ndim))).sum(axis=axis)


class _Ratio(ConfusionMetric):
    """Precision or recall at one threshold, or (thresholds a list, as Keras's) at each of
    several: the batch adds (true positives, the count they are a fraction of) per threshold."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None):
        super().__init__(name or type(self).__name__.lower(), class_id)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, numpy.integer)) or top_k < 1):
            raise ValueError(f"{type(self).__name__}: top_k must be an int >= 1 or None, got {top_k!r}")
        self.top_k, self.given = top_k, thresholds
        # as Keras: 0.5 by default; with top_k, every one of a sample's k largest outputs is a yes
        given = (0.5 if top_k is None else -numpy.inf) if thresholds is None else thresholds
        self.several = isinstance(given, (list, tuple))
        values = list(given) if self.several else [given]
        if thresholds is not None and (not values or any(
                isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1 for t in values)):
            raise ValueError(f"{type(self).__name__}: thresholds must be a number in [0, 1] or a list of them, "
                             f"got {thresholds!r}")
        self.thresholds = [float(t) for t in values]
        # float64 on the host, cast to the outputs' dtype on the device: 0.3 compares as float32(0.3)
        self._cutoffs = ConstantsOnDevice(numpy.array(self.thresholds, dtype=numpy.float64))

    def __call__(self, scores, labels, weights=None):
        """(2 * T,): the true positives at each of the T thresholds, then the whole each is
        a fraction of (predicted positives for precision, actual positives for recall)."""
        scores, truth, weights = self.answers(scores, labels, weights)
        said_yes = scores[:, None] > self._cutoffs.on(scores)  # (M, T)
        xp = backend.get_array_module(scores)
        true_yes = weighted_count(said_yes & truth[:, None], weights, axis=0)
        whole = weighted_count(self._whole(said_yes, truth[:, None]), weights, axis=0)
        return xp.concatenate([true_yes, whole]).astype(numpy.float64)

    def result(self, total):
        """true positives / the whole, per threshold; 0 where the whole is 0, as Keras's
        divide_no_nan. One number, or a list of one per threshold."""
        true_yes, whole = numpy.split(numpy.asarray(total, dtype=numpy.float64), 2)
        with numpy.errstate(invalid="ignore", divide="ignore"):
            ratios = numpy.where(whole > 0, true_yes / numpy.where(whole > 0, whole, 1.0), 0.0)
        return [float(r) for r in ratios] if self.several else float(ratios[0])

    def get_config(self):
        thresholds = None if self.given is None else self.thresholds if self.several else self.thresholds[0]
        return {**super().get_config(), "thresholds": thresholds, "top_k": self.top_k}


class Precision(_Ratio):
    """Of the outputs answered yes (above the threshold, 0.5 by default), the fraction truly yes."""

    @staticmethod
    def _whole(said_yes, truth):
        return said_yes


class Recall(_Ratio):
    """Of the outputs truly yes, the fraction answered yes (above the threshold)."""

    @staticmethod
    def _whole(said_yes, truth):
        return backend.get_array_module(truth).broadcast_to(truth, said_yes.shape)  # the same at every threshold


class FBetaScore(ConfusionMetric):
    """Keras's FBetaScore: per class k, the weighted harmonic mean of its precision p and
    recall r, (1 + beta²) p r / (beta² p + r) (beta > 1 favours recall), then averaged:
    average='macro' the plain mean over classes, 'weighted' the mean weighed by each class's
    true count, 'micro' the score of all answers' counts pooled (for one label per sample,
    the accuracy), average=None (Keras's default) no average: a list of the K classes'
    scores. macro is minicnn's default because EarlyStopping, ModelCheckpoint and the
    progress line's figure want one number. threshold=None says yes to each sample's
    largest output alone (a classifier's answer); a number, to every output above it
    (several labels, or one sigmoid output: give 0.5 there). The batch adds each class's
    (true positives, false positives, false negatives)."""

    def __init__(self, average="macro", beta=1.0, threshold=None, name="fbeta_score"):
        super().__init__(name, None)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{type(self).__name__}: average must be None (a score per class), 'micro', 'macro' "
                             f"or 'weighted', got {average!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"{type(self).__name__}: beta must be a number > 0, got {beta!r}")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or not 0 <= threshold <= 1):
            raise ValueError(f"{type(self).__name__}: threshold must be None or a number in [0, 1], got "
                             f"{threshold!r}")
        self.average, self.beta, self.threshold = average, float(beta), threshold

    def __call__(self, scores, labels, weights=None):
        """(3 * K,): each class's true positives, false positives and false negatives."""
        xp = backend.get_array_module(scores)
        scores, truth, weights = self.table(scores, labels, weights)
        if self.threshold is None:  # each sample's largest output is its one yes
            said_yes = xp.zeros(scores.shape, dtype=bool)
            said_yes[xp.arange(len(scores)), scores.argmax(axis=1)] = True
        else:
            said_yes = scores > scores.dtype.type(self.threshold)
        count = lambda mask: mask.sum(axis=0) if weights is None else (mask * weights).sum(axis=0)  # noqa: E731
        return xp.concatenate([count(said_yes & truth), count(said_yes & ~truth), count(~said_yes & truth)]).astype(
            numpy.float64)

    def result(self, total):
        true_yes, false_yes, missed = numpy.split(numpy.asarray(total, dtype=numpy.float64), 3)
        b2 = self.beta ** 2
        if self.average == "micro":  # the classes' counts pooled first
            true_yes, false_yes, missed = true_yes.sum(keepdims=True), false_yes.sum(keepdims=True), \
                missed.sum(keepdims=True)
        with numpy.errstate(invalid="ignore", divide="ignore"):  # 0 / 0: a class never said nor true scores 0
            precision = numpy.where(true_yes + false_yes > 0, true_yes / (true_yes + false_yes), 0.0)
            recall = numpy.where(true_yes + missed > 0, true_yes / (true_yes + missed), 0.0)
            score = numpy.where(b2 * precision + recall > 0,
                                (1 + b2) * precision * recall / (b2 * precision + recall), 0.0)
        if self.average is None:  # Keras's default: one score per class, logged as a list
            return [float(one) for one in score]
        if self.average == "weighted":
            support = true_yes + missed
            return float((score * support).sum() / support.sum()) if support.sum() else 0.0
        return float(score.mean())

    def get_config(self):
        config = {**super().get_config(), "average": self.average, "beta": self.beta, "threshold": self.threshold}
        del config["class_id"]
        return config


class F1Score(FBetaScore):
    """FBetaScore with beta = 1: the harmonic mean of precision and recall, per class, averaged."""

    def __init__(self, average="macro", threshold=None, name="f1_score"):
        super().__init__(average, 1.0, threshold, name)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


from .area_under_curve import AUC  # noqa: E402  (it builds on ConfusionMetric, above)

CLASSES = {cls.__name__: cls for cls in (Precision, Recall, AUC, FBetaScore, F1Score)}
BY_NAME = {"precision": Precision, "recall": Recall, "auc": AUC, "f1_score": F1Score}


def deserialize(config):
    """A metric from its get_config() dict."""
    config = dict(config)
    cls = CLASSES.get(config.pop("class_name", None))
    if cls is None:
        raise ValueError(f"unknown metric class in {config!r}; known: {sorted(CLASSES)}")
    return cls(**config)
