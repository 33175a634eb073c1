"""Batch-norm whose statistics span every rank's share of the batch (``sync_batchnorm``).

Without it each rank normalises its shard with the shard's own mean and variance, as
PyTorch's DistributedDataParallel and Horovod do by default: cheap, and with shards of
32+ images the statistics differ little. With it, the mean and variance are those of
the whole global batch, so training matches one process on that batch exactly (up to
float32 summation order), at the price of three small all-reduces per layer and step.

Shapes: x (N, ..., C) this rank's shard; gamma, beta (C,). m = elements per channel
over *all* ranks.

Forward: sum(x) over ranks -> mean; sum((x - mean)^2) over ranks -> var (two passes, as
the reference, so no catastrophic cancellation).
Backward (the reference's formula with global sums):
  gx = gamma * inv_std * (gy - sum(gy) / m - x_hat * sum(gy * x_hat) / m)
where the sums run over every rank's gy. This rank returns its *own* share of ggamma and
gbeta: the gradient all-reduce adds the shares up, as it does for every other weight.
Each rank's gy is d(n_rank * loss_rank)/dy (data_parallel.py seeds the backward so), so
the summed gradient is that of the global batch's sum, which the all-reduce then divides
by the global batch size.
"""
from collections import namedtuple

from .. import backend

SyncBatchNormCache = namedtuple("SyncBatchNormCache", "x_hat gamma inv_std axes mean var m comm")


def sync_batch_norm_train_forward(x, gamma, beta, eps, comm):
    """x (N, ..., C), gamma/beta (C,) -> y like x, and a cache whose mean and var are the
    global batch's (the layer's moving averages take them)."""
    xp = backend.get_array_module(x)
    axes = tuple(range(x.ndim - 1))
    C = x.shape[-1]
    totals = xp.empty(C + 1, dtype=x.dtype)  # [sum over the shard per channel, shard elements]
    totals[:C] = x.sum(axis=axes)
    totals[C] = x.size // C
    comm.allreduce_sum_(totals)
    m = totals[C]
    mean = totals[:C] / m
    centred = x - mean
    squares = (centred * centred).sum(axis=axes)
    var = comm.allreduce_sum_(xp.ascontiguousarray(squares)) / m
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat = centred * inv_std
    return gamma * x_hat + beta, SyncBatchNormCache(x_hat, gamma, inv_std, axes, mean, var, m, comm)


def sync_batch_norm_train_backward(gy, cache):
    """gy like x -> gx (this shard), ggamma and gbeta (this shard's share)."""
    xp = backend.get_array_module(gy)
    C = gy.shape[-1]
    gbeta = gy.sum(axis=cache.axes)
    ggamma = (gy * cache.x_hat).sum(axis=cache.axes)
    totals = xp.concatenate([gbeta, ggamma])  # a copy: the shares themselves stay this rank's
    cache.comm.allreduce_sum_(totals)
    scale = cache.gamma * cache.inv_std
    gx = scale * gy - (cache.x_hat * totals[C:] + totals[:C]) * (scale / cache.m)
    return gx, ggamma, gbeta
