"""BackupAndRestore: a fit that was killed continues where it stopped when run again."""
import os
import sys

from .. import saving
from ..optimizers import ema
from .base import Callback, writes_files
from .checkpoint import weights_are_finite


class BackupAndRestore(Callback):
    """Keras's BackupAndRestore: after every epoch, the model, its optimizer state and
    how far training got go to ``backup_dir/backup.npz`` (atomically, the one before kept
    beside it). When the same script runs ``fit`` again with this callback after a crash or
    a kill, fit starts from the backup: the weights, the optimizer's slots and step count,
    its learning rate, the epoch, and the seed of the shuffles and dropout masks, so it ends
    where the uninterrupted fit would have ended.

    delete_checkpoint: remove the backup once fit ends normally (the last epoch done, or
    a callback's stop). A fit stopped by a NaN or infinite loss keeps it, holding the last
    good epoch. As in Keras, other callbacks start afresh (EarlyStopping's and
    ReduceLROnPlateau's counts); a schedule or LearningRateScheduler, which depends on the
    step or epoch alone, continues exactly. Data-parallel (--workers, minicnn.distributed),
    rank 0 alone writes the backup and says which file every rank restores from; the ranks
    read that one file (they share the machine's disk), so the replicas start equal again.
    """

    def __init__(self, backup_dir, delete_checkpoint=True):
        super().__init__()
        self.backup_dir, self.delete_checkpoint = os.fspath(backup_dir), delete_checkpoint
        self.path = os.path.join(self.backup_dir, "backup.npz")

    @property
    def _writes(self):
        return writes_files(self.model)

    def on_train_begin(self, logs=None):
        model = self.model
        model.get_config()  # a layer class of one's own cannot be saved: say so now, not after an epoch
        source, failure = None, None
        if self._writes and (os.path.isfile(self.path) or os.path.isfile(saving.previous_path(self.path))):
            try:
                saved, source = saving.load_model_or_previous(self.path, device=model.device,
                                                              say=lambda text: print(text, file=sys.stderr))
            except (OSError, ValueError) as error:
                failure = error
        if model.parallel is not None:  # rank 0 found the file (or none, or a broken one); every rank reads that one
            source, said = model.parallel.comm.broadcast_object((source, None if failure is None else str(failure)))
            if said is not None and failure is None:  # the other ranks stop with rank 0 instead of waiting for it
                raise RuntimeError(f"BackupAndRestore: rank 0 could not read the backup in {self.backup_dir}: {said}")
            if source is not None and not self._writes:
                saved = saving.load_model(source, device=model.device)
        if failure is not None:
            raise failure
        if source is None:
            return
        if saved.get_config() != model.get_config():
            raise ValueError(f"BackupAndRestore: {source} holds another model's backup (its architecture "
                             f"differs from {model.name}'s); give this fit its own backup_dir")
        restore_optimizer(model, saved, source)
        model.set_weights(saved.get_weights())
        progress = saved.metadata.get("backup_and_restore", {})
        model.resume_from = {"epoch": int(progress["epochs_done"]), "seed": int(progress["seed"])}
        if self._writes:
            print(f"BackupAndRestore: continuing from {source}, after epoch {progress['epochs_done']}",
                  file=sys.stderr, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if not self._writes or not weights_are_finite(self.model):  # never replace a good backup by a broken one
            return
        metadata = {"backup_and_restore": {"epochs_done": epoch + 1, "seed": self.model.fit_seed}}
        with ema.unswapped(self.model.optimizer):  # the raw weights, as training goes on from them
            self.model.save(self.path, metadata=metadata, keep_previous=True)

    def on_train_end(self, logs=None):
        if self._writes and self.delete_checkpoint and self.model.diverged is None:
            for path in (self.path, saving.previous_path(self.path)):
                if os.path.isfile(path):
                    os.remove(path)


def restore_optimizer(model, saved, source):
    """Put the optimizer state of ``saved`` (a model loaded from a backup of ``model``)
    into model.optimizer, bound to model's own weights in the saved order."""
    mine, theirs = model.optimizer, saved.optimizer
    if _kind(theirs) != _kind(mine):
        raise ValueError(f"BackupAndRestore: {source} was written with optimizer {_kind(theirs)}, "
                         f"this fit has {_kind(mine)}")
    if theirs.params is None:
        return
    position = {id(w): i for i, w in enumerate(saved.weights)}
    weights = model.weights
    mine.build([weights[position[id(p)]] for p in theirs.params])
    mine.load_state_dict(theirs.state_dict())
    if mine.schedule is None:  # a rate a callback (ReduceLROnPlateau) changed is part of the state
        mine.learning_rate = theirs.learning_rate


def _kind(optimizer):
    """'SGD', 'Adam', ..., or 'LossScaleOptimizer(SGD)': what a backup must match."""
    inner = getattr(optimizer, "inner_optimizer", None)
    name = type(optimizer).__name__ if optimizer is not None else "none"
    return f"{name}({type(inner).__name__})" if inner is not None else name
