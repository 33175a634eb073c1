"""CIFAR-10 from the raw ``cifar-10-batches-py`` pickles, like keras.datasets.cifar10.

The batches are Python 2 pickles: dicts with byte-string keys, ``data`` a uint8
(10000, 3072) array whose rows are the R, G and B planes of a 32x32 image, and
``labels`` a list of ints. They are read with a restricted unpickler that admits
only what these files contain, so a tampered file cannot run code.

Where the data may be: a ``cifar-10-batches-py`` folder, or the official
``cifar-10-python.tar.gz`` read as it is (never unpacked). Searched in order:
the ``path`` argument (only there, when given), ``$MINICNN_DATA``,
``~/.minicnn/datasets`` and Keras's cache ``~/.keras/datasets``. When none holds it,
``load_data`` downloads the official tarball into ``~/.minicnn/datasets``, checks its
published MD5 and renames it into place only when whole.
"""
import hashlib
import io
import os
import pickle
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request

import numpy

FOLDER = "cifar-10-batches-py"
TARBALLS = ("cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz")  # official name, Keras's name
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
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


# --- where the files come from: a folder or the tarball ---------------------------------
class _Folder:
    def __init__(self, path):
        self.path = path

    def where(self, name):
        return os.path.join(self.path, name)

    def read(self, name):
        try:
            with open(self.where(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise DataError(f"{self.where(name)}: file not found") from None


class _Tarball:
    """The official archive, read member by member in one pass (gzip cannot seek back)."""

    def __init__(self, path):
        self.path, self._members = path, None

    def where(self, name):
        return f"{self.path}:{FOLDER}/{name}"

    def read(self, name):
        if self._members is None:
            self._members = {}
            try:
                with tarfile.open(self.path, "r:gz") as archive:
                    for member in archive:
                        if member.isfile() and os.path.dirname(member.name) == FOLDER:
                            self._members[os.path.basename(member.name)] = archive.extractfile(member).read()
            except (tarfile.TarError, OSError, EOFError) as error:
                raise DataError(f"{self.path}: not a readable tar.gz archive "
                                f"({type(error).__name__}: {error})") from None
        if name not in self._members:
            raise DataError(f"{self.where(name)}: not in the archive")
        return self._members[name]


def _unpickle(source, name):
    where = source.where(name)
    raw = source.read(name)
    try:
        # latin1 decodes Python 2 byte strings; keys may come back as str or bytes
        obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _Refused as error:
        raise DataError(f"{where}: {error}") from None
    except Exception as error:  # truncated or garbage bytes
        raise DataError(f"{where}: not a readable CIFAR-10 pickle ({type(error).__name__}: {error})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a dict, found {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _check_batch(batch, where):
    """A batch dict -> (x uint8 (N, 32, 32, 3), y uint8 (N,)), or a DataError."""
    for key in ("data", "labels"):
        if key not in batch:
            raise DataError(f"{where}: no '{key}' entry (has {sorted(batch)})")
    data, labels = batch["data"], numpy.asarray(batch["labels"])
    if not isinstance(data, numpy.ndarray) or data.dtype != numpy.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        raise DataError(f"{where}: 'data' should be uint8 (N, 3072), found "
                        f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    if labels.shape != (len(data),):
        raise DataError(f"{where}: {labels.size} labels for {len(data)} images")
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{where}: label out of range {labels.min()}..{labels.max()} (expected 0..9)")
    # Rows are [R plane | G plane | B plane]: reshape to planes, then move channels last.
    x = data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1)
    return numpy.ascontiguousarray(x), labels.astype(numpy.uint8)


def load_batch(path):
    """One batch file (e.g. .../data_batch_1) -> (x uint8 (N, 32, 32, 3), y uint8 (N,))."""
    folder, name = os.path.split(path)
    return _check_batch(_unpickle(_Folder(folder), name), path)


# --- finding and downloading ------------------------------------------------------------
def search_paths(path=None):
    """Where to look, in order: only ``path`` when given, else $MINICNN_DATA,
    ~/.minicnn/datasets and ~/.keras/datasets."""
    if path is not None:
        return [os.fspath(path)]
    return [p for p in (os.environ.get("MINICNN_DATA"), os.path.expanduser("~/.minicnn/datasets"),
                        os.path.expanduser("~/.keras/datasets")) if p]


def find_data(path=None):
    """The first CIFAR-10 copy in ``search_paths(path)``: a ``cifar-10-batches-py``
    folder (the base itself, or inside it) or an official tarball (the base itself, or
    inside it). Returns its path; raises DataError listing where it looked."""
    looked = []
    for base in search_paths(path):
        if os.path.isfile(base) and base.endswith((".tar.gz", ".tgz")):
            return base
        for folder in (base, os.path.join(base, FOLDER)):
            looked.append(folder)
            if os.path.isfile(os.path.join(folder, TEST_FILE)):
                return folder
        for tarball in TARBALLS:
            looked.append(os.path.join(base, tarball))
            if os.path.isfile(looked[-1]):
                return looked[-1]
    raise DataError(
        "CIFAR-10 not found. Looked for a 'cifar-10-batches-py' folder or 'cifar-10-python.tar.gz' "
        f"in: {', '.join(looked) or '(nowhere)'}. Download {URL} and put it (or the folder it "
        "unpacks to) in ~/.minicnn/datasets, or point $MINICNN_DATA or --data at it")


def download(directory=None, url=URL, md5=MD5, progress=True, timeout=30):
    """Fetch the official tarball into ``directory`` (default ~/.minicnn/datasets).

    Streams into a temporary file beside the target while hashing, checks the MD5, and
    only then renames it into place: an interrupted or corrupt download never leaves a
    file that looks whole. Returns the tarball's path."""
    directory = directory or os.path.expanduser("~/.minicnn/datasets")
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, TARBALLS[0])
    digest = hashlib.md5()
    fd, partial = tempfile.mkstemp(prefix=TARBALLS[0] + ".", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError) as error:
                raise DataError(
                    f"could not download CIFAR-10 from {url} ({error}). Without a network, copy "
                    f"{TARBALLS[0]} (or its '{FOLDER}' folder) into {directory}, or point "
                    "$MINICNN_DATA or --data at it") from None
            with response:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        share = f"{100 * done / total:3.0f}% " if total else ""
                        print(f"\rDownloading {url}: {share}{done / 1e6:.1f} MB", end="", file=sys.stderr)
            out.flush()
            os.fsync(out.fileno())
        if progress:
            print(file=sys.stderr)
        if md5 is not None and digest.hexdigest() != md5:
            raise DataError(f"{url}: bad checksum: MD5 {digest.hexdigest()}, expected {md5} "
                            "(the download is corrupt or not the official file; nothing was kept)")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _source(path, download_missing):
    try:
        found = find_data(path)
    except DataError:
        if path is not None or not download_missing:
            raise
        found = download(url=URL, md5=MD5)  # read at call time, so tests can serve a local file
    return _Tarball(found) if os.path.isfile(found) else _Folder(found)


# --- the public loaders --------------------------------------------------------------
def load_data(path=None, download=True):
    """((x_train, y_train), (x_test, y_test)) as Keras gives them: uint8 images
    (50000, 32, 32, 3) and (10000, 32, 32, 3), uint8 labels (N, 1).

    path: a folder or tarball (only there is searched); None searches the usual places
    and, with ``download=True``, fetches the official tarball when none has it."""
    source = _source(path, download)
    train = [_check_batch(_unpickle(source, name), source.where(name)) for name in TRAIN_FILES]
    x_test, y_test = _check_batch(_unpickle(source, TEST_FILE), source.where(TEST_FILE))
    x_train = numpy.concatenate([x for x, _ in train])
    y_train = numpy.concatenate([y for _, y in train])
    return (x_train, y_train[:, None]), (x_test, y_test[:, None])


def load_test_data(path=None, download=True):
    """(x_test, y_test) alone, as in load_data: uint8 (10000, 32, 32, 3) and (10000, 1).
    Reads only ``test_batch`` (a sixth of the data), for evaluating a trained model."""
    source = _source(path, download)
    x_test, y_test = _check_batch(_unpickle(source, TEST_FILE), source.where(TEST_FILE))
    return x_test, y_test[:, None]


def load_class_names(path=None, download=True):
    """The ten class names from ``batches.meta``."""
    source = _source(path, download)
    meta = _unpickle(source, META_FILE)
    names = [n.decode() if isinstance(n, bytes) else n for n in meta.get("label_names", [])]
    if len(names) != NUM_CLASSES or not all(isinstance(n, str) for n in names):
        raise DataError(f"{source.where(META_FILE)}: expected {NUM_CLASSES} label_names, found {names!r}")
    return names
