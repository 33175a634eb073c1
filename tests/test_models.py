"""Sequential: the seed models' summaries, compile/fit/evaluate/predict, modes, errors."""
import numpy
import pytest

import minicnn
from minicnn import Tensor, backend, gradcheck, zoo
from minicnn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from minicnn.losses import CategoricalCrossentropy
from minicnn.models import Sequential
from minicnn.optimizers import SGD, Adam
from conftest import STAND_IN, requires_gpu, tensor

# Seed 000's printed Keras summary (its separators and the layer rows).
SEED000_SUMMARY = """\
conv2d (Conv2D)              (None, 30, 30, 32)        896
max_pooling2d (MaxPooling2D) (None, 15, 15, 32)        0
conv2d_1 (Conv2D)            (None, 13, 13, 64)        18496
dropout (Dropout)            (None, 13, 13, 64)        0
conv2d_2 (Conv2D)            (None, 11, 11, 128)       73856
dropout_1 (Dropout)          (None, 11, 11, 128)       0
flatten (Flatten)            (None, 15488)             0
batch_normalization (BatchNo (None, 15488)             61952
dense (Dense)                (None, 256)               3965184
dense_1 (Dense)              (None, 10)                2570
Total params: 4,122,954
Trainable params: 4,091,978
Non-trainable params: 30,976"""


def summary_of(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines[0].splitlines()


def test_seed000_summary_reads_like_keras():
    model = Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=(32, 32, 3)), MaxPooling2D((2, 2)),
        Conv2D(64, (3, 3), activation="relu"), Dropout(0.25),
        Conv2D(128, (3, 3), activation="relu"), Dropout(0.25),
        Flatten(), BatchNormalization(), Dense(256, activation="relu"), Dense(10, activation="softmax")])
    text = summary_of(model)
    assert text[0] == 'Model: "sequential"'
    body = [line for line in text if line and line[0] not in "_=M" and not line.startswith("Layer (")]
    assert body == SEED000_SUMMARY.splitlines()


@pytest.mark.parametrize("name, total, non_trainable", [
    ("seed000_sequential", 4_122_954, 30_976),
    ("seed001_model0", 91_946, 0),
    ("seed001_model1", 3_404_042, 0),
    ("seed001_model2", 3_404_042, 0),
    ("seed003_4layer", 1_250_858, 0),
    ("seed003_6layer", 2_395_434, 0),
    ("seed004_base", 1_250_858, 0),
    ("seed004_vgg16", 14_714_688 + 262_656 + 5_130, 0),
])
def test_seed_models_have_the_tutorials_parameter_counts(name, total, non_trainable):
    model = zoo.MODELS[name]()
    text = summary_of(model)
    assert f"Total params: {total:,}" in text
    assert f"Non-trainable params: {non_trainable:,}" in text
    assert model.output_shape == (10,)


def test_seed003_6layer_per_layer_counts_match_its_table():
    counts = [l.count_params() for l in zoo.seed003_6layer().layers if l.count_params()]
    assert counts == [896, 9248, 18496, 36928, 73856, 147584, 2098176, 10250]


def test_unbuilt_model_summary_says_how_to_build():
    with pytest.raises(ValueError, match="not built"):
        Sequential([Dense(3)]).summary()


def quadrant_data(n=400, seed=0):
    """Toy images whose class is the brightest quadrant: learnable in a few epochs."""
    rng = numpy.random.default_rng(seed)
    x = rng.random((n, 8, 8, 3)).astype(numpy.float32) * 0.5
    y = rng.integers(0, 4, n)
    for i, c in enumerate(y):
        r, col = divmod(c, 2)
        x[i, 4 * r:4 * r + 4, 4 * col:4 * col + 4] += 0.5
    return x, y


def small_model(output_activation="softmax", dropout=0.1):
    return Sequential([
        Conv2D(8, 3, padding="same", activation="relu", input_shape=(8, 8, 3)),
        MaxPooling2D(), BatchNormalization(momentum=0.9), Dropout(dropout), Flatten(),
        Dense(16, activation="relu"), Dense(4, activation=output_activation)])


@pytest.mark.parametrize("loss, one_hot", [("sparse_categorical_crossentropy", False),
                                           ("categorical_crossentropy", True)])
def test_fit_learns_and_returns_a_history(device, loss, one_hot):
    x, y = quadrant_data()
    labels = numpy.eye(4, dtype=numpy.float32)[y] if one_hot else y[:, None]
    model = small_model()
    model.compile(optimizer=Adam(0.01), loss=loss, metrics=["accuracy"])
    history = model.fit(x, labels, batch_size=32, epochs=6, validation_data=(x[:100], labels[:100]),
                        verbose=0, seed=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert history.epoch == list(range(6))
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
    loss_value, accuracy = model.evaluate(x, labels, batch_size=64, verbose=0)
    assert accuracy > 0.9 and loss_value == pytest.approx(history.history["val_loss"][-1], rel=0.5)
    assert model.device == device


def test_sigmoid_output_uses_keras_probability_cross_entropy(device):
    """A non-softmax output (seed 002's sigmoid) trains with Keras's normalised, clipped CE."""
    x, y = quadrant_data()
    model = small_model(output_activation="sigmoid", dropout=0.0)
    model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["acc"])
    history = model.fit(x, y, batch_size=32, epochs=5, verbose=0, seed=0)
    assert "acc" in history.history and history.history["acc"][-1] > 0.9
    probs = tensor(numpy.random.default_rng(0).uniform(0.05, 0.95, (5, 4)), device)
    labels = backend.to_device(numpy.array([0, 1, 2, 3, 0]), device)
    loss = CategoricalCrossentropy()
    p = backend.to_numpy(probs.data)
    expected = -numpy.log((p / p.sum(1, keepdims=True))[numpy.arange(5), [0, 1, 2, 3, 0]]).mean()
    assert float(loss(labels, probs).data) == pytest.approx(expected)
    gradcheck(lambda t: loss(labels, t), [probs])


def test_fused_loss_equals_cross_entropy_of_the_softmax_output(device):
    x, y = quadrant_data(64)
    model = small_model(dropout=0.0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    xb = Tensor(backend.to_device(x, device))
    probs = backend.to_numpy(model(xb, training=False).data).astype(numpy.float64)
    expected = -numpy.log(probs[numpy.arange(64), y]).mean()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-4)


def test_predict_and_evaluate_do_not_depend_on_batch_size_and_run_in_inference_mode(device):
    x, y = quadrant_data(50)
    model = small_model(dropout=0.5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)  # moves the batch-norm statistics off their start
    a, b = model.predict(x, batch_size=7), model.predict(x, batch_size=50)
    assert isinstance(a, numpy.ndarray) and a.shape == (50, 4) and a.dtype == numpy.float32
    numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(a.sum(axis=1), 1, rtol=1e-5)
    numpy.testing.assert_allclose(model.evaluate(x, y, batch_size=3, verbose=0),
                                  model.evaluate(x, y, batch_size=50, verbose=0), rtol=1e-5)


def test_train_and_eval_modes(device):
    x = backend.to_device(numpy.ones((4, 8, 8, 3), numpy.float32), device)
    model = small_model(dropout=0.5)
    model.build((None, 8, 8, 3))
    model.eval()
    first, second = model(Tensor(x)).data, model(Tensor(x)).data
    numpy.testing.assert_array_equal(backend.to_numpy(first), backend.to_numpy(second))
    model.train()
    assert all(layer.training for layer in model.layers)
    assert not numpy.array_equal(backend.to_numpy(model(Tensor(x)).data), backend.to_numpy(model(Tensor(x)).data))


def test_training_stays_in_float32(device):
    x, y = quadrant_data(32)
    model = small_model()
    model.compile(optimizer=Adam(), loss="sparse_categorical_crossentropy")
    model.fit(x.astype(numpy.float64), y, epochs=1, verbose=0)  # fit casts inputs explicitly
    for w in model.weights:
        assert w.dtype == numpy.float32
    assert all(w.grad.dtype == numpy.float32 for w in model.trainable_weights)
    assert all(s.dtype == numpy.float32 for slots in model.optimizer.slots.values() for s in slots)


def test_resuming_from_saved_weights_and_optimizer_state_is_exact(device):
    """Stop after one epoch, restore into fresh objects, continue: identical to not stopping."""
    x, y = quadrant_data(96)

    def fresh():
        minicnn.set_seed(5)
        model = small_model(dropout=0.0)
        model.compile(optimizer=SGD(0.05, momentum=0.9, nesterov=True, decay=1e-3),
                      loss="sparse_categorical_crossentropy")
        return model

    straight = fresh()
    straight.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=1)
    weights, state = straight.get_weights(), straight.optimizer.state_dict()
    straight.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=2)

    resumed = fresh()
    resumed.build((8, 8, 3))
    resumed.optimizer.build(resumed.trainable_weights)
    resumed.set_weights(weights)
    resumed.optimizer.load_state_dict(state)
    resumed.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=2)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    assert resumed.optimizer.iterations == straight.optimizer.iterations == 12


def test_fit_rejects_bad_input_where_it_enters():
    x, y = quadrant_data(20)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="labels out of range: found 0..4.*4 classes"):
        model.fit(x, numpy.where(y == 3, 4, y), verbose=0)
    with pytest.raises(ValueError, match="x has 20 samples but y has 19"):
        model.fit(x, y[:19], verbose=0)
    with pytest.raises(ValueError, match=r"built for inputs \(None, 8, 8, 3\)"):
        model.fit(x[:, :6], y, verbose=0)
    with pytest.raises(ValueError, match="use categorical_crossentropy"):
        model.fit(x, numpy.eye(4, dtype=numpy.float32)[y], verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.fit(x, y, batch_size=0, verbose=0)
    before = model.get_weights()
    for bad in (numpy.nan, numpy.inf):
        poisoned = x.copy()
        poisoned[13, 2, 5, 1] = bad
        with pytest.raises(ValueError, match="x holds NaN or infinite values \\(the first in sample 13\\)"):
            model.fit(poisoned, y, verbose=0)
        with pytest.raises(ValueError, match="evaluate\\(\\): x holds NaN"):
            model.evaluate(poisoned, y, verbose=0)
    for a, b in zip(before, model.get_weights()):  # refused before a step: the weights are untouched
        numpy.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="x must hold numbers, got dtype <U"):
        model.fit(x.astype(str), y, verbose=0)
    with pytest.raises(ValueError, match="no samples"):
        model.predict(x[:0])
    with pytest.raises(TypeError, match="x must be a NumPy or CuPy array.*got list"):
        model.fit(list(x), y, verbose=0)
    with pytest.raises(TypeError, match="y must be a NumPy or CuPy array.*got list"):
        model.evaluate(x, list(y), verbose=0)
    with pytest.raises(TypeError, match="predict\\(\\): x must be a NumPy or CuPy array.*got tuple"):
        model.predict(tuple(x))
    with pytest.raises(RuntimeError, match="compile"):
        small_model().fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile(optimizer="rmsprop2", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="unknown loss"):
        model.compile(optimizer="sgd", loss="mse2")


def test_calling_a_model_builds_it_like_keras(device):
    model = Sequential([Conv2D(4, 3), Flatten(), Dense(2)])
    out = model(Tensor(backend.to_device(numpy.zeros((3, 6, 6, 2), numpy.float32), device)))
    assert out.shape == (3, 2) and model.built and model.output_shape == (2,)
    assert model.count_params() == (3 * 3 * 2 + 1) * 4 + (4 * 4 * 4 + 1) * 2  # 76 + 130
    assert "Total params: 206" in summary_of(model)


def test_layer_names_are_unique_and_duplicates_refused():
    model = Sequential([Dense(2, input_shape=(3,)), Dense(2), Dense(2)])
    assert [l.name for l in model.layers] == ["dense", "dense_1", "dense_2"]
    with pytest.raises(ValueError, match="already in the model"):
        model.add(Dense(2, name="dense_1"))


def test_verbose_output_is_one_line_per_epoch_off_a_terminal(capsys):
    x, y = quadrant_data(40)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=20, verbose=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2" and out[1].startswith("2/2 - ") and "accuracy:" in out[1]
    assert len(out) == 4


@requires_gpu
@pytest.mark.skipif(not STAND_IN, reason="counts the device operations of tests/cupy_stand_in")
def test_a_training_step_on_the_gpu_copies_nothing_between_host_and_device():
    """A step's numbers (x.mean()'s 1/count, the optimizer's rates) go to the kernels as
    arguments, never as arrays copied to the device: such a copy, from pageable memory,
    makes the host wait for the GPU at every step. Counted on the stand-in, which tallies
    every host->device and device->host copy (cupy.stand_in_launches)."""
    import cupy
    from minicnn.layers import GlobalAveragePooling2D
    with minicnn.device("gpu"):
        model = Sequential([Conv2D(8, (3, 3), padding="same", activation="relu", input_shape=(8, 8, 3)),
                            BatchNormalization(), Dropout(0.3), GlobalAveragePooling2D(), Dense(10, activation="softmax")])
        model.compile(Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        rng = numpy.random.default_rng(0)
        x = backend.to_device(rng.standard_normal((4, 8, 8, 3), dtype=numpy.float32), "gpu")
        y = backend.to_device(rng.integers(0, 10, 4), "gpu")
        model.train_on_batch(Tensor(x), y)
        cupy.stand_in_launches.clear()
        model.train_on_batch(Tensor(x), y)
    copies = {k: v for k, v in cupy.stand_in_launches.items() if k.startswith("copy")}
    assert copies == {} and sum(cupy.stand_in_launches.values()) > 20


def test_a_layer_added_after_compile_is_trained_and_the_others_keep_their_momenta(device, tmp_path):
    """Keras's transfer-learning idiom: train, pop the head, add a new one, fit again. The
    new head's weights train (the optimizer is rebound to the model's weights when fit
    starts), the surviving weights keep their momentum slots, the popped head's weights
    leave the optimizer, and the model saves and loads with its optimizer state."""
    x, y = quadrant_data(64)
    model = small_model(dropout=0.0)
    model.compile(optimizer=SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0, seed=0)
    old_head = model.pop()
    assert old_head.name == "dense_1" and model.output_shape == (16,) and len(model.layers) == 6
    model.add(Dense(4, activation="softmax", name="new_head"))
    kernel = model.get_layer("new_head").kernel
    start, first = backend.to_numpy(kernel.data).copy(), model.layers[0].kernel
    momentum_before = backend.to_numpy(model.optimizer.slots["momentum"][0]).copy()
    assert model.optimizer.params[0] is first and numpy.abs(momentum_before).sum() > 0
    model.fit(x, y, epochs=1, verbose=0, seed=1)
    assert not numpy.array_equal(backend.to_numpy(kernel.data), start)  # the new head trained
    bound = model.optimizer.params
    assert len(bound) == len(model.trainable_weights) and {id(p) for p in bound} == {
        id(w) for w in model.trainable_weights}
    assert not any(p is w for p in bound for w in old_head.weights)
    model.save(tmp_path / "m.npz")
    loaded = minicnn.models.load_model(tmp_path / "m.npz", device=device)
    for a, b in zip(loaded.optimizer.slots["momentum"], model.optimizer.slots["momentum"]):
        numpy.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


def test_save_right_after_pop_keeps_the_optimizer_state_of_what_is_left(tmp_path):
    """A save between pop() and the next fit stores the state of the weights still in the
    model; before, it named a weight the model no longer had and could not be written."""
    x, y = quadrant_data(32)
    model = small_model(dropout=0.0)
    model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.pop()
    model.save(tmp_path / "m.npz")
    loaded = minicnn.models.load_model(tmp_path / "m.npz")
    assert len(loaded.optimizer.params) == len(model.trainable_weights) == len(loaded.trainable_weights)
    with pytest.raises(TypeError, match="no layers"):
        Sequential().pop()


def test_keras_model_accessors_get_layer_predict_on_batch_evaluate_return_dict():
    x, y = quadrant_data(20)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy", "top5"])
    assert model.get_layer("flatten") is model.layers[4] and model.get_layer(index=-1) is model.layers[-1]
    for bad, message in (({}, "not both or neither"), ({"name": "flatten", "index": 0}, "not both"),
                         ({"name": "nope"}, "no layer named 'nope'"), ({"index": 7}, "has 7 layers")):
        with pytest.raises(ValueError, match=message):
            model.get_layer(**bad)
    numpy.testing.assert_array_equal(model.predict_on_batch(x), model.predict(x, batch_size=20))
    as_list = model.evaluate(x, y, verbose=0)
    as_dict = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(as_dict) == ["loss", "sparse_categorical_accuracy", "top5"] and list(as_dict.values()) == as_list
    history = model.fit(x, y, epochs=1, verbose=0)
    assert "sparse_categorical_accuracy" in history.history


def test_fit_class_weight_weighs_each_samples_loss_by_its_class(device):
    """The loss a step reports is the weighted mean of the samples' losses before it (over
    N, as Keras); weights of 1 train exactly as none; a class of weight 0 adds no gradient;
    validation stays unweighted; bad weights are refused by name."""
    x, y = quadrant_data(32)
    x, y = backend.to_device(x, device), backend.to_device(y, device)

    def fresh():
        minicnn.set_seed(0)
        with minicnn.device(device):
            model = Sequential([Flatten(input_shape=(8, 8, 3)), Dense(4, activation="softmax")])
        model.compile(SGD(0.5), "sparse_categorical_crossentropy")
        return model

    weights = {0: 3.0, 1: 0.5, 3: 0.0}  # class 2 left out: weight 1
    per_class = numpy.array([3.0, 0.5, 1.0, 0.0])
    probs = backend.to_numpy(fresh().predict(x))
    labels = backend.to_numpy(y)
    expected = (per_class[labels] * -numpy.log(probs[numpy.arange(32), labels])).mean()
    loss, _ = fresh().train_on_batch(x, y, class_weight=weights)
    assert float(loss) == pytest.approx(expected, rel=1e-5)

    ones, none = fresh(), fresh()
    ones.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=0, class_weight={k: 1.0 for k in range(4)})
    none.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=0)
    for a, b in zip(ones.get_weights(), none.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    only = fresh()
    start = [w.copy() for w in only.get_weights()]
    keep = labels == 2
    only.train_on_batch(x[backend.to_device(keep, device)], y[backend.to_device(keep, device)])
    alone = only.get_weights()
    weighted = fresh()
    weighted.train_on_batch(x, y, class_weight={0: 0.0, 1: 0.0, 3: 0.0})  # class 2 only, over all 32
    scale = keep.sum() / 32  # the same gradient, averaged over 32 samples instead of 8
    for a, b, s in zip(weighted.get_weights(), alone, start):
        numpy.testing.assert_allclose(a - s, (b - s) * scale, rtol=1e-4, atol=1e-7)

    still = fresh()
    still.compile(SGD(1e-12), "sparse_categorical_crossentropy")  # the weights (all but) stay put
    history = still.fit(x, y, batch_size=32, epochs=1, verbose=0, validation_data=(x, y), class_weight={0: 100.0})
    losses = -numpy.log(probs[numpy.arange(32), labels])
    weighted = (numpy.where(labels == 0, 100.0, 1.0) * losses).mean()
    assert history.history["loss"][0] == pytest.approx(weighted, rel=1e-5)
    assert history.history["val_loss"][0] == pytest.approx(losses.mean(), rel=1e-5)  # validation: unweighted
    model = fresh()
    for bad, error, message in (([1.0, 2.0], TypeError, "must be a dict"), ({7: 1.0}, ValueError, "class 7"),
                                ({0: -1.0}, ValueError, "finite number >= 0"),
                                ({0: float("nan")}, ValueError, "finite number >= 0")):
        with pytest.raises(error, match=message):
            model.fit(x, y, epochs=1, verbose=0, class_weight=bad)


def test_fit_sample_weight_as_keras(device):
    """Per-sample weights: the same training as class_weight when they are the class's
    weight; times it when both are given; shuffled with their samples (a Loader holding
    them trains as fit's arrays do);
    bad weights are refused by name."""
    from minicnn.data import Loader
    x, y = quadrant_data(40)
    labels = y.copy()
    x, y = backend.to_device(x, device), backend.to_device(y, device)

    def fresh():
        minicnn.set_seed(0)
        with minicnn.device(device):
            model = Sequential([Flatten(input_shape=(8, 8, 3)), Dense(4, activation="softmax")])
        model.compile(SGD(0.5, momentum=0.9), "sparse_categorical_crossentropy")
        return model

    per_class = {0: 2.0, 1: 0.25, 2: 1.0, 3: 3.0}
    as_samples = backend.to_device(numpy.array([per_class[c] for c in labels], numpy.float32), device)
    runs = []
    for options in ({"class_weight": per_class}, {"sample_weight": as_samples},
                    {"sample_weight": backend.to_device(numpy.ones(40, numpy.float32), device),
                     "class_weight": per_class}):
        model = fresh()
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=3, **options)
        runs.append(model.get_weights())
    with minicnn.device(device):
        loader = Loader(x, y, batch_size=8, seed=3, sample_weight=as_samples)
    from_loader = fresh()
    from_loader.fit(loader, epochs=2, verbose=0, seed=3)
    runs.append(from_loader.get_weights())
    for run in runs[1:]:
        for a, b in zip(run, runs[0]):
            numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)

    probs, losses = backend.to_numpy(fresh().predict(x)), None
    losses = -numpy.log(probs[numpy.arange(40), labels])
    w = numpy.linspace(0, 2, 40).astype(numpy.float32)
    loss, _ = fresh().train_on_batch(x, y, sample_weight=backend.to_device(w, device), class_weight={1: 3.0})
    assert float(loss) == pytest.approx((w * numpy.where(labels == 1, 3.0, 1.0) * losses).mean(), rel=1e-5)

    split = fresh()
    split.fit(x, y, epochs=1, verbose=0, validation_split=0.25, sample_weight=backend.to_device(w, device))
    model = fresh()
    for bad, message in ((numpy.ones(39, numpy.float32), "array of 40 numbers"),
                         (numpy.full(40, -1.0, numpy.float32), "finite and >= 0"),
                         ([1.0] * 40, "array of 40 numbers")):
        with pytest.raises(ValueError, match=message):
            given = bad if isinstance(bad, list) else backend.to_device(bad, device)
            model.fit(x, y, epochs=1, verbose=0, sample_weight=given)
    with pytest.raises(ValueError, match="give it the sample weights"):
        model.fit(loader, epochs=1, verbose=0, sample_weight=as_samples)
    with pytest.raises(ValueError, match=r"validation_data is \(x_val, y_val\), \(x_val, y_val, sample_weight_val\)"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y, as_samples, as_samples))


def test_evaluate_and_validation_weigh_the_loss_not_the_metrics(device):
    """evaluate(sample_weight=), test_on_batch(sample_weight=), validation_data=(x, y, w)
    and validation_split with sample_weight: the loss is mean(w * loss) over the samples,
    as Keras; accuracy (compile(metrics=)) stays the plain fraction right."""
    from minicnn.data import Loader
    x, y = quadrant_data(40)
    labels = y.copy()
    x, y = backend.to_device(x, device), backend.to_device(y, device)
    minicnn.set_seed(0)
    with minicnn.device(device):
        model = Sequential([Flatten(input_shape=(8, 8, 3)), Dense(4, activation="softmax")])
    model.compile(SGD(0.5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    w = numpy.linspace(0, 3, 40).astype(numpy.float32)
    wd = backend.to_device(w, device)

    def by_hand(rows):
        probs = backend.to_numpy(model.predict(x))[rows]
        losses = -numpy.log(probs[numpy.arange(len(probs)), labels[rows]])
        right = (probs.argmax(axis=1) == labels[rows]).mean()
        return (w[rows] * losses).mean(), right

    loss, right = by_hand(slice(None))
    for result in (model.evaluate(x, y, batch_size=7, verbose=0, sample_weight=wd),  # 7: a short last batch
                   model.test_on_batch(x, y, sample_weight=w)):
        assert result[0] == pytest.approx(loss, rel=1e-5) and result[1] == pytest.approx(right)
    with minicnn.device(device):
        weighted_loader = Loader(x, y, batch_size=9, shuffle=False, sample_weight=w)
    assert model.evaluate(weighted_loader, verbose=0)[0] == pytest.approx(loss, rel=1e-5)
    unweighted = model.evaluate(x, y, verbose=0)[0]
    assert unweighted != pytest.approx(loss, rel=1e-3)
    with pytest.raises(ValueError, match="array of 40 numbers"):
        model.evaluate(x, y, verbose=0, sample_weight=wd[:39])

    history = model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y, wd))
    loss, right = by_hand(slice(None))  # validation runs on the weights the epoch ended with
    assert history.history["val_loss"][0] == pytest.approx(loss, rel=1e-5)
    assert history.history["val_accuracy"][0] == pytest.approx(right)
    history = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, sample_weight=wd)
    assert history.history["val_loss"][0] == pytest.approx(by_hand(slice(30, 40))[0], rel=1e-5)


def test_an_input_first_builds_the_sequential_and_dense_applies_along_the_last_axis(device, tmp_path):
    """Keras's ``Sequential([Input(shape), ...])``: built at once, each layer added after it
    built as it comes. A Dense on (N, rows, features) applies the same weights to every
    row (one GEMM over N*rows rows); the model trains, saves and loads."""
    from minicnn.layers import Input
    model = Sequential([Input((6, 5)), Dense(4, activation="tanh"), Flatten(), Dense(3, activation="softmax")])
    assert model.built and model.input_shape == (6, 5) and model.layers[0].output_shape == (6, 4)
    assert model.layers[1].output_shape == (24,) and len(model.layers) == 3
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((8, 6, 5)).astype(numpy.float32)
    dense = model.layers[0]
    rows = backend.to_numpy(dense(Tensor(backend.to_device(x, device))).data)
    kernel, bias = backend.to_numpy(dense.kernel.data), backend.to_numpy(dense.bias.data)
    numpy.testing.assert_allclose(rows, numpy.tanh(x @ kernel + bias), rtol=1e-5, atol=1e-6)
    model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, rng.integers(0, 3, 8), epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = minicnn.models.load_model(tmp_path / "m.npz", device=device)
    numpy.testing.assert_allclose(backend.to_numpy(loaded.predict(x, verbose=0)),
                                  backend.to_numpy(model.predict(x, verbose=0)), rtol=1e-6)


def test_sequential_add_names_what_it_cannot_take():
    from minicnn.layers import Input
    with pytest.raises(ValueError, match=r"an Input \(None, 4\) can only come first"):
        Sequential([Dense(3, input_shape=(4,)), Input((4,))])
    with pytest.raises(TypeError, match="a class: call it"):
        Sequential([Dense])
    with pytest.raises(TypeError, match="already applied to inputs"):
        Sequential([Dense(2)(Input((4,)))])
    model = Sequential([Input((4, 4, 2)), Conv2D(3, 3, padding="same"), Dense(5, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"outputs \(None, 4, 4, 5\): a Flatten\(\)"):
        model.fit(numpy.zeros((2, 4, 4, 2), numpy.float32), numpy.zeros(2, int), verbose=0)


def test_config_json_clone_and_keras_3_names(device):
    """to_json / model_from_json / from_config / clone_model make the same architecture with
    fresh weights (Sequential, functional, nested); Layer.from_config; Keras 3's
    variables names and Keras 2's metrics_names."""
    from minicnn.layers import Input
    from minicnn.models import Model, clone_model, model_from_json
    with minicnn.device(device):
        sequential = small_model()
        inputs = Input((8, 8, 3))
        functional = Model(inputs, Dense(4, activation="softmax")(Flatten()(sequential(inputs))))
    x, _ = quadrant_data(6)
    for model in (sequential, functional):
        for copy in (model_from_json(model.to_json(indent=1)), type(model).from_config(model.get_config()),
                     clone_model(model)):
            assert copy is not model and copy.get_config() == model.get_config()
            assert [w.shape for w in copy.weights] == [w.shape for w in model.weights]
            assert not numpy.array_equal(copy.get_weights()[0], model.get_weights()[0])  # drawn afresh
            assert copy.predict(x).shape == model.predict(x).shape and copy.optimizer is None
        assert clone_model(model).device == device
    dense = Dense(5, activation="relu", kernel_regularizer=minicnn.regularizers.l2(0.01), name="d")
    again = Dense.from_config(dense.get_config())
    assert type(again) is Dense and again.get_config() == dense.get_config() and not again.built
    assert sequential.variables == sequential.weights and sequential.trainable_variables == sequential.trainable_weights
    assert len(sequential.non_trainable_variables) == 2  # batch-norm's moving mean and variance
    sequential.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy", "top5"])
    assert sequential.metrics_names == ["loss", "accuracy", "top5"]
    assert len(sequential.evaluate(x, numpy.zeros(6, int), verbose=0)) == 3
    with pytest.raises(ValueError, match="model_from_json\\(\\): not JSON text"):
        model_from_json("{not json")
    with pytest.raises(ValueError, match="from_config\\(\\): .*not a minicnn layer"):
        Model.from_config({"class_name": "Sequential", "input_shape": [4], "layers": [{"class_name": "LSTM"}]})


def test_summary_show_trainable_marks_frozen_layers_as_keras_does():
    """Keras's show_trainable column: Y for a layer that trains, N for a frozen one, - for one
    without weights; the table widens by the column, the rows keep their other cells."""
    from minicnn.layers import Input
    from minicnn.models import Model
    model = Sequential([Flatten(input_shape=(4, 4)), Dense(3), Dense(2)])
    model.layers[1].trainable = False
    lines = []
    model.summary(print_fn=lines.append, show_trainable=True)
    text = lines[0].splitlines()
    assert text[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#", "Trainable"]
    assert [line.split()[-1] for line in text if line.startswith(("flatten", "dense"))] == ["-", "N", "Y"]
    assert len(text[1]) == 65 + 10 and summary_of(model)[4].split() == text[4].split()[:-1]
    x = Input((4,))
    lines = []
    Model(x, Dense(2)(x)).summary(print_fn=lines.append, show_trainable=True)
    assert [line.split()[-1] for line in lines[0].splitlines() if line.startswith(("input_layer", "dense"))] == \
        ["-", "Y"]
