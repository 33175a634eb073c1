"""Layer normalisation: each example normalised over its own features, not over the batch.

Batch-norm (normalization.py) averages each channel over the batch; layer-norm (Ba, Kiros
and Hinton, 2016) averages each example over the given axes: by default the last, the
channels at each pixel of (N, H, W, C) or the features of (N, D); axes (1, 2, 3) take the
whole image, as PyTorch's LayerNorm([C, H, W]). No statistic crosses the batch, so there
are no moving averages, training and inference compute the same thing, and a batch of one
works.

Shapes: x of any rank; axes a sorted tuple of x's axes, never 0 (the batch);
gamma, beta shaped as x along those axes (Keras's layout: (C,) for the last axis,
(H, W, C) for (1, 2, 3)); y like x. The statistics are taken in x's dtype: the layer
widens a float16 input first (layers/normalization.py).
"""
from ..backend import accurate_sum, get_array_module


def broadcast_shape(x_shape, axes):
    """The shape gamma takes to multiply x: its sizes on ``axes``, 1 elsewhere."""
    return tuple(size if axis in axes else 1 for axis, size in enumerate(x_shape))


def layer_norm_forward(x, gamma, beta, axes=(-1,), eps=1e-3):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, mean and (biased) var of each
    example over ``axes``. x (N, ...), gamma and beta (x's sizes on axes) -> y like x."""
    xp = get_array_module(x)
    axes = tuple(sorted(a % x.ndim for a in axes))
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat = centered * inv_std
    shape = broadcast_shape(x.shape, axes)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape), (x_hat, gamma, inv_std, axes)


def layer_norm_backward(gy, cache):
    """gy like x -> gx like x, ggamma, gbeta shaped as gamma.

    As in batch-norm, the mean and variance depend on every element they average, so gx
    has two correction terms beyond gy * gamma * inv_std; here the averages run over each
    example's own axes, and gamma's and beta's gradients sum over the rest."""
    x_hat, gamma, inv_std, axes = cache
    others = tuple(a for a in range(gy.ndim) if a not in axes)
    gbeta = accurate_sum(gy, axis=others).reshape(gamma.shape)
    ggamma = accurate_sum(gy * x_hat, axis=others).reshape(gamma.shape)
    g = gy * gamma.reshape(broadcast_shape(gy.shape, axes))  # the gradient at x_hat
    gx = inv_std * (g - g.mean(axis=axes, keepdims=True) - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))
    return gx, ggamma, gbeta
