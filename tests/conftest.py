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
# The CPU stand-in for CuPy (tests/cupy_stand_in, on PYTHONPATH) runs the GPU halves without a
# GPU; the few tests of what only the hardware does (TF32, say) skip under it, saying so.
STAND_IN = GPU_REASON is None and getattr(__import__("cupy"), "STAND_IN", False)
needs_real_gpu = pytest.mark.skipif(STAND_IN, reason="needs a real GPU: `cupy` is the CPU stand-in")
# A test (or a test's 'gpu' half) that runs on the GPU carries the mark `gpu`: skipped with
# the reason where there is none, and selected alone by `pytest -m gpu` or `--device-half gpu`.
requires_gpu = pytest.mark.gpu


def pytest_addoption(parser):
    parser.addoption("--device-half", choices=["cpu", "gpu"], default=None,
                     help="run only one device's half of the suite: 'gpu', the tests and test "
                          "halves that run on the GPU; 'cpu', their CPU twins (a rehearsal of "
                          "the GPU half on a machine without one)")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: runs on the GPU (skipped, with the reason, without one)")


def pytest_collection_modifyitems(config, items):
    if GPU_REASON is not None:
        skip = pytest.mark.skip(reason=f"no GPU: {GPU_REASON}")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)
    half = config.getoption("--device-half")
    if half is None:
        return
    if half == "gpu":
        def keep(item):
            return item.get_closest_marker("gpu") is not None
    else:
        def keep(item):
            return getattr(item, "callspec", None) is not None and item.callspec.params.get("device") == "cpu"
    config.hook.pytest_deselected(items=[item for item in items if not keep(item)])
    items[:] = [item for item in items if keep(item)]


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=requires_gpu)])
def device(request):
    """The backend under test; inside the test it is the current device."""
    with minicnn.device(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def _seeded():
    minicnn.set_seed(1234)


@pytest.fixture(autouse=True)
def _small_work_on_the_pool_too(monkeypatch):
    """The tests' arrays are tiny, and work under threads.POOL_MIN_BYTES runs on the calling
    thread: here every over_batch splits, so the tests check the threaded path that a
    training batch takes (test_small_work_stays_on_the_calling_thread checks the other)."""
    from minicnn.distributed import threads
    monkeypatch.setattr(threads, "POOL_MIN_BYTES", 0)


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


# --- CIFAR-10 files in the official layout, written by the tests themselves -------------
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar_batch(path, images, labels):
    """An official-style batch: protocol-2 pickle, byte-string keys, R/G/B plane rows."""
    import pickle
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"testing", b"labels": [int(v) for v in labels],
                     b"data": rows, b"filenames": [b"x.png"] * len(images)}, f, protocol=2)


def write_fake_cifar(root, per_batch=6, seed=0, learnable=False):
    """root/cifar-10-batches-py with ``per_batch`` images in each of the six batches.
    learnable=True paints each class its own colour (plus noise), so a model can learn it.
    Returns {batch name: (images, labels)}."""
    import pickle
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = numpy.random.default_rng(seed)
    batches = {}
    for name in CIFAR_BATCHES:
        labels = rng.integers(0, 10, per_batch)
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=numpy.uint8)
        if learnable:
            colours = numpy.random.default_rng(99).integers(0, 256, (10, 3))
            images = (0.5 * images + 0.5 * colours[labels][:, None, None, :]).astype(numpy.uint8)
        write_cifar_batch(folder / name, images, labels)
        batches[name] = (images, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_vis": 3072}, f, protocol=2)
    return batches


@pytest.fixture
def fake_cifar(tmp_path):
    """(root, batches): a tiny CIFAR-10 copy at root/cifar-10-batches-py."""
    return tmp_path, write_fake_cifar(tmp_path)


def assert_runs_end_alike(straight, resumed, names=("model.npz",)):
    """Two train_cifar.py output folders hold the same final weights (each of ``names``) and
    the same 3-epoch history: what a killed and resumed run must show against a straight one."""
    import json
    from minicnn.models import load_model
    for name in names:
        a, b = load_model(straight / name), load_model(resumed / name)
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            numpy.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
    h1 = json.loads((straight / "history.json").read_text())
    h2 = json.loads((resumed / "history.json").read_text())
    assert h2["epoch"] == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        numpy.testing.assert_allclose(h1[key], h2[key], rtol=1e-4)


def write_sideways_photo(path, height, width):
    """A JPEG whose pixels are stored turned left with the EXIF orientation that turns them
    upright (as a phone saves a portrait photo): upright it is height x width, its top half
    white and its bottom half black. What an image reader must show upright."""
    from PIL import Image
    tall = numpy.zeros((height, width, 3), numpy.uint8)
    tall[:height // 2] = 255
    sideways = Image.fromarray(numpy.ascontiguousarray(numpy.rot90(tall, 1)))
    exif = sideways.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    sideways.save(path, exif=exif, quality=95)

