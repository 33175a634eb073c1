"""Softmax cross-entropy fused from logits.

Computing log(softmax(z)) as z - logsumexp(z) never takes the log of an
underflowed probability, and the fused gradient is simply softmax(z) - target.
"""
import numpy

from ..backend import fast_kernels_enabled, get_array_module

def one_hot_targets(labels, num_classes, dtype, label_smoothing=0.0, check=True):
    """Integer labels (N,) or (N, 1), or one-hot/probability rows (N, K) -> (N, K) targets.

    Label smoothing mixes each target with the uniform distribution:
    t * (1 - s) + s / K (Keras and PyTorch agree on this form).
    """
    xp = get_array_module(labels)
    if labels.ndim == 2 and labels.shape[1] == num_classes and labels.dtype.kind == "f":
        targets = labels.astype(dtype, copy=False)
    else:
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or labels.dtype.kind not in "iub":
            raise ValueError(f"labels must be integers of shape (N,) or (N, 1), or one-hot rows "
                             f"(N, {num_classes}); got {labels.dtype} {labels.shape}")
        if check:  # a device->host sync on the GPU; Model.fit checks once up front instead
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= num_classes:
                raise ValueError(f"labels out of range: found {low}..{high}, "
                                 f"the output has {num_classes} classes (0..{num_classes - 1})")
        targets = None
        if fast_kernels_enabled() and xp is not numpy:
            from . import fast_gpu  # imports CuPy; only reached with GPU arrays
            if dtype in fast_gpu.KERNEL_DTYPES:  # the line below in one kernel, where it takes three
                targets = fast_gpu.one_hot(labels, num_classes, dtype)
        if targets is None:
            targets = (labels[:, None] == xp.arange(num_classes)).astype(dtype)
    if label_smoothing:
        targets = targets * dtype.type(1 - label_smoothing) + dtype.type(label_smoothing / num_classes)
    return targets


def softmax_cross_entropy_forward(logits, labels, label_smoothing=0.0, reduction="mean", check=True,
                                  sample_weight=None):
    """logits (N, K), labels (N,) int or (N, K) one-hot -> loss, a 0-d array.

    reduction 'mean' averages over the batch (Keras), 'sum' adds. sample_weight (N,), on
    the logits' device: each sample's loss times its weight (fit's class_weight), still
    divided by N for 'mean', as Keras's "sum over batch size" does.
    """
    xp = get_array_module(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross-entropy expects logits of shape (N, K), got {logits.shape}")
    if len(labels) != len(logits):
        raise ValueError(f"{len(labels)} labels for {len(logits)} predictions")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    targets = one_hot_targets(labels, logits.shape[1], logits.dtype, label_smoothing, check)
    weights = None if sample_weight is None else sample_weight.astype(logits.dtype)
    if fast_kernels_enabled() and xp is not numpy:
        from . import fast_gpu  # imports CuPy; only reached with GPU arrays
        if fast_gpu.handles(logits, targets):  # the lines below in one kernel, and a sum
            loss, saved = fast_gpu.softmax_cross_entropy_forward(logits, targets, reduction, weights)
            return loss, ("gpu", saved)
    if weights is not None:
        return _weighted_softmax_cross_entropy(logits, targets, reduction, weights)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(targets * log_probs).sum()
    if reduction == "mean":
        loss = loss / logits.dtype.type(len(logits))
    return loss, ("reference", (xp.exp(log_probs), targets, reduction))


def _weighted_softmax_cross_entropy(logits, targets, reduction, weights):
    """The reference code with each row's loss times weights (N,)."""
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(weights * (targets * log_probs).sum(axis=1)).sum()
    if reduction == "mean":
        loss = loss / logits.dtype.type(len(logits))
    return loss, ("weighted", (xp.exp(log_probs), targets, reduction, weights))


def softmax_cross_entropy_backward(gloss, cache):
    """gloss (0-d) -> glogits (N, K) = (softmax - targets) * gloss [/ N], each row times its
    sample weight where there are weights."""
    method, saved = cache
    if method == "gpu":
        from . import fast_gpu
        return fast_gpu.softmax_cross_entropy_backward(gloss, saved)
    if method == "weighted":
        probs, targets, reduction, weights = saved
        g = (probs - targets) * weights[:, None] * gloss
    else:
        probs, targets, reduction = saved
        g = (probs - targets) * gloss
    return g / probs.dtype.type(len(probs)) if reduction == "mean" else g
