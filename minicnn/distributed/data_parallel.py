"""Data-parallel training: every rank holds the same model and trains on its own shard of
each batch; the ranks add their gradients up before every step, so every replica takes
the same step, the one a single process would take on the whole batch.

    comm = distributed.Communicator()          # under mpiexec -n 2
    model.compile(optimizer=SGD(0.01, momentum=0.9), loss=..., metrics=["accuracy"])
    distributed.data_parallel(model, comm)     # rank 0's weights to every rank
    model.fit(x, y, batch_size=128, epochs=10) # 128 = the global batch: 64 per rank

One step on rank r, with n_r of the global batch's N samples (fit does all of it):
  1. forward and loss L_r (the mean over its n_r samples);
  2. backward seeded with n_r, so the gradients are those of n_r * L_r, the *sum* of its
     samples' losses;
  3. one all-reduce (summed over ranks) of every gradient, packed into a few flat
     buckets, with n_r * L_r and n_r riding along at the end; dividing by the sum of the
     n_r gives the gradient of the global batch's mean loss, and that loss itself;
  4. the optimizer's step: the same numbers on every rank, so the replicas stay equal.
Step 2's seeding makes uneven shards (the last, short batch) exact, and makes
sync_batchnorm's backward exact too (see sync_batchnorm.py).

What else fit does with a DataParallel model: it shards the training and validation
Loaders (``Loader.sharded``); ranks draw their own dropout masks and augmentations
(seeded by rank, so a run is repeatable for a given number of ranks); only rank 0
prints; at the end of each epoch the epoch's sums are added over the ranks (so the logs
are the global batch's), rank 0's batch-norm moving averages and weights are copied to
every rank (as PyTorch's DDP does with its buffers), and a stop asked for on any rank
(EarlyStopping, a NaN loss) stops them all. Callbacks run on every rank; give the ones
that write files (ModelCheckpoint, CSVLogger) to rank 0 only.
"""
import numpy

from .. import backend
from ..data import epoch_seed


def data_parallel(model, comm=None, sync_batchnorm=False, bucket_bytes=4 << 20):
    """Make a built, compiled model train data-parallel over ``comm``'s ranks (default:
    every rank mpiexec started); returns its DataParallel. Copies rank 0's weights and
    optimizer state to every rank first."""
    if comm is None:
        from .communicator import Communicator
        comm = Communicator()
    return DataParallel(comm, sync_batchnorm, bucket_bytes).attach(model)


class DataParallel:
    """The ranks' side of a data-parallel model (``model.parallel``).

    comm: a Communicator. sync_batchnorm: batch statistics over the global batch (see
    sync_batchnorm.py); per rank otherwise. bucket_bytes: gradients travel in messages
    of about this size (one message per bucket, all in flight at once).
    """

    def __init__(self, comm, sync_batchnorm=False, bucket_bytes=4 << 20):
        if bucket_bytes < 1024:
            raise ValueError(f"data_parallel: bucket_bytes must be at least 1024, got {bucket_bytes}")
        self.comm, self.sync_batchnorm, self.bucket_bytes = comm, bool(sync_batchnorm), int(bucket_bytes)
        self._flat = None  # (parameter ids, flat buffer, [(start, stop, shape)], buckets)

    @property
    def rank(self):
        return self.comm.rank

    @property
    def size(self):
        return self.comm.size

    def attach(self, model):
        if not model.built:
            raise ValueError("data_parallel(): build the model first (model.build(input_shape) or call it "
                             "once), so there are weights to copy to every rank")
        if model.optimizer is None:
            raise ValueError("data_parallel(): compile the model first, so its optimizer's state can be "
                             "copied to every rank too")
        model.parallel = self
        for layer in _all_layers(model):
            if hasattr(layer, "sync"):  # BatchNormalization
                layer.sync = self.comm if self.sync_batchnorm else None
        self.broadcast_state(model)
        return self

    # --- keeping the replicas equal ---------------------------------------------------
    def broadcast_state(self, model):
        """Every weight, moving average and optimizer slot, and the step count, <- rank 0's."""
        for w in model.weights:
            self.comm.broadcast_(w.data)
        optimizer = model.optimizer
        if optimizer.params is None:
            optimizer.build(model.trainable_weights)
        for arrays in optimizer.slots.values():
            for a in arrays:
                self.comm.broadcast_(a)
        optimizer.iterations = self.comm.broadcast_object(optimizer.iterations)

    def sync_buffers(self, model):
        """Rank 0's batch-norm moving averages to every rank (each rank averaged its own
        shards' statistics), and its weights too, in case summation order ever let the
        replicas drift apart by a rounding."""
        for w in model.weights:
            self.comm.broadcast_(w.data)

    def any(self, flag):
        """True on every rank if ``flag`` is true on any."""
        return bool(self.comm.allreduce_max(int(bool(flag))))

    # --- one step ---------------------------------------------------------------------------
    def allreduce_gradients(self, params, loss_times_n, n):
        """Replace each parameter's .grad (of this rank's n * loss) by the global batch's
        gradient of its mean loss; returns that mean loss (a device scalar).

        params: the optimizer's parameter Tensors; loss_times_n: n_r * L_r (0-d array);
        n: this rank's number of samples."""
        flat, layout, buckets = self._buffer(params)
        reached = [p.grad is not None for p in params]
        for p, (start, stop, _) in zip(params, layout):
            if p.grad is None:  # a weight the graph did not reach (on every rank: the same graph)
                flat[start:stop] = 0
            else:
                flat[start:stop] = p.grad.reshape(-1)
        flat[-2] = loss_times_n
        flat[-1] = n
        self.comm.allreduce_sums_(buckets)
        flat /= flat[-1:].copy()  # everything divided by N, the global batch: on the device
        for p, (start, stop, shape), has_grad in zip(params, layout, reached):
            # views: no copy back; an unreached weight keeps no gradient, so the step skips it as in one process
            p.grad = flat[start:stop].reshape(shape) if has_grad else None
        return flat[-2]

    def _buffer(self, params):
        """One flat array holding every gradient, then n * loss and n, cut into buckets
        (views of it); made once per parameter list."""
        ids = [id(p) for p in params]
        if self._flat is None or self._flat[0] != ids:
            dtypes = {p.data.dtype for p in params}
            if len(dtypes) != 1:
                raise TypeError(f"data_parallel: the parameters have several dtypes {sorted(map(str, dtypes))}; "
                                "the gradients travel in one flat buffer of one dtype")
            dtype = dtypes.pop()
            layout, start = [], 0
            for p in params:
                layout.append((start, start + p.data.size, p.data.shape))
                start += p.data.size
            xp = backend.get_array_module(params[0].data)
            with backend.device(backend.device_of(params[0].data)):
                flat = xp.zeros(start + 2, dtype=dtype)
            per_bucket = max(1, self.bucket_bytes // dtype.itemsize)
            buckets = [flat[a:a + per_bucket] for a in range(0, flat.size, per_bucket)]
            self._flat = (ids, flat, layout, buckets)
        return self._flat[1:]

    # --- data, randomness, sums ------------------------------------------------------------
    def shard(self, loader):
        """This rank's share of every batch of ``loader`` (a Loader), or it unchanged."""
        if loader is None or getattr(loader, "shard", None) is not None:
            return loader
        return loader.sharded(self.rank, self.size)

    def rank_seed(self, seed):
        """The seed of this rank's random streams (dropout): the run's own with one rank."""
        return seed if self.size == 1 else epoch_seed(seed, 0x6D70, self.rank)  # 0x6D70: 'mp'

    def reduce_sums(self, sums):
        """A training.Sums added up over every rank, in place: loss * samples, the
        metrics' counts and the samples seen (so means() is the global batch's)."""
        xp = backend.get_array_module(sums.batch_losses)
        names = list(sums.counts)
        values = [sums.loss, *(sums.counts[k] for k in names), sums.seen]
        with backend.device(backend.device_of(sums.batch_losses)):
            pieces = [xp.asarray(v, dtype=numpy.float64) for v in values]  # a metric may sum a vector of counts
            packed = xp.concatenate([piece.reshape(-1) for piece in pieces])
        self.comm.allreduce_sum_(packed)
        ends = numpy.cumsum([piece.size for piece in pieces])
        loss, *counts, seen = [packed[end - piece.size:end].reshape(piece.shape) for end, piece in zip(ends, pieces)]
        sums.loss, sums.seen = loss, int(round(float(seen)))
        sums.counts.update(zip(names, counts))
        return sums


def _all_layers(model):
    """Every layer of a model, the layers they own included."""
    found, stack = [], list(reversed(model.layers))
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack += reversed(layer.sublayers)
    return found
