"""Keras's other initializers (glorot_normal, lecun_*, RandomNormal, RandomUniform,
TruncatedNormal, Constant, Orthogonal) and weight penalties (L1, L1L2): their formulas
checked on large draws, seeds and save/load."""
import math

import numpy
import pytest

import minicnn
from minicnn import backend, initializers, regularizers
from minicnn.layers import Conv2D, Dense, Flatten
from minicnn.models import Sequential, load_model

KERNEL = (3, 3, 64, 128)  # fan_in 576, fan_out 1152
FAN_IN, FAN_OUT = 3 * 3 * 64, 3 * 3 * 128


@pytest.mark.parametrize("name, variance, bound", [
    ("glorot_normal", 2 / (FAN_IN + FAN_OUT), 2 * math.sqrt(2 / (FAN_IN + FAN_OUT)) / 0.8796),
    ("lecun_normal", 1 / FAN_IN, 2 * math.sqrt(1 / FAN_IN) / 0.8796),
    ("lecun_uniform", 1 / FAN_IN, math.sqrt(3 / FAN_IN))])
def test_variance_scaling_initializers_have_keras_variances(name, variance, bound):
    """The truncated normals are cut at 2 of their pre-cut std and scaled back up so the
    variance comes out as named; the uniform's limit is sqrt(3 / fan_in)."""
    minicnn.set_seed(0)
    w = initializers.get(name)(KERNEL, numpy.float32)
    assert w.dtype == numpy.float32 and w.shape == KERNEL
    assert w.var() == pytest.approx(variance, rel=0.03)
    assert numpy.abs(w).max() <= bound * 1.0001 and numpy.abs(w).max() > 0.95 * bound


def test_random_initializers_take_their_arguments_and_seeds():
    w = initializers.RandomNormal(mean=1.0, stddev=0.2)((200, 300), numpy.float32)
    assert w.mean() == pytest.approx(1.0, abs=0.005) and w.std() == pytest.approx(0.2, rel=0.02)
    w = initializers.RandomUniform(-0.3, 0.1)((200, 300), numpy.float64)
    assert w.dtype == numpy.float64 and -0.3 <= w.min() < -0.29 and 0.09 < w.max() <= 0.1
    w = initializers.TruncatedNormal(stddev=0.5)((200, 300), numpy.float32)
    assert numpy.abs(w).max() <= 1.0 and w.std() == pytest.approx(0.5 * 0.8796, rel=0.02)  # not corrected
    assert (initializers.Constant(0.25)((2, 3), numpy.float32) == 0.25).all()
    seeded = initializers.RandomNormal(seed=7)
    numpy.testing.assert_array_equal(seeded((4, 5), numpy.float32), seeded((4, 5), numpy.float32))
    shared = initializers.get("random_normal")
    minicnn.set_seed(3)
    first = shared((4, 5), numpy.float32)
    assert not numpy.array_equal(first, shared((4, 5), numpy.float32))  # unseeded: the shared stream
    minicnn.set_seed(3)
    numpy.testing.assert_array_equal(first, shared((4, 5), numpy.float32))
    assert numpy.abs(first).max() < 0.25 and first.std() < 0.1  # Keras's default stddev 0.05


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 3, 2, 4)])
def test_orthogonal_gives_orthonormal_columns_or_rows(shape):
    """The kernel as a (prod(shape[:-1]), shape[-1]) matrix: orthonormal columns where it
    is tall, orthonormal rows where it is wide, times the gain."""
    w = initializers.Orthogonal(gain=2.0, seed=0)(shape, numpy.float64)
    matrix = w.reshape(-1, shape[-1])
    small = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
    numpy.testing.assert_allclose(small, 4.0 * numpy.eye(len(small)), atol=1e-12)
    with pytest.raises(ValueError, match="rank >= 2"):
        initializers.Orthogonal()((5,), numpy.float32)


def test_initializer_and_regularizer_objects_save_and_load(tmp_path):
    model = Sequential([Conv2D(4, 3, input_shape=(6, 6, 2), kernel_initializer=initializers.Orthogonal(seed=1),
                               kernel_regularizer=regularizers.l1(1e-3)),
                        Flatten(),
                        Dense(3, kernel_initializer=initializers.RandomNormal(stddev=0.01, seed=2),
                              bias_initializer="constant", kernel_regularizer=regularizers.l1_l2(1e-4, 1e-3),
                              bias_regularizer="l1")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    dense = loaded.layers[-1]
    assert isinstance(dense.kernel_initializer, initializers.RandomNormal) and dense.kernel_initializer.stddev == 0.01
    assert (dense.kernel_regularizer.l1, dense.kernel_regularizer.l2) == (1e-4, 1e-3)
    assert dense.bias_regularizer.l1 == 0.01 and loaded.layers[0].kernel_regularizer.get_config() == {"l1": 1e-3}
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_bad_initializers_and_regularizers_are_named():
    with pytest.raises(ValueError, match="minval must be <= maxval"):
        initializers.RandomUniform(1.0, 0.0)
    with pytest.raises(ValueError, match="stddev must be >= 0"):
        initializers.RandomNormal(stddev=-1)
    with pytest.raises(ValueError, match="unknown initializer 'glorot'"):
        Dense(3, kernel_initializer="glorot")  # when the layer is made, as Keras, not at build
    with pytest.raises(ValueError, match="known classes"):
        initializers.get({"class_name": "VarianceScaling", "config": {}})
    with pytest.raises(ValueError, match="unknown regularizer 'l3'"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="l1: the factor must be a number >= 0"):
        regularizers.l1(-0.1)
    assert regularizers.get("l1_l2").get_config() == {"l1": 0.0, "l2": 0.0}  # Keras 3's default
# The L1 and L1L2 penalties in the loss and gradient: test_resnet_layers.py, beside L2's.
