"""Every fast kernel against the plain reference implementation, on random inputs.

The fast paths (functions/*_cpu.py on NumPy, functions/fast_gpu.py on CuPy) are on by
default; ``backend.fast_kernels(False)`` selects the reference (im2col, tap loops). Both
must give the same outputs and gradients: float64 to 1e-10, float32 to float32 tolerance.
The GPU half runs wherever CuPy sees a GPU.
"""
import numpy
import pytest
from hypothesis import given, strategies as st

import minicnn
from minicnn import backend, functional as F
from minicnn.distributed import threads
from minicnn.functions import activation, conv, conv_cpu, normalization, pooling
from conftest import requires_gpu, tensor


def _both(fn):
    """fn() under the fast kernels and under the reference: two results, as host arrays."""
    results = []
    for fast in (True, False):
        with backend.fast_kernels(fast):
            results.append([None if a is None else backend.to_numpy(a) for a in fn()])
    return results


def _assert_same(fast, reference, dtype):
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == numpy.float64 else dict(rtol=2e-5, atol=2e-5)
    assert len(fast) == len(reference)
    for a, b in zip(fast, reference):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == b.shape and a.dtype == b.dtype
            numpy.testing.assert_allclose(a, b, **tol)


@st.composite
def conv_cases(draw):
    return dict(n=draw(st.integers(1, 3)), h=draw(st.integers(3, 9)), w=draw(st.integers(3, 14)),
                c=draw(st.sampled_from([1, 3, 8, 12, 20])), f=draw(st.integers(1, 5)),
                kh=draw(st.integers(1, 3)), kw=draw(st.integers(1, 3)),
                strides=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                padding=draw(st.sampled_from(["valid", "same", 1, (0, 2)])),
                bias=draw(st.booleans()), input_grad=draw(st.booleans()),
                dtype=draw(st.sampled_from([numpy.float64, numpy.float32])), seed=draw(st.integers(0, 999)))


@given(case=conv_cases())
def test_conv_fast_equals_reference(device, case):
    """Planar im2col (thin inputs), kernel-row unrolling (C >= 12, stride 1 across),
    blocked im2col (the rest) and the GPU kernels against im2col + GEMM: outputs, gx (or
    its absence), gW and gb."""
    rng = numpy.random.default_rng(case["seed"])
    xp, dt = backend.xp(), case["dtype"]
    x = xp.asarray(rng.standard_normal((case["n"], case["h"], case["w"], case["c"])), dtype=dt)
    W = xp.asarray(rng.standard_normal((case["kh"], case["kw"], case["c"], case["f"])), dtype=dt)
    b = xp.asarray(rng.standard_normal(case["f"]), dtype=dt) if case["bias"] else None
    gy_holder = {}

    def run():
        y, cache = conv.conv2d_forward(x, W, b, case["strides"], case["padding"], case["input_grad"])
        gy = gy_holder.setdefault("gy", xp.asarray(rng.standard_normal(y.shape), dtype=dt))
        return (y,) + conv.conv2d_backward(gy, cache)
    fast, reference = _both(run)
    _assert_same(fast, reference, dt)


@st.composite
def depthwise_cases(draw):
    # h >= 5: a 3-row kernel dilated by 2 spans 5 rows, and "valid" needs it to fit
    return dict(n=draw(st.integers(1, 5)), h=draw(st.integers(5, 9)), w=draw(st.integers(4, 9)),
                c=draw(st.integers(1, 6)), m=draw(st.integers(1, 3)), kh=draw(st.integers(1, 3)),
                kw=draw(st.integers(1, 3)), strides=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                dilation=(draw(st.integers(1, 2)), 1), padding=draw(st.sampled_from(["valid", "same", 1])),
                bias=draw(st.booleans()), tiny_chunks=draw(st.booleans()),
                dtype=draw(st.sampled_from([numpy.float64, numpy.float32])), seed=draw(st.integers(0, 999)))


@given(case=depthwise_cases())
def test_depthwise_fast_equals_reference(device, case, monkeypatch):
    """The threaded, cache-blocked depthwise loop (depthwise_conv_cpu.py) against the plain
    tap loop: y, gx, gW, gb; tiny_chunks makes every thread's share several chunks."""
    from minicnn.functions import depthwise_conv
    monkeypatch.setattr(threads, "CHUNK_BYTES", 1 if case["tiny_chunks"] else threads.CHUNK_BYTES)
    monkeypatch.setattr(threads, "CHUNK_MIN_PIXELS", 1)
    rng = numpy.random.default_rng(case["seed"])
    xp, dt = backend.xp(), case["dtype"]
    x = xp.asarray(rng.standard_normal((case["n"], case["h"], case["w"], case["c"])), dtype=dt)
    W = xp.asarray(rng.standard_normal((case["kh"], case["kw"], case["c"], case["m"])), dtype=dt)
    b = xp.asarray(rng.standard_normal(case["c"] * case["m"]), dtype=dt) if case["bias"] else None
    gy_holder = {}

    def run():
        y, cache = depthwise_conv.depthwise_conv2d_forward(x, W, b, case["strides"], case["padding"], case["dilation"])
        gy = gy_holder.setdefault("gy", xp.asarray(rng.standard_normal(y.shape), dtype=dt))
        return (y,) + depthwise_conv.depthwise_conv2d_backward(gy, cache)
    fast, reference = _both(run)
    _assert_same(fast, reference, dt)


def test_each_cpu_conv_path_is_taken_where_intended():
    """The dispatch rule: planar im2col for thin inputs (RGB), any stride; kernel rows for
    wide, many-channel inputs at stride 1 across; blocked im2col for narrow images and
    strides across."""
    assert conv.cpu_path(C=3, kw=3, sx=1, ow=32) == "planar"            # RGB
    assert conv.cpu_path(C=8, kw=3, sx=2, ow=16) == "planar"            # thin, strided
    assert conv.cpu_path(C=32, kw=3, sx=1, ow=30) == "rows"
    assert conv.cpu_path(C=512, kw=3, sx=1, ow=4) == "im2col-blocked"   # 6/4 columns wasted
    assert conv.cpu_path(C=32, kw=3, sx=2, ow=16) == "im2col-blocked"   # stride across


@st.composite
def pool_cases(draw):
    return dict(n=draw(st.integers(1, 2)), h=draw(st.integers(2, 9)), w=draw(st.integers(2, 9)),
                c=draw(st.integers(1, 4)), pool=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                strides=draw(st.sampled_from([None, 1, 2, (2, 1)])),
                padding=draw(st.sampled_from(["valid", "same"])), ties=draw(st.booleans()),
                seed=draw(st.integers(0, 999)))


@given(case=pool_cases())
def test_max_pool_fast_equals_reference_including_ties(device, case):
    """Values rounded to a coarse grid make ties common: the first maximum must win in both."""
    ph, pw = case["pool"]
    if case["h"] < ph or case["w"] < pw:
        return
    rng = numpy.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"]))
    if case["ties"]:
        x = numpy.round(x)
    x = backend.xp().asarray(x)
    gy_holder = {}

    def run():
        y, cache = pooling.max_pool2d_forward(x, case["pool"], case["strides"], case["padding"])
        gy = gy_holder.setdefault("gy", backend.xp().asarray(rng.standard_normal(y.shape)))
        return y, pooling.max_pool2d_backward(gy, cache)
    fast, reference = _both(run)
    _assert_same(fast, reference, numpy.float64)


@given(shape=st.sampled_from([(5, 3), (2, 4, 4, 3), (3, 2, 5, 1)]), seed=st.integers(0, 99))
def test_relu_fast_equals_reference(device, shape, seed):
    rng = numpy.random.default_rng(seed)
    x = backend.xp().asarray(numpy.round(rng.standard_normal(shape), 1))  # exact zeros too
    gy = backend.xp().asarray(rng.standard_normal(shape))

    def run():
        y, mask = activation.relu_forward(x)
        return y, activation.relu_backward(gy, mask)
    fast, reference = _both(run)
    _assert_same(fast, reference, numpy.float64)


@given(shape=st.sampled_from([(5, 3), (2, 4, 4, 3), (3, 2, 5, 1), (64, 8, 8, 4)]), seed=st.integers(0, 99))
def test_bias_relu_fast_equals_reference(device, shape, seed):
    """A layer's bias and ReLU as one op: on a GPU one kernel forward and one pass backward
    (the bias gradient's partial sums: one share of rows for the small shapes, 128 for
    4,096 rows), against activation.py's array code. x + b is exactly 0 in places."""
    rng = numpy.random.default_rng(seed)
    x = backend.xp().asarray(numpy.round(rng.standard_normal(shape), 1))
    b = backend.xp().asarray(numpy.round(rng.standard_normal(shape[-1]), 1))
    gy = backend.xp().asarray(rng.standard_normal(shape))

    def run():
        y, mask = activation.bias_relu_forward(x, b)
        return (y, *activation.bias_relu_backward(gy, mask))
    fast, reference = _both(run)
    _assert_same(fast, reference, numpy.float64)
    assert fast[1].shape == shape and fast[2].shape == shape[-1:]


def test_over_batch_covers_every_sample_once_and_reraises():
    seen = numpy.zeros(10, dtype=int)

    def mark(s):
        seen[s] += 1
    threads.over_batch(mark, 10)
    assert (seen == 1).all()

    def fail(s):
        raise ValueError("from a worker")
    with pytest.raises(ValueError, match="from a worker"):
        threads.over_batch(fail, 4)


def test_small_work_stays_on_the_calling_thread(monkeypatch):
    """Under POOL_MIN_BYTES the work is one call on the caller's thread (a hand-off to the
    pool costs more than a small NumPy pass); at or over it, the batch is split."""
    import threading
    monkeypatch.setattr(threads, "THREADS", 2)
    monkeypatch.setattr(threads, "POOL_MIN_BYTES", 1000)
    calls = []

    def work(s):
        calls.append((s, threading.get_ident()))
    threads.over_batch(work, 8, nbytes=999)
    assert calls == [(slice(0, 8), threading.get_ident())]
    calls.clear()
    threads.over_batch(work, 8, nbytes=1000)
    assert sorted(c[0].start for c in calls) == [0, 4]
    assert all(ident != threading.get_ident() for _, ident in calls)
    calls.clear()
    threads.over_batch(work, 8)  # no size given: split
    assert len(calls) == 2


def test_pool_threads_keep_the_caller_s_numpy_errstate(monkeypatch):
    """A float16 overflow inside ``with numpy.errstate(over="ignore")`` warns on no thread
    (a scaled backward expects it); outside one, the pool threads still warn."""
    import warnings
    monkeypatch.setattr(threads, "THREADS", 2)
    big = numpy.full(8, 60000, numpy.float16)

    def square(s):
        return big[s] * big[s]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with numpy.errstate(over="ignore"):
            parts = threads.over_batch(square, 8)
    assert len(parts) == 2 and all(numpy.isinf(p).all() for p in parts)
    with pytest.warns(RuntimeWarning, match="overflow"):
        threads.over_batch(square, 8)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_sum_over_batch_is_the_sum_over_all_but_the_last_axis(n):
    a = numpy.random.default_rng(n).standard_normal((n, 3, 5, 4)).astype(numpy.float32)
    total = threads.sum_over_batch(a)
    assert total.dtype == numpy.float32 and total.shape == (4,)
    numpy.testing.assert_allclose(total, a.astype(numpy.float64).sum(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    # partial sums are added in batch order, so repeated calls agree to the last bit
    assert all((threads.sum_over_batch(a) == total).all() for _ in range(5))


def test_unroll_rows_layout():
    """rows[n, r, c, i] is padded input row r*sy + i at column c (the docstring's definition)."""
    x = numpy.arange(2 * 5 * 4 * 3, dtype=numpy.float32).reshape(2, 5, 4, 3)
    rows = conv_cpu.unroll_rows(x, 3, 2, 2)
    assert rows.shape == (2, 2, 4, 3, 3)
    for r in range(2):
        for i in range(3):
            numpy.testing.assert_array_equal(rows[:, r, :, i, :], x[:, 2 * r + i, :, :])


def test_fast_kernels_pass_float64_gradient_checks_in_a_model(device):
    """A small seed-like stack through autograd with the fast kernels: conv (RGB and wide
    inputs, same and valid), relu and 2x2 pooling, checked against finite differences."""
    rng = numpy.random.default_rng(3)
    x = tensor(rng.standard_normal((2, 6, 6, 3)), device)
    W1 = tensor(rng.standard_normal((3, 3, 3, 8)) * 0.3, device)
    W2 = tensor(rng.standard_normal((3, 3, 8, 4)) * 0.3, device)

    def net(x, W1, W2):
        h = F.conv2d(x, W1, padding="same").relu()
        return F.max_pool2d(F.conv2d(h, W2), 2)
    assert minicnn.gradcheck(net, [x, W1, W2], atol=1e-5, rtol=1e-4).ok


@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 30])
@pytest.mark.parametrize("c, padding, strides", [(8, "same", 1), (3, "same", 1), (8, "valid", (1, 2))])
def test_blocked_conv_is_the_same_for_any_chunk_size(monkeypatch, chunk_bytes, c, padding, strides):
    """The CPU convolutions split the batch over threads and each share into chunks; one
    image per chunk, a few, or the whole share must all give the reference's numbers (7
    images: the shares and the chunks do not divide evenly)."""
    monkeypatch.setattr(threads, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(threads, "CHUNK_MIN_PIXELS", 1)
    rng = numpy.random.default_rng(chunk_bytes + c)
    x = rng.standard_normal((7, 6, 9, c))
    W = rng.standard_normal((3, 3, c, 5))
    b = rng.standard_normal(5)
    gy_holder = {}

    def run():
        y, cache = conv.conv2d_forward(x, W, b, strides, padding)
        gy = gy_holder.setdefault("gy", rng.standard_normal(y.shape))
        return (y,) + conv.conv2d_backward(gy, cache)
    with backend.device("cpu"):
        fast, reference = _both(run)
    _assert_same(fast, reference, numpy.float64)


def test_chunks_of_covers_a_share_in_order():
    share = slice(3, 17)
    # (bytes per image, pixels per image) -> images per chunk: as many as fit in 40 bytes,
    # at least one, and at least 8 pixels' worth
    for bytes_per_image, pixels, step in [(10, 8, 4), (1 << 40, 8, 1), (1 << 40, 3, 3)]:
        with pytest.MonkeyPatch.context() as m:
            m.setattr(threads, "CHUNK_BYTES", 40)
            m.setattr(threads, "CHUNK_MIN_PIXELS", 8)
            parts = threads.chunks_of(share, bytes_per_image, pixels)
        assert len(parts) == -(-14 // step)
        assert parts[0].start == 3 and parts[-1].stop == 17
        assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
        assert all(p.stop - p.start == step for p in parts[:-1])


def test_blas_threads_are_given_back_after_a_blocked_convolution():
    """Inside the blocked convolutions BLAS runs on one thread per worker; afterwards the
    user's own NumPy code must get BLAS's threads back, also when a worker raised."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    before = blas_threads()
    seen = []
    threads.over_batch(lambda s: seen.append(blas_threads()), 4, blas_threads=1)
    if threads.THREADS > 1:
        assert all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before

    def fail(s):
        raise RuntimeError("worker failed")
    with pytest.raises(RuntimeError):
        threads.over_batch(fail, 4, blas_threads=1)
    assert blas_threads() == before


@given(shape=st.sampled_from([(1, 5), (7, 33), (3, 4, 5, 6), (9, 2, 3, 8), (40, 3, 3, 2)]),
       dtype=st.sampled_from([numpy.float64, numpy.float32]), seed=st.integers(0, 99),
       offset=st.sampled_from([0.0, 100.0]))
def test_batch_norm_fast_equals_reference(device, shape, dtype, seed, offset):
    """Threaded batch-norm (CPU) and the per-channel-sum kernels (GPU, fast_gpu_sums.py)
    against the reference: y, the batch statistics the layer averages, and gx, ggamma,
    gbeta. offset: a mean far from zero, where a plain one-pass variance (E[x^2] - E[x]^2)
    would lose the digits the two-pass and the shifted one-pass ones keep. (40, 3, 3, 2):
    360 rows, enough for the GPU sums to split them into interleaved shares."""
    rng = numpy.random.default_rng(seed)
    x = (rng.standard_normal(shape) + offset).astype(dtype)
    gamma, beta = rng.standard_normal(shape[-1]).astype(dtype), rng.standard_normal(shape[-1]).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    def run(x, gamma, gy, xp=backend.xp()):
        x, gamma, gy = xp.asarray(x), xp.asarray(gamma), xp.asarray(gy)
        y, cache = normalization.batch_norm_train_forward(x, gamma, xp.asarray(beta, dtype=x.dtype), 1e-3)
        return (y, cache.mean, cache.var) + normalization.batch_norm_train_backward(gy, cache)
    fast, reference = _both(lambda: run(x, gamma, gy))
    if dtype == numpy.float64:
        _assert_same(fast, reference, dtype)
        return
    # float32: both round differently (sums in another order), so each is compared with
    # the float64 result: the fast one may be off by twice the reference's own error, or by
    # float32 tolerance (1e-4 of the largest value), whichever is larger.
    with backend.device("cpu"), backend.fast_kernels(False):
        exact = run(x.astype(numpy.float64), gamma.astype(numpy.float64), gy.astype(numpy.float64), numpy)
    for f, r, e in zip(fast, reference, exact):
        assert f.dtype == r.dtype == numpy.float32 and f.shape == e.shape
        allowed = max(2 * numpy.abs(r - e).max(), 1e-4 * (1 + numpy.abs(e).max()))
        assert numpy.abs(f - e).max() <= allowed


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
def test_moving_averages_in_one_kernel_equal_the_array_code(device, dtype):
    """normalization.update_moving_averages: the GPU's one kernel for both averages against
    the array code (moving = moving * momentum + batch * (1 - momentum)), in place."""
    rng = numpy.random.default_rng(3)
    start = [rng.standard_normal(7).astype(dtype) for _ in range(4)]

    def run():
        moving_mean, moving_var, mean, var = (backend.to_device(a.copy(), device) for a in start)
        normalization.update_moving_averages(moving_mean, moving_var, mean, var, 0.9)
        return moving_mean, moving_var
    fast, reference = _both(run)
    _assert_same(fast, reference, dtype)
    numpy.testing.assert_allclose(reference[0], start[0] * 0.9 + start[2] * 0.1, rtol=1e-6)
    numpy.testing.assert_allclose(reference[1], start[1] * 0.9 + start[3] * 0.1, rtol=1e-6)


@pytest.mark.parametrize("layout", ["transposed x", "broadcast gy", "sliced"])
def test_batch_norm_fast_takes_arrays_of_any_layout(device, layout):
    """The fast batch-norm works on wide views of its arrays (CPU) or flat copies of them
    (GPU): a non-contiguous input (a transposed or sliced image, the broadcast gradient a
    mean's backward passes on) must give the reference's numbers too, not results written
    into a lost copy."""
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((4, 6, 5, 8))
    gy = rng.standard_normal(x.shape)
    xp = backend.xp()
    if layout == "transposed x":
        x = xp.ascontiguousarray(xp.asarray(x).transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
        gy = xp.asarray(gy)
    elif layout == "broadcast gy":
        x = xp.asarray(x)
        gy = xp.broadcast_to(xp.asarray(rng.standard_normal((4, 1, 1, 8))), x.shape)
    else:
        x = xp.asarray(rng.standard_normal((4, 6, 10, 8)))[:, :, ::2]
        gy = xp.asarray(rng.standard_normal((4, 6, 10, 8)))[:, :, 1::2]
    assert not (x.flags.c_contiguous and gy.flags.c_contiguous)
    gamma, beta = xp.asarray(rng.standard_normal(8)), xp.asarray(rng.standard_normal(8))

    def run():
        y, cache = normalization.batch_norm_train_forward(x, gamma, beta, 1e-3)
        return (y, cache.x_hat) + normalization.batch_norm_train_backward(gy, cache)
    fast, reference = _both(run)
    _assert_same(fast, reference, numpy.float64)


@requires_gpu
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (4096, 32), (70001, 3), (300, 2, 2, 200), (2, 16, 16, 64)])
def test_channel_sums_on_the_gpu_equal_numpy(shape):
    """fast_gpu_sums.channel_sums (a conv's bias gradient): every row counted once, from one
    share to MAX_PARTS of them. Small integers, so float32 sums are exact in any order."""
    import cupy
    from minicnn.functions import fast_gpu_sums
    a = numpy.random.default_rng(0).integers(-8, 9, shape).astype(numpy.float32)
    got = fast_gpu_sums.channel_sums(cupy.asarray(a))
    assert got.dtype == numpy.float32 and got.shape == (shape[-1],)
    numpy.testing.assert_array_equal(cupy.asnumpy(got), a.reshape(-1, shape[-1]).sum(axis=0))


@requires_gpu
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32, numpy.float16])
def test_max_norm_on_the_gpu_equals_the_reference_in_place(dtype):
    """constraints.MaxNorm as the optimizer applies it, in place (constraints.apply): on a GPU
    through fast_gpu_updates.max_norm_ where the norm is over every axis but the last, else
    through its array code. Both ways, for a Dense kernel (Keras's axis=0, also written -2),
    a Conv2D kernel (axis [0, 1, 2]) large enough for several partial rows, and axes the
    kernels do not take (Dense axis=1, a norm over [0, 1], one norm for the whole array with
    axis=None, a vector's): the same weights,
    still this array, of the same dtype. On the stand-in, the kernel path is 2 or 3 launches
    (one more for float16, whose partial rows are summed in float32) where the array code is 8."""
    import cupy
    from minicnn import constraints
    rng = numpy.random.default_rng(8)
    cases = [((6, 5), 0, True), ((6, 5), -2, True), ((3, 3, 64, 16), [0, 1, 2], True),
             ((6, 5), 1, False), ((3, 3, 4, 6), [0, 1], False), ((6, 5), None, False), ((7,), 0, False)]
    for shape, axis, by_kernel in cases:
        start = rng.standard_normal(shape) * rng.uniform(0.05, 0.6, shape[-1])
        results = []
        for fast in (True, False):
            with backend.fast_kernels(fast):
                w = cupy.asarray(start, dtype=dtype)
                before = dict(getattr(cupy, "stand_in_launches", {}))
                constraints.apply(constraints.MaxNorm(1.5, axis=axis), w)
                if fast and getattr(cupy, "STAND_IN", False):
                    launches = sum(cupy.stand_in_launches.values()) - sum(before.values())
                    most = 4 if dtype == numpy.float16 else 3
                    assert launches <= most if by_kernel else launches == 8, (shape, axis, launches)
                assert w.dtype == dtype
                results.append(cupy.asnumpy(w))
        reference = constraints.MaxNorm(1.5, axis=axis)(start.astype(dtype))
        tol = {numpy.float64: 1e-12, numpy.float32: 1e-6, numpy.float16: 2e-3}[dtype]
        for got in results:
            numpy.testing.assert_allclose(got.astype(numpy.float64), reference.astype(numpy.float64),
                                          rtol=tol, atol=tol)


@requires_gpu
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
@pytest.mark.parametrize("label_dtype", [numpy.int64, numpy.int32, numpy.uint8])
def test_softmax_cross_entropy_and_dropout_fused_on_the_gpu_equal_the_reference(reduction, dtype, label_dtype):
    """fast_gpu's one-kernel loss (and its gradient, also with each row weighted, as
    class_weight and sample_weight weigh them), its one-hot targets from integer labels of any
    integer dtype, and its dropout mask against loss.py's and dropout.py's CuPy array code:
    the same loss, gradient, targets and mask."""
    import cupy
    from minicnn.functions import dropout, loss as loss_fn
    rng = numpy.random.default_rng(6)
    logits = cupy.asarray(rng.standard_normal((33, 10)) * 4, dtype=dtype)
    labels = cupy.asarray(rng.integers(0, 10, 33).astype(label_dtype))
    for columns in (labels, labels[:, None]):  # (N,) and (N, 1)
        with minicnn.device("gpu"):
            fast, reference = _both(lambda: [loss_fn.one_hot_targets(columns, 10, numpy.dtype(dtype))])
        numpy.testing.assert_array_equal(fast[0], reference[0])
        assert fast[0].dtype == dtype and fast[0].sum() == 33

    weights = cupy.asarray(rng.uniform(0, 3, 33), dtype=numpy.float32)  # class_weight / sample_weight

    def run():
        value, cache = loss_fn.softmax_cross_entropy_forward(logits, labels, 0.1, reduction, check=False)
        weighted, weighted_cache = loss_fn.softmax_cross_entropy_forward(logits, labels, 0.1, reduction, check=False,
                                                                          sample_weight=weights)
        mask = dropout.dropout_mask((4, 5, 6), 0.3, cupy.random.default_rng(7), numpy.dtype(dtype))
        gloss = cupy.asarray(0.5, dtype=dtype)
        return (value, loss_fn.softmax_cross_entropy_backward(gloss, cache), mask, weighted,
                loss_fn.softmax_cross_entropy_backward(gloss, weighted_cache))
    with minicnn.device("gpu"):
        fast, reference = _both(run)
    _assert_same(fast, reference, dtype)


def test_float16_kernels_equal_the_float16_reference_and_float32(device):
    """float16 (mixed precision) runs the same kernels (fast_gpu.KERNEL_DTYPES) with CuPy's
    float16, which computes in float between loads and stores, its sums in float
    (fast_gpu_sums.ACCUMULATOR). On each device the fast path must equal the reference to
    float16's precision, keep float16, and stay near the float32 results. A bias gradient
    summed over 131072 rows, where float16 running sums would be off by percents, is among
    them."""
    rng = numpy.random.default_rng(0)
    xp = backend.xp()
    x32 = xp.asarray(rng.standard_normal((2, 6, 6, 8)), dtype=numpy.float32)
    W32 = xp.asarray(rng.standard_normal((3, 3, 8, 4)) * 0.2, dtype=numpy.float32)
    b32 = xp.asarray(rng.standard_normal(8), dtype=numpy.float32)
    # 131072 rows: each thread of the bias sums adds 128 of them, 1024 partial sums follow, and
    # the totals (about 32768) are where float16's steps are 32
    g32 = xp.asarray(rng.random((131072, 8)) * 0.25 + 0.125, dtype=numpy.float32)

    def ops(x, W, b, g):
        y, cache = conv.conv2d_forward(x, W, None, 1, "same")
        gx, gW, _ = conv.conv2d_backward(y, cache)
        pooled, pool_cache = pooling.max_pool2d_forward(x, 2)
        g_pool = pooling.max_pool2d_backward(pooled, pool_cache)
        relu, positive = activation.relu_forward(x)
        g_relu = activation.relu_backward(x, positive)
        gelu, slope = activation.gelu_forward(x)
        biased, mask = activation.bias_relu_forward(x, b)
        g_biased, g_bias = activation.bias_relu_backward(x, mask)
        _, g_long_bias = activation.bias_relu_backward(g, g > 0)
        return [y, gx, gW, pooled, g_pool, relu, g_relu, gelu, slope, biased, g_biased, g_bias, g_long_bias]

    def half():
        return ops(*(a.astype(numpy.float16) for a in (x32, W32, b32, g32)))
    fast, reference = _both(half)
    single = [backend.to_numpy(a) for a in ops(x32, W32, b32, g32)]
    for f, r, s in zip(fast, reference, single):
        assert f.dtype == r.dtype == numpy.float16
        scale = float(abs(s).max()) + 1
        numpy.testing.assert_allclose(f.astype(numpy.float32), r.astype(numpy.float32), atol=2e-3 * scale)
        numpy.testing.assert_allclose(f.astype(numpy.float32), s, atol=2e-3 * scale)
    exact = backend.to_numpy(g32.astype(numpy.float16)).astype(numpy.float64).sum(axis=0)
    numpy.testing.assert_allclose(fast[-1], exact, rtol=1e-3)  # float sums, rounded once to half

@requires_gpu
def test_float16_kernels_keep_their_running_sums_in_float():
    """One thread adding 4096 float16 values of 0.2: a float16 running sum stops at 256,
    where float16's steps (0.25 apart) are wider than twice what it adds; a float one
    reaches 819.2, rounded once to float16 at the store (fast_gpu_sums.ACCUMULATOR)."""
    import cupy
    from minicnn.functions import fast_gpu_sums
    with minicnn.device("gpu"):
        a = cupy.full(4096, 0.2, dtype=numpy.float16)
        total = cupy.empty((1, 1, 1), dtype=numpy.float16)
        fast_gpu_sums.channel_sums_kernel(a, 4096, 1, 1, total)  # rows, C, parts: one thread
        assert float(total[0, 0, 0]) == pytest.approx(819.2, rel=1e-3)
