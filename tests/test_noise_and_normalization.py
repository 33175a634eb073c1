"""Normalization (layers/data_normalization.py: statistics from adapt(data)) and the noise
layers GaussianNoise and GaussianDropout (layers/noise.py): Keras's documented examples,
the statistics against NumPy's, float64 gradients, the noise's moments and gradient,
saving, and clear refusals."""
import numpy
import pytest

import minicnn
from minicnn import Tensor, backend, gradcheck
from minicnn.layers import Conv2D, Dense, Flatten, GaussianDropout, GaussianNoise, Normalization
from minicnn.models import Sequential, load_model
from conftest import tensor

F64 = dict(dtype="float64")


def host(t):
    return backend.to_numpy(t.data)


def test_normalization_keras_examples(device):
    """The two examples of Keras's docstring, number for number."""
    scalar = Normalization(axis=None)
    scalar.adapt(backend.to_device(numpy.array([1.0, 2, 3, 4, 5], numpy.float32), device))
    y = host(scalar(backend.to_device(numpy.array([1.0, 2, 3], numpy.float32), device)))
    numpy.testing.assert_allclose(y, [-1.4142135, -0.70710677, 0.0], rtol=1e-6)
    per_feature = Normalization(axis=-1)
    per_feature.adapt(backend.to_device(numpy.array([[0.0, 7, 4], [2, 9, 6], [0, 7, 4], [2, 9, 6]], numpy.float32),
                                        device))
    y = host(per_feature(backend.to_device(numpy.array([[0.0, 7, 4]], numpy.float32), device)))
    numpy.testing.assert_allclose(y, [[-1.0, -1.0, -1.0]], rtol=1e-6)


@pytest.mark.parametrize("axis, reduce", [(-1, (0, 1, 2)), (None, (0, 1, 2, 3)), ((1, 2), (0, 3)), (3, (0, 1, 2))])
def test_normalization_adapts_numpys_statistics_and_passes_gradients(device, axis, reduce):
    """Per channel (Keras's default), one for all, per pixel position: NumPy's mean and
    population variance whatever piece size adapt reads; float64 gradients in x."""
    rng = numpy.random.default_rng(0)
    data = rng.normal(50.0, 3.0, (23, 4, 5, 3)) * rng.uniform(0.5, 2.0, 3)  # a large mean, small spreads
    expected_mean, expected_var = data.mean(axis=reduce), data.var(axis=reduce)
    for piece in (None, 5):
        layer = Normalization(axis=axis, **F64)
        layer.adapt(backend.to_device(data, device), batch_size=piece)
        numpy.testing.assert_allclose(backend.to_numpy(layer.mean.data), expected_mean, rtol=1e-13)
        numpy.testing.assert_allclose(backend.to_numpy(layer.variance.data), expected_var, rtol=1e-11)
    y = host(layer(tensor(data, device)))
    numpy.testing.assert_allclose(y.mean(axis=reduce), 0, atol=1e-9)
    numpy.testing.assert_allclose(y.std(axis=reduce), 1, rtol=1e-9)
    assert layer.count_params() == expected_mean.size * 2 and not layer.trainable_weights
    gradcheck(layer, [tensor(data[:3], device)])
    undo = Normalization(axis=axis, mean=expected_mean, variance=expected_var, invert=True, **F64)
    numpy.testing.assert_allclose(host(undo(tensor(y, device))), data, rtol=1e-12)


def test_normalization_given_statistics_broadcast_and_float32(device):
    x = numpy.random.default_rng(1).random((2, 3, 3, 3), dtype=numpy.float32)
    layer = Normalization(mean=0.5, variance=0.25)
    y = layer(backend.to_device(x, device))
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(host(y), (x - 0.5) / 0.5, rtol=1e-6)
    assert Normalization()(backend.to_device(x, device)).shape == x.shape  # not adapted: unchanged
    numpy.testing.assert_array_equal(host(Normalization()(backend.to_device(x, device))), x)
    with pytest.raises(ValueError, match=r"do not broadcast to the kept axes' shape \(3,\)"):
        Normalization(mean=[1.0, 2.0], variance=[1.0, 1.0])(backend.to_device(x, device))


def test_normalization_in_a_model_trains_saves_and_loads(device, tmp_path):
    rng = numpy.random.default_rng(2)
    images = rng.normal(120, 60, (12, 6, 6, 3)).astype(numpy.float32)
    with minicnn.device(device):
        normalize = Normalization(input_shape=(6, 6, 3))
        model = Sequential([normalize, GaussianNoise(0.1, seed=1), Conv2D(2, 3), GaussianDropout(0.2, seed=2),
                            Flatten(), Dense(3, activation="softmax")])
    normalize.adapt(backend.to_device(images, device))  # built already: the statistics go in place
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(backend.to_device(images, device), numpy.arange(12) % 3, epochs=2, batch_size=4, verbose=0)
    numpy.testing.assert_allclose(backend.to_numpy(normalize.mean.data), images.mean(axis=(0, 1, 2)), rtol=1e-5)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    numpy.testing.assert_array_equal(loaded.predict(images), model.predict(images))
    numpy.testing.assert_array_equal(backend.to_numpy(loaded.layers[0].variance.data),
                                     backend.to_numpy(normalize.variance.data))


def test_normalization_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="give both mean and variance"):
        Normalization(mean=0.0)
    with pytest.raises(ValueError, match="variance must be >= 0"):
        Normalization(mean=0.0, variance=-1.0)
    with pytest.raises(ValueError, match="the batch axis 0 has no statistics"):
        Normalization(axis=0).adapt(numpy.ones((4, 3), numpy.float32))
    with pytest.raises(ValueError, match="axis 5 must name axes 1..3"):
        Sequential([Normalization(axis=5, input_shape=(4, 4, 3))])
    layer = Normalization(input_shape=(4, 4, 3))
    Sequential([layer])
    with pytest.raises(ValueError, match=r"adapt\(\) data of shape \(2, 4, 4, 2\) do not match"):
        layer.adapt(numpy.ones((2, 4, 4, 2), numpy.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        layer.adapt(numpy.full((2, 4, 4, 3), numpy.nan, numpy.float32))
    with pytest.raises(TypeError, match="adapt\\(\\) takes a NumPy or CuPy array"):
        layer.adapt([[1.0, 2.0]])
    with pytest.raises(ValueError, match="no samples"):
        layer.adapt(numpy.ones((0, 4, 4, 3), numpy.float32))


def test_gaussian_noise_and_dropout(device):
    """Inference passes x unchanged; training adds N(0, s^2) (gradient 1) or multiplies by
    N(1, rate / (1 - rate)) (gradient: the same noise); a seed repeats the draws."""
    shape = (64, 16, 16, 2)
    zeros, ones = (backend.to_device(numpy.full(shape, v, numpy.float32), device) for v in (0.0, 1.0))
    noise = GaussianNoise(0.3, seed=5)
    numpy.testing.assert_array_equal(host(noise(zeros, training=False)), 0)
    drawn = host(noise(zeros, training=True))
    assert drawn.dtype == numpy.float32 and abs(drawn.mean()) < 0.01 and abs(drawn.std() - 0.3) < 0.005
    numpy.testing.assert_array_equal(host(GaussianNoise(0.3, seed=5)(zeros, training=True)), drawn)
    drop = GaussianDropout(0.2, seed=6)
    numpy.testing.assert_array_equal(host(drop(ones, training=False)), 1)
    x = Tensor(ones, requires_grad=True)
    y = drop(x, training=True)
    y.sum().backward()
    multiplier = host(y)
    assert abs(multiplier.mean() - 1) < 0.01 and abs(multiplier.std() - 0.5) < 0.005  # sqrt(0.2 / 0.8)
    numpy.testing.assert_array_equal(backend.to_numpy(x.grad), multiplier)
    x = Tensor(zeros, requires_grad=True)
    noise(x, training=True).sum().backward()
    numpy.testing.assert_array_equal(backend.to_numpy(x.grad), 1)
    for bad in (lambda: GaussianNoise(-0.1), lambda: GaussianDropout(1.0), lambda: GaussianDropout("0.5")):
        with pytest.raises(ValueError, match="stddev must be a number >= 0|rate must be in \\[0, 1\\)"):
            bad()
