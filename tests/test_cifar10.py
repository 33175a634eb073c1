"""CIFAR-10 loading from files in the official layout, written here by the tests; the
real data only where $MINICNN_DATA points at it (CI builds it from ../shared/data)."""
import os
import pickle
import subprocess
import sys

import numpy
import pytest

import minicnn
from minicnn.datasets import cifar10
from minicnn.layers import Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_batch(path, images, labels):
    """An official-style batch: protocol-2 pickle, byte-string keys, R/G/B plane rows."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"testing", b"labels": [int(v) for v in labels],
                     b"data": rows, b"filenames": [b"x.png"] * len(images)}, f, protocol=2)


@pytest.fixture
def fake_cifar(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = numpy.random.default_rng(0)
    batches = {}
    for name in cifar10.TRAIN_FILES + [cifar10.TEST_FILE]:
        images = rng.integers(0, 256, (6, 32, 32, 3), dtype=numpy.uint8)
        labels = rng.integers(0, 10, 6)
        write_batch(folder / name, images, labels)
        batches[name] = (images, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}, f, protocol=2)
    return tmp_path, batches


def test_load_data_matches_keras_layout(fake_cifar):
    root, batches = fake_cifar
    (x, y), (xt, yt) = cifar10.load_data(str(root))
    assert x.shape == (30, 32, 32, 3) and x.dtype == numpy.uint8 and y.shape == (30, 1)
    assert xt.shape == (6, 32, 32, 3) and yt.shape == (6, 1)
    numpy.testing.assert_array_equal(x[:6], batches["data_batch_1"][0])  # planes -> channels last
    numpy.testing.assert_array_equal(yt[:, 0], batches["test_batch"][1])
    assert cifar10.load_class_names(str(root)) == CLASSES


def test_environment_variable_is_searched(fake_cifar, monkeypatch):
    root, _ = fake_cifar
    monkeypatch.setenv("MINICNN_DATA", str(root / "cifar-10-batches-py"))
    assert cifar10.find_folder() == str(root / "cifar-10-batches-py")


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_a_pickle_that_asks_to_run_code_is_refused_and_nothing_runs(fake_cifar, monkeypatch):
    root, _ = fake_cifar
    monkeypatch.chdir(root)
    with open(root / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({b"data": RunsCode(), b"labels": []}, f, protocol=2)
    with pytest.raises(cifar10.DataError, match=r"data_batch_3: refused to load posix.system"):
        cifar10.load_data(str(root))
    assert not (root / "pwned-by-pickle").exists()


def test_missing_truncated_and_wrong_files_are_named(fake_cifar, tmp_path_factory, monkeypatch):
    root, _ = fake_cifar
    folder = root / "cifar-10-batches-py"
    monkeypatch.delenv("MINICNN_DATA", raising=False)  # no real data may be found by accident
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    with pytest.raises(cifar10.DataError, match="CIFAR-10 not found.*MINICNN_DATA"):
        cifar10.load_data(str(tmp_path_factory.mktemp("empty")))
    data = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(data[:len(data) // 2])
    with pytest.raises(cifar10.DataError, match="data_batch_2: not a readable CIFAR-10 pickle"):
        cifar10.load_data(str(root))
    write_batch(folder / "data_batch_2", numpy.zeros((2, 32, 32, 3), numpy.uint8), [0, 12])
    with pytest.raises(cifar10.DataError, match=r"data_batch_2: label out of range 0..12"):
        cifar10.load_data(str(root))
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": numpy.zeros((2, 100), numpy.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(cifar10.DataError, match=r"data_batch_2: 'data' should be uint8 \(N, 3072\)"):
        cifar10.load_data(str(root))
    write_batch(folder / "data_batch_2", numpy.zeros((2, 32, 32, 3), numpy.uint8), [0, 1])
    (folder / "data_batch_5").unlink()
    with pytest.raises(cifar10.DataError, match="data_batch_5: file not found"):
        cifar10.load_data(str(root))


@pytest.mark.skipif(not os.environ.get("MINICNN_DATA"),
                    reason="real CIFAR-10 not available: set $MINICNN_DATA (.ci/run builds it from ../shared/data)")
def test_a_small_model_learns_real_cifar10():
    """A few thousand real images, two epochs: well above the 10% of guessing."""
    minicnn.set_seed(0)
    (x, y), (xt, yt) = cifar10.load_data()
    x, y = x[:4000].astype(numpy.float32) / 255, y[:4000]
    xt, yt = xt[:1000].astype(numpy.float32) / 255, yt[:1000]
    model = Sequential([Conv2D(16, 3, activation="relu", input_shape=(32, 32, 3)), MaxPooling2D(),
                        Conv2D(32, 3, activation="relu"), MaxPooling2D(), Flatten(),
                        Dense(64, activation="relu"), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=3, verbose=0, seed=0)
    _, accuracy = model.evaluate(xt, yt, verbose=0)
    assert accuracy > 0.30


def test_train_cifar_example_runs_end_to_end(fake_cifar):
    root, _ = fake_cifar
    script = os.path.join(os.path.dirname(__file__), "..", "examples", "train_cifar.py")
    done = subprocess.run([sys.executable, script, "--data", str(root), "--model", "seed001_model0",
                           "--epochs", "1", "--limit", "12", "--batch-size", "4"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Test accuracy:" in done.stdout and "Confusion matrix" in done.stdout
    assert "Total params: 91,946" in done.stdout
