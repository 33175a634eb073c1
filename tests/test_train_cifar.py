"""examples/train_cifar.py and examples/predict.py end to end, on CIFAR-10 files in the
official layout written by the tests: every output file, a kill at a random moment
followed by --resume (ending where an uninterrupted run ends), and the refusals that
protect a run's progress."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

from minicnn import backend
from minicnn.models import load_model
import event_reader
from conftest import assert_runs_end_alike, write_fake_cifar, write_sideways_photo

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
OUTPUTS = ["checkpoint.npz", "best_model.npz", "model.npz", "history.json", "history.csv",
           "results.json", "accuracy.png", "loss.png", "confusion_matrix.png", "predictions.png"]


def train_cifar(*args, wait=True):
    command = [sys.executable, os.path.join(EXAMPLES, "train_cifar.py"), *map(str, args)]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.fixture
def learnable_cifar(tmp_path):
    """600 training and 120 test images whose class shows in their colour."""
    write_fake_cifar(tmp_path / "data", per_batch=120, learnable=True)
    return tmp_path / "data"


def test_a_run_writes_every_output_and_predict_reads_its_model(learnable_cifar, tmp_path, device):
    out = tmp_path / "run"
    done = train_cifar("--device", device, "--data", learnable_cifar, "--model", "seed001_model0", "--epochs", 3,
                       "--limit", 300, "--batch-size", 32, "--augment", "crop-flip", "--out", out)
    assert done.returncode == 0, done.stderr
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert "Total params: 91,946" in done.stdout and "Confusion matrix" in done.stdout
    assert "img/s" in done.stdout and done.stdout.count("Epoch ") == 3  # one line per epoch off a tty
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3] and len(history["val_accuracy"]) == 3
    assert (out / "history.csv").read_text().splitlines()[0] == "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"
    results = json.loads((out / "results.json").read_text())
    assert numpy.array(results["confusion_matrix"]).sum() == 120
    assert results["test_accuracy"] > 0.3  # colours are easy: well above 10% chance
    assert results["tf32"] is (device == "gpu")  # --tf32 on, the default, only means something there
    assert ("float32 products in TF32" in done.stdout) is (device == "gpu")
    assert f"Test accuracy: {results['test_accuracy']:.4f}" in done.stdout
    best = load_model(out / "best_model.npz")
    assert best.metadata["epoch"] == numpy.argmax(history["val_accuracy"]) + 1
    for folder, tag, key in (("train", "epoch_accuracy", "accuracy"), ("validation", "epoch_loss", "val_loss")):
        curve = event_reader.scalars(out / "tensorboard" / folder, tag)  # TensorBoard's files (epoch from 0)
        assert [step for step, _ in curve] == [0, 1, 2]
        numpy.testing.assert_allclose([value for _, value in curve], history[key], rtol=1e-6)

    from PIL import Image
    image = numpy.zeros((50, 70, 3), numpy.uint8) + numpy.uint8([200, 30, 30])
    Image.fromarray(image).save(tmp_path / "red.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    predicted = subprocess.run([sys.executable, os.path.join(EXAMPLES, "predict.py"), "--device", device,
                                out / "model.npz", tmp_path / "red.png", tmp_path / "broken.jpg"],
                               capture_output=True, text=True, timeout=300)
    assert predicted.returncode == 1  # one image could not be read
    line = predicted.stdout.strip()
    assert line.startswith(f"{tmp_path / 'red.png'}: ") and line.count("%") == 3
    assert "broken.jpg: not an image Pillow can read" in predicted.stderr


def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_one_ends(learnable_cifar, tmp_path, device):
    settings = ["--device", device, "--data", learnable_cifar, "--model", "seed004_base", "--epochs", 3,
                "--batch-size", 100, "--augment", "seed004", "--seed", 7]
    straight = train_cifar(*settings, "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr

    killed = tmp_path / "killed"
    process = train_cifar(*settings, "--out", killed, wait=False)
    deadline = time.time() + 300
    while not (killed / "checkpoint.npz").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # no chance to clean up: mid-epoch 2, or mid-write
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    epochs_done = load_model(killed / "checkpoint.npz").metadata["run"]["completed_epochs"]
    assert 1 <= epochs_done < 3

    resumed = train_cifar("--resume", "--out", killed, "--data", learnable_cifar, "--device", device)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming {killed} after epoch {epochs_done} of 3" in resumed.stdout
    assert_runs_end_alike(tmp_path / "straight", killed, ("model.npz", "checkpoint.npz"))
    # TensorBoard's curve goes on over both runs' files: every epoch, however the kill fell
    # (between the checkpoint and the curves too), each written once or twice as the same point
    history = json.loads((killed / "history.json").read_text())
    curve = dict(event_reader.scalars(killed / "tensorboard" / "train", "epoch_accuracy"))
    assert sorted(curve) == [0, 1, 2]
    resumed_curve = event_reader.scalars(killed / "tensorboard" / "train", "epoch_accuracy", newest_file_only=True)
    assert [step for step, _ in resumed_curve] == list(range(epochs_done - 1, 3))  # the checkpoint's last epoch again
    for step, value in event_reader.scalars(killed / "tensorboard" / "train", "epoch_accuracy"):
        assert value == pytest.approx(history["accuracy"][step], rel=1e-6)


def test_a_mixed_precision_run_keeps_its_policy_and_loss_scale_through_a_resume(learnable_cifar, tmp_path, device):
    out = tmp_path / "mixed"
    settings = ["--device", device, "--data", learnable_cifar, "--model", "seed001_model0", "--limit", 96,
                "--batch-size", 32, "--augment", "none", "--out", out]
    first = train_cifar(*settings, "--epochs", 1, "--precision", "mixed_float16")
    assert first.returncode == 0, first.stderr
    assert "mixed_float16, LossScaleOptimizer" in first.stdout
    assert ("mixed_float16 on the CPU is slower than float32" in first.stdout) is (device == "cpu")
    clash = train_cifar("--resume", "--out", out, "--data", learnable_cifar, "--precision", "float32")
    assert clash.returncode != 0 and "--precision float32 (the run has mixed_float16)" in clash.stderr
    resumed = train_cifar("--resume", "--out", out, "--data", learnable_cifar, "--device", device, "--epochs", 2)
    assert resumed.returncode == 0, resumed.stderr
    results = json.loads((out / "results.json").read_text())
    model = load_model(out / "checkpoint.npz")
    assert results["precision"] == "mixed_float16"
    assert results["loss_scale"] == {"scale": model.optimizer.scale, "skipped_steps": model.optimizer.skipped_steps}
    assert f"steps skipped for an overflowed float16 gradient: {model.optimizer.skipped_steps}" in resumed.stdout
    assert type(model.optimizer).__name__ == "LossScaleOptimizer" and model.optimizer.iterations == 6
    assert {layer.dtype_policy.name for layer in model.layers} == {"mixed_float16"}
    assert all(w.dtype == numpy.float32 for w in model.weights)


def test_an_ema_run_validates_with_the_averages_and_resumes_where_a_straight_one_ends(learnable_cifar, tmp_path,
                                                                                     device):
    """--ema 0.9: the history's val_accuracy and best_model.npz are the averaged weights', the
    final model the averages; a run stopped after epoch 1 and resumed ends as a straight one
    (the checkpoint held the raw weights and their averages); --ema must match on --resume."""
    settings = ["--device", device, "--data", learnable_cifar, "--model", "seed001_model0", "--limit", 96,
                "--batch-size", 32, "--augment", "none", "--seed", 3, "--ema", 0.9]
    straight = train_cifar(*settings, "--epochs", 3, "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    assert "weights averaged (ema 0.9)" in straight.stdout
    first = train_cifar(*settings, "--epochs", 1, "--out", tmp_path / "resumed")
    assert first.returncode == 0, first.stderr
    clash = train_cifar("--resume", "--out", tmp_path / "resumed", "--data", learnable_cifar, "--ema", 0.5)
    assert clash.returncode != 0 and "--ema 0.5 (the run has 0.9)" in clash.stderr
    resumed = train_cifar("--resume", "--out", tmp_path / "resumed", "--data", learnable_cifar, "--device", device,
                          "--epochs", 3)
    assert resumed.returncode == 0, resumed.stderr
    assert_runs_end_alike(tmp_path / "straight", tmp_path / "resumed", ("model.npz", "checkpoint.npz"))
    final, checkpoint = load_model(tmp_path / "straight" / "model.npz"), load_model(tmp_path / "straight" / "checkpoint.npz")
    assert checkpoint.optimizer.use_ema and checkpoint.optimizer.ema_momentum == 0.9
    for w, average in zip(final.get_weights(), checkpoint.optimizer.slots["ema"]):  # the model ends averaged
        numpy.testing.assert_array_equal(w, backend.to_numpy(average))
    history = json.loads((tmp_path / "straight" / "history.json").read_text())
    results = json.loads((tmp_path / "straight" / "results.json").read_text())
    assert results["test_accuracy"] == pytest.approx(history["val_accuracy"][-1])  # validated averaged too


def test_a_muon_run_keeps_its_output_layer_on_adamw_and_resumes_where_a_straight_one_ends(learnable_cifar,
                                                                                           tmp_path, device):
    """--optimizer muon: Keras's Muon with the output layer excluded (its AdamW step), every
    conv and hidden dense kernel on the Muon step; saved with its settings, so a run resumed
    after epoch 1 ends as a straight one."""
    settings = ["--device", device, "--data", learnable_cifar, "--model", "seed001_model0", "--limit", 96,
                "--batch-size", 32, "--augment", "none", "--seed", 5, "--optimizer", "muon"]
    straight = train_cifar(*settings, "--epochs", 3, "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    checkpoint = load_model(tmp_path / "straight" / "checkpoint.npz")
    optimizer, weights = checkpoint.optimizer, checkpoint.trainable_weights
    output_layer = weights[-1].name.split("/")[0]
    assert type(optimizer).__name__ == "Muon" and optimizer.exclude_layers == [f"^{output_layer}/"]
    assert [optimizer.takes_adam(w) for w in weights if w.name.endswith("kernel")][-1]
    assert not any(optimizer.takes_adam(w) for w in weights[:-2] if w.name.endswith("kernel"))
    first = train_cifar(*settings, "--epochs", 1, "--out", tmp_path / "resumed")
    assert first.returncode == 0, first.stderr
    resumed = train_cifar("--resume", "--out", tmp_path / "resumed", "--data", learnable_cifar, "--device", device,
                          "--epochs", 3)
    assert resumed.returncode == 0, resumed.stderr
    assert_runs_end_alike(tmp_path / "straight", tmp_path / "resumed", ("model.npz", "checkpoint.npz"))


def test_a_mixed_run_trains_on_mixed_labels_and_resumes_where_a_straight_one_ends(learnable_cifar, tmp_path, device):
    """--mix cutmix: one-hot training labels mixed in pairs, categorical_crossentropy; the
    Loader reseeds the mixing every epoch, so a run resumed after epoch 1 ends as a straight
    one; --mix must match on --resume."""
    settings = ["--device", device, "--data", learnable_cifar, "--model", "seed001_model0", "--limit", 96,
                "--batch-size", 32, "--augment", "none", "--seed", 4, "--mix", "cutmix"]
    straight = train_cifar(*settings, "--epochs", 3, "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    assert "augment none + cutmix" in straight.stdout
    model = load_model(tmp_path / "straight" / "checkpoint.npz")
    assert type(model.loss).__name__ == "CategoricalCrossentropy"
    first = train_cifar(*settings, "--epochs", 1, "--out", tmp_path / "resumed")
    assert first.returncode == 0, first.stderr
    clash = train_cifar("--resume", "--out", tmp_path / "resumed", "--data", learnable_cifar, "--mix", "mixup")
    assert clash.returncode != 0 and "--mix mixup (the run has cutmix)" in clash.stderr
    resumed = train_cifar("--resume", "--out", tmp_path / "resumed", "--data", learnable_cifar, "--device", device,
                          "--epochs", 3)
    assert resumed.returncode == 0, resumed.stderr
    assert_runs_end_alike(tmp_path / "straight", tmp_path / "resumed", ("model.npz", "checkpoint.npz"))
    plain = train_cifar(*settings[:-2], "--epochs", 3, "--out", tmp_path / "plain")  # the mixing changes the run
    assert plain.returncode == 0, plain.stderr
    assert json.loads((tmp_path / "plain" / "history.json").read_text())["loss"] != \
        json.loads((tmp_path / "straight" / "history.json").read_text())["loss"]


def test_an_existing_run_is_never_overwritten_and_resume_keeps_its_settings(learnable_cifar, tmp_path):
    out = tmp_path / "run"
    first = train_cifar("--data", learnable_cifar, "--model", "seed001_model0", "--epochs", 1,
                        "--limit", 64, "--out", out)
    assert first.returncode == 0, first.stderr
    before = (out / "checkpoint.npz").read_bytes()
    again = train_cifar("--data", learnable_cifar, "--out", out)
    assert again.returncode == 2 and "already holds a run" in again.stderr and "--resume" in again.stderr
    clash = train_cifar("--resume", "--out", out, "--data", learnable_cifar, "--model", "seed003_4layer")
    assert clash.returncode == 2 and "--model seed003_4layer (the run has seed001_model0)" in clash.stderr
    assert (out / "checkpoint.npz").read_bytes() == before
    nothing = train_cifar("--resume", "--out", tmp_path / "empty", "--data", learnable_cifar)
    assert nothing.returncode == 2 and "holds no checkpoint.npz" in nothing.stderr
    longer = train_cifar("--resume", "--out", out, "--epochs", 2, "--data", learnable_cifar)
    assert longer.returncode == 0, longer.stderr
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]


def test_bad_flags_and_missing_data_get_clear_errors(tmp_path):
    bad = train_cifar("--epochs", 0)
    assert bad.returncode == 2 and "--epochs must be a positive integer" in bad.stderr
    missing = train_cifar("--data", tmp_path, "--out", tmp_path / "run")
    assert missing.returncode == 2 and "error: CIFAR-10 not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def finite(path):
    return all(numpy.isfinite(w).all() for w in load_model(path).get_weights())


def test_a_diverging_run_stops_keeps_its_last_good_checkpoint_and_resumes(learnable_cifar, tmp_path):
    out = tmp_path / "run"
    settings = ["--data", learnable_cifar, "--model", "seed001_model0", "--limit", 300, "--batch-size", 32,
                "--out", out]
    first = train_cifar(*settings, "--epochs", 1)
    assert first.returncode == 0, first.stderr
    good = (out / "checkpoint.npz").read_bytes()
    blown = train_cifar("--resume", *settings, "--epochs", 3, "--lr", 1e6)  # Adam at 1e6 overflows to NaN
    assert blown.returncode == 3, blown.stderr
    assert "the run diverged: the loss became nan at epoch 2, batch" in blown.stderr
    assert f"The last good checkpoint is {out / 'checkpoint.npz'} (after epoch 1)" in blown.stderr
    assert (out / "checkpoint.npz").read_bytes() == good and finite(out / "checkpoint.npz")
    assert finite(out / "best_model.npz")
    assert json.loads((out / "history.json").read_text())["epoch"] == [1]
    again = train_cifar("--resume", *settings, "--epochs", 3, "--lr", 1e-3)
    assert again.returncode == 0, again.stderr
    assert "Learning rate changed from 1000000.0 to 0.001" not in again.stdout  # the checkpoint kept 0.001
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2, 3]
    rows = (out / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["0", "1", "2"]


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(learnable_cifar, tmp_path):
    out = tmp_path / "run"
    settings = ["--data", learnable_cifar, "--model", "seed001_model0", "--limit", 300, "--batch-size", 32,
                "--out", out]
    assert train_cifar(*settings, "--epochs", 2).returncode == 0
    assert load_model(out / "checkpoint.previous.npz").metadata["run"]["completed_epochs"] == 1
    newest = out / "checkpoint.npz"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a disk that filled mid-write
    resumed = train_cifar("--resume", *settings, "--epochs", 3)
    assert resumed.returncode == 0, resumed.stderr
    assert "Falling back to the checkpoint before it" in resumed.stderr
    assert f"Resuming {out} after epoch 1 of 3" in resumed.stdout
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2, 3]


def test_a_kill_during_a_checkpoint_write_leaves_the_old_checkpoint_loadable(tmp_path):
    """The process dies (os._exit: no cleanup runs) halfway through writing a new file over
    an existing one; the existing one must still load, unchanged."""
    script = (
        "import os, sys, numpy\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import minicnn\n"
        "from minicnn import zoo\n"
        "minicnn.set_seed(0)\n"
        "model, _ = zoo.build('seed001_model0')\n"
        "model.save(sys.argv[2])\n"
        "def half_then_die(f, **arrays):\n"
        "    f.write(b'PK' + b'0' * 1000)\n"
        "    os._exit(9)\n"
        "numpy.savez = half_then_die\n"
        "model.save(sys.argv[2], keep_previous=True)\n")
    path = tmp_path / "checkpoint.npz"
    done = subprocess.run([sys.executable, "-c", script, os.path.join(EXAMPLES, ".."), path], timeout=300)
    assert done.returncode == 9
    import minicnn
    from minicnn import zoo
    minicnn.set_seed(0)
    reference, _ = zoo.build("seed001_model0")
    for a, b in zip(load_model(path).get_weights(), reference.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_predict_reads_images_as_a_viewer_shows_them(tmp_path):
    """Transparency onto white, 16-bit greyscale scaled (not clipped), EXIF orientation
    applied, and a note when an image is squashed to the model's shape."""
    from PIL import Image
    sys.path.insert(0, EXAMPLES)
    import predict

    notes = []
    clear = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # fully transparent black
    clear.save(tmp_path / "clear.png")
    assert (predict.load_image(tmp_path / "clear.png", (32, 32), notes.append) == 255).all()

    grey16 = numpy.full((32, 32), 32768, numpy.uint16)  # mid-grey in 16 bits
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    assert numpy.abs(predict.load_image(tmp_path / "grey16.png", (32, 32)).astype(int) - 128).max() <= 1

    write_sideways_photo(tmp_path / "sideways.jpg", 64, 32)
    upright = predict.load_image(tmp_path / "sideways.jpg", (32, 32), notes.append)
    assert upright[:12].mean() > 200 and upright[-12:].mean() < 50
    assert len(notes) == 1 and "32x64 is not the model's 32x32 shape; squashed" in notes[0]


def test_device_auto_takes_the_gpu_only_when_there_is_one():
    from minicnn import backend
    device, why = backend.resolve_device("auto")
    assert device == ("cpu" if backend.gpu_unavailable_reason() else "gpu") and "--device auto" in why
    assert backend.resolve_device("cpu") == ("cpu", "device: cpu")
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        backend.resolve_device("tpu")
