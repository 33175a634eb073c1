"""The CPU (NumPy) and GPU (CuPy) give the same answers within float32 tolerance,
and never copy between host and device behind the user's back. GPU only."""
import numpy
import pytest

import minicnn
from minicnn import Tensor, backend, zoo
from conftest import requires_gpu

pytestmark = requires_gpu


def forward_backward(device, x, y):
    minicnn.set_seed(0)  # weights are drawn on the host: the same on both devices
    with minicnn.device(device):
        model = zoo.seed004_base()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        xb = Tensor(backend.to_device(x, device))
        _, logits = model._forward_logits(xb, training=False)
        loss = model.loss(backend.to_device(y, device), None, logits)
        loss.backward()
        return (backend.to_numpy(logits.data), float(loss.data),
                [backend.to_numpy(w.grad) for w in model.trainable_weights])


def test_seed_model_forward_and_backward_agree():
    rng = numpy.random.default_rng(0)
    x = rng.random((8, 32, 32, 3), dtype=numpy.float32)
    y = rng.integers(0, 10, 8)
    cpu, gpu = forward_backward("cpu", x, y), forward_backward("gpu", x, y)
    numpy.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-4, atol=1e-5)
    assert gpu[1] == pytest.approx(cpu[1], rel=1e-5)
    for g_gpu, g_cpu in zip(gpu[2], cpu[2]):
        numpy.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-3, atol=1e-5 * numpy.abs(g_cpu).max())


def test_no_implicit_host_device_copies():
    with minicnn.device("gpu"):
        on_gpu = Tensor([1.0, 2.0])
    assert on_gpu.device == "gpu"
    with pytest.raises(TypeError, match="CPU and a GPU"):
        on_gpu + numpy.ones(2, numpy.float32)
    layer = minicnn.layers.Dense(2)
    layer(on_gpu.reshape(1, 2))
    with pytest.raises(TypeError, match="weights are on gpu"):
        layer(Tensor(numpy.ones((1, 2), numpy.float32)))
