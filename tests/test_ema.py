"""Keras's use_ema (optimizers/ema.py) and SwapEMAWeights: the average follows its formula step
by step, fit ends with the averages in place, ema_overwrite_frequency copies them every n
steps, validation under SwapEMAWeights scores the averages, and a run stopped and resumed
(BackupAndRestore) averages on exactly as one that was not."""
import numpy
import pytest

import minicnn
from minicnn import Tensor, backend, optimizers
from minicnn.callbacks import BackupAndRestore, Callback, EarlyStopping, SwapEMAWeights
from minicnn.layers import Dense
from minicnn.models import Sequential, load_model

RNG = numpy.random.default_rng(0)
X = RNG.standard_normal((48, 5)).astype(numpy.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)


def model_on(device, optimizer):
    minicnn.set_seed(2)
    with minicnn.device(device):
        model = Sequential([Dense(8, activation="tanh", input_shape=(5,)), Dense(3, activation="softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("make", [lambda **k: optimizers.SGD(0.1, momentum=0.9, **k),
                                  lambda **k: optimizers.Adam(0.01, **k), lambda **k: optimizers.Adagrad(0.1, **k)])
def test_the_average_follows_keras_s_formula_and_fit_ends_with_it(device, make):
    """ema = w after the first step, then m ema + (1 - m) w after each (the fused GPU update
    and the array code alike); the weights fit leaves are the averages."""
    rng = numpy.random.default_rng(1)
    start = rng.standard_normal((4, 3)).astype(numpy.float32)
    w = Tensor(backend.to_device(start, device), requires_grad=True)
    optimizer = make(use_ema=True, ema_momentum=0.8).build([w])
    average = None
    for step in range(4):
        w.grad = backend.to_device(rng.standard_normal((4, 3)).astype(numpy.float32), device)
        optimizer.step()
        now = backend.to_numpy(w.data).astype(numpy.float64)
        average = now if average is None else 0.8 * average + 0.2 * now
        numpy.testing.assert_allclose(backend.to_numpy(optimizer.slots["ema"][0]), average, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(backend.to_numpy(w.data), now, rtol=1e-6)  # the step itself unchanged
    model = model_on(device, make(use_ema=True))
    seen = []
    model.fit(X, Y, batch_size=16, epochs=2, verbose=0,
              callbacks=[type("Last", (Callback,), {"on_epoch_end": lambda self, e, logs=None: seen.append(
                  [backend.to_numpy(a).copy() for a in model.optimizer.slots["ema"]])})()])
    for weight, averaged in zip(model.get_weights()[:len(seen[-1])], seen[-1]):
        numpy.testing.assert_array_equal(backend.to_numpy(weight), averaged)


def test_ema_overwrite_frequency_copies_the_averages_in_every_n_steps_and_options_are_checked(device):
    rng = numpy.random.default_rng(2)
    w = Tensor(backend.to_device(rng.standard_normal(5).astype(numpy.float32), device), requires_grad=True)
    optimizer = optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=3).build([w])
    for step in range(1, 7):
        w.grad = backend.to_device(rng.standard_normal(5).astype(numpy.float32), device)
        optimizer.step()
        same = numpy.array_equal(backend.to_numpy(w.data), backend.to_numpy(optimizer.slots["ema"][0]))
        assert same == (step % 3 == 0) or step == 1, step  # after the first step the average is the weight
    for bad, message in ((dict(use_ema=True, ema_momentum=1.0), "ema_momentum must be in \\[0, 1\\)"),
                         (dict(use_ema=True, ema_overwrite_frequency=0), "ema_overwrite_frequency must be an int >= 1"),
                         (dict(ema_overwrite_frequency=5), "ema_overwrite_frequency needs use_ema=True")):
        with pytest.raises(ValueError, match=message):
            optimizers.Adam(**bad)


def test_swap_ema_weights_validates_with_the_averages_and_early_stopping_restores_over_them(device, tmp_path):
    """val_loss under SwapEMAWeights is the loss of the averaged weights; training goes on with
    the raw ones (the same run without the callback takes the same steps); the optimizer is
    refused without use_ema."""
    plain = model_on(device, optimizers.SGD(0.2, momentum=0.9, use_ema=True, ema_momentum=0.7))
    plain_history = plain.fit(X, Y, batch_size=16, epochs=3, verbose=0, validation_data=(X, Y), seed=1).history
    swapped = model_on(device, optimizers.SGD(0.2, momentum=0.9, use_ema=True, ema_momentum=0.7))
    averages = []
    record = type("Record", (Callback,), {"on_test_begin": lambda self, logs=None: averages.append(
        swapped.evaluate(X, Y, verbose=0, batch_size=48)[0])})()
    history = swapped.fit(X, Y, batch_size=16, epochs=3, verbose=0, validation_data=(X, Y), seed=1,
                          callbacks=[SwapEMAWeights(), record]).history
    assert history["loss"] == pytest.approx(plain_history["loss"], rel=1e-6)  # the raw weights trained on
    assert history["val_loss"] == pytest.approx(averages, rel=1e-5)  # validated with the averages in place
    assert history["val_loss"] != pytest.approx(plain_history["val_loss"], rel=1e-4)
    for a, b in zip(swapped.get_weights(), plain.get_weights()):  # both end with the averages
        numpy.testing.assert_allclose(backend.to_numpy(a), backend.to_numpy(b), rtol=1e-6)
    no_ema = model_on(device, "sgd")
    with pytest.raises(ValueError, match="SwapEMAWeights: the model's optimizer keeps no moving averages"):
        no_ema.fit(X, Y, epochs=1, verbose=0, callbacks=[SwapEMAWeights()])
    stopping = model_on(device, optimizers.SGD(0.5, use_ema=True))
    watch = EarlyStopping("loss", patience=0, restore_best_weights=True, mode="max")  # stops at epoch 1
    stopping.fit(X, Y, epochs=5, verbose=0, callbacks=[watch])
    for a, b in zip(stopping.get_weights(), watch.best_weights):
        numpy.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


def test_a_stopped_and_resumed_run_averages_on_as_a_straight_one(device, tmp_path):
    """The averages are an optimizer slot: saved with the model, backed up by BackupAndRestore
    (the raw weights, even with swap_on_epoch), so the resumed fit ends where the straight one
    does; a saved model reloads its averages and use_ema."""
    straight = model_on(device, optimizers.Adam(0.02, use_ema=True, ema_momentum=0.9))
    straight.fit(X, Y, batch_size=16, epochs=4, verbose=0, seed=5, callbacks=[SwapEMAWeights(swap_on_epoch=True)])

    class Crash(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    first = model_on(device, optimizers.Adam(0.02, use_ema=True, ema_momentum=0.9))
    backup = BackupAndRestore(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        first.fit(X, Y, batch_size=16, epochs=4, verbose=0, seed=5,
                  callbacks=[SwapEMAWeights(swap_on_epoch=True), backup, Crash()])
    again = model_on(device, optimizers.Adam(0.02, use_ema=True, ema_momentum=0.9))
    again.fit(X, Y, batch_size=16, epochs=4, verbose=0, seed=5,
              callbacks=[SwapEMAWeights(swap_on_epoch=True), BackupAndRestore(tmp_path / "backup")])
    for a, b in zip(again.get_weights(), straight.get_weights()):
        numpy.testing.assert_allclose(backend.to_numpy(a), backend.to_numpy(b), rtol=1e-6, atol=1e-7)
    straight.save(tmp_path / "ema.npz")
    loaded = load_model(tmp_path / "ema.npz")
    assert loaded.optimizer.use_ema and loaded.optimizer.ema_momentum == 0.9
    for a, b in zip(loaded.optimizer.slots["ema"], straight.optimizer.slots["ema"]):
        numpy.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


def test_evaluate_and_predict_take_callbacks_and_swap_ema_weights_scores_the_averages(device):
    """Keras's evaluate(callbacks=) and predict(callbacks=): the test and predict hooks, in
    order, with each predicted batch's outputs; SwapEMAWeights there scores (and predicts)
    with the averages and leaves the raw weights in place after."""
    model = model_on(device, optimizers.SGD(0.3, momentum=0.9, use_ema=True, ema_momentum=0.5))
    for start in range(0, 48, 16):  # steps without fit: nothing has put the averages in place
        model.train_on_batch(backend.to_device(X[start:start + 16], device), backend.to_device(Y[start:start + 16], device))
    raw = [backend.to_numpy(w).copy() for w in model.get_weights()]
    calls = []

    class Record(Callback):
        def on_test_begin(self, logs=None):
            calls.append("test_begin")

        def on_test_batch_end(self, batch, logs=None):
            calls.append(f"test_batch_{batch}")

        def on_test_end(self, logs=None):
            calls.append("test_end")

        def on_predict_begin(self, logs=None):
            calls.append("predict_begin")

        def on_predict_batch_end(self, batch, logs=None):
            calls.append(("predict_batch", batch, len(logs["outputs"])))

        def on_predict_end(self, logs=None):
            calls.append("predict_end")

    with_raw = model.evaluate(X, Y, batch_size=20, verbose=0, callbacks=[Record()])
    averaged = model.evaluate(X, Y, batch_size=20, verbose=0, callbacks=[SwapEMAWeights()])
    predicted = model.predict(X, batch_size=20, callbacks=[SwapEMAWeights(), Record()])
    assert calls == ["test_begin", "test_batch_0", "test_batch_1", "test_batch_2", "test_end", "predict_begin",
                     ("predict_batch", 0, 20), ("predict_batch", 1, 20), ("predict_batch", 2, 8), "predict_end"]
    for w, before in zip(model.get_weights(), raw):  # the raw weights back in place
        numpy.testing.assert_array_equal(backend.to_numpy(w), before)
    model.optimizer.finalize_variable_values()  # now the averages are the weights
    assert model.evaluate(X, Y, batch_size=20, verbose=0) == pytest.approx(averaged, rel=1e-6)
    assert averaged != pytest.approx(with_raw, rel=1e-4)
    numpy.testing.assert_allclose(model.predict(X, batch_size=20), predicted, rtol=1e-6)


@pytest.mark.gpu
def test_the_fused_gpu_average_equals_the_array_code_in_two_launches():
    """On a GPU the averages of 21 weights move in two launches (16 a launch), where the
    array code takes two per weight; the same numbers to float32 rounding."""
    cupy = pytest.importorskip("cupy")
    rng = numpy.random.default_rng(3)
    shapes = [(3, 3, 2, 4), (4,), (5, 7)] * 7
    results, counted = [], None
    for fast in (True, False):
        with backend.fast_kernels(fast):
            params = [Tensor(backend.to_device(rng.standard_normal(s).astype(numpy.float32), "gpu"), requires_grad=True)
                      for s in shapes]
            optimizer = optimizers.SGD(0.1, use_ema=True, ema_momentum=0.75).build(params)
            for step in range(3):
                for p in params:
                    p.grad = backend.to_device(numpy.full(p.shape, 0.1 * (step + 1), numpy.float32), "gpu")
                if fast and step == 2 and getattr(cupy, "STAND_IN", False):
                    before = dict(cupy.stand_in_launches)
                optimizer.step()
                if fast and step == 2 and getattr(cupy, "STAND_IN", False):
                    counted = sum(v - before.get(k, 0) for k, v in cupy.stand_in_launches.items())
            results.append([backend.to_numpy(a) for a in optimizer.slots["ema"]])
        rng = numpy.random.default_rng(3)  # the same start for the array code
    for fused, plain in zip(*results):
        numpy.testing.assert_allclose(fused, plain, rtol=1e-6, atol=1e-7)
    if counted is not None:
        assert counted == 2 + 2  # SGD's two launches, then the averages' two
