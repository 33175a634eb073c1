"""The training loop behind ``Sequential.fit``, ``evaluate``, ``train_on_batch`` and
``test_on_batch``: batches, metrics, callbacks, progress, and stopping a diverged run.

One epoch of fit, in order (Keras's, see minicnn/callbacks/__init__.py for the hooks):
  for each batch: forward, loss, backward, optimizer step; the loss and each metric's
  count of right answers are added up *on the device*, so a GPU is never made to wait;
  then validation in inference mode; then the epoch's logs go to the callbacks.

A diverged run (a loss that is NaN or infinite) stops at once, with a message naming
the epoch and the batch. On the CPU every batch's loss is checked as it comes (it is a
host number already); on a GPU, where reading it would stall the queue, each batch's
loss is recorded on the device and the epoch's total is checked when the epoch ends,
which finds the first bad batch among the recorded ones (TerminateOnNaN, or any batch
callback, checks every batch there too). The epoch that diverged never reaches
on_epoch_end, so no callback saves or logs its weights.
"""
import contextlib
import math
import sys

import numpy

from . import backend, model_data
from .autograd import Tensor, no_grad
from .batch_stream import is_source
from .callbacks import CallbackList, History
from .data import Loader
from .functions.loss import one_hot_targets
from .metrics import count_all, true_classes
from .multi_output import batch_length
from .optimizers import LossScaleOptimizer
from .progress import Progress
from .random import new_seed


def _array_module(device):
    with backend.device(device):
        return backend.xp()


# --- one batch --------------------------------------------------------------------------------
def as_input(x):
    """A batch as the model takes it: a Tensor, or a list of them for several inputs."""
    if isinstance(x, (list, tuple)):
        return [one if isinstance(one, Tensor) else Tensor(one) for one in x]
    return x if isinstance(x, Tensor) else Tensor(x)


def train_step(model, x, y, class_weights=None, sample_weight=None):
    """One optimizer step on a batch on the model's device. Returns the loss, each
    compiled metric's count of right answers (device scalars: no synchronisation) and
    the class scores (N, K) the step computed. class_weights: (K,) on the device
    (class_weight_array), each sample's loss weighted by its true class's entry;
    sample_weight: (N,) on the device, a weight per sample (times the class's, if both)."""
    x = as_input(x)
    if model.heads is not None:  # several outputs: their weighted losses summed (multi_output.py)
        loss, counts = model.heads.loss(model, x, y, sample_weight, training=True)
        scores = None
    else:
        out, logits = model._forward_logits(x, training=True, logits_wanted=model.loss.takes_logits)
        if class_weights is not None:
            by_class = class_weights[true_classes(y)]
            sample_weight = by_class if sample_weight is None else sample_weight * by_class
        if sample_weight is None:
            loss = model.loss(y, out, logits, check=False)
        else:
            loss = model.loss(y, out, logits, check=False, sample_weight=sample_weight)
        scores = (logits if out is None else out).data
        counts = count_all(model.metric_counters, out, logits, y, sample_weight)
    loss = with_penalties(model, loss)
    model.optimizer.zero_grad()
    parallel, value = model.parallel, loss.data
    scaled = isinstance(model.optimizer, LossScaleOptimizer)  # mixed precision
    # A scaled float16 backward may overflow: the loss scale finds it (a gradient that is not
    # finite) and skips the step, so NumPy's overflow warnings would only be noise.
    with numpy.errstate(over="ignore", invalid="ignore") if scaled else contextlib.nullcontext():
        if parallel is None:
            model.optimizer.scale_loss(loss).backward() if scaled else loss.backward()
        else:  # the gradient of this shard's summed loss; the all-reduce makes it the global mean's
            n = batch_length(y)
            scale = model.optimizer.scale if scaled else 1
            loss.backward(loss.data * 0 + loss.data.dtype.type(n * scale))
            value = parallel.allreduce_gradients(model.optimizer.params or model.trainable_weights,
                                                 loss.data * n, n)
    model.optimizer.step()
    return value, counts, scores


def with_penalties(model, loss):
    """The loss plus the layers' weight penalties (kernel_regularizer=l2(...)), as Keras
    reports and minimises it."""
    for penalty in model.losses:
        loss = loss + penalty
    return loss


def test_step(model, x, y, sample_weight=None):
    """The loss and metric counts of a batch in inference mode, without a step.
    sample_weight (N,) on the device weights the loss as in train_step, and the
    weighted_metrics; the plain metrics stay unweighted, as Keras's compile(metrics=...)."""
    with no_grad():
        if model.heads is not None:  # several outputs (multi_output.py)
            loss, counts = model.heads.loss(model, as_input(x), y, sample_weight, training=False)
            return with_penalties(model, loss).data, counts
        out, logits = model._forward_logits(as_input(x), training=False, logits_wanted=model.loss.takes_logits)
        weighting = {} if sample_weight is None else {"sample_weight": sample_weight}
        loss = with_penalties(model, model.loss(y, out, logits, check=False, **weighting)).data
        return loss, count_all(model.metric_counters, out, logits, y, sample_weight)


class Sums:
    """Running sums of one pass over batches: sum of loss * batch size, metric counts,
    samples seen, and (for finding a diverged batch) each batch's loss, all on the device.
    finals: {name: result} for the metrics whose figure is result(their summed vector of
    sums, on the host) rather than their sum over the samples seen (metrics.results)."""

    def __init__(self, xp, names, steps, finals=None):
        self.finals = finals or {}
        self.loss, self.counts, self.seen = 0, dict.fromkeys(names, 0), 0
        self.batch_losses = xp.zeros(max(steps, 1), dtype=numpy.float32)

    def add(self, step, loss, counts, size):
        self.loss = self.loss + loss * size
        for name, count in counts.items():
            self.counts[name] = self.counts[name] + count
        self.seen += size
        if step < len(self.batch_losses):
            self.batch_losses[step] = loss

    def means(self):
        """{'loss': mean, metric: fraction right}, as floats (reading them synchronises)."""
        result = {"loss": float(self.loss) / self.seen}
        for name, count in self.counts.items():
            final = self.finals.get(name)
            result[name] = final(backend.to_numpy(count)) if final is not None else float(count) / self.seen
        return result

    def first_nonfinite(self, steps_done):
        """Index of the first recorded batch whose loss is not finite, or None."""
        xp = backend.get_array_module(self.batch_losses)
        bad = ~xp.isfinite(self.batch_losses[:steps_done])
        return int(bad.argmax()) if bool(bad.any()) else None


def class_weight_array(class_weight, classes, device, loss=None):
    """Keras's class_weight, {class index: weight}, as a float32 (classes,) array on
    ``device``; a class the dict leaves out weighs 1. None stays None. With
    binary_crossentropy and one output, as in Keras, the classes are the targets 0 and 1
    (rounded: metrics.true_classes): {0: 1, 1: 5} weighs the rare yes five times."""
    if class_weight is None:
        return None
    if loss is not None and not loss.classifies:
        if not getattr(loss, "yes_no", False) or classes != 1:
            raise ValueError(f"fit(): class_weight weighs class labels (or, with binary_crossentropy and one "
                             f"output, the 0/1 targets), but {type(loss).__name__} with {classes} outputs takes "
                             "target values; weigh samples with sample_weight instead")
        classes = 2
    if not isinstance(class_weight, dict):
        raise TypeError(f"fit(): class_weight must be a dict {{class index: weight}}, got "
                        f"{type(class_weight).__name__}")
    weights = numpy.ones(classes, numpy.float32)
    for key, value in class_weight.items():
        if not isinstance(key, (int, numpy.integer)) or not 0 <= key < classes:
            raise ValueError(f"fit(): class_weight has class {key!r}; the model's {classes} classes are "
                             f"0..{classes - 1}")
        if isinstance(value, bool) or not isinstance(value, (int, float, numpy.number)) or \
                not (math.isfinite(value) and value >= 0):
            raise ValueError(f"fit(): class_weight[{key}] must be a finite number >= 0, got {value!r}")
        weights[key] = value
    return backend.to_device(weights, device)


def check_labels(y_host, output_shape, loss, what):
    """A ValueError unless y (a host array) fits ``loss`` and an output of ``output_shape``:
    class labels for a classifying loss (with one score per class), else targets shaped as
    the output (check_targets). Checked once where the labels enter, not every step."""
    if not loss.classifies:
        check_targets(y_host, output_shape, loss, what)
        return
    if len(output_shape) != 1:
        raise ValueError(f"{what}(): {type(loss).__name__} needs one score per class for each sample, "
                         f"outputs (None, K); the model outputs {(None, *output_shape)}: a Flatten() or "
                         f"GlobalAveragePooling2D() before the last Dense gives that")
    classes = output_shape[-1]
    if loss.sparse and y_host.ndim == 2 and y_host.shape[1] == classes and y_host.dtype.kind == "f":
        raise ValueError(f"{what}(): sparse_categorical_crossentropy expects integer labels "
                         f"(N,) or (N, 1), got one-hot {y_host.shape}; use "
                         f"categorical_crossentropy for one-hot labels")
    try:  # the loss's own check of label shape, type and range
        one_hot_targets(y_host, classes, numpy.dtype(numpy.float32))
    except ValueError as error:
        raise ValueError(f"{what}(): {error}") from None


def check_targets(y_host, output_shape, loss, what):
    """A ValueError unless y (a host array) holds finite numbers shaped as the model's
    output, (N, *output_shape), or (N,) for an output of one value; for binary
    cross-entropy, in [0, 1]. Checked once where the targets enter, not every step."""
    shape = tuple(y_host.shape[1:])
    if shape != tuple(output_shape) and not (shape == () and tuple(output_shape) == (1,)):
        raise ValueError(f"{what}(): {type(loss).__name__} compares each output with a target of the same "
                         f"shape; the model outputs {(None, *output_shape)}, y has shape {tuple(y_host.shape)}")
    if y_host.dtype.kind not in "biuf":
        raise ValueError(f"{what}(): targets must be numbers, got dtype {y_host.dtype}")
    if not numpy.isfinite(y_host).all():
        raise ValueError(f"{what}(): targets hold NaN or infinite values")
    if getattr(loss, "yes_no", False) and (y_host.min() < 0 or y_host.max() > 1):
        raise ValueError(f"{what}(): binary_crossentropy targets must lie in [0, 1], got values from "
                         f"{y_host.min()} to {y_host.max()}")


def check_inputs(x, what, piece=4096):
    """A ValueError unless x (N, ...) holds numbers, all finite: one NaN image would make
    the first loss NaN and, through the step, every weight. Checked once where the data
    enter, piece by piece (no temporary of the data's size), on the data's device."""
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{what}(): x must hold numbers, got dtype {x.dtype}")
    if x.dtype.kind != "f":
        return
    xp = backend.get_array_module(x)
    for start in range(0, len(x), piece):
        part = x[start:start + piece]
        if not bool(xp.isfinite(part).all()):
            bad = int(xp.flatnonzero(~xp.isfinite(part.reshape(len(part), -1)).all(axis=1))[0]) + start
            raise ValueError(f"{what}(): x holds NaN or infinite values (the first in sample {bad}); they would "
                             "make the loss NaN (and in training, through the step, every weight): remove those "
                             "samples or replace the values (numpy.nan_to_num)")


def check_sample_weight(sample_weight, n, what):
    """A ValueError unless sample_weight is an array (n,) of finite numbers >= 0."""
    shape = getattr(sample_weight, "shape", None)
    if shape is None or tuple(shape) != (n,) or sample_weight.dtype.kind not in "iuf":
        raise ValueError(f"{what}(): sample_weight must be an array of {n} numbers, one per sample; got "
                         f"{type(sample_weight).__name__ if shape is None else tuple(shape)}")
    host = backend.to_numpy(sample_weight)  # one check up front, as for the labels
    if not (numpy.isfinite(host).all() and (host >= 0).all()):
        raise ValueError(f"{what}(): sample_weight must be finite and >= 0")


# --- fit ----------------------------------------------------------------------------------------
def fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_data, validation_split,
        shuffle, initial_epoch, seed, class_weight=None, sample_weight=None, validation_batch_size=None,
        validation_freq=1, steps_per_epoch=None, validation_steps=None):
    """Sequential.fit; see its docstring."""
    model._require_compiled("fit")
    if isinstance(validation_freq, bool) or not isinstance(validation_freq, int) or validation_freq < 1:
        raise ValueError(f"fit(): validation_freq must be a positive int (validate every n-th epoch), "
                         f"got {validation_freq!r}")
    for name, value in (("epochs", epochs), ("batch_size", 1 if batch_size is None else batch_size)):
        if not isinstance(value, (int, numpy.integer)) or value < 1:
            raise ValueError(f"fit(): {name} must be a positive int, got {value!r}")
    if not 0 <= initial_epoch <= epochs:
        raise ValueError(f"fit(): initial_epoch must be in [0, epochs={epochs}], got {initial_epoch}")
    if not 0 <= validation_split < 1:
        raise ValueError(f"fit(): validation_split must be in [0, 1), got {validation_split}")
    x = model_data.inputs_by_position(model, x, "fit")  # a dict keyed by input name: a list in input order
    y = model_data.targets_by_position(model, y, "fit") if y is not None else None  # several outputs: a list
    if model.heads is not None:
        if class_weight is not None:
            raise ValueError(f"fit(): class_weight weighs the classes of one output, but {model.name} has "
                             f"{len(model.heads.names)}; weigh samples with sample_weight (it weighs every "
                             "output's loss)")
    if validation_split and validation_data is None:  # Keras takes the last samples
        if isinstance(x, Loader) or is_source(x):
            raise ValueError("fit(): validation_split needs arrays; with a Loader or a source of batches pass "
                             "validation_data")
        several, outputs = isinstance(x, (list, tuple)), isinstance(y, list)  # one array per input, per output
        cut = int(batch_length(y) * (1 - validation_split))
        head, tail = (lambda a, many: [one[:cut] for one in a] if many else a[:cut]), \
            (lambda a, many: [one[cut:] for one in a] if many else a[cut:])
        validation_data = (tail(x, several), tail(y, outputs))
        if sample_weight is not None:  # as Keras: the held-out samples keep their weights
            check_sample_weight(sample_weight, batch_length(y), "fit")
            sample_weight, validation_data = sample_weight[:cut], (*validation_data, sample_weight[cut:])
        x, y = head(x, several), head(y, outputs)
    seed = new_seed() if seed is None else seed
    if model.parallel is not None:  # rank 0's: every rank must shuffle the same order to take its shard of it
        seed = model.parallel.comm.broadcast_object(seed)
    model.fit_seed = seed  # what callbacks.BackupAndRestore stores, to continue with the same draws
    if model.parallel is not None and is_source(x):
        raise ValueError("fit(): data-parallel training (--workers) shards a Loader's batches; a source of batches "
                         "cannot be shared out: give arrays or a Loader")
    train = model_data.loader(model, x, y, batch_size, shuffle, seed, "fit", sample_weight, steps_per_epoch)
    class_weights = class_weight_array(class_weight, model.output_shape[-1], model.device, model.loss)
    weighted = train.sample_weight is not None  # the Loader's batches then carry their weights
    own_loader = isinstance(train, Loader) and train is not x  # made here from arrays: shuffled by this fit's seed
    parallel = model.parallel  # data-parallel over ranks: each takes its shard of every batch
    if parallel is not None:
        train, verbose = parallel.shard(train), verbose if parallel.comm.is_root else 0
    val = None
    if validation_data is not None and is_source(validation_data):
        val = model_data.loader(model, validation_data, None, None, False, seed, "fit (validation_data)",
                                steps=validation_steps)
    elif validation_data is not None:
        if validation_steps is not None:
            raise ValueError("fit(): validation_steps counts the batches of a validation generator; with arrays "
                             "or a Loader leave it out")
        if not isinstance(validation_data, Loader) and len(validation_data) not in (2, 3):
            raise ValueError(f"fit(): validation_data is (x_val, y_val), (x_val, y_val, sample_weight_val) or a "
                             f"Loader; got {len(validation_data)} items")
        val_x, val_y, *val_weight = (validation_data, None) if isinstance(validation_data, Loader) else validation_data
        val_batch = validation_batch_size if validation_batch_size is not None else train.batch_size
        val = model_data.loader(model, val_x, val_y, validation_batch_size if val_y is None else val_batch, False,
                                seed, "fit (validation_data)", *val_weight)
    steps = len(train)
    history = History()
    hooks = CallbackList([*(callbacks or []), history], model,
                         {"epochs": epochs, "steps": steps, "verbose": verbose, "batch_size": train.batch_size})
    model.history, model.stop_training, model.diverged = history, False, None
    on_host = model.device == "cpu"  # a host loss costs nothing to check every batch
    xp = _array_module(model.device)
    logs = {}
    model.resume_from = None
    hooks.call("on_train_begin", {})
    if model.resume_from is not None:  # callbacks.BackupAndRestore found a backup: go on from it
        initial_epoch, seed = min(model.resume_from["epoch"], epochs), model.resume_from["seed"]
        model.fit_seed = seed
        if own_loader:
            train.seed = seed
    for epoch in range(initial_epoch, epochs):
        model.train()
        model.reseed(seed if parallel is None else parallel.rank_seed(seed), epoch)
        hooks.call("on_epoch_begin", epoch, {})
        progress = Progress(epoch, epochs, steps, verbose)
        sums = Sums(xp, model._result_names, steps, model._metric_finals)
        done = 0
        for step, (xb, yb, *weights) in enumerate(train.batches(epoch, weights=weighted)):
            if hooks.wants_batches:
                hooks.call("on_train_batch_begin", step, {})
            loss, counts, _ = train_step(model, as_input(xb), yb, class_weights, *weights)
            sums.add(step, loss, counts, batch_length(yb))
            done = step + 1
            if on_host and not math.isfinite(float(loss)):
                model.stop_for_nonfinite_loss(epoch, step, float(loss))
            if hooks.wants_batches:
                hooks.call("on_train_batch_end", step, sums.means())
                if parallel is not None:  # a stop asked for on one rank stops them all, at once
                    model.stop_training = parallel.any(model.stop_training)
            progress.update(done, sums.seen, sums.means)
            if model.stop_training:
                break
        if parallel is not None:  # the epoch's sums over every rank: the global batch's logs
            parallel.reduce_sums(sums)
        if model.diverged is None and not math.isfinite(float(sums.loss)):  # the GPU's check
            bad = sums.first_nonfinite(done)
            model.stop_for_nonfinite_loss(epoch, done - 1 if bad is None else bad,
                                          float(sums.batch_losses[bad]) if bad is not None else float("nan"))
        if model.diverged is not None:
            progress.abandon()
            break
        progress.training_done(sums.seen)
        if parallel is not None:
            parallel.sync_buffers(model)  # rank 0's moving averages to every rank, before validation
        logs = sums.means()
        if val is not None and (epoch + 1) % validation_freq == 0:
            logs.update({f"val_{k}": v for k, v in evaluate_loader(model, val, hooks).items()})
        logs["learning_rate"] = float(model.optimizer.current_learning_rate)
        progress.finish(logs)
        hooks.call("on_epoch_end", epoch, logs)
        if parallel is not None:
            model.stop_training = parallel.any(model.stop_training)
        if model.stop_training:
            break
    if model.diverged is None:  # use_ema: the weights become their averages (a diverged run keeps its last good)
        model.optimizer.finalize_variable_values(model.trainable_weights)
    hooks.call("on_train_end", logs)
    return history


def stop_for_nonfinite_loss(model, epoch, step, loss):
    """Record where the loss stopped being finite, stop training, and say so."""
    if model.diverged is not None:
        return
    model.diverged = {"epoch": epoch, "step": step, "loss": loss}
    model.stop_training = True
    print(f"fit: the loss became {loss} at epoch {epoch + 1}, batch {step + 1}: training stopped. The "
          "model's weights are no longer finite; nothing of this epoch was passed to the callbacks. "
          "Continue from the last good checkpoint, with a lower learning rate.", file=sys.stderr, flush=True)


# --- evaluation ------------------------------------------------------------------------------------
def evaluate_loader(model, loader, hooks=None):
    """{'loss': mean loss, metric: fraction right} over a Loader's batches, in inference mode;
    the loss weighted by the Loader's sample weights where it holds them."""
    if hooks is not None:
        hooks.call("on_test_begin", {})
    parallel = model.parallel
    if parallel is not None:  # each rank evaluates its shard; the sums are added up below
        if not isinstance(loader, Loader):
            raise ValueError("evaluate(): data-parallel evaluation shards a Loader's batches; a source of batches "
                             "cannot be shared out: give arrays or a Loader")
        loader = parallel.shard(loader)
    sums = Sums(_array_module(loader.device), model._result_names, 0,
                model._metric_finals)
    for step, (xb, yb, *weights) in enumerate(loader.batches(weights=loader.sample_weight is not None)):
        if hooks is not None and hooks.wants_test_batches:
            hooks.call("on_test_batch_begin", step, {})
        loss, counts = test_step(model, as_input(xb), yb, *weights)
        sums.add(step, loss, counts, batch_length(yb))
        if hooks is not None and hooks.wants_test_batches:
            hooks.call("on_test_batch_end", step, sums.means())
    if parallel is not None:
        parallel.reduce_sums(sums)
    result = sums.means()
    if hooks is not None:
        hooks.call("on_test_end", result)
    return result
