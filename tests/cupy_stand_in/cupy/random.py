"""cupy.random, stand-in: a Generator with the methods CuPy's has that minicnn could reach for."""
import numpy

from ._array import _from_host, _launched

class Generator:
    """CuPy's Generator, with the methods of CuPy's own that minicnn could reach for."""

    def __init__(self, seed=None):
        # Not NumPy's stream for the same seed: CuPy's XORWOW draws other numbers.
        entropy = [0x5EED, seed] if isinstance(seed, int) else None
        self._numpy = numpy.random.default_rng(numpy.random.SeedSequence(entropy))

    def random(self, size=None, dtype=numpy.float64, out=None):
        return self._fill(self._numpy.random(size, dtype=dtype), out)

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        return self._fill(self._numpy.standard_normal(size, dtype=dtype), out)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        _launched("random.Generator.uniform")
        return _from_host(self._numpy.uniform(low, high, size).astype(dtype, copy=False))

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        _launched("random.Generator.integers")
        return _from_host(numpy.asarray(self._numpy.integers(int(low), None if high is None else int(high),
                                                              size, dtype=dtype, endpoint=endpoint)))

    @staticmethod
    def _fill(host, out):
        _launched("random.Generator (a draw)")
        host = numpy.asarray(host)
        if out is None:
            return _from_host(host)
        out._host[...] = host
        return out


def default_rng(seed=None):
    return Generator(seed)

