"""PNG plots of a training run: learning curves, the confusion matrix, and a grid of
test images with their predicted and true labels. Uses matplotlib's file-only Agg
backend, so it works on machines without a display."""
import numpy


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def learning_curves(history, path, metric="accuracy", title=None):
    """Training and validation ``metric`` per epoch (``history``: {'accuracy': [...],
    'val_accuracy': [...], ...}) written to ``path``."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in ((metric, "training"), ("val_" + metric, "validation")):
        values = history.get(key)
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_ylabel(metric)
    ax.set_title(title or f"Training and validation {metric}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_matrix(matrix, names, path, title="Confusion matrix (test set)"):
    """A heat map of counts[true, predicted] with the count in every cell."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="images")
    ticks = numpy.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    threshold = matrix.max() / 2
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > threshold else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def prediction_grid(images, truth, predicted, names, path, columns=8,
                    title="Test images: predicted (true); red where wrong"):
    """Images (N, 32, 32, 3) uint8 with 'predicted (true)' under each, wrong ones in red."""
    plt = _pyplot()
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k])
            right = truth[k] == predicted[k]
            ax.set_title(f"{names[predicted[k]]}\n({names[truth[k]]})", fontsize=7,
                         color="black" if right else "red")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
