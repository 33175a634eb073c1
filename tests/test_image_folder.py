"""image_dataset_from_directory (minicnn/datasets/image_folder.py) on folders of PNG, JPEG, BMP
and GIF files written here: Keras's classes from the subfolders, labels in each label_mode,
colour modes, resizing and crop_to_aspect_ratio, the validation split, a model trained on the
Loader, and an error naming each kind of bad input."""
import os

import numpy
import pytest

import minicnn
from minicnn import backend
from minicnn.datasets import image_dataset_from_directory
from minicnn.layers import Dense, Flatten, Rescaling
from minicnn.models import Sequential
from conftest import write_sideways_photo

Image = pytest.importorskip("PIL.Image")  # matplotlib's dependency

COLOURS = {"blue": (0, 0, 255), "green": (0, 200, 0), "red": (255, 0, 0)}


def write_folder(root, per_class=(5, 3, 4), size=(20, 30)):
    """root/<colour>/ holds per_class[k] solid images of that colour, of several formats,
    one in a nested folder; returns root."""
    for (name, colour), count in zip(sorted(COLOURS.items()), per_class):
        os.makedirs(os.path.join(root, name, "more"), exist_ok=True)
        for i in range(count):
            folder = os.path.join(root, name, "more") if i == 0 else os.path.join(root, name)
            extension = (".png", ".jpg", ".bmp", ".gif", ".PNG")[i % 5]
            Image.new("RGB", size, colour).save(os.path.join(folder, f"{i:02d}{extension}"))
    with open(os.path.join(root, "red", "notes.txt"), "w") as f:
        f.write("not an image")
    return str(root)


def test_classes_come_from_the_subfolders_and_each_image_is_resized_to_its_colour(tmp_path, capsys, device):
    root = write_folder(tmp_path / "colours")
    with minicnn.device(device):
        loader = image_dataset_from_directory(root, image_size=(8, 6), batch_size=4, shuffle=False)
    assert "Found 12 files belonging to 3 classes." in capsys.readouterr().out
    assert loader.class_names == ["blue", "green", "red"] and len(loader.file_paths) == 12 and len(loader) == 3
    assert loader.device == device
    x, y = [], []
    for xb, yb in loader.batches(0):
        x.append(backend.to_numpy(xb))
        y.append(backend.to_numpy(yb))
    x, y = numpy.concatenate(x), numpy.concatenate(y)
    assert x.shape == (12, 8, 6, 3) and x.dtype == numpy.float32 and list(y) == [0] * 5 + [1] * 3 + [2] * 4
    for image, label in zip(x, y):  # solid colours stay solid (JPEG within a few levels)
        expected = numpy.array(COLOURS[loader.class_names[label]], numpy.float32)
        numpy.testing.assert_allclose(image.reshape(-1, 3).mean(axis=0), expected, atol=4)


def test_label_modes_colour_modes_explicit_labels_and_arrays(tmp_path):
    root = write_folder(tmp_path / "colours")
    x, y = image_dataset_from_directory(root, label_mode="categorical", batch_size=None, image_size=(4, 4),
                                        shuffle=False, verbose=False)
    assert x.dtype == numpy.uint8 and x.shape == (12, 4, 4, 3) and y.shape == (12, 3) and y.dtype == numpy.float32
    numpy.testing.assert_array_equal(y.argmax(axis=1), [0] * 5 + [1] * 3 + [2] * 4)
    gray, _ = image_dataset_from_directory(root, color_mode="grayscale", batch_size=None, image_size=(4, 4),
                                           verbose=False)
    assert gray.shape == (12, 4, 4, 1)
    rgba, _ = image_dataset_from_directory(root, color_mode="rgba", batch_size=None, image_size=(4, 4), verbose=False)
    assert rgba.shape == (12, 4, 4, 4) and (rgba[..., 3] == 255).all()
    two = tmp_path / "two"
    os.makedirs(two)
    for name in ("green", "red"):
        os.rename(os.path.join(root, name), two / name)
    images, yes = image_dataset_from_directory(two, label_mode="binary", batch_size=None, image_size=(4, 4),
                                               class_names=["red", "green"], verbose=False)
    assert yes.shape == (7, 1) and yes.dtype == numpy.float32 and list(yes[:, 0]) == [0] * 4 + [1] * 3
    only = image_dataset_from_directory(two, labels=None, batch_size=None, image_size=(4, 4), verbose=False)
    assert only.shape == (7, 4, 4, 3)
    given = list(range(7))
    _, mine = image_dataset_from_directory(two, labels=given, batch_size=None, image_size=(4, 4), verbose=False)
    assert list(mine) == given


def test_crop_to_aspect_ratio_keeps_the_centre_unsquashed(tmp_path):
    """A 40x10 image, left half black, centre white, right half black: cut to a square first,
    the 10x10 window is the white centre; resized whole, black bands come along."""
    folder = tmp_path / "crop" / "only"
    os.makedirs(folder)
    pixels = numpy.zeros((10, 40, 3), numpy.uint8)
    pixels[:, 15:25] = 255
    Image.fromarray(pixels).save(folder / "wide.png")
    cropped, _ = image_dataset_from_directory(tmp_path / "crop", image_size=(5, 5), crop_to_aspect_ratio=True,
                                              batch_size=None, verbose=False)
    squashed, _ = image_dataset_from_directory(tmp_path / "crop", image_size=(5, 5), batch_size=None, verbose=False)
    assert cropped.min() > 200 and squashed.min() < 50


def test_images_are_read_as_a_viewer_shows_them(tmp_path):
    """EXIF orientation applied, transparency onto white (kept with color_mode='rgba')."""
    folder = tmp_path / "views" / "only"
    os.makedirs(folder)
    write_sideways_photo(folder / "a_sideways.jpg", 8, 4)
    Image.new("RGBA", (4, 8), (0, 0, 0, 0)).save(folder / "b_clear.png")
    images, _ = image_dataset_from_directory(tmp_path / "views", image_size=(8, 4), batch_size=None, shuffle=False,
                                             verbose=False)
    assert images[0, :3].mean() > 200 and images[0, -3:].mean() < 50
    assert (images[1] == 255).all()
    with_alpha, _ = image_dataset_from_directory(tmp_path / "views", image_size=(8, 4), color_mode="rgba",
                                                 batch_size=None, shuffle=False, verbose=False)
    assert (with_alpha[1, ..., 3] == 0).all()


def test_the_validation_split_cuts_one_shuffle_in_two_as_keras(tmp_path, capsys):
    root = write_folder(tmp_path / "colours", per_class=(10, 10, 10))
    train, val = image_dataset_from_directory(root, image_size=(4, 4), validation_split=0.2, subset="both", seed=7,
                                              batch_size=8)
    said = capsys.readouterr().out
    assert "Using 24 files for training." in said and "Using 6 files for validation." in said
    assert not set(train.file_paths) & set(val.file_paths) and len(set(train.file_paths) | set(val.file_paths)) == 30
    again = image_dataset_from_directory(root, image_size=(4, 4), validation_split=0.2, subset="validation", seed=7,
                                         verbose=False)
    assert again.file_paths == val.file_paths  # the same seed, the same cut


def test_a_model_trains_on_the_loader(tmp_path, device):
    root = write_folder(tmp_path / "colours", per_class=(6, 6, 6))
    with minicnn.device(device):
        train = image_dataset_from_directory(root, image_size=(6, 6), batch_size=6, seed=1, verbose=False)
        model = Sequential([Rescaling(1 / 255, input_shape=(6, 6, 3)), Flatten(), Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, epochs=30, verbose=0).history
    assert history["accuracy"][-1] == 1.0  # three solid colours are easy


def test_bad_input_is_named(tmp_path):
    root = write_folder(tmp_path / "colours")
    empty = tmp_path / "empty"
    os.makedirs(empty / "a")
    broken = tmp_path / "broken" / "a"
    os.makedirs(broken)
    (broken / "bad.png").write_text("not a png")
    for call, error, message in (
            (lambda: image_dataset_from_directory(tmp_path / "missing"), FileNotFoundError, "is not a folder"),
            (lambda: image_dataset_from_directory(empty), ValueError, "no images in"),
            (lambda: image_dataset_from_directory(broken.parent, verbose=False), ValueError, "bad.png: not an image Pillow can read"),
            (lambda: image_dataset_from_directory(root, label_mode="binary", verbose=False), ValueError,
             "needs exactly 2 classes, found 3"),
            (lambda: image_dataset_from_directory(root, class_names=["red", "blue"]), ValueError,
             "must name the subfolders"),
            (lambda: image_dataset_from_directory(root, validation_split=0.2, subset="training"), ValueError,
             "needs a seed"),
            (lambda: image_dataset_from_directory(root, validation_split=0.2), ValueError, "subset must be"),
            (lambda: image_dataset_from_directory(root, subset="training"), ValueError, "needs a validation_split"),
            (lambda: image_dataset_from_directory(root, image_size=(0, 4)), ValueError, "image_size must be"),
            (lambda: image_dataset_from_directory(root, interpolation="gaussian"), ValueError, "interpolation must"),
            (lambda: image_dataset_from_directory(root, labels=[0, 1]), ValueError, "one integer label per file"),
            (lambda: image_dataset_from_directory(root, labels=[0, 1, 2] * 4, label_mode="binary", verbose=False),
             ValueError, "takes labels 0 and 1; the labels given hold \\[2\\]"),
            (lambda: image_dataset_from_directory(root, labels=None, verbose=False), ValueError,
             "without labels there is nothing for a Loader")):
        with pytest.raises(error, match=message):
            call()
