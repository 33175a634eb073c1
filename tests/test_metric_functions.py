"""Metrics of your own, as Keras takes them: compile(metrics=[fn]) with fn(y_true, y_pred)
on the batch's arrays, logged under fn's name as its mean over the samples seen; fed the
probabilities even where the loss took the logits; saved by name and given back by
load_model(custom_objects=...). And compile(weighted_metrics=...): each sample counted with
its weight, sample_weight's (times class_weight's in training)."""
import numpy
import pytest

import minicnn
from minicnn import backend
from minicnn.layers import Dense, Input
from minicnn.models import Model, Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.saving import ModelFileError

RNG = numpy.random.default_rng(3)
X = RNG.standard_normal((30, 5)).astype(numpy.float32)
Y = RNG.integers(0, 4, 30)


def true_class_probability(y_true, y_pred):
    """Each sample's probability of its true class: (N,), on the arrays' device."""
    xp = backend.get_array_module(y_pred)
    return y_pred[xp.arange(len(y_pred)), y_true.reshape(-1).astype(xp.int64)]


def mean_confidence(y_true, y_pred):
    """The batch's mean of the largest probability: one number, as Keras metrics may return."""
    return y_pred.max(axis=1).mean()


def classifier(device):
    minicnn.set_seed(0)
    with minicnn.device(device):
        model = Sequential([Dense(8, activation="tanh", input_shape=(5,)), Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy", true_class_probability, mean_confidence])
    return model


def test_a_metric_function_is_its_mean_over_the_samples_and_sees_probabilities(device, tmp_path):
    model = classifier(device)
    history = model.fit(X, Y, batch_size=7, epochs=2, verbose=0, validation_data=(X, Y)).history
    assert [k for k in history if not k.startswith("val_")] == [
        "loss", "accuracy", "true_class_probability", "mean_confidence", "learning_rate"]
    probabilities = model.predict(X)
    # batches of 7, 7, 7, 7 and 2: a batch-mean metric is weighed by its batch's size
    expected = [probabilities[numpy.arange(30), Y].mean(), probabilities.max(axis=1).mean()]
    results = model.evaluate(X, Y, batch_size=7, verbose=0)
    numpy.testing.assert_allclose(results[2:], expected, rtol=1e-5)
    numpy.testing.assert_allclose([history["val_true_class_probability"][-1], history["val_mean_confidence"][-1]],
                                  expected, rtol=1e-5)
    assert model.metrics == ["accuracy", "true_class_probability", "mean_confidence"]
    model.save(tmp_path / "own.npz")
    with pytest.raises(ModelFileError, match="compiled with the metric function 'true_class_probability'.*"
                                             "custom_objects="):
        load_model(tmp_path / "own.npz")
    assert load_model(tmp_path / "own.npz", compile=False).optimizer is None
    loaded = load_model(tmp_path / "own.npz", custom_objects={"true_class_probability": true_class_probability,
                                                              "mean_confidence": mean_confidence})
    numpy.testing.assert_allclose(loaded.evaluate(X, Y, batch_size=7, verbose=0), results, rtol=1e-6)


def test_a_metric_function_serves_each_output_of_a_model_of_several(device):
    minicnn.set_seed(0)
    with minicnn.device(device):
        x = Input((5,))
        model = Model(x, [Dense(4, activation="softmax", name="kind")(x), Dense(1, name="size")(x)])
    sizes = X[:, :1] * 2
    model.compile("adam", loss=["sparse_categorical_crossentropy", "mse"],
                  metrics={"kind": [true_class_probability], "size": [lambda y, p: abs(y - p)]})
    logs = model.evaluate(X, [Y, sizes], verbose=0, return_dict=True)
    kind, size = model.predict(X)
    assert logs["kind_true_class_probability"] == pytest.approx(kind[numpy.arange(30), Y].mean(), rel=1e-5)
    assert logs["size_<lambda>"] == pytest.approx(numpy.abs(size - sizes).mean(), rel=1e-5)


def test_metric_functions_that_cannot_be_logged_are_refused():
    model = Sequential([Dense(4, activation="softmax", input_shape=(5,))])
    with pytest.raises(ValueError, match="two metrics are named '<lambda>'"):
        model.compile("adam", "sparse_categorical_crossentropy", metrics=[lambda y, p: p, lambda y, p: p])
    with pytest.raises(TypeError, match="a metric is a name .*f1_score.*Precision\\(\\), or a function fn\\(y_true, y_pred\\), got int"):
        model.compile("adam", "sparse_categorical_crossentropy", metrics=[3])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[lambda y, p: p[:2, 0]])
    with pytest.raises(ValueError, match="returned shape \\(2,\\) for a batch of 30; return one value per sample"):
        model.evaluate(X, Y, batch_size=30, verbose=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics="accuracy")  # one name, not its letters
    assert model.metrics == ["accuracy"]


def test_weighted_metrics_count_each_sample_with_its_weight(device, tmp_path):
    weights = RNG.uniform(0, 3, 30).astype(numpy.float32)
    minicnn.set_seed(0)
    with minicnn.device(device):
        model = Sequential([Dense(8, activation="tanh", input_shape=(5,)), Dense(4, activation="softmax")])
    # a learning rate of 1e-12: the weights stay (to float32), so training's figures are those of predict's outputs
    model.compile(SGD(1e-12), "sparse_categorical_crossentropy", metrics=["accuracy"],
                  weighted_metrics=["accuracy", true_class_probability])
    assert model.metrics == ["accuracy", "weighted_accuracy", "true_class_probability"]
    probabilities = model.predict(X)
    right, true_p = probabilities.argmax(axis=1) == Y, probabilities[numpy.arange(30), Y]
    logs = model.evaluate(X, Y, sample_weight=weights, batch_size=7, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(right.mean())
    assert logs["weighted_accuracy"] == pytest.approx((right * weights).sum() / weights.sum(), rel=1e-5)
    assert logs["true_class_probability"] == pytest.approx((true_p * weights).sum() / weights.sum(), rel=1e-5)
    unweighted = model.evaluate(X, Y, batch_size=7, verbose=0, return_dict=True)
    assert unweighted["weighted_accuracy"] == pytest.approx(right.mean())
    # in training, class_weight weighs them too (times sample_weight)
    by_class = {0: 1.0, 1: 4.0, 2: 0.5, 3: 2.0}
    sample = weights * numpy.array([by_class[k] for k in Y], dtype=numpy.float32)
    history = model.fit(X, Y, batch_size=7, epochs=1, shuffle=False, class_weight=by_class, sample_weight=weights,
                        verbose=0).history
    assert history["weighted_accuracy"][0] == pytest.approx((right * sample).sum() / sample.sum(), rel=1e-5)
    assert history["accuracy"][0] == pytest.approx(right.mean())
    numpy.testing.assert_allclose(model.test_on_batch(X, Y, sample_weight=weights),
                                  [logs["loss"], logs["accuracy"], logs["weighted_accuracy"],
                                   logs["true_class_probability"]], rtol=1e-5)
    model.save(tmp_path / "weighted.npz")
    loaded = load_model(tmp_path / "weighted.npz", custom_objects={"true_class_probability": true_class_probability})
    assert loaded.metrics == model.metrics
    reloaded = loaded.evaluate(X, Y, sample_weight=weights, batch_size=7, verbose=0, return_dict=True)
    assert reloaded == pytest.approx(logs)
    # a model of several outputs: weighted metrics per output, as its metrics
    with minicnn.device(device):
        x = Input((5,))
        heads = Model(x, [Dense(4, activation="softmax", name="kind")(x), Dense(1, name="size")(x)])
    heads.compile("adam", ["sparse_categorical_crossentropy", "mse"], metrics={"size": ["mae"]},
                  weighted_metrics={"kind": ["accuracy"], "size": ["mae"]})
    sizes = X[:, :1]
    logs = heads.evaluate(X, [Y, sizes], sample_weight=weights, batch_size=7, verbose=0, return_dict=True)
    kind, size = heads.predict(X)
    right, error = kind.argmax(axis=1) == Y, numpy.abs(size - sizes)[:, 0]
    assert list(logs) == ["loss", "kind_loss", "size_loss", "kind_accuracy", "size_mae", "size_weighted_mae"]
    assert logs["kind_accuracy"] == pytest.approx((right * weights).sum() / weights.sum(), rel=1e-5)
    assert logs["size_mae"] == pytest.approx(error.mean(), rel=1e-5)
    assert logs["size_weighted_mae"] == pytest.approx((error * weights).sum() / weights.sum(), rel=1e-5)
    heads.save(tmp_path / "heads.npz")
    assert load_model(tmp_path / "heads.npz").evaluate(X, [Y, sizes], sample_weight=weights, batch_size=7,
                                                       verbose=0, return_dict=True) == pytest.approx(logs)
