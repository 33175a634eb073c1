"""CSVLogger: one row per epoch of everything fit logs, written as each epoch ends."""
import csv
import os

from .base import Callback, writes_files


class CSVLogger(Callback):
    """Write ``epoch`` (counted from 0, as Keras) and the epoch's logs to ``filename``,
    one row per epoch, flushed at once so the file is current while training runs.
    append=True continues an existing file (a resumed run) without a second header."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys, self.file, self.writer = None, None, None

    def on_train_begin(self, logs=None):
        if not writes_files(self.model):  # data-parallel: rank 0 writes the one file (the logs are the same)
            return
        has_rows = self.append and os.path.isfile(self.filename) and os.path.getsize(self.filename) > 0
        if has_rows:
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self.keys = header[1:] if header and header[0] == "epoch" else None
        self.file = open(self.filename, "a" if self.append else "w", newline="")
        self.writer = None
        self.header_written = has_rows

    def on_epoch_end(self, epoch, logs=None):
        if self.file is None:  # not this rank's to write
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            self.writer = csv.writer(self.file, delimiter=self.separator)
            if not self.header_written:
                self.writer.writerow(["epoch", *self.keys])
                self.header_written = True
        self.writer.writerow([epoch, *("" if logs.get(k) is None else logs[k] for k in self.keys)])
        self.file.flush()

    def on_train_end(self, logs=None):
        if self.file is not None:
            self.file.close()
            self.file = None
