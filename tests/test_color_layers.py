"""The colour augmentations (layers/color.py): the HSV conversions against Python's own
colorsys, what each layer does to an image, the draws Keras 3 makes, inference untouched,
saved and reloaded, and clear refusals."""
import colorsys

import numpy
import pytest

from minicnn import backend
from minicnn.autograd import Tensor
from minicnn.layers import (Conv2D, Dense, Flatten, RandomBrightness, RandomColorJitter, RandomContrast, RandomHue,
                            RandomInvert, RandomPosterization, RandomSaturation, Solarization)
from minicnn.layers.color import hsv_to_rgb, rgb_to_hsv
from minicnn.models import Sequential, load_model


def images(device, n=200, size=8, low=0.0, high=255.0, whole=False):
    x = numpy.random.default_rng(0).uniform(low, high, (n, size, size, 3)).astype(numpy.float32)
    if whole:
        x = numpy.floor(x)
    return x, Tensor(backend.to_device(x, device))


def run(layer, xt):
    return backend.to_numpy(layer(xt, training=True).data)


def test_hsv_conversions_match_colorsys_and_invert_each_other(device):
    rgb = numpy.random.default_rng(1).random((500, 3)).astype(numpy.float32)
    rgb[:6] = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5], [0, 0, 0], [1, 1, 1]]
    hsv = backend.to_numpy(rgb_to_hsv(backend.to_device(rgb, device)))
    expected = numpy.array([colorsys.rgb_to_hsv(*map(float, p)) for p in rgb])
    wrapped = numpy.abs(hsv - expected)
    wrapped[:, 0] = numpy.minimum(wrapped[:, 0], 1 - wrapped[:, 0])  # hue 0.9999999 is hue 0
    assert wrapped.max() < 1e-6 and hsv.dtype == numpy.float32
    numpy.testing.assert_allclose(hsv[:3, 0], [0, 1 / 3, 2 / 3], atol=1e-7)
    back = backend.to_numpy(hsv_to_rgb(backend.to_device(hsv, device)))
    numpy.testing.assert_allclose(back, rgb, atol=2e-6)
    numpy.testing.assert_allclose(back, [colorsys.hsv_to_rgb(*map(float, p)) for p in hsv], atol=2e-6)


def test_random_hue_turns_the_hue_by_the_drawn_amount_either_way_and_keeps_the_rest(device):
    x, xt = images(device, low=40, high=215)
    y = run(RandomHue((0.5, 0.5), seed=1), xt)  # a quarter turn, forwards or back, per image
    before, after = rgb_to_hsv(x / 255), rgb_to_hsv(y / 255)
    turn = (after[..., 0] - before[..., 0]) % 1  # (n, H, W)
    per_image = turn.reshape(len(x), -1)
    assert numpy.allclose(per_image, per_image[:, :1], atol=1e-4)  # one turn for the whole image
    directions = numpy.round(per_image[:, 0] * 4) % 4
    assert set(directions) == {1, 3} and 0.35 < (directions == 1).mean() < 0.65  # +1/4 or -1/4 turn
    numpy.testing.assert_allclose(after[..., 1:], before[..., 1:], atol=1e-4)  # saturation and value kept
    numpy.testing.assert_array_equal(backend.to_numpy(RandomHue(0.5)(xt, training=False).data), x)


def test_random_saturation_greys_keeps_or_saturates_as_keras(device):
    x, xt = images(device)
    grey = run(RandomSaturation((0.0, 0.0)), xt)
    numpy.testing.assert_allclose(grey, numpy.broadcast_to(x.max(axis=-1, keepdims=True), x.shape), rtol=1e-5)
    numpy.testing.assert_allclose(run(RandomSaturation((0.5, 0.5)), xt), x, rtol=1e-4, atol=1e-3)  # f/(1-f) = 1
    full = run(RandomSaturation((1.0, 1.0)), xt)
    assert numpy.allclose(full.min(axis=-1), 0, atol=1e-3) and numpy.isfinite(full).all()  # no white left in
    numpy.testing.assert_allclose(full.max(axis=-1), x.max(axis=-1), rtol=1e-5)  # brightness (value) kept
    drawn = run(RandomSaturation(0.8, seed=2), xt)
    assert drawn.min() >= 0 and drawn.max() <= 255 and not numpy.allclose(drawn, x)


def test_color_jitter_is_its_parts_in_keras_order_on_one_stream(device):
    x, xt = images(device)
    # one part: the same draws as that layer alone with the same seed
    for factor, alone in (("brightness_factor", RandomBrightness(0.3, seed=4)),
                          ("contrast_factor", RandomContrast(0.3, seed=4))):
        numpy.testing.assert_array_equal(run(RandomColorJitter(**{factor: 0.3}, seed=4), xt), run(alone, xt))
    # all four: brightness, contrast, saturation, hue, in turn, on the jitter's generator
    jitter = RandomColorJitter(brightness_factor=0.2, contrast_factor=0.3, saturation_factor=(0.3, 0.7),
                               hue_factor=0.2, seed=5)
    y = run(jitter, xt)
    rng = backend.default_rng(5, backend.get_array_module(xt.data))
    expected = xt.data
    for part in (RandomBrightness(0.2), RandomContrast(0.3), RandomSaturation((0.3, 0.7)), RandomHue(0.2)):
        expected = part.augment(expected, rng)
    numpy.testing.assert_array_equal(y, backend.to_numpy(expected))
    assert y.min() >= 0 and y.max() <= 255 and y.dtype == numpy.float32
    with pytest.raises(ValueError, match="at least one"):
        RandomColorJitter()


def test_random_invert_makes_negatives_of_the_drawn_share(device):
    x, xt = images(device, low=0.0, high=1.0)
    every = run(RandomInvert((1.0, 1.0), value_range=(0, 1)), xt)
    numpy.testing.assert_allclose(every, 1 - x, atol=1e-7)
    y = run(RandomInvert(seed=3, value_range=(0, 1)), xt)  # factor 1.0: p ~ U(0, 1), so half on average
    inverted = numpy.isclose(y, 1 - x, atol=1e-7).all(axis=(1, 2, 3))
    kept = (y == x).all(axis=(1, 2, 3))
    assert (inverted | kept).all() and 0.35 < inverted.mean() < 0.65
    x, xt = images(device, low=-1.0, high=1.0)  # low + high - x, so (-1, 1) maps onto itself
    numpy.testing.assert_allclose(run(RandomInvert((1.0, 1.0), value_range=(-1, 1)), xt), -x, atol=1e-6)


def test_solarization_inverts_above_the_threshold_after_the_addition(device):
    x, xt = images(device, whole=True)
    numpy.testing.assert_array_equal(run(Solarization(), xt), 255 - x)  # Keras's defaults: all of it
    pixel = Tensor(backend.to_device(numpy.array([[[[59, 62, 63]]]], numpy.float32), device))
    numpy.testing.assert_array_equal(run(Solarization(), pixel), [[[[196, 193, 192]]]])  # Keras's doc example
    half = run(Solarization(threshold_factor=(0.5, 0.5)), xt)
    numpy.testing.assert_array_equal(half, numpy.where(x < 127.5, x, 255 - x))
    shifted = run(Solarization(addition_factor=(0.2, 0.2), threshold_factor=(1.0, 1.0)), xt)
    added = numpy.minimum(x + 51, 255)  # +0.2 * 255, clipped; only what reached 255 is at the threshold
    numpy.testing.assert_allclose(shifted, numpy.where(added < 255, added, 0), atol=1e-4)
    x, xt = images(device, low=0.0, high=1.0)
    numpy.testing.assert_allclose(run(Solarization(value_range=(0, 1)), xt), 1 - x, atol=1e-6)


def test_random_posterization_keeps_the_top_bits(device):
    x, xt = images(device, whole=True)
    one = run(RandomPosterization(1), xt)
    assert set(numpy.unique(one)) <= {0.0, 128.0}
    numpy.testing.assert_array_equal(one, (x >= 128) * 128.0)
    numpy.testing.assert_array_equal(run(RandomPosterization(8), xt), x)
    numpy.testing.assert_array_equal(run(RandomPosterization(3), xt), numpy.floor(x / 32) * 32)
    drawn = run(RandomPosterization((2, 4), seed=6), xt)
    steps = set()
    for before, after in zip(x, drawn):
        step = next(s for s in (64, 32, 16) if numpy.array_equal(after, numpy.floor(before / s) * s))
        steps.add(step)
    assert steps == {64, 32, 16}  # 2, 3 and 4 bits, both ends included
    x, xt = images(device, low=0.0, high=1.0)
    numpy.testing.assert_allclose(run(RandomPosterization(1, value_range=(0, 1)), xt),
                                  (numpy.floor(x * 255) >= 128) * (128 / 255), atol=1e-6)


def test_they_save_reload_and_refuse_bad_input(tmp_path, device):
    made = [RandomHue(0.3, seed=1), RandomSaturation((0.2, 0.8)), RandomColorJitter(
        brightness_factor=(-0.1, 0.2), hue_factor=0.1), RandomInvert(0.4), Solarization(0.1, (0.4, 0.6)),
        RandomPosterization((3, 6))]
    model = Sequential([*made, Conv2D(2, 3, input_shape=(8, 8, 3)), Flatten(), Dense(2)])
    model.build((8, 8, 3))
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", device=device)
    assert loaded.get_config() == model.get_config()
    x, xt = images(device)
    numpy.testing.assert_allclose(backend.to_numpy(loaded.predict(xt.data)), model.predict(x), rtol=1e-5, atol=1e-5)
    for bad, message in ((lambda: RandomHue(1.5), "RandomHue: factor must be a number in \\[0, 1\\]"),
                         (lambda: RandomSaturation((0.2, 1.2)), "RandomSaturation: factor"),
                         (lambda: RandomInvert(value_range=(1, 0)), "value_range must be \\(low, high\\)"),
                         (lambda: Solarization(threshold_factor=2), "Solarization: threshold_factor"),
                         (lambda: RandomPosterization(0), "RandomPosterization: factor must be a whole number"),
                         (lambda: RandomPosterization(2.5), "RandomPosterization"),
                         (lambda: RandomPosterization((3, 9)), "RandomPosterization")):
        with pytest.raises(ValueError, match=message):
            bad()
    for layer in (RandomHue(0.2), RandomSaturation(0.5), RandomColorJitter(hue_factor=0.1)):
        with pytest.raises(ValueError, match="needs 3 channels"):
            Sequential([layer, Flatten(), Dense(2)]).build((8, 8, 1))
    grey = Tensor(backend.to_device(numpy.ones((2, 8, 8, 1), numpy.float32), device))
    assert run(RandomInvert((1.0, 1.0)), grey).shape == (2, 8, 8, 1)  # inversion needs no colour
