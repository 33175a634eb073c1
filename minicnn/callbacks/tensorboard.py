"""TensorBoard: the logs of fit (and evaluate) as event files for ``tensorboard --logdir``,
with Keras's callback arguments, folders and tag names, so a dashboard made for Keras reads
them the same:

    log_dir/train/       epoch_loss, epoch_accuracy, ..., epoch_learning_rate (step: the epoch, from 0);
                         batch_loss, ... every update_freq batches (step: the optimizer's iterations);
                         conv2d/kernel/histogram, ... every histogram_freq epochs (and /image with
                         write_images); the model's layers as a graph (the Graphs tab)
    log_dir/validation/  epoch_loss, ... from val_loss, ...; evaluation_loss_vs_iterations, ...
                         after every evaluation, at the optimizer's iterations

The files are written by ``minicnn.event_file`` (no TensorFlow needed); each fit adds new
files, so a resumed run continues its curves beside the first run's.
"""
import numbers
import os
import time

import numpy as np

from ..backend import to_numpy
from ..event_file import SummaryWriter, summary_string_tensor
from .base import Callback, writes_files


class TensorBoard(Callback):
    """log_dir: the folder (train/ and validation/ go in it). histogram_freq: every how many
    epochs each weight's histogram is written (0: never); write_images: with it, each weight
    as a picture too. write_graph: the layers and how they connect. update_freq: 'epoch',
    'batch' or every N batches for batch_* curves (on a GPU each batch's curve point costs a
    synchronisation, so 'epoch' is the fast default). write_steps_per_second: training
    speed as a curve. profile_batch and embeddings_freq are Keras's; minicnn has no
    profiler hook nor Embedding layer, so they must stay 0."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        if not isinstance(histogram_freq, numbers.Integral) or histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be a whole number of epochs >= 0, got {histogram_freq!r}")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (not isinstance(update_freq, numbers.Integral) or isinstance(update_freq, bool)
                                       or update_freq < 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a number of batches >= 1, "
                             f"got {update_freq!r}")
        if profile_batch not in (0, None, (0, 0)):
            raise ValueError(f"TensorBoard: profile_batch={profile_batch!r}, but minicnn has no profiler to run "
                             "(benchmarks/profile_step.py times a training step op by op); leave it 0")
        if embeddings_freq or embeddings_metadata:
            raise ValueError("TensorBoard: embeddings_freq / embeddings_metadata are for Embedding layers, which "
                             "minicnn does not have; leave them out")
        self.log_dir, self.histogram_freq, self.write_graph = os.fspath(log_dir), histogram_freq, write_graph
        self.write_images, self.write_steps_per_second, self.update_freq = write_images, write_steps_per_second, update_freq
        self._writers = {}
        self._epoch_start = None
        if update_freq != "epoch":  # fit calls batch hooks only for a callback that has them (base.defines)
            self.on_train_batch_begin, self.on_train_batch_end = self._batch_begin, self._batch_end

    # --- the two writers, made when first written to -------------------------------------------
    def _writer(self, which):
        if which not in self._writers:
            self._writers[which] = SummaryWriter(os.path.join(self.log_dir, which))
        return self._writers[which]

    def _writes(self):
        return self.model is not None and writes_files(self.model)  # data-parallel: rank 0 alone

    def _iterations(self):
        return getattr(getattr(self.model, "optimizer", None), "iterations", None)

    def close(self):
        """Flush and close the event files (fit does at its end; evaluate leaves them open)."""
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # --- fit's hooks ---------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self._writes() and self.write_graph:
            writer = self._writer("train")
            graph = keras_graph_json(self.model)
            if graph is not None:  # Keras's tag and plugin: the Graphs tab's conceptual graph
                writer.add_summary([summary_string_tensor("keras", graph, "graph_keras_model", b"1")], 0)
                writer.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = (time.perf_counter(), self._iterations())

    def _batch_begin(self, batch, logs=None):
        self._batch_start = time.perf_counter()

    def _batch_end(self, batch, logs=None):
        step = self._iterations()
        if not self._writes() or step is None or step % self.update_freq:
            return
        writer = self._writer("train")
        for name, value in (logs or {}).items():
            _add_scalars(writer, "batch_" + name, value, step)
        if self.write_steps_per_second:
            writer.add_scalar("batch_steps_per_second", 1.0 / max(time.perf_counter() - self._batch_start, 1e-9), step)
        writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        if not self._writes():
            return
        logs = dict(logs or {})
        if self.write_steps_per_second and self._epoch_start is not None and self._epoch_start[1] is not None:
            began, iterations = self._epoch_start
            logs["steps_per_second"] = (self._iterations() - iterations) / max(time.perf_counter() - began, 1e-9)
        train, val = self._writer("train"), None
        for name, value in logs.items():
            if name.startswith("val_"):
                val = val or self._writer("validation")
                _add_scalars(val, "epoch_" + name[4:], value, epoch)
            else:
                _add_scalars(train, "epoch_" + name, value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for weight in self.model.weights:
                train.add_histogram(f"{weight.name}/histogram", weight.data, epoch)
                image = weight_image(weight.data) if self.write_images else None
                if image is not None:
                    train.add_image(f"{weight.name}/image", image, epoch)
        for writer in (train, val):
            if writer is not None:
                writer.flush()

    def on_test_end(self, logs=None):
        step = self._iterations()
        if not self._writes() or step is None or not logs:
            return
        writer = self._writer("validation")
        for name, value in logs.items():
            _add_scalars(writer, f"evaluation_{name}_vs_iterations", value, step)
        writer.flush()

    def on_train_end(self, logs=None):
        self.close()


def _add_scalars(writer, tag, value, step):
    """A number as one curve; a metric of several numbers (thresholds=[...], average=None)
    as tag/0, tag/1, ...: TensorBoard puts them in one group."""
    if isinstance(value, (list, tuple)):
        for i, one in enumerate(value):
            writer.add_scalar(f"{tag}/{i}", one, step)
    elif value is not None:
        writer.add_scalar(tag, value, step)


# --- what the Images and Graphs tabs show -------------------------------------------------------------
def weight_image(weights):
    """A weight array as a grey (or colour) picture, scaled from its smallest value (black)
    to its largest (white), one scale for the whole array so that its parts compare; None
    for a shape that has no natural picture. A bias (n,) is a strip; a dense kernel (n_in,
    n_out) the matrix, turned to lie wide; a conv kernel (kh, kw, C_in, C_out) a grid of its
    kh x kw slices, one row per input channel and one column per filter (the first 32 of
    each), or, where C_in is 3 (a first layer on RGB images), each filter in colour."""
    w = np.asarray(to_numpy(weights), dtype=np.float64)
    if w.ndim == 1:
        picture = w[None, :]
    elif w.ndim == 2:
        picture = w if w.shape[0] <= w.shape[1] else w.T
    elif w.ndim == 4:
        kh, kw, c_in, c_out = w.shape
        if c_in == 3:
            picture = _grid([[w[:, :, :, j] for j in range(c_out)]], gap=1)
        else:
            picture = _grid([[w[:, :, i, j] for j in range(min(c_out, 32))] for i in range(min(c_in, 32))], gap=1)
    else:
        return None
    low, high = np.nanmin(picture), np.nanmax(picture)
    return np.nan_to_num((picture - low) / (high - low) if high > low else np.zeros_like(picture) + 0.5)


def _grid(rows, gap):
    """Tiles (h, w) or (h, w, c), as rows of a grid, gap pixels apart (at the array's lowest value)."""
    h, w = rows[0][0].shape[:2]
    rest = rows[0][0].shape[2:]
    low = min(np.nanmin(tile) for row in rows for tile in row)
    grid = np.full((len(rows) * (h + gap) - gap, max(len(r) for r in rows) * (w + gap) - gap, *rest), low)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            grid[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = tile
    return grid


def keras_graph_json(model):
    """The model's layers and their connections as Keras 3's model.to_json() lays them out,
    the form TensorBoard's graph plugin draws (its keras_util reads class_name, config.name,
    config.layers and each layer's inbound_nodes). None for a model that is neither
    Sequential nor functional."""
    import json
    layout = _keras_layout(model, model.name)
    return None if layout is None else json.dumps(layout)


def _layer_entry(layer, inbound=None):
    from ..layers.nested import NestedModel
    if isinstance(layer, NestedModel):
        entry = _keras_layout(layer.model, layer.name)
    else:
        entry = {"class_name": type(layer).__name__, "config": {"name": layer.name, "dtype": "float32"}}
    if inbound is not None:
        entry["inbound_nodes"] = inbound
    return entry


def _keras_layout(model, name):
    from ..models import Sequential
    if isinstance(model, Sequential):
        return {"class_name": "Sequential", "config": {"name": name, "layers": [_layer_entry(l) for l in model.layers]}}
    if not getattr(model, "nodes", None):
        return None
    history = {}  # symbol -> [layer name, which call of that layer, 0]: Keras's keras_history
    for symbol in model.inputs:
        history[id(symbol)] = [symbol.layer.name, 0, 0]
    calls, inbound = {}, {}
    for node in model.nodes:
        call = calls.get(id(node.layer), 0)
        calls[id(node.layer)] = call + 1
        history[id(node)] = [node.layer.name, call, 0]
        tensors = [{"class_name": "__keras_tensor__", "config": {"keras_history": history[id(s)]}} for s in node.inputs]
        inbound.setdefault(id(node.layer), []).append({"args": [tensors] if len(tensors) > 1 else tensors, "kwargs": {}})
    layers = [_layer_entry(s.layer, []) for s in model.inputs]
    layers += [_layer_entry(layer, inbound.get(id(layer), [])) for layer in model.layers]
    return {"class_name": "Functional", "config": {
        "name": name, "layers": layers,
        "input_layers": [history[id(s)] for s in model.inputs],
        "output_layers": [history[id(s)] for s in model.outputs]}}
