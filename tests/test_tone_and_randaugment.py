"""tone.py (AutoContrast, Equalization, RandomColorDegeneration, RandomSharpness and their
functions), RandomShear, and RandAugment: against PIL's own ImageEnhance and ImageOps
where Pillow is installed (PIL defines these operations), against hand-made images, the
draws each makes, saved and reloaded."""
import numpy
import pytest

from minicnn import backend
from minicnn.autograd import Tensor
from minicnn.layers import (AutoContrast, Conv2D, Dense, Equalization, Flatten, RandAugment, RandomColorDegeneration,
                            RandomSharpness, RandomShear)
from minicnn.layers.randaugment import OPERATIONS
from minicnn.layers.tone import auto_contrast, blend, equalize, grey, smoothed
from minicnn.models import Sequential, load_model


def images(device, n=12, size=10, seed=0):
    x = numpy.floor(numpy.random.default_rng(seed).uniform(0, 256, (n, size, size, 3))).astype(numpy.float32)
    return x, Tensor(backend.to_device(x, device))


def run(layer, xt, training=True):
    return backend.to_numpy(layer(xt, training=training).data)


def on(device, x):
    return backend.to_device(x, device)


def test_the_enhancements_are_pils(device):
    """brightness, colour, contrast and sharpness blends, and autocontrast, against PIL on
    uint8 images: within one level (PIL rounds to whole levels and its grey is integer)."""
    Image = pytest.importorskip("PIL.Image")
    from PIL import ImageEnhance, ImageOps
    x, _ = images(device, n=4)
    unit = on(device, x / 255)
    for i, picture in enumerate(Image.fromarray(image.astype(numpy.uint8)) for image in x):
        for factor in (0.3, 1.6):
            f = on(device, numpy.full(1, factor, numpy.float32))
            one = unit[i:i + 1]
            ours = {"Brightness": blend(backend.get_array_module(one).zeros_like(one), one, f),
                    "Color": blend(grey(one), one, f),
                    "Contrast": blend(grey(one)[..., :1].mean(axis=(1, 2, 3), keepdims=True) + 0 * one, one, f),
                    "Sharpness": blend(smoothed(one), one, f)}
            for name, got in ours.items():
                pil = numpy.asarray(getattr(ImageEnhance, name)(picture).enhance(factor), numpy.float32)
                assert numpy.abs(backend.to_numpy(got)[0] * 255 - pil).max() <= 1.5, (name, factor)
        pil = numpy.asarray(ImageOps.autocontrast(picture), numpy.float32)
        assert numpy.abs(backend.to_numpy(auto_contrast(unit[i:i + 1]))[0] * 255 - pil).max() <= 1.0


def test_equalize_spreads_a_narrow_histogram_and_leaves_a_flat_channel():
    x = numpy.zeros((1, 4, 4, 2), numpy.float32)
    x[0, :, :, 0] = (100 + numpy.arange(16).reshape(4, 4)) / 255  # 16 levels, one pixel each
    x[0, :, :, 1] = 0.5                                           # one level: left alone
    out = equalize(x)
    # cumulative counts 1..16, the first level's 1 taken off, over 15: level k -> k/15 of 255
    numpy.testing.assert_allclose(out[0, :, :, 0].ravel() * 255, numpy.rint(numpy.arange(16) * 255 / 15), atol=1e-4)
    numpy.testing.assert_array_equal(out[..., 1], x[..., 1])


def test_color_degeneration_sharpness_and_auto_contrast_layers(device):
    x, xt = images(device)
    numpy.testing.assert_allclose(run(RandomColorDegeneration((1.0, 1.0)), xt), grey(x / 255) * 255, atol=1e-3)
    numpy.testing.assert_allclose(run(RandomColorDegeneration((0.0, 0.0)), xt), x, atol=1e-3)
    numpy.testing.assert_allclose(run(RandomSharpness((0.5, 0.5)), xt), x, atol=1e-3)  # 2 f = 1: the image
    blurred = run(RandomSharpness((0.0, 0.0)), xt)
    numpy.testing.assert_allclose(blurred, smoothed(x / 255) * 255, atol=1e-3)
    numpy.testing.assert_array_equal(blurred[:, 0], x[:, 0])  # the border kept, as PIL's
    stretched = run(AutoContrast(), xt, training=False)  # not random: inference too, as Keras's
    assert (stretched.min(axis=(1, 2)) == 0).all() and (stretched.max(axis=(1, 2)) == 255).all()
    numpy.testing.assert_array_equal(run(Equalization(), xt, training=False), x)  # Keras's: training only
    assert not numpy.array_equal(run(Equalization(), xt), x)


def test_random_shear_reads_each_row_shifted_by_its_distance_from_the_centre(device):
    x, xt = images(device, n=40, size=9)
    y = run(RandomShear(x_factor=(0.25, 0.25), interpolation="nearest", fill_mode="constant", seed=2), xt)
    centre, rows, cols = 4, numpy.arange(9)[:, None], numpy.arange(9)[None, :]
    signs = set()
    for before, after in zip(x, y):
        for sign in (1, -1):  # one random sign per image, both ways about the centre
            source = numpy.floor(cols + sign * 0.25 * (rows - centre) + 0.5).astype(int)
            inside = (source >= 0) & (source < 9)
            expected = numpy.where(inside[..., None], before[rows, numpy.clip(source, 0, 8)], 0)
            if numpy.array_equal(after, expected):
                signs.add(sign)
                break
        else:
            raise AssertionError("an image is not its input sheared by +-0.25")
    assert signs == {1, -1}
    numpy.testing.assert_array_equal(run(RandomShear(0.3, 0.3), xt, training=False), x)


def test_rand_augment_gives_each_image_one_of_the_operations(device):
    """num_ops=1: every image is exactly one of the fourteen operations, turned one way or
    the other, applied to it; the images pick different ones."""
    x, xt = images(device, n=80, size=8)
    layer = RandAugment(num_ops=1, factor=0.6, interpolation="nearest", seed=4)
    y = run(layer, xt)
    unit = on(device, x / 255)
    candidates = {}
    for name in OPERATIONS:
        for sign in (1.0, -1.0):
            out = unit if name == "identity" else layer.operation(name, unit, on(device, numpy.full(80, sign, numpy.float32)))
            candidates[name, sign] = backend.to_numpy(out) * 255
    used = set()
    for i in range(80):
        match = [key for key, out in candidates.items() if numpy.allclose(y[i], out[i], atol=1e-3)]
        assert match, f"image {i} is none of the operations"
        used.add(match[0][0])
    assert len(used) >= 10
    numpy.testing.assert_array_equal(run(RandAugment(num_ops=0), xt), x)
    numpy.testing.assert_array_equal(run(RandAugment(), xt, training=False), x)


def test_rand_augment_draws_again_from_a_reseed(device):
    x, xt = images(device)
    layer = RandAugment(seed=1)
    first, second = run(layer, xt), run(layer, xt)
    assert not numpy.array_equal(first, second)  # the stream goes on
    layer.reseed(1)
    numpy.testing.assert_array_equal(run(layer, xt), first)  # as fit does each epoch: the same draws again
    assert first.dtype == numpy.float32 and 0 <= first.min() and first.max() <= 255


def test_they_save_reload_and_refuse_bad_arguments(tmp_path, device):
    made = [RandomShear(0.2, (0.1, 0.3)), RandomColorDegeneration(0.5), RandomSharpness((0.2, 0.9)), AutoContrast(),
            Equalization(bins=64), RandAugment(num_ops=3, factor=0.4, seed=2)]
    model = Sequential([*made, Conv2D(2, 3, input_shape=(10, 10, 3)), Flatten(), Dense(2)])
    model.build((10, 10, 3))
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", device=device)
    assert loaded.get_config() == model.get_config()
    x, _ = images(device)
    numpy.testing.assert_allclose(backend.to_numpy(loaded.predict(on(device, x))), model.predict(x), rtol=1e-5,
                                  atol=1e-5)
    for bad, message in ((lambda: RandAugment(factor=2), "RandAugment: factor is the one strength"),
                         (lambda: RandAugment(factor=(0.1, 0.5)), "RandAugment: factor"),
                         (lambda: RandAugment(num_ops=-1), "RandAugment: num_ops"),
                         (lambda: RandomShear(x_factor=1.5), "RandomShear: x_factor"),
                         (lambda: Equalization(bins=1), "Equalization: bins"),
                         (lambda: RandomSharpness(-0.1), "RandomSharpness: factor")):
        with pytest.raises(ValueError, match=message):
            bad()
    with pytest.raises(ValueError, match="needs 3 channels"):
        Sequential([RandAugment(), Flatten(), Dense(2)]).build((8, 8, 1))
