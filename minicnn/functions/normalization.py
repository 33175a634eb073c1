"""Batch normalisation over every axis but the last (the features or channels).

Works for dense features x (N, D) and for images x (N, H, W, C); gamma, beta,
mean and var have shape (D,) or (C,). In training the batch's own mean and
(biased) variance are used; in inference the running averages.
"""
import numpy

from ..backend import accurate_sum, fast_kernels_enabled, get_array_module


def batch_norm_train_forward(x, gamma, beta, eps=1e-3):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch's statistics.

    Returns (y, cache); cache.mean and cache.var are what the layer averages.
    """
    xp = get_array_module(x)
    if fast_kernels_enabled() and xp is numpy:
        from .normalization_cpu import batch_norm_train_forward as fast  # same numbers, on every core
        return fast(x, gamma, beta, eps)
    if fast_kernels_enabled():
        from . import fast_gpu, fast_gpu_sums  # import CuPy; only reached with GPU arrays
        if fast_gpu.handles(x, gamma, beta) and x.dtype == gamma.dtype == beta.dtype:
            return fast_gpu_sums.batch_norm_train_forward(x, gamma, beta, eps)
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    return gamma * x_hat + beta, BatchNormCache(x_hat, gamma, inv_std, axes, mean, var)


def batch_norm_train_backward(gy, cache):
    """gy like x -> gx, ggamma, gbeta.

    mean and var depend on every element of x, so gx has two correction terms
    beyond gy*gamma*inv_std; m is the number of elements averaged per feature.
    """
    if fast_kernels_enabled() and get_array_module(gy) is numpy:
        from .normalization_cpu import batch_norm_train_backward as fast
        return fast(gy, cache)
    if fast_kernels_enabled():
        from . import fast_gpu, fast_gpu_sums
        if fast_gpu.handles(gy, cache.x_hat, cache.gamma) and gy.dtype == cache.x_hat.dtype == cache.gamma.dtype:
            return fast_gpu_sums.batch_norm_train_backward(gy, cache)
    x_hat, gamma, inv_std, axes = cache.x_hat, cache.gamma, cache.inv_std, cache.axes
    m = x_hat.size // x_hat.shape[-1]
    gbeta = accurate_sum(gy, axis=axes)
    ggamma = accurate_sum(gy * x_hat, axis=axes)
    gx = (gamma * inv_std / m) * (m * gy - gbeta - x_hat * ggamma)
    return gx, ggamma, gbeta


def batch_norm_eval_forward(x, gamma, beta, mean, var, eps=1e-3):
    """Inference: the fixed running statistics make this an affine map of x."""
    xp = get_array_module(x)
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    return gamma * x_hat + beta, BatchNormCache(x_hat, gamma, inv_std, tuple(range(x.ndim - 1)))


def batch_norm_eval_backward(gy, cache):
    """gy -> gx, ggamma, gbeta (mean and var are state, not differentiated)."""
    gx = gy * (cache.gamma * cache.inv_std)
    return gx, accurate_sum(gy * cache.x_hat, axis=cache.axes), accurate_sum(gy, axis=cache.axes)


def update_moving_averages(moving_mean, moving_var, mean, var, momentum):
    """In place, Keras-style: moving = moving * momentum + batch * (1 - momentum), for the
    mean and the variance (C,) each. On the GPU one kernel for both: the array code takes
    three per average (a multiply in place, a product, an add), each a launch, twice for
    every batch-norm layer in every training step."""
    keep = moving_mean.dtype.type(momentum)
    if fast_kernels_enabled() and get_array_module(moving_mean) is not numpy:
        from . import fast_gpu, fast_gpu_sums  # import CuPy; only reached with GPU arrays
        if fast_gpu.handles(moving_mean, moving_var, mean, var):
            fast_gpu_sums.moving_averages_kernel(mean, var, keep, moving_mean, moving_var)
            return
    for moving, batch in ((moving_mean, mean), (moving_var, var)):
        moving *= keep
        moving += (1 - keep) * batch


class BatchNormCache:
    __slots__ = ("x_hat", "gamma", "inv_std", "axes", "mean", "var")

    def __init__(self, x_hat, gamma, inv_std, axes, mean=None, var=None):
        self.x_hat, self.gamma, self.inv_std, self.axes = x_hat, gamma, inv_std, axes
        self.mean, self.var = mean, var
