"""Data-parallel training (minicnn.distributed): 2 ranks under mpiexec against 1 process on
the same global batches, the sharded Loader, and the errors when MPI is missing.

The MPI runs need mpi4py and an MPI library (pip install "minicnn[mpi]"; the test extra
brings them); where they are missing those tests skip and say so.
"""
import builtins
import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

from minicnn import distributed
from minicnn.data import Loader
from minicnn.distributed import launch
import event_reader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "data_parallel_worker.py")


def mpi_missing():
    try:
        launch.require_mpi()
    except RuntimeError as error:
        return str(error)
    return None


needs_mpi = pytest.mark.skipif(mpi_missing() is not None, reason=f"{mpi_missing()}")


def run_worker(out, ranks, *flags):
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = [sys.executable, WORKER, str(out), *flags]
    if ranks:
        command = [launch.mpiexec_path(), "-n", str(ranks), *command]
    else:
        command.append("--single")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    weights = numpy.load(os.path.join(out, "weights.npz"))
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)
    return {k: weights[k] for k in weights}, history


def assert_same_training(single, parallel, atol=2e-6):
    (w1, h1), (w2, h2) = single, parallel
    assert w1.keys() == w2.keys()
    for k in w1:
        numpy.testing.assert_allclose(w2[k], w1[k], rtol=1e-5, atol=atol, err_msg=k)
    for k in h1:  # the logs are the global batch's, not rank 0's shard's
        numpy.testing.assert_allclose(h2[k], h1[k], rtol=1e-5, atol=1e-6, err_msg=k)


@needs_mpi
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_ranks_train_as_one_process_on_the_global_batch(tmp_path, optimizer):
    """3 epochs of 5 steps, the last batch 6 samples (shards of 3): weights, losses and
    accuracies equal within float32 rounding, and both replicas end identical even
    though rank 1 started from other weights."""
    single = run_worker(tmp_path / "one", 0, "--optimizer", optimizer)
    parallel = run_worker(tmp_path / "two", 2, "--optimizer", optimizer)
    assert_same_training(single, parallel)
    with open(tmp_path / "two" / "replicas_equal.json") as f:
        assert json.load(f) is True


@needs_mpi
def test_two_ranks_fit_without_a_seed_shuffle_in_rank_0_s_order(tmp_path):
    """Each process draws its own seed where fit is given none; every rank must take rank 0's,
    or the ranks would cut shards from different shuffles (samples twice, others never)."""
    run_worker(tmp_path / "two", 2, "--no-seed", "--epochs", "1")
    with open(tmp_path / "two" / "fit_seeds.json") as f:
        seeds = json.load(f)
    assert len(seeds) == 2 and seeds[0] == seeds[1]


@needs_mpi
def test_backup_and_restore_continues_a_crashed_two_rank_fit_where_the_straight_one_ends(tmp_path):
    """BackupAndRestore data-parallel: rank 0 writes the backup (and CSVLogger's,
    ModelCheckpoint's and TensorBoard's files, given on every rank); after both ranks stop at the
    end of epoch 0, the same fit run again restores every rank from it and ends with the
    weights and last epochs' logs of an uninterrupted 2-rank fit."""
    straight = run_worker(tmp_path / "straight", 2, "--backup", str(tmp_path / "straight_backup"), "--write-logs")
    rows = (tmp_path / "straight" / "log.csv").read_text().splitlines()  # rank 0's alone: not two interleaved
    assert len(rows) == 4 and rows[0].startswith("epoch,") and [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]
    written = sorted(p for p in os.listdir(tmp_path / "straight") if p.startswith(("ckpt", "saved_by")))
    assert written == ["ckpt.npz", "ckpt.previous.npz", "saved_by_rank0"]
    for folder in ("train", "validation"):  # one events file each, rank 0's: a curve, not two
        assert len(os.listdir(tmp_path / "straight" / "tensorboard" / folder)) == 1, folder
    epoch_losses = event_reader.scalars(tmp_path / "straight" / "tensorboard" / "train", "epoch_loss")
    assert [step for step, _ in epoch_losses] == [0, 1, 2]
    numpy.testing.assert_allclose([loss for _, loss in epoch_losses], straight[1]["loss"], rtol=1e-6)
    crash = tmp_path / "crash"
    os.makedirs(crash)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([launch.mpiexec_path(), "-n", "2", sys.executable, WORKER, str(crash), "--backup",
                           str(tmp_path / "backup"), "--crash-after-epoch", "0"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.listdir(tmp_path / "backup") == ["backup.npz"] and not os.listdir(crash)
    resumed = run_worker(crash, 2, "--backup", str(tmp_path / "backup"))
    (w1, h1), (w2, h2) = straight, resumed
    for k in w1:
        numpy.testing.assert_array_equal(w2[k], w1[k], err_msg=k)
    assert len(h2["loss"]) == 2  # the resumed fit ran epochs 1 and 2
    numpy.testing.assert_array_equal(h2["loss"], h1["loss"][1:])
    with open(crash / "replicas_equal.json") as f:
        assert json.load(f) is True
    assert not os.path.exists(tmp_path / "backup" / "backup.npz")  # removed once the fit ended


@needs_mpi
def gpu_count():
    from minicnn import backend
    if not backend.gpu_available():
        return 0
    import cupy
    return cupy.cuda.runtime.getDeviceCount()


@needs_mpi
@pytest.mark.gpu
@pytest.mark.parametrize("transport, gpus_needed", [("nccl", 2), ("host", 1)])
def test_two_ranks_on_gpus_train_as_one_gpu_process(tmp_path, transport, gpus_needed):
    """NCCL needs a GPU per rank (it refuses two ranks on one device); the host transport
    (explicit copies, MPI between) runs two ranks on one GPU. The one process runs on the GPU
    too: fit shuffles with the device's random generator, and CuPy's stream for a seed is not
    NumPy's, so a CPU process would see the batches in another order."""
    if gpu_count() < gpus_needed:
        pytest.skip(f"needs {gpus_needed} GPU(s) for gpu_transport={transport!r}; this machine has {gpu_count()}")
    single = run_worker(tmp_path / "one", 0, "--batchnorm", "--device", "gpu")
    parallel = run_worker(tmp_path / "two", 2, "--batchnorm", "--sync-batchnorm", "--device", "gpu",
                          "--gpu-transport", transport)
    assert_same_training(single, parallel, atol=1e-5)


@needs_mpi
def test_sync_batchnorm_matches_one_process_and_per_rank_statistics_do_not(tmp_path):
    single = run_worker(tmp_path / "one", 0, "--batchnorm")
    synced = run_worker(tmp_path / "sync", 2, "--batchnorm", "--sync-batchnorm")
    assert_same_training(single, synced)
    per_rank = run_worker(tmp_path / "local", 2, "--batchnorm")
    with pytest.raises(AssertionError):  # each shard normalised by its own statistics: not the same run
        assert_same_training(single, per_rank)


def test_sharded_loader_splits_every_batch_in_the_same_order():
    x = numpy.arange(23, dtype=numpy.float32).reshape(23, 1, 1, 1)
    y = numpy.arange(23)
    whole = Loader(x, y, batch_size=8, shuffle=True, seed=5, device="cpu")
    parts = [whole.sharded(r, 3) for r in range(3)]
    assert len(whole) == 3 and all(len(p) == 3 for p in parts)
    for epoch in range(2):
        for full, *shards in zip(whole.batches(epoch), *(p.batches(epoch) for p in parts)):
            sizes = [len(s[1]) for s in shards]
            assert max(sizes) - min(sizes) <= 1  # nearly equal parts
            numpy.testing.assert_array_equal(numpy.concatenate([s[1] for s in shards]), full[1])
    # 2 samples left over for 3 ranks: that batch is skipped, on every rank alike
    short = Loader(x[:18], y[:18], batch_size=8, shuffle=False, device="cpu")
    assert len(short) == 3 and len(short.sharded(0, 3)) == 2 and len(short.sharded(2, 3)) == 2


def test_sharded_loader_rejects_what_cannot_be_shared():
    loader = Loader(numpy.zeros((10, 1, 1, 1)), numpy.zeros(10), batch_size=2, device="cpu")
    with pytest.raises(ValueError, match="batch of 2 cannot be shared by 3 ranks"):
        loader.sharded(0, 3)
    with pytest.raises(ValueError, match="0 <= rank < size"):
        loader.sharded(2, 2)


@pytest.mark.parametrize("failure, said", [
    (ImportError("No module named 'mpi4py'"), r'no mpi4py .* pip install "minicnn\[mpi\]"'),
    (RuntimeError("cannot load MPI library"), r"no usable MPI library .*cannot load MPI library.* pip install mpi4py"),
])
def test_missing_mpi_is_an_error_naming_the_install_command(monkeypatch, failure, said):
    """No mpi4py, or an mpi4py that cannot load an MPI library."""
    real_import = builtins.__import__

    def failing_mpi4py(name, *args, **kwargs):
        if name.startswith("mpi4py"):
            raise failure
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", failing_mpi4py)
    with pytest.raises(ImportError, match=said):
        distributed.Communicator()


def test_workers_without_mpi_is_an_error_naming_the_install_command(monkeypatch):
    monkeypatch.setattr(launch.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(launch, "mpiexec_path", lambda: None)
    with pytest.raises(RuntimeError, match=r"needs mpi4py and an MPI library with mpiexec.*pip install mpi4py mpich"):
        launch.spawn(2, "train.py", [])


def test_world_size_comes_from_the_launchers_variables(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.world_size_from_environment() == 1
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert distributed.world_size_from_environment() == 4


@needs_mpi
def test_train_cifar_with_two_workers_is_killed_and_resumes_where_a_straight_run_ends(tmp_path):
    """--workers 2 end to end: only rank 0 writes; a kill of the whole launch (mpiexec and
    both ranks) after the first checkpoint, then --resume --workers 2, ends with the
    weights and history of an uninterrupted 2-worker run."""
    from conftest import assert_runs_end_alike, write_fake_cifar
    from minicnn.models import load_model
    write_fake_cifar(tmp_path / "data", per_batch=120, learnable=True)
    script = os.path.join(ROOT, "examples", "train_cifar.py")
    settings = [sys.executable, script, "--device", "cpu", "--data", str(tmp_path / "data"), "--workers", "2",
                "--model", "seed004_base", "--epochs", "3", "--batch-size", "100", "--augment", "seed004",
                "--seed", "7", "--limit", "400"]
    straight = subprocess.run([*settings, "--out", str(tmp_path / "straight")], capture_output=True, text=True,
                              timeout=600)
    assert straight.returncode == 0, straight.stdout + straight.stderr
    assert straight.stdout.count("Epoch 3/3") == 1, "rank 1 printed too, or rank 0 did not"
    assert "2 workers of 50+ images" in straight.stdout and "Test accuracy:" in straight.stdout

    killed = tmp_path / "killed"
    process = subprocess.Popen([*settings, "--out", str(killed)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (killed / "checkpoint.npz").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the launcher, mpiexec and both ranks at once
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = load_model(killed / "checkpoint.npz").metadata["run"]["completed_epochs"]
    assert 1 <= done < 3

    resumed = subprocess.run([sys.executable, script, "--resume", "--out", str(killed), "--data",
                              str(tmp_path / "data"), "--device", "cpu", "--workers", "2"],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"Resuming {killed} after epoch {done} of 3" in resumed.stdout
    assert_runs_end_alike(tmp_path / "straight", killed)


def test_workers_must_agree_with_what_mpiexec_started(tmp_path, monkeypatch):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_cifar.py"), "--workers", "3",
                           "--data", str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PMI_SIZE="2"))
    assert done.returncode == 2 and "--workers 3, but mpiexec started 2 processes" in done.stderr


class ThreadRanks:
    """Two 'ranks' as two threads of this process, for testing the sync batch-norm maths
    without MPI: allreduce_sum_ waits for both and hands each the sum."""

    def __init__(self, size):
        import threading
        self.size, self.barrier, self.slots = size, threading.Barrier(size), [None] * size
        self.local = threading.local()

    def allreduce_sum_(self, array):
        self.slots[self.local.rank] = array.copy()
        self.barrier.wait()
        array[...] = sum(self.slots)
        self.barrier.wait()
        return array


@pytest.mark.parametrize("shape, cut", [((7, 3, 3, 4), 3), ((9, 5), 4)])
def test_sync_batchnorm_on_two_shards_is_batchnorm_on_the_whole_batch_float64(shape, cut):
    """Forward and backward of the two shards, concatenated, equal the reference batch-norm
    on the whole batch (whose float64 gradient check is in test_gradcheck.py); the shards'
    ggamma and gbeta add up to the whole batch's."""
    import threading
    from minicnn.distributed import sync_batchnorm as sync
    from minicnn.functions import normalization as bn
    rng = numpy.random.default_rng(0)
    x, gy = rng.normal(size=shape), rng.normal(size=shape)
    gamma, beta = rng.normal(size=shape[-1]), rng.normal(size=shape[-1])
    y, cache = bn.batch_norm_train_forward(x, gamma, beta, 1e-3)
    gx, ggamma, gbeta = bn.batch_norm_train_backward(gy, cache)
    comm, parts = ThreadRanks(2), [None, None]

    def rank(r, s):
        comm.local.rank = r
        ys, c = sync.sync_batch_norm_train_forward(x[s], gamma, beta, 1e-3, comm)
        parts[r] = (ys, c.mean, c.var, *sync.sync_batch_norm_train_backward(gy[s], c))
    threads = [threading.Thread(target=rank, args=(r, s)) for r, s in enumerate((slice(0, cut), slice(cut, None)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numpy.testing.assert_allclose(numpy.concatenate([p[0] for p in parts]), y, rtol=1e-12, atol=1e-12)
    for p in parts:
        numpy.testing.assert_allclose(p[1], cache.mean, rtol=1e-12, atol=1e-12)
        numpy.testing.assert_allclose(p[2], cache.var, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(numpy.concatenate([p[3] for p in parts]), gx, rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(parts[0][4] + parts[1][4], ggamma, rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(parts[0][5] + parts[1][5], gbeta, rtol=1e-10, atol=1e-12)


@needs_mpi
def test_sync_batchnorm_passes_a_float64_gradient_check_on_one_rank():
    from mpi4py import MPI
    from minicnn import gradcheck
    from minicnn.autograd import Tensor
    from minicnn import functional as F
    comm = distributed.Communicator(MPI.COMM_SELF)
    rng = numpy.random.default_rng(1)
    x = Tensor(rng.normal(size=(6, 2, 2, 3)), requires_grad=True)
    gamma, beta = Tensor(rng.normal(size=3), requires_grad=True), Tensor(rng.normal(size=3), requires_grad=True)
    mean, var = Tensor(numpy.zeros(3)), Tensor(numpy.ones(3))
    assert gradcheck(lambda a, g, b: F.batch_norm(a, g, b, mean, var, comm=comm), [x, gamma, beta])
