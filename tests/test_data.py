"""The input pipeline: Loader batching/shuffling/normalisation and the augmentation,
checked against plain NumPy references (numpy.pad, slicing, rot90) on both devices."""
import numpy
import pytest
from hypothesis import given, strategies as st

from minicnn import backend
from minicnn.data import Augment, Loader, affine_sample, augmentation, channel_stats, epoch_seed


def images(n=5, h=6, w=7, c=2, seed=0):
    return numpy.random.default_rng(seed).random((n, h, w, c)).astype(numpy.float32)


def on(device, *arrays):
    return [backend.to_device(a, device) for a in arrays]


def shift_reference(x, dy, dx, mode):
    """Image moved down by dy and right by dx, the uncovered border filled per numpy.pad."""
    h, w = x.shape[:2]
    pad = max(abs(dy), abs(dx))
    padded = numpy.pad(x, ((pad, pad), (pad, pad), (0, 0)),
                       mode={"constant": "constant", "nearest": "edge", "reflect": "reflect"}[mode])
    return padded[pad - dy:pad - dy + h, pad - dx:pad - dx + w]


@given(dy=st.integers(-3, 3), dx=st.integers(-3, 3), mode=st.sampled_from(["constant", "nearest", "reflect"]))
def test_integer_shifts_match_numpy_pad_and_crop(device, dy, dx, mode):
    x = images(2)
    zeros = numpy.zeros(2, numpy.float32)
    out = affine_sample(*on(device, x, zeros, numpy.full(2, dy, numpy.float32),
                            numpy.full(2, dx, numpy.float32), numpy.zeros(2, bool)), fill_mode=mode)
    for k in range(2):
        numpy.testing.assert_array_equal(backend.to_numpy(out)[k], shift_reference(x[k], dy, dx, mode))


def test_flip_mirrors_and_quarter_turn_matches_rot90(device):
    x = images(2, 6, 6)
    zeros = numpy.zeros(2, numpy.float32)
    flipped = affine_sample(*on(device, x, zeros, zeros, zeros, numpy.array([True, False])))
    numpy.testing.assert_array_equal(backend.to_numpy(flipped)[0], x[0, :, ::-1])
    numpy.testing.assert_array_equal(backend.to_numpy(flipped)[1], x[1])
    turned = affine_sample(*on(device, x, numpy.full(2, numpy.pi / 2, numpy.float32), zeros, zeros,
                               numpy.zeros(2, bool)))
    expected = numpy.rot90(x, k=1, axes=(1, 2))
    assert numpy.allclose(backend.to_numpy(turned), expected, atol=1e-4) or \
        numpy.allclose(backend.to_numpy(turned), numpy.rot90(x, k=-1, axes=(1, 2)), atol=1e-4)


def test_half_pixel_shift_blends_neighbours(device):
    x = images(1, 4, 4, 1)
    out = backend.to_numpy(affine_sample(*on(device, x, numpy.zeros(1, numpy.float32),
                                             numpy.zeros(1, numpy.float32), numpy.full(1, 0.5, numpy.float32),
                                             numpy.zeros(1, bool)), fill_mode="nearest"))
    # moved right by half a pixel: each output is the mean of its pixel and the one to its left
    numpy.testing.assert_allclose(out[0, :, 1:], (x[0, :, 1:] + x[0, :, :-1]) / 2, rtol=1e-6)


def test_augment_draws_flips_and_shifts_within_range(device):
    xp = backend.get_array_module(backend.to_device(numpy.zeros(1), device))
    rng = backend.default_rng(0, xp)
    x = numpy.zeros((400, 9, 9, 1), numpy.float32)
    x[:, 4, 4] = 1  # a single bright pixel: where it lands shows the shift
    out = backend.to_numpy(Augment(width_shift_range=2, height_shift_range=2, fill_mode="constant")(
        backend.to_device(x, device), rng))
    where = numpy.nonzero(out[..., 0].reshape(400, -1) == 1)[1]  # flat position of the pixel
    rows, cols = where // 9, where % 9
    assert len(rows) == 400 and set(rows - 4) == set(range(-2, 3)) and set(cols - 4) == set(range(-2, 3))
    ramp = numpy.tile(numpy.arange(9, dtype=numpy.float32), (400, 9, 1))[..., None]
    mirrored = backend.to_numpy(Augment(horizontal_flip=True)(backend.to_device(ramp, device), rng))
    flipped = (mirrored[:, 0, 0, 0] == 8).mean()
    assert 0.4 < flipped < 0.6 and set(mirrored[:, 0, 0, 0]) == {0.0, 8.0}
    assert augmentation("none") is None
    with pytest.raises(ValueError, match="unknown augmentation 'zoom'"):
        augmentation("zoom")


def test_loader_batches_cover_every_sample_once_in_a_seeded_order(device):
    x = numpy.arange(10, dtype=numpy.float32)[:, None, None, None] * numpy.ones((10, 2, 2, 1), numpy.float32)
    y = numpy.arange(10)
    loader = Loader(x, y, batch_size=4, seed=3, device=device)
    assert len(loader) == 3 and loader.num_samples == 10
    def epoch_labels(l, e):
        return numpy.concatenate([backend.to_numpy(yb) for _, yb in l.batches(e)])
    first, again = epoch_labels(loader, 0), epoch_labels(Loader(x, y, 4, seed=3, device=device), 0)
    assert sorted(first) == list(range(10))
    numpy.testing.assert_array_equal(first, again)                 # same seed, same epoch: same order
    assert not numpy.array_equal(first, epoch_labels(loader, 1))   # the next epoch reshuffles
    for xb, yb in loader.batches(0):  # images travel with their labels
        numpy.testing.assert_array_equal(backend.to_numpy(xb)[:, 0, 0, 0], backend.to_numpy(yb))
    dropped = Loader(x, y, batch_size=4, drop_last=True, shuffle=False, device=device)
    assert [len(yb) for _, yb in dropped.batches()] == [4, 4] and dropped.num_samples == 8


def test_loader_normalises_per_channel_in_float32(device):
    x = numpy.random.default_rng(0).integers(0, 256, (20, 4, 4, 3), dtype=numpy.uint8)
    mean, std = channel_stats(x)
    numpy.testing.assert_allclose(mean, x.reshape(-1, 3).mean(axis=0), rtol=1e-6)
    numpy.testing.assert_allclose(std, x.reshape(-1, 3).std(axis=0), rtol=1e-5)
    loader = Loader(x, numpy.zeros(20, int), 20, shuffle=False, mean=mean, std=std, device=device)
    xb, _ = next(loader.batches())
    assert xb.dtype == numpy.float32 and backend.device_of(xb) == device
    numpy.testing.assert_allclose(backend.to_numpy(xb), (x - mean) / std, rtol=1e-5, atol=1e-6)


def test_loader_rejects_bad_input_with_named_errors():
    x, y = numpy.zeros((4, 2, 2, 1), numpy.float32), numpy.zeros(4, int)
    with pytest.raises(ValueError, match="x has 4 samples but y has 3"):
        Loader(x, y[:3])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        Loader(x, y, batch_size=0)
    with pytest.raises(ValueError, match="std must be positive"):
        Loader(x, y, std=0)
    with pytest.raises(ValueError, match="drop_last with 4 samples < batch_size 8"):
        Loader(x, y, batch_size=8, drop_last=True)
    with pytest.raises(ValueError, match="fill_mode must be"):
        Augment(fill_mode="wrap")


def test_epoch_seeds_differ_by_epoch_and_repeat_by_seed():
    assert epoch_seed(0, 1) == epoch_seed(0, 1) != epoch_seed(0, 2) != epoch_seed(1, 2)


def test_to_categorical_as_keras(device):
    from minicnn.utils import to_categorical
    labels = backend.to_device(numpy.array([[3], [0], [9], [3]]), device)  # CIFAR-10's (N, 1)
    rows = to_categorical(labels, 10)
    assert rows.shape == (4, 10) and rows.dtype == numpy.float32 and backend.device_of(rows) == device
    numpy.testing.assert_array_equal(backend.to_numpy(rows).argmax(axis=1), [3, 0, 9, 3])
    numpy.testing.assert_array_equal(backend.to_numpy(rows).sum(axis=1), 1)
    assert to_categorical([0, 2]).shape == (2, 3)  # num_classes: max + 1
    assert to_categorical(numpy.array([[0, 1], [1, 1]]), 2, dtype="float64").shape == (2, 2, 2)
    assert to_categorical(numpy.array([1.0, 2.0]), 3).shape == (2, 3)  # whole floats, as Keras's labels often are
    for bad, message in (((numpy.array([0, 10]), 10), "label 10 is out of range for num_classes=10"),
                         ((numpy.array([-1, 2]),), "must be >= 0"), ((numpy.array([0.5]),), "must be integers"),
                         ((numpy.array([1]), 0), "num_classes must be a positive int")):
        with pytest.raises(ValueError, match=message):
            to_categorical(*bad)


def test_a_chain_with_rand_augment_augments_alike_in_a_resumed_run(device):
    """'crop-flip-randaugment': crop-flip, then RandAugment's host-drawn picks, restarted by
    the Loader every epoch, so a new Loader (a resumed run) gives epoch 1 exactly as the
    first gave it; the epochs differ, and every image stays within 0..255."""
    x = numpy.random.default_rng(0).integers(0, 256, (24, 12, 12, 3)).astype(numpy.uint8)
    y = numpy.arange(24)

    def epoch(loader, k):
        return [backend.to_numpy(xb) for xb, _ in loader.batches(k)]

    def loader():
        return Loader(backend.to_device(x, device), backend.to_device(y, device), 8, seed=3,
                      augment=augmentation("crop-flip-randaugment"), mean=numpy.zeros(3), std=numpy.ones(3))

    first = loader()
    straight = [epoch(first, 0), epoch(first, 1)]
    resumed = epoch(loader(), 1)
    for a, b in zip(straight[1], resumed):
        numpy.testing.assert_array_equal(a, b)
    assert not all(numpy.array_equal(a, b) for a, b in zip(straight[0], straight[1]))
    every = numpy.concatenate(straight[0])
    assert every.min() >= 0 and every.max() <= 255 and every.dtype == numpy.float32
    plain = Loader(backend.to_device(x, device), backend.to_device(y, device), 8, seed=3,
                   augment=augmentation("crop-flip"), mean=numpy.zeros(3), std=numpy.ones(3))
    assert not all(numpy.array_equal(a, b) for a, b in zip(epoch(plain, 0), straight[0]))  # RandAugment did act
