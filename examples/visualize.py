"""Pictures of what a trained model learned, as PNG files.

    python examples/visualize.py runs/seed004_base-.../model.npz [--data DIR] [--out DIR]
        [--image INDEX] [--limit N] [--device cpu|gpu]

Writes into --out (default: a 'visualize' folder beside the model file):
  filters.png               the first convolution's filters, each shown as a small RGB image
  feature_maps_K_NAME.png   every convolution's output maps for one test image (--image)
  saliency.png              one test image of each class and where its class score is
                            most sensitive to the pixels (|d score / d pixel|)
  misclassified.png         the test images the model got wrong most confidently
  per_class_accuracy.png    test accuracy of each class
The model file's metadata (written by train_cifar.py) gives the class names and the
normalisation the model was trained with. --limit N uses the first N test images only.
"""
import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy loads OpenBLAS: see minicnn/__init__.py
import numpy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # run from a checkout too

import minicnn  # noqa: E402
from minicnn import backend, interpret, metrics  # noqa: E402
from minicnn.datasets import cifar10  # noqa: E402
from minicnn.datasets.cifar10 import DataError  # noqa: E402
from minicnn.layers import Conv2D  # noqa: E402
from minicnn.models import load_model  # noqa: E402
from minicnn.plots import _pyplot  # noqa: E402
from minicnn.saving import ModelFileError  # noqa: E402


def rescale(a):
    """Stretch an array to [0, 1] for display (a constant array becomes 0.5)."""
    low, high = float(a.min()), float(a.max())
    return numpy.full_like(a, 0.5) if high == low else (a - low) / (high - low)


def save(fig, path):
    """Lay the figure out, write it as a PNG and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def plot_filters(kernel, layer_name, path):
    """kernel (kh, kw, C, F) -> a grid of F filters. Each filter is stretched to [0, 1] on
    its own, so the picture shows its pattern (which colours and edges it responds to),
    not its size."""
    plt = _pyplot()
    kh, kw, channels, count = kernel.shape
    columns = min(count, 8)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.25 + 0.8), squeeze=False)
    for f, ax in enumerate(axes.flat):
        ax.axis("off")
        if f < count:
            weights = kernel[:, :, :, f]
            ax.imshow(rescale(weights) if channels == 3 else rescale(weights.mean(axis=2)),
                      cmap=None if channels == 3 else "gray", interpolation="nearest")
            ax.set_title(f"filter {f}", fontsize=7)
    shown = "as RGB" if channels == 3 else f"averaged over its {channels} channels"
    fig.suptitle(f"First convolution ({layer_name}): {count} filters of {kh}x{kw}x{channels}, "
                 f"each shown {shown}\n(stretched to full contrast per filter; "
                 f"bright = large positive weight)", fontsize=9)
    save(fig, path)


def plot_feature_maps(image, maps, layer, caption, path):
    """image (H, W, 3) uint8; maps (oh, ow, F) -> the image and the F maps, each
    stretched on its own (black = 0 after the ReLU, the filter found nothing there)."""
    plt = _pyplot()
    count = maps.shape[-1]
    columns = 8
    rows = 1 + -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.3 + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("input", fontsize=7)
    for f in range(count):
        ax = axes[1 + f // columns, f % columns]
        ax.imshow(maps[:, :, f], cmap="magma", vmin=0 if maps.min() >= 0 else None)
        ax.set_title(f"map {f}", fontsize=7)
    activation = layer.activation_name or "linear"
    fig.suptitle(f"{layer.name} (Conv2D, {activation}): {count} feature maps of "
                 f"{maps.shape[0]}x{maps.shape[1]}, each scaled to its own maximum "
                 f"(black = 0: the filter found nothing there)\n{caption}", fontsize=9)
    save(fig, path)


def plot_saliency(images, saliency, truth, predicted, names, path):
    """images (N, H, W, 3) uint8 over saliency (N, H, W), one column per image."""
    plt = _pyplot()
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(n * 1.35, 3.6), squeeze=False)
    for k in range(n):
        top, bottom = axes[0, k], axes[1, k]
        top.imshow(images[k])
        colour = "black" if truth[k] == predicted[k] else "red"
        top.set_title(f"true: {names[truth[k]]}\npred: {names[predicted[k]]}", fontsize=7, color=colour)
        bottom.imshow(saliency[k] / max(float(saliency[k].max()), 1e-12), cmap="hot", vmin=0, vmax=1)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("test image", fontsize=8)
    axes[1, 0].set_ylabel("saliency", fontsize=8)
    fig.suptitle("Saliency: |d score(predicted class) / d pixel|, max over RGB, scaled per image "
                 "(bright = the pixels that move the score most); red title = wrong", fontsize=9)
    save(fig, path)


def plot_misclassified(images, truth, predicted, confidence, names, path, columns=8):
    """The wrong predictions, most confident first, with true and predicted labels."""
    plt = _pyplot()
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.75 + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k])
            ax.set_title(f"true: {names[truth[k]]}\npred: {names[predicted[k]]} {confidence[k]:.0%}",
                         fontsize=7, color="red")
    fig.suptitle(f"The {len(images)} most confidently misclassified test images "
                 f"(pred: predicted class and its probability)", fontsize=10)
    save(fig, path)


def plot_per_class_accuracy(accuracy, overall, names, title, path):
    """Horizontal bars, one per class, with the value and the overall accuracy line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    positions = numpy.arange(len(names))
    bars = ax.barh(positions, accuracy * 100, color="#3182bd")
    ax.bar_label(bars, labels=[f"{a:.1%}" for a in accuracy], padding=3, fontsize=8)
    ax.axvline(overall * 100, color="black", linestyle="--", linewidth=1,
               label=f"all classes: {overall:.1%}")
    ax.set_yticks(positions, names)
    ax.invert_yaxis()  # class 0 at the top, as in the confusion matrix
    ax.set_xlim(0, 110)
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    save(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a .npz written by model.save() / train_cifar.py")
    p.add_argument("--data", help="folder holding cifar-10-batches-py (default: the usual places)")
    p.add_argument("--out", help="where to write the PNGs (default: visualize/ beside the model)")
    p.add_argument("--image", type=int, default=0, help="test image for the feature maps (index)")
    p.add_argument("--limit", type=int, help="use only the first N test images")
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                   help="auto (default): the GPU when CuPy sees one, else the CPU")
    p.add_argument("--wrong", type=int, default=16, help="how many misclassified images to show")
    args = p.parse_args(argv)

    device, why = minicnn.backend.resolve_device(args.device)
    minicnn.set_device(device)
    print(why, file=sys.stderr)
    model = load_model(args.model, compile=False)
    meta = model.metadata
    x_test, y_test = cifar10.load_test_data(args.data, download=args.data is None)
    if args.limit is not None:
        if args.limit < 1:
            p.error(f"--limit must be at least 1, got {args.limit}")
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    if not 0 <= args.image < len(x_test):
        p.error(f"--image must be a test image index in 0..{len(x_test) - 1}, got {args.image}")
    if tuple(model.input_shape) != x_test.shape[1:]:
        p.error(f"the model takes inputs of shape {model.input_shape}, CIFAR-10 images are "
                f"{x_test.shape[1:]}")
    names = meta.get("class_names") or cifar10.load_class_names(args.data, download=False)
    preprocessing = meta.get("preprocessing", {"mean": [0.0] * 3, "std": [255.0] * 3})
    mean = numpy.asarray(preprocessing["mean"], numpy.float32)
    std = numpy.asarray(preprocessing["std"], numpy.float32)
    label = meta.get("model") or os.path.basename(args.model)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.model)), "visualize")
    os.makedirs(out, exist_ok=True)

    def normalized(images):  # uint8 host images -> the model's input on its device
        return backend.to_device((images.astype(numpy.float32) - mean) / std, model.device)

    truth = y_test[:, 0].astype(numpy.int64)
    probabilities = backend.to_numpy(model.predict(normalized(x_test), batch_size=250))
    if model.layers[-1].activation_name != "softmax":  # scores, not probabilities: take the softmax
        shifted = numpy.exp(probabilities - probabilities.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    overall = float((predicted == truth).mean())
    written = []

    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    if convs:
        written.append(os.path.join(out, "filters.png"))
        plot_filters(backend.to_numpy(convs[0].kernel.data), convs[0].name, written[-1])

    i = args.image
    caption = (f"test image #{i}, true class {names[truth[i]]}, predicted {names[predicted[i]]} "
               f"({probabilities[i, predicted[i]]:.0%})")
    for k, (layer, maps) in enumerate(interpret.feature_maps(model, normalized(x_test[i:i + 1])), 1):
        written.append(os.path.join(out, f"feature_maps_{k}_{layer.name}.png"))
        plot_feature_maps(x_test[i], backend.to_numpy(maps[0]), layer, caption, written[-1])

    # saliency for the first test image of each class present
    chosen = [int(numpy.flatnonzero(truth == c)[0]) for c in range(len(names)) if (truth == c).any()]
    saliency = backend.to_numpy(interpret.saliency_maps(model, normalized(x_test[chosen]),
                                                        backend.to_device(predicted[chosen], model.device)))
    written.append(os.path.join(out, "saliency.png"))
    plot_saliency(x_test[chosen], saliency, truth[chosen], predicted[chosen], names, written[-1])

    wrong = numpy.flatnonzero(predicted != truth)
    worst = wrong[numpy.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:args.wrong]
    written.append(os.path.join(out, "misclassified.png"))
    plot_misclassified(x_test[worst], truth[worst], predicted[worst],
                       probabilities[worst, predicted[worst]], names, written[-1])

    matrix = metrics.confusion_matrix(truth, predicted, len(names))
    per_class = numpy.nan_to_num(metrics.per_class_accuracy(matrix))
    written.append(os.path.join(out, "per_class_accuracy.png"))
    plot_per_class_accuracy(per_class, overall, names,
                            f"{label}: accuracy per class on {len(truth)} test images", written[-1])

    print(f"{label}: test accuracy {overall:.2%} on {len(truth)} images; wrote")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ModelFileError, DataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
