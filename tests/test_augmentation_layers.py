"""Keras's random augmentation layers (layers/augmentation.py): what each does to an image,
inference untouched, reproducible draws under fit's seed, and clear refusals."""
import numpy
import pytest

import minicnn
from minicnn import backend
from minicnn.autograd import Tensor
from minicnn.data import _fill_index
from minicnn.data import Augment
from minicnn.layers import (Conv2D, Dense, Flatten, RandomBrightness, RandomContrast, RandomFlip, RandomRotation,
                            RandomTranslation, RandomZoom)
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


def test_random_zoom_scales_about_the_centre(device):
    """Zooming out by 1.0 (factor (1, 1), a zoom of 2): output row r of 5 reads input row
    2 + 2 (r - 2), so rows 1, 2, 3 are input rows 0, 2, 4 and rows 0 and 4 lie outside
    (fill_value); zooming in by 0.5 (a zoom of 1/2) spreads the middle rows 1..3 over
    0..4, odd rows the mean of their two neighbours. width_factor None zooms both axes."""
    x, xt = images(device, n=2, size=5, channels=1)
    out = RandomZoom((1.0, 1.0), fill_mode="constant", fill_value=-1.0)
    y = backend.to_numpy(out(xt, training=True).data)
    numpy.testing.assert_allclose(y[:, 1:4, 1:4], x[:, 0::2, 0::2], atol=1e-6)
    assert (y[:, 0] == -1).all() and (y[:, :, 4] == -1).all()
    y = backend.to_numpy(RandomZoom((-0.5, -0.5), (0.0, 0.0))(xt, training=True).data)
    numpy.testing.assert_allclose(y[:, 0::2], x[:, 1:4], atol=1e-6)  # columns untouched
    numpy.testing.assert_allclose(y[:, 1], (x[:, 1] + x[:, 2]) / 2, atol=1e-6)
    numpy.testing.assert_array_equal(backend.to_numpy(out(xt, training=False).data), x)


def test_augment_zoom_range_draws_each_axis_on_its_own(device):
    """The Loader's Augment(zoom_range=): a zoom of exactly 2 on both axes is the layer's
    zoom out by 1.0; a range draws rows and columns apart (an image's two zooms differ)."""
    x, xt = images(device, n=2, size=5, channels=1)
    rng = backend.default_rng(0)
    y = backend.to_numpy(Augment(zoom_range=(2.0, 2.0), fill_mode="constant", cval=-1.0)(xt.data, rng))
    numpy.testing.assert_allclose(y[:, 1:4, 1:4], x[:, 0::2, 0::2], atol=1e-6)
    x, xt = images(device, n=1, size=21, channels=1)
    x[:] = numpy.arange(21, dtype=numpy.float32)[None, :, None, None] + 100 * numpy.arange(21)[None, None, :, None]
    y = backend.to_numpy(Augment(zoom_range=0.5)(backend.to_device(x, device), rng))
    # output row 5, 5 above the centre, reads input row 10 - 5 z (inside the image for z <= 2)
    row_zoom = (y[0, 5, 10, 0] - y[0, 10, 10, 0]) / -5
    col_zoom = (y[0, 10, 5, 0] - y[0, 10, 10, 0]) / -500
    assert 0.5 <= row_zoom <= 1.5 and 0.5 <= col_zoom <= 1.5 and abs(row_zoom - col_zoom) > 1e-3
    with pytest.raises(ValueError, match="zoom_range must be"):
        Augment(zoom_range=1.0)


def test_random_contrast_and_brightness_keep_each_image_in_range(device):
    """Contrast: each image's channel means stay, its deviations from them scale by one
    factor in [1 - lower, 1 + upper]; brightness: one shift per image of f * the value
    range's width; both clipped to value_range."""
    x, xt = images(device, n=32, size=6, channels=2)  # values in [0, 1)
    y = backend.to_numpy(RandomContrast((0.5, 0.5), value_range=(-10, 10), seed=2)(xt, training=True).data)
    mean = x.mean(axis=(1, 2), keepdims=True)
    numpy.testing.assert_allclose(y.mean(axis=(1, 2), keepdims=True), mean, atol=1e-5)
    scale = (y - mean) / (x - mean)
    numpy.testing.assert_allclose(scale, scale[:, :1, :1, :1] * numpy.ones_like(scale), rtol=1e-3)
    assert (0.5 <= scale[:, 0, 0, 0]).all() and (scale[:, 0, 0, 0] <= 1.5).all() and scale.std() > 0.05
    y = backend.to_numpy(RandomContrast(0.9, value_range=(0, 1))(xt, training=True).data)
    assert 0 <= y.min() and y.max() <= 1
    y = backend.to_numpy(RandomBrightness((-0.1, 0.2), value_range=(-5, 10), seed=3)(xt, training=True).data)
    shift = y - x  # from -0.1 * 15 to 0.2 * 15, never clipped here
    assert (shift.max(axis=(1, 2, 3)) - shift.min(axis=(1, 2, 3)) < 1e-5).all()
    assert (-1.5 - 1e-5 <= shift).all() and (shift <= 3 + 1e-5).all() and shift.std() > 0.3
    y = backend.to_numpy(RandomBrightness(1.0, value_range=(0, 1), seed=3)(xt, training=True).data)
    assert y.min() == 0 and y.max() == 1  # a shift of up to a whole range each way: clipped
    with pytest.raises(ValueError, match="value_range must be"):
        RandomBrightness(0.1, value_range=(1, 0))
    with pytest.raises(ValueError, match="RandomContrast: factor must be"):
        RandomContrast(1.5)


def test_nearest_interpolation_copies_input_pixels(device):
    """interpolation='nearest': every output pixel is one input pixel (or the fill value);
    a whole-pixel shift is the same either way; the option is saved in the config."""
    x, xt = images(device, n=8, size=8, channels=1)
    for layer in (RandomRotation(0.2, fill_mode="constant", fill_value=-1.0, interpolation="nearest", seed=1),
                  RandomZoom(0.3, interpolation="nearest", seed=2),
                  RandomTranslation(0.3, 0.3, fill_mode="wrap", interpolation="nearest", seed=3)):
        y = backend.to_numpy(layer(xt, training=True).data)
        for i in range(len(x)):
            assert numpy.isin(y[i], numpy.append(x[i], -1.0)).all(), type(layer).__name__
        assert not numpy.array_equal(y, x) and layer.get_config()["interpolation"] == "nearest"
    shift = dict(height_factor=(0.25, 0.25), width_factor=(-0.125, -0.125), fill_mode="constant")
    numpy.testing.assert_array_equal(
        backend.to_numpy(RandomTranslation(**shift, interpolation="nearest")(xt, training=True).data),
        backend.to_numpy(RandomTranslation(**shift)(xt, training=True).data))


def test_augmentation_in_a_model_is_seeded_by_fit_and_saved(device, tmp_path):
    x, _ = images(device, n=16, size=8, channels=3)
    y = numpy.arange(16) % 3

    def run():
        minicnn.set_seed(0)
        with minicnn.device(device):
            model = Sequential([RandomFlip("horizontal", input_shape=(8, 8, 3)), RandomTranslation(0.1, 0.1),
                                RandomRotation(0.05), RandomZoom(0.1, (-0.1, 0.2)), RandomContrast(0.2, (0, 1)),
                                RandomBrightness(0.1, (0, 1)), Conv2D(4, 3), Flatten(), Dense(3, activation="softmax")])
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
    with pytest.raises(ValueError, match="interpolation must be 'bilinear' or 'nearest', got 'bicubic'"):
        RandomTranslation(0.1, 0.1, interpolation="bicubic")
    model = Sequential([Conv2D(2, 3, input_shape=(6, 6, 1)), RandomFlip()])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="RandomFlip 'random_flip': it passes no gradient to its input"):
        model.fit(numpy.zeros((2, 6, 6, 1), numpy.float32), numpy.zeros((2, 4, 4, 2), numpy.float32), verbose=0)
