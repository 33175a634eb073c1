"""What the airbench94 speed run adds to the engine (erf and GELU, optimizer parameter
groups and L2, Lookahead, Dirac and patch-whitening initialisers, Rescaling, TTA) and
the recipe's own pieces in examples/speedrun.py (schedule, loader, one tiny run)."""
import math
import os
import sys

import numpy
import pytest

import minicnn
from minicnn import Tensor, backend, functional as F, initializers, optimizers, tta
from minicnn.functions import activation, activation_cpu
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, Rescaling
from minicnn.models import Sequential
from conftest import write_fake_cifar

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import speedrun  # noqa: E402


# --- erf and GELU ------------------------------------------------------------------------
def test_erf_float32_within_its_stated_error_and_float64_exact():
    grid = numpy.linspace(-6, 6, 20001).astype(numpy.float32)
    truth = numpy.array([math.erf(v) for v in grid.astype(numpy.float64)])
    assert numpy.abs(activation.erf(grid) - truth).max() < 5e-7
    assert activation.erf(grid).dtype == numpy.float32  # no promotion
    numpy.testing.assert_array_equal(activation.erf(grid.astype(numpy.float64)), truth)


@pytest.mark.parametrize("shape", [(3, 5), (4, 7, 7, 24), (2, 300, 301)])
def test_gelu_fast_kernel_equals_the_formula(shape):
    """The fused float32 kernel (chunks across threads) against the float64 reference,
    in value and slope; shapes whose size does not divide into chunks evenly too."""
    x = numpy.random.default_rng(0).standard_normal(shape).astype(numpy.float32) * 3
    with backend.fast_kernels(True):
        y, slope = activation.gelu_forward(x)
    y_true, slope_true = activation.gelu_forward(x.astype(numpy.float64))
    assert y.dtype == slope.dtype == numpy.float32
    numpy.testing.assert_allclose(y, y_true, rtol=2e-6, atol=5e-7)
    numpy.testing.assert_allclose(slope, slope_true, rtol=2e-6, atol=5e-7)


def test_gelu_fast_kernel_uses_small_chunks_correctly(monkeypatch):
    monkeypatch.setattr(activation_cpu, "GELU_CHUNK", 7)
    x = numpy.linspace(-4, 4, 1001, dtype=numpy.float32).reshape(7, 143)
    y, slope = activation_cpu.gelu_forward(x)
    y_true, slope_true = activation.gelu_forward(x.astype(numpy.float64))
    numpy.testing.assert_allclose(y, y_true, rtol=2e-6, atol=5e-7)
    numpy.testing.assert_allclose(slope, slope_true, rtol=2e-6, atol=5e-7)


def test_gelu_known_values_and_bad_argument():
    x = Tensor(numpy.array([-3.0, 0.0, 1.0, 3.0]))
    # x * Phi(x): Phi(1) = 0.841344746..., Phi(3) = 0.998650101...
    numpy.testing.assert_allclose(x.gelu().data, [-3 * 0.0013498980316, 0, 0.8413447460685, 3 * 0.9986501019684],
                                  rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="approximate"):
        x.gelu("fast")


# --- optimizer groups, l2, Lookahead ----------------------------------------------------------
def test_parameter_groups_scale_the_learning_rate_and_l2_joins_the_momentum():
    """Two groups (lr_scale 4 with its own l2) against the same update written out by hand."""
    a = Tensor(numpy.array([1.0, -2.0]), requires_grad=True)
    b = Tensor(numpy.array([0.5]), requires_grad=True)
    opt = optimizers.SGD(0.1, momentum=0.5, nesterov=True, l2=0.01)
    opt.build([{"params": [a], "lr_scale": 4.0, "l2": 0.2}, b])
    wa, wb, va, vb = a.data.copy(), b.data.copy(), 0, 0
    for g in (numpy.array([1.0, 1.0, 2.0]), numpy.array([-1.0, 0.5, 0.0])):
        a.grad, b.grad = g[:2].copy(), g[2:].copy()
        opt.step()
        ga, gb = g[:2] + 0.2 * wa, g[2:] + 0.01 * wb
        va, vb = 0.5 * va - 0.4 * ga, 0.5 * vb - 0.1 * gb
        wa, wb = wa + 0.5 * va - 0.4 * ga, wb + 0.5 * vb - 0.1 * gb
        numpy.testing.assert_allclose(a.data, wa, rtol=1e-14)
        numpy.testing.assert_allclose(b.data, wb, rtol=1e-14)
    assert opt.get_config()["l2"] == 0.01


def test_bad_parameter_groups_are_refused():
    w = Tensor(numpy.zeros(2), requires_grad=True)
    with pytest.raises(ValueError, match="lr_scal"):
        optimizers.SGD(0.1).build([{"params": [w], "lr_scal": 2}])
    with pytest.raises(ValueError, match="lr_scale > 0"):
        optimizers.SGD(0.1).build([{"params": [w], "lr_scale": 0}])
    with pytest.raises(ValueError, match="twice"):
        optimizers.SGD(0.1).build([w, {"params": [w]}])
    with pytest.raises(ValueError, match="l2"):
        optimizers.SGD(0.1, l2=-1)


def test_a_frozen_parameter_keeps_its_value_and_momentum():
    w = Tensor(numpy.ones(2), requires_grad=True)
    opt = optimizers.SGD(0.1, momentum=0.9, l2=0.5).build([w])
    w.grad = numpy.ones(2)
    opt.step()
    before, momentum = w.data.copy(), opt.slots["momentum"][0].copy()
    w.requires_grad = False  # as airbench freezes the whitening bias after 3 epochs
    opt.zero_grad()
    opt.step()
    numpy.testing.assert_array_equal(w.data, before)
    numpy.testing.assert_array_equal(opt.slots["momentum"][0], momentum)


def test_lookahead_pulls_every_weight_to_the_average_including_batch_norm_state():
    bn = BatchNormalization(momentum=0.5)
    bn(Tensor(numpy.zeros((4, 3), numpy.float32)))
    weights = bn.weights  # gamma, beta and the two moving statistics
    lookahead = optimizers.Lookahead(weights)
    start = [w.data.copy() for w in weights]
    for w in weights:
        w.data += 1
    lookahead.update(0.75)  # average = 0.75 * start + 0.25 * (start + 1)
    for w, w0 in zip(weights, start):
        numpy.testing.assert_allclose(w.data, w0 + 0.25, rtol=1e-6)
    for w in weights:
        w.data += 4
    lookahead.update(1.0)  # back to the average, which does not move
    for w, w0 in zip(weights, start):
        numpy.testing.assert_allclose(w.data, w0 + 0.25, rtol=1e-6)
    lookahead.update(0.0)  # decay 0: the average becomes the weights
    numpy.testing.assert_allclose(lookahead.average[0], weights[0].data)
    with pytest.raises(ValueError, match="decay"):
        lookahead.update(1.5)


# --- initialisers, Rescaling -------------------------------------------------------------------
def test_dirac_kernel_passes_the_first_channels_through():
    kernel = initializers.dirac((3, 3, 4, 6), numpy.float64)
    x = numpy.random.default_rng(1).standard_normal((2, 5, 5, 4))
    y = F.conv2d(Tensor(x), Tensor(kernel), padding="same").data
    numpy.testing.assert_allclose(y[..., :4], x, rtol=1e-12)
    assert numpy.abs(kernel[..., 4:]).max() <= 1 / math.sqrt(36) and numpy.abs(kernel[..., 4:]).max() > 0
    with pytest.raises(ValueError, match="conv kernel"):
        initializers.dirac((3, 4), numpy.float32)


def test_patch_whitening_decorrelates_patches():
    """Correlated images (smooth and with channels mixed): after the whitening conv, the
    first 12 output channels have covariance lam / (lam + eps) on the diagonal, ~0 off it."""
    rng = numpy.random.default_rng(2)
    base = rng.standard_normal((64, 17, 17, 3))
    images = (base[:, 1:, 1:] + base[:, :-1, :-1]) @ numpy.array([[1, 0.5, 0], [0, 1, 0.5], [0.2, 0, 1]])
    images = images.astype(numpy.float32)
    kernel = initializers.patch_whitening(images, 2, eps=1e-6)
    assert kernel.shape == (2, 2, 3, 24) and kernel.dtype == numpy.float32
    numpy.testing.assert_array_equal(kernel[..., 12:], -kernel[..., :12])
    out = F.conv2d(Tensor(images.astype(numpy.float64)), Tensor(kernel[..., :12].astype(numpy.float64))).data
    flat = out.reshape(-1, 12)
    covariance = flat.T @ flat / len(flat)
    numpy.testing.assert_allclose(covariance, numpy.eye(12), atol=1e-3)


def test_rescaling_keeps_the_dtype_and_saves(tmp_path):
    model = Sequential([Flatten(input_shape=(2, 2, 1)), Dense(3), Rescaling(0.5, offset=1.0)])
    x = numpy.ones((2, 2, 2, 1), numpy.float32)
    y = model(Tensor(x))
    assert y.dtype == numpy.float32
    dense_out = Sequential(model.layers[:2])(Tensor(x)).data
    numpy.testing.assert_allclose(y.data, dense_out * 0.5 + 1.0, rtol=1e-6)
    model.compile("sgd", "categorical_crossentropy")
    model.save(tmp_path / "m.npz")
    loaded = minicnn.models.load_model(tmp_path / "m.npz")
    numpy.testing.assert_allclose(loaded(Tensor(x)).data, y.data, rtol=1e-6)


# --- test-time augmentation ------------------------------------------------------------------
def test_shifted_moves_the_image_and_reflects_the_edge():
    x = numpy.arange(16.0).reshape(1, 4, 4, 1)
    down_right = tta.shifted(x, 1, 1)[0, :, :, 0]
    numpy.testing.assert_array_equal(down_right[1:, 1:], x[0, :3, :3, 0])
    numpy.testing.assert_array_equal(down_right[0, 1:], x[0, 1, :3, 0])  # row -1 mirrors row 1
    up_left = tta.shifted(x, -1, -1)[0, :, :, 0]
    numpy.testing.assert_array_equal(up_left[:3, :3], x[0, 1:, 1:, 0])


def test_tta_levels_average_the_passes_they_name(device):
    minicnn.set_seed(3)
    model = Sequential([Conv2D(2, 3, input_shape=(6, 6, 1), dtype="float64"), Flatten(dtype="float64"),
                        Dense(3, dtype="float64")])
    xp = backend.xp()
    x = xp.asarray(numpy.random.default_rng(3).standard_normal((5, 6, 6, 1)))

    def plain(images):
        return backend.to_numpy(model(Tensor(xp.ascontiguousarray(images)), training=False).data)

    def averaged(level, batch_size):
        logits = tta.tta_logits(model, x, level, batch_size=batch_size)
        assert backend.device_of(logits) == device
        return backend.to_numpy(logits)
    numpy.testing.assert_allclose(averaged(0, 2), plain(x))
    level1 = 0.5 * (plain(x) + plain(x[:, :, ::-1]))
    numpy.testing.assert_allclose(averaged(1, 2), level1)
    moved = [0.5 * (plain(m) + plain(m[:, :, ::-1])) for m in (tta.shifted(x, 1, 1), tta.shifted(x, -1, -1))]
    numpy.testing.assert_allclose(averaged(2, 3), 0.5 * level1 + 0.25 * (moved[0] + moved[1]))
    with pytest.raises(ValueError, match="level"):
        tta.tta_logits(model, x, 3)


# --- the recipe --------------------------------------------------------------------------------
def test_schedule_matches_airbench_constants():
    lr, l2, l2_shifts = speedrun.learning_rates()
    assert lr == pytest.approx(1.4648e-3, rel=1e-4)  # "about 1.465e-3 per summed-loss unit"
    assert lr * l2 == pytest.approx(lr * 64 * l2_shifts)  # the same decay for both groups
    total = 476
    assert speedrun.lr_factor(0, total) == pytest.approx(0.2)
    assert speedrun.lr_factor(int(total * 0.23), total) == pytest.approx(1.0)
    assert speedrun.lr_factor(total, total) == pytest.approx(0.07)
    assert speedrun.lookahead_decay(total, total) == pytest.approx(0.95 ** 5)


def test_random_translate_crops_each_image_at_a_shift_in_range(device):
    rng = numpy.random.default_rng(4)
    padded = rng.standard_normal((40, 8, 8, 2)).astype(numpy.float32)
    out = speedrun.random_translate(backend.to_device(padded), backend.default_rng(5), 4, 2)
    assert backend.device_of(out) == device
    shifts_seen = set()
    for image, source in zip(backend.to_numpy(out), padded):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if numpy.array_equal(image, source[dy:dy + 4, dx:dx + 4])]
        assert matches, "an output is not a crop of its padded image"
        shifts_seen.add(matches[0])
    assert len(shifts_seen) > 10  # the shifts vary


def test_loader_alternates_mirroring_and_drops_the_last_partial_batch(device):
    images = numpy.random.default_rng(6).standard_normal((10, 4, 4, 1)).astype(numpy.float32)
    labels = numpy.arange(10)
    loader = speedrun.TrainLoader(backend.to_device(images), backend.to_device(labels), batch_size=4,
                                  translate=0, seed=0)
    assert len(loader) == 2

    def epoch():
        return [(backend.to_numpy(x), backend.to_numpy(y)) for x, y in loader]
    first, second = epoch(), epoch()
    assert [len(y) for _, y in first] == [4, 4]
    for (x0, y0) in first:
        for image, label in zip(x0, y0):  # epoch 0: each image as it is or mirrored
            assert numpy.array_equal(image, images[label]) or numpy.array_equal(image, images[label][:, ::-1])
    seen_first = {int(label): image for x0, y0 in first for image, label in zip(x0, y0)}
    for x1, y1 in second:  # epoch 1: every image the other way round from epoch 0
        for image, label in zip(x1, y1):
            if int(label) in seen_first:
                numpy.testing.assert_array_equal(image, seen_first[int(label)][:, ::-1])


def test_a_tiny_speedrun_learns_and_reports(tmp_path, device):
    """The whole recipe, shrunk (narrow net, small batches) on images whose class shows
    in their colour: it must train well above chance, with the stem frozen to its
    whitening and the run's seconds reported."""
    write_fake_cifar(tmp_path, per_batch=200, learnable=True)
    x_train, y_train, x_test, y_test, _ = speedrun.load(str(tmp_path), device)
    assert backend.device_of(x_train) == device
    hyp = {**speedrun.HYP, "batch_size": 50, "widths": (8, 16, 16), "epochs": 3, "whiten_images": 500}
    accuracy, train_seconds, eval_seconds = speedrun.train(x_train, y_train, x_test, y_test, seed=0,
                                                           hyp=hyp, verbose=False)
    assert accuracy > 0.5 and train_seconds > 0 and eval_seconds > 0


def test_a_tiny_speedrun_learns_in_mixed_precision(tmp_path, device, monkeypatch, capsys):
    """The same shrunk recipe under --precision mixed_float16: the net computes in float16
    on float32 weights, its SGD sits in a LossScaleOptimizer starting at HYP's scale, and
    it still learns; the global policy is float32 again afterwards."""
    from minicnn import mixed_precision, optimizers
    write_fake_cifar(tmp_path, per_batch=200, learnable=True)
    x_train, y_train, x_test, y_test, _ = speedrun.load(str(tmp_path), device)
    made = []
    make_net = speedrun.make_net
    monkeypatch.setattr(speedrun, "make_net", lambda hyp: made.append(make_net(hyp)) or made[-1])
    hyp = {**speedrun.HYP, "batch_size": 50, "widths": (8, 16, 16), "epochs": 3, "whiten_images": 500,
           "precision": "mixed_float16"}
    accuracy, _, _ = speedrun.train(x_train, y_train, x_test, y_test, seed=0, hyp=hyp, verbose=True)
    (model,) = made
    epoch_lines = [line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("epoch")]
    assert len(epoch_lines) == 3 and all(line.endswith("loss scale 2048, 0 steps skipped") for line in epoch_lines)
    assert mixed_precision.global_policy().name == "float32"
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert all(layer.compute_dtype == numpy.float16 and layer.kernel.dtype == numpy.float32 for layer in convs)
    assert isinstance(model.optimizer, optimizers.LossScaleOptimizer)
    assert model.optimizer.initial_scale == speedrun.HYP["loss_scale"] == 2.0 ** 11
    assert model.optimizer.skipped_steps == 0 and model.optimizer.iterations == 3 * 20
    assert accuracy > 0.5
    assert speedrun.parse_args([]).precision == "float32"
    assert speedrun.parse_args(["--precision", "mixed_float16"]).precision == "mixed_float16"


def test_warm_up_runs_a_short_untimed_run_of_the_same_recipe():
    seen = {}

    def fake_train(x_train, y_train, x_test, y_test, seed, hyp, verbose):
        seen.update(train=len(x_train), labels=len(y_train), test=len(x_test), seed=seed, hyp=hyp, verbose=verbose)
    x, y = numpy.zeros((5000, 2)), numpy.zeros(5000)
    assert speedrun.warm_up(fake_train, x, y, x, y, speedrun.HYP, 3) >= 0
    assert seen == {"train": 2048, "labels": 2048, "test": 2000, "seed": 3, "hyp": {**speedrun.HYP, "epochs": 2},
                    "verbose": False}
    assert speedrun.parse_args([]).no_warmup is False and speedrun.parse_args(["--no-warmup"]).no_warmup


def test_tf32_is_on_for_the_gpu_unless_turned_off(capsys):
    assert speedrun.parse_args([]).tf32 == "on" and speedrun.parse_args(["--tf32", "off"]).tf32 == "off"
    with pytest.raises(SystemExit):
        speedrun.parse_args(["--tf32", "maybe"])
    assert "invalid choice: 'maybe'" in capsys.readouterr().err


def test_speedrun_refuses_bad_flags(capsys):
    with pytest.raises(SystemExit):
        speedrun.parse_args(["--runs", "0"])
    with pytest.raises(SystemExit):
        speedrun.parse_args(["--epochs", "-1"])
    assert "--runs must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # fewer images than one batch: no step would run
        speedrun.parse_args(["--limit", "256"])
    assert "--limit must be at least one batch, 1024 images; got 256" in capsys.readouterr().err
    assert speedrun.parse_args(["--limit", "1024"]).limit == 1024
