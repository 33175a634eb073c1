"""Weight penalties added to the training loss, with Keras's names: ``Conv2D(...,
kernel_regularizer=l2(1e-4))`` adds 1e-4 * sum(kernel ** 2) to the loss of every batch,
so the gradient of that weight gains 2e-4 * kernel (the classic "weight decay" of the
ResNet papers). fit and evaluate report the loss with the penalties in it, as Keras does."""
import numbers


class L2:
    """factor * sum(w ** 2) of the weight it is attached to."""

    def __init__(self, l2=0.01):
        if not isinstance(l2, numbers.Real) or l2 < 0:
            raise ValueError(f"l2: the factor must be a number >= 0, got {l2!r}")
        self.l2 = float(l2)

    def __call__(self, w):
        """w: a weight Tensor -> the penalty, a scalar Tensor (differentiable)."""
        return (w * w).sum() * self.l2

    def get_config(self):
        return {"l2": self.l2}


l2 = L2  # Keras's spelling: regularizers.l2(1e-4)


def serialize(regularizer):
    if regularizer is None:
        return None
    if not isinstance(regularizer, L2):
        raise ValueError(f"cannot save the custom regularizer {regularizer!r}: only L2 is serializable")
    return {"class_name": "L2", "config": regularizer.get_config()}


def get(identifier):
    """None, an L2, 'l2' (factor 0.01, as Keras), or serialize()'s dict."""
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, dict) and identifier.get("class_name") == "L2":
        return L2(**identifier.get("config", {}))
    if identifier == "l2":
        return L2()
    raise ValueError(f"unknown regularizer {identifier!r}; use minicnn.regularizers.l2(factor)")
