"""Fully connected layer: y = x W + b.

x (N, D_in), W (D_in, D_out) (Keras layout), b (D_out,) or None -> y (N, D_out).
"""
from ..backend import accurate_sum, matmul


def dense_forward(x, W, b=None):
    if x.ndim != 2 or x.shape[1] != W.shape[0]:
        raise ValueError(f"dense: x {x.shape} does not fit kernel {W.shape}: need (N, {W.shape[0]})")
    y = matmul(x, W)
    if b is not None:
        y += b
    return y, (x, W, b is not None)


def dense_backward(gy, cache):
    """gy (N, D_out) -> gx (N, D_in), gW (D_in, D_out), gb (D_out,) or None."""
    x, W, has_bias = cache
    return matmul(gy, W.T), matmul(x.T, gy), accurate_sum(gy, axis=0) if has_bias else None
