"""What fit / evaluate / predict are given, checked and put in the shape a model trains on.

A model of one input takes x as an array; one of several, a list of arrays in the order
of ``Model(inputs=...)`` or a dict keyed by input name. Likewise y: an array, or for a
model of several outputs a list or a dict keyed by output name (multi_output.py). Each
function here takes the model first; every error names the call it came from (``what``)
and the input or output it is about, before a single step has run.
"""
import functools

from . import backend, batch_stream, multi_output, training
from .data import Loader


def prepare(model, x, y, what):
    """Validate x (a list of arrays, one per input, for a model of several) and y (one
    array per output for a model of several) where they enter; build the model if needed.
    Returns y as the model trains on it (targets_by_position)."""
    xs = input_arrays(model, x, what)
    y = targets_by_position(model, y, what)
    ys = y if model.heads is not None else [y]
    for i, one in enumerate(ys):
        if not hasattr(one, "shape") or not hasattr(one, "dtype"):
            name = f"y for output {model.heads.names[i]!r}" if model.heads is not None else "y"
            raise TypeError(f"{what}(): {name} must be a NumPy or CuPy array, got {type(one).__name__}; "
                            "numpy.asarray(y) makes one")
    for i, one in enumerate(xs):
        name = f"x[{i}]" if len(xs) > 1 else "x"
        for k, target in enumerate(ys):
            if len(one) != len(target):
                which = f"y for output {model.heads.names[k]!r}" if model.heads is not None else "y"
                raise ValueError(f"{what}(): {name} has {len(one)} samples but {which} has {len(target)}")
        if len(one) == 0:
            raise ValueError(f"{what}(): no samples")
        training.check_inputs(one, what)
    if not model.built:
        model.build(xs[0].shape[1:])
    several = model._many[0]
    shapes = model.input_shape if several else [model.input_shape]
    for i, (one, shape) in enumerate(zip(xs, shapes)):
        if tuple(one.shape[1:]) != tuple(shape):
            # conv nets could take other sizes, but the Dense layers could not: say it here
            which = f"input {i} ({model.inputs[i].name}) takes" if several else "the model was built for inputs"
            raise ValueError(f"{what}(): {which} {(None,) + tuple(shape)}, "
                             f"{'x[%d]' % i if several else 'x'} has shape {tuple(one.shape)}")
    model._bind_optimizer()
    if model.heads is None:
        training.check_labels(backend.to_numpy(y), model.output_shape, model.loss, what)
        return y
    for name, target, shape, loss in zip(model.heads.names, ys, model.output_shape, model.heads.losses):
        try:  # one check up front per output instead of a sync every step
            training.check_labels(backend.to_numpy(target), shape, loss, what)
        except ValueError as error:
            raise ValueError(str(error).replace(f"{what}(): ", f"{what}(): output {name!r}: ", 1)) from None
    return y


def targets_by_position(model, y, what):
    """y as the model trains on it: a list in output order for a model of several outputs
    (from a dict keyed by output name or a list), the one array for a model of one
    (from a dict {output name: array} too, as Keras takes it); else y as it is."""
    if model.heads is not None:
        return model.heads.targets(y, what)
    if isinstance(y, dict):
        return only_output_entry(model, y, what, "y")
    return y


def only_output_entry(model, value, what, called):
    """The entry of a dict keyed by output name for a model of one output, or a
    ValueError naming the output it should be keyed by."""
    names = model.output_names
    if not names:
        raise TypeError(f"{what}: {called} is a dict keyed by output name, but {model.name} is a Sequential, "
                        "whose output has no name to key it by: give the value itself")
    if list(value) != names:
        raise ValueError(f"{what}: {called} is keyed by {sorted(value)}; {model.name} has one output, "
                         f"{names[0]!r}")
    return value[names[0]]


def inputs_by_position(model, x, what):
    """x given as a dict keyed by input name (Keras's fit({"image": ..., "meta": ...}))
    as the model takes it by position: a list in the order of Model(inputs=...), or the
    one array of a model of one input. Anything else is returned as it is."""
    if not isinstance(x, dict):
        return x
    names = model.input_names
    if not names:
        raise TypeError(f"{what}(): x is a dict keyed by input name, but {model.name} is a Sequential, whose "
                        "one input has no name to key it by: give the array")
    arrays = multi_output.by_name(x, names, what, "x", "arrays", "inputs")
    return arrays if model._many[0] else arrays[0]


def input_arrays(model, x, what):
    """x as a list of arrays: [x] for a model of one input, x itself (a list or tuple,
    one array per input, in the order of Model(inputs=...)) for one of several."""
    x = inputs_by_position(model, x, what)
    many = model._many[0]
    if many:
        if not isinstance(x, (list, tuple)) or len(x) != len(model.inputs):
            raise TypeError(f"{what}(): {model.name} has {len(model.inputs)} inputs, so x is a list of "
                            f"{len(model.inputs)} arrays, one per input in the order of Model(inputs=...); "
                            f"got {type(x).__name__}{' of %d' % len(x) if isinstance(x, (list, tuple)) else ''}")
        xs = list(x)
    else:
        xs = [x]
    for i, one in enumerate(xs):
        if not hasattr(one, "shape") or not hasattr(one, "dtype"):
            name = f"x[{i}]" if many else "x"
            raise TypeError(f"{what}(): {name} must be a NumPy or CuPy array (or x a minicnn.data.Loader), "
                            f"got {type(one).__name__}; numpy.asarray({name}) makes one")
    return xs


def loader(model, x, y, batch_size, shuffle, seed, what, sample_weight=None, steps=None):
    """Wrap arrays in a Loader on the model's device (one explicit copy of the
    data there), check a Loader the caller made, or read batches from a generator or
    other source of them (batch_stream.py; steps: batches per epoch)."""
    if batch_stream.is_source(x):
        for name, value, why in (("y", y, "the source yields the labels with each batch"),
                                 ("batch_size", batch_size, "the source makes the batches"),
                                 ("sample_weight", sample_weight, "yield (x, y, sample_weight) batches")):
            if value is not None:
                raise ValueError(f"{what}(): x is a source of batches ({type(x).__name__}): leave {name} out; "
                                 f"{why}")
        stream = batch_stream.BatchStream(x, steps, what, model.device if model.built else None, model.dtype,
                                          targets=functools.partial(targets_by_position, model))
        prepare(model, *stream.first[:2], what)
        return stream
    if steps is not None:
        raise ValueError(f"{what}(): steps_per_epoch / steps count the batches of a generator; with arrays or a "
                         f"Loader every batch is read, so leave it out")
    x = inputs_by_position(model, x, what)
    if isinstance(x, (list, tuple)) and y is None and x and isinstance(x[0], (list, tuple)) \
            and not model._many[0]:
        raise TypeError(f"{what}(): x is a {type(x).__name__} of batches; pass iter(...) of it (a generator "
                        "or an iterator is a source of batches, a list is read as several inputs)")
    if isinstance(x, Loader):
        if y is not None:
            raise ValueError(f"{what}(): x is a Loader, which carries its own labels; leave y out")
        if sample_weight is not None:
            raise ValueError(f"{what}(): x is a Loader: give it the sample weights "
                             "(Loader(..., sample_weight=w)) instead of fit")
        if batch_size is not None and batch_size != x.batch_size:
            raise ValueError(f"{what}(): batch_size={batch_size} given, but the Loader makes "
                             f"batches of {x.batch_size}; set it on the Loader")
        prepare(model, x.x, x.y, what)
        if x.device != model.device:
            raise ValueError(f"{what}(): the Loader holds its data on {x.device}, the model is on "
                             f"{model.device}; build the Loader with device='{model.device}'")
        return x
    if y is None:
        raise ValueError(f"{what}(): give labels y with x (or pass a minicnn.data.Loader as x)")
    y = prepare(model, x, y, what)  # for several outputs a list, in output order
    if sample_weight is not None:
        training.check_sample_weight(sample_weight, multi_output.batch_length(y), what)
    return Loader(x, y, 32 if batch_size is None else batch_size, shuffle=shuffle, seed=seed,
                  device=model.device, dtype=model.dtype, sample_weight=sample_weight)
