"""callbacks.TensorBoard and event_file.SummaryWriter: files TensorBoard reads, with Keras's
folders and tag names. Checked twice over: by tests/event_reader.py (the formats decoded
from their specs, both CRCs of every record checked) everywhere, and by TensorBoard's own
reader and graph plugin where the tensorboard package is installed."""
import io
import json
import os
import types

import numpy
import pytest

from minicnn import backend, layers as L, models
from minicnn.callbacks import TensorBoard
from minicnn.callbacks.base import defines
from minicnn.callbacks.tensorboard import keras_graph_json, weight_image
from minicnn.event_file import SummaryWriter, crc32c, masked_crc
from event_reader import crc32c_bitwise, events, scalars


def tiny_model(device="cpu"):
    model = models.Sequential([L.Input((6, 6, 3)), L.Conv2D(4, 3, activation="relu"), L.Flatten(), L.Dense(3)])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model.to(device)


def tiny_data(device="cpu", n=20):
    rng = numpy.random.default_rng(0)
    x, y = rng.random((n, 6, 6, 3), dtype=numpy.float32), rng.integers(0, 3, n)
    return backend.to_device(x, device), backend.to_device(y, device)


def tags(log_dir, kind):
    return {t for e in events(log_dir) for t, k, _ in e["values"] if k == kind}


def test_crc32c_is_the_standard_one():
    assert crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C (iSCSI, RFC 3720)
    rng = numpy.random.default_rng(1)
    for n in (0, 1, 7, 100):
        data = rng.integers(0, 256, n, dtype=numpy.uint8).tobytes()
        assert crc32c(data) == crc32c_bitwise(data)
    assert masked_crc(b"") != crc32c(b"")  # the mask is applied


def test_summary_writer_writes_every_kind_of_value_readably(tmp_path):
    rng = numpy.random.default_rng(2)
    values = rng.normal(size=1000)
    picture = rng.integers(0, 256, (5, 7, 3), dtype=numpy.uint8)
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("loss", 0.25, global_step=3)
        writer.add_scalar("loss", -1.5, global_step=-2)  # an int64 below zero takes ten bytes
        writer.add_histogram("w", values, global_step=4, bins=10)
        writer.add_image("picture", picture, global_step=5)
        writer.add_image("chw", picture.transpose(2, 0, 1).astype(numpy.float32) / 255, 5, dataformats="CHW")
        writer.add_text("note", "**bold** text", 6)
    read = events(tmp_path)
    assert read[0]["file_version"] == "brain.Event:2" and not read[0]["values"]
    assert scalars(tmp_path, "loss") == [(3, 0.25), (-2, -1.5)]
    (histo,) = [v for e in read for t, k, v in e["values"] if k == "histo"]
    assert histo["num"] == 1000 and sum(histo["counts"]) == 1000 and len(histo["limits"]) == 10
    assert histo["min"] == values.min() and histo["max"] == histo["limits"][-1] == values.max()
    assert histo["sum"] == pytest.approx(values.sum()) and histo["sum_squares"] == pytest.approx((values ** 2).sum())
    from PIL import Image
    images = {t: v for e in read for t, k, v in e["values"] if k == "image"}
    for tag in ("picture", "chw"):
        assert (images[tag]["height"], images[tag]["width"], images[tag]["colorspace"]) == (5, 7, 3)
        assert (numpy.asarray(Image.open(io.BytesIO(images[tag]["png"]))) == picture).all(), tag
    assert [v for e in read for t, k, v in e["values"] if k == "tensor"] == [("text", "**bold** text")]
    assert [e["step"] for e in read] == [0, 3, -2, 4, 5, 5, 6]


def test_writers_never_share_or_replace_a_file_and_bad_input_is_named(tmp_path):
    first, second = SummaryWriter(tmp_path), SummaryWriter(tmp_path)
    first.add_scalar("a", 1.0, 0)
    second.add_scalar("a", 2.0, 1)
    first.close(), second.close()
    assert first.path != second.path and sorted(v for _, v in scalars(tmp_path, "a")) == [1.0, 2.0]
    with pytest.raises(ValueError, match="closed"):
        first.add_scalar("a", 3.0, 2)
    with SummaryWriter(tmp_path / "more") as writer:
        with pytest.raises(ValueError, match=r"image 'x'.*shape \(2, 2, 2\)"):
            writer.add_image("x", numpy.zeros((2, 2, 2)), 0)
        with pytest.raises(ValueError, match="dataformats"):
            writer.add_image("x", numpy.zeros((2, 2, 3)), 0, dataformats="NHWC")
        with pytest.raises(ValueError, match="histogram 'h': no values"):
            writer.add_histogram("h", numpy.zeros(0), 0)
        writer.add_histogram("nan", numpy.array([numpy.nan, 1.0, 2.0]), 0)  # the NaN has no bucket
    (histo,) = [v for e in events(tmp_path / "more") for _, k, v in e["values"] if k == "histo"]
    assert histo["num"] == 2 and (histo["min"], histo["max"]) == (1.0, 2.0)


def test_fit_writes_keras_curves_in_keras_folders(tmp_path, device):
    model, (x, y) = tiny_model(device), tiny_data(device)
    board = TensorBoard(tmp_path, update_freq=2)
    history = model.fit(x, y, epochs=2, batch_size=8, validation_data=(x, y), verbose=0, callbacks=[board])
    train, validation = tmp_path / "train", tmp_path / "validation"
    for tag, key in (("epoch_loss", "loss"), ("epoch_accuracy", "accuracy"), ("epoch_learning_rate", "learning_rate")):
        assert [s for s, _ in scalars(train, tag)] == [0, 1]
        numpy.testing.assert_allclose([v for _, v in scalars(train, tag)], history.history[key], rtol=1e-6)
    for tag, key in (("epoch_loss", "val_loss"), ("epoch_accuracy", "val_accuracy")):
        numpy.testing.assert_allclose([v for _, v in scalars(validation, tag)], history.history[key], rtol=1e-6)
    # 3 batches an epoch: the optimizer's iterations after each evaluation, and every 2nd batch
    assert [s for s, _ in scalars(validation, "evaluation_loss_vs_iterations")] == [3, 6]
    numpy.testing.assert_allclose([v for _, v in scalars(validation, "evaluation_loss_vs_iterations")],
                                  history.history["val_loss"], rtol=1e-6)
    assert [s for s, _ in scalars(train, "batch_loss")] == [2, 4, 6]
    assert scalars(train, "batch_loss")[-1][1] == pytest.approx(history.history["loss"][-1], rel=1e-6)
    assert "epoch_val_loss" not in tags(train, "scalar") and not tags(validation, "histo")
    assert len(os.listdir(train)) == 1 and len(os.listdir(validation)) == 1

    quiet = TensorBoard(tmp_path / "epochs")  # 'epoch': no batch hooks, so no per-batch GPU synchronisation
    assert not defines(quiet, "on_train_batch_end") and defines(board, "on_train_batch_end")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[quiet])
    assert not any(t.startswith("batch_") for t in tags(tmp_path / "epochs" / "train", "scalar"))


def test_histograms_and_images_of_the_weights(tmp_path, device):
    model, (x, y) = tiny_model(device), tiny_data(device)
    board = TensorBoard(tmp_path, histogram_freq=2, write_images=True, write_steps_per_second=True)
    model.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[board])
    read = events(tmp_path / "train")
    histos = {(e["step"], t): v for e in read for t, k, v in e["values"] if k == "histo"}
    assert sorted({step for step, _ in histos}) == [0, 2]  # epochs 0 and 2 of 0, 1, 2
    kernel = backend.to_numpy(model.layers[0].kernel.data).astype(numpy.float64)
    last = histos[(2, "conv2d/kernel/histogram")]
    assert last["num"] == kernel.size and (last["min"], last["max"]) == (kernel.min(), kernel.max())
    assert last["sum"] == pytest.approx(kernel.sum())
    assert {t for _, t in histos} == {f"{w.name}/histogram" for w in model.weights}
    images = {t: v for e in read if e["step"] == 2 for t, k, v in e["values"] if k == "image"}
    assert (images["conv2d/kernel/image"]["height"], images["conv2d/kernel/image"]["width"]) == (3, 4 * 4 - 1)
    assert images["conv2d/kernel/image"]["colorspace"] == 3  # 3 input channels: each filter in colour
    assert (images["dense/kernel/image"]["height"], images["dense/kernel/image"]["width"]) == (3, 64)  # (64, 3), wide
    assert (images["dense/bias/image"]["height"], images["dense/bias/image"]["width"]) == (1, 3)
    assert [s for s, _ in scalars(tmp_path / "train", "epoch_steps_per_second")] == [0, 1, 2]
    assert all(v > 0 for _, v in scalars(tmp_path / "train", "epoch_steps_per_second"))


def test_weight_image_scales_one_array_as_a_whole_and_tiles_conv_slices():
    kernel = numpy.arange(2 * 2 * 5 * 3, dtype=numpy.float32).reshape(2, 2, 5, 3)
    picture = weight_image(kernel)
    assert picture.shape == (5 * 3 - 1, 3 * 3 - 1)  # a row per input channel, a column per filter, 1-pixel gaps
    assert picture.min() == 0.0 and picture.max() == 1.0
    assert picture[0, 0] == 0.0 and picture[-1, -1] == 1.0  # the smallest and the largest weight
    numpy.testing.assert_allclose(picture[3:5, 0:2], kernel[:, :, 1, 0] / kernel.max())
    assert (weight_image(numpy.full(4, 7.0)) == 0.5).all()  # all equal: mid-grey, not a division by zero
    assert weight_image(numpy.zeros((2, 2, 2))) is None and weight_image(numpy.float32(1.0)) is None
    assert weight_image(numpy.zeros((200, 200, 64, 64))).shape == (32 * 201 - 1, 32 * 201 - 1)  # 32 x 32 slices


def graph_model():
    """Two branches from one input, a layer used twice, and a nested Sequential."""
    inner = models.Sequential([L.Input((6, 6, 4)), L.Conv2D(4, 1, name="inner_conv")], name="block")
    shared = L.Conv2D(4, 3, padding="same", name="shared")
    image = L.Input((6, 6, 4), name="image")
    a = shared(image)
    b = shared(L.ReLU(name="relu")(image))
    joined = L.Add(name="join")([a, inner(b)])
    return models.Model(image, L.Dense(3, name="head")(L.Flatten(name="flat")(joined)), name="net")


def test_the_graph_is_keras_3s_layout_of_the_models_wiring(tmp_path):
    model = graph_model()
    model.compile("adam", "mse")
    board = TensorBoard(tmp_path)
    board.set_model(model)
    board.on_train_begin()
    board.close()
    ((plugin, text),) = [v for e in events(tmp_path / "train") for t, k, v in e["values"] if t == "keras"]
    assert plugin == "graph_keras_model"
    config = json.loads(text)["config"]
    assert json.loads(text)["class_name"] == "Functional" and config["name"] == "net"
    inbound = {layer["config"]["name"]: [[arg["config"]["keras_history"] for arg in
                                          (node["args"][0] if isinstance(node["args"][0], list) else node["args"])]
                                         for node in layer["inbound_nodes"]] for layer in config["layers"]}
    assert inbound["shared"] == [[["image", 0, 0]], [["relu", 0, 0]]]  # two calls of one layer
    assert inbound["block"] == [[["shared", 1, 0]]]  # its second call
    assert inbound["join"] == [[["shared", 0, 0], ["block", 0, 0]]]
    assert config["input_layers"] == [["image", 0, 0]] and config["output_layers"] == [["head", 0, 0]]
    nested = next(layer for layer in config["layers"] if layer["config"]["name"] == "block")
    assert nested["class_name"] == "Sequential" and [l["config"]["name"] for l in nested["config"]["layers"]] == ["inner_conv"]
    sequential = json.loads(keras_graph_json(tiny_model()))
    assert [l["class_name"] for l in sequential["config"]["layers"]] == ["Conv2D", "Flatten", "Dense"]


def test_evaluate_alone_and_a_second_fit_continue_the_curves(tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    model.fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=[TensorBoard(tmp_path)])
    model.fit(x, y, epochs=3, initial_epoch=2, batch_size=10, verbose=0, callbacks=[TensorBoard(tmp_path)])
    assert [s for s, _ in scalars(tmp_path / "train", "epoch_loss")] == [0, 1, 2]  # two files, one curve
    assert len(os.listdir(tmp_path / "train")) == 2
    board = TensorBoard(tmp_path)
    result = model.evaluate(x, y, verbose=0, callbacks=[board], return_dict=True)
    board.close()
    assert scalars(tmp_path / "validation", "evaluation_loss_vs_iterations") == [(6, pytest.approx(result["loss"]))]


def test_only_rank_0_writes_when_training_data_parallel(tmp_path):
    model = tiny_model()
    model.parallel = types.SimpleNamespace(comm=types.SimpleNamespace(is_root=False))
    board = TensorBoard(tmp_path, update_freq=1)
    board.set_model(model)
    board.on_train_begin()
    board.on_epoch_begin(0)
    board.on_train_batch_begin(0)
    board.on_train_batch_end(0, {"loss": 1.0})
    board.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    board.on_test_end({"loss": 2.0})
    board.on_train_end()
    assert not tmp_path.exists() or not any(tmp_path.rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("arguments, message", [
    ({"update_freq": 0}, "update_freq"), ({"update_freq": "weekly"}, "update_freq"), ({"update_freq": True}, "update_freq"),
    ({"histogram_freq": -1}, "histogram_freq"), ({"histogram_freq": 0.5}, "histogram_freq"),
    ({"profile_batch": 5}, "profile_batch=5"), ({"profile_batch": (2, 4)}, "profile_batch"),
    ({"embeddings_freq": 1}, "Embedding")])
def test_bad_arguments_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        TensorBoard("logs", **arguments)


def test_tensorboard_itself_reads_the_files(tmp_path):
    """The oracle: TensorBoard's event accumulator (its CRC checks too) and its graph plugin."""
    pytest.importorskip("tensorboard", reason="the tensorboard package is not installed (pip install tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.graph import keras_util
    model, (x, y) = graph_model(), tiny_data(n=12)
    x = numpy.concatenate([x, x[..., :1]], axis=-1)  # 4 channels
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, batch_size=6, validation_data=(x, y), verbose=0,
                        callbacks=[TensorBoard(tmp_path, histogram_freq=1, write_images=True, update_freq="batch")])
    everything = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}
    train = EventAccumulator(str(tmp_path / "train"), size_guidance=everything)
    validation = EventAccumulator(str(tmp_path / "validation"), size_guidance=everything)
    train.Reload(), validation.Reload()
    numpy.testing.assert_allclose([e.value for e in train.Scalars("epoch_loss")], history.history["loss"], rtol=1e-6)
    numpy.testing.assert_allclose([e.value for e in validation.Scalars("epoch_accuracy")],
                                  history.history["val_accuracy"], rtol=1e-6)
    assert [e.step for e in train.Scalars("batch_loss")] == [1, 2, 3, 4]
    kernel = backend.to_numpy(model.get_layer("head").kernel.data)
    histogram = train.Histograms("head/kernel/histogram")[-1].histogram_value
    assert histogram.num == kernel.size and histogram.max == pytest.approx(kernel.max())
    image = train.Images("shared/kernel/image")[-1]
    assert (image.height, image.width) == (4 * 4 - 1, 4 * 4 - 1)  # 4 input channels x 4 filters, 3 x 3 each
    graph = keras_util.keras_model_to_graph_def(json.loads(train.Tensors("keras")[0].tensor_proto.string_val[0]))
    inputs = {node.name: list(node.input) for node in graph.node}  # one node a layer, a shared one fed twice
    assert inputs["net/shared"] == ["net/image", "net/relu"] and inputs["net/join"] == ["net/shared", "net/block/inner_conv"]
    assert inputs["net/block/inner_conv"] == ["net/shared"] and inputs["net/head"] == ["net/flat"]
