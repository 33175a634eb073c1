"""Keras 3's Muon: the Newton-Schulz step against the singular value decomposition, each
step against Keras's update_step written out again in float64, PyTorch's Muon as an
optional oracle, which weights take which rule, exact resumption, float32 kept, checks."""
import numpy
import pytest

from minicnn import Tensor, backend, optimizers
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten
from minicnn.models import Sequential
from minicnn.optimizers import Adam, Muon
from minicnn.optimizers.muon import orthogonalize
from test_lion_lamb_adafactor import trajectory as lion_lamb_adafactor_trajectory

RNG = numpy.random.default_rng(11)
A, B, C = 3.4445, -4.7750, 2.0315


def trajectory(optimizer, start, grads, device, dtype=numpy.float64, name="dense/kernel"):
    """test_lion_lamb_adafactor's, the weight named as a Dense kernel unless said (Muon's
    rule depends on the name)."""
    return lion_lamb_adafactor_trajectory(optimizer, start, grads, device, dtype, name)


@pytest.mark.parametrize("shape", [(4, 7), (7, 4), (5, 5)], ids=["wide", "tall", "square"])
def test_orthogonalize_moves_each_singular_value_by_the_quintic(device, shape):
    """Not Keras's code again but what it means: with x = U S V^T, five steps give
    U p(p(p(p(p(S / ||x||))))) V^T, p(s) = a s + b s^3 + c s^5, the singular vectors kept."""
    x = RNG.normal(size=shape)
    got = backend.to_numpy(orthogonalize(backend.to_device(x, device), 5))
    U, s, Vt = numpy.linalg.svd(x, full_matrices=False)
    s = s / (numpy.linalg.norm(x) + 1e-7)
    for _ in range(5):
        s = A * s + B * s ** 3 + C * s ** 5
    numpy.testing.assert_allclose(got, (U * s) @ Vt, rtol=1e-10, atol=1e-12)
    assert numpy.all((0.6 < s) & (s < 1.2))  # about orthogonal: every direction about alike


def keras_muon(start, grads, lr, momentum=0.95, nesterov=True, rms_rate=0.2, weight_decay=0.0, steps=5):
    """Keras 3's Muon._muon_update_step and lr_adjust, in float64, a kernel of any rank seen
    as the (prod(shape[:-1]), shape[-1]) matrix."""
    w, m, path = numpy.array(start, numpy.float64), 0.0, []
    for g in map(numpy.asarray, grads):
        w = w - w * weight_decay * lr  # Keras's _apply_weight_decay, before the step
        m = m + (g + m * (momentum - 1))
        u = (g + momentum * m if nesterov else m).reshape(-1, w.shape[-1])
        x = u.T if u.shape[0] > u.shape[1] else u
        x = x / (numpy.linalg.norm(x) + 1e-7)
        for _ in range(steps):
            gram = x @ x.T
            x = A * x + (B * gram + C * gram @ gram) @ x
        x = x.T if u.shape[0] > u.shape[1] else x
        adjusted = lr * x * (numpy.sqrt(max(x.shape)) * rms_rate if rms_rate is not None else 1.0)
        w = w - adjusted.reshape(w.shape)
        path.append(w)
    return path


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (2, 3, 4, 5)], ids=["dense wide", "dense tall", "conv kernel"])
@pytest.mark.parametrize("options", [{}, {"nesterov": False, "rms_rate": None, "weight_decay": 0.1, "momentum": 0.8}],
                         ids=["defaults", "plain momentum, no rms factor, decay"])
def test_muon_by_the_keras_formula(device, shape, options):
    start = RNG.normal(size=shape)
    grads = [RNG.normal(size=shape) * scale for scale in (1.0, 0.1, 3.0, 1.0)]
    path = trajectory(Muon(0.02, **options), start, grads, device)
    expected = keras_muon(start, grads, 0.02, **{"weight_decay": 0.004, **options})
    for got, want in zip(path, expected):
        numpy.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_the_adamw_half_is_adam_at_the_ratio_with_the_full_rate_decay(device):
    """A bias (or any excluded weight): Keras's AdamW step at lr * adam_lr_ratio, which is
    minicnn's Adam at that rate bit for bit; the decay uses the full lr (Keras's too)."""
    start, grads = RNG.normal(size=5), [RNG.normal(size=5) for _ in range(4)]
    muon = trajectory(Muon(0.1, 0.8, 0.95, None, 1e-6, adam_lr_ratio=0.5), start, grads, device, name="dense/bias")
    adam = trajectory(Adam(0.05, 0.8, 0.95, 1e-6), start, grads, device, name="dense/bias")
    for a, b in zip(muon, adam):
        numpy.testing.assert_array_equal(a, b)
    decayed = trajectory(Muon(0.1, adam_weight_decay=0.3, adam_lr_ratio=0.5), start, grads[:1], device,
                         name="dense/bias")[0]
    undecayed = trajectory(Adam(0.05), start * (1 - 0.1 * 0.3), grads[:1], device, name="dense/bias")[0]
    numpy.testing.assert_allclose(decayed, undecayed, rtol=1e-12)


def test_pytorch_muon_takes_the_same_step_as_an_oracle(device, monkeypatch):
    """torch.optim.Muon keeps m as an average (m = 0.95 m + 0.05 g, Keras: a sum), a
    constant factor that the Frobenius normalisation removes, so with its
    'match_rms_adamw' rate (0.2 sqrt(max(A, B))) it is Keras's rule. It orthogonalizes in
    bfloat16; held to the weights' float64 here (its cast made a copy), it agrees to
    within Keras's + 1e-7 on the norm (PyTorch clamps the norm at 1e-7 instead): about
    1e-7 of a step."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch.optim, "Muon"):
        pytest.skip(f"PyTorch {torch.__version__} has no torch.optim.Muon")
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda self, *args, **kwargs: self.clone())
    start, grads = RNG.normal(size=(8, 12)), [RNG.normal(size=(8, 12)) for _ in range(3)]
    path = trajectory(Muon(0.02, weight_decay=0.1), start, grads, device)
    param = torch.nn.Parameter(torch.tensor(start))
    reference = torch.optim.Muon([param], lr=0.02, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    for g, got in zip(grads, path):
        param.grad = torch.tensor(g)
        reference.step()
        numpy.testing.assert_allclose(got, param.detach().numpy(), rtol=0, atol=1e-9)  # a step: about 0.014


def small_cnn():
    model = Sequential([Conv2D(4, 3, input_shape=(6, 6, 2)), BatchNormalization(), Flatten(),
                        Dense(8, activation="relu"), Dense(2, activation="softmax")])
    model.build((None, 6, 6, 2))
    return model


def test_which_weights_take_muon_and_their_slots_and_decays():
    model = small_cnn()
    rules = {w.name: "adam" if Muon().takes_adam(w) else "muon" for w in model.trainable_weights}
    assert rules == {"conv2d/kernel": "muon", "conv2d/bias": "adam", "batch_normalization/gamma": "adam",
                     "batch_normalization/beta": "adam", "dense/kernel": "muon", "dense/bias": "adam",
                     "dense_1/kernel": "muon", "dense_1/bias": "adam"}
    keras_rule = Muon(flatten_kernels=False, exclude_layers=["^dense_1/"])
    assert [w.name for w in model.trainable_weights if not keras_rule.takes_adam(w)] == ["dense/kernel"]
    embedding = Tensor(numpy.zeros((10, 4)), requires_grad=True, name="token_embedding/embeddings")
    assert Muon().takes_adam(embedding) and not Muon(exclude_embeddings=False).takes_adam(embedding)

    opt = Muon(weight_decay=0.1, adam_weight_decay=0.01).build(model.trainable_weights)
    for w, v, options in zip(opt.params, opt.slots["v"], opt.options):
        adam = rules[w.name] == "adam"
        assert v.shape == (w.shape if adam else ()), w.name  # a Muon weight keeps no second moment
        assert options[1] == (0.01 if adam else 0.1), w.name
    grouped = Muon(weight_decay=0.1).build([{"params": model.trainable_weights[:2], "weight_decay": 0.5},
                                            *model.trainable_weights[2:]])
    assert [o[1] for o in grouped.options[:3]] == [0.5, 0.5, 0.004]  # the group's, then adam_weight_decay


def test_muon_resumes_exactly_keeps_float32_and_its_device(device):
    start, grads = RNG.normal(size=(3, 3, 2, 4)), [RNG.normal(size=(3, 3, 2, 4)) for _ in range(4)]
    whole = trajectory(Muon(0.05), start, grads, device, name="conv2d/kernel")
    first = Muon(0.05)
    half = trajectory(first, start, grads[:2], device, name="conv2d/kernel")
    w = Tensor(backend.to_device(half[-1], device), requires_grad=True, name="conv2d/kernel")
    second = optimizers.deserialize(first.get_config()).build([w])
    second.load_state_dict(first.state_dict())
    for g, expected in zip(grads[2:], whole[2:]):
        w.grad = backend.to_device(g, device)
        second.step()
        numpy.testing.assert_array_equal(backend.to_numpy(w.data), expected)
    for name, shape in (("conv2d/kernel", (3, 3, 2, 4)), ("conv2d/bias", (4,))):
        opt = Muon(0.05)
        after = trajectory(opt, numpy.ones(shape), [numpy.full(shape, 0.5)] * 2, device, numpy.float32, name)
        assert after[-1].dtype == numpy.float32 and after[-1].max() < 1
        assert all(s[0].dtype == numpy.float32 and backend.device_of(s[0]) == device for s in opt.slots.values())


def test_muon_trains_a_small_convnet(device):
    """Not a speed or accuracy claim: Muon (output layer excluded, as Keras advises) lowers
    the loss of a conv net on a learnable problem, through compile and fit."""
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 2)).astype(numpy.float32)
    y = (x[:, :3].mean(axis=(1, 2, 3)) > x[:, 3:].mean(axis=(1, 2, 3))).astype(numpy.int64)
    model = small_cnn()
    model.compile(Muon(0.01, exclude_layers=["^dense_1/"]), "sparse_categorical_crossentropy")
    model.to(device)
    losses = model.fit(x, y, epochs=8, batch_size=16, verbose=0, seed=0).history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses


def test_keras_defaults_names_and_checks():
    made = optimizers.get("Muon")
    assert type(made) is Muon and made.learning_rate == 0.001
    assert {k: made.get_config()[k] for k in ("adam_beta_1", "adam_beta_2", "adam_weight_decay", "epsilon",
                                               "weight_decay", "momentum", "ns_steps", "nesterov", "rms_rate",
                                               "adam_lr_ratio", "muon_a", "muon_b", "muon_c")} == {
        "adam_beta_1": 0.9, "adam_beta_2": 0.999, "adam_weight_decay": 0.004, "epsilon": 1e-7,
        "weight_decay": 0.004, "momentum": 0.95, "ns_steps": 5, "nesterov": True, "rms_rate": 0.2,
        "adam_lr_ratio": 1, "muon_a": 3.4445, "muon_b": -4.775, "muon_c": 2.0315}
    config = Muon(exclude_layers=["^dense_1/"], flatten_kernels=False).get_config()
    assert optimizers.deserialize(config).get_config() == config
    for bad, error, message in (
            (lambda: Muon(exclude_layers="dense_1"), TypeError, r"list of regular expressions.*write \['dense_1'\]"),
            (lambda: Muon(exclude_layers=["dense_1/("]), ValueError, "not a regular expression"),
            (lambda: Muon(ns_steps=0), ValueError, "ns_steps"),
            (lambda: Muon(momentum=1.0), ValueError, "momentum < 1"),
            (lambda: Muon(rms_rate=0), ValueError, "rms_rate > 0"),
            (lambda: Muon(adam_weight_decay=-1), ValueError, "adam_weight_decay >= 0")):
        with pytest.raises(error, match=message):
            bad()
