"""The rest of Keras's losses (elementwise_losses.py, row_losses.py): MSLE, MAPE, LogCosh,
Poisson, BinaryFocalCrossentropy, Hinge, SquaredHinge, KLDivergence, CosineSimilarity. Each
value against its Keras definition written out here in NumPy (per value, or per row for the
row losses; a sample's mean; times its weight; summed and divided by N), each float64
gradient by central differences, and a model trained, saved and loaded with each name."""
import numpy
import pytest

import minicnn
from minicnn import backend, gradcheck, losses
from minicnn.layers import Dense
from minicnn.models import Sequential, load_model
from conftest import tensor

EPS = 1e-7


def sigmoid(z):
    return 1 / (1 + numpy.exp(-z))


def focal(y, p, gamma=2.0, alpha=None):
    """Keras's binary focal cross-entropy of probabilities p, per value."""
    bce = -(y * numpy.log(p) + (1 - y) * numpy.log(1 - p))
    p_t = y * p + (1 - y) * (1 - p)
    loss = (1 - p_t) ** gamma * bce
    return loss if alpha is None else (y * alpha + (1 - y) * (1 - alpha)) * loss


def hinge_targets(y):
    return 2 * y - 1 if numpy.isin(y, (0, 1)).all() else y


def kld(p, y):
    """Keras's KL divergence of each row, both clipped to [eps, 1]."""
    p, y = numpy.clip(p, EPS, 1), numpy.clip(y, EPS, 1)
    return (y * numpy.log(y / p)).sum(-1)


def unit(rows):
    return rows / numpy.sqrt(numpy.maximum((rows * rows).sum(-1, keepdims=True), EPS))


# name -> (the loss, make (scores, targets) from a generator and a shape, NumPy loss per value or row)
CASES = {
    "msle": (lambda: losses.get("msle"), lambda r, s: (r.uniform(0.1, 3, s), r.uniform(0, 3, s)),
             lambda p, y: (numpy.log1p(p) - numpy.log1p(y)) ** 2),
    "mape": (lambda: losses.get("mape"), lambda r, s: (r.standard_normal(s), r.uniform(0.5, 2, s) * r.choice([-1, 1], s)),
             lambda p, y: 100 * numpy.abs(y - p) / numpy.abs(y)),
    "log_cosh": (lambda: losses.get("log_cosh"), lambda r, s: (3 * r.standard_normal(s), r.standard_normal(s)),
                 lambda p, y: numpy.log(numpy.cosh(p - y))),
    "poisson": (lambda: losses.get("poisson"), lambda r, s: (r.uniform(0.2, 4, s), r.integers(0, 5, s).astype(float)),
                lambda p, y: p - y * numpy.log(p + EPS)),
    "focal": (lambda: losses.BinaryFocalCrossentropy(), lambda r, s: (r.uniform(0.05, 0.95, s), r.integers(0, 2, s) * 1.0),
              lambda p, y: focal(y, p)),
    "focal-balanced-logits": (lambda: losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.3, gamma=1.5,
                                                                    from_logits=True),
                              lambda r, s: (r.standard_normal(s), r.integers(0, 2, s) * 1.0),
                              lambda z, y: focal(y, sigmoid(z), 1.5, 0.3)),
    "hinge": (lambda: losses.get("hinge"), lambda r, s: (r.standard_normal(s), r.integers(0, 2, s) * 1.0),
              lambda p, y: numpy.maximum(1 - hinge_targets(y) * p, 0)),
    "squared_hinge": (lambda: losses.get("squared_hinge"),
                      lambda r, s: (r.standard_normal(s), r.choice([-1.0, 1.0], s)),
                      lambda p, y: numpy.maximum(1 - y * p, 0) ** 2),
    "kld": (lambda: losses.get("kld"), lambda r, s: (r.dirichlet(numpy.ones(s[-1]), s[:-1]), r.dirichlet(numpy.ones(s[-1]), s[:-1])),
            lambda p, y: kld(p, y)),
    "categorical_hinge": (lambda: losses.get("categorical_hinge"),
                          lambda r, s: (r.permutation(numpy.prod(s)).reshape(s) / numpy.prod(s),  # no ties
                                        numpy.eye(s[-1])[r.integers(0, s[-1], s[:-1])]),
                          lambda p, y: numpy.maximum(((1 - y) * p).max(-1) - (y * p).sum(-1) + 1, 0)),
    "cosine_similarity": (lambda: losses.get("cosine_similarity"),
                          lambda r, s: (r.standard_normal(s), r.standard_normal(s)),
                          lambda p, y: -(unit(y) * unit(p)).sum(-1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape", [(6, 3), (3, 4, 2, 5)])
@pytest.mark.parametrize("weighted", [False, True])
def test_each_loss_is_its_keras_definition_and_its_float64_gradient_checks(device, name, shape, weighted):
    make, data, reference = CASES[name]
    rng = numpy.random.default_rng(len(shape) + 7 * weighted)
    scores, target = data(rng, shape)
    weight = rng.random(shape[0]) if weighted else None
    per = reference(scores, target)  # per value, or per row for kld and cosine
    expected = (per.reshape(shape[0], -1).mean(axis=1) * (1 if weight is None else weight)).sum() / shape[0]
    loss = make()
    y = backend.to_device(target, device)
    w = None if weight is None else backend.to_device(weight, device)
    pred = tensor(scores, device)
    assert float(loss(y, pred, sample_weight=w).data) == pytest.approx(expected, rel=1e-10)
    gradcheck(lambda p: loss(y, p, sample_weight=w), [pred])


def test_the_new_losses_train_save_and_load_by_name(device, tmp_path):
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((40, 4)).astype(numpy.float32)
    for name, activation, y in (("msle", "softplus", rng.uniform(0, 3, (40, 2))), ("poisson", "softplus",
                                rng.integers(0, 4, (40, 2))), ("log_cosh", None, rng.standard_normal((40, 2))),
                                ("mape", None, rng.uniform(1, 2, (40, 2))), ("hinge", "tanh", rng.integers(0, 2, (40, 2))),
                                ("kld", "softmax", rng.dirichlet(numpy.ones(2), 40)),
                                ("cosine_similarity", None, rng.standard_normal((40, 2))),
                                ("binary_focal_crossentropy", "sigmoid", rng.integers(0, 2, (40, 2))),
                                ("categorical_focal_crossentropy", "softmax", numpy.eye(2)[rng.integers(0, 2, 40)])):
        minicnn.set_seed(0)
        with minicnn.device(device):
            model = Sequential([Dense(2, activation=activation, input_shape=(4,))])
        model.compile("adam", name)
        y = y.astype(numpy.float32)
        before = model.evaluate(x, y, verbose=0)
        model.fit(x, y, batch_size=8, epochs=15, verbose=0)
        after = model.evaluate(x, y, verbose=0)
        assert numpy.isfinite(after) and after < before, name
        model.save(tmp_path / f"{name}.npz")
        assert load_model(tmp_path / f"{name}.npz").evaluate(x, y, verbose=0) == pytest.approx(after, rel=1e-6), name


def test_focal_loss_with_gamma_0_is_binary_cross_entropy_and_takes_accuracy_and_class_weight():
    rng = numpy.random.default_rng(2)
    p, y = tensor(rng.uniform(0.05, 0.95, (8, 3)), "cpu"), rng.integers(0, 2, (8, 3)).astype(float)
    assert float(losses.BinaryFocalCrossentropy(gamma=0.0)(y, p).data) == pytest.approx(
        float(losses.BinaryCrossentropy()(y, p).data), rel=1e-12)
    model = Sequential([Dense(1, activation="sigmoid", input_shape=(4,))])
    model.compile("adam", "binary_focal_crossentropy", metrics=["accuracy"])
    x, yes = rng.standard_normal((30, 4)).astype(numpy.float32), rng.integers(0, 2, (30, 1)).astype(numpy.float32)
    logs = model.fit(x, yes, epochs=1, verbose=0, class_weight={0: 1.0, 1: 3.0}).history
    assert 0 <= logs["accuracy"][0] <= 1
    for bad, message in ((lambda: losses.BinaryFocalCrossentropy(alpha=1.5), "need 0 <= alpha <= 1 and gamma >= 0"),
                         (lambda: losses.CosineSimilarity(axis=1), "only axis=-1"),
                         (lambda: losses.get("huber_loss"), "unknown loss 'huber_loss'")):
        with pytest.raises(ValueError, match=message):
            bad()


@pytest.mark.parametrize("given", ["probabilities", "logits", "softmax-model"])
def test_categorical_focal_crossentropy_is_keras_s_from_probabilities_or_logits(device, given):
    """-sum alpha (1 - p)^gamma t log p per row, then the batch mean; from logits through the
    stable log-softmax (and a model ending in a softmax hands its logits over, as for the
    cross-entropy); integer labels as one-hot rows; float64 gradients."""
    rng = numpy.random.default_rng(4)
    z = rng.standard_normal((7, 4)) * 2
    p = numpy.exp(z) / numpy.exp(z).sum(1, keepdims=True)
    labels = rng.integers(0, 4, 7)
    t = numpy.eye(4)[labels] * 0.9 + 0.1 / 4  # label_smoothing=0.1
    expected = -(0.3 * (1 - p) ** 1.5 * t * numpy.log(p)).sum(1).mean()
    y = backend.to_device(labels, device)
    if given == "softmax-model":
        minicnn.set_seed(0)
        with minicnn.device(device):
            model = Sequential([Dense(4, activation="softmax", input_shape=(3,))])
        model.compile("sgd", losses.CategoricalFocalCrossentropy(alpha=0.3, gamma=1.5, label_smoothing=0.1),
                      metrics=["accuracy"])
        x = rng.standard_normal((7, 3)).astype(numpy.float32)
        probs = model.predict(x).astype(numpy.float64)
        by_hand = -(0.3 * (1 - probs) ** 1.5 * t * numpy.log(probs)).sum(1).mean()
        assert model.evaluate(x, labels, verbose=0, return_dict=True)["loss"] == pytest.approx(by_hand, rel=1e-5)
        return
    loss = losses.CategoricalFocalCrossentropy(alpha=0.3, gamma=1.5, label_smoothing=0.1,
                                               from_logits=given == "logits")
    scores = tensor(z if given == "logits" else p, device)
    assert float(loss(y, scores).data) == pytest.approx(expected, rel=1e-10)
    gradcheck(lambda s: loss(y, s), [scores])
    plain = losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=0.0, from_logits=True)
    assert float(plain(y, tensor(z, device)).data) == pytest.approx(
        float(losses.CategoricalCrossentropy(from_logits=True)(y, tensor(z, device)).data), rel=1e-10)


def test_keras_metrics_of_the_losses_names_and_rmse_over_the_epoch(device, tmp_path):
    """metrics=['msle', 'mape', 'log_cosh', 'poisson', 'cosine_similarity', 'rmse', ...] with a
    value loss: each the mean over the samples of the loss's per-sample value (the cosine
    itself for cosine_similarity, as Keras's metric), and rmse the root of the epoch's mean
    squared error whatever the batches (weighted too); kept by save and load."""
    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((30, 4)).astype(numpy.float32)
    y = rng.uniform(0.5, 2, (30, 3)).astype(numpy.float32)
    w = rng.uniform(0, 2, 30).astype(numpy.float32)
    minicnn.set_seed(1)
    with minicnn.device(device):
        model = Sequential([Dense(3, activation="softplus", input_shape=(4,))])
    names = ["msle", "mape", "log_cosh", "poisson", "cosine_similarity", "kld", "hinge", "squared_hinge", "rmse"]
    model.compile("adam", "mse", metrics=names, weighted_metrics=["rmse"])
    p = model.predict(x).astype(numpy.float64)
    expected = {name: CASES[name][2](p, y).reshape(30, -1).mean(axis=1).mean() for name in
                ("msle", "mape", "log_cosh", "poisson", "kld", "hinge", "squared_hinge")}
    expected["cosine_similarity"] = (unit(y) * unit(p)).sum(-1).mean()
    expected["rmse"] = numpy.sqrt(((p - y) ** 2).mean())
    expected["weighted_rmse"] = numpy.sqrt((((p - y) ** 2).mean(1) * w).sum() / w.sum())
    for batch in (7, 30):
        logs = model.evaluate(x, y, batch_size=batch, verbose=0, return_dict=True, sample_weight=w)
        for name, value in expected.items():
            assert logs[name] == pytest.approx(value, rel=2e-5), (name, batch)
    model.save(tmp_path / "metrics.npz")
    again = load_model(tmp_path / "metrics.npz").evaluate(x, y, batch_size=7, verbose=0, return_dict=True,
                                                           sample_weight=w)
    assert again == pytest.approx(logs)


def test_tensor_max_and_min_pass_float64_gradient_checks_and_share_a_tie(device):
    from minicnn import Tensor
    rng = numpy.random.default_rng(6)
    x = tensor(rng.permutation(24).reshape(2, 3, 4) / 7.0, device)  # distinct: one winner each
    for axis in (None, 1, -1, (0, 2)):
        for keepdims in (False, True):
            gradcheck(lambda t: t.max(axis=axis, keepdims=keepdims) * 1.5, [x])
            gradcheck(lambda t: t.min(axis=axis, keepdims=keepdims), [x])
    numpy.testing.assert_array_equal(backend.to_numpy(x.max(axis=1).data), backend.to_numpy(x.data).max(axis=1))
    tie = Tensor(backend.to_device(numpy.array([[1.0, 3.0, 3.0]]), device), requires_grad=True)
    tie.max(axis=1).sum().backward()
    numpy.testing.assert_array_equal(backend.to_numpy(tie.grad), [[0, 0.5, 0.5]])
