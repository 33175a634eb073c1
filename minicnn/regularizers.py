"""Weight penalties added to the training loss, with Keras's names (L1, L2, L1L2): ``Conv2D(...,
kernel_regularizer=l2(1e-4))`` adds 1e-4 * sum(kernel ** 2) to the loss of every batch,
so the gradient of that weight gains 2e-4 * kernel (the classic "weight decay" of the
ResNet papers). fit and evaluate report the loss with the penalties in it, as Keras does."""
import numbers


def _factor(value, what):
    if not isinstance(value, numbers.Real) or value < 0:
        raise ValueError(f"{what}: the factor must be a number >= 0, got {value!r}")
    return float(value)


class L1L2:
    """l1 * sum(|w|) + l2 * sum(w ** 2) of the weight it is attached to (Keras's defaults
    0 and 0). The L1 term pulls every weight towards 0 by the same amount, l1 * sign(w),
    so many end exactly at 0; the L2 term shrinks each in proportion, 2 * l2 * w."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _factor(l1, "l1_l2: l1"), _factor(l2, "l1_l2: l2")

    def __call__(self, w):
        """w: a weight Tensor -> the penalty, a scalar Tensor (differentiable)."""
        penalty = w.abs().sum() * self.l1 if self.l1 else None
        if self.l2:
            square = (w * w).sum() * self.l2
            penalty = square if penalty is None else penalty + square
        return (w * 0.0).sum() if penalty is None else penalty  # both 0: a zero that still has a graph

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|w|) (Keras's default factor 0.01)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=_factor(l1, "l1"))

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(w ** 2) (Keras's default factor 0.01)."""

    def __init__(self, l2=0.01):
        super().__init__(l2=_factor(l2, "l2"))

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2  # Keras's spellings: regularizers.l2(1e-4)
_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}


def serialize(regularizer):
    if regularizer is None:
        return None
    if type(regularizer).__name__ not in _CLASSES:
        raise ValueError(f"cannot save the custom regularizer {regularizer!r}: only L1, L2 and L1L2 are "
                         "serializable")
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def get(identifier):
    """None, a regularizer, 'l1' or 'l2' (factor 0.01, as Keras), 'l1_l2' (both 0, as
    Keras 3's), or serialize()'s dict."""
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if identifier in ("l1", "l2", "l1_l2"):
        return {"l1": L1, "l2": L2, "l1_l2": L1L2}[identifier]()
    raise ValueError(f"unknown regularizer {identifier!r}; use minicnn.regularizers.l1(factor), l2(factor) "
                     "or l1_l2(l1=, l2=)")
