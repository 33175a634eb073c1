"""One rank of tests/test_distributed.py's runs: train a small model on fixed data,
data-parallel over however many ranks mpiexec started (or as one plain process with
--single), and write the final weights and the history to OUT.

    mpiexec -n 2 python tests/data_parallel_worker.py OUT [--batchnorm] [--sync-batchnorm]
    python tests/data_parallel_worker.py OUT --single [--batchnorm]
    mpiexec -n 2 python tests/data_parallel_worker.py OUT --device gpu [--gpu-transport host]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy  # noqa: E402

import minicnn  # noqa: E402
from minicnn import backend  # noqa: E402

from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D  # noqa: E402
from minicnn.models import Sequential  # noqa: E402
from minicnn.optimizers import SGD, Adam  # noqa: E402


def model_and_data(batchnorm, optimizer):
    minicnn.set_seed(0)
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(70, 8, 8, 3)).astype(numpy.float32)  # 70 = 4 batches of 16 and one of 6
    y = (x[:, :4, :4, 0].mean(axis=(1, 2)) > 0).astype(numpy.int64) + (x[:, 4:, 4:, 1].mean(axis=(1, 2)) > 0)
    layers = [Conv2D(4, 3, padding="same", activation=None if batchnorm else "relu", input_shape=(8, 8, 3))]
    if batchnorm:
        layers += [BatchNormalization(momentum=0.9)]
    layers += [MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")]
    model = Sequential(layers)
    model.compile(SGD(0.1, momentum=0.9, nesterov=True) if optimizer == "sgd" else Adam(0.01),
                  "sparse_categorical_crossentropy", metrics=["accuracy", "auc"], weighted_metrics=["top5"])
    return model, x, y  # auc and the weighted metric sum vectors of counts across the ranks


class Crashed(Exception):
    pass


class Crash:
    """A callback that stops the run as a kill would, at the end of one epoch, on every rank."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Crashed(f"crashed after epoch {epoch}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--single", action="store_true")
    p.add_argument("--batchnorm", action="store_true")
    p.add_argument("--sync-batchnorm", action="store_true")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--gpu-transport", default=None, choices=["nccl", "host"])
    p.add_argument("--no-seed", action="store_true", help="fit without a seed: each rank draws one, rank 0's wins")
    p.add_argument("--backup", default=None, help="train with callbacks.BackupAndRestore(BACKUP)")
    p.add_argument("--write-logs", action="store_true",
                   help="CSVLogger and ModelCheckpoint(keep_previous=True) into OUT, as a user's script would")
    p.add_argument("--crash-after-epoch", type=int, default=None,
                   help="every rank raises at the end of this epoch (after the backup is written)")
    args = p.parse_args()
    comm = None
    if not args.single:
        from minicnn import distributed
        comm = distributed.Communicator(gpu_transport=args.gpu_transport)
        if args.device == "gpu":
            distributed.use_my_gpu(comm)
    minicnn.set_device(args.device)
    model, x, y = model_and_data(args.batchnorm, args.optimizer)
    is_root = True
    if comm is not None:
        if comm.rank != 0:  # a different start on other ranks: data_parallel must copy rank 0's
            for w in model.weights:
                w.data[...] = backend.to_device(numpy.random.default_rng(comm.rank).normal(size=w.shape),
                                                args.device, dtype=w.data.dtype)
        distributed.data_parallel(model, comm, sync_batchnorm=args.sync_batchnorm, bucket_bytes=1024)
        is_root = comm.is_root
    if args.no_seed:  # as a script that never seeds: each process its own entropy
        minicnn.set_seed(None)
    callbacks = []
    if args.backup:
        from minicnn.callbacks import BackupAndRestore
        callbacks.append(BackupAndRestore(args.backup))
    if args.write_logs:  # given on every rank, as a script run under mpiexec gives them
        from minicnn.callbacks import CSVLogger, ModelCheckpoint, TensorBoard
        rank = comm.rank if comm is not None else 0

        def saved_by(epoch, logs):  # each save leaves a mark naming the rank that wrote it
            open(os.path.join(args.out, f"saved_by_rank{rank}"), "a").close()
            return {"rank": rank}
        # append=True: a second rank writing would add its rows to rank 0's
        callbacks += [CSVLogger(os.path.join(args.out, "log.csv"), append=True),
                      ModelCheckpoint(os.path.join(args.out, "ckpt.npz"), keep_previous=True, metadata=saved_by),
                      TensorBoard(os.path.join(args.out, "tensorboard"), update_freq="batch")]
    if args.crash_after_epoch is not None:
        callbacks.append(Crash(args.crash_after_epoch))
    try:
        history = model.fit(x, y, batch_size=16, epochs=args.epochs, verbose=0, seed=None if args.no_seed else 3,
                            validation_data=(x[:20], y[:20]), callbacks=callbacks)
    except Crashed:
        return  # as a killed run: nothing written but the backup
    if args.no_seed:  # the shuffles of every rank must be one order, cut in shards
        seeds = comm.mpi.gather(model.fit_seed, root=0) if comm is not None else [model.fit_seed]
        if comm is None or comm.is_root:
            with open(os.path.join(args.out, "fit_seeds.json"), "w") as f:
                json.dump(seeds, f)
    weights = {f"w{i}": backend.to_numpy(w) for i, w in enumerate(model.get_weights())}
    if not args.single:  # every replica must hold the same weights
        others = comm.mpi.gather(weights, root=0)
    if is_root:
        numpy.savez(os.path.join(args.out, "weights.npz"), **weights)
        with open(os.path.join(args.out, "history.json"), "w") as f:
            json.dump(history.history, f)
        if not args.single:
            same = all(numpy.array_equal(o[k], weights[k]) for o in others for k in weights)
            with open(os.path.join(args.out, "replicas_equal.json"), "w") as f:
                json.dump(same, f)


if __name__ == "__main__":
    main()
