"""Classification metrics on host arrays: the confusion matrix and what it implies."""
import numpy


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
