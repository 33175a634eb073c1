import os

import numpy
import pytest

import minicnn
from minicnn import backend
from conftest import GPU_REASON, needs_real_gpu


def test_cpu_is_default_and_xp_is_numpy():
    assert minicnn.get_device() == "cpu"
    assert minicnn.xp is numpy


def test_context_manager_restores_device_even_on_error():
    with pytest.raises(KeyError):
        with minicnn.device("cpu"):
            raise KeyError
    assert minicnn.get_device() == "cpu"


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        minicnn.set_device("tpu")


@pytest.mark.skipif(GPU_REASON is None, reason="a GPU is present; this checks the error without one")
def test_gpu_without_cupy_or_gpu_says_what_is_missing_and_how_to_install():
    with pytest.raises(RuntimeError) as info:
        minicnn.set_device("gpu")
    message = str(info.value)
    assert "CuPy" in message or "GPU" in message
    if "not installed" in message:
        assert "pip install" in message
    assert minicnn.get_device() == "cpu"


def test_float32_is_the_default_dtype(device):
    assert minicnn.Tensor([1, 2, 3]).dtype == numpy.float32
    assert minicnn.Tensor(2.5).dtype == numpy.float32
    assert minicnn.Tensor([1.0]).device == device


def test_existing_arrays_keep_their_dtype_and_device(device):
    data = backend.to_device(numpy.zeros(3, numpy.float64), device)
    t = minicnn.Tensor(data)
    assert t.dtype == numpy.float64 and t.device == device and t.data is data


def test_to_device_and_to_numpy_are_explicit_round_trips(device):
    host = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    there = backend.to_device(host, device)
    assert backend.device_of(there) == device
    numpy.testing.assert_array_equal(backend.to_numpy(there), host)


def test_tf32_switch_sets_what_cupy_reads(monkeypatch):
    """set_tf32 sets CUPY_TF32, which CuPy reads at its first float32 product."""
    monkeypatch.delenv("CUPY_TF32", raising=False)
    assert not backend.tf32_enabled()
    try:
        backend.set_tf32(True)
        assert backend.tf32_enabled() and os.environ["CUPY_TF32"] == "1"
        backend.set_tf32(False)
        assert not backend.tf32_enabled()
    finally:
        backend.set_tf32(False)


@pytest.mark.gpu
@needs_real_gpu
def test_tf32_switch_changes_the_gpu_matrix_product_at_once(monkeypatch):
    """On the GPU, after a float32 product has run: 1 + 2^-12 is a float32 number but not a
    TF32 one (10 mantissa bits), so 256 such products sum to 256.0625 in float32 and to 256
    with TF32 on. The switch must take effect at once, both ways."""
    import cupy
    monkeypatch.delenv("CUPY_TF32", raising=False)
    a = cupy.full((64, 256), 1 + 2.0 ** -12, dtype=numpy.float32)
    b = cupy.ones((256, 64), dtype=numpy.float32)
    try:
        backend.set_tf32(False)
        assert float((a @ b)[0, 0]) == 256.0625
        backend.set_tf32(True)
        assert float((a @ b)[0, 0]) == 256.0
        backend.set_tf32(False)
        assert float((a @ b)[0, 0]) == 256.0625
    finally:
        backend.set_tf32(False)


def test_matmul_takes_float16_through_float32_blas_and_rounds_once():
    """backend.matmul: float16 NumPy products are float32 GEMMs rounded to float16, which is
    what NumPy's own (BLAS-less, float32-summing) float16 matmul gives up to one rounding;
    out= is filled; other dtypes are plain @."""
    rng = numpy.random.default_rng(0)
    a32, b32 = rng.standard_normal((64, 300), dtype=numpy.float32), rng.standard_normal((300, 17), dtype=numpy.float32)
    a, b = a32.astype(numpy.float16), b32.astype(numpy.float16)
    product = backend.matmul(a, b)
    assert product.dtype == numpy.float16
    numpy_own = a @ b
    ulp = numpy.spacing(numpy.abs(numpy_own))
    assert (numpy.abs(product.astype(numpy.float32) - numpy_own.astype(numpy.float32)) <= ulp).all()
    exact = a.astype(numpy.float64) @ b.astype(numpy.float64)
    assert numpy.abs(product - exact).max() <= numpy.abs(numpy_own - exact).max() + ulp.max()
    out = numpy.empty((64, 17), numpy.float16)
    assert backend.matmul(a, b, out=out) is out and numpy.array_equal(out, product)
    assert numpy.array_equal(backend.matmul(a32, b32), a32 @ b32)
    out32 = numpy.empty((64, 17), numpy.float32)
    backend.matmul(a32, b32, out=out32)
    assert numpy.array_equal(out32, a32 @ b32)
