"""Resizing, CenterCrop (layers/image_preprocessing.py) and RandomCrop (augmentation.py):
the resize's float64 gradients and exact values, Keras's smart-resize rule, every random
crop a window of its own image, saving, and clear refusals. PyTorch checks the resize
itself, pixel for pixel, in test_torch_oracle.py."""
import numpy
import pytest

import minicnn
from minicnn import backend, functional as F, gradcheck
from minicnn.layers import CenterCrop, Conv2D, Dense, Flatten, RandomCrop, Resizing
from minicnn.layers.image_preprocessing import aspect_window
from minicnn.models import Sequential, load_model
from conftest import tensor

F64 = dict(dtype="float64")


def host(t):
    return backend.to_numpy(t.data)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(3, 2), (5, 11), (8, 8), (1, 4)])
def test_resize_gradients_and_values(device, interpolation, size):
    """Float64 gradients up, down and by factors that are not whole; a constant image stays
    constant; 'nearest' copies input pixels; float32 stays float32."""
    rng = numpy.random.default_rng(0)
    x = tensor(rng.standard_normal((2, 4, 6, 3)), device)
    gradcheck(lambda t: F.resize(t, size, interpolation), [x])
    y = host(F.resize(x, size, interpolation))
    assert y.shape == (2,) + size + (3,)
    flat = host(F.resize(tensor(numpy.full((1, 4, 6, 2), 1.5), device), size, interpolation))
    numpy.testing.assert_allclose(flat, 1.5, rtol=1e-15)
    if interpolation == "nearest":
        assert numpy.isin(y, host(x)).all()
    x32 = tensor(rng.standard_normal((1, 4, 6, 2)), device, dtype=numpy.float32)
    assert F.resize(x32, size, interpolation).dtype == numpy.float32


def test_resize_by_whole_factors_is_upsampling(device):
    x = tensor(numpy.random.default_rng(1).standard_normal((2, 3, 5, 2)), device)
    for interpolation in ("bilinear", "nearest"):
        numpy.testing.assert_allclose(host(F.resize(x, (6, 15), interpolation)),
                                      host(F.upsample2d(x, (2, 3), interpolation)), rtol=1e-14, atol=1e-15)
    assert F.resize(x, (3, 5)) is x  # the same size: nothing to do
    with pytest.raises(ValueError, match="resize: interpolation must be one of"):
        F.resize(x, (4, 4), "bicubic")
    with pytest.raises(ValueError, match="resize size must be a positive int"):
        F.resize(x, (0, 4))


def test_aspect_window_is_keras_smart_resize_crop():
    """The largest centred window of the target's aspect ratio, Keras's int() rounding kept."""
    assert aspect_window(7, 9, 4, 4) == (0, 1, 7, 7)      # square target: the middle 7 x 7
    assert aspect_window(10, 10, 2, 5) == (3, 0, 4, 10)   # wide target: 10 * 2 / 5 = 4 rows
    assert aspect_window(32, 32, 32, 32) == (0, 0, 32, 32)
    assert aspect_window(3, 10, 3, 1) == (0, 4, 3, 1)     # tall target on a wide image


def test_resizing_layer(device):
    rng = numpy.random.default_rng(2)
    x = tensor(rng.standard_normal((2, 6, 12, 2)), device)
    plain = Resizing(4, 5, **F64)
    assert plain(x).shape == (2, 4, 5, 2) and plain.output_shape == (4, 5, 2)
    numpy.testing.assert_array_equal(host(plain(x)), host(F.resize(x, (4, 5))))
    gradcheck(plain, [x])
    # crop_to_aspect_ratio: the middle 6 x 6 of the 6 x 12 image, then resized: no stretching
    cropped = Resizing(3, 3, crop_to_aspect_ratio=True, interpolation="nearest", **F64)
    numpy.testing.assert_array_equal(host(cropped(x)), host(F.resize(x[:, :, 3:9], (3, 3), "nearest")))
    gradcheck(cropped, [x])
    # pad_to_aspect_ratio: 3 rows of fill_value above and below make it 12 x 12, resized to itself
    padded = Resizing(12, 12, pad_to_aspect_ratio=True, fill_value=-2.0, **F64)
    y = host(padded(x))
    numpy.testing.assert_array_equal(y[:, 3:9], host(x))
    assert (y[:, :3] == -2).all() and (y[:, 9:] == -2).all()
    gradcheck(padded, [x])
    assert Resizing(4, 4, pad_to_aspect_ratio=True, **F64)(x).shape == (2, 4, 4, 2)


def test_center_crop(device):
    rng = numpy.random.default_rng(3)
    x = tensor(rng.standard_normal((2, 7, 8, 3)), device)
    crop = CenterCrop(4, 5, **F64)
    numpy.testing.assert_array_equal(host(crop(x)), host(x)[:, 1:5, 1:6])  # (7 - 4) // 2, (8 - 5) // 2
    assert crop.output_shape == (4, 5, 3)
    gradcheck(crop, [x])
    # taller than the image: Keras's smart resize instead of a crop
    numpy.testing.assert_allclose(host(CenterCrop(9, 9, **F64)(x)),
                                  host(Resizing(9, 9, crop_to_aspect_ratio=True, **F64)(x)), rtol=1e-15)


def test_random_crop_cuts_each_image_its_own_window(device):
    """In training every output is an exact window of its own image, the windows differ from
    image to image and reach every offset; the same seed gives the same windows."""
    rng = numpy.random.default_rng(4)
    x = rng.standard_normal((64, 6, 7, 2)).astype(numpy.float32)
    xt = minicnn.Tensor(backend.to_device(x, device))
    layer = RandomCrop(4, 4, seed=7)
    y = host(layer(xt, training=True))
    assert y.shape == (64, 4, 4, 2) and y.dtype == numpy.float32 and layer.output_shape == (4, 4, 2)
    offsets = []
    for i in range(len(x)):
        found = [(a, b) for a in range(3) for b in range(4) if numpy.array_equal(x[i, a:a + 4, b:b + 4], y[i])]
        assert len(found) == 1, f"image {i}: not one window of its input"
        offsets.append(found[0])
    assert set(offsets) == {(a, b) for a in range(3) for b in range(4)}  # all 12 places, 64 draws
    again = host(RandomCrop(4, 4, seed=7)(xt, training=True))
    numpy.testing.assert_array_equal(again, y)


def test_random_crop_in_inference_and_on_small_images(device):
    """Keras's rule: inference, or an image smaller than the window, is smart-resized; an
    image of the window's size passes unchanged."""
    x = tensor(numpy.random.default_rng(5).standard_normal((2, 6, 8, 1)), device, requires_grad=False)
    layer = RandomCrop(3, 3, **F64)
    numpy.testing.assert_allclose(host(layer(x, training=False)),
                                  host(Resizing(3, 3, crop_to_aspect_ratio=True, **F64)(x)), rtol=1e-15)
    tall = RandomCrop(8, 4, **F64)  # 8 rows from a 6-row image: resized, in training too
    numpy.testing.assert_allclose(host(tall(x, training=True)),
                                  host(Resizing(8, 4, crop_to_aspect_ratio=True, **F64)(x)), rtol=1e-15)
    same = RandomCrop(6, 8, **F64)
    numpy.testing.assert_array_equal(host(same(x, training=False)), host(x))
    gradcheck(lambda t: layer(t, training=False), [tensor(host(x), device)])


def test_crop_and_resize_layers_train_save_and_load(device, tmp_path):
    """Random crops in training (the centred window resized in inference), a centre crop and
    both resizes in one model that fits, saves and loads with its layers' arguments."""
    rng = numpy.random.default_rng(6)
    images = rng.random((8, 10, 10, 3), dtype=numpy.float32)
    with minicnn.device(device):
        model = Sequential([RandomCrop(8, 8, seed=1, input_shape=(10, 10, 3)), CenterCrop(7, 7),
                            Resizing(9, 9, interpolation="nearest"),
                            Resizing(6, 4, pad_to_aspect_ratio=True, fill_value=0.5), Conv2D(2, 3), Flatten(),
                            Dense(3, activation="softmax")])
    assert model.output_shape == (3,) and model.layers[3].output_shape == (6, 4, 3)
    model.compile("adam", "sparse_categorical_crossentropy")
    data = backend.to_device(images, device)
    model.fit(data, numpy.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    numpy.testing.assert_array_equal(loaded.predict(images), model.predict(images))
    lines = []
    model.summary(arithmetic=True, print_fn=lines.append)
    assert any("(RandomCrop)" in line for line in lines) and any("from 10" in line for line in lines)


def test_crop_and_resize_layers_refuse_what_they_cannot_do():
    with pytest.raises(ValueError, match="Resizing: interpolation must be one of"):
        Resizing(4, 4, interpolation="bicubic")
    with pytest.raises(ValueError, match="cannot both be True"):
        Resizing(4, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="fill_mode must be 'constant'"):
        Resizing(4, 4, fill_mode="reflect")
    for bad in ((0, 4), (4, 2.5), (True, 3)):
        with pytest.raises(ValueError, match="height and width must be positive ints"):
            RandomCrop(*bad)
    with pytest.raises(ValueError, match="CenterCrop 'center_crop': expects input of rank 4"):
        Sequential([CenterCrop(2, 2, input_shape=(8, 3))])
    model = Sequential([Conv2D(2, 3, input_shape=(6, 6, 1)), RandomCrop(3, 3)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="RandomCrop 'random_crop': it passes no gradient to its input"):
        model.fit(numpy.zeros((2, 6, 6, 1), numpy.float32), numpy.zeros((2, 3, 3, 2), numpy.float32), verbose=0)
