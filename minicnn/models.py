"""``Model`` and ``Sequential``: layers with Keras's compile / fit / evaluate / predict.

This module holds the layer graph and the public methods. What they call lives by name:
the checks and reshaping of x and y in model_data.py, the training loop in training.py
(its display in progress.py, callbacks in callbacks/), several outputs in
multi_output.py, summary() in model_summary.py, save and load in saving.py.
"""
import json
import time

import numpy

from . import backend, batch_stream, losses as losses_mod, metrics as metrics_mod, mixed_precision, multi_output
from . import model_data, model_summary, progress
from . import optimizers as optimizers_mod
from . import training
from .autograd import Tensor, no_grad
from .callbacks import CallbackList, History  # noqa: F401  (History: fit returns one; its home was here)
from .data import Loader, epoch_seed
from .layers import InputLayer, Layer
from .layers.merging import Merge
from .layers.nested import NestedModel
from .symbolic import Symbol
from . import symbolic


class Model:
    """Keras's Model: layers wired into a graph by calling them on ``Input(...)``, with
    compile / fit / evaluate / predict / summary / save.

        x = Input((32, 32, 3))
        y = Conv2D(16, 3, padding="same", activation="relu")(x)
        y = Add()([x_projected, y])      # branches and merges: a residual connection
        model = Model(x, Dense(10, activation="softmax")(Flatten()(y)))

    ``Sequential`` is the special case of a straight line of layers; both train through
    the same code (minicnn/training.py). The graph is run in an order where each layer
    comes after the layers it reads (minicnn/symbolic.py finds it).
    """

    def __init__(self, inputs=None, outputs=None, name=None):
        self.name = name or ("sequential" if isinstance(self, Sequential) else "model")
        self.layers = []
        self.built = False
        self.input_shape = self.output_shape = None
        self.optimizer = self.loss = self.heads = None  # heads: a multi_output.Heads, compiled with several outputs
        self.metrics, self.metric_counters = [], {}
        self.history = None
        self.metadata = {}
        self.stop_training = False
        self.diverged = None  # where fit found the loss NaN or infinite: {epoch, step, loss}
        self.parallel = None  # a distributed.DataParallel when training over several ranks
        self._layers_changed = False  # add() / pop() since the optimizer was bound
        self.fit_seed = None  # the seed of the current (or last) fit's shuffles and dropout masks
        self.resume_from = None  # {epoch, seed}: set by callbacks.BackupAndRestore as fit begins
        self._many = (False, False)  # (several inputs?, several outputs?): _wire sets a functional model's
        if inputs is not None or outputs is not None:
            self._wire(inputs, outputs)

    # --- the graph (functional models) ------------------------------------------------
    def _wire(self, inputs, outputs):
        # Model(inputs={"image": a, "meta": b}, outputs={"kind": k}): x and y keyed by those
        # names, predict's outputs too; the symbols run in the dicts' order
        self._input_keys, self._output_keys = _keys(inputs, "inputs"), _keys(outputs, "outputs")
        inputs = list(inputs.values()) if isinstance(inputs, dict) else inputs
        outputs = list(outputs.values()) if isinstance(outputs, dict) else outputs
        many_in, many_out = isinstance(inputs, (list, tuple)), isinstance(outputs, (list, tuple))
        self.inputs = list(inputs) if many_in else [inputs]
        self.outputs = list(outputs) if many_out else [outputs]
        for symbol in self.inputs + self.outputs:
            if not isinstance(symbol, Symbol):
                raise TypeError(f"Model(inputs, outputs): give Input(...) symbols and the symbols layers "
                                f"returned for them, not {type(symbol).__name__}")
        for symbol in self.inputs:
            if not isinstance(symbol.layer, InputLayer):
                raise ValueError(f"Model: input {symbol.name} is not an Input(...) but a layer's output")
        self.nodes = symbolic.graph(self.inputs, self.outputs)
        unique = list({id(n.layer): n.layer for n in self.nodes}.values())  # a shared layer once
        names = set()
        for layer in [s.layer for s in self.inputs] + unique:
            if layer.name in names and layer._name is None:  # Keras-style: conv2d, conv2d_1, ...
                base, k = layer.name, 0
                while layer.name in names:
                    k += 1
                    layer._name = f"{base}_{k}"
                for w in layer._weights:  # built (and named) at its call, before this name
                    w.name = f"{layer.name}/{w.name.rsplit('/', 1)[-1]}"
            elif layer.name in names:
                raise ValueError(f"{self.name}: two layers are named {layer.name!r}; give them unique names")
            names.add(layer.name)
        self.layers = unique
        self.input_shape = self.inputs[0].shape if not many_in else [s.shape for s in self.inputs]
        self.output_shape = self.outputs[0].shape if not many_out else [s.shape for s in self.outputs]
        self._many = (many_in, many_out)
        self.built = True

    def build(self, input_shape, device=None):
        """A functional model is built where it is defined; this only checks the shape."""
        shape = tuple(input_shape)[1:] if input_shape and tuple(input_shape)[0] is None else tuple(input_shape)
        if shape != tuple(self.input_shape):
            raise ValueError(f"{self.name} takes inputs {(None,) + tuple(self.input_shape)}, not {(None,) + shape}")
        return self

    def _run(self, x, training, before_softmax=()):
        """Every node's value for input(s) x: {id(symbol): Tensor}. before_softmax: the
        output symbols whose layer gives the logits before its softmax instead."""
        xs = list(x) if self._many[0] else [x]
        if len(xs) != len(self.inputs):
            raise ValueError(f"{self.name} takes {len(self.inputs)} inputs, got {len(xs)}")
        values = {}
        for symbol, value in zip(self.inputs, xs):
            value = value if isinstance(value, Tensor) else Tensor(value)
            if tuple(value.shape[1:]) != symbol.shape:
                raise ValueError(f"{self.name}: input {symbol.name} takes {(None,) + symbol.shape}, "
                                 f"got {tuple(value.shape)}")
            values[id(symbol)] = value
        stop = {id(symbol) for symbol in before_softmax}
        for node in self.nodes:
            args = [values[id(s)] for s in node.inputs]
            arg = args if len(args) > 1 or isinstance(node.layer, Merge) else args[0]
            if id(node) in stop:
                values[id(node)] = _pre_activation(node.layer, arg, training)
            else:
                values[id(node)] = node.layer(arg, training=training)
        return values

    def __call__(self, x, training=None):
        """x Tensor (N, ...) (a list of them for several inputs, or a dict keyed by input
        name) -> the output Tensor(s): a list for several outputs, a dict for a model whose
        outputs were given as one."""
        if symbolic.is_symbolic(x):
            return self._as_layer()(x)
        if isinstance(x, dict):
            x = multi_output.by_name(x, self.input_names, self.name, "x", "tensors", "inputs")
            x = x if self._many[0] else x[0]
        values = self._run(x, training)
        outputs = [values[id(s)] for s in self.outputs]
        return self._shaped_outputs(outputs) if self._many[1] else outputs[0]

    def _shaped_outputs(self, outputs):
        """A list of outputs, one per output symbol, as the model gives them: a dict keyed
        by output name where Model(outputs={...}) was a dict, else the list."""
        return dict(zip(self._output_keys, outputs)) if getattr(self, "_output_keys", None) else outputs

    @property
    def input_names(self):
        """The names x may be keyed by (Keras's): Model(inputs={...})'s keys, else each
        Input's name, in input order. A Sequential's input has none ([])."""
        if getattr(self, "_input_keys", None):
            return list(self._input_keys)
        return [symbol.name for symbol in getattr(self, "inputs", [])]

    @property
    def output_names(self):
        """The names y, compile's loss and metrics, and the logs key the outputs by
        (Keras's): Model(outputs={...})'s keys, else each output layer's name, in output
        order. A Sequential's output has none ([]): give it arrays and values, not dicts."""
        if getattr(self, "_output_keys", None):
            return list(self._output_keys)
        return [symbol.layer.name for symbol in getattr(self, "outputs", [])]

    def _as_layer(self):
        """This model as a layer of another (called on a Symbol): one NestedModel however
        often it is called, so every call shares its weights."""
        if getattr(self, "_nested", None) is None:
            self._nested = NestedModel(self)
        return self._nested

    def _forward_logits(self, x, training, logits_wanted=True):
        """(output, None), or (None, logits) when the output layer ends in a softmax
        (what the fused cross-entropy wants; logits_wanted=False for a loss that takes the
        output itself). Training needs one output (any number of inputs)."""
        if self._many[1]:
            raise ValueError(f"{self.name} has {len(self.outputs)} outputs, so there is no one set of class "
                             "scores; predict and model(x) give all of them")
        return self._outputs_and_logits(x, training, [logits_wanted])[0]

    def _outputs_and_logits(self, x, training, logits_wanted):
        """[(output, None) or (None, logits)] for each output, as _forward_logits gives
        them for one; logits_wanted: a bool per output. An output that other layers read
        too runs its softmax (they need it), and its loss takes the probabilities."""
        read = {id(s) for node in self.nodes for s in node.inputs}
        stop = [symbol for symbol, wanted in zip(self.outputs, logits_wanted)
                if wanted and getattr(symbol.layer, "activation_name", None) == "softmax" and id(symbol) not in read]
        values, stopped = self._run(x, training, before_softmax=stop), {id(s) for s in stop}
        return [(None, values[id(s)]) if id(s) in stopped else (values[id(s)], None) for s in self.outputs]

    @property
    def device(self):
        for layer in self.layers:
            if layer.built:
                return layer.device
        return backend.get_device()

    @property
    def dtype(self):
        return self.layers[0].dtype if self.layers else numpy.dtype(backend.DEFAULT_DTYPE)

    def to(self, device):
        """Move all weights (and optimizer state) explicitly to 'cpu' or 'gpu'."""
        for layer in self.layers:
            layer.to(device)
        if self.optimizer is not None and self.optimizer.params is not None:
            for name, arrays in self.optimizer.slots.items():
                self.optimizer.slots[name] = [backend.to_device(a, device) for a in arrays]
        return self

    # --- weights and modes ------------------------------------------------------------
    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    @property
    def trainable(self):
        """False once ``model.trainable = False`` froze it (Keras's idiom for a pretrained base)."""
        return getattr(self, "_trainable", True)

    @trainable.setter
    def trainable(self, value):
        """Freeze (False) or unfreeze every layer, as Keras's: no weight of a frozen model
        trains, and its batch-norm layers run in inference mode."""
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = value

    @property
    def losses(self):
        """The layers' weight penalties (kernel_regularizer=...) on the current weights, as
        scalar Tensors: what fit adds to the loss (Keras's ``model.losses``)."""
        return [penalty for layer in self.layers for penalty in layer.regularization_losses()]

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self):
        return [a for layer in self.layers for a in layer.get_weights()]

    def set_weights(self, arrays):
        arrays = list(arrays)
        expected = sum(len(layer.weights) for layer in self.layers)
        if len(arrays) != expected:
            raise ValueError(f"{self.name} has {expected} weight arrays, got {len(arrays)}")
        for layer in self.layers:
            n = len(layer.weights)
            layer.set_weights(arrays[:n])
            arrays = arrays[n:]

    def train(self, mode=True):
        """Training mode: dropout active, batch-norm uses and updates batch statistics."""
        stack = list(self.layers)
        while stack:  # sub-layers too: a block's batch-norm follows the model's mode
            layer = stack.pop()
            layer.training = mode
            stack += layer.sublayers
        return self

    def eval(self):
        """Inference mode: dropout off, batch-norm uses its moving averages."""
        return self.train(False)

    def class_scores(self, x, training=False):
        """x Tensor (N, ...) -> the class scores (N, K) before a final softmax (the
        logits), as a differentiable Tensor: what saliency maps take the gradient of,
        since a softmax output also moves when *other* classes' scores change."""
        output, logits = self._forward_logits(x, training)
        return output if logits is None else logits

    # --- training -------------------------------------------------------------------
    def compile(self, optimizer=None, loss=None, metrics=None, loss_weights=None, weighted_metrics=None):
        """optimizer: 'sgd', 'adam', 'adamw', 'nadam', 'adamax', 'rmsprop', 'adagrad', 'adadelta'
        (Keras's defaults) or an Optimizer (wrapped in a
        LossScaleOptimizer when a layer's policy is "mixed_float16", as Keras does); loss: a name such as
        'categorical_crossentropy' or a minicnn.losses object; metrics: a list of
        'accuracy' (or 'acc', or Keras's 'categorical_accuracy' / 'sparse_categorical_accuracy')
        and 'top5' (or Keras's 'top_k_categorical_accuracy'), or functions fn(y_true, y_pred) of
        your own (metrics.FunctionMetric), logged under their __name__. weighted_metrics: more
        of them, each sample counted with its weight (sample_weight, times class_weight's in
        training), as Keras's; logged as 'weighted_<name>' where a plain metric has the name.
        A model of several outputs takes a loss per output, loss_weights and metrics per
        output, each a dict keyed by output name or a list in output order
        (minicnn/multi_output.py)."""
        if optimizer is None or loss is None:
            raise ValueError("compile() needs an optimizer ('sgd', 'adam', 'adamw', 'nadam', 'adamax', 'rmsprop', "
                             "'adagrad', 'adadelta' or an Optimizer) "
                             "and a loss ('categorical_crossentropy', 'sparse_categorical_crossentropy', 'mse', 'mae', "
                             "'binary_crossentropy', ... (minicnn.losses has Keras's names) or a minicnn.losses object)")
        if self._many[1]:  # a loss (and metrics) per output
            heads = multi_output.Heads(self, loss, loss_weights, metrics, weighted_metrics)
            for symbol, one in zip(self.outputs, heads.losses):
                _refuse_logits_of_softmax(symbol.layer, one)
            loss, counters = heads.losses, {}
        else:
            if loss_weights is not None:
                raise ValueError("compile(): loss_weights weighs the losses of a model of several outputs against "
                                 f"each other; {self.name} has one output (scale the learning rate instead)")
            if isinstance(loss, dict):  # {output name: loss}, as Keras takes it for one output too
                loss = model_data.only_output_entry(self, loss, "compile()", "loss")
            if isinstance(metrics, dict):
                metrics = model_data.only_output_entry(self, metrics, "compile()", "metrics")
            if isinstance(weighted_metrics, dict):
                weighted_metrics = model_data.only_output_entry(self, weighted_metrics, "compile()",
                                                                "weighted_metrics")
            heads, loss = None, losses_mod.get(loss)
            if self.layers:
                _refuse_logits_of_softmax(self.layers[-1], loss)
            one = lambda m: [m] if isinstance(m, str) or callable(m) else list(m or [])  # noqa: E731  (not its letters)
            counters = metrics_mod.batch_counters(one(metrics), loss, weighted_metrics=one(weighted_metrics))
        self.optimizer = optimizers_mod.get(optimizer)
        if mixed_precision.uses_mixed_float16(self.layers) and not isinstance(
                self.optimizer, optimizers_mod.LossScaleOptimizer):
            # float16 gradients need loss scaling (optimizers/loss_scale.py), as Keras 3 adds it
            self.optimizer = optimizers_mod.LossScaleOptimizer(self.optimizer)
        self.loss, self.heads = loss, heads
        # the names the metrics are logged under (for several outputs, compile's metrics as given)
        self.metrics = list(counters) if heads is None else metrics
        self.metric_counters = counters
        if self.built:
            self.optimizer.build(self.trainable_weights)
        return self

    def _require_compiled(self, what):
        if self.optimizer is None:
            raise RuntimeError(f"{what}(): compile() the model first")

    def _bind_optimizer(self):
        """Make the optimizer cover every trainable weight of the model as it is now: built
        on first use, and rebound (its state kept) when layers were added or popped since.
        Weights it holds that are frozen (requires_grad False) stay bound, and step skips
        them; weights no longer in the model are let go."""
        optimizer, trainable = self.optimizer, self.trainable_weights
        self._layers_changed = False
        if optimizer.params is None:
            optimizer.build(trainable)
            return
        bound, present = {id(p) for p in optimizer.params}, {id(w) for w in self.weights}
        missing = [w for w in trainable if id(w) not in bound]
        if missing or not bound <= present:
            optimizer.rebind([p for p in optimizer.params if id(p) in present] + missing)

    @property
    def _metric_finals(self):
        """{logged name: result} for the metrics whose figure comes from a vector of sums
        (metrics.results): training.Sums computes them so."""
        return self.heads.finals if self.heads is not None else metrics_mod.results(self.metric_counters)

    @property
    def _result_names(self):
        """The names evaluate returns after 'loss', in order: the metrics, or for a model
        of several outputs each output's loss, then each output's metrics."""
        return self.heads.log_names if self.heads is not None else self.metrics


    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One optimizer step on a batch already on the model's device. Returns (loss,
        number correct) as device scalars: reading them would make a GPU wait, so the
        caller decides when. sample_weight ((N,), on the device) and class_weight: as fit's.
        A model of several outputs takes y as fit does and returns (loss, {log name: sum
        over the batch}) for each output's loss and metrics (multi_output.py)."""
        self._require_compiled("train_on_batch")
        if self.optimizer.params is None or self._layers_changed:
            self._bind_optimizer()
        y = model_data.targets_by_position(self, y, "train_on_batch")
        if self.heads is not None:
            if class_weight is not None:
                raise ValueError(f"train_on_batch(): class_weight weighs one output's classes; {self.name} has "
                                 f"{len(self.heads.names)} outputs: use sample_weight")
            loss, sums, _ = training.train_step(self, x, y, None, sample_weight)
            return loss, sums
        weights = training.class_weight_array(class_weight, self.output_shape[-1], self.device, self.loss)
        loss, _, scores = training.train_step(self, x, y, weights, sample_weight)
        if not self.loss.classifies:  # targets are values: nothing to count as right
            return loss, None
        return loss, metrics_mod.correct_count(scores, y)

    def test_on_batch(self, x, y, sample_weight=None):
        """Loss on one batch in inference mode, without a step; as Keras, a float, or
        [loss, *metrics] when compiled with metrics (reading them synchronises).
        sample_weight (N,): the loss weighted as evaluate's."""
        self._require_compiled("test_on_batch")
        on_device = lambda a, dtype=None: backend.to_device(a, self.device, dtype=dtype)  # noqa: E731
        x = model_data.inputs_by_position(self, x, "test_on_batch")
        x = [on_device(one, self.dtype) for one in x] if self._many[0] else on_device(x, self.dtype)
        y = model_data.targets_by_position(self, y, "test_on_batch")
        y = [on_device(one) for one in y] if self.heads else on_device(y)
        n = multi_output.batch_length(y)
        if sample_weight is not None:
            training.check_sample_weight(sample_weight, n, "test_on_batch")
            sample_weight = on_device(sample_weight, numpy.float32)
        loss, counts = training.test_step(self, x, y, sample_weight)
        if not self._result_names:
            return float(loss)
        sums = training.Sums(backend.get_array_module(loss), self._result_names, 0,
                             self._metric_finals)
        sums.add(0, loss, counts, n)
        return [float(loss)] + [sums.means()[m] for m in self._result_names]

    def stop_for_nonfinite_loss(self, epoch, step, loss):
        """Stop fit because the loss of this batch is NaN or infinite (``self.diverged``)."""
        training.stop_for_nonfinite_loss(self, epoch, step, loss)

    def reseed(self, seed, epoch):
        """Give each layer with a random stream (Dropout) a fresh seed for ``epoch``,
        derived from ``seed``: a run resumed at an epoch draws the masks an uninterrupted
        run would have drawn."""
        everything, stack = [], list(reversed(self.layers))
        while stack:  # the layers, and the layers they own, in order
            layer = stack.pop()
            everything.append(layer)
            stack += reversed(layer.sublayers)
        for index, layer in enumerate(everything):
            if hasattr(layer, "reseed"):  # a layer's own seed, where given, wins (as in Keras)
                own = getattr(layer, "seed", None)
                layer.reseed(epoch_seed(seed, epoch, index) if own is None else epoch_seed(own, epoch))

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_data=None, validation_split=0.0, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, seed=None, validation_batch_size=None, validation_freq=1, steps_per_epoch=None,
            validation_steps=None):
        """Train for epochs ``initial_epoch .. epochs - 1``; returns a History (also at
        ``self.history``). The loop itself is minicnn/training.py.

        x, y: arrays (host or device; x (N, ...), y integer labels (N,)/(N, 1) or one-hot
        (N, K), or for an elementwise loss such as 'mse' targets shaped as the output),
        moved once to the model's device; or x a ``minicnn.data.Loader`` (y None)
        that already holds the data there with its shuffling, augmentation and
        normalisation; or x a generator or other source of (x_batch, y_batch[,
        sample_weight_batch]) batches (y None; batch_stream.py), an epoch being
        steps_per_epoch of them (all of a source with a length, when left out), as Keras's
        fit(generator). batch_size defaults to 32, as in Keras. A model of several inputs
        takes x as a list of arrays, one per input; one of several outputs takes y as a list
        of arrays, one per output, or a dict keyed by output name (multi_output.py).
        validation_data: (x_val, y_val), (x_val, y_val, sample_weight_val), a Loader or a
        source of batches (validation_steps of them),
        evaluated after every epoch (every validation_freq-th with validation_freq, as
        Keras: epochs validation_freq, 2 * validation_freq, ...), in batches of
        validation_batch_size (default: batch_size; a Loader keeps its own).
        callbacks: ``minicnn.callbacks`` objects (or any object with some of their hooks),
        called as Keras calls them; one that sets ``model.stop_training = True`` ends
        training. Each epoch's logs hold loss, the metrics, val_loss, val_<metrics> and
        learning_rate.
        A loss that becomes NaN or infinite stops training with a message naming the
        epoch and batch (``self.diverged`` says where); that epoch reaches no callback.
        class_weight: Keras's {class index: weight}: each training sample's loss is
        multiplied by its true class's weight (1 for a class left out), so a rare class
        counts for more; the logged loss is that weighted one; validation is not weighted by class.
        With binary_crossentropy and one output the classes are its 0/1 targets (rounded), as Keras's.
        sample_weight: (N,) Keras's per-sample weights, the same way (times the class's
        weight when both are given); with a Loader, give them to the Loader. validation_split
        keeps the held-out samples' weights for the validation loss.
        seed: the shuffle order and dropout masks of epoch e derive from (seed, e).
        verbose: 0 silent; 1 a live progress bar on a terminal or in Jupyter, and in a
        log file a line every 30 s and one per epoch; 2 one line per epoch.
        """
        return training.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_data,
                            validation_split, shuffle, initial_epoch, seed, class_weight, sample_weight,
                            validation_batch_size, validation_freq, steps_per_epoch, validation_steps)

    # --- inference --------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, sample_weight=None, return_dict=False,
                 steps=None, callbacks=None):
        """Loss over (x, y), a Loader or ``steps`` batches of a source (as fit's), in
        inference mode: a float, or [loss, *metrics]
        in compile order when compiled with metrics (as Keras); with return_dict=True
        {"loss": ..., metric: ...} instead. sample_weight (N,): each sample's loss weighted
        as fit weights it (a Loader's own weights count the same way); the metrics stay
        unweighted, as Keras's compile(metrics=...). callbacks: called at on_test_begin, each
        batch's on_test_batch_begin / _end and on_test_end, as Keras's evaluate calls them."""
        self._require_compiled("evaluate")
        loader = model_data.loader(self, x, y, batch_size, False, 0, "evaluate", sample_weight, steps)
        hooks = CallbackList(callbacks, self, {"steps": len(loader), "verbose": verbose}) if callbacks else None
        start = time.perf_counter()
        result = training.evaluate_loader(self, loader, hooks)  # data-parallel: over every rank's shard
        if verbose and (self.parallel is None or self.parallel.comm.is_root):
            shown = "".join(" - " + progress.shown(m, result[m]) for m in self._result_names)
            print(f"{len(loader)} steps - {time.perf_counter() - start:.1f}s - loss: {result['loss']:.4f}{shown}",
                  flush=True)
        names = self._result_names
        if return_dict:
            return {"loss": result["loss"], **{m: result[m] for m in names}}
        return [result["loss"]] + [result[m] for m in names] if names else result["loss"]

    def predict(self, x, batch_size=32, verbose=0, steps=None, callbacks=None):
        """Model outputs for x (N, ...), a Loader's batches or ``steps`` batches of a
        source (x_batch, or tuples whose first item is it), in inference mode.
        Returns an array on x's own device (NumPy in, NumPy out; a Loader's device; a
        source's: its first batch's). callbacks: called at on_predict_begin, each batch's
        on_predict_batch_begin / _end (logs {'outputs': the batch's outputs}) and
        on_predict_end, as Keras's predict calls them."""
        hooks = CallbackList(callbacks, self, {"verbose": verbose}) if callbacks else None
        if batch_stream.is_source(x):
            stream = batch_stream.BatchStream(x, steps, "predict", self.device if self.built else None, self.dtype,
                                              labels=False)
            batches, home = (xb for xb, _ in stream.batches()), stream.home
        elif steps is not None:
            raise ValueError("predict(): steps counts the batches of a generator; with arrays or a Loader leave it out")
        elif isinstance(x, Loader):
            batches, home = (xb for xb, _ in x.batches()), x.device
        else:
            xs = model_data.input_arrays(self, x, "predict")
            n = len(xs[0])
            if n == 0:
                raise ValueError("predict(): x holds no samples")
            if any(len(one) != n for one in xs):
                raise ValueError(f"predict(): the inputs hold {[len(one) for one in xs]} samples; give as many "
                                 "for each input")
            cut = (lambda a, b: [one[a:b] for one in xs]) if len(xs) > 1 else (lambda a, b: xs[0][a:b])
            batches = (cut(start, start + batch_size) for start in range(0, n, batch_size))
            home = backend.device_of(xs[0])
        outputs = []
        if hooks is not None:
            hooks.call("on_predict_begin", {})
        with no_grad():
            for step, xb in enumerate(batches):
                if not self.built:
                    self.build(xb.shape[1:])
                if hooks is not None and hooks.wants_predict_batches:
                    hooks.call("on_predict_batch_begin", step, {})
                to_model = lambda a: Tensor(backend.to_device(a, self.device, dtype=self.dtype))  # noqa: E731
                out = self([to_model(a) for a in xb] if isinstance(xb, list) else to_model(xb), training=False)
                if isinstance(out, dict):
                    outputs.append({k: o.data for k, o in out.items()})
                else:
                    outputs.append([o.data for o in out] if isinstance(out, list) else out.data)
                if hooks is not None and hooks.wants_predict_batches:
                    hooks.call("on_predict_batch_end", step, {"outputs": outputs[-1]})
        if hooks is not None:
            hooks.call("on_predict_end", {})
        first = outputs[0]
        xp = backend.get_array_module(next(iter(first.values())) if isinstance(first, dict)
                                      else first[0] if isinstance(first, list) else first)
        if isinstance(outputs[0], dict):  # Model(outputs={...}): a dict of arrays, as Keras
            return {k: backend.to_device(xp.concatenate([o[k] for o in outputs]), home) for k in outputs[0]}
        if isinstance(outputs[0], list):  # several outputs: one array each, as Keras
            return [backend.to_device(xp.concatenate([o[k] for o in outputs]), home) for k in range(len(outputs[0]))]
        return backend.to_device(xp.concatenate(outputs), home)

    def predict_on_batch(self, x):
        """Model outputs for one batch x (N, ...), in inference mode, as one forward pass:
        an array on x's own device, as predict."""
        x = model_data.inputs_by_position(self, x, "predict_on_batch")
        first = x[0] if isinstance(x, (list, tuple)) and self._many[0] else x
        return self.predict(x, batch_size=max(len(first), 1))

    # --- saving ----------------------------------------------------------------------------
    def save(self, path, include_optimizer=True, metadata=None, keep_previous=False):
        """Write the model to ``path`` (.npz: architecture as JSON, weights, optimizer
        state), atomically. Load it back with ``minicnn.models.load_model(path)``.
        keep_previous: keep the file it replaces, as ``NAME.previous.npz``."""
        from .saving import save_model
        save_model(self, path, include_optimizer, metadata, keep_previous)

    def save_weights(self, path):
        """Write the weights alone to ``path`` (.npz), atomically; ``load_weights`` reads them
        back into a model of the same architecture."""
        from .saving import save_weights
        save_weights(self, path)

    def load_weights(self, path):
        """Set the weights from a file of ``save_weights`` (or of ``save``: its weights),
        after checking that they fit this model layer by layer."""
        from .saving import load_weights
        load_weights(self, path)
        return self

    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or the one at position ``index`` of ``self.layers``
        (as Keras: give one of the two)."""
        if (name is None) == (index is None):
            raise ValueError(f"get_layer(): give a layer name or an index, not both or neither "
                             f"(got name={name!r}, index={index!r})")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer(index={index}): {self.name} has {len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer(): no layer named {name!r}; {self.name} has "
                         f"{[layer.name for layer in self.layers]}")

    def get_config(self):
        """The architecture as a JSON-able dict (what ``save`` stores)."""
        from .saving import model_config
        return model_config(self)

    @classmethod
    def from_config(cls, config):
        """A new model, freshly initialised, from ``get_config()``'s dict (Keras's)."""
        from .saving import rebuild_model
        return rebuild_model(config, "from_config()")

    def to_json(self, **kwargs):
        """get_config() as JSON text (json.dumps's keyword arguments, as indent=2, pass on);
        ``model_from_json`` reads it back."""
        return json.dumps(self.get_config(), **kwargs)

    # Keras 3's names for the weights
    variables = property(lambda self: self.weights)
    trainable_variables = property(lambda self: self.trainable_weights)
    non_trainable_variables = property(lambda self: self.non_trainable_weights)

    @property
    def metrics_names(self):
        """'loss' then the compiled metrics (for several outputs, each output's loss, then its
        metrics), in the order evaluate() returns them (Keras 2's)."""
        return ["loss", *self._result_names]

    # --- description ---------------------------------------------------------------------

    def summary(self, print_fn=print, line_length=98, arithmetic=False, expand_nested=False, show_trainable=False):
        """Each layer's output shape, parameter count and the layers it reads ("Connected
        to"), then the totals, in Keras's format; arithmetic=True, expand_nested=True and
        show_trainable=True as Sequential.summary."""
        model_summary.graph_summary(self, print_fn, line_length, arithmetic, expand_nested, show_trainable)


class Sequential(Model):
    """Layers applied in order: ``Sequential([Conv2D(...), MaxPooling2D(), ...])``; the
    input's shape from the first layer's ``input_shape=`` or, as in Keras, an ``Input``
    first: ``Sequential([Input((32, 32, 3)), Conv2D(...), ...])``."""

    def __init__(self, layers=None, name="sequential"):
        super().__init__(name=name)
        for layer in layers or ():
            self.add(layer)

    # --- assembling ---------------------------------------------------------------
    def add(self, layer):
        if isinstance(layer, Symbol):  # Input(...) gives a Symbol; its InputLayer holds the shape
            if layer.inputs:
                raise TypeError(f"{self.name}.add: got {layer!r}, the output of a layer already applied "
                                f"to inputs; a Sequential takes layers (build a functional Model for this)")
            layer = layer.layer
        if isinstance(layer, Model):  # Keras's nesting: Sequential([base, Dense(10)])
            if layer is self:
                raise ValueError(f"{self.name}.add: a model cannot be a layer of itself")
            layer = layer._as_layer()
        if isinstance(layer, InputLayer):
            if self.layers or self.built:
                raise ValueError(f"{self.name}.add: an Input {(None,) + layer.shape} can only come first, "
                                 f"before any layer")
            return self.build(layer.shape)  # as Keras: built now, each layer added builds at once
        if not isinstance(layer, Layer):
            hint = " (a class: call it, e.g. Dense(10))" if isinstance(layer, type) else ""
            raise TypeError(f"{self.name}.add: expects a Layer, got {layer!r}{hint}")
        names = {l.name for l in self.layers}
        if layer._name is None:  # Keras-style unique names: conv2d, conv2d_1, ...
            base, k = layer.name, 0
            while layer.name in names:
                k += 1
                layer._name = f"{base}_{k}"
        elif layer.name in names:
            raise ValueError(f"{self.name}: a layer named {layer.name!r} is already in the model")
        self.layers.append(layer)
        self._layers_changed = True
        if self.built:
            self.output_shape = layer.build_for(self.output_shape, self.device)
        elif len(self.layers) == 1 and layer.input_shape_hint is not None:
            self.build(layer.input_shape_hint)
        return self

    def pop(self):
        """Remove the last layer and return it, as Keras's ``pop``: the model's output is
        then the layer before's (a new head goes on with ``add``; the next fit trains it)."""
        if not self.layers:
            raise TypeError(f"pop(): {self.name} has no layers to remove")
        layer = self.layers.pop()
        self._layers_changed = True
        if self.built:
            self.output_shape = self.layers[-1].output_shape if self.layers else self.input_shape
        return layer

    def build(self, input_shape, device=None):
        """Create every layer's weights for inputs of ``input_shape``, e.g. (32, 32, 3)
        or (None, 32, 32, 3), on ``device`` (default: the current one)."""
        shape = tuple(input_shape)
        if shape and shape[0] is None:
            shape = shape[1:]
        device = device or (self.device if self.built else backend.get_device())
        self.input_shape = shape
        for layer in self.layers:
            shape = layer.build_for(shape, device)
        self.output_shape, self.built = shape, True
        return self

    # --- forward ------------------------------------------------------------------
    def __call__(self, x, training=None):
        """x Tensor (N, ...) -> output Tensor. The first call builds the model, as in Keras.
        On a Symbol it is a layer of the functional model being built."""
        if symbolic.is_symbolic(x):
            return self._as_layer()(x)
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if not self.built:
            self.build(x.shape[1:], x.device)
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def _forward_logits(self, x, training, logits_wanted=True):
        """Run the model, stopping before a final softmax: returns (output, logits).

        When the last layer ends in a softmax, output is None and logits are the
        inputs to that softmax (what the fused cross-entropy wants); logits_wanted=False
        (a loss that takes the output itself) runs the softmax too."""
        *body, last = self.layers
        for layer in body:
            x = layer(x, training=training)
        if logits_wanted and last.activation_name == "softmax":
            last.build_for(x.shape[1:], x.device)
            return None, _pre_activation(last, x, training)
        return last(x, training=training), None

    def summary(self, print_fn=print, line_length=65, arithmetic=False, expand_nested=False, show_trainable=False):
        """Print each layer's output shape and parameter count, then the totals, in
        Keras's format. ``arithmetic=True`` adds under each layer how those numbers
        follow from its input: the output-size formula floor((n + 2p - f) / s) + 1 and
        the parameter count ((f*f*c_in) + 1)*c_out, with the layer's numbers filled in.
        ``expand_nested=True`` lists a nested model's layers under it, marked '| ' per level.
        ``show_trainable=True`` adds Keras's Trainable column: Y, N (frozen), - (no weights)."""
        model_summary.stack_summary(self, print_fn, line_length, arithmetic, expand_nested, show_trainable)


def _keys(symbols, what):
    """The keys of Model(inputs=/outputs=) given as a dict (None for a symbol or a list),
    checked: names, as strings, for at least one symbol."""
    if not isinstance(symbols, dict):
        return None
    if not symbols:
        raise ValueError(f"Model: {what} is an empty dict; give at least one symbol")
    bad = [key for key in symbols if not isinstance(key, str) or not key]
    if bad:
        raise TypeError(f"Model: {what} is a dict, so its keys name the {what} (x, y and the logs are keyed by "
                        f"them) and must be non-empty strings; got {bad}")
    return list(symbols)


def _refuse_logits_of_softmax(layer, loss):
    """A ValueError when a layer ending in a softmax feeds a loss told it gets logits."""
    if loss.from_logits and getattr(layer, "activation_name", None) == "softmax":
        raise ValueError(f"compile(): {layer.name} ends in a softmax, so the model outputs "
                         "probabilities, but the loss has from_logits=True (it would treat them as "
                         "logits). Leave from_logits out: minicnn then feeds the loss the logits before "
                         "the softmax, the numerically stable way. Or end the model without a softmax.")


def _pre_activation(layer, x, training):
    """A softmax layer's input: its pre_activation, which for a model nested as a layer
    runs that model and so needs the mode (its batch-norm and dropout follow it)."""
    return layer.pre_activation(x, training) if isinstance(layer, NestedModel) else layer.pre_activation(x)


def model_from_json(text):
    """A new model, freshly initialised, from ``to_json()``'s text (Keras's)."""
    try:
        config = json.loads(text)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model_from_json(): not JSON text from to_json() ({error})") from None
    return Model.from_config(config)


def clone_model(model):
    """A new model of the same architecture on the same device, its weights drawn afresh
    by its layers' initializers, not compiled (Keras's clone_model): for a second member
    of an ensemble, or to train again from scratch."""
    with backend.device(model.device):
        return Model.from_config(model.get_config())


def load_model(path, compile=True, device=None, custom_objects=None):
    """A model saved with ``model.save(path)``; see ``minicnn.saving.load_model``."""
    from .saving import load_model as load
    return load(path, compile, device, custom_objects)
