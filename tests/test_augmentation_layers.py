"""Keras's random augmentation layers (layers/augmentation.py): what each does to an image,
inference untouched, reproducible draws under fit's seed, and clear refusals."""
import numpy
import pytest

import minicnn
from minicnn import backend
from minicnn.autograd import Tensor
from minicnn.data import _fill_index
from minicnn.layers import Conv2D, Dense, Flatten, RandomFlip, RandomRotation, RandomTranslation
from minicnn.models import Sequential, load_model


def images(device, n=64, size=6, channels=2):
    x = numpy.random.default_rng(0).random((n, size, size, channels), dtype=numpy.float32)
    return x, Tensor(backend.to_device(x, device))


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_random_flip_mirrors_about_half_the_images(device, mode):
    x, xt = images(device)
    layer = RandomFlip(mode, seed=1)
    y = backend.to_numpy(layer(xt, training=True).data)
    choices = {"horizontal": [x, x[:, :, ::-1]], "vertical": [x, x[:, ::-1]],
               "horizontal_and_vertical": [x, x[:, :, ::-1], x[:, ::-1], x[:, ::-1, ::-1]]}[mode]
    which = [[numpy.array_equal(y[i], c[i]) for c in choices] for i in range(len(x))]
    assert all(any(row) for row in which)  # every image is one of its mirror images
    counts = numpy.bincount([row.index(True) for row in which], minlength=len(choices))
    assert (counts > len(x) / len(choices) / 3).all()  # and each kind happens, about evenly
    numpy.testing.assert_array_equal(backend.to_numpy(layer(xt, training=False).data), x)


def test_random_translation_moves_by_the_drawn_fraction(device):
    """A fixed factor (low == high): every image moves exactly 2 of its 8 rows down and 2
    columns left; 'constant' fills what comes in with fill_value, 'reflect' (Keras's)
    with the edge mirrored, d c b a | a b c d."""
    x, xt = images(device, n=3, size=8, channels=1)
    moved = RandomTranslation((0.25, 0.25), (-0.25, -0.25), fill_mode="constant", fill_value=-1.0)
    y = backend.to_numpy(moved(xt, training=True).data)
    numpy.testing.assert_allclose(y[:, 2:, :6], x[:, :6, 2:], atol=1e-6)
    assert (y[:, :2] == -1).all() and (y[:, :, 6:] == -1).all()
    reflected = backend.to_numpy(RandomTranslation((0.25, 0.25), 0.0)(xt, training=True).data)
    numpy.testing.assert_allclose(reflected[:, :2], x[:, 1::-1], atol=1e-6)  # rows b a | a b ...
    index, _ = _fill_index(numpy.arange(-3, 7), 4, "symmetric")
    assert index.tolist() == [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]


def test_random_rotation_turns_counter_clockwise_as_keras(device):
    """factor (0.25, 0.25) is a quarter turn, counter-clockwise for a positive factor:
    numpy.rot90 of every image (up to the float32 sine of pi/2)."""
    x, xt = images(device, n=2, size=5, channels=1)
    y = backend.to_numpy(RandomRotation((0.25, 0.25))(xt, training=True).data)
    numpy.testing.assert_allclose(y, numpy.rot90(x, 1, axes=(1, 2)), atol=1e-5)
    y = backend.to_numpy(RandomRotation((-0.25, -0.25))(xt, training=True).data)
    numpy.testing.assert_allclose(y, numpy.rot90(x, -1, axes=(1, 2)), atol=1e-5)


def test_augmentation_in_a_model_is_seeded_by_fit_and_saved(device, tmp_path):
    x, _ = images(device, n=16, size=8, channels=3)
    y = numpy.arange(16) % 3

    def run():
        minicnn.set_seed(0)
        with minicnn.device(device):
            model = Sequential([RandomFlip("horizontal", input_shape=(8, 8, 3)), RandomTranslation(0.1, 0.1),
                                RandomRotation(0.05), Conv2D(4, 3), Flatten(), Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(backend.to_device(x, device), y, epochs=2, batch_size=8, verbose=0, seed=5)
        return model
    first, second = run(), run()
    for a, b in zip(first.get_weights(), second.get_weights()):
        numpy.testing.assert_array_equal(a, b)  # the same draws, epoch by epoch
    first.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == first.get_config()
    numpy.testing.assert_array_equal(loaded.predict(x), first.predict(x))  # inference: no augmentation
    lines = []
    loaded.summary(arithmetic=True, print_fn=lines.append)
    assert any("(RandomTr" in line for line in lines) and any("shape unchanged" in line for line in lines)


def test_augmentation_layers_refuse_what_they_cannot_do(device):
    with pytest.raises(ValueError, match="mode must be one of"):
        RandomFlip("diagonal")
    with pytest.raises(ValueError, match=r"height_factor must be .* within \[-1.0, 1.0\]"):
        RandomTranslation(1.5, 0.1)
    with pytest.raises(ValueError, match="low <= high"):
        RandomRotation((0.2, 0.1))
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="only interpolation='bilinear'"):
        RandomTranslation(0.1, 0.1, interpolation="nearest")
    model = Sequential([Conv2D(2, 3, input_shape=(6, 6, 1)), RandomFlip()])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="RandomFlip 'random_flip': it passes no gradient to its input"):
        model.fit(numpy.zeros((2, 6, 6, 1), numpy.float32), numpy.zeros((2, 4, 4, 2), numpy.float32), verbose=0)
