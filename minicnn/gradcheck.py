"""Check autograd gradients against central finite differences, in float64.

The check uses a random upstream gradient gy, i.e. it compares the gradients of
the scalar <gy, f(inputs)>. Checking sum(f) alone would prove nothing for ops
like batch-norm, whose outputs always sum to the same value.
"""
import numpy

from . import backend
from .autograd import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with the numeric one."""


class GradcheckResult:
    """Outcome of a check: ``ok``, and for the worst element of all inputs its
    ``tensor`` label, ``index``, ``analytic`` and ``numeric`` values and ``error``
    (how far past the tolerance it is; <= 0 means within)."""

    def __init__(self, ok, tensor, index, analytic, numeric, error, checked):
        self.ok, self.tensor, self.index = ok, tensor, index
        self.analytic, self.numeric, self.error, self.checked = analytic, numeric, error, checked

    def __bool__(self):
        return self.ok

    def __repr__(self):
        verdict = "passed" if self.ok else "FAILED"
        return (f"gradcheck {verdict} over {self.checked} elements; worst: {self.tensor} at index "
                f"{self.index}: analytic {self.analytic:.6g}, numeric {self.numeric:.6g}")


def gradcheck(fn, inputs, params=(), eps=1e-6, atol=1e-5, rtol=1e-3, seed=0,
              raise_exception=True):
    """Compare ``fn``'s autograd gradients with central differences.

    fn:     callable taking the ``inputs`` Tensors and returning a Tensor.
    inputs: float64 Tensors (or arrays, wrapped with requires_grad=True).
    params: further float64 Tensors that ``fn`` uses through a closure, such as a
            layer's ``kernel`` and ``bias``; their gradients are checked too.
    An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
    Returns a GradcheckResult; on failure raises GradcheckError naming the worst
    element and its index (unless raise_exception=False).
    """
    inputs = [t if isinstance(t, Tensor) else Tensor(t, requires_grad=True) for t in inputs]
    checked = [(f"input {i}" + (f" ({t.name})" if t.name else ""), t)
               for i, t in enumerate(inputs) if t.requires_grad]
    checked += [(t.name or f"param {i}", t) for i, t in enumerate(params) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: nothing to check, no tensor has requires_grad=True")
    for label, t in checked:
        if t.dtype != numpy.float64:
            raise TypeError(f"gradcheck needs float64 tensors ({label} is {t.dtype}): "
                            f"finite differences in float32 are too coarse to trust")

    out = fn(*inputs)
    xp = backend.get_array_module(out.data)
    gy = xp.asarray(numpy.random.default_rng(seed).standard_normal(out.shape))
    for _, t in checked:
        t.grad = None
    out.backward(gy)
    analytic = [t.grad if t.grad is not None else xp.zeros_like(t.data) for _, t in checked]

    def objective():
        with no_grad():
            return float((fn(*inputs).data * gy).sum())

    worst = None
    for (label, t), grad in zip(checked, analytic):
        if not t.data.flags.c_contiguous:  # reshape must give a view, not a copy
            t.data = backend.get_array_module(t.data).ascontiguousarray(t.data)
        flat = t.data.reshape(-1)  # a view: writing into it perturbs t.data
        numeric = numpy.empty(flat.size)
        for k in range(flat.size):
            original = flat[k].item()
            flat[k] = original + eps
            plus = objective()
            flat[k] = original - eps
            minus = objective()
            flat[k] = original
            numeric[k] = (plus - minus) / (2 * eps)
        grad = backend.to_numpy(grad).reshape(-1)
        excess = numpy.abs(grad - numeric) - (atol + rtol * numpy.abs(numeric))
        k = int(numpy.argmax(excess))
        if worst is None or excess[k] > worst[-1]:
            index = tuple(int(i) for i in numpy.unravel_index(k, t.shape))
            worst = (label, index, float(grad[k]), float(numeric[k]), float(excess[k]))

    total = sum(t.size for _, t in checked)
    result = GradcheckResult(worst[-1] <= 0, *worst, checked=total)
    if not result.ok and raise_exception:
        raise GradcheckError(f"{result} (tolerance atol={atol}, rtol={rtol})")
    return result
