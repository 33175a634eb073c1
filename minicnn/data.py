"""The input pipeline: a dataset held on one device, cut into shuffled, augmented,
normalised batches there, so the GPU is never fed from the host a batch at a time.

    train = Loader(x_train, y_train, batch_size=128, mean=m, std=s,
                   augment=Augment(horizontal_flip=True, width_shift_range=4,
                                   height_shift_range=4, fill_mode="constant"),
                   seed=0, device="gpu")
    model.fit(train, epochs=10, validation_data=Loader(x_test, y_test, 500, shuffle=False, ...))

Every random choice of epoch ``e`` comes from a generator seeded by (seed, e), so a run
resumed at epoch ``e`` sees exactly the batches an uninterrupted run would have seen.
"""
import math

import numpy

from . import backend


def epoch_seed(seed, *keys):
    """An integer seed for one (seed, epoch, ...) combination, well mixed by SeedSequence."""
    return int(numpy.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])


def channel_stats(x):
    """Per-channel mean and standard deviation of images x (N, H, W, C), in x's units,
    computed in float64 so 150 million uint8 values sum exactly. Returns two (C,) arrays."""
    x = backend.to_numpy(x)
    mean = x.mean(axis=(0, 1, 2), dtype=numpy.float64)
    var = numpy.zeros_like(mean)
    for start in range(0, len(x), 5000):  # chunked: a float64 copy of all of x would be 1.2 GB
        chunk = x[start:start + 5000].astype(numpy.float64) - mean
        var += (chunk * chunk).sum(axis=(0, 1, 2))
    return mean.astype(numpy.float32), numpy.sqrt(var / (x.size / x.shape[-1])).astype(numpy.float32)


# --- augmentation -------------------------------------------------------------------
def _fill_index(k, n, fill_mode):
    """Map integer source coordinates k (any shape) into 0..n-1 as ``fill_mode`` says.
    Returns (index, inside) where inside is False where 'constant' fill applies."""
    xp = backend.get_array_module(k)
    inside = (k >= 0) & (k < n)
    if fill_mode == "reflect":  # d c b | a b c d | c b a  (NumPy's and PyTorch's 'reflect')
        period = max(2 * n - 2, 1)
        k = xp.abs(k) % period
        k = xp.where(k >= n, period - k, k)
    elif fill_mode == "symmetric":  # d c b a | a b c d | d c b a  (Keras's layers call this 'reflect')
        k = k % (2 * n)
        k = xp.where(k >= n, 2 * n - 1 - k, k)
    elif fill_mode == "wrap":  # a b c d | a b c d | a b c d
        k = k % n
    return xp.clip(k, 0, n - 1), inside if fill_mode == "constant" else xp.ones_like(inside)


def affine_sample(x, angles, shift_y, shift_x, flip, fill_mode="nearest", cval=0.0, zoom=None,
                  interpolation="bilinear", shear=None):
    """Rotate, shift and mirror each image of a batch, with bilinear interpolation (or,
    interpolation='nearest', the one pixel nearest to where each output pixel reads).

    x: (N, H, W, C) float; angles: (N,) radians; shift_y, shift_x: (N,) pixels (an image
    moved down/right by the shift); flip: (N,) bool, mirror left-right; zoom: None or
    (zoom_y, zoom_x), each (N,): an output pixel d rows from the centre reads the input
    zoom_y * d rows from it (above 1 the image shrinks: Keras's zoom out); shear: None or
    (shear_y, shear_x), each (N,): an output pixel d columns right of the centre reads the
    input shear_y * d rows lower, and one d rows below it shear_x * d columns further right.
    fill_mode: what lies outside the image: 'nearest' (edge pixels, Keras's default),
    'constant' (``cval``, as padding then cropping does) or 'reflect'.
    Returns (N, H, W, C). With zero angles and integer shifts every output pixel is
    an exact copy of an input pixel (the bilinear weights are 0 and 1).
    """
    xp = backend.get_array_module(x)
    n, h, w, _ = x.shape
    dtype = x.dtype
    rows = xp.arange(h, dtype=dtype)[None, :, None]          # output pixel (row, col)
    cols = xp.arange(w, dtype=dtype)[None, None, :]
    cols = xp.where(flip[:, None, None], (w - 1) - cols, cols)  # mirror: read columns backwards
    # Where does output pixel (r, c) come from? Undo the shift, then rotate about the centre.
    cy, cx = dtype.type((h - 1) / 2), dtype.type((w - 1) / 2)
    dy = rows - cy - shift_y[:, None, None].astype(dtype)
    dx = cols - cx - shift_x[:, None, None].astype(dtype)
    if zoom is not None:
        dy, dx = dy * zoom[0][:, None, None].astype(dtype), dx * zoom[1][:, None, None].astype(dtype)
    if shear is not None:  # Keras's shear matrix [[1, s_x], [s_y, 1]], about the centre
        dy, dx = dy + shear[0][:, None, None].astype(dtype) * dx, dx + shear[1][:, None, None].astype(dtype) * dy
    cos, sin = xp.cos(angles).astype(dtype)[:, None, None], xp.sin(angles).astype(dtype)[:, None, None]
    src_y = cos * dy - sin * dx + cy                          # (N, H, W)
    src_x = sin * dy + cos * dx + cx
    batch = xp.arange(n)[:, None, None]
    if interpolation == "nearest":  # one gather: the pixel whose centre is closest, a tie rounded up
        iy, in_y = _fill_index(xp.floor(src_y + dtype.type(0.5)).astype(xp.int32), h, fill_mode)
        ix, in_x = _fill_index(xp.floor(src_x + dtype.type(0.5)).astype(xp.int32), w, fill_mode)
        return xp.where((in_y & in_x)[..., None], x[batch, iy, ix], dtype.type(cval))
    # Bilinear: blend the four pixels around (src_y, src_x).
    y0, x0 = xp.floor(src_y), xp.floor(src_x)
    wy, wx = (src_y - y0)[..., None], (src_x - x0)[..., None]
    y0, x0 = y0.astype(xp.int32), x0.astype(xp.int32)
    out = xp.zeros_like(x)
    for oy, ox, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                           (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        iy, in_y = _fill_index(y0 + oy, h, fill_mode)
        ix, in_x = _fill_index(x0 + ox, w, fill_mode)
        pixel = x[batch, iy, ix]                                  # (N, H, W, C) gather
        inside = (in_y & in_x)[..., None]
        out += weight * xp.where(inside, pixel, dtype.type(cval))
    return out


class Augment:
    """Random geometric augmentation with Keras ImageDataGenerator's arguments.

    rotation_range: degrees, angle drawn uniformly from [-r, r].
    width_shift_range / height_shift_range: < 1 is a fraction of the size (drawn
    uniformly, as Keras), an int >= 1 is whole pixels (drawn from -s..s, as random
    crop with padding s does).
    horizontal_flip: mirror half the images. fill_mode: 'nearest', 'constant', 'reflect'.
    zoom_range: z draws each image's vertical and horizontal zoom on their own from
    [1 - z, 1 + z], or [low, high] as given; above 1 the content shrinks (zooms out).
    """

    def __init__(self, rotation_range=0.0, width_shift_range=0.0, height_shift_range=0.0,
                 horizontal_flip=False, fill_mode="nearest", cval=0.0, zoom_range=0.0):
        if fill_mode not in ("nearest", "constant", "reflect"):
            raise ValueError(f"Augment: fill_mode must be 'nearest', 'constant' or 'reflect', got {fill_mode!r}")
        for name, value in (("rotation_range", rotation_range), ("width_shift_range", width_shift_range),
                            ("height_shift_range", height_shift_range)):
            if value < 0:
                raise ValueError(f"Augment: {name} must be >= 0, got {value}")
        self.rotation_range, self.horizontal_flip = float(rotation_range), bool(horizontal_flip)
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self.fill_mode, self.cval = fill_mode, float(cval)
        low, high = (1 - zoom_range, 1 + zoom_range) if isinstance(zoom_range, (int, float)) else zoom_range
        if not 0 < low <= high:
            raise ValueError(f"Augment: zoom_range must be z in [0, 1) or [low, high] with 0 < low <= high, "
                             f"got {zoom_range!r}")
        self.zoom_range = (float(low), float(high))

    @staticmethod
    def _shifts(rng, n, shift_range, size):
        u = rng.random(n, dtype=numpy.float32)
        if shift_range >= 1 and float(shift_range).is_integer():  # whole pixels -s..s
            s = int(shift_range)
            return (u * (2 * s + 1)).astype(numpy.int32).clip(0, 2 * s) - s
        limit = shift_range * size if shift_range < 1 else shift_range
        return (u * 2 - 1) * limit

    def __call__(self, x, rng):
        """x (N, H, W, C) float on some device, rng a Generator on that device -> (N, H, W, C)."""
        n, h, w, _ = x.shape
        angles = (rng.random(n, dtype=numpy.float32) * 2 - 1) * numpy.float32(math.radians(self.rotation_range))
        shift_y = self._shifts(rng, n, self.height_shift_range, h)
        shift_x = self._shifts(rng, n, self.width_shift_range, w)
        if self.horizontal_flip:
            flip = rng.random(n, dtype=numpy.float32) < 0.5
        else:
            flip = backend.get_array_module(x).zeros(n, dtype=bool)
        zoom = None
        if self.zoom_range != (1.0, 1.0):  # drawn only when asked: other settings keep their streams
            low, high = self.zoom_range
            zoom = tuple(rng.random(n, dtype=numpy.float32) * numpy.float32(high - low) + numpy.float32(low)
                         for _ in "yx")
        return affine_sample(x, angles, shift_y, shift_x, flip, self.fill_mode, self.cval, zoom)

    def get_config(self):
        return {"rotation_range": self.rotation_range, "width_shift_range": self.width_shift_range,
                "height_shift_range": self.height_shift_range, "horizontal_flip": self.horizontal_flip,
                "fill_mode": self.fill_mode, "cval": self.cval, "zoom_range": list(self.zoom_range)}


class Chain:
    """Loader augmentations in turn, each a function (x, rng) -> x, or an augmentation
    layer (its ``augment``). The Loader reseeds the chain every epoch; a layer among its
    steps that draws from streams of its own (RandAugment's host draws) restarts them then,
    so a resumed run augments as the uninterrupted one did."""

    def __init__(self, *steps):
        self.steps = steps

    def __call__(self, x, rng):
        for step in self.steps:
            x = step.augment(x, rng) if hasattr(step, "augment") else step(x, rng)
        return x

    def reseed(self, seed):
        for k, step in enumerate(self.steps):
            if hasattr(step, "reseed"):
                step.reseed(seed + k)


def _crop_flip_rand_augment():
    from .layers.randaugment import RandAugment  # the layers import this module: import when used
    return Chain(_PRESETS["crop-flip"](), RandAugment(value_range=(0, 255), num_ops=2, factor=0.3))


_PRESETS = {
    "none": lambda: None,
    "seed004": lambda: Augment(rotation_range=20, width_shift_range=0.1, height_shift_range=0.1,
                               horizontal_flip=True, fill_mode="nearest"),
    "crop-flip": lambda: Augment(width_shift_range=4, height_shift_range=4, horizontal_flip=True,
                                 fill_mode="constant"),
    "crop-flip-randaugment": _crop_flip_rand_augment,
}
AUGMENTATIONS = tuple(_PRESETS)


def augmentation(name):
    """A named augmentation: 'none' (None); 'seed004', Keras ImageDataGenerator as seed
    004 set it (rotation 20 degrees, shifts of 10%, horizontal flip, nearest fill);
    'crop-flip', the common pad-4-and-crop with horizontal flip; 'crop-flip-randaugment',
    that and then RandAugment at torchvision's defaults (2 operations an image, magnitude 9
    of 30: factor 0.3)."""
    if name not in _PRESETS:
        raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(_PRESETS)}")
    return _PRESETS[name]()


# --- batching -------------------------------------------------------------------------
class Loader:
    """(x, y) batches from arrays held on ``device``: ``for xb, yb in loader.batches(epoch)``.

    x: (N, H, W, C) images (uint8 or float), kept in their dtype on the device and
    converted per batch, or a list of arrays of N samples each, one per input of a model
    of several (each batch then a list; no augment, mean or std); y: labels (N,) / (N, 1)
    ints or one-hot (N, K), or targets; a list of such arrays, one per output of a model
    of several (each batch's labels then a list).
    mean, std: per-channel (C,) values in x's units; batches are ``(x - mean) / std``
    (the tutorials' ``x / 255`` is mean=0, std=255). augment: an ``Augment`` (or a ``Chain``
    of them and augmentation layers), applied to the pixels before normalisation. shuffle: a new order every epoch from (seed, epoch).
    drop_last: skip a final batch smaller than batch_size. sample_weight: (N,) weights,
    one per sample, kept on the device beside the labels; ``batches(epoch, weights=True)``
    then yields (x_batch, y_batch, weight_batch), the weights in the batch's order.
    batch_transform: a function of each batch after augmentation and normalisation, given
    and returning {"images": x_batch, "labels": y_batch} as Keras's preprocessing layers
    take them in a dataset's map: layers.MixUp(), layers.CutMix() (one with a ``reseed``
    method is reseeded every epoch from (seed, epoch), so a resumed run draws the same).

    ``loader.sharded(rank, size)``: the same batches cut in ``size`` nearly equal parts, of
    which this loader yields part ``rank`` (data-parallel training, distributed/). Every
    rank shuffles the same way; each draws its own augmentations. A final batch with
    fewer samples than ranks is skipped (some rank would have none).
    """

    def __init__(self, x, y, batch_size=32, shuffle=True, augment=None, mean=None, std=None,
                 seed=0, device=None, drop_last=False, dtype="float32", sample_weight=None, batch_transform=None):
        # several inputs (a functional model's): x a list of arrays, each batch a list of their rows
        self.many = isinstance(x, (list, tuple))
        if self.many and (augment is not None or mean is not None or std is not None or not x):
            raise ValueError("Loader: x is a list of arrays (a model of several inputs); augment, mean and std are "
                             "for one input of images: put them in the model (Normalization, Random* layers)")
        if batch_transform is not None and (self.many or not callable(batch_transform)):
            raise ValueError("Loader: batch_transform must be a function of {'images': x_batch, 'labels': y_batch} "
                             "(e.g. layers.MixUp()), for one input of images"
                             if self.many else f"Loader: batch_transform must be callable, got {batch_transform!r}")
        # several outputs: y a list of arrays (a list of plain numbers is one array of labels)
        self.many_y = isinstance(y, (list, tuple)) and bool(y) and all(hasattr(one, "shape") for one in y)
        if not self.many_y and not hasattr(y, "dtype"):
            y = numpy.asarray(y)
        n = len(x[0]) if self.many else len(x)
        ys = list(y) if self.many_y else [y]
        if any(len(one) != n for one in (x if self.many else [x])) or any(len(one) != n for one in ys):
            sizes = [len(one) for one in x] if self.many else len(x)
            y_sizes = [len(one) for one in ys] if self.many_y else len(y)
            raise ValueError(f"Loader: x has {sizes} samples but y has {y_sizes}")
        if sample_weight is not None and tuple(sample_weight.shape) != (n,):
            raise ValueError(f"Loader: sample_weight must have one weight per sample, shape ({n},); "
                             f"got {tuple(sample_weight.shape)}")
        if n == 0:
            raise ValueError("Loader: no samples")
        if not isinstance(batch_size, (int, numpy.integer)) or batch_size < 1:
            raise ValueError(f"Loader: batch_size must be a positive int, got {batch_size!r}")
        if drop_last and n < batch_size:
            raise ValueError(f"Loader: drop_last with {n} samples < batch_size {batch_size} "
                             "leaves no batch at all")
        self.device = device or backend.get_device()
        self.dtype = numpy.dtype(dtype)
        self.n = n
        # One explicit copy of the whole dataset onto the device, here and only here.
        self.x = [backend.to_device(one, self.device) for one in x] if self.many else backend.to_device(x, self.device)
        ys = [backend.to_device(one, self.device, dtype=self.dtype if one.dtype.kind == "f" else None) for one in ys]
        self.y = ys if self.many_y else ys[0]
        self.sample_weight = None if sample_weight is None else backend.to_device(
            sample_weight, self.device, dtype=numpy.float32)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.augment, self.seed, self.batch_transform = augment, seed, batch_transform
        self.shard = None  # (rank, size) when sharded
        channels = x[0].shape[-1] if self.many else x.shape[-1]
        self.mean = self._per_channel(0.0 if mean is None else mean, channels, "mean")
        self.std = self._per_channel(1.0 if std is None else std, channels, "std")
        if (backend.to_numpy(self.std) <= 0).any():
            raise ValueError(f"Loader: std must be positive, got {backend.to_numpy(self.std)}")

    def _per_channel(self, value, channels, name):
        value = numpy.broadcast_to(numpy.asarray(backend.to_numpy(value), dtype=self.dtype), (channels,))
        return backend.to_device(numpy.ascontiguousarray(value), self.device)

    def __len__(self):
        """Batches per epoch."""
        n = self.n
        batches = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        if self.shard is not None and batches and n - (batches - 1) * self.batch_size < self.shard[1]:
            batches -= 1  # the last batch is too small to give every rank a sample
        return batches

    def sharded(self, rank, size):
        """A loader over the same data (not copied) yielding part ``rank`` of ``size`` of
        every batch."""
        if not (isinstance(size, int) and size >= 1 and isinstance(rank, int) and 0 <= rank < size):
            raise ValueError(f"Loader.sharded: need 0 <= rank < size, got rank={rank!r}, size={size!r}")
        if self.batch_size < size:
            raise ValueError(f"Loader.sharded: a batch of {self.batch_size} cannot be shared by {size} ranks; "
                             f"use batch_size >= {size}")
        shard = object.__new__(Loader)
        shard.__dict__.update(self.__dict__)
        shard.shard = (rank, size)
        return shard

    @property
    def num_samples(self):
        return len(self) * self.batch_size if self.drop_last else self.n

    def batches(self, epoch=0, weights=False):
        """Yield (x_batch (B, H, W, C) float, y_batch) on the device for one epoch; with
        weights=True (x_batch, y_batch, sample_weight_batch (B,)), the weights all 1 where
        the loader holds none."""
        xp = backend.get_array_module(self.y[0] if self.many_y else self.y)
        rng = backend.default_rng(epoch_seed(self.seed, epoch), xp)
        n = self.n
        # argsort of uniform draws: a permutation made on the device itself
        order = xp.argsort(rng.random(n, dtype=numpy.float32)) if self.shuffle else None
        augment_rng = rng
        if self.shard is not None:  # same order on every rank; augmentations of its own
            rank, size = self.shard
            augment_rng = backend.default_rng(epoch_seed(self.seed, epoch, size, rank), xp)
        if hasattr(self.batch_transform, "reseed"):  # its own stream (a rank's own, data-parallel)
            self.batch_transform.reseed(epoch_seed(self.seed, epoch, *(self.shard or (1, 0)), 1))
        if hasattr(self.augment, "reseed"):  # an augmentation with draws of its own (Chain's RandAugment)
            self.augment.reseed(epoch_seed(self.seed, epoch, *(self.shard or (1, 0)), 2))
        for step in range(len(self)):
            start, stop = step * self.batch_size, min((step + 1) * self.batch_size, n)
            if self.shard is not None:  # this rank's part of the batch
                start, stop = start + (stop - start) * rank // size, start + (stop - start) * (rank + 1) // size
            index = order[start:stop] if order is not None else slice(start, stop)
            if self.many:
                xb = [one[index].astype(self.dtype) for one in self.x]
            else:
                xb = self.x[index].astype(self.dtype)
                if self.augment is not None:
                    xb = self.augment(xb, augment_rng)
                xb = (xb - self.mean) / self.std
            yb = [one[index] for one in self.y] if self.many_y else self.y[index]
            if self.batch_transform is not None:
                mixed = self.batch_transform({"images": xb, "labels": yb})
                xb, yb = mixed["images"], mixed["labels"]
            if not weights:
                yield xb, yb
            elif self.sample_weight is None:
                yield xb, yb, xp.ones(stop - start, dtype=numpy.float32)
            else:
                yield xb, yb, self.sample_weight[index]

    def labels(self):
        """All labels as a host (N,) int array (for confusion matrices and the like)."""
        if self.many_y:
            raise ValueError("Loader.labels(): this loader holds labels for several outputs; read loader.y[k]")
        y = backend.to_numpy(self.y)
        return y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)

    def normalize(self, x):
        """Apply this loader's normalisation to other images (same device): (x - mean) / std."""
        return (x.astype(self.dtype) - self.mean) / self.std
