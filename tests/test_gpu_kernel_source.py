"""The CUDA kernels of minicnn/functions/fast_gpu.py, compiled as C++ on the CPU and checked
against the reference NumPy code: their index arithmetic (padding, strides, the gather
that inverts a sliding window, first-maximum ties) is tested on every machine, not only
where a GPU is. What only the CUDA compiler sees is in test_gpu_kernel_cuda.py; the CUDA
launch itself is in test_fast_kernels.py's GPU half. Needs g++; skipped without it.

How: kernel_recorder reads each ElementwiseKernel's parameters and body; each becomes a
C++ function looping over the element index ``i``, with T = double. The optimizers' kernels
(fast_gpu_updates.py) are built here but checked through the optimizers themselves, on the
CuPy stand-in (tests/test_optimizers.py's GPU half, run by test_cupy_stand_in.py)."""
import ctypes
import shutil
import subprocess

import numpy
import pytest

from minicnn import backend
from minicnn.functions import activation, conv, pooling
from kernel_recorder import parameters, record_kernels

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
_CTYPES = {"T": "double", "int32": "int", "int64": "long long", "bool": "bool"}


def _as_cpp(name, inputs, outputs, body):
    params, refs = [], []
    for kind, type_, arg in parameters(inputs, outputs):
        if kind == "raw":
            params.append(f"const {_CTYPES[type_]}* {arg}")
        elif kind == "rawout":  # a whole output array, written where the body says
            params.append(f"{_CTYPES[type_]}* {arg}")
        elif kind == "in":  # an elementwise input: element i of an array
            params.append(f"const {_CTYPES[type_]}* {arg}_array")
            refs.append(f"const {_CTYPES[type_]}& {arg} = {arg}_array[i];")
        elif kind == "scalar":  # an int32 number, the same for every element
            params.append(f"{_CTYPES[type_]} {arg}")
        else:
            params.append(f"{_CTYPES[type_]}* {arg}_array")
            refs.append(f"{_CTYPES[type_]}& {arg} = {arg}_array[i];")
    return (f'extern "C" void {name}({", ".join(params)}, long long size) {{\n'
            f"  typedef double T;\n  for (long long i = 0; i < size; ++i) {{ {' '.join(refs)}\n{body}\n  }}\n}}\n")


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    recorded, _ = record_kernels()
    folder = tmp_path_factory.mktemp("kernels")
    source = "#include <cmath>\nusing std::erf; using std::exp;\n" + "".join(
        _as_cpp(name, *parts) for name, parts in recorded.items())
    (folder / "kernels.cpp").write_text(source)
    subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", str(folder / "kernels.so"),
                    str(folder / "kernels.cpp")], check=True)
    return ctypes.CDLL(str(folder / "kernels.so"))


def _call(kernel, *args):
    """Arrays by pointer, numbers as int; the last array is the output whose size is looped."""
    converted = [a.ctypes.data_as(ctypes.c_void_p) if isinstance(a, numpy.ndarray) else ctypes.c_int(int(a))
                 for a in args]
    kernel(*converted, ctypes.c_longlong(args[-1].size))


def _cases(count=200):
    rng = numpy.random.default_rng(0)
    while count:
        n, h, w, c = rng.integers(1, 3), rng.integers(3, 9), rng.integers(3, 9), rng.integers(1, 4)
        kh, kw, sy, sx = (int(v) for v in (*rng.integers(1, 4, 2), *rng.integers(1, 3, 2)))
        padding = ["valid", "same"][rng.integers(0, 2)]
        try:
            pads, (oh, ow) = conv.conv_geometry((n, h, w, c), kh, kw, sy, sx, padding)
        except ValueError:
            continue
        count -= 1
        yield rng, rng.standard_normal((n, h, w, c)), (kh, kw, sy, sx), padding, pads, (oh, ow)


def test_im2col_and_col2im_kernels_equal_the_reference(kernels):
    for rng, x, (kh, kw, sy, sx), _, pads, (oh, ow) in _cases():
        geometry = (*x.shape[1:], oh, ow, kh, kw, sy, sx, pads[0][0], pads[1][0])
        col = numpy.empty((x.shape[0], oh, ow, kh, kw, x.shape[3]))
        _call(kernels.minicnn_im2col_nhwc, x, *geometry, col)
        numpy.testing.assert_allclose(col, conv.im2col(x, kh, kw, sy, sx, pads), atol=1e-12)
        g, gx = rng.standard_normal(col.shape), numpy.empty(x.shape)
        _call(kernels.minicnn_col2im_nhwc, g, *geometry, gx)
        numpy.testing.assert_allclose(gx, conv.col2im(g, x.shape, sy, sx, pads), atol=1e-12)


def test_max_pool_kernels_equal_the_reference_including_ties(kernels):
    for rng, x, (ph, pw, sy, sx), padding, pads, (oh, ow) in _cases():
        x = numpy.round(x)  # many ties: the first maximum must win
        geometry = (*x.shape[1:], oh, ow, ph, pw, sy, sx, pads[0][0], pads[1][0])
        y = numpy.empty((x.shape[0], oh, ow, x.shape[3]))
        winner = numpy.empty(y.shape, dtype=numpy.int32)
        _call(kernels.minicnn_max_pool_forward_nhwc, x, *geometry, y, winner)
        with backend.fast_kernels(False):
            expected, cache = pooling.max_pool2d_forward(x, (ph, pw), (sy, sx), padding)
            gy = rng.standard_normal(y.shape)
            expected_gx = pooling.max_pool2d_backward(gy, cache)
        numpy.testing.assert_array_equal(y, expected)
        gx = numpy.empty(x.shape)
        _call(kernels.minicnn_max_pool_backward_nhwc, gy, winner, *geometry, gx)
        numpy.testing.assert_allclose(gx, expected_gx, atol=1e-12)


def test_gelu_kernel_equals_the_reference(kernels):
    x = numpy.linspace(-8, 8, 4001)
    y, slope = numpy.empty_like(x), numpy.empty_like(x)
    _call(kernels.minicnn_gelu_forward, x, y, slope)
    y_ref, slope_ref = activation.gelu_forward(x)  # float64: exact erf
    numpy.testing.assert_allclose(y, y_ref, rtol=1e-13, atol=1e-15)
    numpy.testing.assert_allclose(slope, slope_ref, rtol=1e-13, atol=1e-15)


def _partial_sums(kernel, arrays, C, K, parts):
    """fast_gpu_sums._sum_rows on the C++ kernel: the partial rows (parts, K, C), then their
    sum (NumPy here, CuPy's reduction there)."""
    rows = arrays[0].size // C
    partial = numpy.empty((parts, K, C))
    _call(kernel, *arrays, rows, C, parts, partial)
    return partial.sum(axis=0)


@pytest.mark.parametrize("parts", [1, 2, 7, 64])
def test_channel_sums_kernel_adds_every_row_once(kernels, parts):
    """Interleaved shares, rows not a multiple of parts, more parts than rows: each row of
    each channel is counted exactly once (integers: any double or missed row shows)."""
    rng = numpy.random.default_rng(parts)
    for rows, C in [(1, 1), (5, 3), (333, 4), (64, 17)]:
        a = rng.integers(-1000, 1000, (rows, C)).astype(numpy.float64)
        sums = _partial_sums(kernels.minicnn_channel_sums, [a], C, 1, parts)
        numpy.testing.assert_array_equal(sums[0], a.sum(axis=0))


@pytest.mark.parametrize("parts", [1, 5, 32])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_batch_norm_kernels_equal_the_reference(kernels, parts, offset):
    """fast_gpu_sums' batch-norm, kernel by kernel as it runs them, against the reference
    array code of normalization.py: the shifted one-pass moments keep the digits of a
    mean 1e4 away from zero that E[x^2] - E[x]^2 would lose."""
    from minicnn.functions import normalization
    rng = numpy.random.default_rng(int(offset) + parts)
    for shape in [(1, 3), (6, 4), (3, 5, 7, 2), (40, 3, 3, 8)]:
        x = rng.standard_normal(shape) * 2 + offset
        gy = rng.standard_normal(shape)
        C = shape[-1]
        rows = x.size // C
        gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
        with backend.fast_kernels(False):
            y_ref, cache = normalization.batch_norm_train_forward(x, gamma, beta, 1e-3)
            gx_ref, ggamma_ref, gbeta_ref = normalization.batch_norm_train_backward(gy, cache)

        moments = _partial_sums(kernels.minicnn_batch_norm_moments, [x], C, 2, parts)
        mean, var, inv_std = numpy.empty(C), numpy.empty(C), numpy.empty(C)
        _call(kernels.minicnn_batch_norm_statistics, moments[0], moments[1], x.reshape(-1)[:C].copy(),
              rows, numpy.full(C, 1e-3), mean, var, inv_std)
        x_hat, y = numpy.empty(shape), numpy.empty(shape)
        _call(kernels.minicnn_batch_norm_normalise, x, mean, inv_std, gamma, beta, C, x_hat, y)
        scale = 1 + abs(offset)
        numpy.testing.assert_allclose(mean, cache.mean, rtol=1e-14, atol=1e-14 * scale)
        numpy.testing.assert_allclose(var, cache.var, rtol=1e-10, atol=1e-12)
        numpy.testing.assert_allclose(inv_std, cache.inv_std, rtol=1e-10)
        numpy.testing.assert_allclose(x_hat, cache.x_hat, rtol=1e-9, atol=1e-9)
        numpy.testing.assert_allclose(y, y_ref, rtol=1e-9, atol=1e-9)

        sums = _partial_sums(kernels.minicnn_batch_norm_grad_sums, [gy, x_hat], C, 2, parts)
        gx = numpy.empty(shape)
        _call(kernels.minicnn_batch_norm_input_grad, gy, x_hat, gamma, inv_std, sums[0], sums[1], rows, C, gx)
        numpy.testing.assert_allclose(sums[0], gbeta_ref, rtol=1e-12, atol=1e-12)
        numpy.testing.assert_allclose(sums[1], ggamma_ref, rtol=1e-9, atol=1e-9)
        numpy.testing.assert_allclose(gx, gx_ref, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("parts", [1, 3, 64])
def test_max_norm_kernels_equal_the_reference(kernels, parts):
    """fast_gpu_updates.max_norm_, kernel by kernel (the squared norms' partial rows, then the
    rescale in place), against constraints.MaxNorm's array code: a Dense kernel (axis 0) and a
    Conv2D kernel (axis [0, 1, 2]), with some units above the limit, some below, one all zero."""
    from minicnn.constraints import MaxNorm
    rng = numpy.random.default_rng(parts)
    for shape, axis in [((1, 1), 0), ((7, 5), 0), ((200, 9), 0), ((3, 3, 4, 6), [0, 1, 2])]:
        w = rng.standard_normal(shape) * rng.uniform(0.1, 3, shape[-1])
        w[..., 0] = 0.0
        C = shape[-1]
        squares = _partial_sums(kernels.minicnn_channel_sums_of_squares, [w], C, 1, parts)[0]
        numpy.testing.assert_allclose(squares, (w * w).reshape(-1, C).sum(axis=0), rtol=1e-13)
        for max_value in (0.5, 2.0):
            expected = MaxNorm(max_value, axis=axis)(w)
            got = w.copy()
            _call(kernels.minicnn_max_norm_rescale, squares, numpy.full_like(got, max_value),
                  numpy.full_like(got, 1e-7), C, got)
            numpy.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


def test_dropout_mask_kernel_equals_the_reference(kernels):
    """The same uniform draws give the same mask: 0 below the rate (ties at the rate kept),
    1/(1-rate) elsewhere."""
    from minicnn.functions import dropout

    class Draws:  # a Generator stand-in that hands the reference these very numbers
        def random(self, shape, dtype):
            return u.copy()
    u = numpy.concatenate([numpy.random.default_rng(4).random(997), [0.0, 0.25, 0.2500001, 0.9999]])
    for rate in (0.0, 0.25, 0.5):
        mask = numpy.empty_like(u)
        _call(kernels.minicnn_dropout_mask, u, numpy.full_like(u, rate), numpy.full_like(u, 1 / (1 - rate)), mask)
        with backend.fast_kernels(False):
            expected = dropout.dropout_mask(u.shape, rate, Draws(), u.dtype)
        numpy.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_kernels_equal_the_reference(kernels, reduction):
    """The per-row kernel (max, log-sum-exp, loss) and the gradient kernel against loss.py's
    array code, on logits with rows far apart (a 1000-logit gap that a naive softmax
    overflows on), one-hot and smoothed targets."""
    from minicnn.functions import loss as loss_fn
    rng = numpy.random.default_rng(5)
    for N, K, smoothing in [(1, 1, 0.0), (7, 10, 0.0), (5, 3, 0.2), (64, 100, 0.1)]:
        logits = rng.standard_normal((N, K)) * 5
        logits[0, 0] += 1000.0
        labels = rng.integers(0, K, N)
        with backend.fast_kernels(False):
            expected, cache = loss_fn.softmax_cross_entropy_forward(logits, labels, smoothing, reduction)
            expected_g = loss_fn.softmax_cross_entropy_backward(numpy.float64(0.7), cache)
        targets = cache[1][1]
        row_loss, top, log_sum = numpy.empty(N), numpy.empty(N), numpy.empty(N)
        scale = 1 / N if reduction == "mean" else 1.0
        _call(kernels.minicnn_softmax_cross_entropy_rows, logits, targets, K, numpy.full(N, scale),
              row_loss, top, log_sum)
        numpy.testing.assert_allclose(row_loss.sum(), expected, rtol=1e-13)
        g = numpy.empty((N, K))
        _call(kernels.minicnn_softmax_cross_entropy_grad, targets, logits, top, log_sum, numpy.full((N, K), 0.7),
              numpy.full((N, K), float(N) if reduction == "mean" else 1.0), K, g)
        numpy.testing.assert_allclose(g, expected_g, rtol=1e-13, atol=1e-15)
        weights = rng.uniform(0, 3, N)  # class_weight / sample_weight: targets times each row's weight
        with backend.fast_kernels(False):
            expected, cache = loss_fn.softmax_cross_entropy_forward(logits, labels, smoothing, reduction,
                                                                    sample_weight=weights)
            expected_g = loss_fn.softmax_cross_entropy_backward(numpy.float64(0.7), cache)
        weighted = targets * weights[:, None]
        _call(kernels.minicnn_softmax_cross_entropy_rows, logits, weighted, K, numpy.full(N, scale),
              row_loss, top, log_sum)
        numpy.testing.assert_allclose(row_loss.sum(), expected, rtol=1e-12)
        _call(kernels.minicnn_softmax_cross_entropy_weighted_grad, weighted, logits, top, log_sum, weights,
              numpy.full((N, K), 0.7), numpy.full((N, K), float(N) if reduction == "mean" else 1.0), K, g)
        numpy.testing.assert_allclose(g, expected_g, rtol=1e-12, atol=1e-14)
