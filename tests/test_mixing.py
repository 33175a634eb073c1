"""MixUp and CutMix (layers/mixing.py) and the Loader's batch_transform: pixels and labels
mixed in one proportion, the proportions Keras 3 draws, reseeded by epoch, and refusals.

The images here say whose they are: image i is i in every pixel of channel 0, with one-hot
label i, so a mixed pixel and a mixed label both show which two images met and how much."""
import numpy
import pytest

import minicnn
from minicnn import backend
from minicnn.data import Loader
from minicnn.layers import Conv2D, CutMix, Dense, Flatten, MixUp
from minicnn.models import Sequential
from minicnn.utils import to_categorical


def coded_batch(device, n=16, size=10):
    images = numpy.zeros((n, size, size, 2), numpy.float32)
    images[..., 0] = numpy.arange(n, dtype=numpy.float32)[:, None, None]
    images[..., 1] = 1.0
    labels = numpy.eye(n, dtype=numpy.float32)
    return {"images": backend.to_device(images, device), "labels": backend.to_device(labels, device)}


def partners_and_shares(labels):
    """From mixed one-hot labels: each image's partner and its own share."""
    n = len(labels)
    own = labels[numpy.arange(n), numpy.arange(n)]
    rest = labels.copy()
    rest[numpy.arange(n), numpy.arange(n)] = 0
    partner = numpy.where(rest.max(axis=1) > 0, rest.argmax(axis=1), numpy.arange(n))
    return partner, own


def test_mixup_blends_each_image_and_label_with_one_partner_in_one_proportion(device):
    batch = coded_batch(device)
    out = MixUp(alpha=0.4, seed=1)(batch)
    images, labels = backend.to_numpy(out["images"]), backend.to_numpy(out["labels"])
    numpy.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-6)
    partner, own = partners_and_shares(labels)
    moved = partner != numpy.arange(16)
    assert moved.sum() >= 12 and sorted(partner[moved]) == sorted(numpy.flatnonzero(moved))  # a permutation
    weight = own[moved]
    assert numpy.ptp(weight) < 1e-6  # one proportion for the whole batch, as Keras draws it
    expected = weight[0] * numpy.arange(16) + (1 - weight[0]) * partner
    numpy.testing.assert_allclose(images[..., 0], expected[:, None, None] * numpy.ones((1, 10, 10)), rtol=1e-5)
    numpy.testing.assert_allclose(images[..., 1], 1.0, rtol=1e-6)  # a blend of two 1s is 1
    # Beta(alpha, alpha): alpha = 1 is uniform; a small alpha keeps most blends near one image
    def larger_share(alpha, seed):  # max(w, 1 - w), read off an image that met another
        partner, own = partners_and_shares(backend.to_numpy(MixUp(alpha, seed=seed)(batch)["labels"]))
        met = own[partner != numpy.arange(16)]
        return 1.0 if not met.size else max(met[0], 1 - met[0])  # none met: w rounded to 1 in float32
    assert 0.72 < numpy.mean([larger_share(1.0, s) for s in range(200)]) < 0.78  # E = 3/4 for w uniform
    assert numpy.mean([larger_share(0.1, s) for s in range(200)]) > 0.85


def test_cutmix_pastes_one_box_and_the_label_share_is_the_pixels_left(device):
    batch = coded_batch(device)
    for seed in range(5):
        out = CutMix(seed=seed)(batch)
        images, labels = backend.to_numpy(out["images"]), backend.to_numpy(out["labels"])
        partner, own = partners_and_shares(labels)
        for i in range(16):
            mine = images[i, :, :, 0] == i
            numpy.testing.assert_allclose(own[i], mine.mean(), rtol=1e-6)  # counted, not estimated
            pasted = ~mine
            assert (images[i, :, :, 0][pasted] == partner[i]).all()
            if pasted.any():  # one rectangle
                rows, cols = numpy.flatnonzero(pasted.any(axis=1)), numpy.flatnonzero(pasted.any(axis=0))
                assert pasted[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()
                assert pasted.sum() == len(rows) * len(cols)
    sides = [numpy.sqrt(1 - backend.to_numpy(CutMix(seed=s)(batch)["labels"]).max(axis=1)).mean() for s in range(50)]
    assert 0.2 < numpy.mean(sides) < 0.8 and numpy.std(sides) > 0.02
    whole = CutMix(factor=0.0, seed=0)(batch)  # a = 1e-6: Beta(a, a) gives w at 0 or 1, a box of all or nothing
    numpy.testing.assert_allclose(backend.to_numpy(whole["labels"]).max(axis=1), 1.0)


def test_images_alone_inference_and_bad_input(device):
    batch = coded_batch(device)
    mixed = MixUp(seed=0)(batch["images"])
    assert mixed.shape == batch["images"].shape and not numpy.array_equal(backend.to_numpy(mixed),
                                                                        backend.to_numpy(batch["images"]))
    assert CutMix()(batch, training=False) is batch
    integer_labels = {"images": batch["images"], "labels": backend.to_device(numpy.arange(16), device)}
    with pytest.raises(ValueError, match="CutMix: mixes labels too, so they must be one-hot floats.*to_categorical"):
        CutMix()(integer_labels)
    with pytest.raises(ValueError, match=r"MixUp: expects \{'images'"):
        MixUp()({"images": batch["images"][0]})
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        MixUp(alpha=0)
    with pytest.raises(ValueError, match="CutMix: factor must be"):
        CutMix(factor=(0.5, 2))
    x = numpy.zeros((4, 6, 6, 3), numpy.float32)
    with pytest.raises(ValueError, match="batch_transform must be callable"):
        Loader(x, numpy.zeros((4, 2), numpy.float32), batch_transform="mixup")
    with pytest.raises(ValueError, match="for one input of images"):
        Loader([x, x], numpy.zeros((4, 2), numpy.float32), batch_transform=MixUp())


def test_a_loader_mixes_every_batch_the_same_way_for_the_same_epoch(device):
    rng = numpy.random.default_rng(0)
    x, y = rng.random((40, 6, 6, 3), dtype=numpy.float32), to_categorical(rng.integers(0, 4, 40), 4)

    def epoch_of(loader, epoch):
        return [backend.to_numpy(b) for batch in loader.batches(epoch) for b in batch]
    with minicnn.device(device):
        first = Loader(x, y, batch_size=8, seed=3, batch_transform=CutMix())
        again = Loader(x, y, batch_size=8, seed=3, batch_transform=CutMix(seed=99))  # the Loader reseeds it
    for a, b in zip(epoch_of(first, 2), epoch_of(again, 2)):
        numpy.testing.assert_array_equal(a, b)  # a resumed run mixes epoch 2 as the first run did
    assert not all(numpy.array_equal(a, b) for a, b in zip(epoch_of(first, 2), epoch_of(first, 3)))
    labels = numpy.concatenate([b for i, b in enumerate(epoch_of(first, 0)) if i % 2])
    assert (labels.max(axis=1) < 1).mean() > 0.2 and numpy.allclose(labels.sum(axis=1), 1, rtol=1e-6)
    shard = first.sharded(1, 2)
    assert len(list(shard.batches(0))) == len(first)


def test_fit_trains_on_mixed_batches(device):
    rng = numpy.random.default_rng(1)
    x = rng.random((48, 8, 8, 3), dtype=numpy.float32)
    y = to_categorical(rng.integers(0, 3, 48), 3)
    minicnn.set_seed(0)
    with minicnn.device(device):
        model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(8, 8, 3)), Flatten(),
                            Dense(3, activation="softmax")])
        train = Loader(x, y, batch_size=16, batch_transform=MixUp(0.4))
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, epochs=2, verbose=0, validation_data=(x, y))
    assert all(numpy.isfinite(history.history["loss"])) and len(history.history["val_accuracy"]) == 2
