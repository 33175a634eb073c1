"""Learning rates that change with the step, with Keras's names, arguments and formulas.

Pass one as an optimizer's learning rate, ``SGD(learning_rate=CosineDecay(0.1, 10_000))``:
the optimizer evaluates it at every step, at its own ``iterations`` count (0 for the
first step), so a resumed run continues the schedule exactly where it stopped. A saved
model stores the schedule's class name and ``get_config()``.

Write your own by subclassing ``LearningRateSchedule``: ``__call__(step) -> float`` and
``get_config()`` (the constructor's arguments). Subclasses register themselves by class
name, so a model saved with one loads wherever the class has been defined.
"""
import math

_REGISTRY = {}


class LearningRateSchedule:
    """A learning rate as a function of the optimizer's step: ``schedule(step) -> float``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __call__(self, step):
        raise NotImplementedError(f"{type(self).__name__} must define __call__(step)")

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} must define get_config() to be saved")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _positive(owner, **values):
    for name, value in values.items():
        if not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")


class ExponentialDecay(LearningRateSchedule):
    """initial_learning_rate * decay_rate ** (step / decay_steps); with staircase=True the
    exponent is rounded down, so the rate drops in steps every decay_steps."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        _positive("ExponentialDecay", initial_learning_rate=initial_learning_rate,
                  decay_steps=decay_steps, decay_rate=decay_rate)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase = decay_rate, bool(staircase)

    def __call__(self, step):
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate ** exponent

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase}


class InverseTimeDecay(LearningRateSchedule):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps) (Keras's); staircase=True
    rounds step / decay_steps down. Keras 2's optimizer ``decay`` is this with decay_steps 1."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        _positive("InverseTimeDecay", initial_learning_rate=initial_learning_rate, decay_steps=decay_steps)
        if not isinstance(decay_rate, (int, float)) or decay_rate < 0:
            raise ValueError(f"InverseTimeDecay: decay_rate must be a number >= 0, got {decay_rate!r}")
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase = decay_rate, bool(staircase)

    def __call__(self, step):
        elapsed = step / self.decay_steps
        if self.staircase:
            elapsed = math.floor(elapsed)
        return self.initial_learning_rate / (1 + self.decay_rate * elapsed)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase}


class PolynomialDecay(LearningRateSchedule):
    """From initial_learning_rate down to end_learning_rate over decay_steps along
    (1 - step / decay_steps) ** power (power 1: a straight line), then end_learning_rate
    (Keras's). cycle=True starts again instead, each cycle as long as the step count
    rounded up to a whole number of decay_steps."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False):
        _positive("PolynomialDecay", initial_learning_rate=initial_learning_rate, decay_steps=decay_steps,
                  power=power)
        if not isinstance(end_learning_rate, (int, float)) or end_learning_rate < 0:
            raise ValueError(f"PolynomialDecay: end_learning_rate must be a number >= 0, got {end_learning_rate!r}")
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.end_learning_rate, self.power, self.cycle = end_learning_rate, power, bool(cycle)

    def __call__(self, step):
        steps = self.decay_steps
        if self.cycle:
            steps = self.decay_steps * max(1, math.ceil(step / self.decay_steps))
        else:
            step = min(step, steps)
        fraction = (1 - step / steps) ** self.power
        return (self.initial_learning_rate - self.end_learning_rate) * fraction + self.end_learning_rate

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle}


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[1] while step <= boundaries[1], ...,
    values[-1] after the last boundary (Keras's rule: a boundary belongs to the interval
    before it). len(values) == len(boundaries) + 1."""

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstantDecay: needs one more value than boundaries, got "
                             f"{len(boundaries)} boundaries and {len(values)} values")
        if any(later <= earlier for earlier, later in zip(boundaries, boundaries[1:])):
            raise ValueError(f"PiecewiseConstantDecay: boundaries must increase, got {boundaries}")
        _positive("PiecewiseConstantDecay", **{f"values[{i}]": v for i, v in enumerate(values)})
        self.boundaries, self.values = boundaries, values

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


class CosineDecay(LearningRateSchedule):
    """Optional linear warm-up, then half a cosine down to alpha times the peak (Keras 3).

    Warm-up (warmup_target given): initial_learning_rate + (warmup_target -
    initial_learning_rate) * step / warmup_steps for the first warmup_steps steps.
    Then, with s = min(step - warmup_steps, decay_steps) and peak = warmup_target (or
    initial_learning_rate without warm-up):
        peak * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
        _positive("CosineDecay", decay_steps=decay_steps)
        if not isinstance(initial_learning_rate, (int, float)) or initial_learning_rate < 0:
            raise ValueError(f"CosineDecay: initial_learning_rate must be >= 0, got {initial_learning_rate!r}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"CosineDecay: alpha (the final fraction of the peak) must be in [0, 1], got {alpha}")
        if warmup_steps < 0 or (warmup_steps and warmup_target is None):
            raise ValueError(f"CosineDecay: warmup_steps={warmup_steps} needs warmup_steps >= 0 and, "
                             "when above 0, a warmup_target")
        if warmup_target is not None:
            _positive("CosineDecay", warmup_target=warmup_target)
        if initial_learning_rate == 0 and warmup_target is None:
            raise ValueError("CosineDecay: initial_learning_rate 0 without a warm-up never trains")
        self.initial_learning_rate, self.decay_steps, self.alpha = initial_learning_rate, decay_steps, alpha
        self.warmup_target, self.warmup_steps = warmup_target, warmup_steps

    def __call__(self, step):
        if self.warmup_target is not None and step < self.warmup_steps:
            return (self.initial_learning_rate
                    + (self.warmup_target - self.initial_learning_rate) * step / self.warmup_steps)
        peak = self.initial_learning_rate if self.warmup_target is None else self.warmup_target
        s = min(step - (self.warmup_steps if self.warmup_target is not None else 0), self.decay_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * s / self.decay_steps))
        return peak * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Half a cosine from the rate down to alpha times it over first_decay_steps, then a
    restart (Loshchilov & Hutter's SGDR, Keras's): cycle k lasts first_decay_steps *
    t_mul**k steps and starts at initial_learning_rate * m_mul**k.

    The cycle a step falls in is found by counting cycle lengths, not by Keras's
    logarithm, so a step exactly at a restart is never put in the cycle before by rounding."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0):
        _positive("CosineDecayRestarts", initial_learning_rate=initial_learning_rate,
                  first_decay_steps=first_decay_steps, m_mul=m_mul)
        if not isinstance(t_mul, (int, float)) or t_mul < 1:
            raise ValueError(f"CosineDecayRestarts: t_mul (how much longer each cycle is) must be >= 1, got {t_mul!r}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"CosineDecayRestarts: alpha (the final fraction) must be in [0, 1], got {alpha}")
        self.initial_learning_rate, self.first_decay_steps = initial_learning_rate, first_decay_steps
        self.t_mul, self.m_mul, self.alpha = t_mul, m_mul, alpha

    def cycle(self, step):
        """(k, fraction): step lies in cycle k, fraction of the way through it."""
        if self.t_mul == 1:
            k = math.floor(step / self.first_decay_steps)
            return k, step / self.first_decay_steps - k
        k, start, length = 0, 0.0, float(self.first_decay_steps)
        while step >= start + length:
            k, start, length = k + 1, start + length, length * self.t_mul
        return k, (step - start) / length

    def __call__(self, step):
        k, fraction = self.cycle(step)
        cosine = 0.5 * self.m_mul ** k * (1 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self.t_mul, "m_mul": self.m_mul, "alpha": self.alpha}


class PiecewiseLinearDecay(LearningRateSchedule):
    """values[i] at step boundaries[i], straight lines between them, values[-1] after the
    last (the "one-cycle" warm-up and decay of Page's ResNet-9 and of airbench). Not in
    Keras; boundaries start at 0 and increase, one value per boundary."""

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) or len(boundaries) < 2 or boundaries[0] != 0:
            raise ValueError(f"PiecewiseLinearDecay: needs as many values as boundaries (at least 2, the first "
                             f"boundary 0), got {boundaries} and {values}")
        if any(later <= earlier for earlier, later in zip(boundaries, boundaries[1:])):
            raise ValueError(f"PiecewiseLinearDecay: boundaries must increase, got {boundaries}")
        if any(v < 0 for v in values):
            raise ValueError(f"PiecewiseLinearDecay: values must be >= 0, got {values}")
        self.boundaries, self.values = boundaries, values

    def __call__(self, step):
        for (b0, v0), (b1, v1) in zip(zip(self.boundaries, self.values), zip(self.boundaries[1:], self.values[1:])):
            if step <= b1:
                return v0 + (v1 - v0) * (step - b0) / (b1 - b0)
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


def serialize(schedule):
    """{'class_name': ..., 'config': {...}}: what a saved model stores (JSON-able)."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(data):
    """A schedule from ``serialize``'s dict. The class must be one of the built-ins or a
    subclass of LearningRateSchedule defined before loading."""
    name = data.get("class_name") if isinstance(data, dict) else None
    if name not in _REGISTRY:
        raise ValueError(f"unknown learning-rate schedule {name!r}; known: {sorted(_REGISTRY)}. A schedule "
                         "of your own must be defined (a subclass of LearningRateSchedule) before loading")
    return _REGISTRY[name].from_config(data.get("config", {}))
