"""ModelCheckpoint: save the model after every epoch, or only when it improved."""
import sys

from .. import backend
from .base import Callback, Monitor, is_finite, writes_files


def weights_are_finite(model):
    """True if no weight of the model is NaN or infinite (one reduction per weight)."""
    for w in model.weights:
        xp = backend.get_array_module(w.data)
        if not bool(xp.isfinite(w.data).all()):
            return False
    return True


class ModelCheckpoint(Callback):
    """Save the model to ``filepath`` at the end of every epoch (Keras's arguments).

    filepath may hold ``{epoch}`` (counted from 1) and the names of logged values, with
    format specs: ``'ckpt-{epoch:02d}-{val_loss:.2f}.npz'``. save_best_only: save only
    when ``monitor`` improved on the best value so far (mode 'auto', 'min' or 'max');
    a fixed filepath then always holds the best model. save_weights_only: write the
    weights alone (``model.load_weights`` reads them) instead of the whole model with
    its optimizer state (``minicnn.models.load_model``).

    Writes are atomic, and weights that are NaN or infinite are never written: the file
    already there, the last good one, is kept and a warning says so.

    Beyond Keras: include_optimizer=False leaves the optimizer state out of a whole-model
    file; metadata, a dict or a function (epoch, logs) -> dict, is stored with it (read
    back as ``model.metadata``); keep_previous=True keeps the file a save replaces as
    ``NAME.previous.npz``, so a damaged newest file still leaves the one before it
    (``minicnn.saving.load_model_or_previous`` falls back to it).
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", initial_value_threshold=None,
                 include_optimizer=True, metadata=None, keep_previous=False):
        super().__init__()
        self.filepath, self.verbose = str(filepath), verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.include_optimizer, self.metadata, self.keep_previous = include_optimizer, metadata, keep_previous
        self.monitor = Monitor("ModelCheckpoint", monitor, mode)
        self.best = self.monitor.worst if initial_value_threshold is None else initial_value_threshold

    def on_train_begin(self, logs=None):
        if not self.save_weights_only:  # a layer a file cannot hold (Lambda, a class of one's own): say so now,
            self.model.get_config()     # not after the first epoch's training

    def on_epoch_end(self, epoch, logs=None):
        if not writes_files(self.model):  # data-parallel: rank 0 saves (every replica is the same model)
            return
        logs = logs or {}
        path = self._path(epoch, logs)
        if self.save_best_only:
            current = self.monitor.read(logs)
            if current is None:
                return
            if not is_finite(current) or not self.monitor.improved(current, self.best):
                if self.verbose:
                    print(f"Epoch {epoch + 1}: {self.monitor.name} did not improve from {self.best:.5f}", flush=True)
                return
            if not self._save(epoch, path, logs):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor.name} improved from {self.best:.5f} to {current:.5f}, "
                      f"saving model to {path}", flush=True)
            self.best = current
        elif self._save(epoch, path, logs) and self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}", flush=True)

    def _path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} names {error}, which is not "
                             f"among epoch and the logs ({', '.join(logs)})") from None

    def _save(self, epoch, path, logs):
        if not weights_are_finite(self.model):
            print(f"ModelCheckpoint: epoch {epoch + 1}: the weights are not finite (NaN or inf); "
                  f"{path} is not overwritten and keeps the last good model", file=sys.stderr, flush=True)
            return False
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            metadata = self.metadata(epoch, logs) if callable(self.metadata) else self.metadata
            self.model.save(path, include_optimizer=self.include_optimizer, metadata=metadata,
                            keep_previous=self.keep_previous)
        return True

