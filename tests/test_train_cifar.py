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

from minicnn.models import load_model
from conftest import write_fake_cifar

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
    assert (out / "history.csv").read_text().splitlines()[0].startswith("epoch,loss,accuracy,val_loss")
    results = json.loads((out / "results.json").read_text())
    assert numpy.array(results["confusion_matrix"]).sum() == 120
    assert results["test_accuracy"] > 0.3  # colours are easy: well above 10% chance
    assert f"Test accuracy: {results['test_accuracy']:.4f}" in done.stdout
    best = load_model(out / "best_model.npz")
    assert best.metadata["epoch"] == numpy.argmax(history["val_accuracy"]) + 1

    from PIL import Image
    image = numpy.zeros((50, 70, 3), numpy.uint8) + numpy.uint8([200, 30, 30])
    Image.fromarray(image).save(tmp_path / "red.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    predicted = subprocess.run([sys.executable, os.path.join(EXAMPLES, "predict.py"), out / "model.npz",
                                tmp_path / "red.png", tmp_path / "broken.jpg"],
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
    for name in ("model.npz", "checkpoint.npz"):
        a, b = load_model(tmp_path / "straight" / name), load_model(killed / name)
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            numpy.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
    h1 = json.loads((tmp_path / "straight" / "history.json").read_text())
    h2 = json.loads((killed / "history.json").read_text())
    assert h2["epoch"] == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        numpy.testing.assert_allclose(h1[key], h2[key], rtol=1e-4)


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
