"""The stand-in's own checks: that it refuses what CuPy refuses and runs kernels as CuPy does.
Run with the stand-in first on the path (tests/test_cupy_stand_in.py does):

    PYTHONPATH=tests/cupy_stand_in python -m pytest tests/cupy_stand_in/check_stand_in.py

Not named test_*.py, so the main suite, whose process may hold the real CuPy, never imports it.
"""
import numpy
import pytest

import cupy
import cupyx

assert getattr(cupy, "STAND_IN", False), "run with tests/cupy_stand_in first on PYTHONPATH"


def test_host_arrays_never_meet_device_arrays_implicitly():
    host = numpy.arange(6.0)
    device = cupy.asarray(host)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        numpy.asarray(device)
    for mix in (lambda: device + host, lambda: host + device, lambda: numpy.add(host, device),
                lambda: cupy.maximum(device, host), lambda: device[host.astype(int)],
                lambda: device.__setitem__(slice(None), host), lambda: cupy.concatenate([device, host])):
        with pytest.raises(TypeError, match="NumPy .host. array"):
            mix()
    assert isinstance(device * numpy.float32(2), cupy.ndarray)  # NumPy scalars are fine, as in CuPy


def test_copies_are_explicit_and_real():
    host = numpy.ones(3, dtype=numpy.float32)
    device = cupy.asarray(host)
    host[0] = 5
    assert device.get()[0] == 1  # asarray copied
    back = device.get()
    back[1] = 7
    assert float(device[1]) == 1  # get copied
    assert cupy.asarray(device) is device and cupy.get_array_module(device) is cupy
    assert cupy.get_array_module(host) is numpy and not isinstance(device, numpy.ndarray)


def test_reductions_and_indexing_give_zero_dimensional_device_arrays():
    device = cupy.asarray(numpy.arange(6.0).reshape(2, 3))
    for value in (device.sum(), device.max(), device[1, 2], cupy.mean(device), numpy.sum(device)):
        assert isinstance(value, cupy.ndarray) and value.shape == ()
    assert float(device.sum()) == 15.0 and device.argmax(axis=1).tolist() == [2, 2]


def test_kernel_resolves_T_broadcasts_and_allocates_as_cupy_does():
    axpy = cupy.ElementwiseKernel("T x, T a, raw T table, int32 k", "T y", "y = a * x + table[k]", "axpy")
    x = cupy.asarray(numpy.arange(4, dtype=numpy.float32))
    table = cupy.asarray(numpy.array([10.0, 20.0], dtype=numpy.float32))
    y = axpy(x, numpy.float32(2), table, 1)  # no ; in the body: CuPy adds it
    assert y.dtype == numpy.float32 and y.get().tolist() == [20.0, 22.0, 24.0, 26.0]
    assert axpy(x, 2, table, 0).dtype == numpy.float32  # a Python number takes T
    with pytest.raises(TypeError, match="mismatched"):
        axpy(x, numpy.float64(2), table, 0)  # a float64 NumPy scalar against float32 arrays
    with pytest.raises(TypeError, match="NumPy .host. array"):
        axpy(numpy.arange(4.0), 2.0, table, 0)
    column = cupy.asarray(numpy.ones((3, 1), dtype=numpy.float32))
    assert axpy(column, cupy.asarray(numpy.ones(4, dtype=numpy.float32)), table, 0).shape == (3, 4)


def test_kernel_writes_into_given_outputs_even_strided_ones():
    double = cupy.ElementwiseKernel("T x", "T y", "y = x + x;", "double_it")
    out = cupy.zeros((4, 6), dtype=numpy.float64)
    view = out[:, ::2]  # not contiguous: written through a copy
    double(cupy.ones((4, 3)), view)
    assert out.get()[:, ::2].tolist() == [[2.0] * 3] * 4 and out.get()[:, 1::2].sum() == 0
    with pytest.raises(TypeError, match="mismatched"):  # an output of another dtype than T
        double(cupy.ones(3), cupy.zeros(3, dtype=numpy.float32))


def test_allow_synchronize_catches_every_host_wait():
    device = cupy.asarray(numpy.arange(3.0))
    waits = [lambda: float(device[0]), lambda: device.get(), lambda: bool(device[0]),
             lambda: device.item(0), lambda: device[device > 0], lambda: cupy.nonzero(device),
             lambda: numpy.unique(device), lambda: device.nonzero(),
             lambda: cupy.cuda.get_current_stream().synchronize()]
    for wait in waits:
        with cupyx.allow_synchronize(False), pytest.raises(cupyx.DeviceSynchronized):
            wait()
    with cupyx.allow_synchronize(False):
        (device * 2).sum()  # queued work is fine
    assert float(device[2]) == 2.0  # and allowed again after the block


def test_generator_is_cupys_not_numpys():
    draws = cupy.random.default_rng(0).random(5, dtype=numpy.float32)
    assert isinstance(draws, cupy.ndarray) and draws.dtype == numpy.float32
    assert not numpy.allclose(draws.get(), numpy.random.default_rng(0).random(5, dtype=numpy.float32))
    assert cupy.random.default_rng(0).random(5, dtype=numpy.float32).get().tolist() == draws.get().tolist()
    assert not hasattr(cupy.random.default_rng(0), "permutation")  # CuPy's Generator has none


def test_memory_hook_sees_allocations_and_frees():
    seen = {"malloc": 0, "free": 0}

    class Hook(cupy.cuda.MemoryHook):
        def malloc_postprocess(self, **info):
            seen["malloc"] += info["mem_size"]

        def free_postprocess(self, **info):
            seen["free"] += info["mem_size"]
    with Hook():
        a = cupy.zeros(1000, dtype=numpy.float32)
        del a
    assert seen["malloc"] == seen["free"] == 4096  # 4000 bytes, rounded up to 512 as CuPy's pool


def test_float64_rule_catches_a_silent_promotion(monkeypatch):
    monkeypatch.setattr(cupy._array, "_float64_rule", True)  # what CUPY_STAND_IN_FLOAT64=raise sets
    x = cupy.ones(3, dtype=numpy.float32)
    assert (x * 0.5).dtype == numpy.float32 and (x * numpy.float32(0.5)).dtype == numpy.float32
    for promote in (lambda: x * numpy.float64(0.5), lambda: numpy.float64(0.5) + x,
                    lambda: numpy.maximum(x, numpy.float64(0)), lambda: cupy.where(x > 0, x, numpy.float64(0))):
        with pytest.raises(TypeError, match="promoted to float64"):
            promote()
    assert (cupy.ones(3) * x).dtype == numpy.float64  # a float64 array asked for it: allowed
    assert numpy.exp(x, dtype=numpy.float64).dtype == numpy.float64  # and so did this call


def test_counts_one_launch_per_device_operation_and_none_for_views():
    launches = cupy.stand_in_launches
    a = cupy.asarray(numpy.arange(12, dtype=numpy.float32).reshape(3, 4))
    double = cupy.ElementwiseKernel("T x", "T y", "y = 2 * x", "stand_in_check_double")
    launches.clear()
    a.reshape(4, 3), a.T, a[1:], cupy.ascontiguousarray(a), cupy.empty((2, 2)), a.astype(a.dtype, copy=False)
    assert sum(launches.values()) == 0  # views, an allocation, the same array: no work on the device
    b = a + 1
    b *= 2
    numpy.exp(b), b.sum(axis=0), a @ a.T, double(a), cupy.zeros(3), a[cupy.asarray(numpy.array([0, 2]))]
    a[0] = 0
    c = cupy.empty((3, 3), dtype=a.dtype)
    cupy.matmul(a, a.T, out=c)
    cupy.ascontiguousarray(a.T)
    assert launches == {"operator add": 1, "operator imul": 1, "numpy.exp": 1, "ndarray.sum": 1,
                        "operator matmul": 1, "kernel stand_in_check_double": 1, "cupy.zeros": 1,
                        "copy host->device": 1, "indexing (a gather)": 1, "assignment into an array": 1,
                        "cupy.matmul": 1, "cupy.ascontiguousarray (a copy)": 1}
    launches.clear()
    float(b[0, 0]), b.get()
    assert launches == {"copy device->host": 2}
