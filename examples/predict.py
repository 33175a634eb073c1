"""Classify image files with a model saved by train_cifar.py: the top 3 classes each.

    python examples/predict.py runs/seed004_base-.../model.npz cat.jpg truck.png [...]

Any size or format Pillow reads; each image is turned upright (EXIF), composited onto
white where transparent, brought to 8-bit RGB and resized to the model's input size
(32x32 for CIFAR-10; a note says when that changes its proportions), then normalised
as the model was trained (the mean and std stored in the model file).
"""
import argparse
import os
import sys


os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy loads OpenBLAS: see minicnn/__init__.py
import numpy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # run from a checkout too

import minicnn  # noqa: E402
from minicnn.datasets.image_folder import open_image  # noqa: E402
from minicnn.models import load_model  # noqa: E402
from minicnn.saving import ModelFileError  # noqa: E402

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load_image(path, size, say=None):
    """An image file -> uint8 (height, width, 3) at ``size``, antialiased.

    What a photo viewer would show is what the model sees (minicnn.datasets.image_folder.
    open_image: upright by its EXIF orientation, transparency on white, 16-bit greyscale
    scaled to 8 bits). An image of another shape than ``size`` is squashed to it, and
    ``say`` is told so: the model was trained on whole, undistorted CIFAR-10 images."""
    from PIL import Image
    image = open_image(path, "RGB")
    width, height = image.size
    if say is not None and width * size[0] != height * size[1]:
        say(f"{path}: {width}x{height} is not the model's {size[1]}x{size[0]} shape; squashed to it "
            "(crop it first to keep its proportions)")
    return numpy.asarray(image.resize(size[::-1], Image.BICUBIC), dtype=numpy.uint8)


def softmax(scores):
    shifted = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a .npz written by model.save() / train_cifar.py")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                   help="auto (default): the GPU when CuPy sees one, else the CPU")
    p.add_argument("--top", type=int, default=3)
    args = p.parse_args(argv)
    device, why = minicnn.backend.resolve_device(args.device)
    minicnn.set_device(device)
    print(why, file=sys.stderr)
    model = load_model(args.model, compile=False)
    meta = model.metadata
    names = meta.get("class_names") or CIFAR10_CLASSES
    preprocessing = meta.get("preprocessing", {"mean": [0.0] * 3, "std": [255.0] * 3})
    mean = numpy.asarray(preprocessing["mean"], numpy.float32)
    std = numpy.asarray(preprocessing["std"], numpy.float32)
    height, width, _ = model.input_shape

    failed = 0
    for path in args.images:
        try:
            image = load_image(path, (height, width), say=lambda text: print(f"note: {text}", file=sys.stderr))
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        x = ((image.astype(numpy.float32) - mean) / std)[None]
        scores = model.predict(x)
        # a model ending in softmax already gives probabilities; otherwise take its softmax
        probabilities = scores if model.layers[-1].activation_name == "softmax" else softmax(scores)
        ranked = numpy.argsort(probabilities[0])[::-1][:args.top]
        best = ", ".join(f"{names[k]} {probabilities[0, k]:.1%}" for k in ranked)
        print(f"{path}: {best}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ModelFileError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
