"""A minimal reverse-mode autograd: ``Tensor`` wraps a NumPy/CuPy array.

Every operation builds its output and, right below, the function that turns the
output's gradient ``gy`` into one gradient per input. ``backward()`` orders the
graph topologically and walks it in reverse, *adding* each contribution, which is
what makes a tensor used twice (a branching graph) come out right.

Broadcasting is undone in one place (``_sum_to_shape``) for every op, so an
op's backward may return a gradient of the broadcast shape.
"""
import contextlib

import numpy

from . import backend
from .functions import activation as act

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Inside this block no graph is recorded (inference, weight updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


def _graph_freed(gy):
    raise RuntimeError("backward through this graph a second time: its saved arrays were "
                       "freed by the first backward(); pass retain_graph=True to keep them")


class Tensor:
    """An array plus what is needed to differentiate through it.

    ``Tensor(data, requires_grad=False, dtype=None)``: a Python number or list
    becomes float32 on the current device; an existing NumPy/CuPy array stays on
    its own device and keeps its dtype unless ``dtype`` is given (an explicit cast).
    """
    __array_priority__ = 1000  # ndarray <op> Tensor defers to the Tensor's reflected op

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        if isinstance(data, Tensor):
            data = data.data
        if not backend.is_array(data):
            if dtype is None:  # a NumPy scalar keeps its dtype; Python numbers get float32
                dtype = data.dtype if isinstance(data, numpy.generic) else backend.DEFAULT_DTYPE
            data = backend.xp().asarray(data, dtype=dtype)
        elif dtype is not None and data.dtype != numpy.dtype(dtype):
            data = data.astype(dtype)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._parents = ()
        self._backward = None  # None for a leaf; else gy -> tuple of input gradients

    # --- plain properties -------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self._backward is None)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        name = f", name={self.name!r}" if self.name else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}, device={self.device}{grad}{name})"

    def numpy(self):
        """The data as a NumPy array (an explicit device-to-host copy on the GPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        return self.data.item()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self):
        self.grad = None

    # --- the graph walk ---------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Fill ``.grad`` of every leaf that requires grad with d(self)/d(leaf) . grad.

        grad: array of ``self.shape`` (the upstream gradient); may be left out only
        when self holds a single element (a loss), then it is 1.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input "
                               "of the computation had requires_grad=True (or it ran in no_grad())")
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element output; "
                                   f"this one has shape {self.shape}: pass grad of that shape")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if backend.get_array_module(grad) is not xp:
                raise TypeError("backward(): grad is on a different device than the tensor")
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape}, tensor has {self.shape}")

        grads = {id(self): grad}
        own = {}  # id -> array, for the arrays in grads that this walk made for one tensor alone
        for node in reversed(_topological_order(self)):
            gy = grads.pop(id(node), None)
            if gy is None:
                continue
            made_here = own.pop(id(gy), None) is gy
            if node._backward is None:  # a leaf: keep its gradient, accumulating
                if node.grad is None:  # own it: copy unless this walk made it for this leaf alone
                    node.grad = gy if made_here else gy.copy()
                else:
                    node.grad += gy
                continue
            results = node._backward(gy)
            # (a kept graph's op may hand out the same array again: then every leaf copies)
            made = _made_by_op(results, gy) if not retain_graph and _minicnn_op(node._backward) else set()
            for parent, g in zip(node._parents, results):
                if g is None or not parent.requires_grad:
                    continue
                summed = _sum_to_shape(g, parent.shape)
                key = id(parent)
                if key in grads:
                    own.pop(id(grads[key]), None)
                    summed = grads[key] + summed
                if summed is not g or id(g) in made:
                    own[id(summed)] = summed
                grads[key] = summed
            if not retain_graph:
                node._backward, node._parents = _graph_freed, ()

    # --- elementwise arithmetic (backward right below each forward) -------
    def __add__(self, other):
        other = self._coerce(other)

        def backward(gy):
            return gy, gy
        return _make(self.data + other.data, (self, other), backward)

    def __sub__(self, other):
        other = self._coerce(other)

        def backward(gy):
            return gy, -gy
        return _make(self.data - other.data, (self, other), backward)

    def __mul__(self, other):
        other = self._coerce(other)
        a, b = self.data, other.data

        def backward(gy):
            return gy * b, gy * a
        return _make(a * b, (self, other), backward)

    def __truediv__(self, other):
        other = self._coerce(other)
        a, b = self.data, other.data

        def backward(gy):
            return gy / b, -gy * a / (b * b)
        return _make(a / b, (self, other), backward)

    def __neg__(self):
        def backward(gy):
            return (-gy,)
        return _make(-self.data, (self,), backward)

    def abs(self):
        """|x|; its gradient sign(x), 0 at 0 (as PyTorch's and TensorFlow's)."""
        a = self.data

        def backward(gy):
            return (gy * backend.get_array_module(a).sign(a),)
        return _make(abs(a), (self,), backward)

    __abs__ = abs

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            raise TypeError("Tensor ** Tensor is not supported; the exponent must be a number")
        a = self.data

        def backward(gy):
            return (gy * exponent * a ** (exponent - 1),)
        return _make(a ** exponent, (self,), backward)

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return self._coerce(other) - self

    def __rtruediv__(self, other):
        return self._coerce(other) / self

    def __matmul__(self, other):
        """(..., n, k) @ (..., k, m) -> (..., n, m); batch dims broadcast."""
        other = self._coerce(other)
        a, b = self.data, other.data
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs operands of rank >= 2, got shapes {a.shape} and {b.shape}")

        def backward(gy):
            return gy @ b.swapaxes(-1, -2), a.swapaxes(-1, -2) @ gy
        return _make(a @ b, (self, other), backward)

    def __getitem__(self, index):
        """Basic slicing only (ints, slices): the backward writes into a zero array,
        which would lose gradients where an index array repeats a position."""
        parts = index if isinstance(index, tuple) else (index,)
        if not all(p is None or p is Ellipsis or isinstance(p, (int, slice)) for p in parts):
            raise TypeError(f"Tensor indexing takes ints and slices only, got {index!r}")
        xp = backend.get_array_module(self.data)
        shape = self.shape

        def backward(gy):
            gx = xp.zeros(shape, dtype=gy.dtype)
            gx[index] = gy
            return (gx,)
        return _make(self.data[index], (self,), backward)

    # --- shape ops ---------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        original = self.shape

        def backward(gy):
            return (gy.reshape(original),)
        return _make(self.data.reshape(shape), (self,), backward)

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = tuple(axes) or tuple(reversed(range(self.ndim)))
        inverse = tuple(numpy.argsort(axes))

        def backward(gy):
            return (gy.transpose(inverse),)
        return _make(self.data.transpose(axes), (self,), backward)

    T = property(lambda self: self.transpose())

    def astype(self, dtype):
        """An explicit, differentiable cast (the gradient is cast back)."""
        source = self.dtype

        def backward(gy):
            return (gy.astype(source),)
        return _make(self.data.astype(dtype), (self,), backward)

    # --- reductions ---------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        xp = backend.get_array_module(self.data)
        shape = self.shape

        def backward(gy):
            if axis is not None and not keepdims:
                gy = xp.expand_dims(gy, axis)
            return (xp.broadcast_to(gy, shape),)
        return _make(backend.accurate_sum(self.data, axis=axis, keepdims=keepdims), (self,), backward)

    def mean(self, axis=None, keepdims=False):
        axes = range(self.ndim) if axis is None else numpy.atleast_1d(axis)
        count = int(numpy.prod([self.shape[a] for a in axes]))
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count)

    def max(self, axis=None, keepdims=False):
        """The largest value (over axis). Its gradient goes to the elements that equal it,
        shared equally where several tie (as torch.amax: the max is as much theirs)."""
        return self._extreme(axis, keepdims, largest=True)

    def min(self, axis=None, keepdims=False):
        """The smallest value (over axis); the gradient as max's."""
        return self._extreme(axis, keepdims, largest=False)

    def _extreme(self, axis, keepdims, largest):
        xp, a = backend.get_array_module(self.data), self.data
        kept = a.max(axis=axis, keepdims=True) if largest else a.min(axis=axis, keepdims=True)
        y = kept if keepdims else (kept.reshape(()) if axis is None else xp.squeeze(kept, axis=axis))

        def backward(gy):
            if not keepdims:
                gy = gy.reshape(kept.shape)
            winners = (a == kept).astype(a.dtype)
            return (winners * (gy / winners.sum(axis=axis, keepdims=True)),)
        return _make(y, (self,), backward)

    # --- elementwise functions, shared with the layers ---------------------
    def exp(self):
        return apply(act.exp_forward, act.exp_backward, self)

    def log(self):
        return apply(act.log_forward, act.log_backward, self)

    def relu(self):
        return apply(act.relu_forward, act.relu_backward, self)

    def sigmoid(self):
        return apply(act.sigmoid_forward, act.sigmoid_backward, self)

    def tanh(self):
        return apply(act.tanh_forward, act.tanh_backward, self)

    def gelu(self, approximate="none"):
        return apply(act.gelu_forward, act.gelu_backward, self, approximate=approximate)

    def softmax(self, axis=-1):
        return apply(act.softmax_forward, act.softmax_backward, self, axis=axis)

    def log_softmax(self, axis=-1):
        return apply(act.log_softmax_forward, act.log_softmax_backward, self, axis=axis)

    def clip(self, low, high):
        return apply(act.clip_forward, act.clip_backward, self, low=low, high=high)

    # --- helpers ------------------------------------------------------------
    def _coerce(self, other):
        """Turn a number or array into a constant Tensor, refusing silent promotion."""
        if isinstance(other, Tensor):
            if other.dtype != self.dtype:
                raise TypeError(f"dtype mismatch: {self.dtype} and {other.dtype}; "
                                f"cast one explicitly with .astype()")
            return other
        if hasattr(other, "dtype") and getattr(other, "ndim", 0) > 0:
            if backend.get_array_module(other) is not backend.get_array_module(self.data):
                raise TypeError("cannot mix a CPU and a GPU array; move one with backend.to_device()")
            if other.dtype != self.dtype:
                raise TypeError(f"dtype mismatch: {self.dtype} and array of {other.dtype}")
            return Tensor(other)
        if isinstance(other, (int, float, numpy.generic)):
            # A number stays a number, a NumPy scalar of this dtype: NumPy and CuPy pass it to
            # the kernel as an argument. Made an array, it would be a host->device copy at every
            # call (x.mean() divides so), and from pageable memory the host waits for the GPU.
            return _make(self.dtype.type(other), (), None)
        xp = backend.get_array_module(self.data)
        return Tensor(xp.asarray(other, dtype=self.dtype))


def _make(data, parents, backward):
    """Wrap an op's output; record the graph only if some input needs gradients."""
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out.name = data, None, None
    out.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
    out._parents = parents if out.requires_grad else ()
    out._backward = backward if out.requires_grad else None
    return out


def apply(forward, backward, *inputs, **params):
    """Run a raw-array op ``forward(*arrays, **params) -> (y, cache)`` on Tensors.

    ``backward(gy, cache)`` returns one gradient per input (a tuple, or a single
    array for a one-input op). Non-Tensor inputs are not allowed here: pass
    constants through ``params``. Floating inputs must share one dtype: the fast kernels
    would otherwise compute in one input's dtype and the reference promote to the wider,
    so a mix is refused rather than converted silently.
    """
    floats = {t.data.dtype for t in inputs if t.data.dtype.kind == "f"}
    if len(floats) > 1:
        raise TypeError(f"{op_name(forward)}: inputs of several dtypes ({', '.join(sorted(map(str, floats)))}); "
                        "minicnn does not convert silently: cast one with .astype()")
    y, cache = forward(*(t.data for t in inputs), **params)

    def backward_fn(gy):
        grads = backward(gy, cache)
        return grads if isinstance(grads, tuple) else (grads,)
    backward_fn.op_module = getattr(backward, "__module__", None) or ""  # whose op: see _minicnn_op
    return _make(y, inputs, backward_fn)


def op_name(forward):
    """An op's name from its forward function: 'conv2d' for conv2d_forward, also when the
    forward is a functools.partial of one (errors and benchmarks/profile_step.py use it)."""
    function = getattr(forward, "func", forward)
    return getattr(function, "__name__", "op").removesuffix("_forward")


def _made_by_op(results, gy):
    """The ids of an op's input gradients that the op made itself and gave to one input
    only: not gy passed on, not a view, not the same array twice. A leaf may keep such an
    array as its .grad; any other must be copied (PyTorch's AccumulateGrad steals a
    gradient on the same condition), or a later ``grad += ...`` would change another's.
    The copy it saves is a pass over every weight's gradient in every step."""
    seen = {}
    for g in results:
        if g is not None and g is not gy and getattr(g, "base", None) is None:
            seen[id(g)] = seen.get(id(g), 0) + 1
    return {key for key, count in seen.items() if count == 1}


def _minicnn_op(backward):
    """minicnn's own ops return gradients they have just computed (or views). An op of
    yours, made with apply(), might return an array it keeps: its results are copied."""
    return getattr(backward, "op_module", backward.__module__).startswith("minicnn.")


def _sum_to_shape(g, shape):
    """Undo broadcasting: sum ``g`` over the axes that broadcasting added or stretched."""
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = backend.accurate_sum(g, axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = backend.accurate_sum(g, axis=stretched, keepdims=True)
    return g


def _topological_order(root):
    """Every tensor that requires grad under ``root``, each after all its inputs.

    Iterative depth-first search, so deep graphs do not hit Python's recursion limit.
    """
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in visited)
    return order
