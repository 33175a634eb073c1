"""Float64 gradient checks of every differentiable function, shapes drawn by hypothesis."""
import numpy
import pytest
from hypothesis import given, strategies as st

from minicnn import Tensor, backend, functional as F, gradcheck
from minicnn.functions import conv
from conftest import away_from_zero, distinct, tensor

paddings = st.sampled_from(["valid", "same", 0, 1, (1, 0)])


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return dict(n=draw(st.integers(1, 2)), h=draw(st.integers(3, 6)), w=draw(st.integers(3, 6)),
                c=draw(st.integers(1, 3)), f=draw(st.integers(1, 3)), kh=kh, kw=kw,
                strides=(draw(st.integers(1, 3)), draw(st.integers(1, 2))),
                padding=draw(paddings), bias=draw(st.booleans()), seed=draw(st.integers(0, 999)))


@given(case=conv_cases())
def test_conv2d_gradients(device, case):
    rng = numpy.random.default_rng(case["seed"])
    x = tensor(rng.standard_normal((case["n"], case["h"], case["w"], case["c"])), device)
    W = tensor(rng.standard_normal((case["kh"], case["kw"], case["c"], case["f"])), device)
    inputs = [x, W] + ([tensor(rng.standard_normal(case["f"]), device)] if case["bias"] else [])
    gradcheck(lambda *t: F.conv2d(*t, strides=case["strides"], padding=case["padding"]), inputs)


@st.composite
def dilated_grouped_cases(draw):
    groups = draw(st.integers(1, 3))
    return dict(n=draw(st.integers(1, 2)), h=draw(st.integers(5, 8)), w=draw(st.integers(7, 9)),  # windows to 5x7
                groups=groups, c=groups * draw(st.integers(1, 2)), f=groups * draw(st.integers(1, 2)),
                kh=draw(st.integers(1, 3)), kw=draw(st.integers(1, 3)),
                dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 3))),
                strides=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                padding=draw(paddings), bias=draw(st.booleans()), seed=draw(st.integers(0, 999)))


@given(case=dilated_grouped_cases())
def test_dilated_and_grouped_conv2d_gradients(device, case):
    rng = numpy.random.default_rng(case["seed"])
    x = tensor(rng.standard_normal((case["n"], case["h"], case["w"], case["c"])), device)
    W = tensor(rng.standard_normal((case["kh"], case["kw"], case["c"] // case["groups"], case["f"])), device)
    inputs = [x, W] + ([tensor(rng.standard_normal(case["f"]), device)] if case["bias"] else [])
    gradcheck(lambda *t: F.conv2d(*t, strides=case["strides"], padding=case["padding"],
                                  dilation=case["dilation"], groups=case["groups"]), inputs)


def test_dilated_grouped_conv2d_matches_a_direct_loop(device):
    """The definition as loops: output (r, c, f) of group g = f // (F/G) sums taps (i, j) at
    input (r*s + i*d, c*s + j*d) over group g's channels only."""
    rng = numpy.random.default_rng(3)
    x, W, b = rng.standard_normal((2, 9, 8, 6)), rng.standard_normal((3, 2, 2, 6)), rng.standard_normal(6)
    y = backend.to_numpy(F.conv2d(tensor(x, device), tensor(W, device), tensor(b, device),
                                  strides=(1, 2), dilation=(2, 3), groups=3).data)
    oh, ow = 9 - 5 + 1, (8 - 4) // 2 + 1  # windows 5 (rows) and 4 (columns)
    expected = numpy.zeros((2, oh, ow, 6))
    for r in range(oh):
        for c in range(ow):
            for f in range(6):
                channels = slice(2 * (f // 2), 2 * (f // 2) + 2)
                patch = x[:, r:r + 5:2, 2 * c:2 * c + 4:3, channels]
                expected[:, r, c, f] = numpy.einsum("nijc,ijc->n", patch, W[:, :, :, f]) + b[f]
    assert y.shape == expected.shape
    numpy.testing.assert_allclose(y, expected, rtol=1e-10)


def test_conv2d_refuses_groups_that_do_not_fit(device):
    x = tensor(numpy.zeros((1, 5, 5, 6)), device)
    with pytest.raises(ValueError, match="divides the 4 filters"):
        F.conv2d(x, tensor(numpy.zeros((3, 3, 2, 4)), device), groups=3)
    with pytest.raises(ValueError, match=r"expects 9 \(3 per group x 3 groups\)"):
        F.conv2d(x, tensor(numpy.zeros((3, 3, 3, 6)), device), groups=3)
    with pytest.raises(ValueError, match="dilation must be a positive int"):
        F.conv2d(x, tensor(numpy.zeros((3, 3, 6, 4)), device), dilation=0)
    with pytest.raises(ValueError, match="kernel 5x5 is larger"):  # 3 taps 2 apart span 5 > 4
        F.conv2d(tensor(numpy.zeros((1, 4, 4, 6)), device), tensor(numpy.zeros((3, 3, 6, 4)), device), dilation=2)


@st.composite
def transpose_cases(draw):
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["valid", "same"]))
    output_padding = draw(st.sampled_from([None, (strides[0] - 1, 0)]))
    return dict(n=draw(st.integers(1, 2)), h=draw(st.integers(1, 4)), w=draw(st.integers(1, 4)),
                c=draw(st.integers(1, 3)), f=draw(st.integers(1, 3)), kh=draw(st.integers(1, 4)), kw=draw(st.integers(1, 3)),
                strides=strides, padding=padding, output_padding=output_padding,
                dilation=(draw(st.integers(1, 2)), 1), bias=draw(st.booleans()), seed=draw(st.integers(0, 999)))


@given(case=transpose_cases())
def test_conv2d_transpose_gradients_and_adjoint(device, case):
    """Float64 gradients, and the defining identity: with the same kernel, strides and
    padding, <conv2d(z), x> == <z, conv2d_transpose(x)> for any x and output-shaped z
    (the transposed convolution is the convolution's adjoint, Keras's 'same' included)."""
    rng = numpy.random.default_rng(case["seed"])
    x = tensor(rng.standard_normal((case["n"], case["h"], case["w"], case["c"])), device)
    W = tensor(rng.standard_normal((case["kh"], case["kw"], case["f"], case["c"])), device)
    options = dict(strides=case["strides"], padding=case["padding"], dilation=case["dilation"])
    try:
        y = F.conv2d_transpose(x, W, None, output_padding=case["output_padding"], **options)
    except ValueError as error:  # 'same' with output_padding and an even kernel can undershoot: refused
        assert case["padding"] == "same" and case["output_padding"] is not None, error
        assert "not the input's" in str(error) or "the output would be" in str(error)
        return
    z = tensor(rng.standard_normal(y.shape), device)
    back = F.conv2d(z, W, None, **options)
    assert back.shape == x.shape
    assert float((back.data * x.data).sum()) == pytest.approx(float((z.data * y.data).sum()), rel=1e-9, abs=1e-9)
    inputs = [x, W] + ([tensor(rng.standard_normal(case["f"]), device)] if case["bias"] else [])
    gradcheck(lambda *t: F.conv2d_transpose(*t, output_padding=case["output_padding"], **options), inputs)


def test_conv2d_transpose_sizes_are_keras(device):
    """Keras's deconv_output_length: 'same' H*s; 'valid' (H-1)*s + k, or H*s when k < s;
    with output_padding p, (H-1)*s + k - 2*(k//2 if 'same') + p. Refusals name the problem."""
    x = tensor(numpy.ones((1, 5, 5, 2)), device)
    for kernel, strides, padding, output_padding, expected in (
            (3, 2, "same", None, 10), (3, 2, "valid", None, 11), (2, 3, "valid", None, 15), (4, 2, "same", None, 10),
            (3, 2, "same", 1, 10), (3, 2, "valid", 1, 12), (3, 3, "same", 2, 15), (1, 1, "valid", None, 5)):
        y = F.conv2d_transpose(x, tensor(numpy.ones((kernel, kernel, 3, 2)), device), None, strides, padding,
                               output_padding)
        assert y.shape == (1, expected, expected, 3), (kernel, strides, padding, output_padding)
    W = tensor(numpy.ones((3, 3, 3, 2)), device)
    with pytest.raises(ValueError, match="output_padding must be smaller than the stride"):
        F.conv2d_transpose(x, W, None, 2, "same", 2)
    with pytest.raises(ValueError, match="input has 2 channels, kernel .* expects 4"):
        F.conv2d_transpose(x, tensor(numpy.ones((3, 3, 3, 4)), device))
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        F.conv2d_transpose(x, W, None, 1, 1)


@given(size=st.integers(1, 9), k=st.integers(1, 4), s=st.integers(1, 3))
def test_same_padding_is_keras_style(size, k, s):
    before, after = conv.pad_amounts(size, k, s, "same")
    assert conv.get_conv_outsize(size, k, s, before, after) == -(-size // s)  # ceil(size/s)
    assert after - before in (0, 1)  # the odd pixel goes after (bottom/right), as TensorFlow


def test_conv2d_matches_a_direct_loop(device):
    """im2col+GEMM against the definition, written as plain loops."""
    rng = numpy.random.default_rng(0)
    x, W, b = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((3, 2, 3, 4)), rng.standard_normal(4)
    y = backend.to_numpy(F.conv2d(tensor(x, device), tensor(W, device), tensor(b, device),
                                  strides=(2, 1), padding="valid").data)
    expected = numpy.zeros((2, 2, 5, 4))
    for r in range(2):
        for c in range(5):
            patch = x[:, 2 * r:2 * r + 3, c:c + 2, :]
            expected[:, r, c, :] = numpy.einsum("nijc,ijcf->nf", patch, W) + b
    numpy.testing.assert_allclose(y, expected, rtol=1e-10)


def test_col2im_is_the_adjoint_of_im2col(device):
    """<im2col(x), c> == <x, col2im(c)> for any x, c: the defining property of the backward."""
    rng = numpy.random.default_rng(1)
    xp = backend.xp()
    x = xp.asarray(rng.standard_normal((2, 7, 6, 3)))
    pads = ((1, 2), (0, 1))
    col = conv.im2col(x, 3, 2, 2, 3, pads)
    c = xp.asarray(rng.standard_normal(col.shape))
    back = conv.col2im(c, x.shape, 2, 3, pads)
    assert back.shape == x.shape
    assert float((col * c).sum()) == pytest.approx(float((x * back).sum()), rel=1e-10)
    col = conv.im2col(x, 2, 2, 1, 2, pads, dilation=(3, 2))  # and with the taps spread out
    c = xp.asarray(rng.standard_normal(col.shape))
    back = conv.col2im(c, x.shape, 1, 2, pads, dilation=(3, 2))
    assert float((col * c).sum()) == pytest.approx(float((x * back).sum()), rel=1e-10)


@st.composite
def pool_cases(draw):
    return dict(n=draw(st.integers(1, 2)), h=draw(st.integers(3, 7)), w=draw(st.integers(3, 7)),
                c=draw(st.integers(1, 3)), pool=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                strides=draw(st.sampled_from([None, 1, 2, (1, 2)])),
                padding=draw(st.sampled_from(["valid", "same"])), seed=draw(st.integers(0, 999)))


@given(case=pool_cases())
def test_max_pool_gradients(device, case):
    rng = numpy.random.default_rng(case["seed"])
    x = tensor(distinct(rng, (case["n"], case["h"], case["w"], case["c"])), device)
    gradcheck(lambda t: F.max_pool2d(t, case["pool"], case["strides"], case["padding"]), [x])


def test_max_pool_ties_send_the_gradient_to_the_first_max(device):
    x = tensor(numpy.ones((1, 2, 2, 1)), device)
    F.max_pool2d(x, 2).sum().backward()
    numpy.testing.assert_array_equal(backend.to_numpy(x.grad)[0, :, :, 0], [[1, 0], [0, 0]])


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple),
       rate=st.floats(0.05, 0.9), seed=st.integers(0, 999))
def test_dropout_gradients_with_a_fixed_mask(device, shape, rate, seed):
    rng = numpy.random.default_rng(seed)
    mask = backend.to_device((rng.random(shape) >= rate) / (1 - rate), device)
    gradcheck(lambda t: F.dropout(t, rate, mask=mask), [tensor(rng.standard_normal(shape), device)])


def test_dropout_is_inverted_and_identity_in_inference(device):
    x = tensor(numpy.ones((200, 50)), device, requires_grad=False)
    rng = backend.default_rng(0)
    y = backend.to_numpy(F.dropout(x, 0.3, rng=rng).data)
    kept = y[y != 0]
    numpy.testing.assert_allclose(kept, 1 / 0.7)
    assert abs((y == 0).mean() - 0.3) < 0.02
    assert y.mean() == pytest.approx(1.0, abs=0.03)  # expectation preserved
    assert F.dropout(x, 0.3, rng=rng, training=False) is x


@given(shape=st.sampled_from([(5, 3), (7, 1), (2, 3, 3, 2), (3, 2, 4, 1)]), seed=st.integers(0, 999))
def test_batch_norm_gradients_train_and_eval(device, shape, seed):
    """Random upstream gradients (a weighted loss): a plain sum has zero input gradient."""
    rng = numpy.random.default_rng(seed)
    c = shape[-1]
    x = tensor(rng.standard_normal(shape) * 2 + 1, device)
    gamma, beta = tensor(rng.uniform(0.5, 2, c), device), tensor(rng.standard_normal(c), device)
    mean = tensor(rng.standard_normal(c), device, requires_grad=False)
    var = tensor(rng.uniform(0.5, 2, c), device, requires_grad=False)
    for training in (True, False):
        gradcheck(lambda x, g, b: F.batch_norm(x, g, b, mean, var, 0.9, 1e-3, training), [x, gamma, beta])


def test_batch_norm_moving_averages_follow_keras(device):
    rng = numpy.random.default_rng(0)
    data = rng.standard_normal((8, 3, 3, 2)) * 3 + 5
    mean = tensor(numpy.zeros(2), device, requires_grad=False)
    var = tensor(numpy.ones(2), device, requires_grad=False)
    ones, zeros = tensor(numpy.ones(2), device), tensor(numpy.zeros(2), device)
    y = backend.to_numpy(F.batch_norm(tensor(data, device), ones, zeros, mean, var, 0.9, 1e-3).data)
    batch_mean, batch_var = data.mean(axis=(0, 1, 2)), data.var(axis=(0, 1, 2))
    numpy.testing.assert_allclose(backend.to_numpy(mean.data), 0.1 * batch_mean)
    numpy.testing.assert_allclose(backend.to_numpy(var.data), 0.9 + 0.1 * batch_var)
    numpy.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-10)
    numpy.testing.assert_allclose(y.var(axis=(0, 1, 2)), batch_var / (batch_var + 1e-3))


@given(n=st.integers(1, 5), lead=st.sampled_from([(), (2,), (3, 2)]), d_in=st.integers(1, 6),
       d_out=st.integers(1, 6), bias=st.booleans())
def test_dense_gradients(device, n, lead, d_in, d_out, bias):
    """lead: axes between the batch and the features, along which the same weights apply."""
    rng = numpy.random.default_rng(n + d_in + d_out)
    inputs = [tensor(rng.standard_normal((n, *lead, d_in)), device),
              tensor(rng.standard_normal((d_in, d_out)), device)]
    if bias:
        inputs.append(tensor(rng.standard_normal(d_out), device))
    gradcheck(F.dense, inputs)


@given(shape=st.sampled_from([(4, 3), (2, 3, 3, 5), (40, 6)]), seed=st.integers(0, 99))
def test_bias_relu_gradients(device, shape, seed):
    """max(0, x + b), the op a Conv2D or Dense layer with a ReLU runs on a GPU: x + b kept
    at least 0.1 from the kink, so finite differences never cross it."""
    rng = numpy.random.default_rng(seed)
    b = rng.standard_normal(shape[-1])
    x = away_from_zero(rng, shape) - b  # x + b = away_from_zero's values
    gradcheck(F.bias_relu, [tensor(x, device), tensor(b, device)])


@given(n=st.integers(1, 6), k=st.integers(2, 6), one_hot=st.booleans(), column=st.booleans(),
       smoothing=st.sampled_from([0.0, 0.1, 0.2]), reduction=st.sampled_from(["mean", "sum"]),
       seed=st.integers(0, 999))
def test_softmax_cross_entropy_gradients(device, n, k, one_hot, column, smoothing, reduction, seed):
    rng = numpy.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    if one_hot:
        labels = numpy.eye(k)[labels]
    elif column:
        labels = labels[:, None]
    labels = backend.to_device(labels, device)
    logits = tensor(rng.standard_normal((n, k)) * 3, device)
    gradcheck(lambda z: F.softmax_cross_entropy(z, labels, smoothing, reduction), [logits])


def test_softmax_cross_entropy_is_stable_for_huge_logits(device):
    logits = tensor([[1000.0, 0.0, -1000.0], [-500.0, 500.0, 0.0]], device)
    labels = backend.to_device(numpy.array([2, 1]), device)
    loss = F.softmax_cross_entropy(logits, labels)
    assert float(loss.data) == pytest.approx(1000.0)  # (2000 + 0) / 2, no inf or nan
    loss.backward()
    assert numpy.isfinite(backend.to_numpy(logits.grad)).all()


def test_labels_out_of_range_are_named(device):
    logits = tensor(numpy.zeros((2, 3)), device)
    with pytest.raises(ValueError, match="labels out of range.*3 classes"):
        F.softmax_cross_entropy(logits, backend.to_device(numpy.array([0, 3]), device))
    with pytest.raises(ValueError, match="labels out of range"):
        F.softmax_cross_entropy(logits, backend.to_device(numpy.array([-1, 0]), device))


@pytest.mark.parametrize("name", ["elu", "selu", "silu", "softplus", "leaky_relu", "relu6"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float16])
def test_smooth_activations_keep_the_dtype_and_stay_finite_at_the_extremes(device, name, dtype):
    """No float64 promotion from their constants, and no overflow: e^x is never taken of a
    large x (ELU takes it of min(x, 0); softplus is logaddexp(0, x)), so +-60000 give
    finite values and slopes without a floating-point warning."""
    from minicnn import activations
    host = numpy.array([-60000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 60000.0], dtype)
    x = Tensor(backend.to_device(host, device), requires_grad=True)
    with numpy.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is what e^-60000 is
        y = activations.get(name)[1](x)
        y.backward(backend.to_device(numpy.ones_like(host), device))
    assert y.data.dtype == dtype and x.grad.dtype == dtype
    values, slopes = backend.to_numpy(y.data), backend.to_numpy(x.grad)
    assert numpy.isfinite(values).all() and numpy.isfinite(slopes).all()
    top = {"relu6": 6.0, "selu": 60000.0 * 1.0507009873554805}.get(name, 60000.0)
    numpy.testing.assert_allclose(values[-1], top, rtol=1e-3)  # far above 0: x itself (scaled, capped)
    assert slopes[-1] == (0 if name == "relu6" else values[-1] / host[-1])


@given(case=conv_cases())
def test_depthwise_conv2d_gradients(device, case):
    """The conv cases' shapes, paddings and strides, f as the depth multiplier."""
    rng = numpy.random.default_rng(case["seed"])
    x = tensor(rng.standard_normal((case["n"], case["h"], case["w"], case["c"])), device)
    W = tensor(rng.standard_normal((case["kh"], case["kw"], case["c"], case["f"])), device)
    inputs = [x, W] + ([tensor(rng.standard_normal(case["c"] * case["f"]), device)] if case["bias"] else [])
    gradcheck(lambda *t: F.depthwise_conv2d(*t, strides=case["strides"], padding=case["padding"]), inputs)
    if case["kh"] > 1 and case["padding"] == "same":  # the taps spread apart: a window as tall as the input
        gradcheck(lambda *t: F.depthwise_conv2d(*t, strides=case["strides"], padding="same",
                                                dilation=(2, 1)), inputs)


def test_depthwise_conv2d_matches_a_direct_loop(device):
    rng = numpy.random.default_rng(0)
    x, W = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((3, 2, 3, 2))
    y = backend.to_numpy(F.depthwise_conv2d(tensor(x, device), tensor(W, device), strides=(2, 1)).data)
    expected = numpy.zeros((2, 2, 5, 6))
    for r in range(2):
        for c in range(5):
            for channel in range(3):
                for m in range(2):
                    expected[:, r, c, channel * 2 + m] = (x[:, 2 * r:2 * r + 3, c:c + 2, channel] * W[:, :, channel, m]).sum(axis=(1, 2))
    numpy.testing.assert_allclose(y, expected, rtol=1e-12)


def test_weighted_softmax_cross_entropy(device):
    """Each row's loss times its weight, over N (Keras's sum over batch size); its gradient
    checked in float64; weights of 1 give the unweighted loss."""
    rng = numpy.random.default_rng(3)
    logits = rng.standard_normal((6, 4))
    labels, weights = rng.integers(0, 4, 6), rng.uniform(0, 3, 6)
    x = tensor(logits, device)
    on = lambda a: backend.to_device(a, device)  # noqa: E731
    loss = F.softmax_cross_entropy(x, on(labels), sample_weight=on(weights))
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= numpy.log(numpy.exp(log_p).sum(axis=1, keepdims=True))
    numpy.testing.assert_allclose(float(loss.data), -(weights * log_p[numpy.arange(6), labels]).sum() / 6, rtol=1e-12)
    gradcheck(lambda t: F.softmax_cross_entropy(t, on(labels), label_smoothing=0.1, sample_weight=on(weights)), [x])
    plain = F.softmax_cross_entropy(x, on(labels))
    numpy.testing.assert_allclose(float(F.softmax_cross_entropy(x, on(labels), sample_weight=on(numpy.ones(6))).data),
                                  float(plain.data), rtol=1e-12)
