"""Keras 3's Lion, Lamb and Adafactor: each step against its formula, written out again
here in float64 from Keras's update_step; exact resumption; float32 kept; Keras's
defaults and checks. (PyTorch has no Lion or Lamb, and its Adafactor is another rule, so
the formulas are the oracle.)"""
import numpy
import pytest

from minicnn import Tensor, backend, optimizers
from minicnn.layers import Conv2D, Dense, Flatten
from minicnn.models import Sequential
from minicnn.optimizers import Adafactor, Lamb, Lion
from test_optimizers import GRADS, assert_resumes_exactly

RNG = numpy.random.default_rng(7)


def trajectory(optimizer, start, grads, device, dtype=numpy.float64, name=None):
    """Apply the gradients in turn to one weight of any shape (and name); the weight after
    each step (host)."""
    w = Tensor(backend.to_device(numpy.array(start, dtype), device), requires_grad=True, name=name)
    optimizer.build([w])
    path = []
    for g in grads:
        w.grad = backend.to_device(numpy.asarray(g, dtype), device)
        optimizer.step()
        path.append(backend.to_numpy(w.data).copy())
    return path


def rms(x):
    return numpy.sqrt(numpy.mean(x * x))


def test_lion_by_the_keras_formula(device):
    lr, b1, b2 = 0.01, 0.8, 0.95
    path = trajectory(Lion(lr, b1, b2), [1.0, -1.0], GRADS, device)
    w, m = numpy.array([1.0, -1.0]), numpy.zeros(2)
    for t, g in enumerate(map(numpy.array, GRADS)):
        w = w - lr * numpy.sign(b1 * m + (1 - b1) * g)
        m = b2 * m + (1 - b2) * g
        numpy.testing.assert_allclose(path[t], w, rtol=1e-12)


def test_a_lion_step_is_the_learning_rate_whatever_the_gradient(device):
    start = RNG.normal(size=(6, 5))
    for scale in (1e-6, 1.0, 1e6):
        after = trajectory(Lion(0.25), start, [RNG.normal(size=(6, 5)) * scale], device)[0]
        numpy.testing.assert_allclose(numpy.abs(after - start), 0.25, rtol=1e-12)


def lamb_reference(start, grads, lr, b1, b2, eps, weight_decay=0.0):
    w, m, v, path = numpy.array(start, numpy.float64), 0.0, 0.0, []
    for t, g in enumerate(map(numpy.asarray, grads), start=1):
        w = w - lr * weight_decay * w  # Keras 3: decoupled decay before the rule
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        u = (m / (1 - b1 ** t)) / (numpy.sqrt(v / (1 - b2 ** t)) + eps)
        w_norm, u_norm = numpy.linalg.norm(w), numpy.linalg.norm(u)
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        w = w - lr * ratio * u
        path.append(w)
    return path


@pytest.mark.parametrize("weight_decay", [None, 0.1])
def test_lamb_by_the_keras_formula(device, weight_decay):
    start, grads = RNG.normal(size=(3, 4)), [RNG.normal(size=(3, 4)) for _ in range(4)]
    path = trajectory(Lamb(0.02, 0.8, 0.95, 1e-6, weight_decay=weight_decay), start, grads, device)
    for got, expected in zip(path, lamb_reference(start, grads, 0.02, 0.8, 0.95, 1e-6, weight_decay or 0.0)):
        numpy.testing.assert_allclose(got, expected, rtol=1e-12)
    # each step's length is lr * ||w|| (before the step), the point of the trust ratio
    before = [start] + path[:-1]
    for w0, w1 in zip(before, path):
        if weight_decay is None:
            numpy.testing.assert_allclose(numpy.linalg.norm(w1 - w0), 0.02 * numpy.linalg.norm(w0), rtol=1e-12)


def test_lamb_moves_a_zero_weight_by_adams_step_and_leaves_a_zero_gradient_alone(device):
    """The two guards of the ratio: ||w|| = 0 (a bias at its start) takes ratio 1, so it
    still learns; ||u|| = 0 takes ratio 1 too, and a zero step, not 0/0."""
    zero_start = trajectory(Lamb(0.1), numpy.zeros(3), [[1.0, -2.0, 0.5]], device)[0]
    numpy.testing.assert_allclose(zero_start, lamb_reference(numpy.zeros(3), [[1.0, -2.0, 0.5]], 0.1, 0.9, 0.999,
                                                             1e-7)[0], rtol=1e-12)
    assert numpy.all(zero_start != 0)
    with numpy.errstate(all="raise"):
        still = trajectory(Lamb(0.1), [1.0, 2.0], [[0.0, 0.0]], device)[0]
    numpy.testing.assert_array_equal(still, [1.0, 2.0])


def adafactor_reference(start, grads, lr=0.001, decay=-0.8, eps1=1e-30, eps2=1e-3, clip=1.0):
    """Keras 3's Adafactor.update_step, in float64 and in plain NumPy."""
    w = numpy.array(start, numpy.float64)
    r = numpy.zeros(w.shape[:-1]) if w.ndim >= 2 else None
    c = numpy.zeros(w.shape[:-2] + w.shape[-1:]) if w.ndim >= 2 else None
    v, path = numpy.zeros_like(w), []
    for t, g in enumerate(map(numpy.asarray, grads), start=1):
        rho = min(lr, 1 / numpy.sqrt(t))
        alpha = max(eps2, rms(w)) * rho
        squared = g * g + eps1
        b = 1 - t ** decay
        if w.ndim >= 2:
            r = b * r + (1 - b) * squared.mean(axis=-1)
            c = b * c + (1 - b) * squared.mean(axis=-2)
            v = numpy.expand_dims(r / r.mean(axis=-1, keepdims=True), -1) * numpy.expand_dims(c, -2)
        else:
            v = b * v + (1 - b) * squared
        u = g / numpy.sqrt(v)
        w = w - alpha * u / max(1.0, rms(u) / clip)
        path.append(w)
    return path


@pytest.mark.parametrize("shape", [(5,), (4, 6), (2, 3, 4, 5)], ids=["bias", "dense kernel", "conv kernel"])
def test_adafactor_by_the_keras_formula(device, shape):
    start = RNG.normal(size=shape)
    grads = [RNG.normal(size=shape) * scale for scale in (1.0, 0.1, 3.0, 1.0, 0.5)]
    options = dict(learning_rate=0.05, beta_2_decay=-0.7, epsilon_2=1e-3, clip_threshold=0.8)
    path = trajectory(Adafactor(**options), start, grads, device)
    expected = adafactor_reference(start, grads, 0.05, -0.7, 1e-30, 1e-3, 0.8)
    for got, want in zip(path, expected):
        numpy.testing.assert_allclose(got, want, rtol=1e-10)


def test_adafactor_survives_a_zero_row_and_column_in_float32(device):
    """A dead filter fed by a dead channel: a kernel gradient with a whole row and a whole
    column of zeros. Keras's float32 v there is 1e-30 * 1e-30 / mean(r): 0, and g / sqrt(v)
    is 0 / 0. Floored, the step there is 0 and every other weight takes Keras's step."""
    start = RNG.normal(size=(2, 6, 5))
    g = RNG.normal(size=(2, 6, 5)) * 1e-3
    g[:, 1, :] = 0   # row 1 of each (in, out) matrix
    g[:, :, 3] = 0   # column 3
    with numpy.errstate(divide="raise", invalid="raise"):  # v underflows there, as it must
        after = trajectory(Adafactor(0.05), start, [g], device, numpy.float32)[0]
    expected = adafactor_reference(start, [g], 0.05)[0]
    assert numpy.isfinite(after).all()
    numpy.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_array_equal(after[:, 1, 3], start[:, 1, 3].astype(numpy.float32))


def test_adafactor_keeps_row_and_column_averages_not_a_second_moment_per_weight():
    kernel = Tensor(numpy.ones((3, 3, 16, 32), numpy.float32), requires_grad=True)
    bias = Tensor(numpy.ones(32, numpy.float32), requires_grad=True)
    opt = Adafactor().build([kernel, bias])
    assert [s.shape for s in opt.slots["r"]] == [(3, 3, 16), ()]
    assert [s.shape for s in opt.slots["c"]] == [(3, 3, 32), ()]
    assert [s.shape for s in opt.slots["v"]] == [(), (32,)]
    kept = sum(s.size for slots in opt.slots.values() for s in slots)
    assert kept == 3 * 3 * (16 + 32) + 32 + 3  # 3 placeholders; not 3*3*16*32: the memory saved


MAKERS = [lambda: Lion(0.01, weight_decay=0.1), lambda: Lamb(0.05), lambda: Adafactor(0.05),
          lambda: Lion(0.01, use_ema=True, ema_momentum=0.9)]


@pytest.mark.parametrize("make", MAKERS)
def test_lion_lamb_adafactor_resume_exactly_and_keep_float32(device, make):
    assert_resumes_exactly(make, device)
    for shape in ((3, 4), (4,)):
        path = trajectory(make(), numpy.ones(shape), [numpy.full(shape, 0.5)] * 3, device, numpy.float32)
        assert path[-1].dtype == numpy.float32 and path[-1].max() < 1
    w = Tensor(backend.to_device(numpy.ones((2, 3, 4), numpy.float32), device), requires_grad=True)
    opt = make().build([w])
    w.grad = backend.to_device(numpy.ones((2, 3, 4), numpy.float32), device)
    opt.step()
    assert all(s[0].dtype == numpy.float32 and backend.device_of(s[0]) == device for s in opt.slots.values())


def test_a_factored_state_resumes_exactly_and_a_misshapen_one_is_refused(device):
    """Adafactor's r and c through state_dict into a new optimizer: the next steps are the
    unbroken run's bit for bit; a state from another shape is refused, naming the slot."""
    start, grads = RNG.normal(size=(4, 6)), [RNG.normal(size=(4, 6)) for _ in range(4)]
    whole = trajectory(Adafactor(0.05), start, grads, device)
    first = Adafactor(0.05)
    half = trajectory(first, start, grads[:2], device)
    w = Tensor(backend.to_device(half[-1], device), requires_grad=True)
    second = Adafactor(0.05).build([w])
    second.load_state_dict(first.state_dict())
    for g, expected in zip(grads[2:], whole[2:]):
        w.grad = backend.to_device(g, device)
        second.step()
        numpy.testing.assert_array_equal(backend.to_numpy(w.data), expected)
    other = Adafactor().build([Tensor(numpy.zeros((4, 5)), requires_grad=True)])
    with pytest.raises(ValueError, match="slot 'c'.* has shape \\(6,\\), the optimizer's slot \\(5,\\)"):
        other.load_state_dict(first.state_dict())


def test_each_trains_a_small_convnet(device):
    """Not a speed or accuracy claim: each of the three, at Keras's defaults but the rate,
    lowers the loss of a conv net on a learnable problem, through compile and fit."""
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 2)).astype(numpy.float32)
    y = (x[:, :3].mean(axis=(1, 2, 3)) > x[:, 3:].mean(axis=(1, 2, 3))).astype(numpy.int64)
    for make in (lambda: Lion(3e-3), lambda: Lamb(0.01), lambda: Adafactor(0.05)):
        model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(6, 6, 2)), Flatten(),
                            Dense(2, activation="softmax")])
        model.compile(make(), "sparse_categorical_crossentropy")
        model.to(device)
        losses = model.fit(x, y, epochs=8, batch_size=16, verbose=0, seed=0).history["loss"]
        assert losses[-1] < 0.8 * losses[0], (type(model.optimizer).__name__, losses)


def test_keras_defaults_names_and_checks():
    defaults = {"lion": (Lion, {"beta_1": 0.9, "beta_2": 0.99}),
                "lamb": (Lamb, {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
                "adafactor": (Adafactor, {"beta_2_decay": -0.8, "epsilon_1": 1e-30, "epsilon_2": 1e-3,
                                          "clip_threshold": 1.0, "relative_step": True})}
    for name, (cls, options) in defaults.items():
        made = optimizers.get(name.upper())
        assert type(made) is cls and made.learning_rate == 0.001
        assert {key: getattr(made, key) for key in options} == options
        assert optimizers.deserialize(made.get_config()).get_config() == made.get_config()
    for bad, message in ((lambda: Lion(beta_1=0.0), "Lion: need 0 < beta_1 <= 1"),
                         (lambda: Lion(beta_2=1.5), "Lion: need"),
                         (lambda: Lamb(beta_2=1.0), "Lamb: need 0 <= beta_1, beta_2 < 1"),
                         (lambda: Adafactor(beta_2_decay=0.5), "Adafactor: need beta_2_decay < 0"),
                         (lambda: Adafactor(clip_threshold=0), "Adafactor: need")):
        with pytest.raises(ValueError, match=message):
            bad()
