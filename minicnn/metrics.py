"""Classification metrics: the confusion matrix and what it implies (host arrays), and the
metrics fit counts batch by batch on the device (accuracy, top-5 accuracy)."""
import numpy

from . import backend
from .autograd import Tensor, no_grad


def confusion_matrix(truth, predicted, num_classes):
    """counts[i, j] = how many samples of true class i were predicted as j.

    truth, predicted: int arrays (N,). Returns an int64 (num_classes, num_classes) array."""
    truth, predicted = numpy.asarray(truth).reshape(-1), numpy.asarray(predicted).reshape(-1)
    if truth.shape != predicted.shape:
        raise ValueError(f"confusion_matrix: {truth.size} true labels but {predicted.size} predictions")
    # each (true, predicted) pair becomes one flat cell index; bincount counts them
    cells = numpy.bincount(truth * num_classes + predicted, minlength=num_classes * num_classes)
    return cells.reshape(num_classes, num_classes)


def per_class_accuracy(matrix):
    """Accuracy within each true class (the diagonal over the row sums); NaN for a class
    with no samples."""
    totals = matrix.sum(axis=1)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        return numpy.where(totals > 0, numpy.diag(matrix) / numpy.maximum(totals, 1), numpy.nan)


def format_confusion_matrix(matrix, names):
    """The matrix as text with class names on both axes (rows: true, columns: predicted)."""
    short = [n[:5] for n in names]
    width = max(5, len(str(matrix.max())))
    lines = [" " * 12 + " ".join(f"{s:>{width}}" for s in short)]
    for name, row in zip(names, matrix):
        lines.append(f"{name:<11} " + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


# --- metrics counted during training -------------------------------------------------------
# fit and evaluate add up, batch by batch and on the model's device (no synchronisation),
# how many samples each metric counts as right; the epoch's value is that count over the
# samples seen. Labels are integers (N,) / (N, 1) or one-hot rows (N, K).
def true_classes(labels):
    """Integer class of each sample, (N,), from integer or one-hot labels, or from yes/no
    targets (N,) or (N, 1) of a single output, rounded (Keras's rule for class_weight)."""
    if labels.ndim == 2 and labels.shape[1] > 1:
        return labels.argmax(axis=1)
    flat = labels.reshape(-1)
    if flat.dtype.kind == "f":
        return backend.get_array_module(flat).rint(flat).astype(numpy.int32)
    return flat


# Each metric is a function of the batch giving one value per sample (N,); its counter sums
# them. A weighted metric (compile's weighted_metrics) sums them times the samples' weights.
def correct_per_sample(scores, labels):
    """True where a row of scores (N, K) has its largest score at the true class."""
    return scores.argmax(axis=1) == true_classes(labels)


def correct_count(scores, labels):
    """How many rows of scores (N, K) have their largest score at the true class."""
    return correct_per_sample(scores, labels).sum()


def top_k_per_sample(scores, labels, k=5):
    """True where the true class is among a row's k largest scores: its rank (how many
    classes scored strictly higher) is below k. No sort needed."""
    truth = true_classes(labels)
    xp = backend.get_array_module(scores)
    true_score = scores[xp.arange(len(scores)), truth]
    return (scores > true_score[:, None]).sum(axis=1) < k


def top_k_count(scores, labels, k=5):
    """How many rows have the true class among their k largest scores."""
    return top_k_per_sample(scores, labels, k).sum()


def _top5_per_sample(scores, labels):
    return top_k_per_sample(scores, labels, 5)


# For the elementwise losses (elementwise_losses.py) the targets are values shaped as the
# output; each metric sums a per-sample mean over the batch, so that sum over the samples
# seen is the epoch's mean, as with the counts above.
def _targets(labels, scores):
    """The targets as the output's shape and dtype ((N,) for an (N, 1) output)."""
    return labels.reshape(scores.shape).astype(scores.dtype, copy=False)


def _sample_means(values):
    """(N, ...) -> (N,): each sample's mean over its values."""
    return values.reshape(len(values), -1).mean(axis=1)


def absolute_errors(scores, labels):
    """Each sample's mean |y_true - y_pred| (Keras's 'mae'), (N,)."""
    xp = backend.get_array_module(scores)
    return _sample_means(xp.abs(scores - _targets(labels, scores)))


def squared_errors(scores, labels):
    """Each sample's mean (y_true - y_pred)² (Keras's 'mse'), (N,)."""
    d = scores - _targets(labels, scores)
    return _sample_means(d * d)


def binary_right(scores, labels, threshold=0.5):
    """Each sample's fraction of outputs on the right side of ``threshold`` (Keras's
    binary_accuracy: the target equals prediction > threshold), (N,)."""
    right = _targets(labels, scores) == (scores > threshold).astype(scores.dtype)
    return _sample_means(right.astype(scores.dtype))


def _binary_right_from_logits(scores, labels):
    return binary_right(scores, labels, 0.0)  # sigmoid(z) > 0.5 exactly when z > 0


class Summed:
    """A metric's counter: its per-sample values summed over the batch (on the device)."""

    def __init__(self, per_sample):
        self.per_sample = per_sample

    def __call__(self, scores, labels):
        return self.per_sample(scores, labels).sum()


absolute_error_sum, squared_error_sum, binary_right_sum = Summed(absolute_errors), Summed(squared_errors), \
    Summed(binary_right)
_correct, _top5_count, _binary_from_logits = Summed(correct_per_sample), Summed(_top5_per_sample), \
    Summed(_binary_right_from_logits)


class LossValues(Summed):
    """A value loss's per-sample values as a metric, as Keras has a metric of each loss's
    name ('msle', 'mape', 'log_cosh', 'poisson', 'kld', 'hinge', 'squared_hinge'), computed
    by the loss itself (elementwise_losses.py, row_losses.py) without a graph;
    'cosine_similarity' logs the cosine itself, as Keras's metric does (the loss is its negative)."""

    def __init__(self, loss, sign=1.0):
        super().__init__(self._values)
        self.loss, self.sign = loss, sign

    def _values(self, scores, labels):
        with no_grad():
            values = self.loss.per_sample(labels, Tensor(scores)).data
        return values if self.sign == 1.0 else values * values.dtype.type(self.sign)


class RootMeanSquaredError:
    """Keras's RootMeanSquaredError ('rmse'): the square root of the epoch's mean squared
    error, not a mean of batch roots, so the batch adds (sum of each sample's mean squared
    error, samples) and the figure comes from their totals (training.Sums); with weights
    (weighted_metrics) each sample counts with its weight."""

    def __call__(self, scores, labels, weights=None):
        errors = squared_errors(scores, labels)
        xp = backend.get_array_module(errors)
        if weights is None:
            return xp.stack([errors.sum(), errors.dtype.type(len(errors))]).astype(numpy.float64)
        w = weights.astype(errors.dtype, copy=False)
        return xp.stack([(errors * w).sum(), w.sum()]).astype(numpy.float64)

    @staticmethod
    def result(total):
        return float(numpy.sqrt(total[0] / total[1])) if total[1] else 0.0


_rmse = RootMeanSquaredError()


def _value_metrics_of_losses():
    """{Keras metric name: LossValues} for the value losses that have a metric of their name."""
    from . import elementwise_losses as el, row_losses as rl
    pairs = {"msle": el.MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": el.MeanSquaredLogarithmicError,
             "mape": el.MeanAbsolutePercentageError, "mean_absolute_percentage_error": el.MeanAbsolutePercentageError,
             "log_cosh": el.LogCosh, "logcosh": el.LogCosh, "poisson": el.Poisson,
             "hinge": el.Hinge, "squared_hinge": el.SquaredHinge,
             "kld": rl.KLDivergence, "kl_divergence": rl.KLDivergence}
    made = {cls: LossValues(cls()) for cls in set(pairs.values())}
    return {**{name: made[cls] for name, cls in pairs.items()},
            "cosine_similarity": LossValues(rl.CosineSimilarity(), sign=-1.0)}


# Keras's names (and short ones) for the metrics compile() accepts.
BATCH_METRICS = {"accuracy": _correct, "acc": _correct,
                 "categorical_accuracy": _correct, "sparse_categorical_accuracy": _correct,
                 "top5": _top5_count, "top_5_accuracy": _top5_count,
                 "top_k_categorical_accuracy": _top5_count, "sparse_top_k_categorical_accuracy": _top5_count}
VALUE_METRICS = {"mae": absolute_error_sum, "mean_absolute_error": absolute_error_sum,
                 "mse": squared_error_sum, "mean_squared_error": squared_error_sum,
                 "binary_accuracy": binary_right_sum, "rmse": _rmse, "root_mean_squared_error": _rmse,
                 **_value_metrics_of_losses()}
ACCURACY_NAMES = ("accuracy", "acc", "binary_accuracy")


class FunctionMetric(Summed):
    """A metric of your own, as Keras takes one: ``fn(y_true, y_pred)`` on a batch's arrays
    (NumPy or CuPy, the model's device: y_true the labels or targets as given, y_pred the
    model's output, after any final softmax) returning each sample's value (N,) or the
    batch's mean. fit and evaluate report its mean over the samples seen, under fn's name.
    Written with the array module of its inputs (``minicnn.backend.get_array_module``), it
    runs on the device, and reading it costs no synchronisation."""
    takes_output = True  # wants probabilities, not the logits the fused cross-entropy took

    def __init__(self, fn):
        super().__init__(self._values)
        self.fn, self.name = fn, metric_name(fn)

    def _values(self, scores, labels):
        """fn's value for each sample (N,); a batch mean stands for every sample's."""
        values = self.fn(labels, scores)
        xp = backend.get_array_module(scores)
        values = xp.asarray(values, dtype=numpy.float32) if not hasattr(values, "dtype") else values
        if values.ndim == 0:
            return xp.broadcast_to(values, (len(scores),))
        if len(values) != len(scores):
            raise ValueError(f"metric {self.name!r} returned shape {tuple(values.shape)} for a batch of "
                             f"{len(scores)}; return one value per sample (N,) or the batch's mean")
        return _sample_means(values)


class Weighted:
    """A metric weighed by each sample's weight (compile's weighted_metrics, as Keras's):
    the batch's (sum of weight * value, sum of weights); the epoch's figure is the first
    total over the second, so a sample of weight 3 counts as three, and with no weights
    given it is the plain metric. Like every counter with a ``result``, it adds up a vector
    of sums on the device, read once at the end (training.Sums)."""

    def __init__(self, counter):
        self.counter = counter
        self.takes_output = getattr(counter, "takes_output", False)

    def __call__(self, scores, labels, weights):
        if hasattr(self.counter, "result"):  # Precision, Recall, AUC: counts that weigh themselves
            return self.counter(scores, labels, weights)
        values = self.counter.per_sample(scores, labels).astype(weights.dtype, copy=False)
        return backend.get_array_module(values).stack([(values * weights).sum(), weights.sum()])

    def result(self, total):
        """The epoch's figure from the summed (weighted values, weights); NaN with no weight."""
        if hasattr(self.counter, "result"):
            return self.counter.result(total)
        return float(total[0] / total[1]) if total[1] else float("nan")


def metric_name(metric):
    """The name a metric is logged under: itself for a name, a function's __name__."""
    if isinstance(metric, str):
        return metric
    if hasattr(metric, "name") and hasattr(metric, "result"):  # Precision(), Recall(), AUC()
        return metric.name
    if not callable(metric):
        from .confusion_metrics import BY_NAME
        names = sorted(BATCH_METRICS) + sorted(VALUE_METRICS) + sorted(BY_NAME)
        raise TypeError(f"a metric is a name ({', '.join(names)}), a metric object such as Precision(), or a "
                        f"function fn(y_true, y_pred), got {type(metric).__name__}")
    return getattr(metric, "__name__", type(metric).__name__)


def _softmax(logits):
    """Rows of logits (N, K) -> probabilities, in float32 at least (float16 would round)."""
    xp = backend.get_array_module(logits)
    z = logits.astype(numpy.promote_types(logits.dtype, numpy.float32), copy=False)
    e = xp.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def count_all(counters, out, logits, labels, weights=None):
    """{name: sum over the batch} for each counter, on the device. out is the model's output
    (a Tensor), or None where the loss took the logits before a final softmax (logits a
    Tensor then): the built-in metrics read either (an argmax is the same), a metric of
    your own gets the probabilities, the softmax computed once for all of them.
    weights (N,): the samples' weights, for the counters that weigh (all 1 when None)."""
    scores = (logits if out is None else out).data
    probabilities = None
    result = {}
    for name, count in counters.items():
        if getattr(count, "takes_output", False) and out is None:
            probabilities = _softmax(scores) if probabilities is None else probabilities
            given = probabilities
        else:
            given = scores
        if isinstance(count, Weighted):
            if weights is None:
                weights = backend.get_array_module(scores).ones(len(scores), dtype=numpy.float32)
            result[name] = count(given, labels, weights)
        else:
            result[name] = count(given, labels)
    return result


def batch_counters(metrics, loss, what="compile()", weighted_metrics=()):
    """{logged name: counting function} for a list of metric names and functions, with
    this loss, then for the weighted_metrics (Weighted counters, logged as 'weighted_<name>'
    where a plain metric has that name, as Keras 2's); a ValueError for two of one name."""
    counters = {}
    for metric, weighted in [(m, False) for m in metrics] + [(m, True) for m in weighted_metrics]:
        name = metric_name(metric)
        if weighted and name in counters:
            name = f"weighted_{name}"
        if name in counters:
            raise ValueError(f"{what}: two metrics are named {name!r}; each is logged by its name, so give "
                             "functions different names")
        count = batch_metric(metric, loss)
        counters[name] = Weighted(count) if weighted else count
    return counters


def results(counters):
    """{name: result} for the counters whose epoch's figure is not their sum over the samples
    seen but a function of their summed vector (weighted metrics, precision, recall, AUC)."""
    return {name: count.result for name, count in counters.items() if hasattr(count, "result")}


def counters_config(counters):
    """The metrics as a saved model stores them: each name, or {"function": name} for a
    metric of your own (load_model takes it back from custom_objects)."""
    def stored(name, count):
        if isinstance(count, FunctionMetric):
            return {"function": name}
        return {"metric": count.get_config()} if hasattr(count, "get_config") else name
    return [stored(name, count) for name, count in counters.items() if not isinstance(count, Weighted)]


def weighted_config(counters):
    """The weighted metrics as a saved model stores them (as counters_config)."""
    def stored(name, count):
        if isinstance(count.counter, FunctionMetric):
            return {"function": count.counter.name}
        if hasattr(count.counter, "get_config"):
            return {"metric": count.counter.get_config()}
        plain = name.removeprefix("weighted_")
        return plain if name.startswith("weighted_") and plain in counters else name
    return [stored(name, count) for name, count in counters.items() if isinstance(count, Weighted)]


def batch_metric(name, loss=None):
    """The counting function for a metric name with this loss, or a ValueError naming the
    choices. Class metrics (accuracy, top5) take class labels; value metrics (mae, mse,
    binary_accuracy) take targets shaped as the output. 'accuracy' with binary
    cross-entropy is binary_accuracy, as Keras chooses it. A function is a metric of your
    own (FunctionMetric)."""
    from . import confusion_metrics  # it reads true_classes from here
    if isinstance(name, confusion_metrics.ConfusionMetric):
        return name
    if not isinstance(name, str):
        metric_name(name)  # a TypeError for what is neither a name nor a function
        return FunctionMetric(name)
    if name in confusion_metrics.BY_NAME:
        return confusion_metrics.BY_NAME[name]()
    classifies = loss is None or getattr(loss, "classifies", True)
    if classifies and name in BATCH_METRICS:
        return BATCH_METRICS[name]
    if not classifies and getattr(loss, "yes_no", False) and name in ACCURACY_NAMES:
        return _binary_from_logits if loss.from_logits else binary_right_sum
    if not classifies and name in VALUE_METRICS and name != "binary_accuracy":
        return VALUE_METRICS[name]
    known = sorted(BATCH_METRICS) + sorted(VALUE_METRICS) + sorted(confusion_metrics.BY_NAME)
    if name not in known:
        raise ValueError(f"unknown metric {name!r}; supported: {', '.join(known)}")
    loss_name = type(loss).__name__
    if classifies:
        raise ValueError(f"metric {name!r} compares outputs with target values, but {loss_name} takes class "
                         f"labels; use 'accuracy' or 'top5'")
    raise ValueError(f"metric {name!r} counts right classes (or, for binary_accuracy, yes/no answers), but "
                     f"{loss_name} takes target values; use 'mae' or 'mse'"
                     + ("" if getattr(loss, "yes_no", False) else ", or binary_crossentropy for yes/no targets"))


# Keras's stateful metrics, here as minicnn.metrics.Precision etc. (their module reads this one)
from .confusion_metrics import AUC, F1Score, FBetaScore, Precision, Recall  # noqa: E402,F401
