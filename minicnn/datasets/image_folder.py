"""Your own images, one folder per class, as Keras's ``image_dataset_from_directory`` reads them:

    flowers/
        daisy/      0001.jpg  0002.jpg ...
        tulip/      0001.png  ...

    train, val = image_dataset_from_directory("flowers", image_size=(64, 64), batch_size=32,
                                              validation_split=0.2, subset="both", seed=1)
    model.fit(train, validation_data=val, epochs=10)      # train.class_names == ["daisy", "tulip"]

Each class is a subfolder (its images found in it and in its own subfolders), the classes
named and numbered in alphabetical order (or the order of class_names). Every image is
decoded once (Pillow, which matplotlib installs) as a photo viewer shows it (open_image:
upright by its EXIF orientation, transparency on white), converted to RGB, grayscale or RGBA,
resized to image_size, and kept as uint8 pixels 0..255 on the device in a
``minicnn.data.Loader``; each batch becomes float32 0..255 as it is taken, so put a
``Rescaling(1 / 255)`` (or ``Normalization``) first in the model, as with Keras. All the
images live in memory at once: fine for thousands of small images, not for ImageNet.
"""
import os

import numpy

from ..data import Loader

FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # Keras's
COLOR_MODES = {"rgb": ("RGB", 3), "grayscale": ("L", 1), "rgba": ("RGBA", 4)}
LABEL_MODES = ("int", "categorical", "binary", None)


def _resampling(interpolation):
    from PIL import Image
    filters = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST,
               "bicubic": Image.Resampling.BICUBIC, "area": Image.Resampling.BOX,
               "lanczos3": Image.Resampling.LANCZOS}
    if interpolation not in filters:
        raise ValueError(f"image_dataset_from_directory: interpolation must be one of {sorted(filters)}, "
                         f"got {interpolation!r}")
    return filters[interpolation]


def _images_under(folder, follow_links):
    """Every image file below folder, in sorted order (so a run sees the same list each time)."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=follow_links):
        dirs.sort()
        found += [os.path.join(root, name) for name in sorted(files) if name.lower().endswith(FORMATS)]
    return found


def _index(directory, labels, class_names, follow_links):
    """(file paths, integer labels or None, class names) as Keras indexes the directory."""
    if labels == "inferred":
        folders = sorted(name for name in os.listdir(directory) if os.path.isdir(os.path.join(directory, name)))
        if class_names is not None:
            if sorted(class_names) != folders:
                raise ValueError(f"image_dataset_from_directory: class_names {list(class_names)} must name the "
                                 f"subfolders of {directory}, which are {folders}")
            folders = list(class_names)
        paths, numbers = [], []
        for number, name in enumerate(folders):
            files = _images_under(os.path.join(directory, name), follow_links)
            paths += files
            numbers += [number] * len(files)
        return paths, numpy.array(numbers, dtype=numpy.int64), folders
    paths = _images_under(directory, follow_links)
    if labels is None:
        return paths, None, None
    if not isinstance(labels, (list, tuple, numpy.ndarray)):
        raise ValueError(f"image_dataset_from_directory: labels must be 'inferred', None, or a list of integer "
                         f"labels, one per image file in sorted order; got {labels!r}")
    given = numpy.asarray(labels)
    if len(given) != len(paths) or given.dtype.kind not in "iu":
        raise ValueError(f"image_dataset_from_directory: labels holds {len(given)} {given.dtype} values, but "
                         f"{directory} has {len(paths)} image files: give one integer label per file, in the "
                         "sorted order of their paths")
    return paths, given.astype(numpy.int64), class_names


def open_image(path, mode="RGB"):
    """An image file as a Pillow image in ``mode`` ('RGB', 'L' or 'RGBA'), as a photo viewer
    shows it: the EXIF orientation applied (a phone's portrait photo stays upright), 16-bit
    greyscale scaled to 8 bits (not clipped to white), and, unless mode keeps the alpha,
    transparent areas composited onto white (not turned black). A ValueError names a file
    that is missing or that Pillow cannot read."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: not an image Pillow can read ({error})") from None
    if image.mode.startswith("I"):  # 16- or 32-bit integer greyscale
        pixels = numpy.asarray(image, dtype=numpy.float64)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        image = Image.fromarray(numpy.round(pixels * (255.0 / top)).clip(0, 255).astype(numpy.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha and mode != "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return image.convert(mode)


def _decode(path, mode, size, resample, crop_to_aspect_ratio):
    """One image as uint8 (height, width, channels): read as a viewer shows it, optionally
    cut to the target's aspect ratio about its centre (so nothing is squashed), resized."""
    image = open_image(path, mode)
    height, width = size
    if crop_to_aspect_ratio:  # the largest centred window of the target's shape
        w, h = image.size
        crop_w, crop_h = min(w, round(h * width / height)), min(h, round(w * height / width))
        left, top = (w - crop_w) // 2, (h - crop_h) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h))
    if image.size != (width, height):
        image = image.resize((width, height), resample)
    pixels = numpy.asarray(image, dtype=numpy.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                 color_mode="rgb", batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, device=None, verbose=True):
    """Keras's arguments; returns a ``minicnn.data.Loader`` of (images, labels) batches, with
    ``.class_names`` and ``.file_paths``, or (subset="both") the training and the validation
    Loader. batch_size=None gives the arrays instead: (images (N, H, W, C) uint8, labels),
    or the images alone where there are no labels (labels=None or label_mode=None), for
    ``predict``.

    labels: 'inferred' (from the subfolders), None, or a list of integer labels, one per
    image file in the sorted order of their paths. label_mode: 'int' (N,) class numbers,
    'categorical' (N, K) one-hot float32, 'binary' (N, 1) float32 0/1 (two classes), None.
    validation_split with subset 'training', 'validation' or 'both': the files shuffled by
    seed (required when shuffling), the last fraction held out, as Keras. device: where the
    Loader keeps the images ('cpu' or 'gpu'; default the current device)."""
    what = "image_dataset_from_directory"
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{what}: {directory!r} is not a folder")
    if label_mode not in LABEL_MODES:
        raise ValueError(f"{what}: label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    if color_mode not in COLOR_MODES:
        raise ValueError(f"{what}: color_mode must be one of {sorted(COLOR_MODES)}, got {color_mode!r}")
    if (not isinstance(image_size, (list, tuple)) or len(image_size) != 2
            or not all(isinstance(n, int) and n > 0 for n in image_size)):
        raise ValueError(f"{what}: image_size must be (height, width), two positive ints; got {image_size!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"{what}: batch_size must be a positive int or None, got {batch_size!r}")
    if validation_split is not None:
        if not 0 < validation_split < 1:
            raise ValueError(f"{what}: validation_split must be in (0, 1), got {validation_split!r}")
        if subset not in ("training", "validation", "both"):
            raise ValueError(f"{what}: with validation_split, subset must be 'training', 'validation' or 'both'; "
                             f"got {subset!r}")
        if shuffle and seed is None:
            raise ValueError(f"{what}: validation_split with shuffle=True needs a seed, so that the training and "
                             "the validation subsets are cut from the same shuffle (as Keras asks)")
    elif subset is not None:
        raise ValueError(f"{what}: subset={subset!r} needs a validation_split")
    resample = _resampling(interpolation)
    paths, numbers, names = _index(directory, labels, class_names, follow_links)
    if not paths:
        raise ValueError(f"{what}: no images in {directory} (looked for {', '.join(FORMATS)} files"
                         f"{' in its subfolders, one per class' if labels == 'inferred' else ''})")
    if label_mode == "binary" and names is not None and len(names) != 2:
        raise ValueError(f"{what}: label_mode='binary' needs exactly 2 classes, found {len(names)}: {names}")
    if label_mode == "binary" and numbers is not None and not numpy.isin(numbers, (0, 1)).all():
        raise ValueError(f"{what}: label_mode='binary' takes labels 0 and 1; the labels given hold "
                         f"{sorted(set(numbers.tolist()) - {0, 1})[:5]}")
    if verbose:
        classes = f" belonging to {len(names)} classes" if names is not None else ""
        print(f"Found {len(paths)} files{classes}.", flush=True)
    order = numpy.arange(len(paths))
    if shuffle and validation_split is not None:  # Keras shuffles the file list before the split
        order = numpy.random.default_rng(seed).permutation(len(paths))
    parts = {"training": order, "validation": order[:0]}
    if validation_split is not None:
        held = int(validation_split * len(paths))
        parts = {"training": order[:len(order) - held], "validation": order[len(order) - held:]}
    wanted = ["training", "validation"] if subset == "both" else [subset or "training"]
    mode, _ = COLOR_MODES[color_mode]
    made = []
    for part in wanted:
        chosen = parts[part]
        if verbose and validation_split is not None:
            print(f"Using {len(chosen)} files for {part}.", flush=True)
        images = numpy.stack([_decode(paths[i], mode, tuple(image_size), resample, crop_to_aspect_ratio)
                              for i in chosen]) if len(chosen) else numpy.zeros((0, *image_size, COLOR_MODES[
                                  color_mode][1]), numpy.uint8)
        targets = None if numbers is None or label_mode is None else _targets(numbers[chosen], label_mode, names)
        made.append(_package(images, targets, [paths[i] for i in chosen], names, batch_size, shuffle, seed,
                             device, what))
    return tuple(made) if subset == "both" else made[0]


def _targets(numbers, label_mode, names):
    if label_mode == "int":
        return numbers
    if label_mode == "binary":
        return numbers.astype(numpy.float32)[:, None]
    classes = len(names) if names is not None else int(numbers.max()) + 1
    return numpy.eye(classes, dtype=numpy.float32)[numbers]


def _package(images, targets, paths, names, batch_size, shuffle, seed, device, what):
    if batch_size is None:  # arrays, for one's own pipeline or predict
        return images if targets is None else (images, targets)
    if targets is None:
        raise ValueError(f"{what}: without labels there is nothing for a Loader to train on; give batch_size=None "
                         "for the images as an array (model.predict takes it)")
    if not len(images):
        raise ValueError(f"{what}: the subset holds no images (a validation_split too small for "
                         f"{len(paths)} files?)")
    loader = Loader(images, targets, batch_size, shuffle=shuffle, seed=0 if seed is None else seed, device=device)
    loader.class_names, loader.file_paths = names, paths
    return loader
