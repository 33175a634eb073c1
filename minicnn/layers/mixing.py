"""Keras 3's MixUp and CutMix: each image of a batch mixed with another image of the same
batch, and its label with that image's label in the same proportion, so the network learns
from blends it can only score well on by seeing both.

They change labels, so they are not layers of the model but, as in Keras, functions of a
batch: ``{"images": x_batch, "labels": y_batch}`` in, the same out (labels one-hot floats,
(B, K)). Give one to a Loader, which applies it to every training batch:

    train = Loader(x_train, to_categorical(y_train, 10), batch_size=128, batch_transform=CutMix())
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    model.fit(train, epochs=30, validation_data=(x_test, to_categorical(y_test, 10)))

(Keras: ``dataset.map(lambda x, y: cut_mix({"images": x, "labels": y}))``.) The Loader
reseeds one every epoch, so a resumed run mixes as the uninterrupted one did. The few
numbers drawn per batch (the partner order, the proportions, CutMix's boxes) are drawn on
the host and copied to the device explicitly; the mixing itself runs where the batch is.
"""
import numbers

import numpy

from .. import backend


class BatchMixing:
    """What MixUp and CutMix share: a seed, the dict in and out, the labels' check."""

    def __init__(self, seed=None):
        self.seed = seed
        self.reseed(seed)

    def reseed(self, seed):
        """Restart the draws from ``seed`` (a Loader does so every epoch)."""
        self._rng = numpy.random.default_rng(seed)

    def __call__(self, data, training=True):
        """data: {"images": (B, H, W, C), "labels": (B, K) one-hot floats} (the labels may be
        left out) or the images alone; returns the same, mixed (unchanged with training=False)."""
        name = type(self).__name__
        images, labels = (data.get("images"), data.get("labels")) if isinstance(data, dict) else (data, None)
        if not training:
            return data
        if images is None or getattr(images, "ndim", None) != 4:
            raise ValueError(f"{name}: expects {{'images': (batch, height, width, channels), 'labels': (batch, classes)}}"
                             f", got images of shape {getattr(images, 'shape', None)}")
        if labels is not None and (labels.ndim != 2 or labels.dtype.kind != "f" or labels.shape[0] != images.shape[0]):
            raise ValueError(f"{name}: mixes labels too, so they must be one-hot floats (batch, classes), got "
                             f"{labels.dtype} labels of shape {tuple(labels.shape)}: give "
                             "minicnn.utils.to_categorical(y, classes) and compile with 'categorical_crossentropy'")
        device = backend.device_of(images)
        n = images.shape[0]
        partner = backend.to_device(self._rng.permutation(n), device)  # image i is mixed with image partner[i]
        mixed, own_share = self.mix_images(images, partner, device)     # own_share: (n,) float32, on the device
        if not isinstance(data, dict):
            return mixed
        out = dict(data, images=mixed)
        if labels is not None:
            share = own_share.astype(labels.dtype)[:, None]
            out["labels"] = share * labels + (1 - share) * labels[partner]
        return out

    def get_config(self):
        return {"seed": self.seed}


class MixUp(BatchMixing):
    """Zhang et al., 2018: one proportion w ~ Beta(alpha, alpha) for the batch, as Keras 3
    draws it; image i becomes w * x_i + (1 - w) * x_partner(i), its label alike. alpha:
    Keras's default 0.2 keeps most blends close to one image."""

    def __init__(self, alpha=0.2, seed=None):
        if not isinstance(alpha, numbers.Real) or not alpha > 0:
            raise ValueError(f"MixUp: alpha must be a positive number (Beta(alpha, alpha)), got {alpha!r}")
        super().__init__(seed)
        self.alpha = float(alpha)

    def mix_images(self, images, partner, device):
        n = images.shape[0]
        weight = numpy.full(n, self._rng.beta(self.alpha, self.alpha), numpy.float32)
        share = backend.to_device(weight, device)
        w = share.astype(images.dtype)[:, None, None, None]
        return w * images + (1 - w) * images[partner], share

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class CutMix(BatchMixing):
    """Yun et al., 2019: a box of image partner(i) pasted into image i, as Keras 3 draws it:
    a = U(factor's range) for the batch, then for each image w ~ Beta(a, a) and a box of
    sides sqrt(1 - w) of the height and width, anywhere inside. The label's share of
    image i is the share of its pixels the box left it (counted, so label and pixels
    agree exactly). factor f: (0, f); (low, high) as given; within [0, 1]."""

    def __init__(self, factor=1.0, seed=None):
        low, high = (0.0, factor) if isinstance(factor, numbers.Real) else tuple(sorted(factor))
        if not 0 <= low <= high <= 1:
            raise ValueError(f"CutMix: factor must be a number in [0, 1] or (low, high) within [0, 1], got {factor!r}")
        super().__init__(seed)
        self.factor = (float(low), float(high))

    def mix_images(self, images, partner, device):
        n, h, w = images.shape[:3]
        a = self._rng.uniform(*self.factor) + 1e-6  # Keras's: Beta needs a > 0
        side = numpy.sqrt(1 - self._rng.beta(a, a, n))  # (n,) the box's share of each side
        rows, columns = _span(self._rng, side, h), _span(self._rng, side, w)  # (n, H), (n, W) booleans
        pasted = rows.sum(1) * columns.sum(1) / (h * w)
        box = backend.to_device(rows, device)[:, :, None, None] & backend.to_device(columns, device)[:, None, :, None]
        xp = backend.get_array_module(images)
        own_share = backend.to_device((1 - pasted).astype(numpy.float32), device)
        return xp.where(box, images[partner], images), own_share

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


def _span(rng, share, length):
    """(n, length) booleans: a run of share * length cells starting anywhere it fits (the
    cells whose index lies in [start, start + share * length))."""
    start = rng.uniform(0, 1, len(share)) * (length - share * length)
    cells = numpy.arange(length)
    return (cells >= start[:, None]) & (cells < (start + share * length)[:, None])
