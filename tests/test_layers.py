"""Layers: gradient checks through the layer API, lazy building, Keras weight layout,
and errors that name the layer and the shapes."""
import math

import numpy
import pytest
from hypothesis import given, strategies as st

import minicnn
from minicnn import Tensor, backend, gradcheck
from minicnn.constraints import max_norm
from minicnn.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, Rescaling,
                            MaxPooling2D)
from minicnn.optimizers import SGD
from conftest import away_from_zero, distinct, tensor

F64 = dict(dtype="float64")


def check_layer(layer, x):
    layer(x)  # build
    gradcheck(layer, [x], params=layer.trainable_weights)


@given(filters=st.integers(1, 3), k=st.integers(1, 3), s=st.integers(1, 2),
       padding=st.sampled_from(["valid", "same"]), activation=st.sampled_from([None, "tanh", "sigmoid"]),
       use_bias=st.booleans(), seed=st.integers(0, 999))
def test_conv2d_layer_gradients(device, filters, k, s, padding, activation, use_bias, seed):
    x = tensor(numpy.random.default_rng(seed).standard_normal((2, 5, 4, 2)), device)
    check_layer(Conv2D(filters, k, strides=s, padding=padding, activation=activation,
                       use_bias=use_bias, **F64), x)


def test_conv2d_relu_layer_gradients_away_from_the_kink(device):
    rng = numpy.random.default_rng(3)
    layer = Conv2D(3, 3, padding="same", activation="relu", **F64)
    x = tensor(rng.standard_normal((2, 4, 4, 2)), device)
    layer(x)
    pre = backend.to_numpy(layer.pre_activation(x).data)
    assert numpy.abs(pre).min() > 1e-4  # no pre-activation within a finite-difference step of 0
    gradcheck(layer, [x], params=layer.trainable_weights)


@given(pool=st.integers(1, 3), strides=st.sampled_from([None, 1, 2]),
       padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 999))
def test_max_pooling_layer_gradients(device, pool, strides, padding, seed):
    x = tensor(distinct(numpy.random.default_rng(seed), (2, 5, 5, 2)), device)
    check_layer(MaxPooling2D(pool, strides, padding, **F64), x)


@given(units=st.integers(1, 4), activation=st.sampled_from([None, "tanh", "sigmoid", "softmax"]),
       shape=st.sampled_from([(3, 5), (3, 2, 5)]), seed=st.integers(0, 999))
def test_dense_layer_gradients(device, units, activation, shape, seed):
    x = tensor(numpy.random.default_rng(seed).standard_normal(shape), device)
    check_layer(Dense(units, activation=activation, **F64), x)


@given(shape=st.sampled_from([(6, 3), (2, 3, 3, 2)]), training=st.booleans(), seed=st.integers(0, 999))
def test_batch_normalization_layer_gradients(device, shape, training, seed):
    rng = numpy.random.default_rng(seed)
    layer = BatchNormalization(momentum=0.9, **F64)
    x = tensor(rng.standard_normal(shape) * 2 + 1, device)
    layer(x)
    layer.gamma.data += backend.to_device(rng.uniform(0, 1, shape[-1]), device)  # not all-ones
    layer.training = training
    gradcheck(layer, [x], params=layer.trainable_weights)


def test_dropout_layer_gradients_with_its_mask_held_fixed(device):
    layer = Dropout(0.4, seed=7, **F64)
    x = tensor(numpy.random.default_rng(0).standard_normal((4, 6)), device)

    def same_mask_each_call(t):
        layer._rng = None  # re-create the generator from seed 7: the same mask every time
        return layer(t)
    gradcheck(same_mask_each_call, [x])
    layer.training = False
    assert layer(x) is x


@given(name=st.sampled_from(["relu", "sigmoid", "tanh", "gelu", "softmax", "linear", "elu", "selu", "silu",
                            "swish", "softplus", "leaky_relu", "relu6"]))
def test_activation_flatten_and_rescaling_layer_gradients(device, name):
    x = tensor(away_from_zero(numpy.random.default_rng(0), (2, 3, 2, 2)), device)
    check_layer(Activation(name, **F64), x)
    check_layer(Flatten(**F64), x)
    check_layer(Rescaling(1 / 9, offset=0.5, **F64), x)


def test_layers_build_lazily_with_keras_weight_shapes_and_order(device):
    conv, dense, bn = Conv2D(8, (3, 2)), Dense(5), BatchNormalization()
    assert not conv.built and conv.weights == []
    x = Tensor(numpy.zeros((2, 7, 7, 3), numpy.float32)) if device == "cpu" else \
        Tensor(backend.to_device(numpy.zeros((2, 7, 7, 3), numpy.float32), device))
    y = conv(x)
    assert y.shape == (2, 5, 6, 8) and conv.built and conv.device == device
    assert [w.shape for w in conv.get_weights()] == [(3, 2, 3, 8), (8,)]
    flat = Flatten()(y)
    dense(flat)
    assert [w.shape for w in dense.get_weights()] == [(240, 5), (5,)]
    bn(y)
    assert [w.name for w in bn.weights] == [f"batch_normalization/{n}" for n in
                                            ("gamma", "beta", "moving_mean", "moving_variance")]
    assert [w.name for w in bn.trainable_weights] == ["batch_normalization/gamma", "batch_normalization/beta"]
    assert conv.kernel.grad is None and conv.bias is conv.weights[1]


def test_keras_default_initialisers():
    dense = Dense(300)
    dense(Tensor(numpy.zeros((1, 200), numpy.float32)))
    kernel, bias = dense.get_weights()
    limit = math.sqrt(6 / (200 + 300))
    assert kernel.dtype == numpy.float32 and numpy.abs(kernel).max() <= limit
    assert numpy.abs(kernel).max() > 0.95 * limit and abs(kernel.mean()) < 0.01
    assert not bias.any()


def test_set_weights_round_trip_and_shape_errors():
    conv = Conv2D(4, 3)
    conv(Tensor(numpy.zeros((1, 5, 5, 2), numpy.float32)))
    new = [numpy.ones((3, 3, 2, 4)), numpy.arange(4.0)]
    kernel_object = conv.kernel.data
    conv.set_weights(new)
    assert conv.kernel.data is kernel_object  # in place: optimizers keep their references
    numpy.testing.assert_array_equal(conv.get_weights()[1], numpy.arange(4.0))
    with pytest.raises(ValueError, match=r"conv2d/kernel has shape \(3, 3, 2, 4\)"):
        conv.set_weights([numpy.ones((3, 3, 4, 2)), numpy.zeros(4)])
    with pytest.raises(ValueError, match="has 2 weights"):
        conv.set_weights([numpy.ones((3, 3, 2, 4))])


def test_keras_same_padding_for_even_kernels_and_strides():
    x = Tensor(numpy.zeros((1, 5, 6, 1), numpy.float32))
    assert Conv2D(1, 2, strides=2, padding="same")(x).shape == (1, 3, 3, 1)
    assert Conv2D(1, 4, padding="same")(x).shape == (1, 5, 6, 1)
    assert MaxPooling2D(2, padding="same")(x).shape == (1, 3, 3, 1)
    assert MaxPooling2D(3, strides=2)(x).shape == (1, 2, 2, 1)


def rank_error(layer, shape):
    with pytest.raises(ValueError) as info:
        layer(Tensor(numpy.zeros(shape, numpy.float32)))
    return str(info.value)


def test_bad_input_is_caught_with_the_layer_and_shapes_named():
    message = rank_error(Conv2D(4, 3, name="c1"), (32, 32, 3))
    assert "Conv2D 'c1'" in message and "rank 4" in message and "(None, 32, 32, 3)" not in message
    assert "(None, 32, 3)" in message
    conv = Conv2D(4, 3, name="c2")
    conv(Tensor(numpy.zeros((1, 8, 8, 3), numpy.float32)))
    message = rank_error(conv, (1, 8, 8, 4))
    assert "Conv2D 'c2'" in message and "expects 3 input channels" in message and "(None, 8, 8, 4)" in message
    message = rank_error(Conv2D(4, 5, name="c3"), (1, 3, 3, 1))
    assert "Conv2D 'c3'" in message and "kernel 5x5 is larger than the padded input 3x3" in message
    message = rank_error(MaxPooling2D(4, name="p"), (1, 3, 3, 1))
    assert "MaxPooling2D 'p'" in message and "larger than the padded input" in message
    message = rank_error(Dense(3, name="d"), (2,))
    assert "Dense 'd'" in message and "rank >= 2" in message and "(None,)" in message
    dense = Dense(3, name="d2")
    dense(Tensor(numpy.zeros((2, 5), numpy.float32)))
    assert "expects 5 input features" in rank_error(dense, (2, 6))
    assert "expects 5 input features on the last axis" in rank_error(dense, (2, 3, 6))
    with pytest.raises(TypeError, match="Dense 'd2'.*float64"):
        dense(Tensor(numpy.zeros((2, 5))))


def test_bad_arguments_are_rejected_at_construction():
    for make in (lambda: Conv2D(0, 3), lambda: Conv2D(4, 3, padding="full"), lambda: Dense(-1),
                 lambda: Dropout(1.0), lambda: MaxPooling2D(0), lambda: Activation("swish2"),
                 lambda: BatchNormalization(axis=1)):
        with pytest.raises(ValueError):
            make()


def test_max_norm_constraint_holds_after_each_update():
    dense = Dense(4, kernel_constraint=max_norm(3))
    x = Tensor(numpy.ones((2, 6), numpy.float32))
    dense(x)
    optimizer = SGD(learning_rate=10.0).build(dense.trainable_weights)
    (dense(x) * 100.0).sum().backward()
    optimizer.step()
    norms = numpy.sqrt((dense.get_weights()[0] ** 2).sum(axis=0))
    numpy.testing.assert_allclose(norms, 3.0, rtol=1e-5)  # big step, rescaled to the limit


def test_freezing_a_layer():
    dense = Dense(2)
    dense(Tensor(numpy.ones((1, 3), numpy.float32)))
    dense.trainable = False
    assert dense.trainable_weights == [] and len(dense.non_trainable_weights) == 2
    dense.trainable = True
    assert len(dense.trainable_weights) == 2


def test_a_frozen_batch_norm_runs_in_inference_mode(device):
    """Keras's rule since TF 2.0: BatchNormalization with trainable = False normalises with
    its moving averages even in training, and leaves them as they are."""
    rng = numpy.random.default_rng(0)
    x = tensor(rng.standard_normal((8, 3)) * 2 + 1, device).astype(numpy.float32)
    bn = BatchNormalization()
    bn(x, training=True)
    bn.trainable = False
    mean, variance = (backend.to_numpy(w.data).copy() for w in (bn.moving_mean, bn.moving_variance))
    frozen = backend.to_numpy(bn(x, training=True).data)
    numpy.testing.assert_array_equal(frozen, backend.to_numpy(bn(x, training=False).data))
    numpy.testing.assert_array_equal(backend.to_numpy(bn.moving_mean.data), mean)
    numpy.testing.assert_array_equal(backend.to_numpy(bn.moving_variance.data), variance)
    bn.trainable = True
    assert not numpy.allclose(backend.to_numpy(bn(x, training=True).data), frozen)  # batch statistics again
