"""benchmarks/run.py end to end on a tiny setting: it must run and write its three outputs
with the numbers they claim (the real runs are committed in benchmarks/results/)."""
import importlib.util
import json
import math
import os
import sys

import numpy
import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import run  # noqa: E402


def test_run_writes_tables_json_and_plot(tmp_path):
    run.main(["--device", "cpu", "--against", "none", "--models", "seed001_model0",
              "--batch-sizes", "8", "128", "--repeats", "1", "--out", str(tmp_path), "--tag", "smoke"])
    (json_path,) = tmp_path.glob("*-smoke.json")
    report = json.loads(json_path.read_text())
    assert report["backends"] == ["numpy", "numpy-ref"]
    assert {row["kind"] for row in report["layers"]} >= {"conv", "im2col", "maxpool", "batchnorm",
                                                         "dense", "softmax_ce"}
    step = next(e for e in report["steps"] if e["batch"] == 128)
    assert step["numpy"]["train"]["median_s"] > 0 and step["numpy"]["peak_bytes"] > 0
    assert step["flops_per_image"] == 2 * (30 * 30 * 27 * 16 + 13 * 13 * 144 * 32 + 4 * 4 * 288 * 64
                                           + 256 * 256 + 256 * 10)
    markdown = json_path.with_suffix(".md").read_text()
    assert "| seed001_model0 |" in markdown and "GEMM floor" in markdown
    assert json_path.with_suffix(".png").stat().st_size > 1000


def test_run_times_mixed_precision_steps_on_both_engines(tmp_path):
    """--precision mixed_float16: minicnn's model computes in float16 under loss scaling,
    PyTorch's step runs under autocast with a GradScaler, and the report says which
    precision each engine ran in (its file names too, so float32 results stay)."""
    from minicnn import mixed_precision, optimizers
    model, train, _ = run.minicnn_step("seed001_model0", 4, "numpy", precision="mixed_float16")
    assert mixed_precision.global_policy().name == "float32"  # set for the model only
    assert {layer.compute_dtype for layer in model.layers if layer.weights} == {numpy.dtype(numpy.float16)}
    assert isinstance(model.optimizer, optimizers.LossScaleOptimizer)
    before = [w.copy() for w in model.get_weights()]
    train()
    assert model.optimizer.iterations == 1 and any((a != b).any() for a, b in zip(model.get_weights(), before))
    if importlib.util.find_spec("torch") is not None:
        import torch
        torch_train, torch_infer = run.torch_step(model, 4, "cpu", "mixed_float16")
        seen = []
        handle = torch.nn.modules.module.register_module_forward_hook(
            lambda module, args, out: seen.append(out.dtype) if isinstance(module, torch.nn.Conv2d) else None)
        try:
            torch_train()
        finally:
            handle.remove()
        assert seen and set(seen) == {torch.float16}
    run.main(["--device", "cpu", "--against", "none", "--models", "seed001_model0", "--batch-sizes", "4",
              "--repeats", "1", "--skip-layers", "--precision", "mixed_float16", "--out", str(tmp_path)])
    (json_path,) = tmp_path.glob("*-mixed_float16.json")
    report = json.loads(json_path.read_text())
    assert report["precision"] == "mixed_float16"
    assert report["step_precision"] == {"numpy": "mixed_float16", "numpy-ref": "mixed_float16"}
    (step,) = report["steps"]
    assert step["numpy"]["precision"] == "mixed_float16" and step["numpy"]["train"]["median_s"] > 0
    assert "mixed_float16" in json_path.with_suffix(".md").read_text()


def test_run_with_workers_times_ranks_beside_one_process(tmp_path):
    """run.py --workers 2 on a tiny setting: one round, one repeat; the 2-rank figure comes
    from a real mpiexec launch (skipped, with the reason, where MPI is missing)."""
    import pytest
    from minicnn.distributed import launch
    try:
        launch.require_mpi()
    except RuntimeError as error:
        pytest.skip(str(error))
    run.main(["--device", "cpu", "--workers", "2", "--against", "none", "--models", "seed001_model0",
              "--batch-sizes", "16", "--repeats", "1", "--rounds", "1", "--out", str(tmp_path), "--tag", "smoke"])
    (json_path,) = tmp_path.glob("*-workers2-smoke.json")
    report = json.loads(json_path.read_text())
    (step,) = report["steps"]
    assert step["model"] == "seed001_model0" and step["batch"] == 16 and len(step["rounds"]) == 1
    assert step["numpy-2-workers"]["median_s"] > 0 and step["numpy-2-workers"]["cores_per_rank"] >= 1
    assert step["numpy"]["median_s"] > 0
    assert "| seed001_model0 | 16 |" in json_path.with_suffix(".md").read_text()


def test_loss_gap_p_values_match_the_t_table():
    """The two-sided p-values of Student's t at the tables' 5% critical values."""
    import loss_gap
    for t, df in ((12.706, 1), (4.303, 2), (2.776, 4), (2.228, 10), (1.960, 1e6)):
        assert abs(2 * loss_gap.t_tail(t, df) - 0.05) < 2e-4, (t, df)
    t, df, p = loss_gap.welch([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert t == 0 and abs(p - 1) < 1e-6
    t, df, p = loss_gap.welch([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])  # t = -1 / sqrt(2/3), df = 4
    assert abs(t + 1.2247) < 1e-4 and abs(df - 4) < 1e-9 and abs(p - 0.2879) < 1e-3


def test_loss_gap_rank_tests_match_worked_values():
    """Mann-Whitney and Wilcoxon by the normal approximation, against values worked by hand
    (and given by scipy.stats with method='asymptotic', no continuity correction)."""
    import loss_gap
    u, z, p = loss_gap.mann_whitney([1, 2, 3], [4, 5, 6])  # U = 0, sd = sqrt(9 * 7 / 12)
    assert u == 0 and abs(z + 1.9640) < 1e-4 and abs(p - 0.0495) < 1e-4
    assert loss_gap.mann_whitney([4, 5, 6], [1, 2, 3])[0] == 9
    assert list(loss_gap.ranks([3.0, 1.0, 3.0, 2.0])) == [3.5, 1.0, 3.5, 2.0]
    assert loss_gap.mann_whitney([1, 2], [1, 2])[2] == 1.0
    w, z, p = loss_gap.wilcoxon([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])  # all 5 up: W+ = 15, sd = sqrt(5*6*11/24)
    assert w == 15 and abs(z - 2.0226) < 1e-4 and abs(p - 0.0431) < 1e-4
    assert loss_gap.wilcoxon([1, 2], [1, 2]) == (0.0, 0.0, 1.0)


def test_loss_gap_spread_test_is_welch_on_deviations_from_the_median():
    """Brown-Forsythe: a shifted copy spreads the same (t = 0); [0, 1, 2] against [0, 2, 4]
    is Welch's t of their deviations [1, 0, 1] and [2, 0, 2]: t = -(2/3) / sqrt(5/9), df = 50/17."""
    import loss_gap
    t, df, p = loss_gap.spread_test([1.0, 2.0, 3.0], [11.0, 12.0, 13.0])
    assert t == 0 and p == 1.0
    t, df, p = loss_gap.spread_test([0.0, 1.0, 2.0], [0.0, 2.0, 4.0])
    assert abs(t + (2 / 3) / math.sqrt(5 / 9)) < 1e-12 and abs(df - 50 / 17) < 1e-12
    assert 0.3 < p < 0.5


def test_loss_gap_collects_both_engines_runs_and_reports(tmp_path, monkeypatch, capsys):
    """collect turns train_cifar.py's and torch_reference.py's outputs into records, once;
    report puts each engine's seeds side by side, epoch by epoch."""
    import loss_gap
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setattr(loss_gap, "RESULTS", str(results))
    runs = tmp_path / "runs"
    for seed, loss, accuracy in ((0, 1.9, 0.40), (1, 1.8, 0.44), (2, 1.85, 0.42)):
        out = runs / f"minicnn-s{seed}"
        out.mkdir(parents=True)
        (out / "history.json").write_text(json.dumps({"epoch": [1], "loss": [loss], "val_accuracy": [accuracy]}))
        (out / "results.json").write_text("{}")
        (runs / f"torch-s{seed}.jsonl").write_text(json.dumps({"epoch": 1, "loss": loss - 0.1, "val_accuracy": accuracy + 0.02}) + "\n")
    unfinished = runs / "minicnn-s3"
    unfinished.mkdir()
    (unfinished / "history.json").write_text(json.dumps({"epoch": [1], "loss": [9.0], "val_accuracy": [0.1]}))
    assert len(loss_gap.collect(str(runs))) == 6  # the unfinished run (no results.json) is left out
    assert loss_gap.collect(str(runs)) == []      # and nothing twice
    loss_gap.report()
    table = capsys.readouterr().out
    assert "| 1 | training loss | 3, 1.8500, 0.0500 | 3, 1.7500, 0.0500 | +0.1000 |" in table
    assert "| 1 | test accuracy | 3, 0.4200, 0.0200 | 3, 0.4400, 0.0200 | -0.0200 |" in table

    # accuracy.py's longer runs of the recipe: each seed's longest run counts, once
    for engine, seed, losses in (("minicnn", 0, [1.9, 1.0]), ("minicnn", 1, [1.8, 1.2]),
                                 ("torch", 0, [1.8, 0.9]), ("torch", 1, [1.7, 0.7])):
        history = {"epoch": [1, 2], "loss": losses, "val_accuracy": [0.5, 0.6]}
        (results / f"{engine}-seed003_6layer-e2-s{seed}-cpu.json").write_text(
            json.dumps({"engine": engine, "seed": seed, "history": history}))
    (results / "torch-seed003_4layer-e2-s1-cpu.json").write_text("not this model's: never read")
    loss_gap.report()
    table = capsys.readouterr().out
    assert "| 1 | training loss | 3, 1.8500, 0.0500 | 3, 1.7500, 0.0500 | +0.1000 |" in table  # seed 0, 1 replaced
    assert "| 2 | training loss | 2, 1.1000, 0.1414 | 2, 0.8000, 0.1414 | +0.3000 |" in table

    # PyTorch on minicnn's draws (torch_reference.py --draws minicnn): paired with minicnn's seeds
    for seed, loss in ((0, 1.92), (1, 1.79), (2, 1.87)):
        (runs / f"torch-sameDraws-s{seed}.jsonl").write_text(
            json.dumps({"epoch": 1, "loss": loss, "val_accuracy": 0.43}) + "\n")
    (runs / "torch-sameDraws-s9.jsonl").write_text("")  # started, no epoch finished: no record
    (runs / "torch-sameDraws-s7.jsonl").write_text(json.dumps({"epoch": 1, "loss": 2.1, "val_accuracy": 0.3}))
    assert sorted(os.path.basename(n) for n in loss_gap.collect(str(runs))) == [
        f"loss-gap-torch-minicnn-draws-s{s}.json" for s in (0, 1, 2, 7)]  # none taken for PyTorch's own
    os.remove(results / "loss-gap-torch-minicnn-draws-s7.json")  # no minicnn run of seed 7 here
    (runs / "torch-sameDraws-s7.jsonl").unlink()
    loss_gap.report()
    table = capsys.readouterr().out
    paired, draws = table.split("seed by seed")[1].split("The draws in one engine")
    # minicnn's seeds 0, 1, 2 (1.9, 1.8, 1.85) minus these: -0.02, +0.01, -0.02
    assert "| 1 | training loss | 3 | 1.8500 | 1.8600 | -0.0100 | 0.0173 | 0.0656 | -1.00 (2) |" in paired
    assert "Seed 0, epoch by epoch" not in table  # one epoch on PyTorch's side: no such table
    (runs / "torch-sameDraws-s0.jsonl").write_text("".join(json.dumps(
        {"epoch": e, "loss": loss, "val_accuracy": 0.5}) + "\n" for e, loss in ((1, 1.92), (2, 1.05))))
    os.remove(results / "loss-gap-torch-minicnn-draws-s0.json")
    loss_gap.collect(str(runs))
    loss_gap.report()
    table = capsys.readouterr().out
    assert "| 2 | 1.0000, 1.0500 | 60.00%, 50.00% |" in table.split("Seed 0, epoch by epoch")[1]
    # the five runs that reached epoch 2, where each started and ended; r of (1.9, 1.8, 1.8,
    # 1.7, 1.92) against (1.0, 1.2, 0.9, 0.7, 1.05) is 0.600
    starts = table.split("Every run that reached epoch 2")[1]
    assert "| minicnn | 1 | 1.8000 | 1.2000 | 60.00% |" in starts
    assert "| PyTorch, minicnn's draws | 0 | 1.9200 | 1.0500 | 50.00% |" in starts
    assert "over these 5 runs, epoch 1 loss against epoch 2: +0.60 (loss)" in starts
    assert "| 1 | training loss | 3, 1.8600, 0.0656 | 3, 1.7500, 0.0500 | +0.1100 |" in draws

    # one of minicnn's draws at a time (--draws order / init), each paired with PyTorch's own
    # run of the seed (1.8, 1.7, 1.75 after epoch 1): order's differences +0.05, 0, +0.05
    for part, seed, loss in (("order", 0, 1.85), ("order", 1, 1.70), ("order", 2, 1.80), ("init", 2, 1.60)):
        (runs / f"torch-draws-{part}-s{seed}.jsonl").write_text(
            json.dumps({"epoch": 1, "loss": loss, "val_accuracy": 0.4}) + "\n")
    assert sorted(os.path.basename(n) for n in loss_gap.collect(str(runs))) == [
        "loss-gap-torch-minicnn-init-s2.json"] + [f"loss-gap-torch-minicnn-order-s{s}.json" for s in (0, 1, 2)]
    loss_gap.report()
    singles = capsys.readouterr().out.split("One of minicnn's draws at a time")[1]
    assert "| 1 | training loss | 3 | 1.7833 | 1.7500 | +0.0333 | 0.0289 |" in singles
    assert "minicnn's init only mean" not in singles  # one seed: no paired test
    seeds = singles.split("seed by seed, after epoch 1")[1]  # slowest start on all three of minicnn's draws first
    assert ("| 0 | 1.8000 |  | 1.8500 | 1.9200 |\n| 2 | 1.7500 | 1.6000 | 1.8000 | 1.8700 |\n"
            "| 1 | 1.7000 |  | 1.7000 | 1.7900 |") in seeds


def test_loss_gap_fisher_test_matches_worked_values():
    """Fisher's exact test, one-sided: with the hits dealt at random, the chance the first
    group gets as many or more. 4 of 20 against 0 of 20: all four hits in the first
    group, C(20, 4) / C(40, 4) = 4845 / 91390."""
    import loss_gap
    assert abs(loss_gap.fisher_greater(4, 20, 0, 20) - 4845 / 91390) < 1e-12
    assert loss_gap.fisher_greater(0, 20, 4, 20) == 1.0  # none in the first: as many or more is certain
    assert loss_gap.fisher_greater(1, 1, 0, 1) == 0.5
    # 2 of 3 against 1 of 3: P(2) + P(3) = (C(3,2) C(3,1) + C(3,3) C(3,0)) / C(6,3) = 10 / 20
    assert abs(loss_gap.fisher_greater(2, 3, 1, 3) - 0.5) < 1e-12
    assert loss_gap.fisher_greater(0, 5, 0, 5) == 1.0  # no hits at all


def test_loss_gap_tests_the_tail_on_the_fresh_seeds_apart(tmp_path, monkeypatch, capsys):
    """report counts the slow starts of the seeds before FRESH_FROM and of the fresh seeds
    apart, only over seeds both engines finished, and never mixes the two samples."""
    import loss_gap
    monkeypatch.setattr(loss_gap, "RESULTS", str(tmp_path))
    first = loss_gap.FRESH_FROM
    losses = {  # seed: (PyTorch's own, PyTorch on minicnn's draws)
        0: (1.80, 1.95), 1: (1.82, 1.81), 2: (1.79, 1.90),            # picked after looking: 2 of 3 against 0
        first: (1.81, 1.85), first + 1: (1.90, 1.89), first + 2: (1.83, 1.84), first + 3: (1.80, 1.99)}
    for seed, (own, theirs) in losses.items():
        for engine, loss in (("torch", own), ("torch-minicnn-draws", theirs)):
            (tmp_path / f"loss-gap-{engine}-s{seed}.json").write_text(json.dumps(
                {"engine": engine, "seed": seed, "epochs": [{"epoch": 1, "loss": loss, "val_accuracy": 0.4}]}))
    (tmp_path / f"loss-gap-torch-minicnn-draws-s{first + 4}.json").write_text(json.dumps(  # no own run: left out
        {"engine": "torch-minicnn-draws", "seed": first + 4, "epochs": [{"epoch": 1, "loss": 2.5, "val_accuracy": 0.1}]}))
    (tmp_path / "loss-gap-minicnn-s0.json").write_text(json.dumps(
        {"engine": "minicnn", "seed": 0, "history": {"epoch": [1], "loss": [1.8], "val_accuracy": [0.4]}}))
    loss_gap.report()
    tail = capsys.readouterr().out.split("Slow starts")[1]
    # seeds 0-2: 2 of 3 against 0 of 3, p = C(3,2) C(3,0) / C(6,2) = 3 / 15; means 1.8867 - 1.8033
    assert "| 0-2, threshold picked after looking | 3 | 2 | 0 | 0.200 |" in tail
    assert "| +0.0833 |" in tail
    # fresh seeds: 2 (1.89, 1.99) against 1 (1.90) of 4: p = P(2) + P(3)
    # = (C(4,2) C(4,1) + C(4,3) C(4,0)) / C(8,3) = 28 / 56; means 1.8925 - 1.8350
    fresh = f"| {first}-{first + 3}, declared beforehand | 4 | 2 | 1 | 0.500 |"
    assert fresh in tail and "| +0.0575 |" in tail


def test_conv_ceiling_times_every_layer_three_ways(tmp_path):
    """benchmarks/conv_ceiling.py on a tiny batch: a row per layer with PyTorch's, minicnn's
    and the bare GEMMs' times, and the GEMM blocks are the kernels' cache blocks."""
    pytest.importorskip("torch")
    import conv_ceiling
    from minicnn.distributed import threads
    conv_ceiling.main(["--batch", "2", "--rounds", "1", "--repeats", "1", "--out", str(tmp_path)])
    (json_path,) = tmp_path.glob("*-conv-ceiling.json")
    rows = json.loads(json_path.read_text())["rows"]
    assert [(r["model"], r["image"], r["C"]) for r in rows] == [l[:3] for l in conv_ceiling.LAYERS]
    assert all(len(r["ms"]) == 6 and min(r["ms"].values()) > 0 for r in rows)
    assert "GEMMs alone / PyTorch" in json_path.with_suffix(".md").read_text()
    # the rows path's blocks: as many images as fit in CHUNK_BYTES, together every image once
    path, forward, backward = conv_ceiling.gemm_shapes(64, 32, 16, 16)
    assert path == "rows" and sum(m for m, _, _ in forward) == 64 * 32 * 34
    assert {(k, n) for _, k, n in forward} == {(48, 48)} and len(backward) == 2 * len(
        threads.chunks_of(slice(0, 64), 2 * 32 * 34 * 96 * 4, 32 * 34))


def _profile_and_check(device):
    import profile_step
    from minicnn import autograd, functional, zoo
    from minicnn.layers import Conv2D
    result = profile_step.profile("seed001_model0", 8, device, steps=2, warmup=1)
    rows = {name: (calls, host, dev) for name, calls, host, dev in result["rows"]}
    convs = sum(isinstance(layer, Conv2D) for layer in zoo.seed001_model0().layers)
    assert rows["conv2d"][0] == convs and rows["conv2d (backward)"][0] == convs
    assert rows["optimizer update"][0] == 1 and "dense" in rows and "softmax_cross_entropy" in rows
    assert 0 < sum(host for _, host, _ in rows.values()) <= result["step"]
    assert functional.apply is autograd.apply and autograd.apply.__module__ == "minicnn.autograd"  # put back
    text = profile_step.markdown(result)
    assert "| conv2d (backward) |" in text and "the rest" in text
    return rows


def test_profile_step_times_every_op_of_a_step():
    """benchmarks/profile_step.py on the CPU: every apply op of a seed model's step, forward
    and backward apart, and the update; their host times fit inside the step."""
    rows = _profile_and_check("cpu")
    assert all(dev is None for _, _, dev in rows.values())


@pytest.mark.gpu
def test_profile_step_reads_device_times_on_the_gpu():
    rows = _profile_and_check("gpu")
    assert rows["conv2d"][2] > 0 and rows["conv2d (backward)"][2] > 0  # CUDA events read after the steps
    assert all(dev >= 0 for _, _, dev in rows.values())


def test_init_draws_starts_minicnns_weights_where_minicnn_does(tmp_path, capsys):
    """benchmarks/init_draws.py: minicnn's side is minicnn's own initial model (its loss,
    computed by minicnn, is the one measured through PyTorch), PyTorch's side other weights."""
    pytest.importorskip("torch")
    import init_draws
    import minicnn
    from minicnn import Tensor, no_grad, zoo
    from minicnn.datasets import cifar10
    from conftest import write_fake_cifar
    write_fake_cifar(tmp_path, per_batch=40, learnable=True)
    found = init_draws.main(["--data", str(tmp_path / "cifar-10-batches-py"), "--model", "seed001_model0",
                             "--seeds", "3", "--images", "16"])
    (x, y), _ = cifar10.load_data(str(tmp_path / "cifar-10-batches-py"))
    x, y = x[:16].astype(numpy.float32) / 255, y[:16, 0]
    for seed in range(3):
        minicnn.set_seed(seed)
        model, _ = zoo.build("seed001_model0")
        with no_grad():
            p = model(Tensor(x), training=False).data  # the model ends in a softmax
        assert found["minicnn"][seed, 0] == pytest.approx(-numpy.log(p[numpy.arange(16), y]).mean(), rel=1e-5)
    assert found["minicnn"].shape == found["torch"].shape == (3, 3)
    assert not numpy.allclose(found["minicnn"][:, 2], found["torch"][:, 2])  # other draws, other gradients
    assert "| initial loss |" in capsys.readouterr().out


def test_dropout_loss_compares_both_engines_on_the_same_weights(tmp_path, capsys):
    """benchmarks/dropout_loss.py on a fresh seed003_6layer: the two engines' evaluation-mode
    losses agree (same weights, no dropout), and their training-mode losses differ from it
    by dropout's effect, the same on both within the draws' error."""
    pytest.importorskip("torch")
    import dropout_loss
    import minicnn
    from minicnn import zoo
    from conftest import write_fake_cifar
    write_fake_cifar(tmp_path, per_batch=40, learnable=True)
    minicnn.set_seed(0)
    model, recipe = zoo.build("seed003_6layer")
    model.compile(recipe.optimizer(), "sparse_categorical_crossentropy")
    model.save(tmp_path / "model.npz")
    found = dropout_loss.main(["--model", str(tmp_path / "model.npz"), "--data", str(tmp_path / "cifar-10-batches-py"),
                               "--images", "64", "--draws", "4"])
    (ours_eval, ours), (theirs_eval, theirs) = found["minicnn"], found["torch"]
    assert ours_eval == pytest.approx(theirs_eval, rel=1e-5)
    assert len(ours) == len(theirs) == 4 and ours.std() > 0 and theirs.std() > 0  # the masks vary
    assert "training-mode difference (minicnn - torch)" in capsys.readouterr().out
