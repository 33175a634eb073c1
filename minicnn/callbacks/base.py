"""The Callback base class, History, and CallbackList: how fit calls callbacks."""
import math
import sys

BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
               "on_predict_batch_begin", "on_predict_batch_end")


class Callback:
    """Keras's base class: subclass it and override the hooks you need; the others do
    nothing. ``self.model`` is the model being trained, ``self.params`` holds fit's
    settings ({'epochs', 'steps', 'verbose', 'batch_size'}).

    logs: on_epoch_end gets the epoch's loss and metrics ('loss', 'accuracy',
    'val_loss', 'val_accuracy', 'learning_rate'); on_train_batch_end the running means
    of the epoch so far; on_predict_batch_end {'outputs': the batch's outputs}. evaluate
    and predict take callbacks= too (the test and predict hooks). Batch hooks cost a device synchronisation per batch on a GPU
    (the running loss is read), so fit calls them only when some callback defines one.
    """

    def __init__(self):
        self.model, self.params = None, {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """What fit returns (and leaves at ``model.history``): ``history`` maps 'loss',
    'accuracy', 'val_loss', ... to one value per epoch; ``epoch`` lists the epochs."""

    def __init__(self):
        super().__init__()
        self.history, self.epoch = {}, []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        self.model.history = self

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


def defines(callback, hook):
    """Does this callback do something at ``hook``? (A Callback's inherited no-op does not
    count; an object that is no Callback counts if it has the method; a function set on
    the instance, as LambdaCallback sets them, counts.)"""
    if hook in getattr(callback, "__dict__", {}):
        return True
    method = getattr(type(callback), hook, None)
    if method is None:
        return False
    return not (isinstance(callback, Callback) and method is getattr(Callback, hook))


class CallbackList:
    """The callbacks of one fit, called in the order given. Objects that are not Callback
    subclasses work too: only the hooks they define are called."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if hasattr(callback, "set_model"):
                callback.set_model(model)
            if hasattr(callback, "set_params"):
                callback.set_params(params)
        self.wants_batches = any(defines(c, hook) for c in self.callbacks for hook in BATCH_HOOKS[:2])
        self.wants_test_batches = any(defines(c, hook) for c in self.callbacks for hook in BATCH_HOOKS[2:4])
        self.wants_predict_batches = any(defines(c, hook) for c in self.callbacks for hook in BATCH_HOOKS[4:])

    def call(self, hook, *args):
        for callback in self.callbacks:
            if defines(callback, hook):
                getattr(callback, hook)(*args)


# --- what several callbacks share ---------------------------------------------------------
def writes_files(model):
    """Whether this process writes a callback's files: the only one, or rank 0 when the
    model trains data-parallel (the replicas are equal; several ranks writing one file would
    truncate and interleave it)."""
    parallel = getattr(model, "parallel", None)
    return parallel is None or parallel.comm.is_root


def is_finite(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# in a logged name, what marks a figure that is better higher (Keras 3 reads it from each
# metric's direction; these are the names minicnn's metrics log under)
HIGHER_IS_BETTER = ("acc", "top5", "auc", "precision", "recall", "f1", "fbeta")


class Monitor:
    """A logged quantity and what counts as better: lower ('min'), higher ('max'), or
    'auto' (higher for accuracies, AUC, precision, recall and the F-scores, lower for
    losses and errors, as Keras decides), by more than min_delta. A metric you named
    yourself without those words needs mode='max' where higher is better."""

    def __init__(self, owner, monitor, mode, min_delta=0.0):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            higher = not monitor.endswith("loss") and any(mark in monitor for mark in HIGHER_IS_BETTER)
            mode = "max" if higher else "min"
        self.owner, self.name, self.mode, self.min_delta = owner, monitor, mode, abs(min_delta)
        self.worst = math.inf if mode == "min" else -math.inf

    def improved(self, current, best):
        if self.mode == "min":
            return current < best - self.min_delta
        return current > best + self.min_delta

    def read(self, logs):
        """The monitored value from logs, or None with a warning naming what is there."""
        value = (logs or {}).get(self.name)
        if value is None:
            print(f"{self.owner}: '{self.name}' is not in the logs ({', '.join(logs or {}) or 'none'}); "
                  "skipping (monitor a quantity fit logs, e.g. pass validation_data for 'val_loss')",
                  file=sys.stderr, flush=True)
        elif isinstance(value, (list, tuple)):  # skipped as a missing one is: the run goes on
            print(f"{self.owner}: '{self.name}' is {len(value)} numbers (a score per class or per threshold), "
                  "not one, so it has no better or worse; skipping (monitor one number: e.g. "
                  "F1Score(average='macro'), or a Precision of one threshold)", file=sys.stderr, flush=True)
            value = None
        return value
