"""CIFAR-10 to 94% as fast as we can: airbench94's recipe on minicnn.

    python examples/speedrun.py --device gpu --runs 5
    python examples/speedrun.py --device cpu

Keller Jordan's airbench94 (github.com/KellerJordan/cifar10-airbench, legacy/airbench94.py)
reaches 94% test accuracy in 3.8 s on an A100 with PyTorch. This file re-implements the
recipe on our own engine; benchmarks/speedrun_torch.py is the same recipe in PyTorch,
for a side-by-side comparison on the same data. What makes it fast:

- a small net (about 2 M weights) whose first layer is frozen and set from the data:
  it whitens 2x2 patches, so training starts from decorrelated inputs;
- convs that start as identity maps (Dirac) and batch-norm that only learns a shift,
  so a very high learning rate is stable; the logits are scaled down by 9;
- Nesterov SGD on the summed, label-smoothed loss, a short warm-up then linear decay,
  and "lookahead": every 5 steps the weights are pulled toward their running average,
  which the run ends on;
- augmentation that costs nothing: 2-pixel random translations, and every image
  mirrored on alternate epochs instead of at random;
- test-time augmentation: each test image is classified 6 times (mirrored, moved by
  a pixel) and the logits averaged.

Timing follows airbench: the data sit on the device already (loading is reported
apart), the clock covers the whitening set-up and training (augmentation included),
and the evaluation is timed separately.
"""
import argparse
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy loads OpenBLAS: see minicnn/__init__.py

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minicnn  # noqa: E402
from minicnn import backend, initializers, losses, mixed_precision, optimizers  # noqa: E402
from minicnn.optimizers import schedules  # noqa: E402
from minicnn.datasets import cifar10  # noqa: E402
from minicnn.layers import (Activation, BatchNormalization, Conv2D, Dense, Flatten,  # noqa: E402
                            MaxPooling2D, Rescaling)
from minicnn.models import Sequential  # noqa: E402
from minicnn.tta import tta_logits  # noqa: E402

HYP = {
    "epochs": 9.9,  # 48 steps each at batch 1024: 476 steps
    "batch_size": 1024,
    "lr": 11.5,  # per 1024 examples; see learning_rates()
    "momentum": 0.85,
    "weight_decay": 0.0153,  # per 1024 examples
    "bias_scaler": 64.0,  # batch-norm shifts learn 64x faster (their weight decay does not grow)
    "label_smoothing": 0.2,
    "whiten_bias_epochs": 3,  # the whitening layer's bias trains for these epochs, then freezes
    "translate": 2,  # pixels
    "widths": (64, 256, 256),
    "batchnorm_momentum": 0.6,
    "scaling_factor": 1 / 9,
    "tta_level": 2,
    "whiten_images": 5000,  # training images the whitening covariance is taken from
    "precision": "float32",  # or "mixed_float16": float16 arithmetic, float32 weights (--precision)
    "loss_scale": 2.0 ** 11,  # mixed_float16's first loss scale: see make_optimizer()
}
MEAN = numpy.array([0.4914, 0.4822, 0.4465], numpy.float32)
STD = numpy.array([0.2470, 0.2435, 0.2616], numpy.float32)


# --- the network ------------------------------------------------------------------------
def conv_block(width, momentum):
    """conv -> pool -> BN -> GELU -> conv -> BN -> GELU; BN with a frozen scale of 1."""
    def bn():
        return BatchNormalization(momentum=momentum, epsilon=1e-12, scale=False)

    def conv():
        return Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer="dirac")
    return [conv(), MaxPooling2D(2), bn(), Activation("gelu"), conv(), bn(), Activation("gelu")]


def make_net(hyp=HYP):
    """(N, 32, 32, 3) -> (N, 10) logits. The first layer's kernel is set later by whitening."""
    whiten_width = 2 * 3 * 2 * 2
    layers = [Conv2D(whiten_width, 2, input_shape=(32, 32, 3), kernel_initializer="zeros"),
              Activation("gelu")]
    for width in hyp["widths"]:
        layers += conv_block(width, hyp["batchnorm_momentum"])
    layers += [MaxPooling2D(3), Flatten(), Dense(10, use_bias=False, kernel_initializer="torch_default"),
               Rescaling(hyp["scaling_factor"])]
    return Sequential(layers, name="airbench94")


# --- data on the device ---------------------------------------------------------------------
def normalize(images_uint8):
    """uint8 (N, 32, 32, 3) -> float32 with each channel's CIFAR-10 mean and std taken out."""
    xp = backend.get_array_module(images_uint8)
    mean, std = xp.asarray(MEAN), xp.asarray(STD)
    return (images_uint8.astype(numpy.float32) * numpy.float32(1 / 255) - mean) / std


def random_translate(padded, rng, size, pad):
    """A random size x size crop of each padded image: a shift of -pad..pad pixels
    per axis. One copy per shift, of the images that drew it (the loop has (2 pad + 1)^2
    steps, none over pixels)."""
    xp = backend.get_array_module(padded)
    n = len(padded)
    shifts = (rng.random((2, n), dtype=numpy.float32) * (2 * pad + 1)).astype(numpy.int32)
    shifts = xp.minimum(shifts, 2 * pad)  # a draw of exactly 1.0 after rounding
    out = xp.empty((n, size, size, padded.shape[3]), padded.dtype)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            which = xp.nonzero((shifts[0] == dy) & (shifts[1] == dx))[0]
            out[which] = padded[which, dy:dy + size, dx:dx + size]
    return out


class TrainLoader:
    """Batches of augmented training images, made on the device (airbench's CifarLoader).

    Epoch 0 mirrors a random half of the images once; odd epochs then mirror *every*
    image, so each one is seen both ways on consecutive epochs ("alternating flip").
    Each epoch draws new translations and a new order; the last partial batch is dropped.
    """

    def __init__(self, images, labels, batch_size, translate, seed):
        xp = backend.get_array_module(images)
        self.labels, self.batch_size, self.translate = labels, batch_size, translate
        self.rng = backend.default_rng(seed, xp)
        self.size = images.shape[1]
        flip = self.rng.random(len(images), dtype=numpy.float32) < 0.5
        images = xp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)
        p = translate
        self.padded = xp.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect") if p else images
        self.epoch = 0

    def __len__(self):
        return len(self.labels) // self.batch_size

    def __iter__(self):
        xp = backend.get_array_module(self.padded)
        images = (random_translate(self.padded, self.rng, self.size, self.translate)
                  if self.translate else self.padded)
        if self.epoch % 2 == 1:
            images = images[:, :, ::-1, :]
        self.epoch += 1
        order = xp.argsort(self.rng.random(len(images), dtype=numpy.float32))  # a shuffle on the device
        for i in range(len(self)):
            take = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield images[take], self.labels[take]


# --- the schedule ----------------------------------------------------------------------------
def learning_rates(hyp=HYP):
    """(lr, l2 for other weights, l2 for batch-norm shifts), airbench's constants.

    Nesterov momentum m makes steady steps about 1 + 1/(1-m) times the gradient, so the
    rate is divided by that; the weight decay is given per 1024 examples. The decay
    joins the gradient (PyTorch's SGD weight_decay, our l2), scaled so that lr * l2 is
    the same for both groups: the shifts' 64x learning rate does not decay them faster.
    """
    kilostep = 1024 * (1 + 1 / (1 - hyp["momentum"]))
    lr = hyp["lr"] / kilostep
    decay = hyp["weight_decay"] * hyp["batch_size"] / kilostep
    return lr, decay / lr, decay / (lr * hyp["bias_scaler"])


def lr_factor(step, total):
    """Warm-up from 0.2x to 1x over the first 23% of steps, then linear decay to 0.07x."""
    warmup = int(total * 0.23)
    if step < warmup:
        frac = step / warmup
        return 0.2 * (1 - frac) + frac
    frac = (step - warmup) / (total - warmup)
    return (1 - frac) + 0.07 * frac


class WarmupLinearDecay(schedules.LearningRateSchedule):
    """airbench's learning rate as a schedule: peak * lr_factor(step, total_steps)."""

    def __init__(self, peak, total_steps):
        self.peak, self.total_steps = peak, total_steps

    def __call__(self, step):
        return self.peak * lr_factor(step, self.total_steps)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps}


def make_optimizer(sgd, hyp=HYP):
    """The optimizer to compile with: ``sgd`` itself in float32; under mixed_float16, ``sgd``
    inside a LossScaleOptimizer starting from hyp["loss_scale"], 2^11, not Keras's 2^15.

    benchmarks/gradient_range.py measured the net's first batch: the largest weight
    gradient is 16 (the dense kernel; the summed loss makes gradients 1024 times a mean
    loss's), so 2^15 would overflow float16 (65504) and halve 4 times, each a skipped step
    of only 476; at scale 1 (airbench's pure float16) up to a third of a layer's input
    gradients fall below float16's 6e-8 and most are subnormal. 2^11 leaves 2x headroom
    at the top and lifts the medians (1e-7 to 3e-5) well clear of the bottom."""
    if hyp["precision"] == "mixed_float16":
        return optimizers.LossScaleOptimizer(sgd, initial_scale=hyp["loss_scale"])
    return sgd


def loss_scale_note(optimizer):
    """'  loss scale 2048, 1 step skipped' under mixed_float16 (the steps skipped so far for
    an overflowed float16 gradient); '' in float32."""
    if not isinstance(optimizer, optimizers.LossScaleOptimizer):
        return ""
    skipped = optimizer.skipped_steps
    return f"  loss scale {optimizer.scale:g}, {skipped} step{'' if skipped == 1 else 's'} skipped"


def lookahead_decay(step, total):
    """How strongly the weights are pulled to their average: 0.95^5 (step/total)^3."""
    return 0.95 ** 5 * (step / total) ** 3


# --- one run ---------------------------------------------------------------------------------
def train(x_train, y_train, x_test, y_test, seed, hyp=HYP, verbose=True):
    """x_* normalised float32 images and y_* int labels, on the device. Returns
    (test accuracy with TTA, training seconds, evaluation seconds)."""
    xp = backend.get_array_module(x_train)
    device = backend.device_of(x_train)
    minicnn.set_seed(seed)
    with mixed_precision.policy_scope(hyp["precision"]), minicnn.device(device):  # layers take dtypes when made
        model = make_net(hyp)
        model.build((32, 32, 3), device)
    stem = model.layers[0]
    stem.kernel.requires_grad = False  # frozen: whitening, set below

    loader = TrainLoader(x_train, y_train, hyp["batch_size"], hyp["translate"], seed)
    total_steps = math.ceil(len(loader) * hyp["epochs"])
    lr, l2, l2_shifts = learning_rates(hyp)
    shifts = [layer.beta for layer in model.layers if isinstance(layer, BatchNormalization)]
    others = [w for w in model.trainable_weights if not any(w is s for s in shifts)]
    optimizer = optimizers.SGD(WarmupLinearDecay(lr, total_steps), momentum=hyp["momentum"], nesterov=True)
    model.compile(make_optimizer(optimizer, hyp), losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=hyp["label_smoothing"], reduction="sum"))
    optimizer.build([{"params": shifts, "lr_scale": hyp["bias_scaler"], "l2": l2_shifts},
                     {"params": others, "l2": l2}])
    step = 0
    backend.synchronize()
    start = time.perf_counter()
    whitening = initializers.patch_whitening(x_train[:hyp["whiten_images"]], 2)  # host, 2x2x3x24
    stem.kernel.data[...] = backend.to_device(whitening, device)
    lookahead = optimizers.Lookahead(model.weights)  # the average starts from the whitened net
    for epoch in range(math.ceil(hyp["epochs"])):
        stem.bias.requires_grad = epoch < hyp["whiten_bias_epochs"]
        loss_sum, correct, seen = xp.zeros((), numpy.float32), xp.zeros((), numpy.int64), 0
        for images, labels in loader:
            loss, right = model.train_on_batch(images, labels)
            loss_sum += loss
            correct += right
            seen += len(labels)
            step += 1
            if step % 5 == 0:
                lookahead.update(lookahead_decay(step, total_steps))
            if step >= total_steps:
                lookahead.update(1.0)  # end on the average
                break
        if verbose:  # reading the sums syncs the device: outside the step, once per epoch
            backend.synchronize()
            print(f"  epoch {epoch + 1:2d}  step {step:3d}  loss {float(loss_sum) / seen:.4f}  "
                  f"train acc {int(correct) / seen:.4f}  {time.perf_counter() - start:7.1f} s"
                  + loss_scale_note(model.optimizer), flush=True)
    backend.synchronize()
    train_seconds = time.perf_counter() - start

    start = time.perf_counter()
    logits = tta_logits(model, x_test, hyp["tta_level"])
    accuracy = float((logits.argmax(axis=1) == y_test).mean())
    eval_seconds = time.perf_counter() - start
    return accuracy, train_seconds, eval_seconds


def load(data_path, device, limit=None):
    """CIFAR-10 onto the device, normalised: (x_train, y_train, x_test, y_test, seconds)."""
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(data_path, download=False)
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    arrays = [normalize(backend.to_device(x_train, device)), backend.to_device(y_train[:, 0].astype(numpy.int64), device),
              normalize(backend.to_device(x_test, device)), backend.to_device(y_test[:, 0].astype(numpy.int64), device)]
    backend.synchronize()
    return (*arrays, time.perf_counter() - start)


def make_parser(description):
    """The command line, shared with benchmarks/speedrun_torch.py."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                   help="auto (default): the GPU when there is one, else the CPU")
    p.add_argument("--runs", type=int, default=1, help="independent runs (seeds 0..N-1): mean and spread")
    p.add_argument("--seed", type=int, default=0, help="the first run's seed")
    p.add_argument("--data", default=None, help="cifar-10-batches-py folder or tarball "
                   "(default: $MINICNN_DATA, ~/.minicnn/datasets, ~/.keras/datasets)")
    p.add_argument("--epochs", type=float, default=HYP["epochs"], help="for a quick try; 9.9 is the recipe")
    p.add_argument("--limit", type=int, default=None, help="use the first N train and test images (smoke test)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument("--no-warmup", action="store_true",
                   help="on a GPU, skip the untimed warm-up run (then run 1 pays for kernel compilation)")
    return p


def warm_up(train_fn, x_train, y_train, x_test, y_test, hyp, seed):
    """Seconds of one short, untimed run before the timed ones, as airbench does: on a GPU
    the first run pays one-time costs (CuPy compiles each kernel on first use, cuDNN picks
    its algorithms) that would otherwise be counted as training. Two batches for two
    epochs, and a test batch of the size the evaluation uses, so every kernel and shape
    the timed runs meet has been seen once."""
    n = 2 * hyp["batch_size"]
    start = time.perf_counter()
    train_fn(x_train[:n], y_train[:n], x_test[:2000], y_test[:2000], seed, {**hyp, "epochs": 2}, verbose=False)
    return time.perf_counter() - start


def check_args(p, args):
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if args.epochs <= 0:
        p.error("--epochs must be positive")
    if args.limit is not None and args.limit < HYP["batch_size"]:  # else no step would run
        p.error(f"--limit must be at least one batch, {HYP['batch_size']} images; got {args.limit}")
    return args


def parse_args(argv):
    p = make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--tf32", choices=["on", "off"], default="on",
                   help="on a GPU, float32 matrix products on its tensor cores in TF32 (on; the PyTorch "
                        "reference computes in float16); off: full float32. No effect on the CPU")
    p.add_argument("--precision", choices=["float32", "mixed_float16"], default=HYP["precision"],
                   help="float32 (default), or mixed_float16: float16 arithmetic on float32 weights with "
                        "loss scaling, batch-norm and the loss in float32 (docs/13-mixed-precision.md), as "
                        "the PyTorch reference computes on a GPU. For GPUs: slower on the CPU")
    return check_args(p, p.parse_args(argv))


def report(run, result):
    accuracy, train_seconds, eval_seconds = result
    print(f"run {run + 1}: test accuracy {accuracy:.4f} (TTA)  training {train_seconds:.1f} s  "
          f"evaluation {eval_seconds:.1f} s", flush=True)


def summarize(results, where, load_seconds):
    """The line the issue asks for: accuracy mean and spread over the runs, and time."""
    accuracies = numpy.array([r[0] for r in results])
    seconds = numpy.array([r[1] for r in results])
    print(f"{len(results)} run(s) on {where}: accuracy mean {accuracies.mean():.4f}, "
          f"std {accuracies.std(ddof=1) if len(results) > 1 else 0:.4f}, min {accuracies.min():.4f}; "
          f"training seconds mean {seconds.mean():.1f}, data load {load_seconds:.1f} s")


def main(argv=None):
    args = parse_args(argv)
    try:
        args.device, why = backend.resolve_device(args.device)
        minicnn.set_device(args.device)
    except RuntimeError as error:  # no GPU here: say so and how to run on the CPU
        sys.exit(f"speedrun: {error}")
    if args.device == "gpu":
        backend.set_tf32(args.tf32 == "on")
        why += f"; TF32 {args.tf32}"
    hyp = {**HYP, "epochs": args.epochs, "precision": args.precision}
    if args.precision != "float32":
        why += f"; {args.precision}" + (" (slower than float32 on the CPU)" if args.device == "cpu" else "")
    print(why, flush=True)
    x_train, y_train, x_test, y_test, load_seconds = load(args.data, args.device, args.limit)
    print(f"data on {args.device} in {load_seconds:.1f} s: {len(x_train)} training, "
          f"{len(x_test)} test images")
    if args.device == "gpu" and not args.no_warmup:
        seconds = warm_up(train, x_train, y_train, x_test, y_test, hyp, args.seed)
        print(f"warm-up run (kernel compilation, first allocations; not timed): {seconds:.1f} s", flush=True)
    results = []
    for run in range(args.runs):
        seed = args.seed + run
        print(f"run {run + 1}/{args.runs} (seed {seed})", flush=True)
        results.append(train(x_train, y_train, x_test, y_test, seed, hyp, verbose=not args.quiet))
        report(run, results[-1])
    where = f"{args.device}, TF32 {args.tf32}" if args.device == "gpu" else args.device
    summarize(results, where + (f", {args.precision}" if args.precision != "float32" else ""), load_seconds)
    return results


if __name__ == "__main__":
    main()
