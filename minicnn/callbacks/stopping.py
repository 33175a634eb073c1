"""EarlyStopping and TerminateOnNaN: end training when it stops improving or diverges."""
from .base import Callback, Monitor, is_finite


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs in a row (Keras's rule and arguments).

    Each epoch counts one more epoch without improvement, unless it improved on the best
    so far (and on ``baseline``, if given), which resets the count. When the count reaches
    patience, training stops; with restore_best_weights the model gets back the weights
    of its best epoch (the first epoch's, if none improved). start_from_epoch: epochs
    before it are not watched (a warm-up). ``stopped_epoch`` and ``best_epoch`` say what
    happened (counted from 0, as Keras's attributes).
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if patience < 0 or start_from_epoch < 0:
            raise ValueError(f"EarlyStopping: patience and start_from_epoch must be >= 0, "
                             f"got {patience}, {start_from_epoch}")
        self.monitor = Monitor("EarlyStopping", monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = self.monitor.worst, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        current = self.monitor.read(logs)
        if current is None:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # at worst, the first watched epoch
        self.wait += 1
        if is_finite(current) and self.monitor.improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self.monitor.improved(current, self.baseline):
                self.wait = 0
                return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        # at the very end, as Keras 3: after fit has put an optimizer's use_ema averages in place,
        # so the best epoch's weights are what the model keeps
        if self.stopped_epoch > 0 and self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.", flush=True)
            self.model.set_weights(self.best_weights)


class TerminateOnNaN(Callback):
    """Stop at the first batch whose loss is NaN or infinite, with a message naming the
    epoch and the batch. It reads the loss after every batch (on a GPU, a synchronisation
    per batch); without it, fit still stops a diverged run, at the end of the epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not is_finite(loss):  # the model says where, once
            self.model.stop_for_nonfinite_loss(getattr(self, "epoch", 0), batch, loss)
