"""Mixed precision (minicnn/mixed_precision.py, optimizers/loss_scale.py): float16
arithmetic on float32 weights, losses and batch-norm statistics in float32, and dynamic
loss scaling, on both devices."""
import numpy
import pytest

import minicnn
from conftest import requires_gpu
from minicnn import Tensor, backend, mixed_precision, optimizers
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, Input, MaxPooling2D
from minicnn.losses import SparseCategoricalCrossentropy
from minicnn.models import Model, Sequential, load_model
from minicnn.optimizers import SGD, LossScaleOptimizer
from minicnn.optimizers.loss_scale import unscale_gradients

F16, F32, F64 = numpy.dtype(numpy.float16), numpy.dtype(numpy.float32), numpy.dtype(numpy.float64)


@pytest.fixture(autouse=True)
def _policy_restored():
    """Each test leaves the global policy as it found it (float32)."""
    before = mixed_precision.global_policy()
    yield
    mixed_precision.set_global_policy(before)


def on(device, array, dtype=numpy.float32):
    return backend.to_device(numpy.asarray(array, dtype=dtype), device)


def small_model(policy=None, classes=4):
    return Sequential([Conv2D(6, 3, padding="same", activation="relu", input_shape=(6, 6, 3), dtype=policy),
                       BatchNormalization(dtype=policy), MaxPooling2D(dtype=policy), Flatten(dtype=policy),
                       Dense(classes, activation="softmax", dtype=policy)])


def test_policies_name_their_dtypes_and_bad_names_are_refused():
    mixed = mixed_precision.DTypePolicy("mixed_float16")
    assert (mixed.variable_dtype, mixed.compute_dtype, mixed.is_mixed) == (F32, F16, True)
    assert mixed_precision.get("float64").compute_dtype == F64
    assert mixed_precision.get(numpy.float32) == mixed_precision.DTypePolicy("float32")
    with pytest.raises(ValueError, match="unknown dtype policy 'mixed_bfloat8'"):
        mixed_precision.DTypePolicy("mixed_bfloat8")
    with pytest.raises(ValueError, match="dtype must be a policy name"):
        mixed_precision.get(3.5)


def test_the_global_policy_reaches_layers_made_after_it():
    before = Dense(3)
    mixed_precision.set_global_policy("mixed_float16")
    after, own = Dense(3), Dense(3, dtype="float32")
    assert before.dtype_policy.name == "float32" and own.dtype_policy.name == "float32"
    assert (after.dtype, after.compute_dtype) == (F32, F16)
    assert after.get_config()["dtype"] == "mixed_float16"
    mixed_precision.set_global_policy("float32")
    assert Dense(**after.get_config()).dtype_policy.name == "mixed_float16"  # as a saved file rebuilds it


def test_policy_scope_sets_the_policy_inside_and_restores_it_after_even_on_an_error():
    with mixed_precision.policy_scope("mixed_float16") as policy:
        assert policy.name == "mixed_float16" and Dense(3).dtype_policy.name == "mixed_float16"
        with mixed_precision.policy_scope("float64"):
            assert Dense(3).dtype_policy.name == "float64"
        assert mixed_precision.global_policy().name == "mixed_float16"
    assert mixed_precision.global_policy().name == "float32"
    with pytest.raises(RuntimeError, match="inside"):
        with mixed_precision.policy_scope("mixed_float16"):
            raise RuntimeError("inside")
    assert mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="unknown dtype policy"):
        with mixed_precision.policy_scope("float8"):
            pass
    assert mixed_precision.global_policy().name == "float32"


def test_a_mixed_layer_keeps_float32_weights_computes_in_float16_and_its_gradient_is_float32(device):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((2, 5, 5, 3)).astype(numpy.float32)
    mixed, plain = Conv2D(4, 3, activation="relu", dtype="mixed_float16"), Conv2D(4, 3, activation="relu")
    y = mixed(Tensor(on(device, x)))  # a float32 input: the mixed layer narrows it
    plain(Tensor(on(device, x)))
    plain.set_weights(mixed.get_weights())
    assert mixed.kernel.dtype == F32 and mixed.bias.dtype == F32 and y.dtype == F16
    expected = backend.to_numpy(plain(Tensor(on(device, x))).data)
    numpy.testing.assert_allclose(backend.to_numpy(y.data).astype(numpy.float32), expected, rtol=2e-2, atol=2e-2)
    y.astype(numpy.float32).sum().backward()
    assert mixed.kernel.grad.dtype == F32 and mixed.bias.grad.dtype == F32
    plain(Tensor(on(device, x))).sum().backward()
    numpy.testing.assert_allclose(backend.to_numpy(mixed.kernel.grad), backend.to_numpy(plain.kernel.grad),
                                  rtol=2e-2, atol=5e-2)


def test_only_the_two_keras_casts_are_made_unasked(device):
    x32 = Tensor(on(device, numpy.ones((2, 3))))
    x16 = Tensor(on(device, numpy.ones((2, 3)), numpy.float16))
    x64 = Tensor(on(device, numpy.ones((2, 3)), numpy.float64))
    assert Dense(2)(x16).dtype == F32  # a float32 layer widens a mixed layer's float16 output
    assert Dense(2, dtype="mixed_float16")(x32).dtype == F16  # a mixed layer narrows its float32 input
    with pytest.raises(TypeError, match="input dtype is float64 but the layer computes in float32"):
        Dense(2)(x64)
    with pytest.raises(TypeError, match="input dtype is float32 but the layer computes in float16"):
        Dense(2, dtype="float16")(x32)  # pure float16 was asked for: no silent narrowing
    with pytest.raises(TypeError, match="input dtype is uint8"):
        Dense(2, dtype="mixed_float16")(Tensor(on(device, numpy.ones((2, 3)), numpy.uint8)))


def test_batch_norm_under_mixed_precision_takes_its_statistics_in_float32(device):
    rng = numpy.random.default_rng(1)
    x16 = (rng.standard_normal((8, 3, 3, 5)) * 3 + 100).astype(numpy.float16)  # float16 sums would lose digits
    mixed, plain = BatchNormalization(dtype="mixed_float16"), BatchNormalization()
    y = mixed(Tensor(on(device, x16, numpy.float16)), training=True)
    expected = plain(Tensor(on(device, x16.astype(numpy.float32))), training=True)
    assert y.dtype == F16 and mixed.moving_mean.dtype == F32
    numpy.testing.assert_array_equal(backend.to_numpy(mixed.moving_mean.data), backend.to_numpy(plain.moving_mean.data))
    numpy.testing.assert_array_equal(backend.to_numpy(mixed.moving_variance.data),
                                     backend.to_numpy(plain.moving_variance.data))
    numpy.testing.assert_array_equal(backend.to_numpy(y.data), backend.to_numpy(expected.data).astype(numpy.float16))


def test_a_float16_model_s_loss_is_computed_in_float32(device):
    logits = Tensor(on(device, [[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]], numpy.float16), requires_grad=True)
    labels = on(device, [0, 2], numpy.int64)
    loss = SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    reference = SparseCategoricalCrossentropy(from_logits=True)(labels, Tensor(logits.data.astype(numpy.float32)))
    assert loss.dtype == F32
    assert float(loss.data) == pytest.approx(float(reference.data), rel=1e-6)
    loss.backward()
    assert logits.grad.dtype == F16


def test_loss_scaling_saves_a_gradient_that_float16_would_round_to_zero(device):
    """d(loss)/d(w16) = 1e-4 * 1e-4 = 1e-8, under float16's smallest number (6e-8)."""
    def gradient(scale):
        w = Tensor(on(device, [1.0, 2.0]), requires_grad=True)
        c = Tensor(on(device, [1e-4, 1e-4], numpy.float16))
        loss = (w.astype(numpy.float16) * c).sum().astype(numpy.float32) * 1e-4
        (loss * scale).backward()
        return backend.to_numpy(w.grad) / scale
    numpy.testing.assert_array_equal(gradient(1.0), [0.0, 0.0])
    numpy.testing.assert_allclose(gradient(2.0 ** 15), [1e-8, 1e-8], rtol=2e-3)


def _scaled_and_plain(device, grads, **options):
    """Run the same gradient arrays through SGD wrapped in a LossScaleOptimizer (each
    gradient given scaled, as backward leaves it) and through SGD alone."""
    def weights():
        return Tensor(on(device, [1.0, -1.0, 0.5]), requires_grad=True)
    w_scaled, w_plain = weights(), weights()
    scaled = LossScaleOptimizer(SGD(0.1, momentum=0.9), **options).build([w_scaled])
    plain = SGD(0.1, momentum=0.9).build([w_plain])
    scales = []
    for g in grads:
        scales.append(scaled.scale)
        w_scaled.grad = on(device, numpy.asarray(g) * scaled.scale)
        scaled.step()
        if numpy.all(numpy.isfinite(g)):
            w_plain.grad = on(device, g)
            plain.step()
    return scaled, backend.to_numpy(w_scaled.data), backend.to_numpy(w_plain.data), scales


def test_a_scaled_step_is_the_inner_optimizer_s_step_on_the_true_gradient(device):
    grads = [[0.5, -0.25, 1.0], [0.125, 2.0, -1.0]]
    scaled, w, expected, _ = _scaled_and_plain(device, grads, initial_scale=1024.0)
    numpy.testing.assert_allclose(w, expected, rtol=1e-6)
    assert (scaled.iterations, scaled.good_steps, scaled.skipped_steps, scaled.scale) == (2, 2, 0, 1024.0)


def test_a_step_with_an_overflowed_gradient_is_skipped_and_the_scale_halves(device):
    grads = [[0.5, -0.25, 1.0], [numpy.inf, 0.0, 0.0], [numpy.nan, 1.0, 1.0], [0.25, 0.5, -0.5]]
    scaled, w, expected, scales = _scaled_and_plain(device, grads, initial_scale=256.0)
    numpy.testing.assert_allclose(w, expected, rtol=1e-6)  # the two bad steps changed nothing, momentum included
    assert scales == [256.0, 256.0, 128.0, 64.0]
    assert (scaled.iterations, scaled.skipped_steps, scaled.good_steps, scaled.scale) == (2, 2, 1, 64.0)


def test_the_scale_doubles_after_its_growth_steps(device):
    grads = [[0.5, -0.25, 1.0]] * 5
    scaled, _, _, scales = _scaled_and_plain(device, grads, initial_scale=8.0, dynamic_growth_steps=2)
    assert scales == [8.0, 8.0, 16.0, 16.0, 32.0] and scaled.scale == 32.0 and scaled.good_steps == 1


def test_loss_scale_arguments_are_checked():
    with pytest.raises(TypeError, match="wraps an Optimizer"):
        LossScaleOptimizer("sgd")
    with pytest.raises(ValueError, match="initial_scale must be a positive number"):
        LossScaleOptimizer(SGD(), initial_scale=0)
    with pytest.raises(ValueError, match="dynamic_growth_steps must be a positive int"):
        LossScaleOptimizer(SGD(), dynamic_growth_steps=1.5)


def test_compile_adds_loss_scaling_to_a_mixed_model_only():
    mixed = small_model("mixed_float16").compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy")
    plain = small_model().compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy")
    kept = LossScaleOptimizer(SGD(0.1), initial_scale=64.0)
    again = small_model("mixed_float16").compile(optimizer=kept, loss="sparse_categorical_crossentropy")
    assert isinstance(mixed.optimizer, LossScaleOptimizer) and isinstance(mixed.optimizer.inner_optimizer, SGD)
    assert isinstance(plain.optimizer, SGD) and again.optimizer is kept


def test_a_mixed_model_learns_and_its_file_keeps_the_scale(device, tmp_path):
    rng = numpy.random.default_rng(2)
    colours = rng.standard_normal((4, 3)).astype(numpy.float32)
    y = rng.integers(0, 4, 64)
    x = (colours[y][:, None, None, :] + 0.3 * rng.standard_normal((64, 6, 6, 3))).astype(numpy.float32)
    mixed_precision.set_global_policy("mixed_float16")
    model = small_model()
    model.compile(optimizer=SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.scale = 4096.0
    history = model.fit(on(device, x), on(device, y, numpy.int64), batch_size=16, epochs=4, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0] and history["accuracy"][-1] > 0.9
    assert all(w.dtype == F32 for w in model.weights) and model.optimizer.skipped_steps == 0
    model.optimizer.good_steps = 7
    model.save(tmp_path / "mixed.npz")
    loaded = load_model(tmp_path / "mixed.npz")
    assert isinstance(loaded.optimizer, LossScaleOptimizer)
    assert (loaded.optimizer.scale, loaded.optimizer.good_steps, loaded.optimizer.iterations) == (4096.0, 7, 16)
    assert loaded.layers[0].dtype_policy.name == "mixed_float16"
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_an_overflowing_scaled_step_is_skipped_without_numpy_warnings(device):
    """A scale far too large overflows the float16 backward: fit skips that step and halves
    the scale, and NumPy's overflow warnings (the overflow the scale is there to find) stay
    quiet; an unscaled float32 model's warnings are left alone."""
    import warnings
    rng = numpy.random.default_rng(3)
    x, y = rng.standard_normal((32, 6, 6, 3)).astype(numpy.float32), rng.integers(0, 4, 32)
    mixed_precision.set_global_policy("mixed_float16")
    model = small_model().compile(optimizer=SGD(0.05), loss="sparse_categorical_crossentropy")
    model.optimizer.scale = 2.0 ** 40  # any gradient times 2^40 is past float16's 65504
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail the fit
        model.fit(on(device, x), on(device, y, numpy.int64), batch_size=16, epochs=1, verbose=0)
    assert (model.optimizer.skipped_steps, model.optimizer.iterations) == (2, 0)
    assert model.optimizer.scale == 2.0 ** 38


def test_a_functional_mixed_model_takes_float32_data():
    mixed_precision.set_global_policy("mixed_float16")
    inputs = Input((4,))
    outputs = Dense(3, activation="softmax", dtype="float32")(Dense(8, activation="relu")(inputs))
    model = Model(inputs, outputs)
    assert inputs.dtype == F32 and outputs.dtype == F32
    out = model(Tensor(numpy.ones((2, 4), numpy.float32)))
    assert out.dtype == F32 and model.layers[-2].compute_dtype == F16


def test_the_optimizer_helpers_accept_a_loss_scale_optimizer():
    wrapped = LossScaleOptimizer(SGD(0.1))
    assert optimizers.get(wrapped) is wrapped
    again = optimizers.deserialize(wrapped.get_config())
    assert isinstance(again, LossScaleOptimizer) and again.get_config() == wrapped.get_config()


@requires_gpu
@pytest.mark.parametrize("bad", [None, numpy.inf, numpy.nan])
def test_the_fused_gpu_unscaling_equals_the_array_code(bad):
    """On a GPU, one kernel per 16 gradients unscales and checks them
    (fast_gpu_updates.unscale_and_check): the same gradients and the same verdict as the
    array code, with a bad value in the last of 21 gradients or none."""
    rng = numpy.random.default_rng(3)
    shapes = [(3, 3, 4, 8), (8,), (5, 7), (1,), (2, 2, 2)] * 4 + [(6, 3)]

    def unscaled(fast):
        host = [rng.standard_normal(s).astype(numpy.float32) * 1024 for s in shapes]
        if bad is not None:
            host[-1][2, 1] = bad
        with minicnn.device("gpu"), backend.fast_kernels(fast):
            grads = [backend.to_device(h, "gpu") for h in host]
            finite = unscale_gradients(grads, 1 / 1024)
            return finite, [backend.to_numpy(g) for g in grads]
    rng_state = rng.bit_generator.state
    fast_finite, fast = unscaled(True)
    rng.bit_generator.state = rng_state
    plain_finite, plain = unscaled(False)
    assert fast_finite == plain_finite == (bad is None)
    for a, b in zip(fast, plain):
        numpy.testing.assert_array_equal(a, b)


@requires_gpu
def test_the_fused_gpu_unscaling_takes_two_launches_for_21_gradients():
    cupy = pytest.importorskip("cupy")
    if not getattr(cupy, "STAND_IN", False):
        pytest.skip("counts launches on the CuPy stand-in (tests/cupy_stand_in)")
    with minicnn.device("gpu"):
        grads = [backend.to_device(numpy.ones((3, 2), numpy.float32), "gpu") for _ in range(21)]
        before = dict(cupy.stand_in_launches)
        assert unscale_gradients(grads, 0.5)
        after = dict(cupy.stand_in_launches)
    launched = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert launched.get("kernel minicnn_unscale_many") == 2 and sum(
        v for k, v in launched.items() if k.startswith(("operator", "cupy.isfinite", "ndarray"))) == 0, launched
