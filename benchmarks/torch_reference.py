"""The same zoo model trained in PyTorch on the same CIFAR-10 files: the reference a
minicnn accuracy is compared with. PyTorch is optional; minicnn never imports it.

    python benchmarks/torch_reference.py --model seed004_base --data DIR [--epochs 2] [--seed 0]

The network is translated layer by layer from the minicnn model's own config, with
Keras's initialisers (Glorot-uniform kernels, zero biases), Keras's Adam epsilon (1e-7),
Keras-2 SGD decay, batch-norm momentum and epsilon, and max-norm constraints, so the
only differences left are the engine and the random draws. Images are scaled to [0, 1]
as the tutorials did; validation is on the test set, or with ``--val-split F`` (as
train_cifar.py) on the last fraction F of the training images, which are then not trained
on, and the test set is evaluated once at the end; augmentation, where the recipe has
it, is minicnn.data's (the input pipeline, not the engine). Prints one JSON line per epoch.

``--checkpoint PATH`` saves the run after every epoch (weights, optimizer, schedule and
random states, the lines printed so far); run the same command again after an interruption
and it goes on from the last finished epoch, printing the earlier epochs' lines first, and
ends where an uninterrupted run ends.

``--draws minicnn`` takes every random draw from minicnn instead of PyTorch: the initial
weights ``examples/train_cifar.py --seed S`` starts from, its batch order (and
augmentation), and the dropout masks of its Dropout layers' streams, batch for batch. The
two engines then train the same run, and what is left between their results is the
engines' arithmetic (float32 rounding), not the luck of the draws (issue 17).

``--draws`` also takes any of those three draws alone, or a comma list of them
(``init``, ``order``, ``masks``), PyTorch drawing the rest as it does on its own. As
PyTorch's own draws come from three separate streams (the initial weights from the
global generator after ``torch.manual_seed(S)``, the batch order from its own generator,
the dropout masks from the global one after the weights), a run with ``--draws order``
differs from PyTorch's own run of the same seed in its batch order alone, and likewise for
the others: what one kind of draw does to a run is seen seed by seed.
"""
import argparse
import json
import os
import sys
import time


os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy loads OpenBLAS: see minicnn/__init__.py
import numpy
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import minicnn  # noqa: E402
from minicnn import data, zoo  # noqa: E402
from minicnn.datasets import cifar10  # noqa: E402
from minicnn.functions import dropout as dropout_fn  # noqa: E402


class NHWCtoNCHW(nn.Module):
    def forward(self, x):
        return x.permute(0, 3, 1, 2)


class FlattenNHWC(nn.Module):
    """Flatten in channels-last order, as Keras (and minicnn) do."""
    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1)


class DropoutFrom(nn.Module):
    """nn.Dropout whose masks are minicnn's: drawn from a minicnn Dropout layer's own
    stream (reseeded per epoch by ``model.reseed``), one draw per call in training mode, of
    the layer's NHWC shape, and laid onto this NCHW x. x: (N, C, H, W) or (N, D)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        if not self.training or self.layer.rate == 0:
            return x
        channels_last = tuple(x.permute(0, 2, 3, 1).shape) if x.dim() == 4 else tuple(x.shape)
        rng = self.layer.rng(numpy.empty(0, numpy.float32))  # the layer's host Generator
        mask = torch.from_numpy(dropout_fn.dropout_mask(channels_last, self.layer.rate, rng,
                                                        numpy.dtype(numpy.float32))).to(x.device)
        return x * (mask.permute(0, 3, 1, 2) if x.dim() == 4 else mask)


def activation(name):
    return {"relu": nn.ReLU(), "linear": None, "softmax": None, "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}[name]


class GraphNet(nn.Module):
    """A functional minicnn Model (a graph: residual networks) as a torch module, layer for
    layer, running the same graph in NCHW. Keras's 'same' padding, which puts an odd pixel
    of padding after (bottom/right), is padded explicitly. The final softmax is left out
    (CrossEntropyLoss takes logits). nchw=True: the input is NCHW already."""

    def __init__(self, model, nchw=False):
        super().__init__()
        from minicnn.functions.conv import pad_amounts
        self.model, self.nchw, self.pads = model, nchw, {}
        self.parts = nn.ModuleDict()
        for layer in model.layers:
            kind, name = type(layer).__name__, layer.name
            if kind == "Conv2D":
                kh, kw = layer.kernel_size
                H, W, C = layer.input_shape
                self.pads[name] = (*pad_amounts(W, kw, layer.strides[1], layer.padding),
                                   *pad_amounts(H, kh, layer.strides[0], layer.padding))
                self.parts[name] = nn.Conv2d(C, layer.filters, (kh, kw), layer.strides, bias=layer.use_bias)
            elif kind == "BatchNormalization":
                self.parts[name] = nn.BatchNorm2d(layer.input_shape[-1], eps=layer.epsilon, momentum=1 - layer.momentum)
            elif kind == "Dense":
                self.parts[name] = nn.Linear(layer.input_shape[0], layer.units, bias=layer.use_bias)
            elif kind not in ("Activation", "Add", "GlobalAveragePooling2D", "MaxPooling2D", "Flatten", "Rescaling"):
                raise ValueError(f"no PyTorch translation for {kind}")
        for module in self.parts.values():  # Keras's default initialisers (load_weights replaces them)
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x):
        model = self.model
        values = {id(model.inputs[0]): x if self.nchw else x.permute(0, 3, 1, 2)}
        for node in model.nodes:
            layer, args = node.layer, [values[id(s)] for s in node.inputs]
            kind, x, last = type(layer).__name__, args[0], node is model.outputs[0]
            if kind == "Conv2D":
                x = self.parts[layer.name](nn.functional.pad(x, self.pads[layer.name]))
                act = layer.activation_name
            elif kind == "BatchNormalization" or kind == "Dense":
                x, act = self.parts[layer.name](x), getattr(layer, "activation_name", "linear")
            elif kind == "Activation":
                act = layer.activation_name
            elif kind == "Add":
                x, act = sum(args[1:], args[0]), "linear"
            elif kind == "GlobalAveragePooling2D":
                x, act = x.mean(dim=(2, 3)), "linear"
            elif kind == "MaxPooling2D":
                x, act = nn.functional.max_pool2d(x, layer.pool_size, layer.strides), "linear"
            elif kind == "Flatten":
                x, act = x.permute(0, 2, 3, 1).flatten(1), "linear"
            else:  # Rescaling
                x, act = x * layer.scale + layer.offset, "linear"
            if act == "relu":
                x = nn.functional.relu(x)
            elif act == "softmax" and not last:
                x = nn.functional.softmax(x, dim=1)
            values[id(node)] = x
        return values[id(model.outputs[0])]

    def load_weights(self, model):
        """Copy a minicnn model's weights (and batch-norm statistics) into this twin."""
        with torch.no_grad():
            for layer in model.layers:
                part = self.parts[layer.name] if layer.name in self.parts else None
                if isinstance(part, nn.Conv2d):
                    part.weight.copy_(torch.from_numpy(layer.get_weights()[0].transpose(3, 2, 0, 1)))
                elif isinstance(part, nn.Linear):
                    part.weight.copy_(torch.from_numpy(layer.get_weights()[0].T))
                elif isinstance(part, nn.BatchNorm2d):
                    gamma, beta, mean, var = layer.get_weights()
                    for target, value in zip((part.weight, part.bias, part.running_mean, part.running_var),
                                             (gamma, beta, mean, var)):
                        target.copy_(torch.from_numpy(value))
                if isinstance(part, (nn.Conv2d, nn.Linear)) and part.bias is not None:
                    part.bias.copy_(torch.from_numpy(layer.get_weights()[1]))
        return self


def translate(model, masks_from_model=False):
    """A torch module equal in architecture to a built minicnn model (nn.Sequential for a
    Sequential, GraphNet for a functional Model); the final softmax is left out
    (CrossEntropyLoss takes logits). Returns (net, max-norm list). masks_from_model: its
    Dropout layers draw their masks from the minicnn model's (DropoutFrom)."""
    from minicnn.models import Sequential
    if not isinstance(model, Sequential):
        return GraphNet(model), []
    layers, constrained = [NHWCtoNCHW()], []
    for layer in model.layers:
        kind, config = type(layer).__name__, layer.get_config()
        if kind == "Conv2D":
            kh, kw = config["kernel_size"]
            pad = "same" if config["padding"] == "same" else 0
            conv = nn.Conv2d(layer.input_shape[2], config["filters"], (kh, kw), config["strides"], pad)
            layers += [conv] + [a for a in [activation(config["activation"])] if a]
        elif kind == "MaxPooling2D":
            layers.append(nn.MaxPool2d(config["pool_size"], config["strides"],
                                       ceil_mode=config["padding"] == "same"))
        elif kind == "Flatten":
            layers.append(FlattenNHWC())
        elif kind == "Dense":
            dense = nn.Linear(layer.input_shape[0], config["units"])
            layers += [dense] + [a for a in [activation(config["activation"])] if a]
            if config["kernel_constraint"]:
                constrained.append((dense, config["kernel_constraint"]["config"]["max_value"]))
        elif kind == "Dropout":
            layers.append(DropoutFrom(layer) if masks_from_model else nn.Dropout(config["rate"]))
        elif kind == "Activation":
            act = activation(config["activation"])
            if act:
                layers.append(act)
        elif kind == "BatchNormalization":
            norm = nn.BatchNorm1d if len(layer.input_shape) == 1 else nn.BatchNorm2d
            layers.append(norm(layer.input_shape[-1], eps=config["epsilon"], momentum=1 - config["momentum"]))
        else:
            raise ValueError(f"no PyTorch translation for {kind}")
    net = nn.Sequential(*layers)
    for module in net.modules():  # Keras's initialisers
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return net, constrained


def copy_weights(model, net):
    """Give a translated Sequential net the minicnn model's weights (and batch-norm
    statistics), layer for layer in order; a GraphNet copies its own. Returns net."""
    if isinstance(net, GraphNet):
        return net.load_weights(model)
    parts = [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d))]
    layers = [l for l in model.layers if type(l).__name__ in ("Conv2D", "Dense", "BatchNormalization")]
    if len(parts) != len(layers):
        raise ValueError(f"copy_weights: {len(layers)} minicnn layers with weights, {len(parts)} torch modules")
    with torch.no_grad():
        for part, layer in zip(parts, layers):
            weights = layer.get_weights()
            if isinstance(part, (nn.BatchNorm1d, nn.BatchNorm2d)):
                targets = (part.weight, part.bias, part.running_mean, part.running_var)
            else:
                kernel = weights[0]
                weights = [kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T, *weights[1:]]
                targets = (part.weight, part.bias)[:len(weights)]
            for target, value in zip(targets, weights):
                target.copy_(torch.from_numpy(numpy.ascontiguousarray(value)))
    return net


class MinicnnDraws:
    """The random draws of ``train_cifar.py --seed S`` for a zoo model, in the order it makes
    them: the seed set, the training Loader built (it draws nothing), the model built (its
    initial weights). ``start_epoch(epoch)`` reseeds the model's Dropout streams as ``fit``
    does, so a net from ``translate(draws.model, masks_from_model=True)`` drops what minicnn
    drops; ``batches(epoch)`` yields that run's batches of that epoch as host arrays (x
    scaled to [0, 1], y (B,) int64). x: (N, 32, 32, 3) uint8 images; y: their (N, 1) labels."""

    def __init__(self, name, seed, x, y, batch_size, augment=None):
        minicnn.set_seed(seed)
        self.seed = seed
        self.loader = data.Loader(x, y, batch_size, shuffle=True, seed=seed, augment=augment,
                                  mean=numpy.zeros(3, numpy.float32), std=numpy.full(3, 255, numpy.float32),
                                  device="cpu")
        self.model, _ = zoo.build(name)

    def start_epoch(self, epoch):
        self.model.reseed(self.seed, epoch)

    def batches(self, epoch):
        for xb, yb in self.loader.batches(epoch):
            yield xb, numpy.asarray(yb).reshape(-1).astype(numpy.int64)


DRAWN = ("init", "order", "masks")  # what --draws can take from minicnn, in this order


def draws_argument(text):
    """--draws's value as the canonical name of the draws taken from minicnn: "torch" (none),
    "minicnn" (all three), or a comma list of some of DRAWN in DRAWN's order."""
    if text in ("torch", "minicnn"):
        return text
    parts = [part.strip() for part in text.split(",")]
    unknown = [part for part in parts if part not in DRAWN]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown draws {', '.join(map(repr, unknown))}: give torch, minicnn or a comma list of {', '.join(DRAWN)}")
    taken = [part for part in DRAWN if part in parts]
    return "minicnn" if len(taken) == len(DRAWN) else ",".join(taken)


def drawn_parts(name):
    """The set of DRAWN that a canonical --draws name takes from minicnn."""
    return set() if name == "torch" else set(DRAWN) if name == "minicnn" else set(name.split(","))


def optimizer_for(name, net):
    keras = zoo.RECIPES[name].optimizer().get_config()
    decay = keras.get("decay") or 0.0
    if keras["name"] == "Adam":
        opt = torch.optim.Adam(net.parameters(), lr=keras["learning_rate"],
                               betas=(keras["beta_1"], keras["beta_2"]), eps=keras["epsilon"])
    else:
        # Keras takes nesterov=True without momentum (seed 003's 4-layer recipe) as plain SGD;
        # PyTorch refuses the pair, so it gets plain SGD by name.
        opt = torch.optim.SGD(net.parameters(), lr=keras["learning_rate"], momentum=keras["momentum"],
                              nesterov=keras["nesterov"] and keras["momentum"] > 0)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1 / (1 + decay * it))  # Keras-2 decay
    return opt, schedule


def evaluate(net, x, y, device, batch=500):
    net.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            labels = y[i:i + batch].to(device)
            logits = net(x[i:i + batch].to(device))
            loss += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
    return loss / len(x), correct / len(x)


def checkpoint_key(args):
    """What a checkpoint must agree on with the run continuing it (not the epoch count:
    a run may be continued to more epochs, as an interrupted one is)."""
    return {"model": args.model, "seed": args.seed, "batch_size": args.batch_size, "val_split": args.val_split,
            "draws": args.draws}


def epoch_batches(x, y, batch, epoch, seed, generator, augment, draws=None):
    """One epoch's (images (B, 32, 32, 3) float32 in [0, 1], labels (B,) int64) as torch
    tensors: PyTorch's own shuffle (and minicnn.data's augmentation, drawn from (seed,
    epoch)), or with ``draws`` (a MinicnnDraws) minicnn's batches, draw for draw."""
    if draws is not None:
        for xb, yb in draws.batches(epoch):
            yield torch.from_numpy(xb), torch.from_numpy(yb)
        return
    order = torch.randperm(len(x), generator=generator)
    rng = numpy.random.default_rng(data.epoch_seed(seed, epoch))
    for i in range(0, len(x), batch):
        index = order[i:i + batch]
        yield (x[index] if augment is None else torch.from_numpy(augment(x[index].numpy(), rng))), y[index]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(zoo.MODELS), default="seed004_base")
    p.add_argument("--data", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                   help="gpu: CUDA, PyTorch's defaults (cuDNN convolutions may use TF32)")
    p.add_argument("--checkpoint", default=None, help="save every epoch here; continue from it if it exists")
    p.add_argument("--val-split", type=float, default=None,
                   help="hold out the last fraction F of the training images for validation")
    p.add_argument("--draws", type=draws_argument, default="torch",
                   help="minicnn: train_cifar.py's initial weights, batch order and dropout masks for this seed; "
                        "or some of them, a comma list of init, order, masks")
    args = p.parse_args(argv)
    if args.val_split is not None and not 0 < args.val_split < 1:
        p.error(f"--val-split must be in (0, 1), got {args.val_split}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "gpu" and not torch.cuda.is_available():
        p.error("--device gpu: this PyTorch sees no CUDA GPU")
    device = torch.device("cuda" if args.device == "gpu" else "cpu")
    torch.manual_seed(args.seed)  # the CPU's and every GPU's streams (dropout)
    recipe = zoo.RECIPES[args.model]
    # The recipe's augmentation is minicnn.data's (a data pipeline, on the host, not the engine
    # under test): the same random shifts, flips and rotations, drawn from the same kind of seed.
    augment = data.augmentation(recipe.augment)
    epochs, batch = args.epochs or recipe.epochs, args.batch_size or recipe.batch_size
    (x, y), (xt, yt) = cifar10.load_data(args.data)
    draws, taken = None, drawn_parts(args.draws)
    if taken:  # the images train_cifar.py's Loader holds: all, or those before --val-split's cut
        cut = int(len(x) * (1 - args.val_split)) if args.val_split else len(x)
        draws = MinicnnDraws(args.model, args.seed, x[:cut], y[:cut], batch, augment)
    x, xt = (torch.from_numpy(a.astype(numpy.float32) / 255) for a in (x, xt))
    y, yt = (torch.from_numpy(a[:, 0].astype(numpy.int64)) for a in (y, yt))
    xv, yv = xt, yt  # validated on every epoch: the test set, or the held-out training images
    if args.val_split:
        cut = int(len(x) * (1 - args.val_split))  # the last images, as train_cifar.py holds them out
        x, y, xv, yv = x[:cut], y[:cut], x[cut:], y[cut:]
    # translate always draws PyTorch's initial weights (from the global generator, so the
    # dropout masks that follow are the same draws with or without "init"); "init" replaces them.
    net, constrained = translate(draws.model if draws else zoo.MODELS[args.model](), masks_from_model="masks" in taken)
    if "init" in taken:
        copy_weights(draws.model, net)
    net = net.to(device)  # the data stays on the host; each batch goes to the device
    opt, schedule = optimizer_for(args.model, net)
    generator = torch.Generator().manual_seed(args.seed)
    printed, first = [], 0
    if args.checkpoint and os.path.isfile(args.checkpoint):
        saved = torch.load(args.checkpoint, weights_only=False)
        if saved["argv"] != checkpoint_key(args):
            raise SystemExit(f"{args.checkpoint} was saved by another run ({saved['argv']}); "
                             "delete it or give another --checkpoint")
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["opt"])
        schedule.load_state_dict(saved["schedule"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        printed, first = saved["printed"], saved["epoch"]
        for line in printed:
            print(line, flush=True)
    for epoch in range(first, epochs):
        net.train()
        start, loss_sum, correct = time.perf_counter(), 0.0, 0
        if draws:  # its Dropout streams (read only with "masks") start the epoch as fit starts them
            draws.start_epoch(epoch)
        order_from = draws if "order" in taken else None
        for images, labels in epoch_batches(x, y, batch, epoch, args.seed, generator, augment, order_from):
            labels = labels.to(device)
            logits = net(images.to(device))
            loss = nn.functional.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            with torch.no_grad():
                for dense, max_value in constrained:  # Keras's max_norm on each unit's incoming weights
                    norms = dense.weight.norm(dim=1, keepdim=True)
                    dense.weight.mul_(norms.clamp(max=max_value) / (norms + 1e-7))
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
        seconds = time.perf_counter() - start
        val_loss, val_acc = evaluate(net, xv, yv, device)
        held_out = {}
        if args.val_split and epoch == epochs - 1:  # the test set once, after the last epoch
            held_out = dict(zip(("test_loss", "test_accuracy"), evaluate(net, xt, yt, device)))
        line = json.dumps({"engine": f"torch {torch.__version__}", "model": args.model, "epoch": epoch + 1,
                           "loss": loss_sum / len(x), "accuracy": correct / len(x), "val_loss": val_loss,
                           "val_accuracy": val_acc, "train_seconds": round(seconds, 1),
                           "threads": torch.get_num_threads(), "device": str(device),
                           "images": len(x), "val_images": len(xv), "draws": args.draws,
                           **held_out})
        print(line, flush=True)
        printed.append(line)
        if args.checkpoint:  # written beside, then renamed: an interruption never leaves half a file
            torch.save({"argv": checkpoint_key(args), "epoch": epoch + 1, "printed": printed,
                        "net": net.state_dict(), "opt": opt.state_dict(), "schedule": schedule.state_dict(),
                        "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
                       args.checkpoint + ".tmp")
            os.replace(args.checkpoint + ".tmp", args.checkpoint)


if __name__ == "__main__":
    main()
