"""SwapEMAWeights: validate (and, swap_on_epoch, checkpoint) with the optimizer's moving
averages of the weights (use_ema, optimizers/ema.py) while training goes on with the raw ones."""
from ..optimizers import ema
from .base import Callback


class SwapEMAWeights(Callback):
    """Keras 3's SwapEMAWeights: the model's weights swapped with the optimizer's averages
    around each validation (on_test_begin / on_test_end), so val_loss and val_accuracy are
    those of the averaged weights, the ones fit ends with. swap_on_epoch=True also keeps them
    swapped from the end of each epoch to the start of the next, so a ModelCheckpoint listed
    after this callback saves the averaged weights (a BackupAndRestore still backs up the raw
    ones, which training continues from). Given to evaluate or predict (callbacks=), it
    scores or predicts with the averages and puts the raw weights back after. Needs an
    optimizer with use_ema=True."""

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = bool(swap_on_epoch)

    def on_train_begin(self, logs=None):
        self._check()

    def _check(self):
        if not getattr(self.model.optimizer, "use_ema", False):
            raise ValueError("SwapEMAWeights: the model's optimizer keeps no moving averages of the weights; "
                             "compile with one given use_ema=True (e.g. SGD(0.1, momentum=0.9, use_ema=True))")

    def _swapped(self):
        return ema.inner(self.model.optimizer).ema_swapped

    def _swap(self, into_averages):
        self._check()
        optimizer = ema.inner(self.model.optimizer)
        if optimizer.params is not None and self._swapped() != into_averages:
            ema.swap(optimizer)

    def on_epoch_begin(self, epoch, logs=None):
        self._swap(into_averages=False)

    def on_test_begin(self, logs=None):
        self._swap(into_averages=True)

    def on_test_end(self, logs=None):
        if not self.swap_on_epoch:
            self._swap(into_averages=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap(into_averages=True)

    def on_train_end(self, logs=None):
        self._swap(into_averages=False)  # fit has put the averages in place already (swapped back first)

    # evaluate(callbacks=[...]) and predict(callbacks=[...]) outside fit, as Keras's
    def on_predict_begin(self, logs=None):
        self._swap(into_averages=True)

    def on_predict_end(self, logs=None):
        self._swap(into_averages=False)
