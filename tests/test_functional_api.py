"""Keras's functional API: Input, layers called on symbols, Add and Concatenate, Model(inputs,
outputs) with the same compile/fit/evaluate/predict/summary/save as Sequential, and layers
that own layers. Gradients through branches and merges (a tensor feeding two layers must
get the sum of both gradients) are checked in float64 on both devices."""
import numpy
import pytest

import minicnn
from minicnn import Tensor, backend, gradcheck
from minicnn.layers import (Activation, Add, BatchNormalization, Concatenate, Conv2D, Dense, Flatten,
                            GlobalAveragePooling2D, Input, Layer, MaxPooling2D)
from minicnn.models import Model, Sequential, load_model
from minicnn.optimizers import SGD
from minicnn.saving import ModelFileError


def branchy(dtype="float32"):
    """x feeds two convolutions (a fan-out) whose outputs are added, then joined with x."""
    x = Input((6, 6, 2), dtype=dtype)
    a = Conv2D(3, 3, padding="same", activation="tanh", dtype=dtype)(x)
    b = Conv2D(3, 1, dtype=dtype)(x)
    merged = Concatenate(dtype=dtype)([Add(dtype=dtype)([a, b]), x])
    pooled = GlobalAveragePooling2D(dtype=dtype)(merged)
    return Model(x, Dense(4, activation="softmax", dtype=dtype)(pooled), name="branchy")


def test_gradients_through_branches_and_merges(device):
    minicnn.set_seed(0)
    with minicnn.device(device):
        model = branchy("float64")
    rng = numpy.random.default_rng(0)
    x = Tensor(backend.to_device(rng.standard_normal((2, 6, 6, 2)), device), requires_grad=True)
    gy = backend.to_device(rng.standard_normal((2, 4)), device)
    gradcheck(lambda t, *weights: (model(t) * Tensor(gy)).sum(), [x] + model.trainable_weights)


def test_a_layer_used_twice_shares_its_weights_and_adds_its_gradients(device):
    minicnn.set_seed(0)
    with minicnn.device(device):
        shared = Dense(3, activation="tanh", dtype="float64")
        x = Input((3,), dtype="float64")
        model = Model(x, Add(dtype="float64")([shared(x), shared(shared(x))]))
    assert model.layers == [shared, model.layers[1]] and len(model.trainable_weights) == 2
    rng = numpy.random.default_rng(1)
    x = Tensor(backend.to_device(rng.standard_normal((4, 3)), device), requires_grad=True)
    gradcheck(lambda t, *w: (model(t) ** 2).sum(), [x] + model.trainable_weights)


def test_the_same_network_as_sequential_and_as_model_is_the_same_function(device):
    def layers(**first):
        return [Conv2D(4, 3, padding="same", activation="relu", **first), BatchNormalization(), MaxPooling2D(),
                Flatten(), Dense(5, activation="softmax")]
    with minicnn.device(device):
        sequential = Sequential(layers(input_shape=(8, 8, 3)))
        x = y = Input((8, 8, 3))
        for layer in layers():
            y = layer(y)
        functional = Model(x, y)
    functional.set_weights(sequential.get_weights())
    rng = numpy.random.default_rng(2)
    images = backend.to_device(rng.random((6, 8, 8, 3), dtype=numpy.float32), device)
    labels = backend.to_device(rng.integers(0, 5, 6), device)
    for model in (sequential, functional):
        model.compile(minicnn.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    out_s, out_f = sequential(Tensor(images), training=False), functional(Tensor(images), training=False)
    numpy.testing.assert_array_equal(backend.to_numpy(out_s.data), backend.to_numpy(out_f.data))
    for _ in range(3):
        loss_s, loss_f = sequential.train_on_batch(images, labels)[0], functional.train_on_batch(images, labels)[0]
        assert float(loss_s) == float(loss_f)
    for a, b in zip(sequential.get_weights(), functional.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_fit_evaluate_predict_summary_and_a_save_round_trip(tmp_path, capsys):
    minicnn.set_seed(0)
    model = branchy()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = numpy.random.default_rng(3)
    x, y = rng.random((40, 6, 6, 2), dtype=numpy.float32), rng.integers(0, 4, 40)
    history = model.fit(x, y, batch_size=10, epochs=2, validation_data=(x, y), verbose=0, seed=0)
    assert history.epoch == [0, 1] and 0 <= model.evaluate(x, y, verbose=0)[1] <= 1
    model.summary()
    text = capsys.readouterr().out
    assert "Connected to" in text and "add (Add)" in text and "Total params: 90" in text
    assert [line.split()[-1] for line in text.splitlines() if line.startswith("concatenate")] == ["add"]
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert isinstance(loaded, Model) and loaded.get_config() == model.get_config()
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.iterations == model.optimizer.iterations == 8
    model.fit(x, y, batch_size=10, epochs=3, initial_epoch=2, verbose=0, seed=0)
    loaded.fit(x, y, batch_size=10, epochs=3, initial_epoch=2, verbose=0, seed=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6)


class Residual(Layer):
    """A residual block written as a class: it owns its layers."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = Conv2D(filters, 3, padding="same", use_bias=False)
        self.norm = BatchNormalization()
        self.relu = Activation("relu")

    def call(self, x, training):
        return self.relu(x + self.norm(self.conv(x, training=training), training=training), training=training)


def test_a_layer_that_owns_layers_registers_their_weights_and_trains(tmp_path):
    minicnn.set_seed(0)
    block = Residual(2)
    model = Sequential([Conv2D(2, 1, input_shape=(5, 5, 3)), block, GlobalAveragePooling2D(),
                        Dense(3, activation="softmax")])
    assert block.sublayers == [block.conv, block.norm, block.relu]
    assert block.output_shape == (5, 5, 2) and block.count_params() == 3 * 3 * 2 * 2 + 4 * 2
    assert len(model.weights) == 2 + 5 + 2 and len(model.trainable_weights) == 2 + 3 + 2
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = numpy.random.default_rng(4)
    x, y = rng.random((20, 5, 5, 3), dtype=numpy.float32), rng.integers(0, 3, 20)
    before = block.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    assert not numpy.array_equal(before[0], block.get_weights()[0])  # the block's conv learned
    model.eval()
    assert not block.norm.training  # the mode reaches the layers inside
    with pytest.raises(ValueError, match="Residual is a layer class of your own"):
        model.save(tmp_path / "m.npz")
    model.save_weights(tmp_path / "w.npz")
    minicnn.set_seed(1)
    again = Sequential([Conv2D(2, 1, input_shape=(5, 5, 3)), Residual(2), GlobalAveragePooling2D(),
                        Dense(3, activation="softmax")])
    again.load_weights(tmp_path / "w.npz")
    numpy.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_sublayers_follow_every_way_a_layer_holds_and_lets_go_of_layers():
    """Layer.__setattr__ notes which attributes may hold layers; what sublayers finds from
    those notes must equal a scan of every attribute, in assignment order."""
    def scan(layer):
        return [item for value in vars(layer).values()
                for item in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(item, Layer)]

    block = Residual(2)
    block.later = None                      # first assigned as no layer...
    block.stages = []                       # ...an empty list, filled after it is assigned
    block.pair = (Dense(1), "not a layer")  # a tuple with a layer in it
    block.stages.append(Dense(2))
    block.later = Dense(3)                  # ...then a layer: it keeps its place in the order
    assert block.sublayers == scan(block)
    assert [layer.units for layer in block.sublayers[3:]] == [3, 2, 1]
    block.relu = "replaced"                 # a layer replaced by something else
    del block.norm                          # a layer deleted
    block.pair = (1, 2)
    assert block.sublayers == scan(block) == [block.conv, block.later, block.stages[0]]
    block.trainable = False                 # freezing walks the same tree
    assert not block.conv.trainable and not block.later.trainable and not block.stages[0].trainable


def test_wiring_errors_name_the_problem():
    x = Input((4,))
    with pytest.raises(ValueError, match="adds inputs of one shape"):
        Add()([Dense(2)(x), Dense(3)(x)])
    with pytest.raises(ValueError, match="equal in all but axis"):
        Concatenate(axis=1)([Input((2, 3)), Input((2, 4))])
    with pytest.raises(ValueError, match="not among the model's inputs"):
        Model(x, Dense(2)(Input((4,))))
    with pytest.raises(ValueError, match="two layers are named 'twin'"):
        Model(x, Add()([Dense(2, name="twin")(x), Dense(2, name="twin")(x)]))
    with pytest.raises(TypeError, match="not ndarray"):
        Add()([x, numpy.zeros((1, 4))])
    with pytest.raises(ValueError, match="shape must be"):
        Input((0, 3))
    model = Model(x, Dense(2)(x))
    with pytest.raises(ValueError, match=r"takes \(None, 4\)"):
        model(Tensor(numpy.zeros((1, 5), numpy.float32)))


def test_resnet20_forward_and_backward_equal_a_pytorch_twin_with_the_same_weights():
    """benchmarks/torch_reference.py's GraphNet runs the same graph in PyTorch (Keras's
    asymmetric 'same' padding made explicit); loaded with the same weights, logits, loss
    and every weight's gradient agree in a training-mode step (batch statistics)."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed: the oracle comparison is skipped")
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import torch_reference
    from minicnn import zoo
    minicnn.set_seed(0)
    model, _ = zoo.build("resnet20")
    assert model.count_params() == 274_442 and sum(w.size for w in model.trainable_weights) == 273_066
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((4, 32, 32, 3)).astype(numpy.float32)
    y = rng.integers(0, 10, 4)
    out, logits = model._forward_logits(Tensor(x), training=True)
    loss = model.loss(y, out, logits)
    loss.backward()

    twin = torch_reference.GraphNet(model).load_weights(model).train()
    twin_logits = twin(torch.tensor(x))
    twin_loss = torch.nn.functional.cross_entropy(twin_logits, torch.tensor(y))
    twin_loss.backward()
    numpy.testing.assert_allclose(logits.data, twin_logits.detach().numpy(), rtol=1e-4, atol=1e-4)
    assert float(loss.data) == pytest.approx(twin_loss.item(), rel=1e-5)
    for layer in model.layers:
        part = twin.parts[layer.name] if layer.name in twin.parts else None
        if part is None:
            continue
        pairs = [(layer.weights[0].grad, part.weight.grad.numpy()), (layer.weights[1].grad, part.bias.grad.numpy())] \
            if type(layer).__name__ == "BatchNormalization" else [(layer.kernel.grad, part.weight.grad.numpy())]
        if type(layer).__name__ != "BatchNormalization" and layer.use_bias:
            pairs.append((layer.bias.grad, part.bias.grad.numpy()))
        for ours, theirs in pairs:
            theirs = theirs.transpose(2, 3, 1, 0) if theirs.ndim == 4 else (theirs.T if theirs.ndim == 2 else theirs)
            # a conv bias just before batch-norm has a gradient of exactly 0 in exact arithmetic:
            # both engines give float32 noise there, hence the absolute floor
            numpy.testing.assert_allclose(ours, theirs, atol=max(2e-4 * numpy.abs(theirs).max(), 1e-6),
                                          err_msg=layer.name)


def test_resnet9_has_page_s_parameter_count_and_schedule():
    from minicnn import zoo
    minicnn.set_seed(0)
    model, recipe = zoo.build("resnet9")
    assert sum(w.size for w in model.trainable_weights) == 6_573_120 and recipe.batch_size == 512
    model.compile(recipe.optimizer(), "sparse_categorical_crossentropy")
    assert model.optimizer.learning_rate == 0.0 and model.optimizer.schedule(490) == pytest.approx(0.4)


def test_the_readme_example_builds_a_residual_model():
    import os
    import re
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8") as f:
        readme = f.read()
    code = re.search(r"### Functional models and residual networks.*?```python\n(.*?)```", readme, re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    model = scope["model"]
    assert isinstance(model, Model) and model.output_shape == (10,)
    assert any(isinstance(layer, Add) for layer in model.layers)


def test_feature_maps_of_a_graph_follow_its_nodes():
    from minicnn import interpret
    minicnn.set_seed(0)
    model = branchy()
    x = numpy.random.default_rng(6).random((2, 6, 6, 2), dtype=numpy.float32)
    maps = interpret.feature_maps(model, x)
    assert [layer.name for layer, _ in maps] == ["conv2d", "conv2d_1"]
    direct = model.layers[1](Tensor(x), training=False).data  # the 1x1 conv, on the input itself
    numpy.testing.assert_array_equal(maps[1][1], direct)


def test_a_model_of_several_inputs_fits_evaluates_and_predicts(device, tmp_path):
    """fit([x_image, x_meta], y) as Keras: the same training as feeding the model those
    batches by hand, shuffled together; validation_split cuts every input; a Loader of a
    list; predict gives one array per output of a model of several; each input checked
    by name."""
    from minicnn.data import Loader
    rng = numpy.random.default_rng(5)
    images, meta = rng.random((24, 6, 6, 2), dtype=numpy.float32), rng.random((24, 5), dtype=numpy.float32)
    labels = numpy.arange(24) % 3

    def fresh():
        minicnn.set_seed(0)
        with minicnn.device(device):
            image, extra = Input((6, 6, 2)), Input((5,))
            joined = Concatenate()([Flatten()(Conv2D(3, 3, activation="relu")(image)), Dense(4)(extra)])
            model = Model([image, extra], Dense(3, activation="softmax")(joined))
        model.compile(SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
    fitted = fresh()
    history = fitted.fit([backend.to_device(images, device), meta], labels, batch_size=8, epochs=2, seed=3,
                         verbose=0, validation_split=0.25)
    assert len(history.history["val_loss"]) == 2
    by_hand = fresh()  # the same batches, from a Loader of the list, train the same weights
    with minicnn.device(device):
        loader = Loader([images[:18], meta[:18]], labels[:18], batch_size=8, seed=3)
    by_hand.fit(loader, epochs=2, seed=3, verbose=0)
    for a, b in zip(fitted.get_weights(), by_hand.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    loss, accuracy = fitted.evaluate([images, meta], labels, verbose=0)
    probabilities = fitted.predict([images, meta], batch_size=5)
    assert probabilities.shape == (24, 3) and isinstance(probabilities, numpy.ndarray)
    numpy.testing.assert_allclose(probabilities, fitted.predict_on_batch([images, meta]), rtol=1e-5, atol=1e-7)
    assert accuracy == pytest.approx((probabilities.argmax(1) == labels).mean())
    assert loss == pytest.approx(-numpy.log(probabilities[numpy.arange(24), labels]).mean(), rel=1e-4)
    fitted.save(tmp_path / "two.npz")
    numpy.testing.assert_array_equal(load_model(tmp_path / "two.npz").predict([images, meta]),
                                     fitted.predict([images, meta]))
    with minicnn.device(device):
        image = Input((6, 6, 2))
        features = Flatten()(image)
        heads = Model(image, [Dense(2)(features), Dense(3, activation="softmax")(features)])
    # x as a dict keyed by input name, as Keras's: the same as the list in input order
    by_name = {fitted.inputs[1].name: meta, fitted.inputs[0].name: images}
    numpy.testing.assert_array_equal(fitted.predict(by_name), fitted.predict([images, meta]))
    numpy.testing.assert_array_equal(fitted.predict_on_batch(by_name), fitted.predict_on_batch([images, meta]))
    assert fitted.evaluate(by_name, labels, verbose=0) == fitted.evaluate([images, meta], labels, verbose=0)
    twin = fresh()
    twin.fit(by_name, labels, batch_size=8, epochs=2, seed=3, verbose=0, validation_split=0.25)
    for a, b in zip(twin.get_weights(), fitted.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    outputs = heads.predict(images)
    assert [o.shape for o in outputs] == [(24, 2), (24, 3)]
    heads.compile("adam", "sparse_categorical_crossentropy")
    for make, error, message in (
            (lambda: fitted.fit(images, labels, verbose=0), TypeError, "has 2 inputs, so x is a list of 2 arrays"),
            (lambda: fitted.fit([images], labels, verbose=0), TypeError, "got list of 1"),
            (lambda: fitted.fit([images, meta[:10]], labels, verbose=0), ValueError, "x\\[1\\] has 10 samples"),
            (lambda: fitted.fit([meta, images], labels, verbose=0), ValueError,
             r"input 0 \(.*\) takes \(None, 6, 6, 2\), x\[0\] has shape \(24, 5\)"),
            (lambda: fitted.predict([images, meta.tolist()]), TypeError, "x\\[1\\] must be a NumPy or CuPy array"),
            (lambda: fitted.predict({fitted.inputs[0].name: images}), ValueError, "x has no arrays for inputs"),
            (lambda: fitted.fit({**by_name, "other": meta}, labels, verbose=0), ValueError,
             r"x has arrays for \['other'\], which are not inputs"),
            (lambda: heads.fit(images, labels, verbose=0), TypeError, "has 2 outputs .* so y is a list of arrays"),
            (lambda: Loader([images, meta], labels, std=255.0), ValueError, "augment, mean and std are for one input")):
        with pytest.raises(error, match=message):
            make()


def test_a_model_of_one_output_takes_dicts_keyed_by_its_name(device):
    """As Keras: compile(loss={name: ...}, metrics={name: [...]}) and fit(x, {name: y}) for
    the one output, the same as the values themselves; another name is refused, naming it."""
    rng = numpy.random.default_rng(2)
    x, y = rng.random((20, 4), dtype=numpy.float32), numpy.arange(20) % 3

    def fresh(**settings):
        minicnn.set_seed(0)
        with minicnn.device(device):
            inputs = Input((4,))
            model = Model(inputs, Dense(3, activation="softmax", name="kind")(inputs))
        model.compile(SGD(0.1), **settings)
        return model
    by_name = fresh(loss={"kind": "sparse_categorical_crossentropy"}, metrics={"kind": ["accuracy"]})
    plain = fresh(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = by_name.fit(x, {"kind": y}, batch_size=5, epochs=2, seed=1, verbose=0).history
    assert history == plain.fit(x, y, batch_size=5, epochs=2, seed=1, verbose=0).history
    assert by_name.evaluate(x, {"kind": y}, verbose=0) == plain.evaluate(x, y, verbose=0)
    with pytest.raises(ValueError, match="y is keyed by \\['size'\\]; model has one output, 'kind'"):
        by_name.fit(x, {"size": y}, verbose=0)
    with pytest.raises(ValueError, match="loss is keyed by \\['kinds'\\]"):
        fresh(loss={"kinds": "mse"})
    with pytest.raises(TypeError, match="Sequential, whose output has no name"):
        Sequential([Dense(3, input_shape=(4,))]).compile("adam", loss={"dense": "mse"})
