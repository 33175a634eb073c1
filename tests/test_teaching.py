"""The teaching tools: summary(arithmetic=True), minicnn.interpret (feature maps and
saliency), examples/visualize.py and examples/gradcheck_demo.py."""
import math
import os
import sys

import numpy
import pytest

from minicnn import interpret, zoo
from minicnn.autograd import Tensor, no_grad
from minicnn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from minicnn.models import Sequential
from conftest import write_fake_cifar

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
sys.path.insert(0, EXAMPLES)

import gradcheck_demo  # noqa: E402
import visualize  # noqa: E402


def evaluate(expression):
    return eval(expression, {"__builtins__": {}}, {"floor": math.floor})


def expected_value(layer, what):
    """What an arithmetic item must come to, read from the built layer itself."""
    if what == "params":
        return layer.count_params()
    axis = {"height, width": 0, "height": 0, "width": 1, "channels": -1, "units": 0, "features": 0}
    return layer.output_shape[axis[what]]


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_summary_arithmetic_computes_every_layers_shape_and_parameters(name):
    model, _ = zoo.build(name)
    for layer in model.layers:
        items = layer.arithmetic()
        assert any(what == "params" for what, *_ in items), layer.name
        for what, expression, value, _ in items:
            if expression is not None:
                assert evaluate(expression) == value, (layer.name, what, expression)
            if what != "output":
                assert value == expected_value(layer, what), (layer.name, what)
            else:
                assert layer.output_shape == layer.input_shape
        if "height, width" in [what for what, *_ in items]:
            assert layer.output_shape[0] == layer.output_shape[1]


def test_summary_prints_the_seed001_derivation():
    model, _ = zoo.build("seed001_model0")
    lines = []
    model.summary(print_fn=lines.append, arithmetic=True)
    text = lines[0]
    # the tutorial's own numbers: ((3*3*3)+1)*16 = 448, ((3*3*16)+1)*32 = 4640, 256*256 + 256
    for derivation in ("((3*3*3) + 1)*16 = 448", "((3*3*16) + 1)*32 = 4640",
                       "floor((32 + 2*0 - 3) / 1) + 1 = 30", "floor((30 + 2*0 - 2) / 2) + 1 = 15",
                       "(256 + 1)*256 = 65792", "2*2*64 = 256"):
        assert derivation in text
    plain = []
    model.summary(print_fn=plain.append)
    assert "floor" not in plain[0] and "Total params: 91,946" in plain[0]


def test_arithmetic_of_odd_padding_strides_and_no_bias():
    model = Sequential([Conv2D(4, (3, 2), strides=(2, 1), padding="same", use_bias=False,
                               input_shape=(7, 6, 3)),
                        BatchNormalization(scale=False), MaxPooling2D((2, 2), strides=1, padding="same"),
                        Flatten(), Dropout(0.5), Dense(5, use_bias=False)])
    for layer in model.layers:
        for what, expression, value, _ in layer.arithmetic():
            if expression is not None:
                assert evaluate(expression) == value
            if what != "output":
                assert value == expected_value(layer, what)
    conv_items = {what: expr for what, expr, *_ in model.layers[0].arithmetic()}
    assert conv_items["height"] == "floor((7 + 2*1 - 3) / 2) + 1"   # 'same', stride 2: 4 rows
    assert conv_items["width"] == "floor((6 + 0 + 1 - 2) / 1) + 1"  # even kernel: the extra zero after
    assert conv_items["params"] == "(3*2*3)*4"
    assert model.layers[1].arithmetic()[1][1] == "3*4"  # beta + the two moving statistics


def small_model(dtype="float64"):
    model = Sequential([Conv2D(3, (3, 3), padding="same", activation="relu", input_shape=(6, 6, 3),
                               dtype=dtype),
                        MaxPooling2D(dtype=dtype), Conv2D(2, (2, 2), activation="relu", dtype=dtype),
                        Flatten(dtype=dtype), Dense(4, activation="softmax", dtype=dtype)])
    return model


def test_feature_maps_are_each_convolutions_output():
    model = small_model()
    x = numpy.random.default_rng(0).standard_normal((2, 6, 6, 3))
    found = interpret.feature_maps(model, x)
    assert [layer.name for layer, _ in found] == ["conv2d", "conv2d_1"]
    with no_grad():
        first = model.layers[0](Tensor(x), training=False).data
    numpy.testing.assert_array_equal(found[0][1], first)
    assert found[1][1].shape == (2, 2, 2, 2) and (found[1][1] >= 0).all()  # after the ReLU


def test_saliency_is_the_gradient_of_the_class_score():
    """Against central differences of the logit, for every pixel of two images."""
    model = small_model()
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((2, 6, 6, 3))
    classes = numpy.array([3, 1])
    kept = numpy.ones_like(model.layers[0].kernel.data)
    model.layers[0].kernel.grad = kept  # a gradient being accumulated must survive the look
    gradient = interpret.class_score_gradient(model, x, classes)
    assert model.layers[0].kernel.grad is kept and model.layers[-1].kernel.grad is None

    def score(x_):
        with no_grad():
            return model.class_scores(Tensor(x_)).data[numpy.arange(2), classes]
    numeric = numpy.empty_like(x)
    eps = 1e-6
    for index in numpy.ndindex(*x.shape[1:]):
        for n in range(2):
            plus, minus = x.copy(), x.copy()
            plus[(n, *index)] += eps
            minus[(n, *index)] -= eps
            numeric[(n, *index)] = (score(plus)[n] - score(minus)[n]) / (2 * eps)
    numpy.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)
    saliency = interpret.saliency_maps(model, x, classes)
    numpy.testing.assert_allclose(saliency, numpy.abs(numeric).max(axis=-1), rtol=1e-5, atol=1e-8)
    assert saliency.shape == (2, 6, 6)


def test_visualize_writes_every_picture(tmp_path, device):
    write_fake_cifar(tmp_path / "data", per_batch=30, learnable=True)
    model, _ = zoo.build("seed001_model0")
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    model.save(tmp_path / "model.npz", include_optimizer=False,
               metadata={"class_names": names, "model": "seed001_model0",
                         "preprocessing": {"mean": [0.0] * 3, "std": [255.0] * 3}})
    out = tmp_path / "pictures"
    assert visualize.main([str(tmp_path / "model.npz"), "--data", str(tmp_path / "data"), "--device", device,
                           "--out", str(out), "--image", "3", "--wrong", "5"]) == 0
    expected = ["filters.png", "feature_maps_1_conv2d.png", "feature_maps_2_conv2d_1.png",
                "feature_maps_3_conv2d_2.png", "saliency.png", "misclassified.png",
                "per_class_accuracy.png"]
    assert sorted(os.listdir(out)) == sorted(expected)
    for name in expected:
        assert (out / name).stat().st_size > 5_000, name
    with pytest.raises(SystemExit):  # an image index past the test set is refused by name
        visualize.main([str(tmp_path / "model.npz"), "--data", str(tmp_path / "data"),
                        "--out", str(out), "--image", "30"])


def test_gradcheck_demo_passes_the_real_backwards_and_catches_every_planted_bug():
    lines = []
    for name in gradcheck_demo.BUGS:
        assert gradcheck_demo.run(name, out=lines.append), name
    text = "\n".join(lines)
    assert text.count("gradcheck passed") == 3 and text.count("gradcheck FAILED") == 3
    assert "worst element is bias at index" in text  # conv's bias-gradient bug, located


def test_gradcheck_demo_says_when_the_library_moved_under_it():
    bug = gradcheck_demo.Bug("gone", gradcheck_demo.normalization.batch_norm_train_backward,
                             "a line that is not there", "x", "")
    with pytest.raises(RuntimeError, match="no longer contains"):
        bug.buggy_copy()
