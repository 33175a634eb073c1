"""The raw-array functions of ``minicnn.functions`` as differentiable Tensor ops.

Layers call these; so can you, on Tensors you own (like torch.nn.functional).
"""
import functools

import numpy

from . import backend
from .autograd import Tensor, apply
from .functions import activation as act, average_pooling, conv, conv_transpose, dense as dense_fn, depthwise_conv, dropout as dropout_fn
from .functions import layer_norm as ln, resize as resize_fn, upsampling, loss as loss_fn, normalization as bn, padding as pad_fn, pooling, smooth_activation as smooth
from .functions import permute as permute_fn


def _tensors(*items):
    return tuple(t for t in items if t is not None)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation=1, groups=1):
    """x (N, H, W, C), kernel (kh, kw, C / groups, F), bias (F,) -> (N, oh, ow, F).
    dilation: the kernel taps' spacing (an int or (dy, dx)); groups: channel groups, each
    with its own F / groups filters (functions/conv.py)."""
    return apply(conv.conv2d_forward, conv.conv2d_backward, *_tensors(x, kernel, bias),
                 strides=strides, padding=padding, input_grad=x.requires_grad, dilation=dilation, groups=groups)


def conv2d_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None, dilation=1):
    """x (N, H, W, C), kernel (kh, kw, F, C), bias (F,) -> (N, oh, ow, F): the transpose of a
    convolution from F channels to C (functions/conv_transpose.py); 'same' gives H * strides."""
    return apply(conv_transpose.conv2d_transpose_forward, conv_transpose.conv2d_transpose_backward,
                 *_tensors(x, kernel, bias), strides=strides, padding=padding, output_padding=output_padding,
                 dilation=dilation)


def depthwise_conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation=1):
    """x (N, H, W, C), kernel (kh, kw, C, M), bias (C*M,) -> (N, oh, ow, C*M): each channel
    filtered on its own (functions/depthwise_conv.py); dilation as conv2d's."""
    return apply(depthwise_conv.depthwise_conv2d_forward, depthwise_conv.depthwise_conv2d_backward,
                 *_tensors(x, kernel, bias), strides=strides, padding=padding, dilation=dilation)


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """x (N, H, W, C) -> (N, oh, ow, C)."""
    return apply(pooling.max_pool2d_forward, pooling.max_pool2d_backward, x,
                 pool_size=pool_size, strides=strides, padding=padding)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """x (N, H, W, C) -> (N, oh, ow, C); with 'same', edge windows average real cells only."""
    return apply(average_pooling.avg_pool2d_forward, average_pooling.avg_pool2d_backward, x,
                 pool_size=pool_size, strides=strides, padding=padding)


def global_avg_pool2d(x):
    """x (N, H, W, C) -> (N, C): each channel's mean over the image."""
    return x.mean(axis=(1, 2))


def zero_pad2d(x, pads):
    """x (N, H, W, C) -> (N, top + H + bottom, left + W + right, C); pads ((top, bottom), (left, right))."""
    return apply(pad_fn.zero_pad2d_forward, pad_fn.zero_pad2d_backward, x, pads=pads)


def upsample2d(x, size=(2, 2), interpolation="nearest"):
    """x (N, H, W, C) -> (N, H*sh, W*sw, C), by repeating pixels ('nearest') or mixing the
    nearest two along each axis ('bilinear'; functions/upsampling.py)."""
    if interpolation not in upsampling.INTERPOLATIONS:
        raise ValueError(f"upsample2d: interpolation must be one of {upsampling.INTERPOLATIONS}, got {interpolation!r}")
    if x.ndim != 4:
        raise ValueError(f"upsample2d expects x of rank 4 (N, H, W, C), got shape {x.shape}")
    forward, backward = {"nearest": (upsampling.upsample_nearest_forward, upsampling.upsample_nearest_backward),
                         "bilinear": (upsampling.upsample_bilinear_forward, upsampling.upsample_bilinear_backward)}[
        interpolation]
    return apply(forward, backward, x, size=conv.pair(size, "upsample2d size"))


def resize(x, size, interpolation="bilinear"):
    """x (N, H, W, C) -> (N, OH, OW, C) for size (OH, OW), any size up or down: 'bilinear'
    or 'nearest', pixel edges aligned (Keras's and PyTorch's align_corners=False;
    functions/resize.py). Differentiable in x: the gradient goes back through the same weights."""
    if interpolation not in resize_fn.INTERPOLATIONS:
        raise ValueError(f"resize: interpolation must be one of {resize_fn.INTERPOLATIONS}, got {interpolation!r}")
    if x.ndim != 4:
        raise ValueError(f"resize expects x of rank 4 (N, H, W, C), got shape {x.shape}")
    size = conv.pair(size, "resize size")
    if tuple(x.shape[1:3]) == size:
        return x  # the matrices would be the identity
    return apply(resize_fn.resize_forward, resize_fn.resize_backward, x, size=size, interpolation=interpolation)


def relu_family(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's ReLU(max_value, negative_slope, threshold); LeakyReLU is negative_slope alone."""
    return apply(act.relu_family_forward, act.relu_family_backward, x, negative_slope=negative_slope,
                 max_value=max_value, threshold=threshold)


def leaky_relu(x, negative_slope=0.3):
    """x where x >= 0, negative_slope * x below (Keras's default slope is 0.3)."""
    return relu_family(x, negative_slope=negative_slope)


def relu6(x):
    """min(max(x, 0), 6) (Keras's and PyTorch's relu6, MobileNet's activation)."""
    return relu_family(x, max_value=6.0)


def elu(x, alpha=1.0):
    """x above 0, alpha * (e^x - 1) below (functions/smooth_activation.py)."""
    return apply(smooth.elu_forward, smooth.slope_backward, x, alpha=alpha)


def selu(x):
    """1.0507 * elu(x, 1.6733): self-normalising with lecun_normal weights."""
    return apply(smooth.selu_forward, smooth.slope_backward, x)


def silu(x):
    """x * sigmoid(x), also called swish."""
    return apply(smooth.silu_forward, smooth.slope_backward, x)


swish = silu


def softplus(x):
    """log(1 + e^x), a smooth ReLU."""
    return apply(smooth.softplus_forward, smooth.slope_backward, x)


def permute(x, axes):
    """x (N, ...) -> x.transpose(axes) (axes[0] == 0 keeps the batch first), contiguous."""
    return apply(permute_fn.permute_forward, permute_fn.permute_backward, x, axes=tuple(axes))


def concatenate(tensors, axis=-1):
    """Tensors joined along ``axis``; the backward hands each its slice of the gradient."""
    def forward(*arrays):
        xp = backend.get_array_module(arrays[0])
        return xp.concatenate(arrays, axis=axis), [a.shape[axis] for a in arrays]

    def backward(gy, sizes):
        xp = backend.get_array_module(gy)
        cuts = [sum(sizes[:i + 1]) for i in range(len(sizes) - 1)]
        return tuple(xp.split(gy, cuts, axis=axis))
    return apply(forward, backward, *tensors)


def dense(x, kernel, bias=None):
    """x (N, D_in), kernel (D_in, D_out), bias (D_out,) -> (N, D_out).

    x (N, d1, ..., D_in) of higher rank, as Keras's Dense and PyTorch's linear take it:
    the same weights applied along the last axis at every position -> (N, d1, ..., D_out),
    computed as one (N*d1*..., D_in) GEMM on a reshaped view.
    """
    if x.ndim > 2:
        rows = x.reshape(-1, x.shape[-1])
        return dense(rows, kernel, bias).reshape(*x.shape[:-1], kernel.shape[-1])
    return apply(dense_fn.dense_forward, dense_fn.dense_backward, *_tensors(x, kernel, bias))


def dropout(x, rate, rng=None, mask=None, training=True):
    """Inverted dropout. Give ``rng`` (a Generator on x's device) or a fixed ``mask``."""
    if not training or rate == 0:
        return x
    if mask is None:
        if rng is None:
            raise ValueError("dropout needs a random generator (rng) or an explicit mask")
        mask = dropout_fn.dropout_mask(x.shape, rate, rng, x.dtype)
    return apply(functools.partial(dropout_fn.dropout_forward, mask=mask), dropout_fn.dropout_backward, x)


def batch_norm(x, gamma, beta, moving_mean, moving_variance, momentum=0.99, eps=1e-3,
               training=True, comm=None):
    """x (N, D) or (N, H, W, C); gamma, beta Tensors (C,); moving_* Tensors (C,), state.

    In training, normalises with the batch statistics and updates the moving
    averages in place, Keras-style: moving = moving * momentum + batch * (1 - momentum).
    comm: a distributed.Communicator to take the statistics over every rank's shard of
    the batch (sync_batchnorm; see distributed/sync_batchnorm.py).
    """
    if not training:
        return apply(bn.batch_norm_eval_forward, bn.batch_norm_eval_backward, x, gamma, beta,
                     mean=moving_mean.data, var=moving_variance.data, eps=eps)
    caches = []
    train_forward, backward = bn.batch_norm_train_forward, bn.batch_norm_train_backward
    if comm is not None:  # statistics over every rank's shard: distributed/sync_batchnorm.py
        from .distributed import sync_batchnorm as sync
        train_forward = functools.partial(sync.sync_batch_norm_train_forward, comm=comm)
        backward = sync.sync_batch_norm_train_backward

    def batch_norm_forward(x_, gamma_, beta_):  # named so: the op's name in errors and profiles
        y, cache = train_forward(x_, gamma_, beta_, eps)
        caches.append(cache)
        return y, cache
    out = apply(batch_norm_forward, backward, x, gamma, beta)
    bn.update_moving_averages(moving_mean.data, moving_variance.data, caches[0].mean, caches[0].var, momentum)
    return out


def layer_norm(x, gamma, beta, axes=(-1,), eps=1e-3):
    """x (N, ...) normalised per example over ``axes``; gamma, beta Tensors shaped as x on
    those axes (functions/layer_norm.py)."""
    return apply(ln.layer_norm_forward, ln.layer_norm_backward, x, gamma, beta, axes=tuple(axes), eps=eps)


def softmax_cross_entropy(logits, labels, label_smoothing=0.0, reduction="mean", check=True,
                          sample_weight=None):
    """logits Tensor (N, K); labels array (N,) int or (N, K) one-hot; sample_weight array
    (N,) or None -> scalar Tensor."""
    labels = labels.data if isinstance(labels, Tensor) else labels
    for name, array in (("labels", labels), ("sample_weight", sample_weight)):
        if array is not None and backend.get_array_module(array) is not backend.get_array_module(logits.data):
            raise TypeError(f"{name} and logits are on different devices; move the {name} "
                            "explicitly with minicnn.backend.to_device()")
    return apply(loss_fn.softmax_cross_entropy_forward, loss_fn.softmax_cross_entropy_backward,
                 logits, labels=labels, label_smoothing=label_smoothing, reduction=reduction,
                 check=check, sample_weight=sample_weight)


def relu(x):
    return x.relu()


def bias_relu(x, bias):
    """max(0, x + bias), bias (C,) added along x's last axis, as one op: what a Conv2D or
    Dense layer with activation='relu' computes, its bias taken out of its conv or matmul."""
    return apply(act.bias_relu_forward, act.bias_relu_backward, x, bias)


def fuses_bias_relu(x):
    """True where a layer with a ReLU should add its bias with bias_relu rather than in its
    conv or matmul: on a GPU with the fast kernels on, where that is one kernel each way
    instead of a bias add and a ReLU (and two more for the bias's gradient). The CPU's
    convolutions add the bias more cheaply inside their GEMM."""
    return backend.fast_kernels_enabled() and backend.get_array_module(x.data) is not numpy


def sigmoid(x):
    return x.sigmoid()


def tanh(x):
    return x.tanh()


def gelu(x, approximate="none"):
    """x * Phi(x) (Phi the normal CDF); approximate='tanh' as PyTorch's."""
    return x.gelu(approximate)


def softmax(x, axis=-1):
    return x.softmax(axis)


def log_softmax(x, axis=-1):
    return x.log_softmax(axis)


__all__ = ["concatenate", "conv2d", "conv2d_transpose", "depthwise_conv2d", "max_pool2d", "avg_pool2d", "global_avg_pool2d", "zero_pad2d",
           "upsample2d", "relu_family",
           "leaky_relu", "dense", "dropout", "batch_norm", "layer_norm", "softmax_cross_entropy",
           "relu", "relu6", "elu", "selu", "silu", "swish", "softplus", "sigmoid", "tanh", "gelu", "softmax",
           "log_softmax"]
