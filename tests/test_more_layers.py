"""Reshape, Permute, Identity, GlobalMaxPooling2D, SpatialDropout2D (and Dropout's noise_shape), Softmax,
the depthwise and separable convolutions, Conv2D's dilation_rate and groups, LayerNormalization, UpSampling2D, Cropping2D, Conv2DTranspose:
values, float64 gradients, Keras's shapes and errors, and a save/load round trip."""
import numpy
import pytest

from minicnn import Tensor, backend, gradcheck
from minicnn.layers import (Activation, Conv2D, Dense, Dropout, Flatten, GlobalMaxPooling2D, Identity, Permute,
                            Reshape, Softmax, SpatialDropout2D)
from minicnn.models import Sequential, load_model
from conftest import distinct, tensor

F64 = dict(dtype="float64")


def test_reshape_regroups_in_row_major_order_and_finds_the_minus_one(device):
    x = tensor(numpy.arange(2 * 12, dtype=numpy.float64).reshape(2, 3, 4), device)
    for target, shape in (((12,), (12,)), ((2, -1), (2, 6)), ((-1, 3, 2), (2, 3, 2))):
        layer = Reshape(target, **F64)
        y = layer(x)
        assert y.shape == (2, *shape) and layer.output_shape == shape
        numpy.testing.assert_array_equal(backend.to_numpy(y.data), backend.to_numpy(x.data).reshape(2, *shape))
        gradcheck(layer, [x])
    with pytest.raises(ValueError, match="cannot reshape 12 values to \\(5, -1\\)"):
        Reshape((5, -1), **F64)(x)
    with pytest.raises(ValueError, match="cannot reshape 12 values to \\(13,\\)"):
        Reshape((13,), **F64)(x)
    for bad in ((-1, -1), (0, 12), (2.5,)):
        with pytest.raises(ValueError, match="target_shape holds positive ints"):
            Reshape(bad)


def test_permute_reorders_the_axes_after_the_batch_and_identity_passes_its_input(device, tmp_path):
    """Keras's Permute((3, 1, 2)) is x.transpose(0, 3, 1, 2), laid out contiguously; its
    gradient goes back through the inverse order (float64 check); a channels-first array
    permuted to channels-last trains a Conv2D; Identity gives its input; both save and load."""
    rng = numpy.random.default_rng(3)
    x = tensor(rng.standard_normal((2, 3, 4, 5)), device)
    layer = Permute((3, 1, 2), **F64)
    y = layer(x)
    assert y.shape == (2, 5, 3, 4) and layer.output_shape == (5, 3, 4) and y.data.flags.c_contiguous
    numpy.testing.assert_array_equal(backend.to_numpy(y.data), backend.to_numpy(x.data).transpose(0, 3, 1, 2))
    gradcheck(layer, [x])
    gradcheck(Permute((2, 1, 3), **F64), [x])
    assert Identity(**F64)(x) is x
    for bad in ((1, 1, 2), (0, 1, 2), (1, 3), ("a", 1), 2):
        with pytest.raises(ValueError, match="dims must be a permutation of 1..rank"):
            Permute(bad)
    with pytest.raises(ValueError, match="reorders 2 axes after the batch"):
        Permute((2, 1), **F64)(x)
    channels_first = rng.standard_normal((6, 3, 8, 8)).astype(numpy.float32)  # (N, C, H, W), as PyTorch keeps it
    with backend.device(device):
        model = Sequential([Permute((2, 3, 1), input_shape=(3, 8, 8)), Conv2D(4, 3, activation="relu"), Identity(),
                            Flatten(), Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(channels_first, numpy.arange(6) % 2, epochs=1, verbose=0)
    model.save(tmp_path / "permute.npz")
    numpy.testing.assert_allclose(load_model(tmp_path / "permute.npz").predict(channels_first),
                                  model.predict(channels_first), rtol=1e-6)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_max_pooling_is_each_channels_maximum(device, keepdims):
    rng = numpy.random.default_rng(0)
    x = tensor(distinct(rng, (2, 5, 4, 3)), device)  # no ties: one maximum per channel
    layer = GlobalMaxPooling2D(keepdims=keepdims, **F64)
    y = layer(x)
    expected = backend.to_numpy(x.data).max(axis=(1, 2), keepdims=keepdims)
    assert y.shape == expected.shape
    numpy.testing.assert_array_equal(backend.to_numpy(y.data), expected)
    gradcheck(layer, [x])
    y.backward(backend.to_device(numpy.ones(expected.shape), device))
    assert int((backend.to_numpy(x.grad) != 0).sum()) == 2 * 3  # one position per (image, channel)
    with pytest.raises(ValueError, match="rank 4"):
        GlobalMaxPooling2D()(Tensor(numpy.zeros((2, 3), numpy.float32)))


def test_spatial_dropout_keeps_or_drops_whole_feature_maps(device):
    """Every (image, channel) map is all zero or all scaled by 1/(1 - rate); about rate of
    them are zero; the gradient is the same mask; inference is the identity."""
    layer = SpatialDropout2D(0.25, seed=3)
    x = Tensor(backend.to_device(numpy.ones((64, 4, 5, 16), numpy.float32), device), requires_grad=True)
    y = layer(x, training=True)
    maps = backend.to_numpy(y.data).transpose(0, 3, 1, 2).reshape(64 * 16, -1)
    assert y.dtype == numpy.float32
    assert all(numpy.all(m == 0) or numpy.allclose(m, 1 / 0.75) for m in maps)
    dropped = numpy.mean([numpy.all(m == 0) for m in maps])
    assert 0.2 < dropped < 0.3
    y.backward(backend.to_device(numpy.ones(y.shape, numpy.float32), device))
    numpy.testing.assert_array_equal(backend.to_numpy(x.grad), backend.to_numpy(y.data))
    assert layer(x, training=False) is x
    with pytest.raises(ValueError, match="rank 4"):
        SpatialDropout2D(0.5)(Tensor(numpy.ones((2, 3), numpy.float32)), training=True)


def test_dropout_noise_shape_shares_a_draw_along_its_one_axes(device):
    layer = Dropout(0.5, noise_shape=(None, 1, 3), seed=0)
    x = Tensor(backend.to_device(numpy.ones((8, 6, 3), numpy.float32), device))
    y = backend.to_numpy(layer(x, training=True).data)
    assert numpy.all(y == y[:, :1, :])  # the same along axis 1
    assert len(numpy.unique(y.reshape(8, -1)[:, :3], axis=0)) > 1  # not the same for every image
    for noise_shape, message in (((None, 2, 3), "each entry is None, 1 or the input's size"),
                                 ((None, 1), "one entry per input axis")):
        with pytest.raises(ValueError, match=message):
            Dropout(0.5, noise_shape=noise_shape)(x, training=True)
    with pytest.raises(ValueError, match="noise_shape holds None or positive ints"):
        Dropout(0.5, noise_shape=(None, 0))


def test_softmax_layer_is_activation_softmax_and_takes_an_axis(device):
    rng = numpy.random.default_rng(1)
    x = tensor(rng.standard_normal((3, 4, 5)), device)
    numpy.testing.assert_array_equal(backend.to_numpy(Softmax(**F64)(x).data),
                                     backend.to_numpy(Activation("softmax", **F64)(x).data))
    over_rows = backend.to_numpy(Softmax(axis=1, **F64)(x).data)
    numpy.testing.assert_allclose(over_rows.sum(axis=1), 1.0, rtol=1e-12)
    gradcheck(Softmax(axis=1, **F64), [x])
    model = Sequential([Flatten(input_shape=(4, 5)), Dense(3), Softmax()])
    assert model.layers[-1].activation_name == "softmax"  # the loss takes the logits before it
    with pytest.raises(ValueError, match="from_logits=True"):
        from minicnn.losses import SparseCategoricalCrossentropy
        model.compile("sgd", SparseCategoricalCrossentropy(from_logits=True))


def test_the_new_layers_save_and_load(tmp_path):
    model = Sequential([Conv2D(4, 3, padding="same", input_shape=(6, 6, 3)), SpatialDropout2D(0.3, seed=1),
                        GlobalMaxPooling2D(keepdims=True), Reshape((-1,)), Dense(8),
                        Dropout(0.2, noise_shape=(None, 1)), Dense(3), Softmax()])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = numpy.random.default_rng(0).random((10, 6, 6, 3), dtype=numpy.float32)
    model.fit(x, numpy.arange(10) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    assert loaded.layers[5].noise_shape == (None, 1) and loaded.layers[1].noise_shape == (None, 1, 1, None)
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("padding, strides, multiplier", [("valid", 1, 1), ("same", 2, 2), ("same", 1, 3)])
def test_depthwise_and_separable_conv_layers(device, padding, strides, multiplier):
    """Keras's shapes, parameter counts and output-channel order (c * M + m from channel c,
    each channel alone); SeparableConv2D is the depthwise step, then a 1x1 Conv2D; float64
    gradients of both layers' inputs and weights."""
    from minicnn.layers import DepthwiseConv2D, SeparableConv2D
    from minicnn import functional as F
    rng = numpy.random.default_rng(2)
    x = tensor(rng.standard_normal((2, 6, 5, 3)), device)
    depthwise = DepthwiseConv2D(3, strides, padding, depth_multiplier=multiplier, **F64)
    y = depthwise(x)
    assert depthwise.depthwise_kernel.shape == (3, 3, 3, multiplier) and y.shape[-1] == 3 * multiplier
    assert depthwise.count_params() == 9 * 3 * multiplier + 3 * multiplier
    only_channel_1 = backend.to_numpy(x.data).copy()
    only_channel_1[..., [0, 2]] = 0  # then only outputs 1*M .. 2*M - 1 may be non-zero (before the bias)
    out = backend.to_numpy(depthwise.pre_activation(Tensor(backend.to_device(only_channel_1, device))).data)
    bias = backend.to_numpy(depthwise.bias.data)
    others = [k for k in range(3 * multiplier) if not multiplier <= k < 2 * multiplier]
    numpy.testing.assert_allclose(out[..., others], numpy.broadcast_to(bias[others], out[..., others].shape))
    gradcheck(depthwise, [x], params=depthwise.trainable_weights)

    separable = SeparableConv2D(4, 3, strides, padding, depth_multiplier=multiplier, activation="tanh", **F64)
    z = separable(x)
    assert separable.pointwise_kernel.shape == (1, 1, 3 * multiplier, 4) and z.shape[-1] == 4
    assert separable.count_params() == 9 * 3 * multiplier + 3 * multiplier * 4 + 4
    by_hand = F.conv2d(F.depthwise_conv2d(x, separable.depthwise_kernel, None, strides, padding),
                       separable.pointwise_kernel, separable.bias).tanh()
    numpy.testing.assert_allclose(backend.to_numpy(z.data), backend.to_numpy(by_hand.data), rtol=1e-12)
    gradcheck(separable, [x], params=separable.trainable_weights)


def test_depthwise_layers_regularize_save_and_keep_float32(tmp_path):
    from minicnn import regularizers
    from minicnn.layers import DepthwiseConv2D, GlobalAveragePooling2D, SeparableConv2D
    model = Sequential([DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu", input_shape=(6, 6, 3),
                                        depthwise_regularizer=regularizers.l2(1e-3)),
                        SeparableConv2D(5, 3, strides=2, padding="same", activation="relu",
                                        pointwise_regularizer=regularizers.l2(1e-3),
                                        depthwise_regularizer=regularizers.l2(1e-3)),
                        GlobalAveragePooling2D(), Dense(3, activation="softmax")])
    assert len(model.losses) == 3  # one penalty per regularized weight
    model.compile("adam", "sparse_categorical_crossentropy")
    x = numpy.random.default_rng(0).random((10, 6, 6, 3), dtype=numpy.float32)
    model.fit(x, numpy.arange(10) % 3, epochs=1, verbose=0)
    assert all(w.dtype == numpy.float32 for w in model.get_weights()) and model.predict(x).dtype == numpy.float32
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config() and len(loaded.losses) == 3
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    with pytest.raises(ValueError, match="depth_multiplier must be a positive int"):
        DepthwiseConv2D(3, depth_multiplier=0)


@pytest.mark.parametrize("dilation_rate, groups, padding", [(2, 1, "valid"), ((1, 2), 1, "same"), (1, 2, "same"),
                                                            (2, 4, "valid")])
def test_conv2d_dilation_rate_and_groups(device, dilation_rate, groups, padding):
    """Shapes and parameter counts as Keras's; each filter group reads only its channels
    (the others' changes leave it as it was); float64 gradients through the layer."""
    rng = numpy.random.default_rng(0)
    x = tensor(rng.standard_normal((2, 9, 9, 4)), device)
    layer = Conv2D(8, 3, padding=padding, dilation_rate=dilation_rate, groups=groups, **F64)
    y = layer(x)
    dy, dx = (dilation_rate, dilation_rate) if isinstance(dilation_rate, int) else dilation_rate
    expected = (9, 9) if padding == "same" else (9 - 2 * dy, 9 - 2 * dx)
    assert y.shape == (2, *expected, 8) and layer.output_shape == (*expected, 8)
    assert layer.kernel.shape == (3, 3, 4 // groups, 8) and layer.count_params() == 9 * (4 // groups) * 8 + 8
    if groups > 1:  # group 0's filters see channels 0 .. C/G - 1 only
        other = backend.to_numpy(x.data).copy()
        other[..., 4 // groups:] += 1.0
        y_other = layer(Tensor(backend.to_device(other, device)))
        first = slice(0, 8 // groups)
        numpy.testing.assert_array_equal(backend.to_numpy(y_other.data)[..., first], backend.to_numpy(y.data)[..., first])
        assert not numpy.allclose(backend.to_numpy(y_other.data)[..., 8 // groups:], backend.to_numpy(y.data)[..., 8 // groups:])
    gradcheck(layer, [x], params=layer.trainable_weights)


def test_conv2d_groups_refuse_what_does_not_divide_and_save(tmp_path):
    with pytest.raises(ValueError, match=r"groups must be a positive int that divides filters \(6\), got 4"):
        Conv2D(6, 3, groups=4)
    with pytest.raises(ValueError, match="dilation_rate must be a positive int"):
        Conv2D(6, 3, dilation_rate=0)
    with pytest.raises(ValueError, match="input channels must divide into its 2 groups"):
        Sequential([Conv2D(4, 3, groups=2, input_shape=(8, 8, 3))])
    with pytest.raises(ValueError, match="kernel 5x5 is larger than the padded input 4x4"):
        Sequential([Conv2D(4, 3, dilation_rate=2, input_shape=(4, 4, 3))])
    model = Sequential([Conv2D(8, 3, padding="same", dilation_rate=2, groups=2, activation="relu", input_shape=(8, 8, 4)),
                        Conv2D(4, 1, groups=4), Flatten(), Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = numpy.random.default_rng(0).random((12, 8, 8, 4), dtype=numpy.float32)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, numpy.arange(12) % 3, epochs=1, verbose=0)
    assert all(w.dtype == numpy.float32 for w in model.get_weights())
    assert all(not numpy.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # every weight trained
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.layers[0].dilation_rate == (2, 2) and loaded.layers[0].groups == 2
    numpy.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("shape, axes", [((3, 5), (-1,)), ((2, 4, 3, 5), (-1,)), ((2, 4, 3, 5), (1, 2, 3)),
                                         ((2, 4, 3, 5), (1, 3)), ((2, 4, 3, 5), (2,))])
def test_layer_norm_gradients(device, shape, axes):
    from minicnn import functional as F
    from minicnn.functions.layer_norm import broadcast_shape
    rng = numpy.random.default_rng(sum(shape))
    param = tuple(shape[a] for a in sorted(a % len(shape) for a in axes))
    x, gamma, beta = (tensor(rng.standard_normal(s), device) for s in (shape, param, param))
    gradcheck(lambda *t: F.layer_norm(*t, axes=axes), [x, gamma, beta])
    # the definition, on the host
    host = backend.to_numpy(x.data)
    mean, var = host.mean(axis=axes, keepdims=True), host.var(axis=axes, keepdims=True)
    g, b = (backend.to_numpy(t.data).reshape(broadcast_shape(shape, [a % len(shape) for a in axes])) for t in (gamma, beta))
    numpy.testing.assert_allclose(backend.to_numpy(F.layer_norm(x, gamma, beta, axes).data),
                                  g * (host - mean) / numpy.sqrt(var + 1e-3) + b, rtol=1e-12, atol=1e-12)


def test_layer_normalization_layer(device, tmp_path):
    """Each example's own statistics: mean 0 and variance 1 (less epsilon's share) over the
    axes, whatever the other examples hold; training and inference alike; a batch of one."""
    from minicnn.layers import LayerNormalization
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((4, 3, 3, 6)) * numpy.array([1.0, 10.0, 100.0, 0.1])[:, None, None, None] + 5.0
    for axis, reduce in ((-1, (3,)), ([1, 2, 3], (1, 2, 3)), (2, (2,))):
        layer = LayerNormalization(axis=axis, epsilon=1e-9, **F64)
        y = backend.to_numpy(layer(tensor(x, device)).data)
        numpy.testing.assert_allclose(y.mean(axis=reduce), 0, atol=1e-9)
        numpy.testing.assert_allclose(y.var(axis=reduce), 1, rtol=1e-6)
        layer.training = False
        numpy.testing.assert_array_equal(backend.to_numpy(layer(tensor(x, device)).data), y)
        numpy.testing.assert_allclose(backend.to_numpy(layer(tensor(x[1:2], device)).data), y[1:2], rtol=1e-12)
    assert LayerNormalization(axis=[1, 2, 3], **F64)(tensor(x, device)).shape == x.shape
    model = Sequential([Conv2D(4, 3, input_shape=(6, 6, 3)), LayerNormalization(axis=[1, 2, 3], center=False),
                        LayerNormalization(scale=False), Flatten(), Dense(3, activation="softmax")])
    assert model.layers[1].gamma.shape == (4, 4, 4) and model.layers[1].beta is None
    assert model.layers[2].gamma is None and model.count_params() == 112 + 64 + 4 + 195
    model.compile("adam", "sparse_categorical_crossentropy")
    images = rng.random((8, 6, 6, 3), dtype=numpy.float32)
    model.fit(images, numpy.arange(8) % 3, epochs=1, verbose=0)
    assert all(w.dtype == numpy.float32 for w in model.get_weights())
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    numpy.testing.assert_array_equal(loaded.predict(images), model.predict(images))


def test_layer_normalization_refuses_the_batch_axis_and_wrong_axes():
    from minicnn.layers import LayerNormalization
    with pytest.raises(ValueError, match="axis 0 is the batch"):
        LayerNormalization(axis=0)
    with pytest.raises(ValueError, match="distinct ints"):
        LayerNormalization(axis=[1, 1])
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        LayerNormalization(epsilon=0)
    with pytest.raises(ValueError, match="axis 4 is not an axis of the input"):
        Sequential([LayerNormalization(axis=4, input_shape=(3, 3, 2))])
    with pytest.raises(ValueError, match="axis -4 is not an axis of the input"):  # -4 of 4 axes is the batch
        Sequential([LayerNormalization(axis=-4, input_shape=(3, 3, 2))])
    model = Sequential([LayerNormalization(input_shape=(3, 3, 2))])
    with pytest.raises(ValueError, match=r"expects sizes \(2,\) on axis -1"):
        model.predict(numpy.zeros((1, 3, 3, 5), numpy.float32))


def test_layer_normalization_in_mixed_precision():
    """float32 weights and statistics, float16 in and out (as BatchNormalization)."""
    from minicnn import mixed_precision
    from minicnn.layers import LayerNormalization
    layer = LayerNormalization(dtype="mixed_float16")
    x = Tensor(numpy.random.default_rng(0).standard_normal((2, 5, 5, 8)).astype(numpy.float16) * 300)
    y = layer(x)
    assert layer.gamma.dtype == numpy.float32 and y.dtype == numpy.float16
    reference = LayerNormalization()(Tensor(x.data.astype(numpy.float32)))
    numpy.testing.assert_allclose(y.data.astype(numpy.float32), reference.data, atol=4e-3)
    assert mixed_precision.get("mixed_float16").compute_dtype == "float16"


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [2, (3, 1), (1, 4)])
def test_upsampling(device, interpolation, size):
    """Float64 gradients; 'nearest' is each pixel repeated; 'bilinear' keeps a constant
    image constant and a linear ramp linear away from the border clamp."""
    from minicnn.layers import UpSampling2D
    rng = numpy.random.default_rng(0)
    x = tensor(rng.standard_normal((2, 3, 4, 2)), device)
    layer = UpSampling2D(size, interpolation=interpolation, **F64)
    y = backend.to_numpy(layer(x).data)
    sh, sw = (size, size) if isinstance(size, int) else size
    assert y.shape == (2, 3 * sh, 4 * sw, 2) and layer.output_shape == (3 * sh, 4 * sw, 2)
    gradcheck(layer, [x])
    if interpolation == "nearest":
        numpy.testing.assert_array_equal(y, backend.to_numpy(x.data).repeat(sh, 1).repeat(sw, 2))
    else:
        flat = backend.to_numpy(layer(tensor(numpy.full((1, 3, 4, 1), 2.5), device)).data)
        numpy.testing.assert_allclose(flat, 2.5, rtol=1e-15)
        ramp = numpy.arange(4.0)[None, None, :, None] * numpy.ones((1, 3, 4, 1))
        up = backend.to_numpy(layer(tensor(ramp, device)).data)[0, 0, :, 0]
        inner = slice(sw, 3 * sw)  # past the clamped half-pixel at each end: a line of slope 1/sw
        centres = (numpy.arange(4 * sw) + 0.5) / sw - 0.5
        numpy.testing.assert_allclose(up[inner], centres[inner], rtol=1e-12)


def test_cropping_and_upsampling_layers(device, tmp_path):
    from minicnn.layers import Cropping2D, UpSampling2D
    rng = numpy.random.default_rng(1)
    x = tensor(rng.standard_normal((2, 7, 6, 3)), device)
    crop = Cropping2D(((1, 2), (0, 3)), **F64)
    y = crop(x)
    numpy.testing.assert_array_equal(backend.to_numpy(y.data), backend.to_numpy(x.data)[:, 1:5, 0:3])
    assert crop.output_shape == (4, 3, 3) and Cropping2D(1, **F64)(x).shape == (2, 5, 4, 3)
    gradcheck(crop, [x])
    with pytest.raises(ValueError, match="leaves no pixels"):
        Sequential([Cropping2D((4, 0), input_shape=(8, 8, 3))])
    with pytest.raises(ValueError, match=r"Cropping2D: cropping must be n, \(rows, cols\)"):
        Cropping2D(((1, 2), 3))
    with pytest.raises(ValueError, match="interpolation must be one of"):
        UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match="size must be a positive int"):
        UpSampling2D(0)
    model = Sequential([Conv2D(4, 3, input_shape=(8, 8, 3)), UpSampling2D(interpolation="bilinear"),
                        Cropping2D(2), UpSampling2D((1, 2)), Conv2D(2, 3, strides=2), Flatten(),
                        Dense(3, activation="softmax")])
    assert model.output_shape == (3,) and model.layers[3].output_shape == (8, 16, 4)
    model.compile("adam", "sparse_categorical_crossentropy")
    images = rng.random((6, 8, 8, 3), dtype=numpy.float32)
    model.fit(images, numpy.arange(6) % 3, epochs=1, verbose=0)
    assert model.predict(images).dtype == numpy.float32
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    numpy.testing.assert_array_equal(loaded.predict(images), model.predict(images))


@pytest.mark.parametrize("padding, strides, output_padding", [("same", 2, None), ("valid", 2, None), ("valid", 3, 1),
                                                              ("same", (2, 1), (1, 0))])
def test_conv2d_transpose_layer(device, padding, strides, output_padding):
    """Keras's shapes, layout (kh, kw, filters, C) and parameter count; the layer is F's op
    plus the activation; float64 gradients through it."""
    from minicnn import functional as F
    from minicnn.layers import Conv2DTranspose
    rng = numpy.random.default_rng(0)
    x = tensor(rng.standard_normal((2, 4, 3, 5)), device)
    layer = Conv2DTranspose(6, 3, strides=strides, padding=padding, output_padding=output_padding,
                            activation="tanh", bias_initializer="ones", **F64)
    y = layer(x)
    sy, sx = (strides, strides) if isinstance(strides, int) else strides
    py, px = (None, None) if output_padding is None else (
        (output_padding, output_padding) if isinstance(output_padding, int) else output_padding)
    expected = tuple(n * s if padding == "same" and p is None else (n - 1) * s + 3 - (2 if padding == "same" else 0)
                     + (p or 0) for n, s, p in ((4, sy, py), (3, sx, px)))
    assert layer.name.startswith("conv2d_transpose")
    assert y.shape == (2, *expected, 6) and layer.output_shape == (*expected, 6)
    assert layer.kernel.shape == (3, 3, 6, 5) and layer.count_params() == 9 * 5 * 6 + 6
    by_hand = F.conv2d_transpose(x, layer.kernel, layer.bias, strides, padding, output_padding).tanh()
    numpy.testing.assert_allclose(backend.to_numpy(y.data), backend.to_numpy(by_hand.data), rtol=1e-12)
    gradcheck(layer, [x], params=layer.trainable_weights)


def test_conv2d_transpose_autoencoder_trains_saves_and_refuses():
    from minicnn.layers import Conv2DTranspose
    with pytest.raises(ValueError, match="output_padding .* must be smaller than the strides"):
        Conv2DTranspose(4, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        Conv2DTranspose(4, 3, padding=1)
    with pytest.raises(ValueError, match="filters must be a positive int"):
        Conv2DTranspose(0, 3)
    model = Sequential([Conv2D(8, 3, strides=2, padding="same", activation="relu", input_shape=(8, 8, 3)),
                        Conv2DTranspose(3, 3, strides=2, padding="same", activation="sigmoid")])
    assert model.output_shape == (8, 8, 3)
    from minicnn.optimizers import Adam
    model.compile(Adam(0.01), "mse", metrics=["mae"])
    blocks = numpy.random.default_rng(0).random((16, 2, 2, 3), dtype=numpy.float32)
    images = blocks.repeat(4, axis=1).repeat(4, axis=2)  # 4x4 blocks: something a bottleneck can keep
    history = model.fit(images, images, epochs=40, batch_size=4, verbose=0).history
    assert history["loss"][-1] < 0.1 * history["loss"][0]  # an autoencoder learns to give its input back
    assert history["mae"][-1] < 0.3 * history["mae"][0]
    assert all(w.dtype == numpy.float32 for w in model.get_weights())
    import tempfile, os
    with tempfile.TemporaryDirectory() as folder:
        model.save(os.path.join(folder, "m.npz"))
        loaded = load_model(os.path.join(folder, "m.npz"))
    assert loaded.get_config() == model.get_config()
    numpy.testing.assert_array_equal(loaded.predict(images), model.predict(images))


def test_depthwise_and_separable_dilation_rate(device):
    """Keras's dilation_rate on both: the window (k - 1) * d + 1 sets the output size, the
    weights stay kh x kw; the separable layer is the dilated depthwise step, then 1x1."""
    from minicnn import functional as F
    from minicnn.layers import DepthwiseConv2D, SeparableConv2D
    x = tensor(numpy.random.default_rng(2).standard_normal((2, 9, 9, 3)), device)
    depthwise = DepthwiseConv2D(3, dilation_rate=(2, 3), depth_multiplier=2, **F64)
    assert depthwise(x).shape == (2, 5, 3, 6) and depthwise.depthwise_kernel.shape == (3, 3, 3, 2)
    gradcheck(depthwise, [x], params=depthwise.trainable_weights)
    separable = SeparableConv2D(4, 3, padding="same", dilation_rate=2, **F64)
    y = separable(x)
    by_hand = F.conv2d(F.depthwise_conv2d(x, separable.depthwise_kernel, None, 1, "same", 2),
                       separable.pointwise_kernel, separable.bias)
    assert y.shape == (2, 9, 9, 4) and separable.get_config()["dilation_rate"] == (2, 2)
    numpy.testing.assert_allclose(backend.to_numpy(y.data), backend.to_numpy(by_hand.data), rtol=1e-12)


def test_elementwise_merging_layers(device, tmp_path):
    """Subtract, Multiply, Average, Maximum, Minimum: values as NumPy's, float64 gradients
    (inputs apart, so no ties), ties sent to the earlier input as TensorFlow sends them,
    shape errors, and a functional model that saves and loads."""
    from minicnn.layers import Average, Input, Maximum, Minimum, Multiply, Subtract
    from minicnn.models import Model
    rng = numpy.random.default_rng(0)
    a, b, c = (tensor(distinct(rng, (2, 3, 4)) + k, device) for k in (0.0, 0.013, -0.021))
    host = [backend.to_numpy(t.data) for t in (a, b, c)]
    cases = {Subtract: (lambda u, v, w: u - v, 2), Multiply: (lambda u, v, w: u * v * w, 3),
             Average: (lambda u, v, w: (u + v + w) / 3, 3), Maximum: (lambda u, v, w: numpy.maximum(numpy.maximum(u, v), w), 3),
             Minimum: (lambda u, v, w: numpy.minimum(numpy.minimum(u, v), w), 3)}
    for layer_class, (expected, count) in cases.items():
        layer = layer_class(**F64)
        inputs = [a, b, c][:count]
        numpy.testing.assert_allclose(backend.to_numpy(layer(inputs).data), expected(*host) if count == 3 else
                                      expected(host[0], host[1], None), rtol=1e-12)
        gradcheck(lambda *t: layer_class(**F64)(list(t)), inputs)
    tie = [tensor(numpy.ones((1, 3)), device), tensor(numpy.ones((1, 3)), device)]
    for layer_class in (Maximum, Minimum):
        for t in tie:
            t.grad = None
        layer_class(**F64)(tie).sum().backward()
        assert backend.to_numpy(tie[0].grad).tolist() == [[1.0] * 3] and backend.to_numpy(tie[1].grad).tolist() == [[0.0] * 3]
    with pytest.raises(ValueError, match="subtracts exactly two inputs; got 3"):
        Subtract(**F64)([a, b, c])
    with pytest.raises(ValueError, match="adds inputs of one shape"):
        Multiply(**F64)([a, tensor(numpy.ones((2, 3, 5)), device)])

    x = Input((6,))
    gate = Dense(6, activation="sigmoid")(x)
    y = Dense(3, activation="softmax")(Average()([Multiply()([x, gate]), Maximum()([x, Dense(6)(x)]),
                                                   Subtract()([x, Minimum()([x, gate])])]))
    model = Model(x, y)
    model.compile("adam", "sparse_categorical_crossentropy")
    data = rng.random((8, 6), dtype=numpy.float32)
    model.fit(data, numpy.arange(8) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    numpy.testing.assert_array_equal(load_model(tmp_path / "m.npz").predict(data), model.predict(data))


def test_prelu_and_elu_layers(device, tmp_path):
    """PReLU: x above 0, alpha * x below, alpha learned, one per position or shared along
    shared_axes; float64 gradients for x and alpha; ELU as F.elu; both save and load."""
    from minicnn import functional as F, regularizers
    from minicnn.layers import ELU, PReLU
    rng = numpy.random.default_rng(0)
    x = tensor(distinct(rng, (2, 3, 4, 5)) + 0.013, device)  # none at 0, the kink
    layer = PReLU(alpha_initializer="ones", shared_axes=[1, 2], **F64)
    layer(x)
    assert layer.alpha.shape == (1, 1, 5) and layer.count_params() == 5
    layer.alpha.data[...] = backend.to_device(numpy.linspace(0.1, 0.5, 5).reshape(1, 1, 5), device)
    host, alpha = backend.to_numpy(x.data), numpy.linspace(0.1, 0.5, 5)
    numpy.testing.assert_allclose(backend.to_numpy(layer(x).data), numpy.where(host > 0, host, alpha * host), rtol=1e-12)
    gradcheck(layer, [x], params=layer.trainable_weights)
    assert PReLU(**F64)(x).shape == x.shape  # alpha per position, zeros: a ReLU to begin with
    elu = ELU(0.5, **F64)
    numpy.testing.assert_array_equal(backend.to_numpy(elu(x).data), backend.to_numpy(F.elu(x, 0.5).data))
    with pytest.raises(ValueError, match="shared_axes are axes after the batch"):
        PReLU(shared_axes=[0])
    with pytest.raises(ValueError, match="ELU: alpha must be >= 0"):
        ELU(-1)
    model = Sequential([Conv2D(4, 3, input_shape=(6, 6, 3)), PReLU(shared_axes=[1, 2],
                                                                    alpha_regularizer=regularizers.l2(1e-3)),
                        ELU(), Flatten(), Dense(2, activation="softmax")])
    assert len(model.losses) == 1
    model.compile("adam", "sparse_categorical_crossentropy")
    images = rng.random((6, 6, 6, 3), dtype=numpy.float32)
    model.fit(images, numpy.arange(6) % 2, epochs=2, verbose=0)
    assert float(numpy.abs(model.layers[1].alpha.numpy()).max()) > 0  # the slopes learned
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    numpy.testing.assert_array_equal(loaded.predict(images), model.predict(images))


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_normalization(device, groups, tmp_path):
    """Each example's channel groups normalised over their channels and positions together:
    the definition by hand; PyTorch's group_norm where installed; groups=1 is a layer norm
    over the whole image; float64 gradients; save and load."""
    from minicnn.layers import GroupNormalization, LayerNormalization
    rng = numpy.random.default_rng(groups)
    x = rng.standard_normal((3, 4, 5, 6)) * numpy.arange(1, 7) + numpy.arange(6)
    layer = GroupNormalization(groups, epsilon=1e-5, gamma_initializer="ones", **F64)
    y = layer(tensor(x, device))
    layer.gamma.data[...] = backend.to_device(numpy.linspace(0.5, 2.0, 6), device)
    layer.beta.data[...] = backend.to_device(numpy.linspace(-1.0, 1.0, 6), device)
    y = backend.to_numpy(layer(tensor(x, device)).data)
    g = x.reshape(3, 4, 5, groups, 6 // groups)
    hat = (g - g.mean(axis=(1, 2, 4), keepdims=True)) / numpy.sqrt(g.var(axis=(1, 2, 4), keepdims=True) + 1e-5)
    expected = hat.reshape(x.shape) * numpy.linspace(0.5, 2.0, 6) + numpy.linspace(-1.0, 1.0, 6)
    numpy.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    try:
        import torch
        theirs = torch.nn.functional.group_norm(torch.tensor(x).permute(0, 3, 1, 2), groups,
                                                torch.tensor(numpy.linspace(0.5, 2.0, 6)),
                                                torch.tensor(numpy.linspace(-1.0, 1.0, 6)), eps=1e-5)
        numpy.testing.assert_allclose(y, theirs.permute(0, 2, 3, 1).numpy(), rtol=1e-9, atol=1e-10)
    except ImportError:
        pass
    gradcheck(layer, [tensor(x, device)], params=layer.trainable_weights)
    if groups == 1:
        whole = LayerNormalization(axis=[1, 2, 3], epsilon=1e-5, **F64)(tensor(x, device))
        plain = GroupNormalization(1, epsilon=1e-5, **F64)(tensor(x, device))
        numpy.testing.assert_allclose(backend.to_numpy(plain.data), backend.to_numpy(whole.data), rtol=1e-10)
    with pytest.raises(ValueError, match="the channels must divide into its 4 groups"):
        Sequential([GroupNormalization(4, input_shape=(3, 3, 6))])
    model = Sequential([Conv2D(6, 3, input_shape=(6, 6, 3)), GroupNormalization(groups), Flatten(), Dense(2)])
    model.compile("adam", "mse")
    images = rng.random((4, 6, 6, 3), dtype=numpy.float32)
    model.fit(images, rng.random((4, 2), dtype=numpy.float32), epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    numpy.testing.assert_array_equal(load_model(tmp_path / "m.npz").predict(images), model.predict(images))


def test_lambda_layer_is_a_differentiable_function_that_refuses_to_be_saved(device, tmp_path):
    """Keras's Lambda: its output shape found by one call, float64 gradients through the
    function, arguments passed on, in Sequential and functional models; a save (and a
    ModelCheckpoint, before the first epoch) refuses it by name, save_weights does not."""
    import minicnn
    from minicnn import callbacks
    from minicnn.layers import Input, Lambda
    from minicnn.models import Model
    rng = numpy.random.default_rng(4)
    x = tensor(rng.standard_normal((2, 4, 4, 3)), device)
    scale = Lambda(lambda t, factor: t * factor - 1.0, arguments={"factor": 3.0}, **F64)
    numpy.testing.assert_allclose(backend.to_numpy(scale(x).data), backend.to_numpy(x.data) * 3 - 1, rtol=1e-15)
    gradcheck(scale, [x])
    pool = Lambda(lambda t: (t * t).mean(axis=(1, 2)), output_shape=(3,), **F64)
    assert pool(x).shape == (2, 3) and pool.output_shape == (3,)
    gradcheck(pool, [x])
    with minicnn.device(device):
        model = Sequential([Lambda(lambda t: t * 2.0 - 1.0, input_shape=(4, 4, 3)), Conv2D(2, 3),
                            Lambda(lambda t: t.mean(axis=(1, 2))), Dense(3, activation="softmax")])
        inputs = Input((4, 4, 3))
        graph = Model(inputs, Dense(2)(Lambda(lambda t: t.reshape(len(t), -1))(inputs)))
    assert model.layers[2].output_shape == (2,) and graph.output_shape == (2,)
    images, labels = rng.random((6, 4, 4, 3), dtype=numpy.float32), numpy.arange(6) % 3
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(backend.to_device(images, device), labels, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="cannot save Lambda 'lambda': it holds a Python function"):
        model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="cannot save Lambda"):
        model.fit(backend.to_device(images, device), labels, epochs=1, verbose=0,
                  callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "c.npz"))])
    model.save_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match=r"output_shape \(4,\) was given, but the function returns \(None, 3\)"):
        Lambda(lambda t: t.mean(axis=(1, 2)), output_shape=(4,), **F64)(x)
    with pytest.raises(TypeError, match="the function must return a minicnn Tensor"):
        Lambda(lambda t: t.data, **F64)(x)
    with pytest.raises(TypeError, match="function must be callable"):
        Lambda(3)
