"""The Tensor: every elementwise op's gradient, broadcasting, accumulation, modes."""
import numpy
import pytest
from hypothesis import given, strategies as st

import minicnn
from minicnn import Tensor, backend, functional as F, gradcheck, no_grad
from conftest import tensor

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def broadcastable_pair(shape, draw):
    """A second shape that broadcasts against ``shape`` (some axes 1, maybe fewer axes)."""
    other = tuple(draw(st.sampled_from([n, 1])) for n in shape)
    return other[draw(st.integers(0, len(other) - 1)):]


@given(data=st.data())
def test_binary_ops_with_broadcasting(device, data):
    shape = data.draw(shapes)
    other = broadcastable_pair(shape, data.draw)
    rng = numpy.random.default_rng(data.draw(st.integers(0, 99)))
    a = tensor(rng.standard_normal(shape), device)
    b = tensor(rng.uniform(0.5, 2, other) * rng.choice([-1, 1], other), device)  # no division by ~0
    for op in (lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
               lambda a, b: 2.0 * a - b / 3.0 + 1.0, lambda a, b: 1.0 / b - a ** 2):
        gradcheck(op, [a, b])


@given(data=st.data())
def test_unary_ops(device, data):
    shape = data.draw(shapes)
    rng = numpy.random.default_rng(data.draw(st.integers(0, 99)))
    from conftest import away_from_zero
    x = tensor(away_from_zero(rng, shape), device)
    positive = tensor(rng.uniform(0.5, 2.0, shape), device)
    for op in (Tensor.exp, Tensor.relu, Tensor.sigmoid, Tensor.tanh, Tensor.softmax,
               Tensor.log_softmax, Tensor.gelu, lambda t: t.gelu("tanh"), lambda t: -t, lambda t: t.clip(-0.5, 0.5) * 1.0,
               F.elu, lambda t: F.elu(t, alpha=0.5), F.selu, F.silu, F.softplus, F.relu6,
               lambda t: F.relu6(t * 4.0), Tensor.abs):  # relu6 across its cap at 6; |x| away from 0
        gradcheck(op, [x])
    gradcheck(Tensor.log, [positive])
    gradcheck(lambda t: t ** 3, [x])


@given(data=st.data())
def test_reductions_and_shape_ops(device, data):
    shape = data.draw(st.lists(st.integers(1, 4), min_size=2, max_size=3).map(tuple))
    axis = data.draw(st.integers(0, len(shape) - 1))
    keep = data.draw(st.booleans())
    x = tensor(numpy.random.default_rng(0).standard_normal(shape), device)
    gradcheck(lambda t: t.sum(axis=axis, keepdims=keep), [x])
    gradcheck(lambda t: t.mean(axis=axis, keepdims=keep), [x])
    gradcheck(lambda t: t.sum() * 1.0, [x])
    gradcheck(lambda t: t.mean(), [x])
    gradcheck(lambda t: t.reshape(-1), [x])
    gradcheck(lambda t: t.transpose(), [x])
    gradcheck(lambda t: t[0], [x])


@given(n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4), batch=st.integers(0, 2))
def test_matmul(device, n, k, m, batch):
    rng = numpy.random.default_rng(n * 100 + k * 10 + m)
    lead = (2,) * batch
    a, b = tensor(rng.standard_normal(lead + (n, k)), device), tensor(rng.standard_normal((k, m)), device)
    gradcheck(lambda a, b: a @ b, [a, b])


def test_gradients_accumulate_over_a_branching_graph(device):
    x = tensor([1.0, 2.0, 3.0], device)
    y = x * x + x * 3.0  # x used three times
    y.sum().backward()
    numpy.testing.assert_allclose(minicnn.backend.to_numpy(x.grad), [5.0, 7.0, 9.0])
    (x * 2.0).sum().backward()  # a second backward adds on, like PyTorch
    numpy.testing.assert_allclose(minicnn.backend.to_numpy(x.grad), [7.0, 9.0, 11.0])
    x.zero_grad()
    assert x.grad is None


def test_broadcast_gradient_is_reduced_to_the_input_shape(device):
    x = tensor(numpy.ones((4, 3)), device)
    b = tensor(numpy.ones((3,)), device)
    (x + b).sum().backward()
    assert b.grad.shape == (3,)
    numpy.testing.assert_allclose(minicnn.backend.to_numpy(b.grad), [4.0, 4.0, 4.0])


def test_backward_rules(device):
    x = tensor(numpy.ones((2, 2)), device)
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2.0).backward(backend.to_device(numpy.ones(3), device))  # same device, wrong shape
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).backward()
    y = (x * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = (x * 3.0).sum()
    z.backward(retain_graph=True)
    z.backward()
    numpy.testing.assert_allclose(minicnn.backend.to_numpy(x.grad), 2 + 3 + 3)


def test_no_grad_and_detach_record_nothing(device):
    x = tensor([1.0, 2.0], device)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    d = (x * 2.0).detach()
    assert not d.requires_grad and d.is_leaf


def test_no_silent_float64_promotion(device):
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2.5 + 1).exp().sigmoid() / 3
    assert y.dtype == numpy.float32
    with pytest.raises(TypeError, match="dtype mismatch"):
        x + tensor([1.0, 2.0], device)  # float32 + float64 must be explicit
    assert (x.astype("float64") + tensor([1.0, 2.0], device)).dtype == numpy.float64


def test_layer_ops_refuse_mixed_dtypes_instead_of_converting(device):
    """conv2d and dense on a float32 input with a float64 kernel: the fast kernels would
    compute in float32 and the reference in float64, so the op names the mix instead."""
    from minicnn import functional as F
    xp = backend.xp()
    x = Tensor(xp.ones((2, 5, 5, 3), dtype=numpy.float32))
    with pytest.raises(TypeError, match=r"conv2d: inputs of several dtypes \(float32, float64\)"):
        F.conv2d(x, Tensor(xp.ones((3, 3, 3, 4), dtype=numpy.float64), requires_grad=True))
    with pytest.raises(TypeError, match="dense: inputs of several dtypes"):
        F.dense(Tensor(xp.ones((2, 3), dtype=numpy.float64)), Tensor(xp.ones((3, 4), dtype=numpy.float32)))
    assert F.conv2d(x, Tensor(xp.ones((3, 3, 3, 4), dtype=numpy.float32))).dtype == numpy.float32


def test_advanced_indexing_is_refused_rather_than_wrong():
    with pytest.raises(TypeError, match="ints and slices"):
        Tensor([1.0, 2.0], requires_grad=True)[numpy.array([0, 0])]


def test_only_floating_tensors_take_gradients():
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(numpy.arange(3), requires_grad=True)


def test_a_leaf_keeps_a_gradient_made_for_it_alone_and_copies_any_other():
    """The copy a leaf makes of its gradient is skipped only for an array the walk made for
    that leaf alone (autograd._made_by_op): an array handed to two inputs, the caller's own
    gradient and a kept graph's arrays are copied, so no .grad is shared with anything."""
    from minicnn.autograd import apply
    made = []

    def forward(a, b):
        return a * b, (a, b)

    def fresh_backward(gy, cache):
        made[:] = [gy * cache[1], gy * cache[0]]
        return tuple(made)
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    apply(forward, fresh_backward, a, b).sum().backward()
    assert a.grad is not made[0] and b.grad is not made[1]  # an op of the user's: copied
    a.zero_grad(), b.zero_grad()
    fresh_backward.__module__ = "minicnn.functions.test"  # as if it were one of minicnn's ops
    apply(forward, fresh_backward, a, b).sum().backward()
    assert a.grad is made[0] and b.grad is made[1]  # kept: no copy

    same = numpy.array([5.0, 6.0], dtype=numpy.float32)

    def same_twice(gy, cache):
        return same, same
    same_twice.__module__ = "minicnn.functions.test"
    a.zero_grad(), b.zero_grad()
    apply(forward, same_twice, a, b).sum().backward()
    assert a.grad is not same and b.grad is not same and a.grad is not b.grad
    a.grad += 1
    assert b.grad.tolist() == same.tolist() == [5.0, 6.0]

    caller = numpy.ones(2, dtype=numpy.float32)
    a.zero_grad()
    (a + 0).backward(caller)  # add passes the caller's gradient on unchanged
    assert a.grad is not caller
    a.grad += 1
    assert caller.tolist() == [1.0, 1.0]


def test_a_kept_graph_accumulates_without_touching_what_its_ops_hand_out():
    """An op whose backward returns an array it keeps (here a constant) must find that array
    unchanged when later backwards add into the leaf: through a kept graph, and from an op
    of the user's own (which minicnn cannot inspect) with the graph freed."""
    from minicnn.autograd import apply
    constant = numpy.array([2.0, 3.0], dtype=numpy.float32)

    def keeps(gy, cache):
        return constant
    for module in ("minicnn.functions.test", __name__):
        keeps.__module__ = module
        a = Tensor([1.0, 1.0], requires_grad=True)
        y = apply(lambda x: (x * constant, None), keeps, a)
        if module.startswith("minicnn"):  # minicnn's ops never do this; a kept graph still copies
            y.backward(numpy.ones(2, dtype=numpy.float32), retain_graph=True)
            y.backward(numpy.ones(2, dtype=numpy.float32))
        else:
            y.backward(numpy.ones(2, dtype=numpy.float32))
            apply(lambda x: (x * constant, None), keeps, a).backward(numpy.ones(2, dtype=numpy.float32))
        assert a.grad.tolist() == [4.0, 6.0] and constant.tolist() == [2.0, 3.0]


def test_a_training_step_keeps_the_weight_gradients_its_ops_made_without_copying(device, monkeypatch):
    """Convolution (each CPU path and the GPU's), batch-norm and dense hand back weight
    gradients that are arrays of their own, not views (a reshaped product, rows of one
    sums array), so each weight keeps the array its op made as .grad: a copy would be one
    more pass, and on a GPU one more kernel launch, per weight per step. The one exception:
    the CPU's planar first-layer path, whose single GEMM gives [gW; gb] as one array."""
    from minicnn import autograd, functional
    from minicnn.functions import conv
    from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D
    from minicnn.models import Sequential
    handed_out = []
    original = autograd.apply

    def recording_apply(forward, backward, *inputs, **params):
        def recorded(gy, cache):
            grads = backward(gy, cache)
            handed_out.extend(grads if isinstance(grads, tuple) else (grads,))
            return grads
        recorded.__module__ = backward.__module__  # still minicnn's op (autograd._minicnn_op)
        return original(forward, recorded, *inputs, **params)
    monkeypatch.setattr(autograd, "apply", recording_apply)
    monkeypatch.setattr(functional, "apply", recording_apply)
    model = Sequential([
        Conv2D(12, (3, 3), padding="same", activation="relu", input_shape=(8, 8, 3), name="first"),
        BatchNormalization(name="norm"),
        Conv2D(12, (3, 3), padding="same", activation="relu", name="rows"),  # CPU: kernel rows
        Conv2D(12, (3, 3), strides=2, name="strided"),  # CPU: blocked im2col
        MaxPooling2D((2, 2)),
        Flatten(),
        Dense(10, activation="softmax", name="dense"),
    ])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.build((8, 8, 3), device)
    if device == "cpu":
        assert [conv.cpu_path(c, 3, s, w) for c, s, w in [(3, 1, 8), (12, 1, 8), (12, 2, 3)]] == \
            ["planar", "rows", "im2col-blocked"]
    rng = numpy.random.default_rng(0)
    x = Tensor(backend.to_device(rng.standard_normal((4, 8, 8, 3), dtype=numpy.float32), device))
    y = backend.to_device(rng.integers(0, 10, 4), device)
    out, logits = model._forward_logits(x, training=True)
    model.loss(y, out, logits, check=False).backward()
    copied = [w.name for w in model.trainable_weights if not any(w.grad is g for g in handed_out)]
    assert copied == (["first/kernel", "first/bias"] if device == "cpu" else [])
    assert len(model.trainable_weights) == 10
