"""Weight constraints, applied by the optimizer right after each update (as Keras does)."""
import numpy

from .backend import fast_kernels_enabled, get_array_module


class MaxNorm:
    """Rescale weights so the L2 norm along ``axis`` is at most ``max_value``.

    Keras's default axis=0: for a Dense kernel (d_in, d_out) that is the norm of the
    weights coming into each unit. For a Conv2D kernel (kh, kw, c_in, c_out) Keras
    recommends axis=[0, 1, 2], the whole filter.
    """

    def __init__(self, max_value=2, axis=0):
        if max_value <= 0:
            raise ValueError(f"max_norm needs a positive max_value, got {max_value}")
        self.max_value, self.axis = max_value, tuple(axis) if isinstance(axis, (list, tuple)) else axis

    def __call__(self, w):
        xp = get_array_module(w)
        norms = xp.sqrt((w * w).sum(axis=self.axis, keepdims=True))
        desired = xp.clip(norms, 0, self.max_value)
        return w * (desired / (norms + w.dtype.type(1e-7)))  # Keras's epsilon

    def constrain_in_place(self, w):
        """w[...] = self(w). On a GPU, where the norm is over every axis but the last (Keras's
        axis=0 for a Dense kernel, [0, 1, 2] for a Conv2D kernel), that is two or three
        kernels (functions/fast_gpu_updates.max_norm_): __call__'s array code launches eight."""
        if fast_kernels_enabled() and get_array_module(w) is not numpy and self._over_all_but_last(w.ndim):
            from .functions import fast_gpu, fast_gpu_updates  # import CuPy; only reached with GPU arrays
            if fast_gpu.handles(w) and w.flags.c_contiguous:
                fast_gpu_updates.max_norm_(w, self.max_value)
                return
        w[...] = self(w)

    def _over_all_but_last(self, ndim):
        if self.axis is None or ndim < 2:  # None: one norm for the whole array
            return False
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        return sorted(a % ndim for a in axes) == list(range(ndim - 1))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


max_norm = maxnorm = MaxNorm  # Keras's aliases; seed 003 writes maxnorm(3)


def apply(constraint, w):
    """w[...] = constraint(w), in place, as the optimizer does after each update: through the
    constraint's own ``constrain_in_place`` where it has one (MaxNorm's GPU kernels), so that
    any callable Keras would take (w -> constrained w) works too."""
    in_place = getattr(constraint, "constrain_in_place", None)
    if in_place is not None:
        in_place(w)
    else:
        w[...] = constraint(w)


def serialize(constraint):
    """A constraint -> {'class_name': ..., 'config': {...}} (None stays None)."""
    if constraint is None:
        return None
    if not isinstance(constraint, MaxNorm):
        raise ValueError(f"cannot save the custom constraint {constraint!r}: only MaxNorm is serializable")
    return {"class_name": "MaxNorm", "config": constraint.get_config()}


def get(identifier):
    """None, a constraint, 'max_norm', or a serialized {'class_name': 'MaxNorm', 'config': ...}."""
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, dict) and identifier.get("class_name") == "MaxNorm":
        return MaxNorm(**identifier.get("config", {}))
    if identifier in ("max_norm", "maxnorm", "MaxNorm"):
        return MaxNorm()
    raise ValueError(f"unknown constraint {identifier!r}; use minicnn.constraints.max_norm(value)")
