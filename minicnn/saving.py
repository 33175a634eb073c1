"""Saving and loading models as ``.npz``: plain arrays plus the architecture as JSON.

No pickle anywhere: the file is a zip of ``.npy`` arrays read with
``allow_pickle=False``, and the layers are rebuilt from a fixed list of classes with
their ``get_config()`` arguments. A file that does not follow this layout, asks for
an unknown class, or holds arrays of the wrong shape is refused with an error that
names the file and what is wrong.

Layout of the zip:
  ``minicnn.json``          {"format", "version", "model": {name, input_shape, layers},
                             "compile": {optimizer, loss, metrics[, loss_weights]} | null,
                             (several outputs: loss, loss_weights, metrics one per output)
                             "optimizer_state": {iterations, slots: {name: count}, loss_scale?} | null,
                             "metadata": {...}}   (a 0-d unicode array)
  ``weights/0000`` ...      the model's weights in Keras order (``get_weights()``)
  ``optimizer/<slot>/0000`` the optimizer's per-parameter state, when saved

Writes are atomic: the file is written beside the target and renamed over it, so a
kill at any moment leaves either the old file or the new one, never half of one.
"""
import json
import os
import tempfile
import warnings
import zipfile

import numpy

from . import activations, backend, losses, metrics, optimizers
from .layers import (Activation, Add, Average, AveragePooling2D, BatchNormalization, CenterCrop, Concatenate, Conv2D,
                     Conv2DTranspose, Cropping2D, Dense, DepthwiseConv2D, Dropout, ELU, Flatten, GaussianDropout,
                     GaussianNoise, GlobalAveragePooling2D, Identity, Permute,
                     GlobalMaxPooling2D, GroupNormalization, InputLayer, LayerNormalization, LeakyReLU, Maximum, MaxPooling2D, Minimum,
                     Multiply, Normalization, PReLU, RandomBrightness, RandomContrast, RandomCrop, RandomErasing, RandomFlip, RandomGrayscale, RandomRotation, RandomTranslation,
                     RandomZoom, RandomHue, RandomSaturation, RandomColorJitter, RandomInvert, Solarization,
                     RandomPosterization, RandomShear, AutoContrast, Equalization, RandomColorDegeneration,
                     RandomSharpness, RandAugment, NestedModel, ReLU, Rescaling, Reshape, Resizing, SeparableConv2D, Softmax, SpatialDropout2D, Subtract,
                     UpSampling2D, ZeroPadding2D)

FORMAT, VERSION = "minicnn-model", 1
WEIGHTS_FORMAT = "minicnn-weights"  # save_weights: the weights alone
HEADER = "minicnn.json"
LAYER_CLASSES = {cls.__name__: cls for cls in (Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D, MaxPooling2D,
                                               AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
                                               ZeroPadding2D, Cropping2D, UpSampling2D, Dense, Flatten, Reshape, Permute, Identity,
                                               Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax, Rescaling, Dropout,
                                               SpatialDropout2D, BatchNormalization, LayerNormalization, GroupNormalization,
                                               InputLayer, Add,
                                               Subtract, Multiply, Average, Maximum, Minimum, Concatenate,
                                               RandomFlip, RandomTranslation, RandomRotation, RandomZoom,
                                               RandomContrast, RandomBrightness, RandomCrop, RandomErasing, RandomGrayscale,
                                               RandomHue, RandomSaturation, RandomColorJitter, RandomInvert,
                                               Solarization, RandomPosterization, RandomShear, AutoContrast,
                                               Equalization, RandomColorDegeneration, RandomSharpness, RandAugment,
                                               Resizing, CenterCrop,
                                               Normalization, GaussianNoise, GaussianDropout, NestedModel)}


class ModelFileError(ValueError):
    """A model file is missing, corrupt, or not one minicnn wrote."""


def atomic_write(path, write, keep_previous=False):
    """Call ``write(file)`` on a temporary file beside ``path``, flush it to disk, then
    rename it onto ``path`` (atomic on POSIX and Windows). keep_previous: first move the
    file already at ``path`` to ``previous_path(path)``, so the last two versions exist."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and os.path.exists(path):
            os.replace(path, previous_path(path))  # a kill right here leaves the previous one
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def previous_path(path):
    """Where the version before ``path`` is kept: run/checkpoint.npz -> run/checkpoint.previous.npz."""
    stem, suffix = os.path.splitext(os.fspath(path))
    return f"{stem}.previous{suffix}"


def load_model_or_previous(path, compile=True, device=None, say=print):
    """load_model(path); if that file is missing or unreadable but the one before it
    (``previous_path``) loads, that one, after saying so with ``say``. Returns (model,
    the path it came from)."""
    try:
        return load_model(path, compile, device), os.fspath(path)
    except ModelFileError as error:
        previous = previous_path(path)
        if not os.path.isfile(previous):
            raise
        model = load_model(previous, compile, device)
        say(f"{error}\nFalling back to the checkpoint before it, {previous}.")
        return model, previous


def layer_config(layer):
    """{'class_name', 'config'} of a layer a saved model can rebuild, or a ValueError."""
    reason = getattr(type(layer), "not_saveable", None)
    if reason is not None:
        raise ValueError(f"cannot save {layer.describe()}: {reason}. Save the model's weights with "
                         "model.save_weights(path) and rebuild the model in code to load them")
    if type(layer).__name__ not in LAYER_CLASSES or LAYER_CLASSES[type(layer).__name__] is not type(layer):
        raise ValueError(f"cannot save {layer.describe()}: {type(layer).__name__} is a layer class of your own; "
                         f"a saved model holds minicnn's ({', '.join(sorted(LAYER_CLASSES))}). Save its "
                         "weights with model.save_weights(path) and rebuild the model in code to load them")
    config = layer.get_config()
    activation = config.get("activation")
    if activation is not None and activation not in activations.NAMES:
        raise ValueError(f"cannot save {layer.describe()}: its activation {activation!r} is a "
                         f"custom function; saved models name theirs ({', '.join(activations.NAMES)})")
    return {"class_name": type(layer).__name__, "config": config}


def model_config(model):
    """The architecture of a built model as a JSON-able dict: a Sequential's layer list,
    or a functional Model's inputs, layers, and the calls between them ("nodes": which
    layer, applied to which inputs or earlier nodes), in the order they run."""
    from .models import Sequential
    if isinstance(model, Sequential):
        return {"class_name": "Sequential", "name": model.name, "input_shape": list(model.input_shape),
                "layers": [layer_config(layer) for layer in model.layers]}
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    source = {id(s): ["input", i] for i, s in enumerate(model.inputs)}
    source.update({id(node): ["node", i] for i, node in enumerate(model.nodes)})
    return {"class_name": "Model", "name": model.name,
            "inputs": [layer_config(s.layer) for s in model.inputs],
            "layers": [layer_config(layer) for layer in model.layers],
            "nodes": [{"layer": index[id(node.layer)], "inputs": [source[id(s)] for s in node.inputs]}
                      for node in model.nodes],
            "outputs": [source[id(s)] for s in model.outputs],
            "many": list(model._many),
            # Model(inputs={...}) / Model(outputs={...}): the names they were keyed by (None: not dicts)
            "input_keys": getattr(model, "_input_keys", None), "output_keys": getattr(model, "_output_keys", None)}


def warn_if_not_finite(model, host_weights, path, what):
    """A RuntimeWarning naming the weights that are NaN or infinite, if any: they are saved
    all the same (a diverged model is worth a look), but never silently over a good file."""
    bad = [w.name for w, host in zip(model.weights, host_weights) if not numpy.isfinite(host).all()]
    hint = "; keep_previous=True keeps the file a save replaces" if what == "save" else ""
    if bad:
        warnings.warn(f"{what}(): {len(bad)} weight arrays of {model.name} hold NaN or infinite values "
                      f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}): did training diverge? {path} "
                      f"now holds them{hint}", RuntimeWarning, stacklevel=4)


def save_model(model, path, include_optimizer=True, metadata=None, keep_previous=False):
    """Write ``model`` (built) to ``path``: architecture, weights, and, when compiled and
    ``include_optimizer``, the optimizer's configuration and state. ``metadata``: any
    JSON-able dict stored alongside (preprocessing, class names, training progress).
    keep_previous: keep the file it replaces as ``previous_path(path)``."""
    if not model.built:
        raise ValueError(f"save(): {model.name} is not built yet, so it has no weights to save")
    arrays = {f"weights/{i:04d}": w for i, w in enumerate(model.get_weights())}
    warn_if_not_finite(model, arrays.values(), path, "save")
    header = {"format": FORMAT, "version": VERSION, "model": model_config(model),
              "compile": None, "optimizer_state": None, "metadata": metadata or {}}
    if model.optimizer is not None:
        header["compile"] = {"optimizer": model.optimizer.get_config(), **(
            model.heads.get_config() if model.heads is not None  # several outputs: a loss list, weights, metrics
            else {"loss": model.loss.get_config(), "metrics": metrics.counters_config(model.metric_counters),
                  "weighted_metrics": metrics.weighted_config(model.metric_counters)})}
        if include_optimizer and model.optimizer.params is not None:
            model._bind_optimizer()  # layers added or popped since the last fit: their state too
            state = model.optimizer.state_dict()
            weights = model.weights  # the optimizer's order may differ (groups): store it
            order = [next(i for i, w in enumerate(weights) if w is p) for p in model.optimizer.params]
            header["optimizer_state"] = {"iterations": state["iterations"], "params": order,
                                         "options": state["options"],
                                         "slots": {k: len(v) for k, v in state["slots"].items()}}
            if "loss_scale" in state:  # a LossScaleOptimizer's scale and its count of good steps
                header["optimizer_state"]["loss_scale"] = state["loss_scale"]
            for name, slot in state["slots"].items():
                arrays.update({f"optimizer/{name}/{i:04d}": a for i, a in enumerate(slot)})
    try:
        text = json.dumps(header)
    except TypeError as error:
        raise ValueError(f"save(): metadata must be JSON-serializable ({error})") from None
    arrays[HEADER] = numpy.array(text)
    atomic_write(path, lambda f: numpy.savez(f, **arrays), keep_previous)


def save_weights(model, path):
    """Write ``model``'s weights alone, with each layer's name, class and weight shapes so
    that load_weights can check a model against them."""
    if not model.built:
        raise ValueError(f"save_weights(): {model.name} is not built yet, so it has no weights to save")
    layers = [{"name": layer.name, "class_name": type(layer).__name__,
               "shapes": [list(w.shape) for w in layer.weights]} for layer in model.layers]
    header = {"format": WEIGHTS_FORMAT, "version": VERSION, "layers": layers}
    arrays = {f"weights/{i:04d}": w for i, w in enumerate(model.get_weights())}
    warn_if_not_finite(model, arrays.values(), path, "save_weights")
    arrays[HEADER] = numpy.array(json.dumps(header))
    atomic_write(path, lambda f: numpy.savez(f, **arrays))


def load_weights(model, path):
    """Set ``model``'s weights from a save_weights (or save) file, after checking count and
    shapes: a file from another architecture is refused, naming the first mismatch."""
    path = os.fspath(path)
    header, arrays = _read(path, formats=(FORMAT, WEIGHTS_FORMAT))
    if not model.built:
        raise ValueError(f"load_weights(): build {model.name} first (give the first layer input_shape=, "
                         "or call build()), so its weights have shapes to check the file against")
    stored = sorted(name for name in arrays if name.startswith("weights/"))
    weights = _numbered(arrays, "weights", len(stored), path)
    expected = [w.shape for w in model.weights]
    if len(weights) != len(expected):
        raise ModelFileError(f"{path}: holds {len(weights)} weight arrays, {model.name} has {len(expected)}")
    for i, (array, shape, weight) in enumerate(zip(weights, expected, model.weights)):
        if tuple(array.shape) != tuple(shape):
            raise ModelFileError(f"{path}: weight {i} ({weight.name}) has shape {tuple(array.shape)} in the "
                                 f"file, {tuple(shape)} in the model")
    model.set_weights(weights)


def _read(path, formats=(FORMAT,)):
    """(header dict, {name: array}) from a model file, or ModelFileError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):  # numpy.load would otherwise try it as a pickle
        raise ModelFileError(f"{path}: not a model file (an .npz is a zip archive; this is not one)")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ModelFileError(f"{path}: not a readable .npz file ({type(error).__name__}: {error})") from None
    except ValueError as error:  # numpy refuses object (pickled) arrays without allow_pickle
        raise ModelFileError(f"{path}: refused: it holds pickled objects, which a minicnn model "
                             f"file never does ({error})") from None
    if HEADER not in arrays or arrays[HEADER].dtype.kind != "U" or arrays[HEADER].ndim != 0:
        raise ModelFileError(f"{path}: no '{HEADER}' header: not a model file minicnn wrote")
    try:
        header = json.loads(str(arrays.pop(HEADER)))
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: its '{HEADER}' header is not valid JSON ({error})") from None
    if not isinstance(header, dict) or header.get("format") not in formats:
        found = header.get("format") if isinstance(header, dict) else None
        hint = " (a weights file: read it with model.load_weights)" if found == WEIGHTS_FORMAT else ""
        raise ModelFileError(f"{path}: header format is {found!r}, expected {' or '.join(map(repr, formats))}{hint}")
    if header.get("version") != VERSION:
        raise ModelFileError(f"{path}: format version {header.get('version')!r}; this minicnn reads {VERSION}")
    return header, arrays


def _numbered(arrays, prefix, count, path):
    names = [f"{prefix}/{i:04d}" for i in range(count)]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ModelFileError(f"{path}: missing arrays {missing[:3]}")
    return [arrays[n] for n in names]


def load_model(path, compile=True, device=None, custom_objects=None):
    """Rebuild the model saved at ``path`` on ``device`` (default: the current one).

    With ``compile=True`` and a compiled model in the file, the model comes back
    compiled, its optimizer state restored, so training continues where it stopped.
    custom_objects: {name: function} for the metrics of your own it was compiled with
    (a file holds only their names), as Keras's.
    The file's metadata dict is at ``model.metadata``."""
    path = os.fspath(path)
    header, arrays = _read(path)
    spec = header.get("model") or {}
    with backend.device(device or backend.get_device()):
        model = rebuild_model(spec, path)
    weights = _numbered(arrays, "weights", len(model.weights), path)
    try:
        model.set_weights(weights)
    except ValueError as error:
        raise ModelFileError(f"{path}: {error}") from None
    stored = sum(1 for name in arrays if name.startswith("weights/"))
    if stored != len(weights):
        raise ModelFileError(f"{path}: holds {stored} weight arrays, the architecture has {len(weights)}")
    model.metadata = header.get("metadata") or {}
    if compile and header.get("compile"):
        _restore_compile(model, header, arrays, path, custom_objects)
    return model


def rebuild_model(spec, path):
    """A model from model_config's dict (a nested model's, inside a layer's config)."""
    return _rebuild(spec, path) if spec.get("class_name") == "Model" else _rebuild_sequential(spec, path)


def _make_layer(entry, what, path):
    cls = LAYER_CLASSES.get(entry.get("class_name")) if isinstance(entry, dict) else None
    if cls is None:
        name = entry.get("class_name") if isinstance(entry, dict) else entry
        raise ModelFileError(f"{path}: {what} has class {name!r}, which is not a minicnn layer "
                             f"({', '.join(sorted(LAYER_CLASSES))})")
    try:
        return cls(**entry.get("config", {}))
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: {what} ({cls.__name__}) has a bad config: {error}") from None


def _rebuild_sequential(spec, path):
    from .models import Sequential
    layers = [_make_layer(entry, f"layer {i}", path) for i, entry in enumerate(spec.get("layers", []))]
    if not layers or not spec.get("input_shape"):
        raise ModelFileError(f"{path}: the architecture has no layers or no input_shape")
    model = Sequential(layers, name=spec.get("name", "sequential"))
    try:
        model.build(tuple(spec["input_shape"]), backend.get_device())
    except ValueError as error:
        raise ModelFileError(f"{path}: the saved layers do not fit together: {error}") from None
    return model


def _rebuild(spec, path):
    """A functional Model: its inputs, then each recorded call replayed in order."""
    from .layers import InputLayer
    from .layers.merging import Merge
    from .models import Model
    from .symbolic import Symbol
    try:
        inputs = []
        for i, entry in enumerate(spec["inputs"]):
            layer = _make_layer(entry, f"input {i}", path)
            if not isinstance(layer, InputLayer):
                raise ModelFileError(f"{path}: input {i} is a {type(layer).__name__}, not an InputLayer")
            inputs.append(Symbol(layer.shape, layer.dtype, layer))
        layers = [_make_layer(entry, f"layer {i}", path) for i, entry in enumerate(spec["layers"])]
        values = {"input": inputs, "node": []}
        for i, node in enumerate(spec["nodes"]):
            args = [values[kind][k] for kind, k in node["inputs"]]
            layer = layers[node["layer"]]
            values["node"].append(layer(args if len(args) > 1 or isinstance(layer, Merge) else args[0]))
        outputs = [values[kind][k] for kind, k in spec["outputs"]]
        many_in, many_out = spec.get("many", [False, False])
        input_keys, output_keys = spec.get("input_keys"), spec.get("output_keys")
        inputs = dict(zip(input_keys, inputs)) if input_keys else inputs if many_in else inputs[0]
        outputs = dict(zip(output_keys, outputs)) if output_keys else outputs if many_out else outputs[0]
        return Model(inputs, outputs, name=spec.get("name", "model"))
    except ModelFileError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: the saved graph does not fit together: {type(error).__name__}: {error}") from None


def _own_metrics(stored, custom_objects, path):
    """The stored metrics with each {"function": name} (a metric of your own, which a file
    cannot hold) replaced by custom_objects[name]; a ModelFileError saying how when absent."""
    if isinstance(stored, list):
        return [_own_metrics(one, custom_objects, path) for one in stored]
    if isinstance(stored, dict) and set(stored) == {"metric"}:  # Precision(), Recall(), AUC()
        from .confusion_metrics import deserialize
        try:
            return deserialize(stored["metric"])
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: bad compile settings: {error}") from None
    if isinstance(stored, dict) and set(stored) == {"function"}:
        name = stored["function"]
        if name not in (custom_objects or {}):
            raise ModelFileError(f"{path}: the model was compiled with the metric function {name!r}, which a file "
                                 f"cannot hold: load_model(path, custom_objects={{{name!r}: {name}}}) gives it "
                                 "back (or compile=False loads the model uncompiled)")
        return custom_objects[name]
    return stored


def _restore_compile(model, header, arrays, path, custom_objects=None):
    settings = header["compile"]
    own_metrics = _own_metrics(settings.get("metrics"), custom_objects, path)
    own_weighted = _own_metrics(settings.get("weighted_metrics"), custom_objects, path)
    try:
        loss = settings["loss"]
        loss = [losses.deserialize(one) for one in loss] if isinstance(loss, list) else losses.deserialize(loss)
        model.compile(optimizer=optimizers.deserialize(settings["optimizer"]), loss=loss,
                      metrics=own_metrics, weighted_metrics=own_weighted,
                      loss_weights=settings.get("loss_weights"))
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: bad compile settings: {error}") from None
    state = header.get("optimizer_state")
    if state:
        slots = {name: _numbered(arrays, f"optimizer/{name}", count, path)
                 for name, count in state.get("slots", {}).items()}
        order = state.get("params")  # absent in files saved before parameter groups
        if order is not None:
            weights = model.weights
            if any(not isinstance(i, int) or not 0 <= i < len(weights) for i in order):
                raise ModelFileError(f"{path}: optimizer state names parameters {order}, "
                                     f"the model has {len(weights)} weights")
        try:
            if order is not None:
                ordered = [weights[i] for i in order]
                model.optimizer.build(ordered)  # refuses a parameter named twice; leaves frozen ones out,
                model.optimizer.rebind(ordered)  # but a layer frozen after training keeps its state bound
            model.optimizer.load_state_dict({"iterations": state["iterations"], "slots": slots,
                                             "options": state.get("options"),
                                             "loss_scale": state.get("loss_scale")})
        except (KeyError, ValueError, TypeError, IndexError) as error:  # a malformed header
            raise ModelFileError(f"{path}: optimizer state does not fit the model: {error}") from None
