"""The elementwise losses (MSE, MAE, Huber, binary cross-entropy; elementwise_losses.py):
float64 gradients, their values by hand, and training with them through compile/fit, with
Keras's metric choices and clear refusals. PyTorch's versions are in test_torch_oracle.py."""
import numpy
import pytest

import minicnn
from minicnn import backend, gradcheck, losses
from minicnn.layers import Conv2D, Conv2DTranspose, Dense, Flatten
from minicnn.models import Sequential, load_model
from minicnn.optimizers import Adam
from conftest import away_from_zero, tensor

LOSSES = {"mse": lambda d, y: d * d, "mae": lambda d, y: numpy.abs(d),
          "huber": lambda d, y: numpy.where(numpy.abs(d) <= 0.5, 0.5 * d * d, 0.5 * (numpy.abs(d) - 0.25))}


def make(name):
    return losses.Huber(delta=0.5) if name == "huber" else losses.get(name)


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "bce", "bce-logits", "bce-smoothed"])
@pytest.mark.parametrize("shape", [(5, 1), (3, 4, 2, 2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_elementwise_loss_gradients_and_values(device, name, shape, weighted):
    """Each loss's float64 gradient, and its value as the definition: the elementwise loss,
    each sample's mean, times its weight, summed and divided by N (Keras's sum_over_batch_size)."""
    rng = numpy.random.default_rng(len(shape))
    weight = rng.random(shape[0]) if weighted else None
    if name.startswith("bce"):
        loss = losses.BinaryCrossentropy(from_logits=name == "bce-logits",
                                         label_smoothing=0.2 if name == "bce-smoothed" else 0.0)
        scores = rng.standard_normal(shape) if name == "bce-logits" else rng.uniform(0.05, 0.95, shape)
        target = rng.random(shape)
        smoothed = target * 0.8 + 0.1 if name == "bce-smoothed" else target
        p = 1 / (1 + numpy.exp(-scores)) if name == "bce-logits" else scores
        per_value = -(smoothed * numpy.log(p) + (1 - smoothed) * numpy.log(1 - p))
    else:
        loss = make(name)
        scores, target = away_from_zero(rng, shape), rng.standard_normal(shape)  # no |d| at a kink
        scores = target + scores
        per_value = LOSSES[name](scores - target, target)
    per_sample = per_value.reshape(shape[0], -1).mean(axis=1) * (1 if weight is None else weight)
    expected = per_sample.sum() / shape[0]
    y = backend.to_device(target, device)
    w = None if weight is None else backend.to_device(weight, device)
    pred = tensor(scores, device)
    assert float(loss(y, pred, sample_weight=w).data) == pytest.approx(expected, rel=1e-12)
    gradcheck(lambda p: loss(y, p, sample_weight=w), [pred])
    if name in ("mse", "mae"):  # reduction='sum': the same without dividing by N
        summed = type(loss)(reduction="sum")
        assert float(summed(y, pred, sample_weight=w).data) == pytest.approx(expected * shape[0], rel=1e-12)


def test_binary_cross_entropy_stays_finite_where_probabilities_round_off(device):
    """from_logits: the stable form at scores of +-80, where sigmoid rounds to 0 or 1; from
    probabilities: clipped to [1e-7, 1 - 1e-7], as Keras (a loss of -log(1e-7) = 16.1 at most)."""
    z = tensor(numpy.array([[-80.0], [80.0], [0.0]]), device)
    y = backend.to_device(numpy.array([[1.0], [0.0], [1.0]]), device)
    value = float(losses.BinaryCrossentropy(from_logits=True)(y, z).data)
    assert value == pytest.approx((80 + 80 + numpy.log(2)) / 3, rel=1e-12)
    p = tensor(numpy.array([[0.0], [1.0], [0.5]]), device)
    assert float(losses.BinaryCrossentropy()(y, p).data) == pytest.approx(
        (2 * -numpy.log(1e-7) + numpy.log(2)) / 3, rel=1e-6)


def test_regression_and_binary_models_train_with_keras_metrics(device, tmp_path):
    """compile('adam', 'mse', metrics=['mae']) learns a linear map, targets (N,) for an output
    of one value; binary_crossentropy with 'accuracy' is Keras's binary accuracy (the
    argmax of one column would always say 0); the loss survives save/load."""
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((64, 4, 4, 1)).astype(numpy.float32)
    coefficients = rng.standard_normal(16).astype(numpy.float32)
    target = x.reshape(64, 16) @ coefficients
    xd, yd = backend.to_device(x, device), backend.to_device(target, device)
    minicnn.set_seed(0)
    with minicnn.device(device):
        regression = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(1)])
    regression.compile(Adam(0.05), "mse", metrics=["mae", "mse"])
    history = regression.fit(xd, yd, epochs=40, batch_size=16, verbose=0).history
    assert history["loss"][-1] < 0.01 * history["loss"][0]
    assert history["mse"][-1] == pytest.approx(history["loss"][-1], rel=0.5)  # the loss before the last step
    loss, mae, mse = regression.evaluate(xd, yd, verbose=0)
    predicted = backend.to_numpy(regression.predict(xd)).reshape(-1)
    assert mse == pytest.approx(loss, rel=1e-5) and mse == pytest.approx(((predicted - target) ** 2).mean(), rel=1e-4)
    assert mae == pytest.approx(numpy.abs(predicted - target).mean(), rel=1e-4)
    regression.save(tmp_path / "r.npz")
    assert type(load_model(tmp_path / "r.npz").loss) is losses.MeanSquaredError

    labels = (target > 0).astype(numpy.float32)[:, None]
    minicnn.set_seed(0)
    with minicnn.device(device):
        binary = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(1, activation="sigmoid")])
    binary.compile(Adam(0.05), losses.BinaryCrossentropy(label_smoothing=0.05), metrics=["accuracy"])
    binary.fit(xd, backend.to_device(labels, device), epochs=30, batch_size=16, verbose=0)
    _, accuracy = binary.evaluate(xd, backend.to_device(labels, device), verbose=0)
    by_hand = ((backend.to_numpy(binary.predict(xd)) > 0.5) == labels).mean()
    assert accuracy == pytest.approx(by_hand) and accuracy > 0.9
    binary.save(tmp_path / "b.npz")
    loaded = load_model(tmp_path / "b.npz")
    assert loaded.loss.get_config() == binary.loss.get_config()


def test_a_softmax_output_under_mse_is_compared_as_probabilities(device):
    """For cross-entropy a final softmax hands the loss its logits; an elementwise loss
    takes the softmax's output itself, as the model predicts it."""
    minicnn.set_seed(0)
    with minicnn.device(device):
        model = Sequential([Flatten(input_shape=(2, 2, 1)), Dense(3, activation="softmax")])
    model.compile("sgd", "mse")
    x = backend.to_device(numpy.random.default_rng(1).random((6, 2, 2, 1), dtype=numpy.float32), device)
    target = numpy.full((6, 3), 1 / 3, numpy.float32)
    probabilities = backend.to_numpy(model.predict(x))
    assert model.evaluate(x, backend.to_device(target, device), verbose=0) == pytest.approx(
        ((probabilities - target) ** 2).mean(), rel=1e-5)


@pytest.mark.parametrize("target_shape", [(24,), (24, 1)])
def test_binary_crossentropy_takes_keras_class_weight_on_its_0_1_targets(device, target_shape):
    """class_weight {0: w0, 1: w1} with one sigmoid output weighs each sample by its target,
    rounded, as Keras: the same training as sample_weight of those weights; a key other
    than 0 or 1, or a model of several outputs, is refused by name."""
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((24, 4, 4, 1)).astype(numpy.float32)
    yes = (rng.random(24) < 0.25).astype(numpy.float32)
    targets = backend.to_device(yes.reshape(target_shape), device)

    def fresh():
        minicnn.set_seed(0)
        with minicnn.device(device):
            model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(1, activation="sigmoid")])
        model.compile(Adam(0.05), "binary_crossentropy")
        return model
    by_class, by_sample = fresh(), fresh()
    by_class.fit(backend.to_device(x, device), targets, epochs=2, batch_size=8, verbose=0, seed=1,
                 class_weight={0: 1.0, 1: 3.0})
    by_sample.fit(backend.to_device(x, device), targets, epochs=2, batch_size=8, verbose=0, seed=1,
                  sample_weight=backend.to_device(numpy.where(yes > 0.5, 3.0, 1.0).astype(numpy.float32), device))
    for a, b in zip(by_class.get_weights(), by_sample.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    plain = fresh()
    plain.fit(backend.to_device(x, device), targets, epochs=2, batch_size=8, verbose=0, seed=1)
    assert not numpy.allclose(plain.get_weights()[0], by_class.get_weights()[0])  # the weights did something
    with pytest.raises(ValueError, match=r"class_weight has class 2; the model's 2 classes are 0..1"):
        fresh().fit(backend.to_device(x, device), targets, verbose=0, class_weight={2: 1.0})
    with minicnn.device(device):
        several = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(3, activation="sigmoid")])
    several.compile("adam", "binary_crossentropy")
    with pytest.raises(ValueError, match="BinaryCrossentropy with 3 outputs takes target values"):
        several.fit(backend.to_device(x, device), backend.to_device(numpy.zeros((24, 3), numpy.float32), device),
                    verbose=0, class_weight={0: 1.0})


def test_elementwise_losses_refuse_what_does_not_fit():
    model = Sequential([Conv2D(2, 3, padding="same", input_shape=(4, 4, 1)), Conv2DTranspose(1, 1)])
    x = numpy.zeros((4, 4, 4, 1), numpy.float32)
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match=r"compares each output with a target of the same shape; the model "
                                         r"outputs \(None, 4, 4, 1\), y has shape \(4, 4, 4\)"):
        model.fit(x, x[..., 0], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="targets hold NaN"):
        model.fit(x, numpy.full_like(x, numpy.nan), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"class_weight weighs class labels \(or, with binary_crossentropy and "
                                         r"one output, the 0/1 targets\), but MeanSquaredError"):
        model.fit(x, x, epochs=1, verbose=0, class_weight={0: 2.0})
    model.compile("adam", "binary_crossentropy")
    with pytest.raises(ValueError, match=r"binary_crossentropy targets must lie in \[0, 1\]"):
        model.fit(x, x + 2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="metric 'accuracy' counts right classes .* use 'mae' or 'mse'"):
        model.compile("adam", "mse", metrics=["accuracy"])
    with pytest.raises(ValueError, match="metric 'mae' compares outputs with target values, but "
                                         "SparseCategoricalCrossentropy takes class labels"):
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["mae"])
    with pytest.raises(ValueError, match="delta must be > 0"):
        losses.Huber(0)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        losses.MeanSquaredError(reduction="none")


def test_mixed_precision_output_is_widened_for_the_loss():
    """A float16 output is compared in float32 (Keras's losses do so) and the gradient
    goes back as float16."""
    from minicnn.autograd import Tensor
    pred = Tensor(numpy.array([[0.25], [300.0]], numpy.float16), requires_grad=True)
    value = losses.MeanSquaredError()(numpy.array([[0.0], [0.0]], numpy.float32), pred)
    assert value.dtype == numpy.float32 and float(value.data) == pytest.approx((0.0625 + 90000) / 2)
    value.backward()
    assert pred.grad.dtype == numpy.float16
