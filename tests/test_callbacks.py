"""minicnn.callbacks against Keras's documented behaviour, driven through a real fit.

Where a rule depends on the monitored value (early stopping, best-only checkpoints,
plateaus), a `Script` callback placed first overwrites it with a scripted sequence, so
the epoch each rule acts at can be worked out by hand; the weights, files and learning
rates are the real ones."""
import numpy
import pytest

import minicnn
from minicnn import backend, callbacks, optimizers
from minicnn.callbacks import (CSVLogger, Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint,
                               ReduceLROnPlateau, TerminateOnNaN)
from minicnn.callbacks.base import CallbackList
from minicnn.layers import Dense, Flatten
from minicnn.models import Sequential, load_model


def tiny(optimizer=None, metrics=("accuracy",)):
    minicnn.set_seed(0)
    model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(8, activation="relu"), Dense(3, activation="softmax")])
    model.compile(optimizer or optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=list(metrics))
    return model


def data(n=40):
    rng = numpy.random.default_rng(0)
    return rng.random((n, 4, 4, 1), dtype=numpy.float32), rng.integers(0, 3, n)


class Script(Callback):
    """Sets logs[key] to values[epoch] before later callbacks see the logs, and keeps a
    copy of the weights after every epoch."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values, self.weights = key, values, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls, self.epoch_logs, self.rates = [], [], []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")
        self.rates.append(self.model.optimizer.learning_rate)

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(f"batch_begin {batch}")

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(f"batch_end {batch} {sorted(logs)}")

    def on_test_begin(self, logs=None):
        self.calls.append("test_begin")

    def on_test_end(self, logs=None):
        self.calls.append("test_end")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch}")
        self.epoch_logs.append(dict(logs))

    def on_train_end(self, logs=None):
        self.calls.append("train_end")


def test_a_keras_style_callback_gets_every_hook_in_keras_order_with_the_logs(device):
    x, y = data(20)
    model, recorder = tiny(), Recorder()
    history = model.fit(x, y, batch_size=10, epochs=2, validation_data=(x, y), callbacks=[recorder],
                        verbose=0, seed=0)
    batch = "['accuracy', 'loss']"
    assert recorder.calls == ["train_begin",
                              "epoch_begin 0", "batch_begin 0", f"batch_end 0 {batch}", "batch_begin 1",
                              f"batch_end 1 {batch}", "test_begin", "test_end", "epoch_end 0",
                              "epoch_begin 1", "batch_begin 0", f"batch_end 0 {batch}", "batch_begin 1",
                              f"batch_end 1 {batch}", "test_begin", "test_end", "epoch_end 1", "train_end"]
    assert set(recorder.epoch_logs[0]) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert recorder.epoch_logs[1]["learning_rate"] == pytest.approx(0.1)
    assert history is model.history and history.epoch == [0, 1]
    assert history.history["val_loss"] == [logs["val_loss"] for logs in recorder.epoch_logs]


def test_batch_hooks_are_only_called_when_a_callback_defines_them():
    class EpochsOnly(Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    class Duck:  # not a Callback: only what it defines is called
        def on_train_batch_end(self, batch, logs=None):
            pass
    model = tiny()
    assert not CallbackList([EpochsOnly(), callbacks.History()], model, {}).wants_batches
    assert CallbackList([Duck()], model, {}).wants_batches
    assert CallbackList([TerminateOnNaN()], model, {}).wants_batches


def test_early_stopping_stops_where_keras_does_and_restores_the_best_weights():
    # val_loss 1.0, 0.8 (best), 0.85, 0.9: patience 2 counts epochs 2 and 3 without improvement,
    # so training stops at the end of epoch 3 (counted from 0) and epoch 1's weights come back.
    x, y = data()
    script = Script("val_loss", [1.0, 0.8, 0.85, 0.9, 0.95, 0.5])
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model = tiny()
    history = model.fit(x, y, batch_size=10, epochs=6, validation_data=(x, y), callbacks=[script, stop],
                        verbose=0, seed=0)
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1 and history.epoch == [0, 1, 2, 3]
    for restored, best in zip(model.get_weights(), script.weights[1]):
        numpy.testing.assert_array_equal(restored, best)
    assert not all(numpy.array_equal(a, b) for a, b in zip(script.weights[3], script.weights[1]))


def test_early_stopping_min_delta_mode_and_baseline():
    x, y = data()
    # improvements smaller than min_delta do not count: 0.95 and 0.93 are within 0.1 of 1.0
    small = EarlyStopping(monitor="val_loss", min_delta=0.1, patience=1)
    tiny().fit(x, y, epochs=5, validation_data=(x, y), verbose=0,
               callbacks=[Script("val_loss", [1.0, 0.95, 0.93, 0.5, 0.4]), small])
    assert small.stopped_epoch == 1
    # mode 'auto' on an accuracy means higher is better
    rising = EarlyStopping(monitor="val_accuracy", patience=1)
    tiny().fit(x, y, epochs=5, validation_data=(x, y), verbose=0,
               callbacks=[Script("val_accuracy", [0.5, 0.6, 0.7, 0.65, 0.9]), rising])
    assert rising.stopped_epoch == 3 and rising.best == 0.7
    # a baseline that is never beaten: training runs for patience epochs only
    never = EarlyStopping(monitor="val_loss", patience=2, baseline=0.1)
    history = tiny().fit(x, y, epochs=6, validation_data=(x, y), verbose=0,
                         callbacks=[Script("val_loss", [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]), never])
    assert never.stopped_epoch == 1 and len(history.epoch) == 2


def test_model_checkpoint_best_only_writes_the_epochs_that_improved(tmp_path):
    x, y = data()
    script = Script("val_loss", [1.0, 0.8, 0.9, 0.7])
    each = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.1f}.npz"), save_best_only=True)
    best = ModelCheckpoint(tmp_path / "best.weights.npz", save_best_only=True, save_weights_only=True)
    model = tiny()
    model.fit(x, y, epochs=4, validation_data=(x, y), callbacks=[script, each, best], verbose=0, seed=0)
    assert sorted(p.name for p in tmp_path.glob("m-*")) == ["m-01-1.0.npz", "m-02-0.8.npz", "m-04-0.7.npz"]
    assert each.best == 0.7
    fresh = tiny()
    fresh.load_weights(tmp_path / "best.weights.npz")
    for a, b in zip(fresh.get_weights(), script.weights[3]):
        numpy.testing.assert_array_equal(a, b)
    loaded = load_model(tmp_path / "m-02-0.8.npz")  # a whole model with its optimizer state
    assert loaded.optimizer.iterations == 4  # 2 epochs of 2 batches
    for a, b in zip(loaded.get_weights(), script.weights[1]):
        numpy.testing.assert_array_equal(a, b)


def test_model_checkpoint_never_writes_non_finite_weights(tmp_path, capsys):
    class Poison(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.layers[1].kernel.data[0, 0] = numpy.nan
    x, y = data()
    saver = ModelCheckpoint(tmp_path / "last.npz", keep_previous=True)
    tiny().fit(x, y, epochs=2, callbacks=[Poison(), saver], verbose=0, seed=0, shuffle=False)
    assert "the weights are not finite" in capsys.readouterr().err
    kept = load_model(tmp_path / "last.npz")
    assert all(numpy.isfinite(w).all() for w in kept.get_weights()) and kept.optimizer.iterations == 2  # epoch 1
    assert not (tmp_path / "last.previous.npz").exists()  # the first save had nothing before it


def test_reduce_lr_on_plateau_by_hand():
    """val_loss 1, 1, 1, 1, 0.5, 0.5, 0.5 with patience 2, factor 0.5, cooldown 1: the rate
    halves after epoch 2 (two epochs without improvement), the cooldown then swallows
    epoch 3's count, epoch 4 improves, and epochs 5 and 6 halve it again after epoch 6."""
    x, y = data()
    recorder = Recorder()
    plateau = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, cooldown=1)
    model = tiny(optimizers.SGD(0.1))
    history = model.fit(x, y, epochs=7, validation_data=(x, y), verbose=0,
                        callbacks=[Script("val_loss", [1, 1, 1, 1, 0.5, 0.5, 0.5]), plateau, recorder])
    assert recorder.rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    assert model.optimizer.learning_rate == pytest.approx(0.025)
    floor = ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=1, min_lr=0.05)
    model = tiny(optimizers.SGD(0.1))
    model.fit(x, y, epochs=4, validation_data=(x, y), verbose=0, callbacks=[Script("val_loss", [1] * 4), floor])
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=2.0)


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    x, y = data()
    recorder = Recorder()
    halve = LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr / 2)
    history = tiny(optimizers.SGD(0.1)).fit(x, y, epochs=3, verbose=0, callbacks=[halve, recorder])
    assert recorder.rates == pytest.approx([0.1, 0.05, 0.025])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    scheduled = tiny(optimizers.SGD(optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)))
    with pytest.raises(TypeError, match="cannot be set"):
        scheduled.fit(x, y, epochs=1, verbose=0, callbacks=[halve])
    with pytest.raises(ValueError, match="positive number"):
        tiny().fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: -1.0)])


def test_csv_logger_writes_a_row_per_epoch_and_appends(tmp_path):
    x, y = data()
    path = tmp_path / "log.csv"
    tiny().fit(x, y, epochs=2, validation_data=(x, y), verbose=0, callbacks=[CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1"]
    tiny().fit(x, y, epochs=4, initial_epoch=2, validation_data=(x, y), verbose=0,
               callbacks=[CSVLogger(path, append=True)])
    lines = path.read_text().splitlines()
    assert lines.count(lines[0]) == 1 and [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2", "3"]


@pytest.mark.parametrize("with_callback", [False, True])
def test_a_diverging_fit_stops_at_the_bad_batch_and_reaches_no_callback(device, with_callback, capsys):
    """A NaN in one image makes batch 3 of epoch 2 (no shuffling) return a NaN loss. On the
    CPU, or with TerminateOnNaN, fit stops right there; on a GPU without it, at the end of
    that epoch, finding the same batch among the losses it recorded. Either way the
    message names epoch 2, batch 3, and no callback sees that epoch."""
    x, y = data()
    x_bad = x.copy()
    x_bad[25] = numpy.nan
    recorder = Recorder()

    class SwapData(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:  # from epoch 2 on, sample 25 (in batch 3 of 10) is NaN
                loader.x[...] = backend.to_device(x_bad, loader.device)
    model = tiny()
    from minicnn.data import Loader
    loader = Loader(x.copy(), y, batch_size=10, shuffle=False, device=model.device)
    extra = [TerminateOnNaN()] if with_callback else []
    history = model.fit(loader, epochs=3, verbose=0, callbacks=[SwapData(), recorder, *extra])
    err = capsys.readouterr().err
    assert "the loss became nan at epoch 2, batch 3" in err and err.count("the loss became") == 1
    assert model.diverged["epoch"] == 1 and model.diverged["step"] == 2 and model.stop_training
    assert history.epoch == [0] and [c for c in recorder.calls if c.startswith("epoch_end")] == ["epoch_end 0"]
    assert recorder.calls[-1] == "train_end"


def test_top5_metric_and_test_on_batch():
    x, y = data()
    model = tiny(metrics=["accuracy", "top5"])
    history = model.fit(x, y, epochs=1, verbose=0)
    assert history.history["top5"] == [1.0]  # three classes: the true one is always in the top 5
    loss, accuracy, top5 = model.test_on_batch(x, y)
    assert [loss, accuracy, top5] == pytest.approx(model.evaluate(x, y, batch_size=40, verbose=0), rel=1e-6)
    assert top5 == 1.0
    scores = numpy.array([[0.1, 0.5, 0.4, 0.0, 0.0, 0.0], [0.9, 0.01, 0.02, 0.03, 0.04, 0.05]])
    from minicnn import metrics
    assert int(metrics.top_k_count(scores, numpy.array([3, 1]), 2)) == 0
    assert int(metrics.top_k_count(scores, numpy.array([2, 1]), 2)) == 1
    with pytest.raises(ValueError, match="unknown metric 'top3'"):
        tiny(metrics=["top3"])


def test_from_logits_on_a_softmax_model_is_a_clear_error():
    model = tiny()
    with pytest.raises(ValueError, match="ends in a softmax.*from_logits=True"):
        model.compile("sgd", minicnn.losses.SparseCategoricalCrossentropy(from_logits=True))


def test_save_weights_and_load_weights(tmp_path):
    x, y = data()
    model = tiny()
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.npz")
    fresh = tiny()
    fresh.load_weights(tmp_path / "w.npz")
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    other = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(5), Dense(3)])
    with pytest.raises(minicnn.saving.ModelFileError, match=r"weight 0 .* has shape \(16, 8\) in the file"):
        other.load_weights(tmp_path / "w.npz")
    with pytest.raises(minicnn.saving.ModelFileError, match="load_weights"):
        load_model(tmp_path / "w.npz")


def test_the_readme_example_runs(tmp_path, monkeypatch):
    """README.md's "Callbacks and schedules" example, as printed, on 256 random images."""
    import os
    import re
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8") as f:
        readme = f.read()
    code = re.search(r"<!-- callbacks-example -->\n```python\n(.*?)```", readme, re.DOTALL).group(1)
    rng = numpy.random.default_rng(0)
    scope = {"x_train": rng.random((256, 32, 32, 3), dtype=numpy.float32), "y_train": rng.integers(0, 10, 256),
             "x_test": rng.random((64, 32, 32, 3), dtype=numpy.float32), "y_test": rng.integers(0, 10, 64)}
    monkeypatch.chdir(tmp_path)
    minicnn.set_seed(0)
    exec(compile(code, "README.md", "exec"), scope)
    history = scope["history"]
    assert 4 <= len(history.epoch) <= 10 and {"top5", "val_top5", "learning_rate"} <= set(history.history)
    assert (tmp_path / "best.npz").exists() and (tmp_path / "history.csv").exists()
    assert any((tmp_path / "logs" / "train").glob("events.out.tfevents.*"))


def backed_up_model(optimizer, device="cpu"):
    """A small model with dropout and batch-norm: shuffles, masks and moving averages all
    have to continue where they were for a resumed fit to end where a straight one does."""
    from minicnn.layers import BatchNormalization, Dropout
    minicnn.set_seed(0)
    with minicnn.device(device):
        model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(8, activation="relu"), BatchNormalization(),
                            Dropout(0.3), Dense(3, activation="softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Kill(Callback):
    """Raises KeyboardInterrupt at the end of one epoch, after the callbacks before it ran."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("make_optimizer", [lambda: optimizers.SGD(0.1, momentum=0.9),
                                            lambda: optimizers.Adam(0.01)])
def test_backup_and_restore_continues_a_killed_fit_exactly(tmp_path, make_optimizer, device):
    """fit(epochs=5) killed after epoch 2, then the script run again (a new model object,
    fit without a seed): it continues from epoch 3 with the backed-up weights, optimizer
    state, learning rate and seed, and ends with the weights of the fit never killed (on
    a GPU to float32 rounding: its sums need not run in one order). A finished fit removes
    its backup."""
    x, y = (backend.to_device(a, device) for a in data())
    straight = backed_up_model(make_optimizer(), device)
    halve_once = lambda epoch, lr: lr / 2 if epoch == 0 else lr  # the restored rate must carry it
    straight.fit(x, y, batch_size=8, epochs=5, verbose=0, seed=11, callbacks=[LearningRateScheduler(halve_once)])
    killed = backed_up_model(make_optimizer(), device)
    with pytest.raises(KeyboardInterrupt):
        killed.fit(x, y, batch_size=8, epochs=5, verbose=0, seed=11,
                   callbacks=[LearningRateScheduler(halve_once), callbacks.BackupAndRestore(tmp_path), Kill(epoch=1)])
    assert (tmp_path / "backup.npz").is_file()
    again = backed_up_model(make_optimizer(), device)
    history = again.fit(x, y, batch_size=8, epochs=5, verbose=0,
                        callbacks=[LearningRateScheduler(halve_once), callbacks.BackupAndRestore(tmp_path)])
    assert history.epoch == [2, 3, 4] and again.fit_seed == 11
    assert again.optimizer.iterations == straight.optimizer.iterations == 25
    assert again.optimizer.learning_rate == straight.optimizer.learning_rate == make_optimizer().learning_rate / 2
    assert again.device == straight.device == device
    for a, b in zip(again.get_weights(), straight.get_weights()):
        if device == "cpu":
            numpy.testing.assert_array_equal(a, b)
        else:
            numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not any(tmp_path.iterdir())  # finished: the backup is gone


def test_backup_and_restore_keeps_the_backup_of_a_diverged_fit_and_refuses_another_model(tmp_path):
    x, y = data()
    model = backed_up_model(optimizers.SGD(0.1))
    model.fit(x, y, epochs=1, verbose=0, seed=0, callbacks=[callbacks.BackupAndRestore(tmp_path, delete_checkpoint=False)])
    saved = load_model(tmp_path / "backup.npz").get_weights()

    class Poison(Callback):  # fit refuses NaN data up front, so the run diverges from a weight
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.weights[0].data[...] = numpy.nan
    model.fit(x, y, epochs=3, verbose=0, seed=0, callbacks=[callbacks.BackupAndRestore(tmp_path), Poison()])
    assert model.diverged is not None and (tmp_path / "backup.npz").is_file()  # the last good epoch stays
    for a, b in zip(load_model(tmp_path / "backup.npz").get_weights(), saved):
        numpy.testing.assert_array_equal(a, b)
    other = tiny()
    with pytest.raises(ValueError, match="another model's backup"):
        other.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.BackupAndRestore(tmp_path)])

    class Mine(Dense):
        pass

    custom = Sequential([Flatten(input_shape=(4, 4, 1)), Mine(3, activation="softmax")])
    custom.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="layer class of your own"):  # before any epoch runs
        custom.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.BackupAndRestore(tmp_path / "c")])


def test_lambda_callback_calls_only_the_functions_given():
    x, y = data(20)
    seen = []
    only_epochs = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, sorted(logs))),
                                           on_train_begin=lambda logs: seen.append("begin"))
    model = tiny()
    assert not CallbackList([only_epochs], model, {}).wants_batches
    model.fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[only_epochs])
    assert seen == ["begin", (0, ["accuracy", "learning_rate", "loss"]), (1, ["accuracy", "learning_rate", "loss"])]
    batches = []
    model.fit(x, y, batch_size=10, epochs=1, verbose=0,
              callbacks=[callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))])
    assert batches == [0, 1]
    with pytest.raises(TypeError, match="unknown hook 'on_epoch_ended'"):
        callbacks.LambdaCallback(on_epoch_ended=print)
    with pytest.raises(TypeError, match="on_epoch_end must be a function"):
        callbacks.LambdaCallback(on_epoch_end=3)


def test_validation_freq_and_validation_batch_size():
    """Keras's: validate after epochs freq, 2 * freq, ...; in batches of validation_batch_size
    (the same loss, whatever the batch size); a Loader keeps its own, and says so."""
    from minicnn.data import Loader
    x, y = data(20)
    model, recorder = tiny(), Recorder()
    history = model.fit(x, y, batch_size=10, epochs=5, verbose=0, validation_data=(x, y), validation_freq=2,
                        callbacks=[recorder])
    assert ["val_loss" in logs for logs in recorder.epoch_logs] == [False, True, False, True, False]
    assert len(history.history["val_loss"]) == 2 and recorder.calls.count("test_begin") == 2
    test_batches = []
    counter = callbacks.LambdaCallback(on_test_batch_end=lambda batch, logs: test_batches.append(batch))
    history = model.fit(x, y, batch_size=10, epochs=1, verbose=0, validation_data=(x, y),
                        validation_batch_size=3, callbacks=[counter])
    assert test_batches == list(range(7))  # 20 samples in batches of 3
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x, y, batch_size=20, verbose=0)[0], rel=1e-5)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="validation_freq must be a positive int"):
            model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y), validation_freq=bad)
    with pytest.raises(ValueError, match="the Loader makes batches of 5; set it on the Loader"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=Loader(x, y, 5, shuffle=False), validation_batch_size=3)
