"""model.save / load_model: a round trip of every zoo model, exact continuation of
training from a saved optimizer state, atomic writes, and refusal of untrustworthy files."""
import json
import zipfile

import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minicnn
from minicnn import metrics, zoo
from minicnn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from minicnn.models import Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.saving import ModelFileError, atomic_write


def small_model():
    return Sequential([Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 3)),
                       BatchNormalization(), MaxPooling2D(), Dropout(0.3), Flatten(),
                       Dense(6, activation="relu", kernel_constraint=minicnn.constraints.max_norm(2)),
                       Dense(3, activation="softmax")], name="small")


def data(n=24):
    rng = numpy.random.default_rng(0)
    return rng.random((n, 8, 8, 3), dtype=numpy.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("name", [n for n in zoo.MODELS if n != "seed004_vgg16"])
def test_every_zoo_model_round_trips(tmp_path, name):
    model, _ = zoo.build(name)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config() and loaded.name == name
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_training_continues_exactly_from_a_saved_model(device, tmp_path):
    x, y = data()
    straight = small_model()
    straight.compile(optimizer=SGD(0.05, momentum=0.9, nesterov=True, decay=1e-3),
                     loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    straight.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=5)
    straight.save(tmp_path / "half.npz", metadata={"note": "after 2 epochs"})
    straight.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, verbose=0, seed=5)

    resumed = load_model(tmp_path / "half.npz", device=device)
    assert resumed.metadata == {"note": "after 2 epochs"} and resumed.optimizer.iterations == 6
    assert resumed.layers[5].kernel_constraint.max_value == 2 and resumed.optimizer.nesterov
    resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, verbose=0, seed=5)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # the same two epochs, same masks


def test_parameter_groups_survive_a_save(tmp_path):
    """A run built with groups (airbench's 64x batch-norm shifts, listed first) resumes
    with the same order, options and momenta, not the default build of compile()."""
    x, y = data()

    def grouped():  # no dropout: its masks would differ between the two runs
        model = Sequential([Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 3)),
                            BatchNormalization(), MaxPooling2D(), Flatten(), Dense(3)])
        model.compile(optimizer=SGD(0.05, momentum=0.9, nesterov=True),
                      loss="sparse_categorical_crossentropy")
        shifts = [layer.beta for layer in model.layers if isinstance(layer, BatchNormalization)]
        others = [w for w in model.trainable_weights if not any(w is s for s in shifts)]
        model.optimizer.build([{"params": shifts, "lr_scale": 8.0, "l2": 0.5}, {"params": others, "l2": 0.01}])
        return model
    straight = grouped()
    for _ in range(3):
        straight.train_on_batch(x, y)
    straight.save(tmp_path / "half.npz")
    resumed = load_model(tmp_path / "half.npz")
    assert resumed.optimizer.options == straight.optimizer.options
    assert resumed.optimizer.options[0] == (8.0, None, 0.5)
    for _ in range(3):
        straight.train_on_batch(x, y)
        resumed.train_on_batch(x, y)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_write_that_fails_midway_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"the previous checkpoint")

    def crash(f):
        f.write(b"half of a new")
        raise KeyboardInterrupt  # killed mid-write
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_bytes() == b"the previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary left behind


def test_saving_weights_that_are_not_finite_warns_and_names_them(tmp_path, recwarn):
    model = small_model()
    model.save(tmp_path / "good.npz")
    model.save_weights(tmp_path / "good.weights.npz")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # finite: nothing said
    model.layers[-1].kernel.data[0, 0] = numpy.inf
    with pytest.warns(RuntimeWarning, match=r"save\(\): 1 weight arrays of .* hold NaN or infinite values "
                                            r"\(dense_1/kernel\): did training diverge\?.*keep_previous=True"):
        model.save(tmp_path / "bad.npz", keep_previous=True)
    with pytest.warns(RuntimeWarning, match=r"save_weights\(\): 1 weight arrays.*bad.weights.npz now holds them$"):
        model.save_weights(tmp_path / "bad.weights.npz")
    assert not numpy.isfinite(load_model(tmp_path / "bad.npz").get_weights()[-2]).all()  # saved all the same


def rewrite(path, change):
    """Copy of a saved model with its arrays edited by ``change(arrays)``."""
    with numpy.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    numpy.savez(path, **arrays)


def test_untrustworthy_files_are_refused_with_the_reason(tmp_path):
    model = small_model()
    good = tmp_path / "good.npz"
    model.save(good)
    header = json.loads(str(numpy.load(good)["minicnn.json"]))

    cases = {
        "not a model file": lambda p: p.write_bytes(b"plain text"),
        "refused: it holds pickled objects": lambda p: numpy.savez(
            p, **{"minicnn.json": numpy.array(json.dumps(header)), "weights/0000": numpy.array([print], object)}),
        "no 'minicnn.json' header": lambda p: rewrite(p, lambda a: a.pop("minicnn.json")),
        "not valid JSON": lambda p: rewrite(p, lambda a: a.update({"minicnn.json": numpy.array("{oops")})),
        "format version 99": lambda p: rewrite(p, lambda a: a.update(
            {"minicnn.json": numpy.array(json.dumps({**header, "version": 99}))})),
        "class 'Lambda', which is not a minicnn layer": lambda p: rewrite(p, lambda a: a.update(
            {"minicnn.json": numpy.array(json.dumps(_with_layer(header, {"class_name": "Lambda",
                                                                         "config": {"code": "..."}})))})),
        "weight conv2d/kernel has shape .3, 3, 3, 4., got an array of shape .2, 2.": lambda p: rewrite(p, lambda a: a.update(
            {"weights/0000": numpy.zeros((2, 2))})),
        r"missing arrays \['weights/0001'\]": lambda p: rewrite(p, lambda a: a.pop("weights/0001")),
        "file not found": lambda p: p.unlink(),
    }
    for message, spoil in cases.items():
        path = tmp_path / "spoiled.npz"
        path.write_bytes(good.read_bytes())
        spoil(path)
        with pytest.raises(ModelFileError, match=message):
            load_model(path)


def test_a_spoiled_optimizer_state_is_refused_with_the_reason(tmp_path):
    model = small_model().compile(optimizer=SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_weights)
    good = tmp_path / "good.npz"
    model.save(good)
    header = json.loads(str(numpy.load(good)["minicnn.json"]))
    state = header["optimizer_state"]
    cases = {
        "optimizer state names parameters": {**state, "params": [99] + state["params"][1:]},
        "appears twice": {**state, "params": [state["params"][0]] * len(state["params"])},
        "options for 1 parameters": {**state, "options": state["options"][:1]},
    }
    for message, spoiled in cases.items():
        path = tmp_path / "spoiled.npz"
        path.write_bytes(good.read_bytes())
        rewrite(path, lambda a: a.update(
            {"minicnn.json": numpy.array(json.dumps({**header, "optimizer_state": spoiled}))}))
        with pytest.raises(ModelFileError, match=message):
            load_model(path)


def _with_layer(header, entry):
    spec = json.loads(json.dumps(header))
    spec["model"]["layers"].insert(0, entry)
    return spec


def test_the_file_is_a_plain_zip_of_npy_arrays_and_json(tmp_path):
    small_model().save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        names = sorted(z.namelist())
    assert names[0] == "minicnn.json.npy" and all(n.startswith("weights/") for n in names[1:])


def test_confusion_matrix_and_per_class_accuracy():
    truth = numpy.array([0, 0, 1, 2, 2, 2])
    predicted = numpy.array([0, 1, 1, 2, 0, 2])
    matrix = metrics.confusion_matrix(truth, predicted, 4)
    numpy.testing.assert_array_equal(matrix, [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    accuracy = metrics.per_class_accuracy(matrix)
    numpy.testing.assert_allclose(accuracy[:3], [0.5, 1.0, 2 / 3])
    assert numpy.isnan(accuracy[3])  # a class with no samples has no accuracy
    assert "airplane" in metrics.format_confusion_matrix(matrix, ["airplane", "car", "bird", "cat"])


def _random_model(draw):
    """A Sequential of the layers, activations and optimizers a saved file must carry."""
    from hypothesis import strategies as st
    from minicnn import optimizers, regularizers
    from minicnn.layers import (Activation, AveragePooling2D, Conv2DTranspose, Cropping2D, DepthwiseConv2D, GlobalAveragePooling2D,
                                GlobalMaxPooling2D, LayerNormalization, LeakyReLU, ReLU, Reshape, SeparableConv2D, Softmax, SpatialDropout2D,
                                UpSampling2D, ZeroPadding2D)
    activation = st.sampled_from(["relu", "elu", "selu", "silu", "swish", "softplus", "leaky_relu", "relu6", "gelu",
                                  "tanh", None])
    body = {"conv": lambda: Conv2D(4, 3, padding="same", activation=draw(activation)),
            "bn": BatchNormalization, "max": lambda: MaxPooling2D(2, padding="same"),
            "avg": lambda: AveragePooling2D(2, padding="same"), "spatial": lambda: SpatialDropout2D(0.2),
            "dropout": lambda: Dropout(0.1, noise_shape=draw(st.sampled_from([None, (None, 1, 1, None)]))),
            "pad": lambda: ZeroPadding2D(1), "relu6": lambda: ReLU(max_value=6.0), "leaky": LeakyReLU,
            "act": lambda: Activation(draw(activation) or "linear"),
            "depthwise": lambda: DepthwiseConv2D(3, padding="same", depth_multiplier=draw(st.sampled_from([1, 2])),
                                                 activation=draw(activation)),
            "separable": lambda: SeparableConv2D(4, 3, padding="same", activation=draw(activation)),
            "transpose": lambda: [Conv2DTranspose(4, 3, strides=2, padding="same", activation=draw(activation)),
                                  MaxPooling2D(2)],  # twice the size, then back
            "upsample": lambda: UpSampling2D(interpolation=draw(st.sampled_from(["nearest", "bilinear"]))),
            "crop": lambda: [ZeroPadding2D(1), Cropping2D(((0, 1), (1, 0)))],  # padded first: never too small
            "layernorm": lambda: LayerNormalization(axis=draw(st.sampled_from([-1, [1, 2, 3]])),
                                                    center=draw(st.booleans())),
            "dilated": lambda: Conv2D(4, 3, padding="same", dilation_rate=draw(st.sampled_from([2, (1, 2)])),
                                      groups=draw(st.sampled_from([1, 2, 4])), activation=draw(activation))}
    heads = {"flatten": lambda: [Flatten()], "gmax": lambda: [GlobalMaxPooling2D()],
             "gavg": lambda: [GlobalAveragePooling2D()],
             "gmax-keep": lambda: [GlobalMaxPooling2D(keepdims=True), Reshape((-1,))]}
    layers = [Conv2D(4, 3, padding="same", input_shape=(8, 8, 3))]
    for name in draw(st.lists(st.sampled_from(sorted(body)), max_size=4)):
        made = body[name]()
        layers += made if isinstance(made, list) else [made]
    layers += heads[draw(st.sampled_from(sorted(heads)))]()
    layers.append(Dense(6, activation=draw(activation), kernel_regularizer=regularizers.l2(1e-4)))
    layers += [Dense(4), Softmax()] if draw(st.booleans()) else [Dense(4, activation="softmax")]
    optimizer = draw(st.sampled_from([
        lambda: optimizers.SGD(0.01, momentum=0.9, nesterov=True, clipnorm=1.0),
        lambda: optimizers.Adam(global_clipnorm=1.0), lambda: optimizers.AdamW(),
        lambda: optimizers.RMSprop(momentum=0.5, centered=True, clipvalue=0.5),
        lambda: optimizers.Lion(1e-4, weight_decay=0.01), lambda: optimizers.Lamb(),
        lambda: optimizers.Adafactor()]))()  # Adafactor: slots of other shapes than the weights'
    return Sequential(layers), optimizer


@settings(max_examples=25)
@given(data=st.data())
def test_random_models_of_every_layer_kind_train_save_and_load_back_exactly(tmp_path, data):
    """Any mix of the saved layer kinds, activations, optimizers and clipping trains, and
    comes back from its file with the same architecture, the same predictions and an
    optimizer that trains on from its saved state."""
    x, y = data_for_random_models()
    model, optimizer = _random_model(data.draw)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for a, b in zip(loaded.optimizer.slots.values(), model.optimizer.slots.values()):
        for s, t in zip(a, b):
            numpy.testing.assert_array_equal(s, t)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=1)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=1)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def data_for_random_models():
    rng = numpy.random.default_rng(0)
    return rng.standard_normal((16, 8, 8, 3)).astype(numpy.float32), numpy.arange(16) % 4


def test_a_layer_frozen_after_training_saves_and_loads_with_its_optimizer_state(tmp_path):
    """The optimizer keeps a frozen layer's slots (unfrozen, it goes on from them); a file
    saved so once could not be loaded (the loader bound only the trainable weights)."""
    model = Sequential([Dense(3, input_shape=(4,)), Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = numpy.random.default_rng(0).random((8, 4), dtype=numpy.float32), numpy.arange(8) % 2
    model.fit(x, y, verbose=0)
    model.layers[0].trainable = False
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert not loaded.layers[0].trainable and len(loaded.optimizer.params) == 4
    for a, b in zip(loaded.optimizer.slots["m"], model.optimizer.slots["m"]):
        numpy.testing.assert_array_equal(a, b)
    loaded.layers[0].trainable = True
    loaded.fit(x, y, verbose=0)  # and trains on from that state
