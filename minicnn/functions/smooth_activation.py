"""ReLU's smooth relatives: ELU, SELU, SiLU (swish) and softplus. Shapes: y has the shape of x.

ReLU's gradient is 0 for every negative input, so a unit pushed below zero for all inputs
stops learning ("dies"), and its outputs have a positive mean, which the next layer has to
absorb. These keep a gradient below zero:

- ELU (Clevert et al. 2015): x above 0, alpha (e^x - 1) below, which levels off at -alpha.
- SELU (Klambauer et al. 2017): ELU with alpha and a scale chosen so that activations of
  mean 0 and variance 1 stay so through a deep stack (with lecun_normal weights).
- SiLU, also called swish (Ramachandran et al. 2017): x sigmoid(x), smooth and slightly
  negative below 0.
- softplus: log(1 + e^x), a smooth ReLU whose slope is sigmoid(x).

Each forward returns (y, slope): the derivative dy/dx element by element, worked out while
its pieces are at hand, so the backward is one product gy * slope (``slope_backward``).
Constants are cast to x's dtype: float32 stays float32.
"""
from ..backend import get_array_module
from .activation import sigmoid_forward

# Klambauer et al.'s fixed point of mean 0 and variance 1 (also Keras's and PyTorch's).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def elu_forward(x, alpha=1.0):
    """x (any shape) -> (y, slope): y = x above 0, alpha * (e^x - 1) at or below it; slope
    1 above 0 and alpha * e^x = y + alpha below. expm1 keeps e^x - 1 exact near 0, and the
    minimum keeps exp from overflowing on the side where it is not used."""
    xp, f = get_array_module(x), x.dtype.type
    positive = x > 0
    below = f(alpha) * xp.expm1(xp.minimum(x, f(0)))
    return xp.where(positive, x, below), xp.where(positive, f(1), below + f(alpha))


def selu_forward(x):
    """x -> (y, slope): SELU_SCALE * elu(x, SELU_ALPHA), and its slope."""
    y, slope = elu_forward(x, SELU_ALPHA)
    scale = x.dtype.type(SELU_SCALE)
    return scale * y, scale * slope


def silu_forward(x):
    """x -> (y, slope): y = x * s with s = sigmoid(x); slope = s + x s (1 - s)."""
    s, _ = sigmoid_forward(x)
    return x * s, s * (1 + x * (1 - s))


def softplus_forward(x):
    """x -> (y, slope): y = log(1 + e^x) as logaddexp(0, x), which neither overflows for
    large x nor loses the 1 for very negative x; slope = sigmoid(x)."""
    xp = get_array_module(x)
    slope, _ = sigmoid_forward(x)
    return xp.logaddexp(x.dtype.type(0), x), slope


def slope_backward(gy, slope):
    """gy (the shape of x) -> gx = gy * dy/dx."""
    return gy * slope
