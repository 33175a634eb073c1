"""Models of several outputs train as Keras's (minicnn/multi_output.py): a loss per output,
loss_weights, metrics per output, targets as a list or a dict by output name, each
output's loss and metrics in the logs under its name, saved and loaded with the model.
The step is checked against the same sum of losses taken by hand through autograd."""
import numpy
import pytest

import minicnn
from minicnn import Tensor, backend, losses
from minicnn.data import Loader
from minicnn.layers import Concatenate, Conv2D, Dense, Flatten, Input
from minicnn.models import Model, load_model
from minicnn.optimizers import SGD

RNG = numpy.random.default_rng(11)
IMAGES = RNG.standard_normal((24, 6, 6, 2)).astype(numpy.float32)
KINDS = numpy.arange(24) % 3
SIZES = IMAGES.mean(axis=(1, 2, 3))[:, None].astype(numpy.float32) * 4


def two_heads(device, outputs="both", feed_kind_to_size=False):
    """A conv trunk with a 3-class softmax head 'kind' and a 1-value head 'size'. The same
    seed gives the same weights whichever outputs the model keeps (every layer is made)."""
    minicnn.set_seed(0)
    with minicnn.device(device):
        image = Input((6, 6, 2))
        trunk = Dense(8, activation="tanh")(Flatten()(Conv2D(3, 3, activation="relu")(image)))
        kind = Dense(3, activation="softmax", name="kind")(trunk)
        size_input = Concatenate()([trunk, kind]) if feed_kind_to_size else trunk
        size = Dense(1, name="size")(size_input)
    return Model(image, {"both": [kind, size], "kind": kind}[outputs])


def on(device, array):
    return backend.to_device(array, device)


def test_a_step_minimises_the_weighted_sum_of_the_outputs_losses(device):
    """One SGD step of fit on one batch equals the step taken by hand on
    1.0 * cross-entropy(kind) + 0.25 * mse(size), and the logs give those numbers."""
    fitted, by_hand = two_heads(device), two_heads(device)
    fitted.compile(SGD(0.1), loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.25])
    history = fitted.fit(IMAGES, [KINDS, SIZES], batch_size=24, epochs=1, shuffle=False, verbose=0)
    kind, size = by_hand(Tensor(on(device, IMAGES)), training=True)
    kind_loss = losses.SparseCategoricalCrossentropy()(on(device, KINDS), kind)  # from the probabilities
    size_loss = losses.MeanSquaredError()(on(device, SIZES), size)
    total = kind_loss + size_loss * 0.25
    total.backward()
    logs = {k: v[0] for k, v in history.history.items()}
    assert logs["loss"] == pytest.approx(float(total.data), rel=1e-5)
    assert logs["kind_loss"] == pytest.approx(float(kind_loss.data), rel=1e-5)
    assert logs["size_loss"] == pytest.approx(float(size_loss.data), rel=1e-5)
    for trained, weight in zip(fitted.trainable_weights, by_hand.trainable_weights):
        expected = backend.to_numpy(weight.data - 0.1 * weight.grad)
        numpy.testing.assert_allclose(backend.to_numpy(trained.data), expected, rtol=1e-5, atol=1e-6)


def test_a_zero_loss_weight_leaves_that_head_untrained_and_the_rest_as_a_single_output_model(device):
    both, alone = two_heads(device), two_heads(device, outputs="kind")
    both.compile(SGD(0.05, momentum=0.9), loss={"kind": "sparse_categorical_crossentropy", "size": "mse"},
                 loss_weights={"size": 0.0}, metrics={"kind": "accuracy"})
    alone.compile(SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    size_before = [w.copy() for w in both.get_layer("size").get_weights()]
    history = both.fit(IMAGES, {"kind": KINDS, "size": SIZES}, batch_size=8, epochs=2, seed=4, verbose=0)
    reference = alone.fit(IMAGES, KINDS, batch_size=8, epochs=2, seed=4, verbose=0)
    for a, b in zip(size_before, both.get_layer("size").get_weights()):
        numpy.testing.assert_array_equal(a, b)
    for layer in alone.layers[1:]:
        for a, b in zip(layer.get_weights(), both.get_layer(layer.name).get_weights()):
            numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(history.history["loss"], reference.history["loss"], rtol=1e-5)
    numpy.testing.assert_allclose(history.history["kind_accuracy"], reference.history["accuracy"])


def test_targets_as_a_list_a_dict_or_a_loader_train_alike_and_the_logs_name_each_output(device, tmp_path):
    def fitted(y, **kwargs):
        model = two_heads(device)
        model.compile("adam", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"},
                      loss_weights={"size": 0.5}, metrics={"kind": ["accuracy"], "size": ["mae"]})
        return model, model.fit(**({"x": IMAGES, "y": y} if y is not None else {}), **kwargs,
                                epochs=2, seed=2, verbose=0)
    as_list, history = fitted([KINDS, on(device, SIZES)], batch_size=6, validation_split=0.25)
    as_dict, _ = fitted({"size": SIZES, "kind": KINDS}, batch_size=6, validation_split=0.25)
    with minicnn.device(device):
        loader = Loader(IMAGES[:18], [KINDS[:18], SIZES[:18]], batch_size=6, seed=2)
    from_loader, _ = fitted(None, x=loader, validation_data=(IMAGES[18:], {"kind": KINDS[18:], "size": SIZES[18:]}))
    for other in (as_dict, from_loader):
        for a, b in zip(as_list.get_weights(), other.get_weights()):
            numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    names = ["loss", "kind_loss", "size_loss", "kind_accuracy", "size_mae"]
    assert list(history.history) == names + [f"val_{n}" for n in names] + ["learning_rate"]
    assert as_list.metrics_names == names
    # evaluate: the same numbers as predict gives, in metrics_names order
    results = as_list.evaluate(IMAGES, [KINDS, SIZES], batch_size=5, verbose=0)
    kind, size = as_list.predict(IMAGES)
    kind_loss = -numpy.log(kind[numpy.arange(24), KINDS]).mean()
    size_loss = ((size - SIZES) ** 2).mean()
    expected = [kind_loss + 0.5 * size_loss, kind_loss, size_loss, (kind.argmax(1) == KINDS).mean(),
                numpy.abs(size - SIZES).mean()]
    numpy.testing.assert_allclose(results, expected, rtol=1e-4)
    assert as_list.evaluate(IMAGES, [KINDS, SIZES], verbose=0, return_dict=True) == pytest.approx(
        dict(zip(names, results)), rel=1e-5)
    numpy.testing.assert_allclose(as_list.test_on_batch(IMAGES, {"kind": KINDS, "size": SIZES}), results, rtol=1e-4)
    # sample_weight weighs every output's loss alike
    weights = numpy.where(KINDS == 0, 3.0, 0.5).astype(numpy.float32)
    weighted = as_list.evaluate(IMAGES, [KINDS, SIZES], sample_weight=weights, verbose=0, return_dict=True)
    kind_weighted = (-numpy.log(kind[numpy.arange(24), KINDS]) * weights).mean()
    assert weighted["kind_loss"] == pytest.approx(kind_weighted, rel=1e-4)
    assert weighted["size_loss"] == pytest.approx((((size - SIZES) ** 2)[:, 0] * weights).mean(), rel=1e-4)
    # saved and loaded: compiled the same way, evaluates the same
    as_list.save(tmp_path / "heads.npz")
    loaded = load_model(tmp_path / "heads.npz")
    assert loaded.heads.get_config() == as_list.heads.get_config()
    numpy.testing.assert_allclose(loaded.evaluate(IMAGES, [KINDS, SIZES], batch_size=5, verbose=0), results,
                                  rtol=1e-6)


def test_an_output_that_feeds_another_head_trains_on_its_probabilities(device):
    """'kind' is read by the 'size' head too, so it runs its softmax; its loss then takes the
    probabilities, and the step is still the hand-taken one."""
    fitted, by_hand = two_heads(device, feed_kind_to_size=True), two_heads(device, feed_kind_to_size=True)
    fitted.compile(SGD(0.1), loss=["sparse_categorical_crossentropy", "mse"])
    fitted.fit(IMAGES, [KINDS, SIZES], batch_size=24, epochs=1, shuffle=False, verbose=0)
    kind, size = by_hand(Tensor(on(device, IMAGES)), training=True)
    total = losses.SparseCategoricalCrossentropy()(on(device, KINDS), kind) + \
        losses.MeanSquaredError()(on(device, SIZES), size)
    total.backward()
    for trained, weight in zip(fitted.trainable_weights, by_hand.trainable_weights):
        numpy.testing.assert_allclose(backend.to_numpy(trained.data), backend.to_numpy(weight.data - 0.1 * weight.grad),
                                      rtol=1e-5, atol=1e-6)


def test_bad_settings_and_targets_are_refused_by_name():
    model = two_heads("cpu")
    compile_cases = (
        (dict(loss={"kind": "mse", "sise": "mse"}), ValueError, r"names \['sise'\], which are not outputs"),
        (dict(loss={"kind": "sparse_categorical_crossentropy"}), ValueError, "output 'size' has no loss"),
        (dict(loss=["mse"]), ValueError, "a list of 1, but the model has 2 outputs"),
        (dict(loss="mse", loss_weights=[1.0, -1.0]), ValueError, "loss_weights for output 'size' must be"),
        (dict(loss=["sparse_categorical_crossentropy", "mse"], metrics=["accuracy"]), ValueError,
         "output 'size': metric 'accuracy'"),
        (dict(loss="mse", metrics=5), TypeError, "metrics must be a dict keyed by output name"))
    for settings, error, message in compile_cases:
        with pytest.raises(error, match=message):
            two_heads("cpu").compile("adam", **settings)
    single = two_heads("cpu", outputs="kind")
    with pytest.raises(ValueError, match="loss_weights weighs the losses of a model of several outputs"):
        single.compile("adam", "sparse_categorical_crossentropy", loss_weights=[2.0])
    model.compile("adam", loss=["sparse_categorical_crossentropy", "mse"])
    fit_cases = (
        (lambda: model.fit(IMAGES, KINDS, verbose=0), TypeError, "so y is a list of arrays, one per output"),
        (lambda: model.fit(IMAGES, {"kind": KINDS}, verbose=0), ValueError, r"no targets for outputs \['size'\]"),
        (lambda: model.fit(IMAGES, {"kind": KINDS, "size": SIZES, "box": SIZES}, verbose=0), ValueError,
         r"targets for \['box'\], which are not outputs"),
        (lambda: model.fit(IMAGES, [KINDS, SIZES[:10]], verbose=0), ValueError,
         "x has 24 samples but y for output 'size' has 10"),
        (lambda: model.fit(IMAGES, [KINDS + 5, SIZES], verbose=0), ValueError, "fit\\(\\): output 'kind': "),
        (lambda: model.fit(IMAGES, [KINDS, SIZES[:, 0:1] * numpy.ones((1, 2))], verbose=0), ValueError,
         "output 'size': MeanSquaredError compares each output"),
        (lambda: model.fit(IMAGES, [KINDS, SIZES], class_weight={0: 2.0}, verbose=0), ValueError,
         "class_weight weighs the classes of one output"),
        (lambda: model.class_scores(Tensor(IMAGES)), ValueError, "has 2 outputs, so there is no one set"))
    for make, error, message in fit_cases:
        with pytest.raises(error, match=message):
            make()
    with minicnn.device("cpu"):
        image = Input((4,))
        shared = Dense(2, name="twice")
        twice = Model(image, [shared(image), shared(image)])
    with pytest.raises(ValueError, match="a layer giving two outputs"):
        twice.compile("adam", "mse")


def test_a_generator_of_batches_with_targets_per_output_trains_as_the_arrays(device):
    """(x, {output: targets}) batches from a generator: the same weights and logs as the
    arrays they cut; a batch without an output's targets is refused, naming it."""
    arrays, streamed = two_heads(device), two_heads(device)
    for model in (arrays, streamed):
        model.compile("adam", loss=["sparse_categorical_crossentropy", "mse"], metrics={"kind": "accuracy"})
    expected = arrays.fit(IMAGES, [KINDS, SIZES], batch_size=8, epochs=2, shuffle=False, verbose=0).history

    def batches():
        while True:
            for start in range(0, 24, 8):
                yield IMAGES[start:start + 8], {"kind": KINDS[start:start + 8], "size": SIZES[start:start + 8]}
    got = streamed.fit(batches(), steps_per_epoch=3, epochs=2, verbose=0).history
    assert list(got) == list(expected)
    for name in expected:
        numpy.testing.assert_allclose(got[name], expected[name], rtol=1e-6)
    for a, b in zip(arrays.get_weights(), streamed.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match=r"batch 1 of epoch 1: y has no targets for outputs \['size'\]"):
        streamed.evaluate(iter([(IMAGES, {"kind": KINDS})]), steps=1, verbose=0)


def test_inputs_and_outputs_given_as_dicts_are_keyed_by_their_names_everywhere(device, tmp_path):
    """Model(inputs={...}, outputs={...}), as Keras 3 takes them: x, y, compile's losses and
    metrics and the logs keyed by the dicts' keys (not the layers' names), model(x) and predict
    giving dicts, the same training as the list form's, and the dicts kept by save/load."""
    def build(as_dicts):
        minicnn.set_seed(3)
        with minicnn.device(device):
            image, extra = Input((6, 6, 2), name="pixels"), Input((2,), name="side")
            trunk = Dense(8, activation="tanh")(Concatenate()([Flatten()(image), extra]))
            kind, size = Dense(3, activation="softmax", name="dense_kind")(trunk), Dense(1, name="dense_size")(trunk)
        if as_dicts:
            return Model({"image": image, "meta": extra}, {"kind": kind, "size": size})
        return Model([image, extra], [kind, size])
    meta = RNG.standard_normal((24, 2)).astype(numpy.float32)
    by_dict, by_list = build(True), build(False)
    assert by_dict.input_names == ["image", "meta"] and by_dict.output_names == ["kind", "size"]
    assert by_list.input_names == ["pixels", "side"] and by_list.output_names == ["dense_kind", "dense_size"]
    by_dict.compile(SGD(0.1), loss={"kind": "sparse_categorical_crossentropy", "size": "mse"},
                    loss_weights={"size": 0.5}, metrics={"kind": ["accuracy"]})
    by_list.compile(SGD(0.1), loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
                    metrics=[["accuracy"], []])
    history = by_dict.fit({"meta": meta, "image": IMAGES}, {"size": SIZES, "kind": KINDS}, batch_size=8,
                          epochs=2, verbose=0, shuffle=False).history
    reference = by_list.fit([IMAGES, meta], [KINDS, SIZES], batch_size=8, epochs=2, verbose=0,
                            shuffle=False).history
    assert list(history) == ["loss", "kind_loss", "size_loss", "kind_accuracy", "learning_rate"]
    assert history["loss"] == pytest.approx(reference["loss"], rel=1e-5)
    assert history["kind_accuracy"] == reference["dense_kind_accuracy"]
    predicted = by_dict.predict({"image": IMAGES, "meta": meta}, batch_size=10)
    assert isinstance(predicted, dict) and list(predicted) == ["kind", "size"]
    assert predicted["size"].shape == (24, 1)
    numpy.testing.assert_allclose(predicted["kind"], by_list.predict([IMAGES, meta])[0], rtol=1e-5, atol=1e-6)
    called = by_dict({"image": Tensor(on(device, IMAGES)), "meta": Tensor(on(device, meta))}, training=False)
    assert isinstance(called, dict)
    numpy.testing.assert_allclose(backend.to_numpy(called["size"].data), predicted["size"], rtol=1e-5, atol=1e-6)
    by_dict.save(tmp_path / "dicts.npz")
    loaded = load_model(tmp_path / "dicts.npz")
    assert loaded.input_names == ["image", "meta"] and loaded.output_names == ["kind", "size"]
    assert loaded.evaluate({"image": IMAGES, "meta": meta}, {"kind": KINDS, "size": SIZES}, verbose=0,
                           return_dict=True) == pytest.approx(
        by_dict.evaluate({"image": IMAGES, "meta": meta}, {"kind": KINDS, "size": SIZES}, verbose=0, return_dict=True))
    with pytest.raises(ValueError, match=r"x has no arrays for inputs \['meta'\]"):
        by_dict.fit({"image": IMAGES}, {"kind": KINDS, "size": SIZES}, verbose=0)
    with pytest.raises(ValueError, match=r"y has no targets for outputs \['size'\] \(it has targets for \['dense_size'\], which are not "):
        by_dict.fit({"image": IMAGES, "meta": meta}, {"kind": KINDS, "dense_size": SIZES}, verbose=0)
    with pytest.raises(ValueError, match=r"loss names \['dense_kind'\], which are not outputs"):
        by_dict.compile("adam", loss={"dense_kind": "mse"})
    with pytest.raises(TypeError, match="keys name the outputs .* must be non-empty strings; got \\[0\\]"):
        Model({"image": Input((2,))}, {0: Dense(1)(Input((2,)))})


def test_one_layer_giving_two_outputs_is_trained_twice_when_a_dict_names_each():
    """A list naming one layer's output twice leaves the two no names of their own; a dict
    gives them theirs, each with its own loss."""
    x = Input((3,))
    y = Dense(2, name="score")(x)
    with pytest.raises(ValueError, match="Model\\(outputs=\\{'name': ...\\}\\) names each"):
        Model(x, [y, y]).compile("adam", loss=["mse", "mae"])
    model = Model(x, {"as_mse": y, "as_mae": y})
    model.compile("adam", loss={"as_mse": "mse", "as_mae": "mae"})
    targets = RNG.standard_normal((10, 2)).astype(numpy.float32)
    logs = model.evaluate(RNG.standard_normal((10, 3)).astype(numpy.float32), {"as_mse": targets, "as_mae": targets},
                          verbose=0, return_dict=True)
    assert list(logs) == ["loss", "as_mse_loss", "as_mae_loss"]
    assert logs["loss"] == pytest.approx(logs["as_mse_loss"] + logs["as_mae_loss"], rel=1e-5)
