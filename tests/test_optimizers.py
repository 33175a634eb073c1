"""Optimizers follow Keras's update rules; state round-trips; one interface."""
import numpy
import pytest

from minicnn import Tensor, backend, optimizers
from minicnn.optimizers import SGD, Adam


def run(optimizer, grads, w0, device):
    """Apply a sequence of gradients to one parameter; return the trajectory (host)."""
    w = Tensor(backend.to_device(numpy.array(w0, numpy.float64), device), requires_grad=True)
    optimizer.build([w])
    path = []
    for g in grads:
        w.grad = backend.to_device(numpy.asarray(g, numpy.float64), device)
        optimizer.step()
        path.append(backend.to_numpy(w.data).copy())
    return path


GRADS = [[0.5, -1.0], [0.25, 2.0], [-1.0, 0.5], [0.1, 0.1]]


def test_sgd_momentum_nesterov_decay_by_the_keras_formulas(device):
    lr, mu, decay = 0.1, 0.9, 0.01
    for nesterov in (False, True):
        path = run(SGD(lr, momentum=mu, nesterov=nesterov, decay=decay), GRADS, [1.0, 1.0], device)
        w, v = numpy.array([1.0, 1.0]), numpy.zeros(2)
        for t, g in enumerate(map(numpy.array, GRADS)):
            lr_t = lr / (1 + decay * t)
            v = mu * v - lr_t * g
            w = w + (mu * v - lr_t * g if nesterov else v)
            numpy.testing.assert_allclose(path[t], w, rtol=1e-12)


def test_decoupled_weight_decay_and_plain_sgd(device):
    path = run(SGD(0.1, weight_decay=0.5), GRADS[:1], [2.0, -2.0], device)
    numpy.testing.assert_allclose(path[0], numpy.array([2.0, -2.0]) * (1 - 0.05) - 0.1 * numpy.array(GRADS[0]))


def test_adam_by_the_keras_formula(device):
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-7
    path = run(Adam(lr, b1, b2, eps), GRADS, [1.0, -1.0], device)
    w, m, v = numpy.array([1.0, -1.0]), numpy.zeros(2), numpy.zeros(2)
    for t, g in enumerate(map(numpy.array, GRADS), start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * numpy.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (numpy.sqrt(v) + eps)
        numpy.testing.assert_allclose(path[t - 1], w, rtol=1e-12)


def assert_resumes_exactly(make, device):
    """Two steps, the state through state_dict into a new optimizer, two more: bit for bit
    the four steps of one optimizer, and the config rebuilds the same optimizer."""
    copy = optimizers.deserialize(make().get_config())
    assert type(copy) is type(make()) and copy.get_config() == make().get_config()
    whole = run(make(), GRADS, [1.0, 1.0], device)
    first = make()
    half = run(first, GRADS[:2], [1.0, 1.0], device)
    second = make()
    w = Tensor(backend.to_device(half[-1], device), requires_grad=True)
    second.build([w])
    second.load_state_dict(first.state_dict())
    for g, expected in zip(GRADS[2:], whole[2:]):
        w.grad = backend.to_device(numpy.asarray(g, numpy.float64), device)
        second.step()
        numpy.testing.assert_array_equal(backend.to_numpy(w.data), expected)


def test_state_dict_round_trip_resumes_exactly(device):
    for make in (lambda: SGD(0.1, momentum=0.9, decay=0.1), lambda: Adam(0.1)):
        assert_resumes_exactly(make, device)


def test_state_dict_shape_mismatch_is_refused():
    a = Adam().build([Tensor(numpy.zeros(3), requires_grad=True)])
    b = Adam().build([Tensor(numpy.zeros(4), requires_grad=True)])
    with pytest.raises(ValueError, match="shape"):
        b.load_state_dict(a.state_dict())


def test_strings_keras_defaults_and_legacy_lr():
    assert isinstance(optimizers.get("sgd"), SGD) and optimizers.get("SGD").learning_rate == 0.01
    adam = optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert SGD(lr=0.05).learning_rate == 0.05  # seed 003 writes SGD(lr=0.01, ...)
    for bad in (lambda: SGD(momentum=1.5), lambda: SGD(learning_rate=-1), lambda: Adam(beta_1=1.0)):
        with pytest.raises(ValueError):
            bad()


def test_parameters_without_gradients_are_left_alone():
    a, b = Tensor(numpy.ones(2), requires_grad=True), Tensor(numpy.ones(2), requires_grad=True)
    opt = SGD(0.5).build([a, b])
    a.grad = numpy.ones(2)
    opt.step()
    numpy.testing.assert_array_equal(a.data, [0.5, 0.5])
    numpy.testing.assert_array_equal(b.data, [1.0, 1.0])
    opt.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9), lambda: SGD(0.1, momentum=0.9, nesterov=True),
                                  lambda: Adam(0.01)])
def test_an_update_in_cache_sized_pieces_is_bitwise_the_whole_array_update(monkeypatch, make):
    """optimizers.base.chunked: the same elementwise operations in the same order, piece by
    piece, give exactly the numbers of the whole-array update (a 1000-element weight in
    pieces of 64, the last one short)."""
    from minicnn.optimizers import base
    rng = numpy.random.default_rng(0)
    start = rng.normal(size=(25, 40)).astype(numpy.float32)
    grads = [rng.normal(size=(25, 40)).astype(numpy.float32) for _ in range(3)]
    results = []
    for piece in (10**9, 64):
        monkeypatch.setattr(base, "UPDATE_CHUNK", piece)
        w = Tensor(start.copy(), requires_grad=True)
        opt = make().build([w])
        for g in grads:
            w.grad = g.copy()
            opt.step()
        results.append(w.data)
    assert numpy.array_equal(results[0], results[1])


FUSED_RULES = [lambda **k: SGD(0.1, **k), lambda **k: SGD(0.1, momentum=0.9, **k),
               lambda **k: SGD(0.1, momentum=0.9, nesterov=True, **k), lambda **k: Adam(0.01, **k),
               *(lambda momentum=momentum, centered=centered, **k: optimizers.RMSprop(
                   0.01, momentum=momentum, centered=centered, **k)
                 for momentum in (0.0, 0.8) for centered in (False, True)),
               lambda **k: optimizers.Nadam(0.01, **k), lambda **k: optimizers.Adamax(0.01, **k),
               lambda **k: optimizers.Adagrad(0.05, **k), lambda **k: optimizers.Adadelta(1.0, **k)]


@pytest.mark.gpu
@pytest.mark.parametrize("make", FUSED_RULES)
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_the_fused_gpu_update_equals_the_array_code(make, dtype):
    """On a GPU, SGD, Adam, RMSprop, Nadam, Adamax, Adagrad and Adadelta update every parameter
    of a step in a few kernels (functions/fast_gpu_updates, up to 16 parameters a launch); under
    fast_kernels(False) they run sgd.py's, adam.py's, rmsprop.py's and adagrad.py's array code,
    one parameter at a time. Both, three steps
    from the same start, for 21 parameters of 1 to 4 dimensions (two launches), in groups
    with their own lr_scale, decoupled decay and L2 factor, one without a gradient at the
    second step, one with a constraint: the same weights and slots, to the dtype's rounding
    (the kernel may fuse a multiply-add)."""
    from minicnn.constraints import MaxNorm
    rng = numpy.random.default_rng(0)
    shapes = [(3, 3, 2, 4), (4,), (5, 7), (7,), (2, 3, 4)] * 4 + [(6, 2)]
    starts = [rng.normal(size=s).astype(dtype) for s in shapes]
    grads = [[rng.normal(size=s).astype(dtype) for s in shapes] for _ in range(3)]
    results = []
    for fast in (True, False):
        with backend.fast_kernels(fast):
            params = [Tensor(backend.to_device(w, "gpu"), requires_grad=True) for w in starts]
            params[2].constraint = MaxNorm(1.0)
            groups = [{"params": params[:7], "lr_scale": 2.0, "l2": 0.01},
                      {"params": params[7:15], "weight_decay": 0.1},
                      *params[15:]]
            opt = make(weight_decay=0.05).build(groups)
            for step, gs in enumerate(grads):
                for p, g in zip(params, gs):
                    p.grad = None if (step == 1 and p is params[9]) else backend.to_device(g, "gpu")
                opt.step()
            results.append([backend.to_numpy(a) for a in [p.data for p in params]
                            + [s for slots in opt.slots.values() for s in slots]])
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == numpy.float32 else dict(rtol=1e-12, atol=1e-14)
    assert len(results[0]) == len(shapes) * (1 + len(opt.slot_names))
    for fused, plain in zip(*results):
        assert fused.dtype == dtype
        numpy.testing.assert_allclose(fused, plain, **tol)


@pytest.mark.gpu
def test_the_fused_gpu_update_takes_few_launches_and_leaves_a_changed_rule_alone():
    """Counted on the CuPy stand-in (which tallies launches): 21 parameters with SGD's
    momentum are two launches, where the array code takes four per parameter (RMSprop's
    fullest rule too); a subclass that writes its own _update runs that rule, not its
    parent's kernel."""
    cupy = pytest.importorskip("cupy")
    if not getattr(cupy, "STAND_IN", False):
        pytest.skip("counts launches on the CuPy stand-in (tests/cupy_stand_in)")
    params = [Tensor(backend.to_device(numpy.ones((3, 2), numpy.float32), "gpu"), requires_grad=True)
              for _ in range(21)]

    class Halving(SGD):
        def _update(self, i, w, g, lr):
            w *= w.dtype.type(0.5)

    warm = Tensor(backend.to_device(numpy.ones(2, numpy.float32), "gpu"), requires_grad=True)
    warm.grad = warm.data.copy()
    SGD(0.1).build([warm]).step()  # makes the launches' spare arrays, once per dtype: not a step's work
    for make, launches in ((lambda: SGD(0.1, momentum=0.9), 2), (lambda: Halving(0.1, momentum=0.9), 21),
                           (lambda: optimizers.RMSprop(0.1, momentum=0.5, centered=True), 2)):
        opt = make().build(params)
        for p in params:
            p.grad = backend.to_device(numpy.ones((3, 2), numpy.float32), "gpu")
        before = dict(cupy.stand_in_launches)
        opt.step()
        counts = {k: v - before.get(k, 0) for k, v in cupy.stand_in_launches.items() if v != before.get(k, 0)}
        assert sum(counts.values()) == launches, counts
    numpy.testing.assert_allclose(backend.to_numpy(params[0].data), (1 - 0.1 * 1) * 0.5 - 0.1 / numpy.sqrt(0.1 - 0.01 + 1e-7),
                                  rtol=1e-6)  # then centered RMSprop's first step: v = 0.1, ag = 0.1
    for make in (optimizers.Nadam, optimizers.Adamax, optimizers.Adagrad, optimizers.Adadelta):
        opt = make(0.1).build(params)  # two launches each, too (the array code: 5 to 12 per parameter)
        before = dict(cupy.stand_in_launches)
        opt.step()
        assert sum(v - before.get(k, 0) for k, v in cupy.stand_in_launches.items()) == 2, make.__name__


def clip_reference(grads, option, c):
    """Keras's clipping in float64 NumPy, written out from its definitions."""
    if option == "clipvalue":
        return [numpy.clip(g, -c, c) for g in grads]
    if option == "clipnorm":
        return [g * c / max(numpy.sqrt((g ** 2).sum()), c) for g in grads]
    norm = numpy.sqrt(sum((g ** 2).sum() for g in grads))
    return [g * c / max(norm, c) for g in grads]


@pytest.mark.parametrize("option", ["clipnorm", "global_clipnorm", "clipvalue"])
def test_gradient_clipping_by_the_keras_formulas(device, option):
    """Three parameters, one gradient long (norm 13), one short (norm 0.5), one zero: one
    plain SGD step at lr 1 moves each weight by minus its clipped gradient. clipnorm
    shortens only the long one; global_clipnorm scales all three by one factor; clipvalue
    cuts elements. The clipped gradient is what p.grad holds after the step."""
    grads = [numpy.array([[3.0, -4.0], [12.0, 0.0]]), numpy.array([0.3, -0.4]), numpy.zeros(3)]
    params = [Tensor(backend.to_device(numpy.zeros_like(g), device), requires_grad=True) for g in grads]
    opt = SGD(1.0, **{option: 2.0}).build(params)
    for p, g in zip(params, grads):
        p.grad = backend.to_device(g, device)
    opt.step()
    expected = clip_reference(grads, option, 2.0)
    assert option != "clipnorm" or numpy.array_equal(expected[1], grads[1])  # short: untouched
    for p, clipped in zip(params, expected):
        numpy.testing.assert_allclose(backend.to_numpy(p.data), -clipped, rtol=1e-12, atol=1e-15)
        numpy.testing.assert_allclose(backend.to_numpy(p.grad), clipped, rtol=1e-12, atol=1e-15)
    assert not numpy.array_equal(expected[0], grads[0])  # the long one was clipped


@pytest.mark.parametrize("option", ["clipnorm", "global_clipnorm", "clipvalue"])
@pytest.mark.parametrize("make", [lambda **k: SGD(0.1, momentum=0.9, **k), lambda **k: Adam(0.01, **k)])
def test_clipping_keeps_float32_and_feeds_the_update_rule(device, option, make):
    """float32 gradients stay float32 through clipping (no float64 promotion from the
    Python option), and momentum / Adam then step on the clipped gradient: the same as the
    unclipped optimizer given the clipped gradients by hand, over three steps."""
    rng = numpy.random.default_rng(1)
    shapes = [(3, 3, 2, 4), (4,), (10, 5)]
    steps = [[(rng.normal(size=s) * 3).astype(numpy.float32) for s in shapes] for _ in range(3)]
    start = [rng.normal(size=s).astype(numpy.float32) for s in shapes]
    runs = []
    for clipped_by in ("optimizer", "hand"):
        params = [Tensor(backend.to_device(w.copy(), device), requires_grad=True) for w in start]
        opt = make(**({option: 1.5} if clipped_by == "optimizer" else {})).build(params)
        for grads in steps:
            given = grads if clipped_by == "optimizer" else [
                g.astype(numpy.float32) for g in clip_reference([g.astype(numpy.float64) for g in grads], option, 1.5)]
            for p, g in zip(params, given):
                p.grad = backend.to_device(g, device)
            opt.step()
            assert all(p.grad.dtype == numpy.float32 and p.data.dtype == numpy.float32 for p in params)
        runs.append([backend.to_numpy(p.data) for p in params])
    for a, b in zip(*runs):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_clipping_options_are_checked_and_saved():
    for bad, message in (({"clipnorm": 1.0, "clipvalue": 0.5}, "only one of"),
                         ({"clipnorm": 1.0, "global_clipnorm": 1.0}, "only one of"),
                         ({"clipnorm": 0.0}, "clipnorm must be a positive number"),
                         ({"clipvalue": -1.0}, "clipvalue must be a positive number"),
                         ({"global_clipnorm": "1"}, "global_clipnorm must be a positive number"),
                         ({"clipnorm": True}, "clipnorm must be a positive number")):
        with pytest.raises(ValueError, match=message):
            SGD(0.1, **bad)
    for opt in (SGD(0.1, momentum=0.9, clipnorm=2.0), Adam(global_clipnorm=5.0), SGD(clipvalue=0.5)):
        copy = optimizers.deserialize(opt.get_config())
        assert type(copy) is type(opt) and copy.get_config() == opt.get_config()
        assert (copy.clipnorm, copy.global_clipnorm, copy.clipvalue) == (opt.clipnorm, opt.global_clipnorm,
                                                                          opt.clipvalue)
    old = SGD(0.1).get_config()  # a model file from before clipping existed has no such keys
    for name in ("clipnorm", "global_clipnorm", "clipvalue"):
        del old[name]
    assert optimizers.deserialize(old).clipnorm is None


def test_a_loss_scaled_step_clips_the_unscaled_gradients(device):
    """LossScaleOptimizer divides the gradients by its scale first, so the inner optimizer
    clips what an unscaled run would clip: the same weights as SGD(clipnorm) alone."""
    from minicnn.optimizers import LossScaleOptimizer
    g = numpy.array([30.0, -40.0])
    results = []
    for scale in (None, 1024.0):
        w = Tensor(backend.to_device(numpy.ones(2), device), requires_grad=True)
        inner = SGD(0.1, clipnorm=1.0)
        opt = (inner if scale is None else LossScaleOptimizer(inner, initial_scale=scale)).build([w])
        w.grad = backend.to_device(g * (scale or 1.0), device)
        opt.step()
        results.append(backend.to_numpy(w.data))
    numpy.testing.assert_allclose(results[0], 1 - 0.1 * g / 50.0, rtol=1e-12)
    numpy.testing.assert_allclose(results[1], results[0], rtol=1e-12)


def test_rebind_keeps_the_state_and_group_options_of_parameters_still_bound():
    a, b, c = (Tensor(numpy.ones(2), requires_grad=True) for _ in range(3))
    opt = SGD(0.1, momentum=0.9).build([{"params": [a], "lr_scale": 4.0}, b])
    a.grad, b.grad = numpy.ones(2), numpy.ones(2)
    opt.step()
    momentum_a = opt.slots["momentum"][0].copy()
    opt.rebind([c, a])  # b let go, c new
    assert [id(p) for p in opt.params] == [id(c), id(a)] and opt.options[1][0] == 4.0 and opt.options[0] == (1.0, None, 0.0)
    numpy.testing.assert_array_equal(opt.slots["momentum"][1], momentum_a)
    numpy.testing.assert_array_equal(opt.slots["momentum"][0], numpy.zeros(2))
    assert opt.iterations == 1


@pytest.mark.parametrize("momentum, centered", [(0.0, False), (0.8, False), (0.0, True), (0.8, True)])
def test_rmsprop_by_the_keras_formula(device, momentum, centered):
    from minicnn.optimizers import RMSprop
    lr, rho, eps = 0.01, 0.85, 1e-7
    path = run(RMSprop(lr, rho=rho, momentum=momentum, epsilon=eps, centered=centered), GRADS, [1.0, -1.0], device)
    w, v, m, a = numpy.array([1.0, -1.0]), numpy.zeros(2), numpy.zeros(2), numpy.zeros(2)
    for t, g in enumerate(map(numpy.array, GRADS)):
        v = rho * v + (1 - rho) * g * g
        a = rho * a + (1 - rho) * g
        step = lr * g / numpy.sqrt((v - a * a if centered else v) + eps)
        m = momentum * m + step
        w = w - (m if momentum else step)
        numpy.testing.assert_allclose(path[t], w, rtol=1e-12)


def test_rmsprop_and_adamw_keras_defaults_names_and_state():
    from minicnn.optimizers import AdamW, RMSprop
    # Keras's docstring example: var 10, loss var^2 / 2 (gradient = var), lr 0.1 -> 9.683772
    assert run(RMSprop(0.1), [[10.0]], [10.0], "cpu")[0][0] == pytest.approx(9.683772, abs=1e-6)
    rms, adamw = optimizers.get("rmsprop"), optimizers.get("AdamW")
    assert (type(rms), rms.learning_rate, rms.rho, rms.momentum, rms.epsilon, rms.centered) == (
        RMSprop, 0.001, 0.9, 0.0, 1e-7, False)
    assert type(adamw) is AdamW and adamw.weight_decay == 0.004 and adamw.learning_rate == 0.001
    assert RMSprop(momentum=0.5, centered=True).slot_names == ("velocity", "momentum", "average_gradient")
    for make in (lambda: RMSprop(0.1, momentum=0.5, centered=True), lambda: AdamW(0.1, weight_decay=0.1)):
        assert_resumes_exactly(make, "cpu")
    for bad in (lambda: RMSprop(rho=1.0), lambda: RMSprop(momentum=-0.1), lambda: RMSprop(epsilon=0),
                lambda: AdamW(weight_decay=None)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="unknown optimizer 'ftrl'; use one of .*'adadelta'.*'sgd'"):
        optimizers.get("ftrl")


def test_nadam_by_the_keras_formula(device):
    """Keras's Nadam: the momentum schedule u_t, its running product, Nesterov's look-ahead."""
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-7
    path = run(optimizers.Nadam(lr, b1, b2, eps), GRADS, [1.0, -1.0], device)
    w, m, v, product = numpy.array([1.0, -1.0]), numpy.zeros(2), numpy.zeros(2), 1.0
    for t, g in enumerate(map(numpy.array, GRADS), start=1):
        u_t, u_next = b1 * (1 - 0.5 * 0.96 ** (0.004 * t)), b1 * (1 - 0.5 * 0.96 ** (0.004 * (t + 1)))
        product *= u_t
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat = u_next * m / (1 - product * u_next) + (1 - u_t) * g / (1 - product)
        w = w - lr * m_hat / (numpy.sqrt(v / (1 - b2 ** t)) + eps)
        numpy.testing.assert_allclose(path[t - 1], w, rtol=1e-12)


def test_adamax_by_the_keras_formula(device):
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-7
    path = run(optimizers.Adamax(lr, b1, b2, eps), GRADS, [1.0, -1.0], device)
    w, m, u = numpy.array([1.0, -1.0]), numpy.zeros(2), numpy.zeros(2)
    for t, g in enumerate(map(numpy.array, GRADS), start=1):
        m, u = b1 * m + (1 - b1) * g, numpy.maximum(b2 * u, numpy.abs(g))
        w = w - lr / (1 - b1 ** t) * m / (u + eps)
        numpy.testing.assert_allclose(path[t - 1], w, rtol=1e-12)


def test_adagrad_and_adadelta_by_the_keras_formulas(device):
    lr, start, eps = 0.1, 0.2, 1e-7
    path = run(optimizers.Adagrad(lr, initial_accumulator_value=start, epsilon=eps), GRADS, [1.0, -1.0], device)
    w, a = numpy.array([1.0, -1.0]), numpy.full(2, start)
    for t, g in enumerate(map(numpy.array, GRADS)):
        a = a + g * g
        w = w - lr * g / numpy.sqrt(a + eps)
        numpy.testing.assert_allclose(path[t], w, rtol=1e-12)
    lr, rho = 1.0, 0.9
    path = run(optimizers.Adadelta(lr, rho=rho, epsilon=eps), GRADS, [1.0, -1.0], device)
    w, G, D = numpy.array([1.0, -1.0]), numpy.zeros(2), numpy.zeros(2)
    for t, g in enumerate(map(numpy.array, GRADS)):
        G = rho * G + (1 - rho) * g * g
        delta = numpy.sqrt(D + eps) / numpy.sqrt(G + eps) * g
        D = rho * D + (1 - rho) * delta * delta
        w = w - lr * delta
        numpy.testing.assert_allclose(path[t], w, rtol=1e-12)


MORE_RULES = [lambda: optimizers.Nadam(0.1), lambda: optimizers.Adamax(0.1),
              lambda: optimizers.Adagrad(0.1, initial_accumulator_value=0.3), lambda: optimizers.Adadelta(1.0, rho=0.8)]


@pytest.mark.parametrize("make", MORE_RULES)
def test_nadam_adamax_adagrad_adadelta_resume_exactly_and_keep_float32(device, make):
    """Nadam's momentum product is remade from the step count on a resume, so the resumed
    steps are the unbroken run's bit for bit; float32 weights and slots stay float32."""
    assert_resumes_exactly(make, device)
    w = Tensor(backend.to_device(numpy.ones((3, 4), numpy.float32), device), requires_grad=True)
    opt = make().build([w])
    for _ in range(3):
        w.grad = backend.to_device(numpy.full((3, 4), 0.5, numpy.float32), device)
        opt.step()
    assert w.dtype == numpy.float32 and all(s[0].dtype == numpy.float32 for s in opt.slots.values())
    assert backend.to_numpy(w.data).max() < 1


def test_nadam_adamax_adagrad_adadelta_keras_defaults_and_checks():
    defaults = {"nadam": (optimizers.Nadam, {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
                "adamax": (optimizers.Adamax, {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
                "adagrad": (optimizers.Adagrad, {"initial_accumulator_value": 0.1, "epsilon": 1e-7}),
                "adadelta": (optimizers.Adadelta, {"rho": 0.95, "epsilon": 1e-7})}
    for name, (cls, options) in defaults.items():
        made = optimizers.get(name.capitalize())
        assert type(made) is cls and made.learning_rate == 0.001
        assert {key: getattr(made, key) for key in options} == options
    # Adagrad's accumulator starts at initial_accumulator_value, for a weight bound later too
    a, b = Tensor(numpy.ones(2), requires_grad=True), Tensor(numpy.ones(3), requires_grad=True)
    adagrad = optimizers.Adagrad(initial_accumulator_value=0.25).build([a])
    adagrad.rebind([a, b])
    assert [s.tolist() for s in adagrad.slots["accumulator"]] == [[0.25] * 2, [0.25] * 3]
    for bad, message in ((lambda: optimizers.Nadam(beta_1=1.0), "Nadam: need 0 <= beta_1"),
                         (lambda: optimizers.Adamax(epsilon=0), "Adamax: need"),
                         (lambda: optimizers.Adagrad(initial_accumulator_value=-1), "Adagrad: need"),
                         (lambda: optimizers.Adadelta(rho=1.0), "Adadelta: need 0 <= rho < 1")):
        with pytest.raises(ValueError, match=message):
            bad()
