"""Losses that compare a whole row of the output (its last axis) with the target's row, with
Keras's names: KLDivergence ('kld') for probability distributions, CosineSimilarity for
directions, CategoricalHinge for a margin between the true class and the best wrong one. Each gives one loss per row, (N, ...) less the last axis; elementwise_losses.py's
ElementwiseLoss then averages a sample's rows, weighs and reduces as for the others. Tensor
arithmetic throughout, so autograd gives the gradients.
"""
from .elementwise_losses import EPSILON, ElementwiseLoss


class KLDivergence(ElementwiseLoss):
    """sum over the row of y log(y / p) (both clipped to [eps, 1], as Keras): how many nats
    the predicted distribution p loses against the true y. Rows are distributions (a
    softmax's output; soft targets, as in distillation). Zero where p = y."""

    def elementwise(self, target, pred):
        y, p = target.clip(EPSILON, 1.0), pred.clip(EPSILON, 1.0)
        return (y * (y.log() - p.log())).sum(axis=-1)


class CosineSimilarity(ElementwiseLoss):
    """-cos(angle between the row y and the row p) = -sum(y p) / (|y| |p|), each norm at
    least sqrt(eps) (Keras's l2-normalisation): -1 when they point the same way, 0 when
    orthogonal, 1 when opposite. Only the direction of the output counts, not its length.
    axis: -1 only (Keras's default)."""

    def __init__(self, axis=-1, reduction="mean"):
        super().__init__(reduction)
        if axis != -1:
            raise ValueError(f"CosineSimilarity: only axis=-1 (each row's last axis) is built, got {axis!r}")
        self.axis = -1

    def elementwise(self, target, pred):
        def unit(row):
            return row / ((row * row).sum(axis=-1, keepdims=True).clip(EPSILON, float("inf")) ** 0.5)
        return -(unit(target) * unit(pred)).sum(axis=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class CategoricalHinge(ElementwiseLoss):
    """max(0, 1 + (largest wrong score) - (right score)) per row, targets one-hot (Keras's
    categorical_hinge, Crammer and Singer's multiclass margin): zero once the true class's
    output beats every other by at least 1."""

    def elementwise(self, target, pred):
        right = (target * pred).sum(axis=-1)
        wrong = ((1.0 - target) * pred).max(axis=-1)
        return (wrong - right + 1.0).relu()


BY_NAME = {"kld": KLDivergence, "kl_divergence": KLDivergence, "kullback_leibler_divergence": KLDivergence,
           "cosine_similarity": CosineSimilarity, "categorical_hinge": CategoricalHinge}
CLASSES = (KLDivergence, CosineSimilarity, CategoricalHinge)
