"""RandomErasing and RandomGrayscale (layers/erasing.py): what each does to an image, the
draws Keras 3 makes, inference untouched, saved and reloaded, and clear refusals."""
import numpy
import pytest

import minicnn
from minicnn import backend
from minicnn.autograd import Tensor
from minicnn.layers import Conv2D, Dense, Flatten, RandomErasing, RandomGrayscale
from minicnn.layers.erasing import LUMA
from minicnn.models import Sequential, load_model


def images(device, n=400, size=20, channels=3, low=10.0, high=200.0):
    x = numpy.random.default_rng(0).uniform(low, high, (n, size, size, channels)).astype(numpy.float32)
    return x, Tensor(backend.to_device(x, device))


def erased_boxes(x, y):
    """Per image: None if untouched, else (rows, columns) of the one box that changed."""
    boxes = []
    for before, after in zip(x, y):
        changed = (before != after).any(axis=-1)
        if not changed.any():
            boxes.append(None)
            continue
        rows, columns = numpy.flatnonzero(changed.any(axis=1)), numpy.flatnonzero(changed.any(axis=0))
        assert changed[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1].mean() > 0.9  # one rectangle
        boxes.append((len(rows), len(columns)))
    return boxes


def test_random_erasing_replaces_one_rectangle_of_about_half_the_images(device):
    x, xt = images(device)
    y = backend.to_numpy(RandomErasing(fill_value=0.0, seed=1)(xt, training=True).data)
    boxes = erased_boxes(x, y)
    erased = [b for b in boxes if b is not None]
    # factor=1.0: a probability p drawn from [0, 1] for each image, then erased with p: 1/2 on average
    assert 0.4 < len(erased) / len(x) < 0.6
    for before, after, box in zip(x, y, boxes):
        if box is not None:
            changed = (before != after).any(axis=-1)
            assert (after[changed] == 0.0).all()  # filled with fill_value, every channel
    sides = numpy.array(erased) / 20  # each side sqrt(U(0.02, 0.33)) of the image's: 0.14 to 0.57
    assert sides.min() >= 0.1 and sides.max() <= 0.65 and sides.std() > 0.05
    numpy.testing.assert_array_equal(backend.to_numpy(RandomErasing()(xt, training=False).data), x)


def test_random_erasing_fills_with_clipped_noise_or_a_colour_and_factor_sets_how_often(device):
    x, xt = images(device)
    y = backend.to_numpy(RandomErasing(factor=(1.0, 1.0), seed=2)(xt, training=True).data)
    assert all(b is not None for b in erased_boxes(x, y))  # a probability of exactly 1: every image
    changed = (x != y)
    noise = y[changed]
    assert noise.min() >= 0 and noise.max() <= 255  # Gaussian times 255, clipped to value_range (0, 255)
    assert (noise == 0).mean() > 0.3 and noise.std() > 30  # about half below 0, clipped there
    y = backend.to_numpy(RandomErasing((1.0, 1.0), fill_value=(1, 2, 300), value_range=(0, 255), seed=3)(
        xt, training=True).data)
    patch = (x != y).any(axis=-1)
    numpy.testing.assert_array_equal(numpy.unique(y[patch], axis=0), [[1, 2, 255]])  # per channel, clipped
    assert RandomErasing(0.0) is not None
    y = backend.to_numpy(RandomErasing(0.0, seed=4)(xt, training=True).data)
    numpy.testing.assert_array_equal(y, x)  # factor 0: never


def test_random_grayscale_makes_about_factor_of_the_images_grey(device):
    x, xt = images(device, n=300, size=4)
    y = backend.to_numpy(RandomGrayscale(factor=0.3, seed=5)(xt, training=True).data)
    grey = numpy.array([not numpy.array_equal(a, b) for a, b in zip(x, y)])
    assert 0.2 < grey.mean() < 0.4
    luma = x[grey] @ numpy.array(LUMA, numpy.float32)
    for channel in range(3):
        numpy.testing.assert_allclose(y[grey][..., channel], luma, rtol=1e-5)
    numpy.testing.assert_array_equal(y[~grey], x[~grey])
    every = backend.to_numpy(RandomGrayscale(1.0)(xt, training=True).data)
    assert (every.std(axis=-1) < 1e-3).all()
    numpy.testing.assert_array_equal(backend.to_numpy(RandomGrayscale(1.0)(xt, training=False).data), x)


def test_in_a_model_they_are_seeded_by_fit_saved_and_refuse_what_they_cannot_do(device, tmp_path):
    x, _ = images(device, n=16, size=8, low=0.0, high=1.0)
    y = numpy.arange(16) % 3

    def run():
        minicnn.set_seed(0)
        with minicnn.device(device):
            model = Sequential([RandomErasing(0.8, (0.05, 0.2), value_range=(0, 1), input_shape=(8, 8, 3)),
                                RandomGrayscale(0.2), Conv2D(4, 3), Flatten(), Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(backend.to_device(x, device), y, epochs=2, batch_size=8, verbose=0, seed=5)
        return model
    first, second = run(), run()
    for a, b in zip(first.get_weights(), second.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    first.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == first.get_config()
    assert loaded.layers[0].get_config()["scale"] == [0.05, 0.2]
    numpy.testing.assert_array_equal(loaded.predict(x), first.predict(x))

    for bad, message in ((lambda: RandomErasing(1.5), "RandomErasing: factor must be a number in"),
                         (lambda: RandomErasing(scale=(0.2, 1.2)), "RandomErasing: scale must be"),
                         (lambda: RandomErasing(fill_value=(1, 2)), "fill_value must be None"),
                         (lambda: RandomErasing(value_range=(1, 1)), "value_range must be"),
                         (lambda: RandomGrayscale(2), r"RandomGrayscale: factor is a probability")):
        with pytest.raises(ValueError, match=message):
            bad()
    with pytest.raises(ValueError, match="needs 3 channels"):
        Sequential([RandomGrayscale(input_shape=(8, 8, 1)), Flatten()]).build((None, 8, 8, 1))
