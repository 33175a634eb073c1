"""``model.summary()``: each layer's output shape and parameter count, in Keras's format.

A ``Sequential`` prints a column per layer (stack_summary); a functional ``Model`` adds
"Connected to", the layers each one reads (graph_summary). Both can add the arithmetic
behind each row (arithmetic=True: the output-size formula and the parameter count with
the layer's numbers filled in) and the layers of nested models (expand_nested=True).
"""
from .layers import InputLayer
from .layers.nested import NestedModel


def graph_summary(model, print_fn, line_length, arithmetic, expand_nested, show_trainable=False):
    """Model.summary: a row per layer with the layers it reads, then the totals."""
    cols = (29, 24, 10, line_length - 63) + ((10,) if show_trainable else ())
    line_length += 10 if show_trainable else 0
    head = ("Layer (type)", "Output Shape", "Param #", "Connected to") + (("Trainable",) if show_trainable else ())
    lines = [f'Model: "{model.name}"', "_" * line_length, _cells(head, cols), "=" * line_length]
    entries = [(s.layer, s, []) for s in model.inputs] + [(n.layer, n, n.inputs) for n in model.nodes]
    for i, (layer, symbol, inputs) in enumerate(entries):
        label = f"{layer.name} ({layer.type_name})"
        sources = [s.name for s in inputs] or [""]
        trainable = (_trainable_cell(layer),) if show_trainable else ()
        lines.append(_cells((label, str((None,) + symbol.shape), f"{layer.count_params()}", sources[0], *trainable),
                            cols))
        lines += [_cells(("", "", "", source), cols) for source in sources[1:]]
        if expand_nested:
            lines += [_cells(cells, cols) for cells in _nested_rows(layer)]
        if arithmetic and not isinstance(layer, InputLayer):
            lines += ["    " + _arithmetic_line(*item) for item in layer.arithmetic()]
        lines.append("=" * line_length if i == len(entries) - 1 else "_" * line_length)
    lines += _totals(model, line_length)
    print_fn("\n".join(lines))


def stack_summary(model, print_fn, line_length, arithmetic, expand_nested, show_trainable=False):
    """Sequential.summary: a row per layer (with its input shape under arithmetic=True)."""
    if not model.built:
        raise ValueError(f"{model.name} is not built yet: give the first layer input_shape=..., "
                         f"call build(input_shape), or fit/call it on data first")
    cols = (29, 26, line_length - 55) + ((10,) if show_trainable else ())
    line_length += 10 if show_trainable else 0
    head = ("Layer (type)", "Output Shape", "Param #") + (("Trainable",) if show_trainable else ())
    lines = [f'Model: "{model.name}"', "_" * line_length, _cells(head, cols), "=" * line_length]
    for i, layer in enumerate(model.layers):
        label = f"{layer.name} ({layer.type_name})"
        trainable = (_trainable_cell(layer),) if show_trainable else ()
        lines.append(_cells((label, str((None,) + tuple(layer.output_shape)), f"{layer.count_params()}",
                             *trainable), cols))
        if expand_nested:
            lines += [_cells(cells, cols) for cells in _nested_rows(layer)]
        if arithmetic:
            lines.append(f"    input {(None,) + tuple(layer.input_shape)}")
            lines += ["    " + _arithmetic_line(*item) for item in layer.arithmetic()]
        lines.append("=" * line_length if i == len(model.layers) - 1 else "_" * line_length)
    lines += _totals(model, line_length)
    print_fn("\n".join(lines))


def _cells(cells, cols):
    """One line of the table: each cell cut to its column, as Keras does."""
    return "".join(f"{c[:w - 1]:<{w}}" for c, w in zip(cells, cols)).rstrip()


def _trainable_cell(layer):
    """Keras's show_trainable column: Y, N, or - for a layer without weights."""
    if not layer.weights:
        return "-"
    return "Y" if layer.trainable else "N"


def _nested_rows(layer, depth=1):
    """(label, output shape, params) of each layer inside a nested model, and of the models
    nested in those, each level marked by one more '| ' (summary's expand_nested)."""
    if not isinstance(layer, NestedModel):
        return []
    rows = []
    for inner in layer.model.layers:
        rows.append(("| " * depth + f"{inner.name} ({inner.type_name})",
                     str((None,) + tuple(inner.output_shape)), f"{inner.count_params()}"))
        rows += _nested_rows(inner, depth + 1)
    return rows


def _totals(model, line_length):
    """The closing lines: total, trainable and non-trainable parameter counts."""
    total = model.count_params()
    trainable = sum(w.size for w in model.trainable_weights)
    return [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", "_" * line_length]


def _arithmetic_line(what, expression, value, note):
    """'height, width: floor((32 + 2*1 - 3) / 1) + 1 = 32' or 'channels: 32 (one per filter)'."""
    text = f"{what}: {expression} = {value}" if expression is not None else f"{what}: {value}"
    return f"{text}   ({note})" if note else text
