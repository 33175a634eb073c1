"""Classification metrics: the confusion matrix and what it implies (host arrays), and the
metrics fit counts batch by batch on the device (accuracy, top-5 accuracy)."""
import numpy

from . import backend


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
    """Integer class of each sample, (N,), from integer or one-hot labels."""
    if labels.ndim == 2 and labels.shape[1] > 1:
        return labels.argmax(axis=1)
    return labels.reshape(-1)


def correct_count(scores, labels):
    """How many rows of scores (N, K) have their largest score at the true class."""
    return (scores.argmax(axis=1) == true_classes(labels)).sum()


def top_k_count(scores, labels, k=5):
    """How many rows have the true class among their k largest scores: the true class's
    rank (how many classes scored strictly higher) is below k. No sort needed."""
    truth = true_classes(labels)
    xp = backend.get_array_module(scores)
    true_score = scores[xp.arange(len(scores)), truth]
    return ((scores > true_score[:, None]).sum(axis=1) < k).sum()


def _top5(scores, labels):
    return top_k_count(scores, labels, 5)


# Keras's names (and short ones) for the metrics compile() accepts.
BATCH_METRICS = {"accuracy": correct_count, "acc": correct_count,
                 "categorical_accuracy": correct_count, "sparse_categorical_accuracy": correct_count,
                 "top5": _top5, "top_5_accuracy": _top5,
                 "top_k_categorical_accuracy": _top5, "sparse_top_k_categorical_accuracy": _top5}


def batch_metric(name):
    """The counting function for a metric name, or a ValueError naming the choices."""
    if name not in BATCH_METRICS:
        raise ValueError(f"unknown metric {name!r}; supported: {', '.join(BATCH_METRICS)}")
    return BATCH_METRICS[name]
