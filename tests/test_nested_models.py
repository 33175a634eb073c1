"""A model used as a layer of another (layers/nested.py), as Keras allows: in a Sequential,
or called on a symbol in a functional model. Its output, its gradients (float64), Keras's
transfer-learning idiom (a frozen base, batch-norm in inference mode, under a new head),
one set of weights however often it is called, the fused softmax head, save and load."""
import numpy
import pytest

import minicnn
from minicnn import Tensor, backend, gradcheck
from minicnn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, NestedModel
from minicnn.models import Model, Sequential, load_model


def base_model(dtype="float32"):
    return Sequential([Input((6, 6, 2), dtype=dtype), Conv2D(3, 3, activation="tanh", dtype=dtype),
                       BatchNormalization(dtype=dtype), MaxPooling2D(dtype=dtype), Flatten(dtype=dtype)],
                      name="base")


def data(n=16, classes=3):
    rng = numpy.random.default_rng(0)
    return rng.standard_normal((n, 6, 6, 2)).astype(numpy.float32), rng.integers(0, classes, n)


def test_a_nested_sequential_computes_what_its_layers_do_and_passes_gradients(device):
    minicnn.set_seed(0)
    with minicnn.device(device):
        base, head = base_model("float64"), Dense(2, dtype="float64")
        model = Sequential([base, head])
    assert isinstance(model.layers[0], NestedModel) and model.layers[0].name == "base"
    assert model.output_shape == (2,) and model.count_params() == base.count_params() + 12 * 2 + 2  # 2x2x3 features
    assert len(model.weights) == len(base.weights) + 2 and model.weights[0] is base.weights[0]
    lines = []
    model.summary(print_fn=lines.append)
    assert any(line.startswith("base (Sequential)") and "(None, 12)" in line for line in "\n".join(lines).splitlines())
    rng = numpy.random.default_rng(1)
    x = Tensor(backend.to_device(rng.standard_normal((3, 6, 6, 2)), device), requires_grad=True)
    numpy.testing.assert_allclose(backend.to_numpy(model(x, training=False).data),
                                  backend.to_numpy(head(base(x, training=False)).data), rtol=1e-12)
    gy = Tensor(backend.to_device(rng.standard_normal((3, 2)), device))
    gradcheck(lambda t, *weights: (model(t, training=False) * gy).sum(), [x] + model.trainable_weights)


def test_a_frozen_base_under_a_new_head_keeps_its_weights_and_statistics(device, tmp_path):
    """Keras's transfer learning: train, freeze the base (base.trainable = False), fit the
    head. The base's kernels and its batch-norm's moving averages stay as they were (a
    frozen BatchNormalization runs in inference mode, as Keras's), the head trains; the
    model saves and loads still frozen, with its optimizer state."""
    minicnn.set_seed(0)
    x, y = data()
    with minicnn.device(device):
        base = base_model()
        model = Sequential([base, Dropout(0.2), Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(backend.to_device(x, device), y, epochs=1, batch_size=8, verbose=0)
    base.trainable = False
    assert not model.layers[0].trainable and all(not layer.trainable for layer in base.layers)
    assert model.trainable_weights == model.layers[-1].trainable_weights
    frozen, head = base.get_weights(), model.layers[-1].get_weights()
    model.fit(backend.to_device(x, device), y, epochs=2, batch_size=8, verbose=0)
    for before, after in zip(frozen, base.get_weights()):
        numpy.testing.assert_array_equal(before, after)  # moving averages included
    assert not numpy.array_equal(head[0], model.layers[-1].get_weights()[0])
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", device=device)
    assert loaded.get_config() == model.get_config() and not loaded.layers[0].trainable
    assert len(loaded.trainable_weights) == 2
    numpy.testing.assert_array_equal(backend.to_numpy(loaded.predict(x)), backend.to_numpy(model.predict(x)))
    for a, b in zip(loaded.optimizer.slots["m"], model.optimizer.slots["m"]):
        numpy.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


def test_a_model_called_on_symbols_is_one_layer_with_one_set_of_weights(device, tmp_path):
    """base(x) in a functional model, called on two inputs: one NestedModel in the model,
    its weights counted once, each call computing with them; saved and loaded."""
    minicnn.set_seed(0)
    with minicnn.device(device):
        base = base_model()
        left, right = Input((6, 6, 2)), Input((6, 6, 2))
        both = minicnn.layers.Concatenate()([base(left), base(right)])
        twin = Model([left, right], Dense(2)(both))
    assert [type(layer).__name__ for layer in twin.layers] == ["NestedModel", "Concatenate", "Dense"]
    one = Input((4,))
    functional = Model(one, Dense(2)(one))
    assert twin.layers[0].type_name == "Sequential" and Sequential([functional]).layers[0].type_name == "Functional"
    assert twin.count_params() == base.count_params() + 24 * 2 + 2  # 12 features from each
    x, _ = data(4)
    xl, xr = (Tensor(backend.to_device(a, device)) for a in (x, x[::-1].copy()))
    features = [backend.to_numpy(base(t, training=False).data) for t in (xl, xr)]
    dense = twin.layers[-1]
    expected = numpy.concatenate(features, axis=1) @ backend.to_numpy(dense.kernel.data) + backend.to_numpy(
        dense.bias.data)
    numpy.testing.assert_allclose(backend.to_numpy(twin([xl, xr], training=False).data), expected, rtol=1e-5,
                                  atol=1e-6)
    twin.save(tmp_path / "twin.npz")
    loaded = load_model(tmp_path / "twin.npz", device=device)
    assert loaded.get_config() == twin.get_config()
    numpy.testing.assert_array_equal(backend.to_numpy(loaded([xl, xr], training=False).data),
                                     backend.to_numpy(twin([xl, xr], training=False).data))


def test_a_nested_classifier_keeps_the_fused_softmax_loss_and_its_modes(device):
    """A nested model ending in a softmax, last in the outer model: the outer loss takes the
    logits before that softmax (the fused cross-entropy, as the inner model's own compile
    would), and evaluate runs it in inference mode (its dropout off)."""
    minicnn.set_seed(0)
    x, y = data()
    with minicnn.device(device):
        inner = Sequential([Flatten(input_shape=(6, 6, 2)), Dropout(0.5), Dense(3, activation="softmax")])
        outer = Sequential([inner])
    assert outer.layers[0].activation_name == "softmax"
    for m in (inner, outer):
        m.compile("sgd", "sparse_categorical_crossentropy")
    xd = backend.to_device(x, device)
    assert outer.evaluate(xd, y, verbose=0) == pytest.approx(inner.evaluate(xd, y, verbose=0), rel=1e-6)
    assert outer.evaluate(xd, y, verbose=0) == outer.evaluate(xd, y, verbose=0)  # no dropout draws
    logits = inner.class_scores(Tensor(xd))
    numpy.testing.assert_allclose(backend.to_numpy(outer.class_scores(Tensor(xd)).data),
                                  backend.to_numpy(logits.data), rtol=1e-6)


def test_nesting_names_what_it_cannot_do():
    base = base_model()
    with pytest.raises(ValueError, match="cannot be a layer of itself"):
        base.add(base)
    x = Input((4,))
    two_outputs = Model(x, [Dense(2)(x), Dense(3)(x)])
    with pytest.raises(ValueError, match="only a model of one input and one output"):
        Sequential([two_outputs])
    model = Sequential([base, Dense(2)])
    with pytest.raises(ValueError, match=r"the model inside takes inputs \(None, 6, 6, 2\)"):
        model(Tensor(numpy.zeros((1, 5, 5, 2), numpy.float32)))
    second = Sequential([base_model(), Dense(1)], name="other")
    assert Sequential([Sequential([Dense(2, input_shape=(3,))]), Sequential([Dense(2, input_shape=(2,))])]
                      ).layers[1].name == "sequential_1"  # default names made unique, as layers' are
    assert second.layers[0].name == "base"


def test_a_nested_model_is_looked_inside_by_summary_get_layer_and_feature_maps(device):
    """Keras's model.get_layer('base').layers / .get_layer(...) / .summary(),
    summary(expand_nested=True) listing the inner layers under '| ' (two levels deep
    here), and interpret.feature_maps finding the convolutions inside, in order."""
    from minicnn.interpret import feature_maps
    minicnn.set_seed(0)
    with minicnn.device(device):
        base = base_model()
        outer_base = Sequential([base, Dense(4)], name="outer_base")
        model = Sequential([Input((6, 6, 2)), Conv2D(2, 1, name="first"), Conv2D(2, 1, name="again"),
                            Conv2D(2, 1, name="back"), outer_base, Dense(3)])
        x_symbol = Input((6, 6, 2))
        graph = Model(x_symbol, Dense(3)(base(x_symbol)))
    wrapper = model.get_layer("outer_base")
    assert wrapper.layers is outer_base.layers and wrapper.get_layer("base").layers is base.layers
    assert wrapper.get_layer("base").get_layer(index=0) is base.layers[0]
    lines, inner = [], []
    model.summary(print_fn=lines.append, expand_nested=True)
    wrapper.summary(print_fn=inner.append)
    text = "\n".join(lines).splitlines()
    assert inner[0].startswith('Model: "outer_base"')
    assert any(line.startswith("| base (Sequential)") and "(None, 12)" in line for line in text)
    assert any(line.startswith("| | conv2d (Conv2D)") and "(None, 4, 4, 3)" in line and line.endswith("57")
               for line in text)
    flat = []
    model.summary(print_fn=flat.append)
    assert not any(line.startswith("|") for line in "\n".join(flat).splitlines())
    graph_lines = []
    graph.summary(print_fn=graph_lines.append, expand_nested=True)
    assert any(line.startswith("| batch_normalization (Batch") for line in "\n".join(graph_lines).splitlines())
    x, _ = data(3)
    xt = backend.to_device(x, device)
    maps = feature_maps(model, xt)
    assert [layer.name for layer, _ in maps] == ["first", "again", "back", "conv2d"]
    conv = base.layers[0]
    with minicnn.autograd.no_grad():
        expected = conv(model.layers[2](model.layers[1](model.layers[0](Tensor(xt)))), training=False)
    numpy.testing.assert_allclose(backend.to_numpy(maps[-1][1]), backend.to_numpy(expected.data), rtol=1e-6)
    (graph_conv, graph_maps), = feature_maps(graph, xt)
    assert graph_conv is conv
    with minicnn.autograd.no_grad():
        numpy.testing.assert_allclose(backend.to_numpy(graph_maps),
                                      backend.to_numpy(conv(Tensor(xt), training=False).data), rtol=1e-6)
