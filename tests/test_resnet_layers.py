"""The layers residual networks use (issue 19): average and global average pooling, zero
padding, ReLU with its options and LeakyReLU, He initialisers and the L2 weight penalty.
Float64 gradient checks on both devices, PyTorch as an oracle where installed, Keras's
rules worked by hand, and save/load."""
import math

import numpy
import pytest
from hypothesis import given

import minicnn
from minicnn import backend, functional as F, gradcheck, initializers, regularizers
from minicnn.layers import (AveragePooling2D, Conv2D, Dense, Flatten, GlobalAveragePooling2D, LeakyReLU, ReLU,
                            ZeroPadding2D)
from minicnn.models import Sequential, load_model
from conftest import tensor
from test_functions import pool_cases  # the max-pool gradient checks' cases


@given(case=pool_cases())
def test_average_pool_gradients(device, case):
    rng = numpy.random.default_rng(case["seed"])
    x = tensor(rng.standard_normal((case["n"], case["h"], case["w"], case["c"])), device)
    gradcheck(lambda t: F.avg_pool2d(t, case["pool"], case["strides"], case["padding"]), [x])


def test_same_average_pooling_averages_only_real_cells_as_keras(device):
    """A 3x3 image of ones, 2x2 windows, stride 2, 'same': the windows at the right and
    bottom edges hang over the padding, and still average to exactly 1 (Keras); counting
    the padding (PyTorch's default) would give 0.5 and 0.25 there."""
    x = tensor(numpy.ones((1, 3, 3, 1)), device, requires_grad=False)
    y = backend.to_numpy(F.avg_pool2d(x, 2, 2, "same").data)
    assert y.shape == (1, 2, 2, 1)
    numpy.testing.assert_array_equal(y, numpy.ones((1, 2, 2, 1)))


def test_zero_padding_relu_family_and_global_pool_gradients(device):
    rng = numpy.random.default_rng(0)
    x = tensor(rng.standard_normal((2, 3, 4, 2)), device)
    gradcheck(lambda t: F.zero_pad2d(t, ((1, 2), (0, 3))), [x])
    gradcheck(F.global_avg_pool2d, [x])
    # values kept away from the kinks at the threshold (0.5) and the cap (1.5)
    v = rng.uniform(-3, 3, (2, 5, 3))
    v = numpy.where(numpy.abs(v - 0.5) < 0.1, v + 0.3, v)
    v = numpy.where(numpy.abs(v - 1.5) < 0.1, v + 0.3, v)
    gradcheck(lambda t: F.relu_family(t, negative_slope=0.2, max_value=1.5, threshold=0.5), [tensor(v, device)])
    gradcheck(lambda t: F.leaky_relu(t, 0.3), [tensor(numpy.where(numpy.abs(v) < 0.1, 0.5, v), device)])


def test_relu_options_by_hand(device):
    x = tensor(numpy.array([-2.0, 0.0, 0.4, 1.0, 7.0]), device, requires_grad=False)
    capped = backend.to_numpy(ReLU(max_value=6.0, dtype="float64")(x).data)
    numpy.testing.assert_allclose(capped, [0, 0, 0.4, 1.0, 6.0])
    shifted = backend.to_numpy(ReLU(negative_slope=0.1, threshold=0.5, dtype="float64")(x).data)
    numpy.testing.assert_allclose(shifted, [-0.25, -0.05, -0.01, 1.0, 7.0])  # 0.1 * (x - 0.5) below 0.5
    leaky = backend.to_numpy(LeakyReLU(dtype="float64")(x).data)
    numpy.testing.assert_allclose(leaky, [-0.6, 0, 0.4, 1.0, 7.0])  # Keras's default slope 0.3
    assert LeakyReLU(alpha=0.1).negative_slope == 0.1  # Keras 2's name


def test_zero_padding_forms_and_errors():
    assert ZeroPadding2D(2).padding == ((2, 2), (2, 2))
    assert ZeroPadding2D((1, 3)).padding == ((1, 1), (3, 3))
    assert ZeroPadding2D(((0, 1), (2, 3))).padding == ((0, 1), (2, 3))
    with pytest.raises(ValueError, match="non-negative"):
        ZeroPadding2D(-1)


@pytest.mark.parametrize("name, expected_var", [("he_uniform", 2.0), ("he_normal", 2.0)])
def test_he_initialisers_give_variance_two_over_fan_in(name, expected_var):
    minicnn.set_seed(0)
    w = initializers.get(name)((3, 3, 64, 256), numpy.float32)
    fan_in = 3 * 3 * 64
    assert w.dtype == numpy.float32
    assert w.var() * fan_in == pytest.approx(expected_var, rel=0.03)
    if name == "he_uniform":
        assert numpy.abs(w).max() <= math.sqrt(6 / fan_in)


@pytest.mark.parametrize("penalty, l1, l2", [(regularizers.l2(0.05), 0.0, 0.05), (regularizers.l1(0.05), 0.05, 0.0),
                                             (regularizers.l1_l2(0.02, 0.03), 0.02, 0.03)])
def test_weight_penalties_join_the_loss_and_the_gradient(device, penalty, l1, l2):
    """loss = cross-entropy + l1 * sum(|kernel|) + l2 * sum(kernel^2); the kernel's gradient
    gains l1 * sign(kernel) + 2 * l2 * kernel (L2 alone: 2 * l2 * kernel)."""
    rng = numpy.random.default_rng(0)
    x = backend.to_device(rng.random((6, 4, 4, 1), dtype=numpy.float32), device)
    y = backend.to_device(rng.integers(0, 3, 6), device)

    def model(regularizer):
        minicnn.set_seed(1)
        m = Sequential([Flatten(input_shape=(4, 4, 1)),
                        Dense(3, activation="softmax", kernel_regularizer=regularizer)])
        m.build((4, 4, 1), device)
        m.compile(minicnn.optimizers.SGD(1e-9), "sparse_categorical_crossentropy")
        return m
    plain, penalised = model(None), model(penalty)
    kernel = backend.to_numpy(penalised.layers[1].kernel.data).astype(numpy.float64)
    expected = plain.test_on_batch(x, y) + l1 * numpy.abs(kernel).sum() + l2 * (kernel ** 2).sum()
    assert penalised.test_on_batch(x, y) == pytest.approx(expected, rel=1e-5)
    grads = []
    for m in (plain, penalised):
        loss = minicnn.training.with_penalties(m, m.loss(y, *m._forward_logits(minicnn.Tensor(x), True)))
        loss.backward()
        grads.append(backend.to_numpy(m.layers[1].kernel.grad))
    numpy.testing.assert_allclose(grads[1] - grads[0], l1 * numpy.sign(kernel) + 2 * l2 * kernel,
                                  rtol=1e-4, atol=1e-6)


def test_the_new_layers_save_and_load(tmp_path):
    minicnn.set_seed(0)
    model = Sequential([ZeroPadding2D(((1, 0), (0, 1)), input_shape=(6, 6, 2)),
                        Conv2D(4, 3, kernel_initializer="he_uniform", kernel_regularizer=regularizers.l2(1e-4)),
                        ReLU(max_value=6.0), AveragePooling2D(3, 1, "same"), LeakyReLU(0.1),
                        GlobalAveragePooling2D(), Dense(3, kernel_regularizer="l2")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    assert loaded.layers[1].kernel_regularizer.l2 == 1e-4 and loaded.layers[-1].kernel_regularizer.l2 == 0.01
    x = numpy.random.default_rng(0).standard_normal((2, 6, 6, 2)).astype(numpy.float32)
    numpy.testing.assert_array_equal(model(minicnn.Tensor(x)).data, loaded(minicnn.Tensor(x)).data)


torch = pytest.importorskip("torch", reason="PyTorch not installed: the oracle comparisons are skipped")
tF = torch.nn.functional


def nchw(a):
    return torch.tensor(a).permute(0, 3, 1, 2)


@pytest.mark.parametrize("pool, strides, padding, torch_pad", [
    (2, 2, "valid", 0), (3, 1, "valid", 0), ((2, 3), (1, 2), "valid", 0), (3, 1, "same", 1)])
def test_average_pool_equals_pytorch(device, pool, strides, padding, torch_pad):
    """'same' with an odd window and stride 1 pads evenly, which PyTorch can express;
    count_include_pad=False is Keras's rule."""
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((2, 7, 8, 3))
    xo = tensor(x, device)
    yo = F.avg_pool2d(xo, pool, strides, padding)
    gy = rng.standard_normal(yo.shape)
    yo.backward(backend.to_device(gy, device))
    xt = nchw(x).requires_grad_()
    yt = tF.avg_pool2d(xt, pool, strides, torch_pad, count_include_pad=False)
    (yt * nchw(gy)).sum().backward()
    numpy.testing.assert_allclose(backend.to_numpy(yo.data), yt.permute(0, 2, 3, 1).detach().numpy(), rtol=1e-10)
    numpy.testing.assert_allclose(backend.to_numpy(xo.grad), xt.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-10)


def test_padding_activations_and_global_pool_equal_pytorch(device):
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5, 3)) * 4
    xo = tensor(x, device, requires_grad=False)
    pairs = [(F.zero_pad2d(xo, ((1, 2), (3, 0))), tF.pad(nchw(x), (3, 0, 1, 2))),
             (F.leaky_relu(xo, 0.3), tF.leaky_relu(nchw(x), 0.3)),
             (F.relu_family(xo, max_value=6.0), tF.relu6(nchw(x)))]
    for ours, theirs in pairs:
        numpy.testing.assert_allclose(backend.to_numpy(ours.data), theirs.permute(0, 2, 3, 1).numpy(), rtol=1e-12)
    pooled = F.global_avg_pool2d(xo)
    numpy.testing.assert_allclose(backend.to_numpy(pooled.data),
                                  tF.adaptive_avg_pool2d(nchw(x), 1).flatten(1).numpy(), rtol=1e-12)
