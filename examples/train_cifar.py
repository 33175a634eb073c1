"""Train a seed-tutorial model on CIFAR-10, with checkpoints, plots and a full report.

    python examples/train_cifar.py --device gpu                      # seed004_base, its defaults
    python examples/train_cifar.py --device cpu --model seed003_6layer --out runs/six
    python examples/train_cifar.py --resume --out runs/six           # continue a killed run
    python examples/train_cifar.py --device cpu --workers 2          # 2 processes (MPI ranks)
    python examples/train_cifar.py --device gpu --mix cutmix         # images and labels mixed in pairs

Defaults (optimizer, batch size, epochs, augmentation) are those of the tutorial the
model comes from (``minicnn.zoo.RECIPES``); any flag overrides them. Images are scaled
to [0, 1] as the tutorials did (``--normalize channel`` standardises each channel
instead). Validation after every epoch uses the test set, as the tutorials did, unless
``--val-split F`` holds out the last fraction F of the training images.

Written into --out (default runs/MODEL-TIMESTAMP), by minicnn.callbacks where one fits:
  checkpoint.npz   after every epoch, atomically: weights, batch-norm state, optimizer
                   state, epoch, settings and random state (what --resume reads); the one
                   before it is kept as checkpoint.previous.npz, which --resume falls back
                   to if the newest cannot be read (ModelCheckpoint)
  best_model.npz   the weights with the best validation accuracy so far (ModelCheckpoint;
                   with --ema, the averaged weights, which are also what is validated)
  model.npz        the final model (load with minicnn.models.load_model, or predict.py)
  history.json     loss, accuracy and learning rate per epoch, with seconds per epoch
  history.csv      the same, one row per epoch as it ends (CSVLogger: epoch from 0)
  tensorboard/     the same curves and the model's graph for ``tensorboard --logdir runs``
                   (callbacks.TensorBoard: train/ and validation/, epoch from 0; a resumed
                   run adds its files beside the first run's and the curves go on)
  accuracy.png, loss.png, confusion_matrix.png, predictions.png, results.json

--workers N trains data-parallel (minicnn.distributed): N processes ("ranks") each take
1/N of every batch and add their gradients up before each step, so the run is the same
run on the same global --batch-size. It re-starts itself under mpiexec; across machines,
start it yourself: ``mpiexec -n 8 -hosts a,b python examples/train_cifar.py ...`` (the
data and --out on every machine, --out on a shared file system). Only rank 0 prints and
writes files; --resume works as usual. Needs ``pip install "minicnn[mpi]"``.

A loss that turns NaN or infinite stops the run at that batch (TerminateOnNaN), writes
nothing for that epoch, and exits with status 3 naming the last good checkpoint:
continue it with --resume --out DIR --lr SMALLER.
"""
import argparse
import csv
import io
import json
import os
import re
import sys
import time


os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy loads OpenBLAS: see minicnn/__init__.py
import numpy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # run from a checkout too

import minicnn  # noqa: E402
from minicnn import backend, data, layers, metrics, mixed_precision, optimizers, plots, random as mrandom, zoo  # noqa: E402
from minicnn.datasets import cifar10  # noqa: E402
from minicnn.callbacks import (CSVLogger, Callback, ModelCheckpoint, SwapEMAWeights, TensorBoard,  # noqa: E402
                               TerminateOnNaN)
from minicnn.optimizers import ema  # noqa: E402
from minicnn.saving import ModelFileError, atomic_write, load_model_or_previous, previous_path  # noqa: E402
from minicnn.utils import to_categorical  # noqa: E402

# Settings that define a run: a resumed run must keep them (epochs may be raised).
RUN_SETTINGS = ("model", "epochs", "batch_size", "optimizer", "lr", "augment", "normalize",
                "seed", "limit", "val_split", "precision", "ema", "mix")


class RunError(Exception):
    """Something about the command line or the --out folder that the user must fix."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                   help="auto (default): the GPU when CuPy sees one, else the CPU")
    p.add_argument("--tf32", choices=["on", "off"], default="on",
                   help="on a GPU, float32 matrix products on its tensor cores in TF32, as Keras and "
                        "PyTorch's convolutions do by default (on); off: full float32. No effect on the CPU")
    p.add_argument("--precision", choices=["float32", "mixed_float16"], default=None,
                   help="mixed_float16: float16 arithmetic on float32 weights, with loss scaling "
                        "(docs/13-mixed-precision.md; for GPUs). Default: float32")
    p.add_argument("--model", choices=sorted(zoo.MODELS), default=None, help="default: seed004_base")
    p.add_argument("--epochs", type=int, default=None, help="default: the tutorial's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the tutorial's")
    p.add_argument("--optimizer", default=None,
                   choices=["adam", "adamw", "nadam", "adamax", "rmsprop", "adagrad", "adadelta", "lion", "lamb",
                            "adafactor", "muon", "sgd"],
                   help="default: the tutorial's optimizer with its settings; a name takes Keras's defaults "
                        "(muon: its output layer on AdamW, as Keras advises)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the optimizer's)")
    p.add_argument("--ema", type=float, default=None, metavar="MOMENTUM",
                   help="also keep a moving average of the weights (Keras's use_ema, this momentum, e.g. 0.999): "
                        "validate, keep the best and end with the averaged weights (default: none)")
    p.add_argument("--augment", choices=data.AUGMENTATIONS, default=None, help="default: the tutorial's")
    p.add_argument("--mix", choices=["mixup", "cutmix"], default=None,
                   help="also mix each training batch's images and labels in pairs (Keras 3's MixUp or CutMix, "
                        "their defaults; training labels one-hot, categorical_crossentropy) (default: none)")
    p.add_argument("--normalize", choices=["unit", "channel"], default=None,
                   help="unit: x/255 as the tutorials (default); channel: per-channel mean/std")
    p.add_argument("--val-split", type=float, default=None,
                   help="validate on the last fraction of the training images instead of the test set")
    p.add_argument("--data", default=None, help="cifar-10-batches-py folder or cifar-10-python.tar.gz "
                   "(default: $MINICNN_DATA, ~/.minicnn/datasets, ~/.keras/datasets, else download)")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--seed", type=int, default=None, help="default: 0")
    p.add_argument("--out", default=None, help="output folder (default: runs/MODEL-TIMESTAMP)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--workers", type=int, default=None,
                   help="train data-parallel on N processes (MPI ranks), each with its share of the cores "
                        "or its own GPU (default: 1, or as many as mpiexec started)")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "limit", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if args.lr is not None and args.lr <= 0:
        p.error(f"--lr must be positive, got {args.lr}")
    if args.ema is not None and not 0 < args.ema < 1:
        p.error(f"--ema is a momentum in (0, 1), e.g. 0.999; got {args.ema}")
    if args.val_split is not None and not 0 <= args.val_split < 1:
        p.error(f"--val-split must be in [0, 1), got {args.val_split}")
    if args.resume and not args.out:
        p.error("--resume needs --out DIR: the folder of the run to continue")
    return args


# --- settings: the tutorial's defaults, the command line, or a checkpoint's ----------------
def fresh_settings(args):
    name = args.model or "seed004_base"
    recipe = zoo.RECIPES[name]
    given = {k: getattr(args, k) for k in RUN_SETTINGS}
    defaults = {"model": name, "epochs": recipe.epochs, "batch_size": recipe.batch_size,
                "optimizer": "recipe", "lr": None, "augment": recipe.augment, "normalize": "unit",
                "seed": 0, "limit": None, "val_split": 0.0, "precision": "float32", "ema": None,
                "mix": None}
    return {k: defaults[k] if given[k] is None else given[k] for k in RUN_SETTINGS}


def resumed_settings(args, saved):
    """The checkpoint's settings; a flag that contradicts them is an error, except a
    larger --epochs, which extends the run, and --lr, which sets the learning rate from
    here on (the way to continue a run that diverged)."""
    saved = {"precision": "float32", "ema": None, "mix": None, **saved}  # runs started before those flags
    clashes = [f"--{k.replace('_', '-')} {getattr(args, k)} (the run has {saved[k]})" for k in RUN_SETTINGS
               if k not in ("epochs", "lr") and getattr(args, k) is not None and getattr(args, k) != saved[k]]
    if clashes:
        raise RunError("--resume continues the run as it was started; these flags differ: "
                       + "; ".join(clashes) + ". Leave them out, or start a new run with another --out")
    settings = dict(saved)
    for name in ("epochs", "lr"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    return settings


def build_model(settings):
    """The zoo model of the run, its layers made under the run's dtype policy (a resumed
    run's layers come back from the checkpoint with theirs)."""
    with mixed_precision.policy_scope(settings["precision"]):
        return zoo.build(settings["model"])[0]


def make_optimizer(settings, model):
    if settings["optimizer"] == "recipe":
        optimizer = zoo.RECIPES[settings["model"]].optimizer()
    elif settings["optimizer"] == "muon":  # the output layer on AdamW, as Keras's Muon advises
        output_layer = model.trainable_weights[-1].name.split("/")[0]
        optimizer = optimizers.Muon(exclude_layers=[f"^{re.escape(output_layer)}/"])
    else:
        optimizer = optimizers.get(settings["optimizer"])
    if settings["lr"] is not None:
        set_learning_rate(optimizer, settings["lr"], settings["model"])
    if settings.get("ema") is not None:  # Keras's use_ema, on the tutorial's optimizer
        ema.check_options(type(optimizer).__name__, True, settings["ema"], None)
        optimizer.use_ema, optimizer.ema_momentum = True, float(settings["ema"])
    return optimizer


def set_learning_rate(optimizer, lr, model):
    if optimizer.schedule is not None:
        raise RunError(f"--lr {lr}: {model}'s recipe sets its learning rate by a schedule "
                       f"({optimizer.schedule!r}); leave --lr out, or give --optimizer (adam, sgd, ...) to train with a fixed rate")
    optimizer.learning_rate = lr


# --- the data ---------------------------------------------------------------------------
def make_loaders(settings, device, data_path):
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(data_path)
    names = cifar10.load_class_names(data_path)
    if settings["limit"]:
        x_train, y_train = x_train[:settings["limit"]], y_train[:settings["limit"]]
    if settings["val_split"]:
        cut = int(len(x_train) * (1 - settings["val_split"]))
        if cut < 1 or cut == len(x_train):
            raise RunError(f"--val-split {settings['val_split']} leaves no training or no validation images")
        (x_train, x_val), (y_train, y_val) = numpy.split(x_train, [cut]), numpy.split(y_train, [cut])
    else:
        x_val, y_val = x_test, y_test
    if settings["normalize"] == "channel":
        mean, std = data.channel_stats(x_train)
    else:
        mean, std = numpy.zeros(3, numpy.float32), numpy.full(3, 255, numpy.float32)
    common = dict(mean=mean, std=std, device=device)
    mix = {None: None, "mixup": layers.MixUp, "cutmix": layers.CutMix}[settings.get("mix")]
    if mix is not None:  # mixed labels are shares of two classes: one-hot rows, mixed in pairs
        y_train = to_categorical(y_train, cifar10.NUM_CLASSES)
    train = data.Loader(x_train, y_train, settings["batch_size"], shuffle=True, seed=settings["seed"],
                        augment=data.augmentation(settings["augment"]), batch_transform=mix and mix(), **common)
    val = data.Loader(x_val, y_val, 500, shuffle=False, **common)
    test = val if not settings["val_split"] else data.Loader(x_test, y_test, 500, shuffle=False, **common)
    preprocessing = {"mean": mean.tolist(), "std": std.tolist()}
    return train, val, test, x_test, names, preprocessing


# --- what gets written each epoch: minicnn.callbacks, plus the run record --resume reads ----
class RunRecord(Callback):
    """The part of a run that is train_cifar's own: the history with seconds per epoch
    (history.json) and the record --resume reads from the checkpoint (settings, epochs
    done, history, best epoch, random state)."""

    def __init__(self, out, settings, history, best):
        super().__init__()
        self.out, self.settings = out, settings
        self.history, self.best = history, best  # history: {key: [values]}, with 'epoch', 'seconds'
        self.completed = len(history.get("epoch", []))

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.history.setdefault("epoch", []).append(epoch + 1)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        self.history.setdefault("seconds", []).append(time.perf_counter() - self.start)
        self.completed = epoch + 1
        score = logs.get("val_accuracy")
        if score is not None and (self.best is None or score > self.best["val_accuracy"]):
            self.best = {"epoch": epoch + 1, "val_accuracy": score}
        write_history(self.out, self.history)

    def record(self):
        return {"settings": self.settings, "completed_epochs": self.completed, "history": self.history,
                "best": self.best, "random_state": mrandom.get_state()}


def run_callbacks(out, settings, meta, history, best, resumed):
    """The callbacks of a run, in the order they act at the end of an epoch: the record,
    the best model, the checkpoint (the last two kept; written before the logs, since its
    epoch count is what --resume trusts and an epoch logged must be one it resumes after),
    the CSV history and TensorBoard's curves; and a stop at the first NaN loss."""
    record = RunRecord(out, settings, history, best)
    best_model = ModelCheckpoint(os.path.join(out, "best_model.npz"), monitor="val_accuracy", mode="max",
                                 save_best_only=True, include_optimizer=False,
                                 initial_value_threshold=best["val_accuracy"] if best else None,
                                 metadata=lambda epoch, logs: {**meta, "epoch": epoch + 1})
    checkpoint = ResumeCheckpoint(os.path.join(out, "checkpoint.npz"), keep_previous=True,
                                  metadata=lambda epoch, logs: {**meta, "run": record.record()})
    csv_log = CSVLogger(os.path.join(out, "history.csv"), append=resumed)
    # --ema: the averaged weights in place from validation to the next epoch, so val_accuracy,
    # the best model and the history are theirs (the checkpoint keeps the raw ones)
    averaged = [SwapEMAWeights(swap_on_epoch=True)] if settings.get("ema") is not None else []
    curves = RunCurves(os.path.join(out, "tensorboard"), history)
    return record, [*averaged, record, best_model, checkpoint, csv_log, curves, TerminateOnNaN()]


class ResumeCheckpoint(ModelCheckpoint):
    """checkpoint.npz: what --resume goes on from, so the raw weights (with their averages
    beside them under --ema), even while SwapEMAWeights holds the averages in the model."""

    def _save(self, epoch, path, logs):
        with ema.unswapped(self.model.optimizer):
            return super()._save(epoch, path, logs)


class RunCurves(TensorBoard):
    """TensorBoard's curves (tensorboard/). A resumed run first writes the checkpoint's last
    epoch again: a run killed between its checkpoint and its curves would miss that epoch
    otherwise, and written twice it is the same point."""

    def __init__(self, log_dir, history):
        super().__init__(log_dir)
        done = history.get("epoch", [])
        self.last = (done[-1] - 1, {k: v[-1] for k, v in history.items() if k not in ("epoch", "seconds")}) \
            if done else None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.last is not None:
            self.on_epoch_end(*self.last)


def write_history(out, history):
    """history.json: every finished epoch's logs, with seconds per epoch."""
    text = json.dumps(history, indent=1)
    atomic_write(os.path.join(out, "history.json"), lambda f: f.write(text.encode()))


def rewrite_csv(out, history):
    """history.csv as CSVLogger writes it (epoch from 0, columns sorted), from the history a
    checkpoint holds: on a resume, an epoch that ran after that checkpoint (before a kill)
    is dropped, so it is not listed twice when it runs again."""
    keys = sorted(k for k in history if k not in ("epoch", "seconds"))
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["epoch", *keys])
    for i, epoch in enumerate(history.get("epoch", [])):
        writer.writerow([epoch - 1, *(history[k][i] for k in keys)])
    atomic_write(os.path.join(out, "history.csv"), lambda f: f.write(table.getvalue().encode()))


# --- the run --------------------------------------------------------------------------------
def prepare_run(args):
    """(settings, model or None, resume state) after checking --out and --resume."""
    out = args.out
    checkpoint = os.path.join(out, "checkpoint.npz") if out else None
    if args.resume:
        if not os.path.isfile(checkpoint) and not os.path.isfile(previous_path(checkpoint)):
            raise RunError(f"--resume: {out} holds no checkpoint.npz, so there is nothing to continue; "
                           "run without --resume to start it")
        model, source = load_model_or_previous(checkpoint, device=args.device,
                                               say=lambda text: print(text, file=sys.stderr, flush=True))
        run = model.metadata.get("run")
        if not isinstance(run, dict) or "settings" not in run:
            raise RunError(f"{source}: no run record in it; was it written by train_cifar.py?")
        settings = resumed_settings(args, run["settings"])
        if settings["epochs"] < run["completed_epochs"]:
            raise RunError(f"--epochs {settings['epochs']}: the run already completed "
                           f"{run['completed_epochs']} epochs")
        if args.lr is not None and (model.optimizer.schedule is not None or args.lr != model.optimizer.learning_rate):
            before = model.optimizer.learning_rate
            set_learning_rate(model.optimizer, args.lr, settings["model"])
            print(f"Learning rate changed from {before} to {args.lr}", flush=True)
        return settings, model, run
    if out and os.path.exists(checkpoint):
        raise RunError(f"{out} already holds a run (checkpoint.npz). Add --resume to continue it, "
                       "or choose another --out; nothing was overwritten")
    return fresh_settings(args), None, None


def start_ranks(args, argv):
    """(communicator or None, exit status or None): with --workers N > 1 outside MPI, run
    this script again as N ranks under mpiexec and return its exit status; under mpiexec,
    this process's Communicator, pinned to its cores (or GPU); else (None, None)."""
    from minicnn import distributed
    started = distributed.world_size_from_environment()
    if started == 1:
        if (args.workers or 1) == 1:
            return None, None
        try:
            return None, distributed.spawn(args.workers, os.path.abspath(__file__),
                                           sys.argv[1:] if argv is None else list(map(str, argv)))
        except RuntimeError as error:  # no mpi4py or no mpiexec: the message says what to install
            raise RunError(str(error)) from None
    if args.workers is not None and args.workers != started:
        raise RunError(f"--workers {args.workers}, but mpiexec started {started} processes; give one number")
    try:
        comm = distributed.Communicator()
    except ImportError as error:
        raise RunError(str(error)) from None
    if comm.rank != 0:  # only rank 0 prints; errors still reach stderr from every rank
        sys.stdout = open(os.devnull, "w")
    try:
        device, _ = backend.resolve_device(args.device)  # 'auto' too: a GPU machine gives each rank a GPU
    except RuntimeError as error:
        raise RunError(str(error)) from None
    if device == "gpu":
        distributed.use_my_gpu(comm)
    else:
        distributed.use_my_cores(comm)
    return comm, None


def main(argv=None):
    args = parse_args(argv)
    comm, status = start_ranks(args, argv)
    if status is not None:
        return status
    root = comm is None or comm.is_root
    try:
        args.device, why = backend.resolve_device(args.device)
        minicnn.set_device(args.device)
    except RuntimeError as error:  # no CuPy, or no GPU: the message says which and what to do
        raise RunError(str(error)) from None
    if args.device == "gpu":
        backend.set_tf32(args.tf32 == "on")
        why += "; float32 products in TF32 (--tf32 off: full float32)" if args.tf32 == "on" else "; TF32 off"
    print(why, flush=True)
    settings, model, run = prepare_run(args)
    if settings["precision"] == "mixed_float16" and args.device == "cpu":
        print("Note: mixed_float16 on the CPU is slower than float32 (NumPy's float16 arithmetic is "
              "slow); it is meant for GPUs", flush=True)
    out = args.out or os.path.join("runs", f"{settings['model']}-{time.strftime('%Y%m%d-%H%M%S')}")
    if comm is not None:
        out = comm.broadcast_object(out)  # rank 0's clock names the folder
    os.makedirs(out, exist_ok=True)
    minicnn.set_seed(settings["seed"])
    train, val, test, test_images, names, preprocessing = make_loaders(settings, args.device, args.data)
    meta = {"preprocessing": preprocessing, "class_names": names, "model": settings["model"]}

    if model is None:
        model = build_model(settings)
        # --mix: soft training labels, so the cross-entropy that takes them (and integer ones for validation)
        loss = "categorical_crossentropy" if settings.get("mix") else "sparse_categorical_crossentropy"
        model.compile(optimizer=make_optimizer(settings, model), loss=loss,
                      metrics=["accuracy"])
        history, best, done = {}, None, 0
    else:
        mrandom.set_state(run["random_state"])
        history, best, done = run["history"], run["best"], run["completed_epochs"]
        rewrite_csv(out, history)  # the checkpoint's epochs; CSVLogger appends the next ones
        print(f"Resuming {out} after epoch {done} of {settings['epochs']}")
    model.summary()
    workers = "" if comm is None else f", {comm.size} workers of {settings['batch_size'] // comm.size}+ images"
    print(f"Training {settings['model']} on {train.num_samples} images for {settings['epochs']} epochs "
          f"(batch {settings['batch_size']}{workers}, {settings['precision']}, {type(model.optimizer).__name__}"
          f"{'' if settings.get('ema') is None else ', weights averaged (ema %g)' % settings['ema']}, augment "
          f"{settings['augment']}{'' if not settings.get('mix') else ' + ' + settings['mix']}, {args.device}); "
          f"writing into {out}", flush=True)
    record, callbacks = run_callbacks(out, settings, meta, history, best, resumed=run is not None)
    if comm is not None:
        from minicnn import distributed
        distributed.data_parallel(model, comm)
        if not root:  # rank 0 alone writes; every rank stops at a NaN loss (they share it) and validates
            callbacks = [c for c in callbacks if isinstance(c, (TerminateOnNaN, SwapEMAWeights))]  # alike
    try:
        model.fit(train, epochs=settings["epochs"], initial_epoch=done, validation_data=val,
                  seed=settings["seed"], callbacks=callbacks)
    except KeyboardInterrupt:
        print(f"\nInterrupted. The last finished epoch is saved: continue with "
              f"--resume --out {out}", file=sys.stderr)
        return 130
    if model.diverged is not None:
        return diverged(model, out, record) if root else 3
    if not root:
        return 0
    model.save(os.path.join(out, "model.npz"), include_optimizer=False, metadata=meta)
    report(model, settings, args.device, record.history, test, test_images, names, out)
    return 0


def diverged(model, out, record):
    """Exit status 3, after saying where the run broke and what is left of it."""
    where = model.diverged
    if record.completed:
        lr = model.optimizer.learning_rate
        advice = (f"The last good checkpoint is {os.path.join(out, 'checkpoint.npz')} (after epoch "
                  f"{record.completed}); continue from it with a lower learning rate: "
                  f"--resume --out {out} --lr {lr / 10:g}")
    else:
        advice = "No epoch finished, so there is no checkpoint: start again with a lower --lr"
    print(f"error: the run diverged: the loss became {where['loss']} at epoch {where['epoch'] + 1}, "
          f"batch {where['step'] + 1}. Nothing was written for that epoch. {advice}", file=sys.stderr, flush=True)
    return 3


def report(model, settings, device, history, test, test_images, names, out):
    """Test accuracy, per-class accuracy and the confusion matrix, printed and plotted."""
    scores = backend.to_numpy(model.predict(test))  # a device Loader predicts on the device
    predicted, truth = scores.argmax(axis=1), test.labels()
    matrix = metrics.confusion_matrix(truth, predicted, len(names))
    accuracy = float((predicted == truth).mean())
    per_class = metrics.per_class_accuracy(matrix)
    seconds = history.get("seconds") or [float("nan")]
    print(f"\nTest accuracy: {accuracy:.4f}  ({settings['model']}, {settings['epochs']} epochs, "
          f"{device}, {numpy.mean(seconds):.1f} s/epoch)")
    published = zoo.RECIPES[settings["model"]].published
    if published is not None:
        print(f"Published by its tutorial: {published:.4f}")
    scaling = loss_scaling(model.optimizer)
    if scaling is not None:
        print(f"Loss scale at the end: {scaling['scale']:g}; steps skipped for an overflowed "
              f"float16 gradient: {scaling['skipped_steps']}")
    print("Accuracy per class:")
    for name, value in zip(names, per_class):
        print(f"  {name:<11}{value:.3f}")
    print("Confusion matrix (rows: true class, columns: predicted):")
    print(metrics.format_confusion_matrix(matrix, names))
    results = {"model": settings["model"], "epochs": settings["epochs"], "device": device,
               "test_accuracy": accuracy, "seconds_per_epoch": float(numpy.mean(seconds)),
               "tf32": device == "gpu" and backend.tf32_enabled(),  # float32 products rounded to TF32
               "precision": settings.get("precision", "float32"),
               "published_accuracy": published, "settings": settings, "loss_scale": scaling,
               "per_class_accuracy": dict(zip(names, map(float, per_class))),
               "confusion_matrix": matrix.tolist()}
    text = json.dumps(results, indent=1)
    atomic_write(os.path.join(out, "results.json"), lambda f: f.write(text.encode()))
    try:
        plots.learning_curves(history, os.path.join(out, "accuracy.png"), "accuracy")
        plots.learning_curves(history, os.path.join(out, "loss.png"), "loss")
        plots.confusion_matrix(matrix, names, os.path.join(out, "confusion_matrix.png"))
        shown = min(32, len(test_images))
        plots.prediction_grid(test_images[:shown], truth[:shown], predicted[:shown], names,
                              os.path.join(out, "predictions.png"))
    except ImportError as error:
        print(f"No plots: {error}", file=sys.stderr)
    print(f"Wrote {out}: model.npz, best_model.npz, checkpoint.npz, history.json/csv, results.json, "
          "accuracy.png, loss.png, confusion_matrix.png, predictions.png, tensorboard/")


def loss_scaling(optimizer):
    """{'scale', 'skipped_steps'} of a mixed_float16 run's LossScaleOptimizer, else None."""
    if not isinstance(optimizer, optimizers.LossScaleOptimizer):
        return None
    return {"scale": optimizer.scale, "skipped_steps": optimizer.skipped_steps}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RunError, cifar10.DataError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
