"""TensorBoard's event files, written by hand: what ``callbacks.TensorBoard`` (and a loop of
your own, through ``SummaryWriter``) leaves for ``tensorboard --logdir DIR`` to draw.

An events file is a sequence of records. Each record is one ``Event`` message in protocol
buffers' binary encoding, framed as TFRecord frames everything:

    uint64 length | uint32 masked CRC-32C of those 8 bytes | the message | uint32 masked CRC-32C of it

(all little-endian). The first event names the file's format ("brain.Event:2"); each later
one carries a ``Summary``: a list of (tag, value) at one step, the value a number (a
curve's point), a histogram, a PNG image or a tensor (text, a model's graph).

Protocol buffers' encoding is small enough to write out: every field is a key, the field's
number times 8 plus its wire type, as a varint (7 bits a byte, the high bit set on all but
the last), then the value: a varint for integers and enums (wire type 0), 8 bytes for a
double (1), a varint length and the bytes for strings, bytes and nested messages (2), 4
bytes for a float (5). The field numbers below are those of TensorBoard's own .proto files
(event.proto, summary.proto, histogram.proto, tensor.proto); its reader is the test's
oracle where it is installed.
"""
import io
import itertools
import os
import socket
import struct
import time

import numpy as np

from .backend import to_numpy

# --- CRC-32C (Castagnoli), as the record frames use it ---------------------------------------------
_CASTAGNOLI = 0x82F63B78  # the polynomial, bit-reversed (the CRC is computed least significant bit first)


def _crc_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CASTAGNOLI if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c(data):
    """CRC-32C of ``data`` (bytes): crc32c(b"123456789") == 0xE3069283, the standard check value."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data):
    """The CRC as TFRecord stores it: rotated right by 15 bits plus a constant, so that a CRC
    of data that holds CRCs does not come out trivially."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(message):
    """One framed record around ``message`` (bytes)."""
    length = struct.pack("<Q", len(message))
    return length + struct.pack("<I", masked_crc(length)) + message + struct.pack("<I", masked_crc(message))


# --- protocol buffers' wire format, the four kinds of field used here ------------------------------
def _varint(n):
    if n < 0:  # an int64 below zero: its two's complement, ten bytes
        n += 1 << 64
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def _integer(field, n):
    return _varint(field << 3 | 0) + _varint(int(n))


def _double(field, x):
    return _varint(field << 3 | 1) + struct.pack("<d", float(x))


def _bytes(field, data):
    data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _float(field, x):
    return _varint(field << 3 | 5) + struct.pack("<f", float(x))


# --- Summary.Value messages (summary.proto): tag = 1, simple_value = 2, image = 4, histo = 5,
# tensor = 8, metadata = 9 ------------------------------------------------------------------------
def summary_scalar(tag, value):
    """A point of the curve ``tag``: one float (TensorBoard's Scalars tab)."""
    return _bytes(1, tag) + _float(2, value)


def summary_histogram(tag, values, bins=30):
    """The distribution of ``values`` (any array, any device) as a HistogramProto: min, max,
    count, sum, sum of squares, then each bucket's upper edge and count (Histograms and
    Distributions tabs). ``bins``: as numpy.histogram takes it."""
    values = np.asarray(to_numpy(values), dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"histogram {tag!r}: no values to draw")
    finite = values[np.isfinite(values)]  # a NaN or inf has no bucket: num counts the finite values alone
    if finite.size:
        counts, edges = np.histogram(finite, bins=bins)
        low, high = finite.min(), finite.max()
    else:
        counts, edges, low, high = np.zeros(1), np.zeros(2), 0.0, 0.0
    histo = (_double(1, low) + _double(2, high) + _double(3, finite.size) + _double(4, finite.sum())
             + _double(5, (finite * finite).sum())
             + _bytes(6, edges[1:].astype("<f8").tobytes())  # repeated doubles, packed
             + _bytes(7, counts.astype("<f8").tobytes()))
    return _bytes(1, tag) + _bytes(5, histo)


def summary_image(tag, image):
    """An (H, W) or (H, W, C) image, C 1, 3 or 4: uint8, or floats in [0, 1] (as PyTorch and
    tf.summary take them), stored as PNG (the Images tab)."""
    image = np.asarray(to_numpy(image))
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image {tag!r}: expected (H, W) or (H, W, C) with C 1, 3 or 4, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float64), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    from PIL import Image  # Pillow (matplotlib's dependency) encodes the PNG
    png = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(png, format="PNG")
    height, width, channels = image.shape
    encoded = _integer(1, height) + _integer(2, width) + _integer(3, channels) + _bytes(4, png.getvalue())
    return _bytes(1, tag) + _bytes(4, encoded)


def summary_string_tensor(tag, text, plugin_name, content=b""):
    """A scalar string tensor (TensorProto: dtype = 1, DT_STRING being 7; tensor_shape = 2,
    empty for a scalar; string_val = 8) for the plugin that reads it: 'text' draws Markdown,
    'graph_keras_model' a model's layers."""
    metadata = _bytes(1, _bytes(1, plugin_name) + _bytes(2, content))  # SummaryMetadata.plugin_data
    tensor = _integer(1, 7) + _bytes(2, b"") + _bytes(8, text)
    return _bytes(1, tag) + _bytes(9, metadata) + _bytes(8, tensor)


# --- the file --------------------------------------------------------------------------------------
_files_made = itertools.count()


class SummaryWriter:
    """Writes one new events file in ``log_dir`` (made if missing), with the names of
    PyTorch's ``torch.utils.tensorboard.SummaryWriter``:

        writer = SummaryWriter("logs/run1")
        writer.add_scalar("loss", 0.7, global_step=1)
        writer.add_histogram("dense/kernel", weights, global_step=1)
        writer.close()

    A new file each time (time, host, process and a counter in its name, opened so that it
    can never replace another's): a resumed run adds its file beside the first run's and
    TensorBoard reads the run's files as one. Records reach the disk at ``flush()``,
    ``close()`` and at most ``flush_secs`` after they are added."""

    def __init__(self, log_dir="runs", filename_suffix="", flush_secs=120):
        self.log_dir = os.fspath(log_dir)
        os.makedirs(self.log_dir, exist_ok=True)
        self.flush_secs, self._last_flush = flush_secs, time.time()
        while True:  # "x": fail rather than overwrite, should the name be taken
            # TensorBoard reads a folder's files in name order: the time to the microsecond
            # first, so a resumed run's file comes after the first run's
            name = (f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}."
                    f"{next(_files_made)}{filename_suffix}")
            try:
                self._file = open(os.path.join(self.log_dir, name), "xb")
                break
            except FileExistsError:
                continue
        self.path = self._file.name
        self._write(_bytes(3, "brain.Event:2"))  # Event.file_version: which format follows

    def _write(self, fields, walltime=None):
        event = _double(1, time.time() if walltime is None else walltime) + fields  # Event.wall_time
        self._file.write(record(event))
        if time.time() - self._last_flush >= self.flush_secs:
            self.flush()

    def add_summary(self, values, global_step, walltime=None):
        """One event of Summary.Value messages (bytes, from the summary_* functions) at a step."""
        if self._file is None:
            raise ValueError(f"SummaryWriter({self.log_dir!r}) is closed")
        summary = b"".join(_bytes(1, value) for value in values)
        self._write(_integer(2, global_step) + _bytes(5, summary), walltime)  # Event.step, Event.summary

    def add_scalar(self, tag, scalar_value, global_step=0, walltime=None):
        self.add_summary([summary_scalar(tag, float(scalar_value))], global_step, walltime)

    def add_histogram(self, tag, values, global_step=0, bins=30, walltime=None):
        self.add_summary([summary_histogram(tag, values, bins)], global_step, walltime)

    def add_image(self, tag, img_tensor, global_step=0, walltime=None, dataformats="HWC"):
        """img_tensor: (H, W, C) as minicnn holds images ('CHW', PyTorch's default, or 'HW' too)."""
        image = np.asarray(to_numpy(img_tensor))
        if dataformats == "CHW":
            image = image.transpose(1, 2, 0)
        elif dataformats not in ("HWC", "HW"):
            raise ValueError(f"add_image: dataformats must be 'HWC', 'CHW' or 'HW', got {dataformats!r}")
        self.add_summary([summary_image(tag, image)], global_step, walltime)

    def add_text(self, tag, text_string, global_step=0, walltime=None):
        """Markdown, shown in the Text tab."""
        self.add_summary([summary_string_tensor(tag, text_string, "text")], global_step, walltime)

    def flush(self):
        if self._file is not None:
            self._file.flush()
        self._last_flush = time.time()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
