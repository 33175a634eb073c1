"""Inverted dropout: zero a fraction ``rate`` of x and scale the rest by 1/(1-rate),
so nothing needs rescaling at inference, where dropout is the identity."""


def dropout_mask(shape, rate, rng, dtype):
    """The scaled keep-mask: 0 with probability ``rate``, else 1/(1-rate).

    rng: a numpy or cupy ``Generator`` (explicit, so runs are reproducible).
    """
    keep = rng.random(shape, dtype=dtype) >= rate
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - rate))


def dropout_forward(x, mask):
    """x (any shape) * mask (same shape) -> y. Passing the mask in keeps this op pure."""
    return x * mask, mask


def dropout_backward(gy, mask):
    return gy * mask
