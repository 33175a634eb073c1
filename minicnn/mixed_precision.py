"""Mixed precision, as Keras has it: layers compute in float16, weights stay float32.

    from minicnn import mixed_precision
    mixed_precision.set_global_policy("mixed_float16")   # before the layers are made
    model = zoo.build("seed004_base"); model.compile(...)  # its optimizer gains loss scaling

Why: float16 halves the bytes every activation moves and runs matrix products on a GPU's
tensor cores at twice TF32's rate. Why not float16 throughout: a float16 weight cannot
take an update smaller than 1/2048 of itself (its 10-bit mantissa rounds it away), and
a small gradient (below 6e-8) becomes 0. So, as Keras's "mixed_float16" and PyTorch's
autocast do:

* each layer keeps its weights in float32 (``layer.dtype``, the *variable* dtype) and
  computes in float16 (``layer.compute_dtype``): in ``call`` the weights are cast to
  float16 (``Layer.compute_weight``), a differentiable cast whose gradient is cast back,
  so the optimizer updates float32 "master" weights;
* a layer under a mixed policy casts its floating input to float16 when it comes in
  float32 (the first layer's images); a float32 layer takes a float16 input as float32
  (a lossless widening: a softmax or loss kept in float32, as Keras recommends);
* batch normalisation computes its statistics and output in float32 (sums over a whole
  batch lose too much in float16), then casts its output back;
* losses compute in float32 (losses.py);
* the loss is multiplied by a large scale before backward, so that small gradients do not
  round to 0 in float16, and the gradients are divided by it before the update
  (optimizers/loss_scale.py; ``compile`` wraps the optimizer in it, as Keras 3 does).

Other policies: "float32" (the default), "float64" (gradient checks), "float16" (weights
and compute both float16, for those who want it). A layer's ``dtype`` argument takes a
policy name or a DTypePolicy; without one it takes the global policy when it is made.

On the CPU mixed precision is slower than float32 (NumPy's float16 arithmetic is slow;
its float16 matrix products go through float32 BLAS, backend.matmul): it is for GPUs.
"""
import contextlib

import numpy

_POLICIES = {  # name -> (variable dtype, compute dtype)
    "float16": ("float16", "float16"),
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "mixed_float16": ("float32", "float16"),
}


class DTypePolicy:
    """What dtype a layer keeps its weights in (``variable_dtype``) and computes in
    (``compute_dtype``). ``name``: one of "float32", "float64", "float16", "mixed_float16"."""

    def __init__(self, name="float32"):
        if isinstance(name, numpy.dtype) or (isinstance(name, type) and issubclass(name, numpy.generic)):
            name = numpy.dtype(name).name
        if name not in _POLICIES:
            raise ValueError(f"unknown dtype policy {name!r}; use one of {sorted(_POLICIES)}")
        self.name = name
        variable, compute = _POLICIES[name]
        self.variable_dtype, self.compute_dtype = numpy.dtype(variable), numpy.dtype(compute)

    @property
    def is_mixed(self):
        """True when the layer computes in another dtype than it keeps its weights in."""
        return self.variable_dtype != self.compute_dtype

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f'<DTypePolicy "{self.name}">'


Policy = DTypePolicy  # Keras 2's name for it

_global_policy = DTypePolicy("float32")


def set_global_policy(policy):
    """The policy of every layer made from now on without a dtype of its own."""
    global _global_policy
    _global_policy = get(policy)


def global_policy():
    return _global_policy


@contextlib.contextmanager
def policy_scope(policy):
    """``with policy_scope("mixed_float16"):`` the global policy for the layers made inside,
    the previous one again after (also when the block raises), as Keras 2's policy_scope."""
    previous = _global_policy
    set_global_policy(policy)
    try:
        yield _global_policy
    finally:
        set_global_policy(previous)


def get(policy):
    """A DTypePolicy from a policy, a policy name, a NumPy dtype, or None (the global one)."""
    if policy is None:
        return _global_policy
    if isinstance(policy, DTypePolicy):
        return policy
    if isinstance(policy, str) or isinstance(policy, numpy.dtype) or (
            isinstance(policy, type) and issubclass(policy, numpy.generic)):
        return DTypePolicy(policy)
    raise ValueError(f"dtype must be a policy name ({sorted(_POLICIES)}), a DTypePolicy or a "
                     f"NumPy dtype; got {policy!r}")


def uses_mixed_float16(layers):
    """True if any of these layers, or a layer within one, computes in float16 with float32
    weights: a model that needs loss scaling."""
    return any(layer.dtype_policy.name == "mixed_float16" or uses_mixed_float16(layer.sublayers)
               for layer in layers)
