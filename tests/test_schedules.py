"""Learning-rate schedules: the rate at each step against Keras's formulas worked by hand,
their use by the optimizers (evaluated at every step, saved and resumed exactly), and
the errors that name a bad argument."""
import math

import numpy
import pytest

from minicnn import Tensor
from minicnn.models import load_model
from minicnn.optimizers import SGD, Adam, deserialize, schedules
from minicnn.optimizers.schedules import (CosineDecay, CosineDecayRestarts, ExponentialDecay, InverseTimeDecay,
                                          PiecewiseConstantDecay, PolynomialDecay)
from test_saving import data, small_model


def test_exponential_decay_by_hand():
    smooth = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert [smooth(s) for s in (0, 5, 10, 25)] == pytest.approx([0.1, 0.1 * 0.5 ** 0.5, 0.05, 0.1 * 0.5 ** 2.5])
    stairs = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert [stairs(s) for s in (0, 9, 10, 25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_piecewise_constant_decay_puts_a_boundary_in_the_interval_before_it():
    schedule = PiecewiseConstantDecay([100, 200], [1.0, 0.5, 0.1])
    assert [schedule(s) for s in (0, 100, 101, 200, 201, 10 ** 6)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


def test_cosine_decay_by_hand_with_and_without_warm_up():
    plain = CosineDecay(0.1, decay_steps=100, alpha=0.1)
    # 0.1 * ((1 - 0.1) * 0.5 * (1 + cos(pi * s / 100)) + 0.1)
    assert [plain(s) for s in (0, 50, 100, 150)] == pytest.approx([0.1, 0.1 * (0.9 * 0.5 + 0.1), 0.01, 0.01])
    warm = CosineDecay(0.0, decay_steps=100, warmup_target=0.2, warmup_steps=10)
    assert [warm(s) for s in (0, 5, 10)] == pytest.approx([0.0, 0.1, 0.2])  # linear from 0 to 0.2
    assert warm(60) == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # 50 steps into the decay
    assert warm(110) == pytest.approx(0.0) and warm(500) == pytest.approx(0.0)


def test_inverse_time_and_polynomial_decay_by_hand():
    inverse = InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert [inverse(s) for s in (0, 5, 10, 30)] == pytest.approx([0.1, 0.1 / 1.25, 0.1 / 1.5, 0.1 / 2.5])
    stairs = InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert [stairs(s) for s in (9, 10, 29)] == pytest.approx([0.1, 0.1 / 1.5, 0.1 / 2])
    line = PolynomialDecay(0.1, decay_steps=100, end_learning_rate=0.01)
    assert [line(s) for s in (0, 50, 100, 500)] == pytest.approx([0.1, 0.055, 0.01, 0.01])
    square = PolynomialDecay(0.1, decay_steps=100, end_learning_rate=0.0, power=2.0)
    assert square(50) == pytest.approx(0.025)
    cycling = PolynomialDecay(0.1, decay_steps=100, end_learning_rate=0.0, cycle=True)
    # step 150: the cycle is rounded up to 200 steps, 25% of the way from the top
    assert [cycling(s) for s in (0, 100, 150)] == pytest.approx([0.1, 0.0, 0.025])


def test_cosine_decay_restarts_by_keras_formula_and_pytorch():
    """Each cycle t_mul times the one before, m_mul times lower at its start; a restart
    step is the first of its cycle. PyTorch's CosineAnnealingWarmRestarts (m_mul 1,
    eta_min = alpha * the rate) gives the same rates step for step."""
    restarts = CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=2.0, m_mul=0.5, alpha=0.1)
    assert [restarts.cycle(s) for s in (0, 9, 10, 29, 30, 70)] == [(0, 0.0), (0, 0.9), (1, 0.0), (1, 0.95),
                                                                (2, 0.0), (3, 0.0)]
    def keras(step, k, fraction):
        return 0.1 * (0.9 * 0.5 * 0.5 ** k * (1 + math.cos(math.pi * fraction)) + 0.1)
    assert [restarts(s) for s in (0, 5, 10, 20, 30)] == pytest.approx(
        [keras(0, 0, 0), keras(5, 0, 0.5), keras(10, 1, 0), keras(20, 1, 0.5), keras(30, 2, 0)])
    flat = CosineDecayRestarts(0.1, first_decay_steps=8, t_mul=1.0)
    assert flat(8) == pytest.approx(0.1) and flat(12) == pytest.approx(0.05)
    torch = pytest.importorskip("torch", reason="PyTorch not installed: the oracle comparison is skipped")
    w = torch.zeros(1, requires_grad=True)
    for t_mul in (1, 2, 3):
        optimizer = torch.optim.SGD([w], lr=0.1)
        theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=7, T_mult=t_mul, eta_min=0.02)
        ours = CosineDecayRestarts(0.1, first_decay_steps=7, t_mul=float(t_mul), alpha=0.2)
        for step in range(200):
            assert ours(step) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12, abs=1e-15), step
            optimizer.step()
            theirs.step()


@pytest.mark.parametrize("make, message", [
    (lambda: ExponentialDecay(0.1, 0, 0.5), "decay_steps"),
    (lambda: InverseTimeDecay(0.1, 10, -1.0), "decay_rate must be a number >= 0"),
    (lambda: PolynomialDecay(0.1, 10, end_learning_rate=-1), "end_learning_rate must be"),
    (lambda: PolynomialDecay(0.1, 10, power=0), "power must be a positive number"),
    (lambda: CosineDecayRestarts(0.1, 10, t_mul=0.5), "t_mul .* must be >= 1"),
    (lambda: CosineDecayRestarts(0.1, 10, alpha=1.5), "alpha"),
    (lambda: ExponentialDecay(-0.1, 10, 0.5), "initial_learning_rate"),
    (lambda: PiecewiseConstantDecay([10], [1.0]), "one more value than boundaries"),
    (lambda: PiecewiseConstantDecay([10, 5], [1.0, 0.5, 0.1]), "must increase"),
    (lambda: CosineDecay(0.1, 100, alpha=2), "alpha"),
    (lambda: CosineDecay(0.1, 100, warmup_steps=5), "warmup_target"),
    (lambda: SGD(ExponentialDecay(0.1, 10, 0.5), decay=1e-3), "give one"),
    (lambda: SGD("fast"), "learning_rate must be"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_optimizer_evaluates_the_schedule_at_every_step():
    """Plain SGD on a weight whose gradient is always 1: step t moves it by schedule(t)."""
    schedule = PiecewiseConstantDecay([1, 3], [1.0, 0.1, 0.01])
    w = Tensor(numpy.zeros(1), requires_grad=True)
    optimizer = SGD(schedule).build([w])
    moves = []
    for _ in range(5):
        assert optimizer.learning_rate == schedule(optimizer.iterations)
        before = float(w.data[0])
        w.grad = numpy.ones(1)
        optimizer.step()
        moves.append(before - float(w.data[0]))
    assert moves == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    with pytest.raises(TypeError, match="cannot be set"):
        optimizer.learning_rate = 0.5


def test_a_schedule_is_saved_with_the_model_and_a_resumed_run_continues_it_exactly(tmp_path):
    x, y = data()

    def model():
        m = small_model()
        m.layers = [layer for layer in m.layers if type(layer).__name__ != "Dropout"]  # same masks not needed
        m.compile(optimizer=Adam(CosineDecay(1e-3, 12, alpha=0.1, warmup_target=5e-3, warmup_steps=3)),
                  loss="sparse_categorical_crossentropy")
        return m
    straight = model()
    straight.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=1)
    straight.save(tmp_path / "half.npz")
    straight.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, verbose=0, seed=1)

    resumed = load_model(tmp_path / "half.npz")
    assert isinstance(resumed.optimizer.schedule, CosineDecay) and resumed.optimizer.iterations == 6
    assert resumed.optimizer.get_config() == model().optimizer.get_config()
    resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, verbose=0, seed=1)
    assert resumed.optimizer.learning_rate == straight.optimizer.learning_rate
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_schedule_of_your_own_round_trips_by_class_name():
    class Halving(schedules.LearningRateSchedule):
        def __init__(self, start, every):
            self.start, self.every = start, every

        def __call__(self, step):
            return self.start / 2 ** (step // self.every)

        def get_config(self):
            return {"start": self.start, "every": self.every}
    optimizer = deserialize(SGD(Halving(0.4, 2)).get_config())
    assert isinstance(optimizer.schedule, Halving) and optimizer.schedule(5) == 0.1
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'Nowhere'"):
        schedules.deserialize({"class_name": "Nowhere", "config": {}})


def test_piecewise_linear_decay_is_page_s_one_cycle():
    from minicnn.optimizers.schedules import PiecewiseLinearDecay
    cycle = PiecewiseLinearDecay([0, 5, 24], [0.0, 0.4, 0.0])
    assert [cycle(s) for s in (0, 2.5, 5, 14.5, 24, 30)] == pytest.approx([0.0, 0.2, 0.4, 0.2, 0.0, 0.0])
    with pytest.raises(ValueError, match="first boundary 0"):
        PiecewiseLinearDecay([1, 5], [0.1, 0.2])


@pytest.mark.parametrize("schedule", [InverseTimeDecay(0.1, 10, 0.5, staircase=True),
                                      PolynomialDecay(0.1, 100, 0.001, power=2.0, cycle=True),
                                      CosineDecayRestarts(0.1, 10, t_mul=1.5, m_mul=0.8, alpha=0.05)])
def test_the_newer_schedules_round_trip_in_an_optimizer_config(schedule):
    copy = deserialize(SGD(schedule, momentum=0.9).get_config()).schedule
    assert type(copy) is type(schedule) and copy.get_config() == schedule.get_config()
    assert [copy(s) for s in range(0, 300, 7)] == [schedule(s) for s in range(0, 300, 7)]
