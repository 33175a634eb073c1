"""CIFAR-10 loading from files in the official layout, written here by the tests; the
real data only where $MINICNN_DATA points at it (CI builds it from ../shared/data)."""
import hashlib
import os
import pickle
import tarfile

import numpy
import pytest

import minicnn
from minicnn.datasets import cifar10
from minicnn.layers import Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential
from conftest import CIFAR_CLASSES as CLASSES, write_cifar_batch as write_batch


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
    assert cifar10.find_data() == str(root / "cifar-10-batches-py")
    monkeypatch.setenv("MINICNN_DATA", str(root))  # the folder that holds it works too
    assert cifar10.find_data() == str(root / "cifar-10-batches-py")


def make_tarball(root, name="cifar-10-python.tar.gz"):
    path = root / name
    with tarfile.open(path, "w:gz") as archive:
        archive.add(root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return path


def isolate_from_real_data(monkeypatch, tmp_path_factory):
    """No $MINICNN_DATA and an empty home, so nothing real can be found by accident."""
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    return home


def test_the_official_tarball_is_read_without_unpacking(fake_cifar, tmp_path_factory, monkeypatch):
    root, batches = fake_cifar
    home = isolate_from_real_data(monkeypatch, tmp_path_factory)
    keras_cache = home / ".keras" / "datasets"
    keras_cache.mkdir(parents=True)
    tarball = make_tarball(root)
    (x, y), (xt, yt) = cifar10.load_data(str(tarball))
    numpy.testing.assert_array_equal(x[6:12], batches["data_batch_2"][0])
    numpy.testing.assert_array_equal(yt[:, 0], batches["test_batch"][1])
    assert cifar10.load_class_names(str(tarball)) == CLASSES
    # found in Keras's cache under the name Keras gives it
    tarball.rename(keras_cache / "cifar-10-batches-py.tar.gz")
    assert cifar10.find_data() == str(keras_cache / "cifar-10-batches-py.tar.gz")
    (x2, _), _ = cifar10.load_data(download=False)
    numpy.testing.assert_array_equal(x2, x)


def test_a_corrupt_tarball_is_named(tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(cifar10.DataError, match="cifar-10-python.tar.gz: not a readable tar.gz archive"):
        cifar10.load_data(str(bad))


def test_download_checks_md5_and_renames_into_place_only_when_whole(fake_cifar, tmp_path_factory,
                                                                     monkeypatch):
    """Downloads are tested from a file:// URL: no test touches the internet."""
    root, batches = fake_cifar
    home = isolate_from_real_data(monkeypatch, tmp_path_factory)
    source = make_tarball(root, "served.tar.gz")
    url, md5 = source.as_uri(), hashlib.md5(source.read_bytes()).hexdigest()
    target_dir = home / ".minicnn" / "datasets"
    with pytest.raises(cifar10.DataError, match="bad checksum: MD5 .* expected 0+"):
        cifar10.download(str(target_dir), url=url, md5="0" * 32, progress=False)
    assert os.listdir(target_dir) == []  # nothing half-written or wrong was kept
    monkeypatch.setattr(cifar10, "URL", url)
    monkeypatch.setattr(cifar10, "MD5", md5)
    (x, _), _ = cifar10.load_data()  # not found anywhere: downloaded, checked, then read
    numpy.testing.assert_array_equal(x[:6], batches["data_batch_1"][0])
    assert os.listdir(target_dir) == ["cifar-10-python.tar.gz"]


def test_without_a_network_the_error_says_where_to_put_the_files(tmp_path_factory, monkeypatch):
    home = isolate_from_real_data(monkeypatch, tmp_path_factory)
    missing = (home / "no-such-server" / "cifar.tar.gz").as_uri()
    monkeypatch.setattr(cifar10, "URL", missing)
    with pytest.raises(cifar10.DataError, match=r"could not download CIFAR-10 .* copy "
                                                r"cifar-10-python.tar.gz .* into .*\.minicnn/datasets"):
        cifar10.load_data()
    assert os.listdir(home / ".minicnn" / "datasets") == []


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
    isolate_from_real_data(monkeypatch, tmp_path_factory)
    with pytest.raises(cifar10.DataError, match="CIFAR-10 not found.*MINICNN_DATA"):
        cifar10.load_data(str(tmp_path_factory.mktemp("empty")))  # a given path: never downloads
    with pytest.raises(cifar10.DataError, match="CIFAR-10 not found"):
        cifar10.load_data(download=False)
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
