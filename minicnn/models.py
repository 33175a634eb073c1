"""``Sequential``: a stack of layers with Keras's compile / fit / evaluate / predict.

This module holds the layer stack and the public methods; the training loop they call
is in training.py, its progress display in progress.py, and callbacks in callbacks/.
"""
import time

import numpy

from . import backend, losses as losses_mod, metrics as metrics_mod, optimizers as optimizers_mod, training
from .autograd import Tensor, no_grad
from .callbacks import History  # noqa: F401  (fit returns one; its home was here)
from .functions.loss import one_hot_targets
from .data import Loader, epoch_seed


class Sequential:
    """Layers applied in order: ``Sequential([Conv2D(...), MaxPooling2D(), ...])``."""

    def __init__(self, layers=None, name="sequential"):
        self.name = name
        self.layers = []
        self.built = False
        self.input_shape = self.output_shape = None
        self.optimizer = self.loss = None
        self.metrics, self.metric_counters = [], {}
        self.history = None
        self.metadata = {}
        self.stop_training = False
        self.diverged = None  # where fit found the loss NaN or infinite: {epoch, step, loss}
        for layer in layers or ():
            self.add(layer)

    # --- assembling ---------------------------------------------------------------
    def add(self, layer):
        names = {l.name for l in self.layers}
        if layer._name is None:  # Keras-style unique names: conv2d, conv2d_1, ...
            base, k = layer.name, 0
            while layer.name in names:
                k += 1
                layer._name = f"{base}_{k}"
        elif layer.name in names:
            raise ValueError(f"{self.name}: a layer named {layer.name!r} is already in the model")
        self.layers.append(layer)
        if self.built:
            self.output_shape = layer.build_for(self.output_shape, self.device)
        elif len(self.layers) == 1 and layer.input_shape_hint is not None:
            self.build(layer.input_shape_hint)
        return self

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
        for layer in self.layers:
            layer.training = mode
        return self

    def eval(self):
        """Inference mode: dropout off, batch-norm uses its moving averages."""
        return self.train(False)

    # --- forward ------------------------------------------------------------------
    def __call__(self, x, training=None):
        """x Tensor (N, ...) -> output Tensor. The first call builds the model, as in Keras."""
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if not self.built:
            self.build(x.shape[1:], x.device)
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def _forward_logits(self, x, training):
        """Run the model, stopping before a final softmax: returns (output, logits).

        When the last layer ends in a softmax, output is None and logits are the
        inputs to that softmax (what the fused cross-entropy wants)."""
        *body, last = self.layers
        for layer in body:
            x = layer(x, training=training)
        if last.activation_name == "softmax":
            last.build_for(x.shape[1:], x.device)
            return None, last.pre_activation(x)
        return last(x, training=training), None

    def class_scores(self, x, training=False):
        """x Tensor (N, ...) -> the class scores (N, K) before a final softmax (the
        logits), as a differentiable Tensor: what saliency maps take the gradient of,
        since a softmax output also moves when *other* classes' scores change."""
        output, logits = self._forward_logits(x, training)
        return output if logits is None else logits

    # --- training -------------------------------------------------------------------
    def compile(self, optimizer=None, loss=None, metrics=None):
        """optimizer: 'sgd', 'adam' or an Optimizer; loss: a name such as
        'categorical_crossentropy' or a minicnn.losses object; metrics: a list of
        'accuracy' (or 'acc') and 'top5' (or Keras's 'top_k_categorical_accuracy')."""
        if optimizer is None or loss is None:
            raise ValueError("compile() needs an optimizer ('sgd', 'adam' or an Optimizer) and a "
                             "loss ('categorical_crossentropy' or 'sparse_categorical_crossentropy')")
        loss = losses_mod.get(loss)
        if loss.from_logits and self.layers and self.layers[-1].activation_name == "softmax":
            raise ValueError(f"compile(): {self.layers[-1].name} ends in a softmax, so the model outputs "
                             "probabilities, but the loss has from_logits=True (it would treat them as "
                             "logits). Leave from_logits out: minicnn then feeds the loss the logits before "
                             "the softmax, the numerically stable way. Or end the model without a softmax.")
        counters = {name: metrics_mod.batch_metric(name) for name in (metrics or [])}
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = loss
        self.metrics = list(metrics or [])
        self.metric_counters = counters
        if self.built:
            self.optimizer.build(self.trainable_weights)
        return self

    def _require_compiled(self, what):
        if self.optimizer is None:
            raise RuntimeError(f"{what}(): compile() the model first")

    def _prepare(self, x, y, what):
        """Validate x and y where they enter; build the model if needed."""
        if len(x) != len(y):
            raise ValueError(f"{what}(): x has {len(x)} samples but y has {len(y)}")
        if len(x) == 0:
            raise ValueError(f"{what}(): no samples")
        if not self.built:
            self.build(x.shape[1:])
        if tuple(x.shape[1:]) != self.input_shape:
            # conv nets could take other sizes, but the Dense layers could not: say it here
            raise ValueError(f"{what}(): the model was built for inputs {(None,) + self.input_shape}, "
                             f"x has shape {tuple(x.shape)}")
        if self.optimizer.params is None:
            self.optimizer.build(self.trainable_weights)
        classes = self.output_shape[-1]
        y_host = backend.to_numpy(y)  # one check up front instead of a sync every step
        if self.loss.sparse and y_host.ndim == 2 and y_host.shape[1] == classes and y_host.dtype.kind == "f":
            raise ValueError(f"{what}(): sparse_categorical_crossentropy expects integer labels "
                             f"(N,) or (N, 1), got one-hot {y_host.shape}; use "
                             f"categorical_crossentropy for one-hot labels")
        try:  # the loss's own check of label shape, type and range
            one_hot_targets(y_host, classes, numpy.dtype(numpy.float32))
        except ValueError as error:
            raise ValueError(f"{what}(): {error}") from None

    def _loader(self, x, y, batch_size, shuffle, seed, what):
        """Wrap arrays in a Loader on the model's device (one explicit copy of the
        data there), or check a Loader the caller made."""
        if isinstance(x, Loader):
            if y is not None:
                raise ValueError(f"{what}(): x is a Loader, which carries its own labels; leave y out")
            if batch_size is not None and batch_size != x.batch_size:
                raise ValueError(f"{what}(): batch_size={batch_size} given, but the Loader makes "
                                 f"batches of {x.batch_size}; set it on the Loader")
            self._prepare(x.x, x.y, what)
            if x.device != self.device:
                raise ValueError(f"{what}(): the Loader holds its data on {x.device}, the model is on "
                                 f"{self.device}; build the Loader with device='{self.device}'")
            return x
        if y is None:
            raise ValueError(f"{what}(): give labels y with x (or pass a minicnn.data.Loader as x)")
        self._prepare(x, y, what)
        return Loader(x, y, 32 if batch_size is None else batch_size, shuffle=shuffle, seed=seed,
                      device=self.device, dtype=self.dtype)

    def train_on_batch(self, x, y):
        """One optimizer step on a batch already on the model's device. Returns (loss,
        number correct) as device scalars: reading them would make a GPU wait, so the
        caller decides when."""
        loss, _, scores = training.train_step(self, x, y)
        return loss, metrics_mod.correct_count(scores, y)

    def test_on_batch(self, x, y):
        """Loss on one batch in inference mode, without a step; as Keras, a float, or
        [loss, *metrics] when compiled with metrics (reading them synchronises)."""
        self._require_compiled("test_on_batch")
        x = backend.to_device(x, self.device, dtype=self.dtype)
        y = backend.to_device(y, self.device)
        loss, counts = training.test_step(self, x, y)
        if not self.metrics:
            return float(loss)
        return [float(loss)] + [float(counts[m]) / len(y) for m in self.metrics]

    def stop_for_nonfinite_loss(self, epoch, step, loss):
        """Stop fit because the loss of this batch is NaN or infinite (``self.diverged``)."""
        training.stop_for_nonfinite_loss(self, epoch, step, loss)

    def reseed(self, seed, epoch):
        """Give each layer with a random stream (Dropout) a fresh seed for ``epoch``,
        derived from ``seed``: a run resumed at an epoch draws the masks an uninterrupted
        run would have drawn."""
        for index, layer in enumerate(self.layers):
            if hasattr(layer, "reseed"):  # a layer's own seed, where given, wins (as in Keras)
                own = getattr(layer, "seed", None)
                layer.reseed(epoch_seed(seed, epoch, index) if own is None else epoch_seed(own, epoch))

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_data=None, validation_split=0.0, shuffle=True, initial_epoch=0, seed=None):
        """Train for epochs ``initial_epoch .. epochs - 1``; returns a History (also at
        ``self.history``). The loop itself is minicnn/training.py.

        x, y: arrays (host or device; x (N, ...), y integer labels (N,)/(N, 1) or one-hot
        (N, K)), moved once to the model's device; or x a ``minicnn.data.Loader`` (y None)
        that already holds the data there with its shuffling, augmentation and
        normalisation. batch_size defaults to 32, as in Keras.
        validation_data: (x_val, y_val) or a Loader, evaluated after every epoch.
        callbacks: ``minicnn.callbacks`` objects (or any object with some of their hooks),
        called as Keras calls them; one that sets ``model.stop_training = True`` ends
        training. Each epoch's logs hold loss, the metrics, val_loss, val_<metrics> and
        learning_rate.
        A loss that becomes NaN or infinite stops training with a message naming the
        epoch and batch (``self.diverged`` says where); that epoch reaches no callback.
        seed: the shuffle order and dropout masks of epoch e derive from (seed, e).
        verbose: 0 silent; 1 a live progress bar on a terminal or in Jupyter, and in a
        log file a line every 30 s and one per epoch; 2 one line per epoch.
        """
        return training.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_data,
                            validation_split, shuffle, initial_epoch, seed)

    # --- inference --------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=None, verbose=1):
        """Loss over (x, y) or a Loader, in inference mode: a float, or [loss, *metrics]
        in compile order when compiled with metrics (as Keras)."""
        self._require_compiled("evaluate")
        loader = self._loader(x, y, batch_size, False, 0, "evaluate")
        start = time.perf_counter()
        result = training.evaluate_loader(self, loader)
        if verbose:
            shown = "".join(f" - {m}: {result[m]:.4f}" for m in self.metrics)
            print(f"{len(loader)} steps - {time.perf_counter() - start:.1f}s - loss: {result['loss']:.4f}{shown}",
                  flush=True)
        return [result["loss"]] + [result[m] for m in self.metrics] if self.metrics else result["loss"]

    def predict(self, x, batch_size=32, verbose=0):
        """Model outputs for x (N, ...) or a Loader's batches, in inference mode.
        Returns an array on x's own device (NumPy in, NumPy out; a Loader's device)."""
        if isinstance(x, Loader):
            batches, home = (xb for xb, _ in x.batches()), x.device
        else:
            if len(x) == 0:
                raise ValueError("predict(): x holds no samples")
            batches = (x[start:start + batch_size] for start in range(0, len(x), batch_size))
            home = backend.device_of(x)
        outputs = []
        with no_grad():
            for xb in batches:
                if not self.built:
                    self.build(xb.shape[1:])
                xb = Tensor(backend.to_device(xb, self.device, dtype=self.dtype))
                outputs.append(self(xb, training=False).data)
        xp = backend.get_array_module(outputs[0])
        return backend.to_device(xp.concatenate(outputs), home)

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

    def get_config(self):
        """The architecture as a JSON-able dict (what ``save`` stores)."""
        from .saving import model_config
        return model_config(self)

    # --- description ---------------------------------------------------------------------
    def summary(self, print_fn=print, line_length=65, arithmetic=False):
        """Print each layer's output shape and parameter count, then the totals, in
        Keras's format. ``arithmetic=True`` adds under each layer how those numbers
        follow from its input: the output-size formula floor((n + 2p - f) / s) + 1 and
        the parameter count ((f*f*c_in) + 1)*c_out, with the layer's numbers filled in."""
        if not self.built:
            raise ValueError(f"{self.name} is not built yet: give the first layer input_shape=..., "
                             f"call build(input_shape), or fit/call it on data first")
        cols = (29, 26, line_length - 55)
        def row(*cells):  # each cell cut to its column, as Keras does
            return "".join(f"{c[:w - 1]:<{w}}" for c, w in zip(cells, cols)).rstrip()
        lines = [f'Model: "{self.name}"', "_" * line_length, row("Layer (type)", "Output Shape", "Param #"),
                 "=" * line_length]
        for i, layer in enumerate(self.layers):
            label = f"{layer.name} ({type(layer).__name__})"
            lines.append(row(label, str((None,) + tuple(layer.output_shape)), f"{layer.count_params()}"))
            if arithmetic:
                lines.append(f"    input {(None,) + tuple(layer.input_shape)}")
                lines += ["    " + _arithmetic_line(*item) for item in layer.arithmetic()]
            lines.append("=" * line_length if i == len(self.layers) - 1 else "_" * line_length)
        total = self.count_params()
        trainable = sum(w.size for w in self.trainable_weights)
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * line_length]
        print_fn("\n".join(lines))


def _arithmetic_line(what, expression, value, note):
    """'height, width: floor((32 + 2*1 - 3) / 1) + 1 = 32' or 'channels: 32 (one per filter)'."""
    text = f"{what}: {expression} = {value}" if expression is not None else f"{what}: {value}"
    return f"{text}   ({note})" if note else text


def load_model(path, compile=True, device=None):
    """A model saved with ``model.save(path)``; see ``minicnn.saving.load_model``."""
    from .saving import load_model as load
    return load(path, compile, device)
