"""PyTorch (float64, CPU) as an independent oracle, in value and gradient.

Skipped with a reason where PyTorch is not installed. minicnn itself never imports it.
"""
import numpy
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not installed: the oracle comparisons are skipped")
tF = torch.nn.functional

from minicnn import Tensor, backend, functional as F  # noqa: E402
from minicnn.functions import conv  # noqa: E402
from minicnn.functions.conv import pad_amounts  # noqa: E402
from minicnn.optimizers import SGD, Adam  # noqa: E402

rng = numpy.random.default_rng(42)


def ours(array, device):
    return Tensor(backend.to_device(array, device), requires_grad=True)


def theirs(array):
    return torch.tensor(array, requires_grad=True)


def nchw(t):
    return t.permute(0, 3, 1, 2)


def nhwc(t):
    return t.permute(0, 2, 3, 1)


def close(our, their, **kw):
    numpy.testing.assert_allclose(backend.to_numpy(our), their.detach().numpy(), rtol=1e-9, atol=1e-10, **kw)


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kernel", [(3, 3), (2, 2), (4, 3)])
def test_conv2d(device, strides, padding, kernel):
    x, W, b = rng.standard_normal((2, 9, 8, 3)), rng.standard_normal(kernel + (3, 5)), rng.standard_normal(5)
    gy = rng.standard_normal(F.conv2d(ours(x, device), ours(W, device), ours(b, device), strides, padding).shape)
    xo, Wo, bo = ours(x, device), ours(W, device), ours(b, device)
    yo = F.conv2d(xo, Wo, bo, strides, padding)
    yo.backward(backend.to_device(gy, device))

    xt, Wt, bt = theirs(x), theirs(W), theirs(b)
    (pt, pb), (pl, pr) = (pad_amounts(9, kernel[0], strides, padding), pad_amounts(8, kernel[1], strides, padding))
    xt_padded = tF.pad(nchw(xt), (pl, pr, pt, pb))  # TF/Keras: the odd pixel after
    yt = nhwc(tF.conv2d(xt_padded, Wt.permute(3, 2, 0, 1), bt, stride=strides))
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)
    close(Wo.grad, Wt.grad)
    close(bo.grad, bt.grad)


@pytest.mark.parametrize("dilation, groups, strides, padding",
                         [(2, 1, 1, "same"), ((2, 3), 1, 1, "valid"), (1, 3, 1, "same"), (1, 6, 2, "valid"),
                          (2, 2, 2, "same"), ((1, 2), 3, (2, 1), 1)])
def test_conv2d_dilated_and_grouped(device, dilation, groups, strides, padding):
    """PyTorch's dilation= and groups=, with its (F, C/G, kh, kw) weight: the same filter-to-
    group assignment (filter f in group f // (F/G)) as Keras's (kh, kw, C/G, F)."""
    x, W, b = rng.standard_normal((2, 10, 9, 6)), rng.standard_normal((3, 3, 6 // groups, 6)), rng.standard_normal(6)
    xo, Wo, bo = ours(x, device), ours(W, device), ours(b, device)
    yo = F.conv2d(xo, Wo, bo, strides, padding, dilation, groups)
    gy = rng.standard_normal(yo.shape)
    yo.backward(backend.to_device(gy, device))

    (dy, dx), (sy, sx) = conv.pair(dilation, "dilation"), conv.pair(strides, "strides")
    pads = conv.conv_geometry(x.shape, 2 * dy + 1, 2 * dx + 1, sy, sx, conv.normalize_padding(padding))[0]
    (pt, pb), (pl, pr) = pads
    xt, Wt, bt = theirs(x), theirs(W), theirs(b)
    yt = nhwc(tF.conv2d(tF.pad(nchw(xt), (pl, pr, pt, pb)), Wt.permute(3, 2, 0, 1), bt, stride=(sy, sx),
                        dilation=(dy, dx), groups=groups))
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)
    close(Wo.grad, Wt.grad)
    close(bo.grad, bt.grad)


@pytest.mark.parametrize("shape, axes", [((4, 7), (-1,)), ((2, 5, 4, 6), (-1,)), ((2, 5, 4, 6), (1, 2, 3)),
                                         ((2, 5, 4, 6), (2, 3))])
def test_layer_norm(device, shape, axes):
    """PyTorch's layer_norm over the trailing normalized_shape: the same as Keras's axes
    when they are the last ones (the only case PyTorch spells)."""
    param = shape[len(shape) - len(axes):]
    x, gamma, beta = rng.standard_normal(shape), rng.standard_normal(param), rng.standard_normal(param)
    xo, go, bo = ours(x, device), ours(gamma, device), ours(beta, device)
    yo = F.layer_norm(xo, go, bo, axes, eps=1e-3)
    gy = rng.standard_normal(shape)
    yo.backward(backend.to_device(gy, device))
    xt, gt, bt = theirs(x), theirs(gamma), theirs(beta)
    yt = tF.layer_norm(xt, param, gt, bt, eps=1e-3)
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)
    close(go.grad, gt.grad)
    close(bo.grad, bt.grad)


def same_as_interpolate(device, x, ours_op, mode, **their_size):
    """ours_op(Tensor) against PyTorch's interpolate(mode, **their_size) on NCHW, in value and
    in the gradient of a random upstream gradient."""
    xo = ours(x, device)
    yo = ours_op(xo)
    gy = rng.standard_normal(yo.shape)
    yo.backward(backend.to_device(gy, device))
    xt = theirs(x)
    options = {"align_corners": False} if mode == "bilinear" else {}
    yt = nhwc(tF.interpolate(nchw(xt), mode=mode, **their_size, **options))
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [(2, 2), (3, 2), (1, 3)])
def test_upsample2d(device, interpolation, size):
    """PyTorch's interpolate(scale_factor=...) (bilinear with align_corners=False): Keras's
    UpSampling2D pixel for pixel, clamped border included."""
    same_as_interpolate(device, rng.standard_normal((2, 4, 5, 3)), lambda t: F.upsample2d(t, size, interpolation),
                        interpolation, scale_factor=size)


@pytest.mark.parametrize("interpolation, their_mode", [("bilinear", "bilinear"), ("nearest", "nearest-exact")])
@pytest.mark.parametrize("size", [(3, 4), (9, 5), (11, 16), (1, 1)])
def test_resize(device, interpolation, their_mode, size):
    """PyTorch's interpolate(size=...), down, up and by factors that are not whole; Keras's
    'nearest' (half-pixel centres) is PyTorch's 'nearest-exact'."""
    same_as_interpolate(device, rng.standard_normal((2, 6, 7, 3)), lambda t: F.resize(t, size, interpolation),
                        their_mode, size=size)


@pytest.mark.parametrize("kernel, strides, padding, output_padding, dilation",
                         [(3, 2, "valid", None, 1), (4, 2, "same", None, 1), (3, 1, "same", None, 2),
                          (2, 3, "valid", None, 1), (3, 2, "valid", 1, 1), ((3, 2), (2, 1), "valid", None, (1, 2))])
def test_conv2d_transpose(device, kernel, strides, padding, output_padding, dilation):
    """PyTorch's conv_transpose2d, weight (C, F, kh, kw), unpadded: every window's full
    reach (the canvas). Keras's output is that canvas cropped (top, left) and, where
    output_padding or a kernel smaller than the stride asks for more rows, extended by 0
    rows no window reaches; the crop itself is checked by the adjoint identity
    (test_functions.py)."""
    from minicnn.functions import conv_transpose
    kh, kw = conv.pair(kernel, "kernel")
    x, W, b = rng.standard_normal((2, 4, 5, 3)), rng.standard_normal((kh, kw, 6, 3)), rng.standard_normal(6)
    xo, Wo, bo = ours(x, device), ours(W, device), ours(b, device)
    yo = F.conv2d_transpose(xo, Wo, bo, strides, padding, output_padding, dilation)
    gy = rng.standard_normal(yo.shape)
    yo.backward(backend.to_device(gy, device))
    (sy, sx), (dy, dx), (oh, ow), (top, left), _ = conv_transpose.transpose_geometry(
        x.shape, W.shape, strides, padding, output_padding, dilation)
    xt, Wt, bt = theirs(x), theirs(W), theirs(b)
    canvas = tF.conv_transpose2d(nchw(xt), Wt.permute(3, 2, 0, 1), None, stride=(sy, sx), dilation=(dy, dx))
    canvas = tF.pad(canvas, (0, max(0, left + ow - canvas.shape[3]), 0, max(0, top + oh - canvas.shape[2])))
    yt = nhwc(canvas[:, :, top:top + oh, left:left + ow]) + bt
    assert tuple(yt.shape) == yo.shape
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)
    close(Wo.grad, Wt.grad)
    close(bo.grad, bt.grad)


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "bce", "bce-logits"])
def test_elementwise_losses(device, name):
    """PyTorch's mse_loss, l1_loss, huber_loss, binary_cross_entropy(_with_logits), each
    sample's mean times its weight, averaged over the batch: Keras's reduction."""
    from minicnn import losses
    shape = (4, 3, 2, 2)
    scores = rng.uniform(0.05, 0.95, shape) if name == "bce" else rng.standard_normal(shape)
    target = rng.random(shape) if name.startswith("bce") else rng.standard_normal(shape)
    weight = rng.random(4)
    ours_loss = {"mse": losses.MeanSquaredError(), "mae": losses.MeanAbsoluteError(), "huber": losses.Huber(0.7),
                 "bce": losses.BinaryCrossentropy(), "bce-logits": losses.BinaryCrossentropy(from_logits=True)}[name]
    theirs_loss = {"mse": tF.mse_loss, "mae": tF.l1_loss, "huber": lambda p, t, **k: tF.huber_loss(p, t, delta=0.7, **k),
                   "bce": tF.binary_cross_entropy, "bce-logits": tF.binary_cross_entropy_with_logits}[name]
    po = ours(scores, device)
    value = ours_loss(backend.to_device(target, device), po, sample_weight=backend.to_device(weight, device))
    value.backward()
    pt = theirs(scores)
    per_sample = theirs_loss(pt, torch.tensor(target), reduction="none").mean(dim=(1, 2, 3))
    expected = (per_sample * torch.tensor(weight)).mean()
    expected.backward()
    close(value.data, expected)
    close(po.grad, pt.grad)


@pytest.mark.parametrize("pool, strides, padding", [(2, None, "valid"), (3, 2, "valid"), (3, 1, "same"), (2, 2, "same")])
def test_max_pool(device, pool, strides, padding):
    x = rng.permutation(2 * 7 * 7 * 3).reshape(2, 7, 7, 3) / 10.0  # distinct: no ties
    xo = ours(x, device)
    yo = F.max_pool2d(xo, pool, strides, padding)
    gy = rng.standard_normal(yo.shape)
    yo.backward(backend.to_device(gy, device))
    xt = theirs(x)
    s = strides or pool
    (pt, pb), (pl, pr) = pad_amounts(7, pool, s, padding), pad_amounts(7, pool, s, padding)
    padded = tF.pad(nchw(xt), (pl, pr, pt, pb), value=-numpy.inf)
    yt = nhwc(tF.max_pool2d(padded, pool, s))
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)


@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(device, shape, training):
    c, momentum, eps = shape[-1], 0.9, 1e-3
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    mean0, var0 = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    xo, go, bo = ours(x, device), ours(gamma, device), ours(beta, device)
    mean_o = Tensor(backend.to_device(mean0.copy(), device))
    var_o = Tensor(backend.to_device(var0.copy(), device))
    yo = F.batch_norm(xo, go, bo, mean_o, var_o, momentum, eps, training)
    gy = rng.standard_normal(shape)
    yo.backward(backend.to_device(gy, device))

    xt, gt, bt = theirs(x), theirs(gamma), theirs(beta)
    mean_t, var_t = torch.tensor(mean0.copy()), torch.tensor(var0.copy())
    to_channels_first = (lambda t: t) if len(shape) == 2 else nchw
    back = (lambda t: t) if len(shape) == 2 else nhwc
    # PyTorch's momentum is Keras's (1 - momentum)
    yt = back(tF.batch_norm(to_channels_first(xt), mean_t, var_t, gt, bt, training, 1 - momentum, eps))
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)
    close(go.grad, gt.grad)
    close(bo.grad, bt.grad)
    close(mean_o.data, mean_t)
    if training:
        # PyTorch averages the unbiased batch variance; Keras (and minicnn) the biased one.
        m = x.size // c
        batch_var = x.reshape(-1, c).var(axis=0)
        close(var_o.data, var_t - torch.tensor((1 - momentum) * batch_var / (m - 1)))
    else:
        close(var_o.data, var_t)


@pytest.mark.parametrize("x_shape", [(6, 4), (3, 5, 2, 4)])
def test_dense(device, x_shape):
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal((4, 3)), rng.standard_normal(3)
    xo, Wo, bo = ours(x, device), ours(W, device), ours(b, device)
    yo = F.dense(xo, Wo, bo)
    gy = rng.standard_normal(yo.shape)
    yo.backward(backend.to_device(gy, device))
    xt, Wt, bt = theirs(x), theirs(W), theirs(b)
    yt = tF.linear(xt, Wt.T, bt)
    (yt * torch.tensor(gy)).sum().backward()
    for a, t in ((yo.data, yt), (xo.grad, xt.grad), (Wo.grad, Wt.grad), (bo.grad, bt.grad)):
        close(a, t)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("one_hot", [False, True])
def test_softmax_cross_entropy(device, smoothing, one_hot):
    logits, labels = rng.standard_normal((7, 5)) * 3, rng.integers(0, 5, 7)
    target = numpy.eye(5)[labels] if one_hot else labels
    lo = ours(logits, device)
    loss = F.softmax_cross_entropy(lo, backend.to_device(target, device), label_smoothing=smoothing)
    loss.backward()
    lt = theirs(logits)
    loss_t = tF.cross_entropy(lt, torch.tensor(target), label_smoothing=smoothing)
    loss_t.backward()
    close(loss.data, loss_t)
    close(lo.grad, lt.grad)


def optimizer_paths(ours_opt, torch_opt_cls, device, steps=5, **torch_kw):
    """Both optimizers' weights after each of ``steps`` steps on the same gradients. The
    data come from a generator of their own, not the module's: drawn from that one, they
    changed whenever a test above drew more (test_dense's second shape did), and one such
    draw left RMSprop with momentum 1.8e-9 (relative) from PyTorch, over rtol 1e-9."""
    own = numpy.random.default_rng(258)
    w0 = own.standard_normal(4)
    grads = own.standard_normal((steps, 4))
    wo = Tensor(backend.to_device(w0.copy(), device), requires_grad=True)
    ours_opt.build([wo])
    wt = torch.tensor(w0.copy(), requires_grad=True)
    opt_t = torch_opt_cls([wt], **torch_kw)
    for g in grads:
        wo.grad = backend.to_device(g, device)
        ours_opt.step()
        wt.grad = torch.tensor(g)
        opt_t.step()
        yield backend.to_numpy(wo.data), wt.detach().numpy()


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_step(device, nesterov):
    for a, b in optimizer_paths(SGD(0.1, momentum=0.9, nesterov=nesterov), torch.optim.SGD, device,
                                lr=0.1, momentum=0.9, nesterov=nesterov):
        numpy.testing.assert_allclose(a, b, rtol=1e-12)


def test_adam_step(device):
    # Keras adds epsilon to sqrt(v), PyTorch to sqrt(v_hat); with a tiny epsilon they agree.
    for a, b in optimizer_paths(Adam(0.01, epsilon=1e-12), torch.optim.Adam, device,
                                lr=0.01, eps=1e-12):
        numpy.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(device, approximate):
    x = rng.standard_normal((4, 3, 5)) * 3
    xo = ours(x, device)
    yo = F.gelu(xo, approximate)
    gy = rng.standard_normal(x.shape)
    yo.backward(backend.to_device(gy, device))
    xt = theirs(x)
    yt = tF.gelu(xt, approximate=approximate)
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)


def test_sgd_parameter_groups_and_l2_match_torch_param_groups(device):
    """Our lr_scale and l2 per group are PyTorch's per-group lr and weight_decay (airbench's
    optimizer), with Nesterov momentum, step for step."""
    w0, steps = [rng.standard_normal(3), rng.standard_normal(2)], rng.standard_normal((6, 5))
    wo = [Tensor(backend.to_device(w.copy(), device), requires_grad=True) for w in w0]
    ours_opt = SGD(0.01, momentum=0.85, nesterov=True)
    ours_opt.build([{"params": [wo[0]], "lr_scale": 64.0, "l2": 0.02}, {"params": [wo[1]], "l2": 1.3}])
    wt = [torch.tensor(w.copy(), requires_grad=True) for w in w0]
    opt_t = torch.optim.SGD([{"params": [wt[0]], "lr": 0.64, "weight_decay": 0.02},
                             {"params": [wt[1]], "weight_decay": 1.3}], lr=0.01, momentum=0.85, nesterov=True)
    for g in steps:
        wo[0].grad, wo[1].grad = backend.to_device(g[:3], device), backend.to_device(g[3:], device)
        wt[0].grad, wt[1].grad = torch.tensor(g[:3]), torch.tensor(g[3:])
        ours_opt.step()
        opt_t.step()
        for a, b in zip(wo, wt):
            numpy.testing.assert_allclose(backend.to_numpy(a.data), b.detach().numpy(), rtol=1e-12)


def test_seed003_6layer_trains_step_for_step_as_its_pytorch_twin():
    """Issue 17 saw minicnn's training loss above PyTorch's for seed003_6layer. From the same
    weights, on the same batches, with dropout off (its masks are the only draw the two
    engines cannot share), four steps of the tutorial's SGD (momentum 0.9, decay 1e-6) and
    max-norm constraint must give the same losses and weights as benchmarks/torch_reference.py's
    translation: the update rules agree, so a gap between whole runs is not in them."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import torch_reference
    from minicnn import zoo
    from minicnn.layers import Dropout

    import minicnn
    minicnn.set_seed(0)
    model, recipe = zoo.build("seed003_6layer")
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layer.rate = 0.0
    model.compile(recipe.optimizer(), "sparse_categorical_crossentropy")
    net, constrained = torch_reference.translate(model)
    torch_reference.copy_weights(model, net)
    params = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    opt, schedule = torch_reference.optimizer_for("seed003_6layer", net)
    data = numpy.random.default_rng(3)
    for step in range(4):
        x = data.random((16, 32, 32, 3), dtype=numpy.float32)
        y = data.integers(0, 10, 16)
        ours_loss = float(model.train_on_batch(x, y)[0])
        net.train()
        loss = tF.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        with torch.no_grad():
            for dense, max_value in constrained:
                norms = dense.weight.norm(dim=1, keepdim=True)
                dense.weight.mul_(norms.clamp(max=max_value) / (norms + 1e-7))
        assert ours_loss == pytest.approx(loss.item(), rel=1e-4), f"step {step}"
    for module, layer in zip(params, [l for l in model.layers if hasattr(l, "kernel")]):
        theirs_kernel = module.weight.detach().numpy()
        theirs_kernel = theirs_kernel.transpose(2, 3, 1, 0) if theirs_kernel.ndim == 4 else theirs_kernel.T
        scale = numpy.abs(theirs_kernel).max()
        numpy.testing.assert_allclose(layer.kernel.data, theirs_kernel, atol=1e-4 * scale)


@pytest.mark.parametrize("option", ["global_clipnorm", "clipnorm", "clipvalue"])
def test_gradient_clipping_matches_torch_clip_grad(device, option):
    """global_clipnorm is torch.nn.utils.clip_grad_norm_ over all parameters, clipnorm the
    same called on each parameter alone, clipvalue clip_grad_value_; then SGD with
    momentum, step for step. (PyTorch divides by norm + 1e-6: agreement to about 1e-8.)"""
    shapes = [(3, 4), (4,), (2, 2, 3)]
    w0 = [rng.standard_normal(s) for s in shapes]
    steps = [[rng.standard_normal(s) * 4 for s in shapes] for _ in range(4)]
    wo = [Tensor(backend.to_device(w.copy(), device), requires_grad=True) for w in w0]
    ours_opt = SGD(0.1, momentum=0.9, **{option: 1.5}).build(wo)
    wt = [torch.tensor(w.copy(), requires_grad=True) for w in w0]
    opt_t = torch.optim.SGD(wt, lr=0.1, momentum=0.9)
    for grads in steps:
        for a, b, g in zip(wo, wt, grads):
            a.grad, b.grad = backend.to_device(g, device), torch.tensor(g)
        if option == "global_clipnorm":
            torch.nn.utils.clip_grad_norm_(wt, 1.5)
        elif option == "clipnorm":
            for b in wt:
                torch.nn.utils.clip_grad_norm_([b], 1.5)
        else:
            torch.nn.utils.clip_grad_value_(wt, 1.5)
        ours_opt.step()
        opt_t.step()
        for a, b in zip(wo, wt):
            numpy.testing.assert_allclose(backend.to_numpy(a.data), b.detach().numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name, theirs_of", [
    ("elu", lambda t: tF.elu(t)), ("selu", tF.selu), ("silu", tF.silu), ("swish", tF.silu),
    ("softplus", tF.softplus), ("leaky_relu", lambda t: tF.leaky_relu(t, 0.2)), ("relu6", tF.relu6)])
def test_smooth_and_capped_activations(device, name, theirs_of):
    """activation='elu', 'selu', 'silu' / 'swish', 'softplus', 'leaky_relu' (Keras 3's
    slope 0.2) and 'relu6': values and gradients as PyTorch's, in float64, out to +-40."""
    from minicnn import activations
    x = numpy.concatenate([rng.standard_normal(30) * 3, [-40.0, -7.5, 7.5, 40.0]])
    xo = ours(x, device)
    yo = activations.get(name)[1](xo)
    gy = rng.standard_normal(x.shape)
    yo.backward(backend.to_device(gy, device))
    xt = theirs(x)
    yt = theirs_of(xt)
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)


@pytest.mark.parametrize("momentum, centered", [(0.0, False), (0.9, False), (0.5, True)])
def test_rmsprop_step(device, momentum, centered):
    """Keras adds epsilon under the root, PyTorch after it; with a tiny epsilon they agree."""
    from minicnn.optimizers import RMSprop
    for a, b in optimizer_paths(RMSprop(0.01, rho=0.9, momentum=momentum, epsilon=1e-14, centered=centered),
                                torch.optim.RMSprop, device, lr=0.01, alpha=0.9, momentum=momentum,
                                eps=1e-14, centered=centered):
        numpy.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


def test_adamw_step(device):
    from minicnn.optimizers import AdamW
    for a, b in optimizer_paths(AdamW(0.01, weight_decay=0.1, epsilon=1e-12), torch.optim.AdamW, device,
                                lr=0.01, weight_decay=0.1, eps=1e-12):
        numpy.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.fixture
def torch_float64_scalars():
    """PyTorch keeps NAdam's momentum product as a tensor of its default dtype, float32: a
    relative error near 1e-8 in it moves the weights 2e-10 (relative) off float64 arithmetic."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)


@pytest.mark.parametrize("name, ours_kw, theirs_cls, theirs_kw", [
    ("Nadam", {"epsilon": 1e-12}, "NAdam", {"eps": 1e-12}),  # momentum_decay 0.004, Keras's fixed schedule
    # epsilon: Keras's is added to u, PyTorch's to |g| inside the max; tiny, they agree
    ("Adamax", {"epsilon": 1e-30}, "Adamax", {"eps": 1e-30}),
    # Keras's epsilon sits under the root, PyTorch's after it; Keras starts the sum at 0.1, PyTorch at 0
    ("Adagrad", {"epsilon": 1e-30, "initial_accumulator_value": 0.1}, "Adagrad",
     {"eps": 1e-30, "initial_accumulator_value": 0.1}),
    ("Adadelta", {"rho": 0.9, "epsilon": 1e-6}, "Adadelta", {"rho": 0.9, "eps": 1e-6}),
])
def test_nadam_adamax_adagrad_adadelta_steps(device, torch_float64_scalars, name, ours_kw, theirs_cls, theirs_kw):
    from minicnn import optimizers
    lr = 1.0 if name == "Adadelta" else 0.01  # Adadelta's own scale: lr 1 is Zeiler's method
    for a, b in optimizer_paths(getattr(optimizers, name)(lr, **ours_kw), getattr(torch.optim, theirs_cls), device,
                                steps=8, lr=lr, **theirs_kw):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kernel, multiplier, dilation", [((3, 3), 1, 1), ((2, 3), 2, 1), ((3, 2), 1, (2, 3))])
def test_depthwise_conv2d(device, strides, padding, kernel, multiplier, dilation):
    """PyTorch's grouped convolution with one group per channel (groups=C), weight
    (C*M, 1, kh, kw), out channel c*M + m: the same as Keras's depthwise layout."""
    C = 3
    x, W, b = rng.standard_normal((2, 7, 8, C)), rng.standard_normal(kernel + (C, multiplier)), rng.standard_normal(C * multiplier)
    xo, Wo, bo = ours(x, device), ours(W, device), ours(b, device)
    yo = F.depthwise_conv2d(xo, Wo, bo, strides, padding, dilation)
    gy = rng.standard_normal(yo.shape)
    yo.backward(backend.to_device(gy, device))
    xt, Wt, bt = theirs(x), theirs(W), theirs(b)
    (pt, pb), (pl, pr) = conv.conv_setup("depthwise", x, W, strides, padding, dilation)[1]
    weight = Wt.permute(2, 3, 0, 1).reshape(C * multiplier, 1, *kernel)
    yt = nhwc(tF.conv2d(tF.pad(nchw(xt), (pl, pr, pt, pb)), weight, bt, stride=strides, groups=C,
                        dilation=conv.pair(dilation, "dilation")))
    (yt * torch.tensor(gy)).sum().backward()
    close(yo.data, yt)
    close(xo.grad, xt.grad)
    close(Wo.grad, Wt.grad)
    close(bo.grad, bt.grad)


def test_class_weighted_cross_entropy(device):
    """PyTorch's cross_entropy(weight=w) summed, over N: a loss weighted per true class as
    Keras's class_weight weighs it (PyTorch's 'mean' would divide by the weights' sum)."""
    logits, labels, class_weights = rng.standard_normal((7, 5)), rng.integers(0, 5, 7), rng.uniform(0, 2, 5)
    lo = ours(logits, device)
    loss = F.softmax_cross_entropy(lo, backend.to_device(labels, device),
                                   sample_weight=backend.to_device(class_weights[labels], device))
    loss.backward()
    lt = theirs(logits)
    loss_t = tF.cross_entropy(lt, torch.tensor(labels), weight=torch.tensor(class_weights), reduction="sum") / 7
    loss_t.backward()
    close(loss.data, loss_t)
    close(lo.grad, lt.grad)
