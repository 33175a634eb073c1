"""Shared test set-up.

``device`` runs a test once per backend: 'cpu' always, 'gpu' where CuPy and a GPU
are present (otherwise that half is skipped, with the reason). One declaration,
both backends, as in Chainer and tinygrad.
"""
import os

import numpy
import pytest
from hypothesis import HealthCheck, settings

import minicnn
from minicnn import backend

settings.register_profile(
    "default", max_examples=30, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# CI draws the same examples every run, so a red CI can be reproduced.
settings.register_profile(
    "ci", max_examples=30, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")

GPU_REASON = backend.gpu_unavailable_reason()
requires_gpu = pytest.mark.skipif(GPU_REASON is not None, reason=f"no GPU: {GPU_REASON}")


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=requires_gpu)])
def device(request):
    """The backend under test; inside the test it is the current device."""
    with minicnn.device(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def _seeded():
    minicnn.set_seed(1234)


def tensor(array, device, requires_grad=True, dtype=numpy.float64):
    """A Tensor on ``device`` from host data (float64 for gradient checks)."""
    return minicnn.Tensor(backend.to_device(numpy.asarray(array, dtype=dtype), device),
                          requires_grad=requires_grad)


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |v| >= margin: no ReLU kink within a finite-difference step."""
    v = rng.standard_normal(shape)
    return numpy.sign(v) * (margin + numpy.abs(v))


def distinct(rng, shape, spacing=0.05):
    """Values all different by at least ``spacing``: no max-pool ties."""
    n = int(numpy.prod(shape))
    return (rng.permutation(n) * spacing - n * spacing / 2).reshape(shape)
