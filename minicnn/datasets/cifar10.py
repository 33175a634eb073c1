"""CIFAR-10 from the raw ``cifar-10-batches-py`` pickles, like keras.datasets.cifar10.

The batches are Python 2 pickles: dicts with byte-string keys, ``data`` a uint8
(10000, 3072) array whose rows are the R, G and B planes of a 32x32 image, and
``labels`` a list of ints. They are read with a restricted unpickler that admits
only what these files contain, so a tampered file cannot run code.
"""
import os
import pickle

import numpy

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
NUM_CLASSES = 10

# What a batch pickle may ask for: numpy's array reconstruction and dtype, and
# _codecs.encode, with which Python 3 writes bytes into a protocol-2 pickle (it only
# turns a string into bytes).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class DataError(ValueError):
    """A CIFAR-10 file is missing, corrupt, or not what it claims to be."""


class _Refused(pickle.UnpicklingError):
    """The pickle asked for something a CIFAR-10 batch never contains."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise _Refused(f"refused to load {module}.{name}: CIFAR-10 batches hold "
                                         f"only arrays, lists, dicts, strings and ints")
        if module.startswith("numpy.core"):  # NumPy 2 moved numpy.core to numpy._core
            module = "numpy._core" + module[len("numpy.core"):]
        return getattr(__import__(module, fromlist=[name]), name)


def _unpickle(path):
    try:
        with open(path, "rb") as f:
            # latin1 decodes Python 2 byte strings; keys may come back as str or bytes
            obj = _RestrictedUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except _Refused as error:
        raise DataError(f"{path}: {error}") from None
    except Exception as error:  # truncated or garbage bytes
        raise DataError(f"{path}: not a readable CIFAR-10 pickle ({type(error).__name__}: {error})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict, found {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def load_batch(path):
    """One batch file -> (x uint8 (N, 32, 32, 3), y uint8 (N,))."""
    batch = _unpickle(path)
    for key in ("data", "labels"):
        if key not in batch:
            raise DataError(f"{path}: no '{key}' entry (has {sorted(batch)})")
    data, labels = batch["data"], numpy.asarray(batch["labels"])
    if not isinstance(data, numpy.ndarray) or data.dtype != numpy.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' should be uint8 (N, 3072), found "
                        f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {len(labels)} labels for {len(data)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{path}: label out of range {labels.min()}..{labels.max()} (expected 0..9)")
    # Rows are [R plane | G plane | B plane]: reshape to planes, then move channels last.
    x = data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1)
    return numpy.ascontiguousarray(x), labels.astype(numpy.uint8)


def find_folder(path=None):
    """The first ``cifar-10-batches-py`` folder among: ``path``, $MINICNN_DATA,
    ~/.minicnn/datasets, ~/.keras/datasets (each may be the folder or hold it)."""
    candidates = [path, os.environ.get("MINICNN_DATA"),
                  os.path.expanduser("~/.minicnn/datasets"), os.path.expanduser("~/.keras/datasets")]
    looked = []
    for base in filter(None, candidates):
        for folder in (base, os.path.join(base, FOLDER)):
            looked.append(folder)
            if os.path.isfile(os.path.join(folder, TEST_FILE)):
                return folder
    raise DataError("CIFAR-10 not found. Put the official 'cifar-10-batches-py' folder (from "
                    "cifar-10-python.tar.gz) in one of: " + ", ".join(looked or ["--data DIR"]) +
                    " or point $MINICNN_DATA at it")


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)) as Keras gives them: uint8 images
    (50000, 32, 32, 3) and (10000, 32, 32, 3), labels (N, 1)."""
    folder = find_folder(path)
    train = [load_batch(os.path.join(folder, name)) for name in TRAIN_FILES]
    x_test, y_test = load_batch(os.path.join(folder, TEST_FILE))
    x_train = numpy.concatenate([x for x, _ in train])
    y_train = numpy.concatenate([y for _, y in train])
    return (x_train, y_train[:, None]), (x_test, y_test[:, None])


def load_class_names(path=None):
    """The ten class names from ``batches.meta``."""
    meta = _unpickle(os.path.join(find_folder(path), "batches.meta"))
    names = [n.decode() if isinstance(n, bytes) else n for n in meta.get("label_names", [])]
    if len(names) != NUM_CLASSES:
        raise DataError(f"batches.meta: expected {NUM_CLASSES} label_names, found {len(names)}")
    return names
