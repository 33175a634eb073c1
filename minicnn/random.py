"""One seed for everything random in minicnn: weight initialisation, dropout masks,
shuffling. ``minicnn.set_seed(n)`` makes a run repeatable; weights are drawn on the
host, so the same seed gives the same initial model on the CPU and the GPU."""
import numpy

_rng = numpy.random.default_rng()


def set_seed(seed):
    global _rng
    _rng = numpy.random.default_rng(seed)


def host_rng():
    """The shared host Generator (numpy)."""
    return _rng


def new_seed():
    """A fresh integer seed drawn from the shared generator, for a component's own stream."""
    return int(_rng.integers(2**63 - 1))


def get_state():
    """The shared generator's state as a JSON-able dict (checkpoints store it)."""
    return _rng.bit_generator.state


def set_state(state):
    """Restore a state from ``get_state()``."""
    _rng.bit_generator.state = state
