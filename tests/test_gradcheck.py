"""gradcheck itself: it must fail on wrong gradients and say where."""
import numpy
import pytest

from minicnn import GradcheckError, Tensor, backend, gradcheck
from minicnn.autograd import apply
from minicnn.functions import conv, pooling
from conftest import distinct, tensor


def test_catches_a_planted_bug_in_conv_backward_and_names_the_element(device):
    def buggy_backward(gy, cache):
        gx, gW, gb = conv.conv2d_backward(gy, cache)
        gW[1, 0, 0, 2] += 0.5  # one wrong element
        return gx, gW, gb

    rng = numpy.random.default_rng(0)
    x = tensor(rng.standard_normal((2, 4, 4, 3)), device)
    W = tensor(rng.standard_normal((2, 2, 3, 4)), device)
    with pytest.raises(GradcheckError, match=r"input 1 at index \(1, 0, 0, 2\)"):
        gradcheck(lambda x, W: apply(conv.conv2d_forward, buggy_backward, x, W), [x, W])
    result = gradcheck(lambda x, W: apply(conv.conv2d_forward, buggy_backward, x, W), [x, W],
                       raise_exception=False)
    assert not result.ok and result.index == (1, 0, 0, 2)
    assert result.analytic - result.numeric == pytest.approx(0.5, abs=1e-6)


def test_catches_a_pooling_backward_that_forgets_overlaps(device):
    def sloppy_backward(gy, cache):  # writes (=) instead of adding (+=) where windows overlap
        winner, padded_shape, (ph, pw), (sy, sx), pads = cache[1]  # the reference's cache
        xp = backend.get_array_module(gy)
        gx = xp.zeros(padded_shape)
        for tap in range(ph * pw):
            gx[pooling._tap_slices(tap // pw, tap % pw, sy, sx, *gy.shape[1:3])] = xp.where(winner == tap, gy, 0)
        return gx

    x = tensor(distinct(numpy.random.default_rng(1), (1, 5, 5, 1)), device)
    with backend.fast_kernels(False), pytest.raises(GradcheckError):
        gradcheck(lambda t: apply(pooling.max_pool2d_forward, sloppy_backward, t, pool_size=3, strides=1), [x])


def test_refuses_float32_because_differences_would_be_noise(device):
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2.0, [Tensor([1.0, 2.0], requires_grad=True)])


def test_passes_a_correct_op_and_reports_how_many_elements_it_checked(device):
    x = tensor(numpy.linspace(-1, 1, 6).reshape(2, 3), device)
    result = gradcheck(lambda t: (t * t).tanh(), [x])
    assert result.ok and result.checked == 6 and "passed" in repr(result)
