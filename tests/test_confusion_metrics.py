"""Precision, Recall and AUC (minicnn/confusion_metrics.py), as Keras's: counted over the
epoch's outputs, whatever the batches, and checked against their definitions computed
here from predict's outputs: precision and recall exactly, AUC against the exact rank
statistic (within what 200 thresholds can resolve) and against the trapezoid through
Keras's thresholds exactly."""
import numpy
import pytest

import minicnn
from minicnn.layers import Dense
from minicnn.metrics import AUC, Precision, Recall
from minicnn.models import Sequential, load_model

RNG = numpy.random.default_rng(8)
X = RNG.standard_normal((90, 4)).astype(numpy.float32)
YES = (X[:, 0] + 0.7 * RNG.standard_normal(90) > 0.3).astype(numpy.float32)[:, None]
CLASSES = (X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)


def weighted_trapezoid(scores, truth, weights, n=200):
    """keras_trapezoid with each answer counted with its weight."""
    thresholds = numpy.array([-1e-7, *[(i + 1) / (n - 1) for i in range(n - 2)], 1 + 1e-7], numpy.float32)
    said = scores[:, None] > thresholds
    w = weights[:, None]
    tpr = ((said & truth[:, None]) * w).sum(0) / (truth * weights).sum()
    fpr = ((said & ~truth[:, None]) * w).sum(0) / (~truth * weights).sum()
    return ((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2).sum()


def exact_auc(scores, truth):
    """P(a positive scores above a negative), ties counting half: the area under the ROC curve."""
    positive, negative = scores[truth], scores[~truth]
    above = (positive[:, None] > negative[None, :]).mean()
    return above + 0.5 * (positive[:, None] == negative[None, :]).mean()


def keras_trapezoid(scores, truth, n=200):
    """Keras's AUC() by its definition: thresholds -eps, 1/(n-1) .. (n-2)/(n-1), 1 + eps."""
    thresholds = numpy.array([-1e-7, *[(i + 1) / (n - 1) for i in range(n - 2)], 1 + 1e-7], numpy.float32)
    said = scores[:, None] > thresholds
    tpr = (said & truth[:, None]).sum(0) / truth.sum()
    fpr = (said & ~truth[:, None]).sum(0) / (~truth).sum()
    return ((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2).sum()


def test_a_yes_no_output_s_precision_recall_and_auc_match_their_definitions(device, tmp_path):
    minicnn.set_seed(1)
    with minicnn.device(device):
        model = Sequential([Dense(6, activation="tanh", input_shape=(4,)), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy",
                  metrics=[Precision(), Recall(thresholds=0.3), "auc", Precision(thresholds=0.7, name="sure_precision")])
    history = model.fit(X, YES, batch_size=16, epochs=2, verbose=0, validation_data=(X, YES)).history
    assert [k for k in history if not k.startswith("val_")] == ["loss", "precision", "recall", "auc",
                                                                "sure_precision", "learning_rate"]
    p, truth = model.predict(X)[:, 0], YES[:, 0] == 1
    for batch in (7, 90):  # counted over the epoch's outputs: the batches make no difference
        logs = model.evaluate(X, YES, batch_size=batch, verbose=0, return_dict=True)
        assert logs["precision"] == pytest.approx(((p > 0.5) & truth).sum() / (p > 0.5).sum())
        assert logs["recall"] == pytest.approx(((p > 0.3) & truth).sum() / truth.sum())
        assert logs["sure_precision"] == pytest.approx(((p > 0.7) & truth).sum() / max((p > 0.7).sum(), 1))
        assert logs["auc"] == pytest.approx(keras_trapezoid(p, truth), abs=1e-6)
        assert logs["auc"] == pytest.approx(exact_auc(p, truth), abs=5e-3)
    assert history["val_auc"][-1] == pytest.approx(logs["auc"], abs=1e-6)
    model.save(tmp_path / "yes_no.npz")
    loaded = load_model(tmp_path / "yes_no.npz")
    assert loaded.metrics == model.metrics
    assert loaded.evaluate(X, YES, verbose=0, return_dict=True) == pytest.approx(logs)


def test_class_labels_of_a_softmax_output_count_as_one_hot_answers_and_class_id_picks_one(device):
    minicnn.set_seed(2)
    with minicnn.device(device):
        model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=[Precision(), Recall(class_id=2, name="recall_2"), AUC(class_id=1, name="auc_1"),
                           AUC(num_thresholds=50, name="auc_50")])
    logs = model.evaluate(X, CLASSES, batch_size=8, verbose=0, return_dict=True)
    p = model.predict(X)
    one_hot = numpy.eye(3, dtype=bool)[CLASSES]
    assert logs["precision"] == pytest.approx(((p > 0.5) & one_hot).sum() / (p > 0.5).sum())
    assert logs["recall_2"] == pytest.approx(((p[:, 2] > 0.5) & one_hot[:, 2]).sum() / one_hot[:, 2].sum())
    assert logs["auc_1"] == pytest.approx(keras_trapezoid(p[:, 1], one_hot[:, 1]), abs=1e-6)
    assert logs["auc_50"] == pytest.approx(keras_trapezoid(p.reshape(-1), one_hot.reshape(-1), 50), abs=1e-6)


def test_confusion_metrics_refuse_what_they_cannot_do():
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    for make, message in ((lambda: Precision(thresholds=[0.3, 1.6]), "thresholds must be a number in \\[0, 1\\] or a list"),
                          (lambda: Recall(thresholds=[]), "thresholds must be a number in \\[0, 1\\] or a list"),
                          (lambda: AUC(curve="precision"), "curve must be .ROC. or .PR."),
                          (lambda: AUC(num_thresholds=1), "num_thresholds must be an int > 1"),
                          (lambda: AUC(summation_method="simpson"), "summation_method must be one of"),
                          (lambda: AUC(thresholds=[0.2, 1.5]), "thresholds must be a list of numbers in \\[0, 1\\]"),
                          (lambda: AUC(label_weights=[1, -1]), "label_weights must be a list of finite numbers"),
                          (lambda: AUC(num_labels=0), "num_labels must be an int >= 1"),
                          (lambda: Recall(class_id=-1), "class_id must be an output index")):
        with pytest.raises(ValueError, match=message):
            make()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[Recall(class_id=3)])
    with pytest.raises(ValueError, match="class_id=3, but the output has 3 values"):
        model.evaluate(X, CLASSES, verbose=0)


def test_weighted_precision_recall_and_auc_count_each_answer_with_its_sample_s_weight(device, tmp_path):
    weights = RNG.uniform(0, 2, 90).astype(numpy.float32)
    minicnn.set_seed(3)
    with minicnn.device(device):
        model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[Precision()],
                  weighted_metrics=[Precision(), Recall(class_id=0), AUC()])
    assert model.metrics == ["precision", "weighted_precision", "recall", "auc"]
    logs = model.evaluate(X, CLASSES, sample_weight=weights, batch_size=8, verbose=0, return_dict=True)
    p = model.predict(X)
    one_hot = numpy.eye(3, dtype=bool)[CLASSES]
    w = numpy.broadcast_to(weights[:, None], p.shape)
    said = p > 0.5
    assert logs["precision"] == pytest.approx((said & one_hot).sum() / said.sum())
    assert logs["weighted_precision"] == pytest.approx(((said & one_hot) * w).sum() / (said * w).sum(), rel=1e-5)
    assert logs["recall"] == pytest.approx(((said & one_hot)[:, 0] * weights).sum() / (one_hot[:, 0] * weights).sum(),
                                           rel=1e-5)
    assert logs["auc"] == pytest.approx(weighted_trapezoid(p.reshape(-1), one_hot.reshape(-1), w.reshape(-1)),
                                        abs=1e-6)
    model.save(tmp_path / "weighted.npz")
    assert load_model(tmp_path / "weighted.npz").evaluate(
        X, CLASSES, sample_weight=weights, batch_size=8, verbose=0, return_dict=True) == pytest.approx(logs)


def test_each_output_of_a_model_of_several_has_its_own_auc(device):
    from minicnn.layers import Input
    from minicnn.models import Model
    minicnn.set_seed(4)
    with minicnn.device(device):
        x = Input((4,))
        model = Model(x, [Dense(1, activation="sigmoid", name="yes")(x), Dense(3, activation="softmax", name="kind")(x)])
    model.compile("adam", loss=["binary_crossentropy", "sparse_categorical_crossentropy"],
                  metrics={"yes": ["auc", Recall()], "kind": [AUC(class_id=2)]})
    logs = model.evaluate(X, [YES, CLASSES], batch_size=16, verbose=0, return_dict=True)
    yes, kind = model.predict(X)
    truth = YES[:, 0] == 1
    assert logs["yes_auc"] == pytest.approx(keras_trapezoid(yes[:, 0], truth), abs=1e-6)
    assert logs["yes_recall"] == pytest.approx(((yes[:, 0] > 0.5) & truth).sum() / truth.sum())
    assert logs["kind_auc"] == pytest.approx(keras_trapezoid(kind[:, 2], CLASSES == 2), abs=1e-6)


def per_class_fbeta(said, truth, beta, weights=None):
    """Each class's F-beta score and true count, by the definition (0 where undefined)."""
    w = numpy.ones(len(said)) if weights is None else weights
    scores, support = [], []
    for k in range(said.shape[1]):
        tp = (said[:, k] & truth[:, k]) @ w
        fp, fn = (said[:, k] & ~truth[:, k]) @ w, (~said[:, k] & truth[:, k]) @ w
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        b2 = beta ** 2
        scores.append((1 + b2) * precision * recall / (b2 * precision + recall) if precision + recall else 0.0)
        support.append(truth[:, k] @ w)
    return numpy.array(scores), numpy.array(support)


def test_f1_and_fbeta_scores_average_each_class_s_as_keras_does(device, tmp_path):
    from minicnn.metrics import F1Score, FBetaScore
    minicnn.set_seed(5)
    with minicnn.device(device):
        model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[
        "accuracy", "f1_score", F1Score(average="micro", name="f1_micro"),
        F1Score(average="weighted", name="f1_weighted"), FBetaScore(beta=2.0, threshold=0.3, name="f2_at_0.3")],
        weighted_metrics=[F1Score(name="f1_by_weight")])
    weights = RNG.uniform(0, 2, 90).astype(numpy.float32)
    logs = model.evaluate(X, CLASSES, sample_weight=weights, batch_size=16, verbose=0, return_dict=True)
    p = model.predict(X)
    truth = numpy.eye(3, dtype=bool)[CLASSES]
    argmax = numpy.eye(3, dtype=bool)[p.argmax(axis=1)]
    f1, support = per_class_fbeta(argmax, truth, 1.0)
    assert logs["f1_score"] == pytest.approx(f1.mean())
    assert logs["f1_micro"] == pytest.approx(logs["accuracy"])  # one label per sample: pooled F1 is accuracy
    assert logs["f1_weighted"] == pytest.approx((f1 * support).sum() / support.sum())
    f2, _ = per_class_fbeta(p > 0.3, truth, 2.0)
    assert logs["f2_at_0.3"] == pytest.approx(f2.mean())
    by_weight, _ = per_class_fbeta(argmax, truth, 1.0, weights)
    assert logs["f1_by_weight"] == pytest.approx(by_weight.mean(), rel=1e-5)
    model.save(tmp_path / "f1.npz")
    reloaded = load_model(tmp_path / "f1.npz").evaluate(X, CLASSES, sample_weight=weights, batch_size=16,
                                                          verbose=0, return_dict=True)
    assert reloaded == pytest.approx(logs)
    for make, message in ((lambda: F1Score(average="samples"), "average must be None \\(a score per class\\)"),
                          (lambda: FBetaScore(beta=0), "beta must be a number > 0"),
                          (lambda: F1Score(threshold=2), "threshold must be None or a number in \\[0, 1\\]")):
        with pytest.raises(ValueError, match=message):
            make()


def keras_pr_interpolation(tp, fp, fn):
    """Keras's AUC(curve='PR') from its counts at each threshold (Davis and Goadrich's
    interpolation), written out here from its published formula as an independent check."""
    dtp, p = tp[:-1] - tp[1:], tp + fp
    dp = p[:-1] - p[1:]
    with numpy.errstate(invalid="ignore", divide="ignore"):
        slope = numpy.nan_to_num(dtp / numpy.maximum(dp, 0), nan=0.0, posinf=0.0)
        intercept = tp[1:] - slope * p[1:]
        ratio = numpy.where((p[:-1] > 0) & (p[1:] > 0), p[:-1] / numpy.maximum(p[1:], 0), 1.0)
        steps = numpy.nan_to_num(slope * (dtp + intercept * numpy.log(ratio)) / numpy.maximum(tp[1:] + fn[1:], 0))
    return steps.sum()


def test_pr_auc_matches_keras_interpolation_and_the_average_precision(device):
    """curve='PR': Keras's interpolated area over the same counts, and, with many thresholds,
    within 0.01 of the exact average precision of the ranked scores; a perfect ranking is 1."""
    rng = numpy.random.default_rng(9)
    truth = rng.random(400) < 0.3
    scores = numpy.clip(rng.normal(0.35 + 0.3 * truth, 0.2), 0, 1).astype(numpy.float32)
    from minicnn import backend
    for n in (200, 1000):  # the counts taken on the device, the area from them
        metric = AUC(curve="PR", num_thresholds=n)
        total = backend.to_numpy(metric(backend.to_device(scores[:, None], device),
                                        backend.to_device(truth[:, None].astype(numpy.float32), device)))
        thresholds = numpy.array([-1e-7, *[(i + 1) / (n - 1) for i in range(n - 2)], 1 + 1e-7], numpy.float32)
        said = scores[:, None] > thresholds
        tp, fp = (said & truth[:, None]).sum(0).astype(float), (said & ~truth[:, None]).sum(0).astype(float)
        assert metric.result(total) == pytest.approx(keras_pr_interpolation(tp, fp, truth.sum() - tp), abs=1e-9)
    order = numpy.argsort(-scores)
    ranked = truth[order]
    average_precision = ((numpy.cumsum(ranked) / numpy.arange(1, 401)) * ranked).sum() / ranked.sum()
    assert metric.result(total) == pytest.approx(average_precision, abs=0.01)
    perfect = AUC(curve="PR")
    assert perfect.result(perfect(numpy.array([[0.9], [0.8], [0.2], [0.1]], numpy.float32),
                                  numpy.array([[1], [1], [0], [0]], numpy.float32))) == pytest.approx(1.0)


def test_float16_outputs_are_counted_against_float32_thresholds():
    """A mixed-precision model's float16 probabilities: each threshold sorts them as their
    float32 values would be (float16 has no 1/199), so the counts are the float32 ones."""
    rng = numpy.random.default_rng(12)
    half = rng.random((300, 1)).astype(numpy.float16)
    truth = (rng.random((300, 1)) < half.astype(numpy.float32)).astype(numpy.float32)
    for metric in (AUC(), AUC(curve="PR"), Precision(thresholds=0.3), Recall()):
        numpy.testing.assert_array_equal(metric(half, truth), metric(half.astype(numpy.float32), truth))


def test_figures_of_several_numbers_are_logged_as_lists_as_keras_logs_them(device, tmp_path, capsys):
    """Precision and Recall at a list of thresholds give one figure per threshold, F1Score
    with average=None (Keras's default) one per class: each the scalar metric's figure at
    that threshold or for that class. The logs hold lists of floats; the progress line
    shows them in brackets; CSVLogger writes them; a saved model keeps them; EarlyStopping
    told to watch one says it cannot and the run goes on."""
    from minicnn.callbacks import CSVLogger, EarlyStopping
    from minicnn.metrics import F1Score
    minicnn.set_seed(6)
    with minicnn.device(device):
        model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    cuts = [0.2, 0.5, 0.8]
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[
        Precision(thresholds=cuts, name="p_at"), Recall(thresholds=cuts, name="r_at"),
        F1Score(average=None, name="f1_each"), F1Score(name="f1_macro"),
        *[Precision(thresholds=t, name=f"p_{t}") for t in cuts], Recall(thresholds=0.5, class_id=1, name="r_1")])
    history = model.fit(X, CLASSES, batch_size=16, epochs=2, verbose=2, validation_data=(X, CLASSES),
                        callbacks=[CSVLogger(tmp_path / "log.csv"), EarlyStopping("val_f1_each", patience=0)]).history
    shown = capsys.readouterr()
    assert "'val_f1_each' is 3 numbers (a score per class or per threshold)" in shown.err
    assert len(history["loss"]) == 2  # not stopped by a figure it cannot compare
    assert shown.out.count(" - f1_each: [") == 2
    logs = model.evaluate(X, CLASSES, batch_size=7, verbose=0, return_dict=True)
    assert isinstance(logs["p_at"], list) and len(logs["p_at"]) == 3
    assert logs["p_at"] == pytest.approx([logs[f"p_{t}"] for t in cuts])
    p = model.predict(X)
    one_hot = numpy.eye(3, dtype=bool)[CLASSES]
    assert logs["r_at"] == pytest.approx([((p > t) & one_hot).sum() / one_hot.sum() for t in cuts])
    f1, _ = per_class_fbeta(numpy.eye(3, dtype=bool)[p.argmax(axis=1)], one_hot, 1.0)
    assert logs["f1_each"] == pytest.approx(list(f1))
    assert numpy.mean(logs["f1_each"]) == pytest.approx(logs["f1_macro"])
    assert logs["r_1"] == pytest.approx(((p[:, 1] > 0.5) & one_hot[:, 1]).sum() / one_hot[:, 1].sum())
    assert all(isinstance(v, list) and len(v) == 3 for v in (history["val_p_at"][-1], history["f1_each"][-1]))
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and "[" in rows[1]  # a list written as Keras's CSVLogger writes one
    model.save(tmp_path / "lists.npz")
    again = load_model(tmp_path / "lists.npz").evaluate(X, CLASSES, batch_size=7, verbose=0, return_dict=True)
    assert again.keys() == logs.keys()
    for name in logs:
        assert again[name] == pytest.approx(logs[name])


def test_auto_mode_watches_auc_precision_recall_and_f_scores_for_a_rise():
    """Keras decides what 'better' means from the metric: AUC, precision, recall and the
    F-scores rise as the model improves, losses and errors fall."""
    from minicnn.callbacks import EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
    for name in ("val_auc", "precision", "val_recall", "f1_score", "val_fbeta_score", "val_accuracy", "top5"):
        assert EarlyStopping(name).monitor.mode == "max", name
    for name in ("val_loss", "mae", "val_mse", "val_precision_loss"):
        assert EarlyStopping(name).monitor.mode == "min", name
    assert ReduceLROnPlateau("val_auc").monitor.mode == "max"
    assert ModelCheckpoint("m.npz", monitor="val_auc").monitor.mode == "max"


def test_multi_label_auc_averages_each_label_s_own_curve_as_keras_does(device, tmp_path):
    """multi_label=True: each output its own ROC (or PR) curve, their areas averaged, by
    label_weights where given; without it, label_weights weigh each label's answers on the one
    pooled curve. Given thresholds, minoring/majoring sums and from_logits follow Keras."""
    minicnn.set_seed(7)
    tags = numpy.stack([X[:, 0] > 0, X[:, 1] + X[:, 3] > 0.5, X[:, 2] < -0.3], axis=1).astype(numpy.float32)
    with minicnn.device(device):
        model = Sequential([Dense(5, activation="tanh", input_shape=(4,)), Dense(3, activation="sigmoid")])
    label_w = [1.0, 3.0, 0.5]
    model.compile("adam", "binary_crossentropy", metrics=[
        AUC(multi_label=True, num_labels=3, name="per_label"), AUC(multi_label=True, label_weights=label_w, name="lw"),
        AUC(label_weights=label_w, name="pooled_lw"), AUC(thresholds=[0.3, 0.5, 0.7], name="three"),
        AUC(summation_method="minoring", name="low"), AUC(summation_method="majoring", name="high"),
        AUC(curve="PR", summation_method="minoring", name="pr_low"), AUC(multi_label=True, curve="PR", name="pr_each")])
    model.fit(X, tags, batch_size=16, epochs=2, verbose=0)
    logs = model.evaluate(X, tags, batch_size=16, verbose=0, return_dict=True)
    p, truth = model.predict(X), tags == 1
    each = numpy.array([keras_trapezoid(p[:, k], truth[:, k]) for k in range(3)])
    assert logs["per_label"] == pytest.approx(each.mean(), abs=1e-6)
    assert logs["per_label"] != pytest.approx(keras_trapezoid(p.reshape(-1), truth.reshape(-1)), abs=1e-4)
    assert logs["lw"] == pytest.approx((each * label_w).sum() / sum(label_w), abs=1e-6)
    w = numpy.broadcast_to(numpy.array(label_w, numpy.float32), p.shape)
    assert logs["pooled_lw"] == pytest.approx(weighted_trapezoid(p.reshape(-1), truth.reshape(-1), w.reshape(-1)),
                                              abs=1e-6)
    flat_p, flat_t = p.reshape(-1), truth.reshape(-1)
    cuts = numpy.array([-1e-7, 0.3, 0.5, 0.7, 1 + 1e-7], numpy.float32)
    said = flat_p[:, None] > cuts
    tpr, fpr = (said & flat_t[:, None]).sum(0) / flat_t.sum(), (said & ~flat_t[:, None]).sum(0) / (~flat_t).sum()
    assert logs["three"] == pytest.approx(((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2).sum(), abs=1e-6)
    exact = keras_trapezoid(flat_p, flat_t)
    assert logs["low"] < exact < logs["high"]  # Riemann sums from below and above
    assert logs["high"] - logs["low"] == pytest.approx(2 * (logs["high"] - exact), abs=1e-6)  # the trapezoid between
    assert 0 < logs["pr_low"] < 1 and 0 < logs["pr_each"] < 1
    model.save(tmp_path / "auc.npz")
    again = load_model(tmp_path / "auc.npz").evaluate(X, tags, batch_size=16, verbose=0, return_dict=True)
    assert again == pytest.approx(logs)
    logits = AUC(from_logits=True)  # a sigmoid read into the outputs first: the same area as on probabilities
    with minicnn.device(device):
        odds = minicnn.backend.to_device(numpy.log(p / (1 - p)), device)
        on_device = minicnn.backend.to_device(tags, device)
    assert logits.result(minicnn.backend.to_numpy(logits(odds, on_device))) == pytest.approx(
        keras_trapezoid(flat_p, flat_t), abs=1e-6)
    model.compile("adam", "binary_crossentropy", metrics=[AUC(multi_label=True, num_labels=4)])
    with pytest.raises(ValueError, match="num_labels=4, but the output has 3 values"):
        model.evaluate(X, tags, verbose=0)
    model.compile("adam", "binary_crossentropy", metrics=[AUC(label_weights=[1, 2])])
    with pytest.raises(ValueError, match="label_weights has 2 weights, but the output has 3 values"):
        model.evaluate(X, tags, verbose=0)


def test_top_k_precision_and_recall_count_only_each_sample_s_k_largest_outputs(device, tmp_path):
    """Keras's top_k: outside a sample's k largest outputs nothing is a yes (the rest as
    -inf); the threshold then applies (with top_k and no thresholds, every one of the k is a
    yes). top_k=1 of one label per sample is the accuracy; class_id picks after the top k."""
    minicnn.set_seed(9)
    with minicnn.device(device):
        model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[
        "accuracy", Precision(top_k=1, name="p1"), Recall(top_k=1, name="r1"), Precision(top_k=2, name="p2"),
        Recall(thresholds=0.3, top_k=2, name="r2_at"), Precision(top_k=1, class_id=1, name="p1_class1")])
    logs = model.evaluate(X, CLASSES, batch_size=16, verbose=0, return_dict=True)
    p = model.predict(X)
    truth = numpy.eye(3, dtype=bool)[CLASSES]
    order = numpy.argsort(-p, axis=1, kind="stable")
    top1, top2 = numpy.eye(3, dtype=bool)[order[:, 0]], numpy.eye(3, dtype=bool)[order[:, :2]].any(axis=1)
    assert logs["p1"] == pytest.approx(logs["accuracy"]) and logs["r1"] == pytest.approx(logs["accuracy"])
    assert logs["p2"] == pytest.approx((top2 & truth).sum() / (2 * len(X)))
    assert logs["r2_at"] == pytest.approx((top2 & (p > 0.3) & truth).sum() / truth.sum())
    assert logs["p1_class1"] == pytest.approx((top1[:, 1] & truth[:, 1]).sum() / top1[:, 1].sum())
    model.save(tmp_path / "top_k.npz")
    again = load_model(tmp_path / "top_k.npz").evaluate(X, CLASSES, batch_size=16, verbose=0, return_dict=True)
    assert again == pytest.approx(logs)
    with pytest.raises(ValueError, match="top_k must be an int >= 1 or None, got 0"):
        Precision(top_k=0)
