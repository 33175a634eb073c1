"""AUC: the area under the ROC curve or the precision-recall curve, as Keras's AUC().

Each output is a yes/no answer (confusion_metrics.py says how outputs and targets are read).
The batch adds, at each of T thresholds spread over [0, 1], the true and the false positives,
and the positives and negatives seen; the epoch's curve is drawn through those T points and
its area computed once from the totals:

    ROC: true-positive rate (recall) against false-positive rate; the chance that a random
         positive scores above a random negative
    PR:  precision against recall; how well the yeses stay right as more are found

multi_label=True keeps each output (label) apart: a curve per label, then the mean of their
areas (weighted by label_weights). Otherwise every output of every sample is one answer on
one curve, each counted with its label's weight where label_weights is given.
"""
import math

import numpy

from . import backend
from .confusion_metrics import ConfusionMetric, ConstantsOnDevice, weighted_count
from .functions.activation import sigmoid_forward

SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(ConfusionMetric):
    """Keras's AUC(num_thresholds=200, curve='ROC', summation_method='interpolation', name,
    thresholds=None, multi_label=False, num_labels=None, label_weights=None,
    from_logits=False), and class_id=k to watch output k alone.

    Thresholds: Keras's -eps, 1/(n-1), ..., (n-2)/(n-1), 1 + eps for num_thresholds=n, or
    the ones given (sorted, with -eps and 1 + eps added). The area between two thresholds'
    points: 'interpolation' the trapezoid for ROC (with 200 thresholds within about 1/200 of
    the exact rank statistic) and for PR Davis and Goadrich's interpolation (2006), since
    precision does not run straight between two points; 'minoring' / 'majoring' the lower /
    higher of the two heights (a Riemann sum from below / above). from_logits=True reads
    the outputs through a sigmoid first."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name="auc",
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False,
                 class_id=None):
        super().__init__(name, class_id)
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        if summation_method not in SUMMATIONS:
            raise ValueError(f"AUC: summation_method must be one of {SUMMATIONS}, got {summation_method!r}")
        if num_labels is not None and (isinstance(num_labels, bool) or not isinstance(num_labels, int)
                                       or num_labels < 1):
            raise ValueError(f"AUC: num_labels must be an int >= 1 or None, got {num_labels!r}")
        self.curve, self.summation_method, self.multi_label = curve, summation_method, bool(multi_label)
        self.num_labels, self.from_logits = num_labels, bool(from_logits)
        self.label_weights = self._checked_label_weights(label_weights)
        if self.label_weights is not None:
            self._label_weights = ConstantsOnDevice(numpy.array(self.label_weights, numpy.float32))
        eps = 1e-7
        if thresholds is not None:
            if not isinstance(thresholds, (list, tuple)) or not thresholds or any(
                    isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1 for t in thresholds):
                raise ValueError(f"AUC: thresholds must be a list of numbers in [0, 1], got {thresholds!r}")
            inner = sorted(float(t) for t in thresholds)
            self.given_thresholds = inner
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, numpy.integer)) \
                    or num_thresholds < 2:
                raise ValueError(f"AUC: num_thresholds must be an int > 1, got {num_thresholds!r}")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self.given_thresholds = None
        self.thresholds = numpy.array([-eps, *inner, 1 + eps], dtype=numpy.float32)
        self.num_thresholds = len(self.thresholds)
        self._cutoffs = ConstantsOnDevice(self.thresholds)

    @staticmethod
    def _checked_label_weights(label_weights):
        if label_weights is None:
            return None
        values = list(label_weights) if isinstance(label_weights, (list, tuple, numpy.ndarray)) else None
        if not values or any(isinstance(w, bool) or not isinstance(w, (int, float, numpy.number))
                             or not (math.isfinite(w) and w >= 0) for w in values):
            raise ValueError(f"AUC: label_weights must be a list of finite numbers >= 0, one per output, got "
                             f"{label_weights!r}")
        return [float(w) for w in values]

    def __call__(self, scores, labels, weights=None):
        """(L * (2T + 2),): per curve (L labels with multi_label, else one), the true
        positives at each of the T thresholds, the false positives at each, then the
        positives and the negatives (each answer counted with its weight where given)."""
        xp = backend.get_array_module(scores)
        scores, truth, weights = self.table(scores, labels, weights)  # (N, K)
        outputs = scores.shape[1]
        if self.num_labels is not None and self.multi_label and outputs != self.num_labels:
            raise ValueError(f"{self.name}: num_labels={self.num_labels}, but the output has {outputs} values")
        if self.label_weights is not None:
            if len(self.label_weights) != outputs:
                raise ValueError(f"{self.name}: label_weights has {len(self.label_weights)} weights, but the "
                                 f"output has {outputs} values")
            label_weights = self._label_weights.on(scores)
            if not self.multi_label:  # each answer weighs its label's weight (times its sample's)
                weights = label_weights if weights is None else weights * label_weights
                weights = xp.broadcast_to(weights, scores.shape)
        if self.from_logits:
            scores, _ = sigmoid_forward(scores)  # the tanh form: no overflow for large logits
        if not self.multi_label:  # every answer on one curve
            scores, truth = scores.reshape(-1, 1), truth.reshape(-1, 1)
            weights = None if weights is None else weights.reshape(-1, 1)
        said_yes = scores[:, :, None] > self._cutoffs.on(scores)  # (N, L, T)
        true_yes = weighted_count(said_yes & truth[:, :, None], weights, axis=0)  # (L, T)
        false_yes = weighted_count(said_yes & ~truth[:, :, None], weights, axis=0)
        kinds = [weighted_count(truth, weights, axis=0), weighted_count(~truth, weights, axis=0)]  # (L,) each
        return xp.concatenate([true_yes.reshape(-1).astype(numpy.float64), false_yes.reshape(-1).astype(numpy.float64),
                               *(k.astype(numpy.float64) for k in kinds)])

    def result(self, total):
        t = self.num_thresholds
        total = numpy.asarray(total, dtype=numpy.float64)
        labels = len(total) // (2 * t + 2)
        true_yes, false_yes = total[:labels * t].reshape(labels, t), total[labels * t:2 * labels * t].reshape(labels, t)
        positives, negatives = total[2 * labels * t:2 * labels * t + labels], total[2 * labels * t + labels:]
        areas = numpy.array([self._area(true_yes[k], false_yes[k], positives[k], negatives[k])
                             for k in range(labels)])
        if labels == 1:
            return float(areas[0])
        if self.label_weights is None:
            return float(areas.mean())
        weights = numpy.array(self.label_weights)
        return float((areas * weights).sum() / weights.sum()) if weights.sum() else 0.0

    def _area(self, true_yes, false_yes, positives, negatives):
        """One curve's area from its counts (T,) at each threshold, lowest threshold first."""
        if self.curve == "PR":
            if not positives:
                return 0.0
            if self.summation_method == "interpolation":
                return self._pr_area(true_yes, false_yes, positives)
            said = true_yes + false_yes
            with numpy.errstate(invalid="ignore", divide="ignore"):
                precision = numpy.where(said > 0, true_yes / numpy.where(said > 0, said, 1.0), 0.0)
            return self._riemann(true_yes / positives, precision)
        if not positives or not negatives:
            return 0.0  # no curve to draw without both kinds, as Keras gives
        return self._riemann(false_yes / negatives, true_yes / positives)  # from (1, 1) down to (0, 0)

    def _riemann(self, x, y):
        """Sum of the steps' widths x[i] - x[i+1] times their heights: the trapezoid's mean of
        the two ends ('interpolation'), or the lower ('minoring') or higher ('majoring') end."""
        heights = {"interpolation": (y[:-1] + y[1:]) / 2, "minoring": numpy.minimum(y[:-1], y[1:]),
                   "majoring": numpy.maximum(y[:-1], y[1:])}[self.summation_method]
        return float(((x[:-1] - x[1:]) * heights).sum())

    @staticmethod
    def _pr_area(true_yes, false_yes, positives):
        """Area under precision against recall, one threshold step at a time. Lowering the
        threshold from step i+1 to step i raises the yeses from said[i+1] to said[i]
        (said = tp + fp), and the true positives among the new ones are taken to come at a
        steady rate: tp = slope * said + intercept along the step. Precision tp / said then
        follows a hyperbola, not a line, and its integral over recall (d tp / positives) is
        slope * (d tp + intercept * ln(said[i] / said[i+1])) / positives. A step that adds
        no yes adds no area; one starting from no yes at all adds its straight part only."""
        said = true_yes + false_yes
        d_true, d_said = true_yes[:-1] - true_yes[1:], said[:-1] - said[1:]
        with numpy.errstate(invalid="ignore", divide="ignore"):
            slope = numpy.where(d_said > 0, d_true / numpy.maximum(d_said, 1e-300), 0.0)
            intercept = true_yes[1:] - slope * said[1:]
            both = (said[:-1] > 0) & (said[1:] > 0)
            ratio = numpy.where(both, said[:-1] / numpy.where(both, said[1:], 1.0), 1.0)
        return float((slope * (d_true + intercept * numpy.log(ratio))).sum() / positives)

    def get_config(self):
        config = {**super().get_config(), "curve": self.curve, "summation_method": self.summation_method,
                  "multi_label": self.multi_label, "num_labels": self.num_labels,
                  "label_weights": self.label_weights, "from_logits": self.from_logits}
        if self.given_thresholds is not None:
            config["thresholds"] = self.given_thresholds
        else:
            config["num_thresholds"] = self.num_thresholds
        return config
