"""Training a model of several outputs, as Keras's: a loss for each output, the weighted
sum of them minimised, and each output's loss and metrics logged under its name.

    h = Dense(64, activation="relu")(Flatten()(Input((32, 32, 3))))
    model = Model(image, [Dense(10, activation="softmax", name="kind")(h), Dense(1, name="size")(h)])
    model.compile("adam", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"},
                  loss_weights={"kind": 1.0, "size": 0.1}, metrics={"kind": ["accuracy"]})
    model.fit(x, {"kind": labels, "size": sizes})   # or [labels, sizes], in output order

An output is named by its layer (Dense(..., name="kind")), or by its key where the
outputs were given as a dict (Model(image, {"kind": ..., "size": ...})). compile's loss, loss_weights and
metrics each take a dict keyed by those names, or a list in the order of
Model(outputs=[...]); a single loss serves every output, as does a flat list of metrics.
The logs (fit's History, evaluate's return_dict) hold

    loss             sum over outputs of loss_weight * that output's loss, plus the weight
                     penalties (what the optimizer minimises)
    <output>_loss    that output's own loss, not weighted
    <output>_<name>  each of its metrics

in that order. sample_weight (one weight per sample) weighs every output's loss alike, and
its weighted_metrics (per output, given as metrics are);
class_weight, which weighs by one output's classes, is refused, as Keras 3 refuses it.
"""
import numpy

from . import losses as losses_mod, metrics as metrics_mod


def _per_output(value, names, what, single):
    """value as a list with one entry per output: a dict by output name (an output left
    out gets None), a list or tuple in output order, or (single(value) true) the same value
    for every output."""
    if isinstance(value, dict):
        unknown = [key for key in value if key not in names]
        if unknown:
            raise ValueError(f"compile(): {what} names {unknown}, which are not outputs of the model; its "
                             f"outputs are {names}")
        return [value.get(name) for name in names]
    if single(value):
        return [value] * len(names)
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"compile(): {what} is a list of {len(value)}, but the model has {len(names)} outputs "
                             f"{names}; give one entry per output, or a dict keyed by output name")
        return list(value)
    raise TypeError(f"compile(): {what} must be a dict keyed by output name or a list with one entry per "
                    f"output {names}, got {type(value).__name__}")


def by_name(value, names, what, called, items, kinds):
    """A dict keyed by name (x by input name, y by output name) as a list in ``names``'
    order; a ValueError naming the names missing or not known ("x has no arrays for inputs
    ['meta']", "y has targets for ['box'], which are not outputs")."""
    missing, extra = [n for n in names if n not in value], [k for k in value if k not in names]
    if missing:  # and what it has instead, where a name was mistyped
        instead = f" (it has {items} for {extra}, which are not {kinds})" if extra else ""
        raise ValueError(f"{what}(): {called} has no {items} for {kinds} {missing}{instead}; the {kinds} are {names}")
    if extra:
        raise ValueError(f"{what}(): {called} has {items} for {extra}, which are not {kinds}; the {kinds} are {names}")
    return [value[n] for n in names]


def _is_loss(value):
    return isinstance(value, str) or hasattr(value, "get_config")


def _is_flat_metric_list(value):
    """A metric, or a list of metrics (names or functions), rather than one entry per output."""
    one = lambda m: isinstance(m, str) or (callable(m) and not isinstance(m, (list, tuple, dict)))  # noqa: E731
    return one(value) or (isinstance(value, (list, tuple)) and all(one(m) for m in value))


class Heads:
    """The per-output half of compile for a model of several outputs: each output's name,
    loss, loss weight and metric counters, and the step's loss over all of them."""

    def __init__(self, model, loss, loss_weights=None, metrics=None, weighted_metrics=None):
        self.names = model.output_names  # Model(outputs={...})'s keys, else the output layers' names
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"compile(): {model.name}'s outputs come from layers named {self.names}; a layer "
                             "giving two outputs leaves them no names of their own to log and to take targets by "
                             "(Model(outputs={'name': ...}) names each)")
        self.losses = []
        for name, one in zip(self.names, _per_output(loss, self.names, "loss", _is_loss)):
            if one is None:
                raise ValueError(f"compile(): output {name!r} has no loss; give every output one (its targets "
                                 "are what fit trains it toward)")
            self.losses.append(losses_mod.get(one))
        weights = _per_output(1.0 if loss_weights is None else loss_weights, self.names, "loss_weights",
                              lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
        self.weights = []
        for name, weight in zip(self.names, weights):
            weight = 1.0 if weight is None else weight
            if isinstance(weight, bool) or not isinstance(weight, (int, float, numpy.number)) \
                    or not numpy.isfinite(weight) or weight < 0:
                raise ValueError(f"compile(): loss_weights for output {name!r} must be a finite number >= 0, "
                                 f"got {weight!r}")
            self.weights.append(float(weight))
        # a flat list of metric names serves every output (Keras 2's rule); a list of lists or a dict, each its own
        wanted = _per_output([] if metrics is None else metrics, self.names, "metrics", _is_flat_metric_list)
        weighed = _per_output([] if weighted_metrics is None else weighted_metrics, self.names, "weighted_metrics",
                              _is_flat_metric_list)
        listed = lambda one: [] if one is None else list(one) if isinstance(one, (list, tuple)) else [one]  # noqa: E731
        self.counters = []
        for name, one, weighted, loss_fn in zip(self.names, wanted, weighed, self.losses):
            try:
                self.counters.append(metrics_mod.batch_counters(listed(one), loss_fn,
                                                                weighted_metrics=listed(weighted)))
            except ValueError as error:
                raise ValueError(f"compile(): output {name!r}: {error} (metrics={{'{name}': [...]}} gives each "
                                 "output its own)") from None
        self.log_names = [f"{name}_loss" for name in self.names] + [
            f"{name}_{m}" for name, counters in zip(self.names, self.counters) for m in counters]
        # {log name: result} of the metrics whose figure comes from a vector of sums (metrics.results)
        self.finals = {f"{name}_{m}": final for name, counters in zip(self.names, self.counters)
                       for m, final in metrics_mod.results(counters).items()}
        self.takes_logits = [loss_fn.takes_logits for loss_fn in self.losses]

    def get_config(self):
        """What saving stores to compile the same way again."""
        return {"loss": [loss_fn.get_config() for loss_fn in self.losses], "loss_weights": self.weights,
                "metrics": [metrics_mod.counters_config(counters) for counters in self.counters],
                "weighted_metrics": [metrics_mod.weighted_config(counters) for counters in self.counters]}

    def targets(self, y, what):
        """y as a list of arrays, one per output: from a dict keyed by output name or a list
        in output order; a ValueError naming what is missing or extra."""
        if isinstance(y, dict):
            return by_name(y, self.names, what, "y", "targets", "outputs")
        if isinstance(y, (list, tuple)):
            if len(y) != len(self.names):
                raise ValueError(f"{what}(): the model has {len(self.names)} outputs {self.names}, y holds "
                                 f"{len(y)} arrays; give one per output (or a dict keyed by output name)")
            return list(y)
        raise TypeError(f"{what}(): the model has {len(self.names)} outputs {self.names}, so y is a list of "
                        f"arrays, one per output, or a dict keyed by output name; got {type(y).__name__}")

    def loss(self, model, x, ys, sample_weight=None, training=True):
        """x: the batch as the model takes it; ys: a target array per output. Returns the
        weighted sum of the outputs' losses (a Tensor, no penalties yet) and {log name:
        sum over the batch} for each output's loss and metrics (device scalars, no
        synchronisation: an output's loss is counted as loss * batch size)."""
        forwards = model._outputs_and_logits(x, training, self.takes_logits)
        weighting = {} if sample_weight is None else {"sample_weight": sample_weight}
        total, sums, n = None, {}, len(ys[0])
        for name, loss_fn, weight, (out, logits), y in zip(self.names, self.losses, self.weights, forwards, ys):
            value = loss_fn(y, out, logits, check=False, **weighting)
            sums[f"{name}_loss"] = value.data * n
            term = value * weight if weight != 1.0 else value
            total = term if total is None else total + term
        for name, counters, (out, logits), y in zip(self.names, self.counters, forwards, ys):
            counts = metrics_mod.count_all(counters, out, logits, y, sample_weight)
            sums.update({f"{name}_{m}": value for m, value in counts.items()})
        return total, sums


def batch_length(y):
    """Samples in a batch of targets: an array, or a list of them (one per output)."""
    return len(y[0]) if isinstance(y, list) else len(y)

