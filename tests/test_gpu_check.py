"""benchmarks/gpu_check.py, the one command that checks a GPU machine, rehearsed on the
CPU: its steps run, a failing step is logged while the next ones still run, the time
budget is kept, and the summary and the bundle are written. (The whole rehearsal takes
about 2.5 minutes on 2 cores; these run the quick steps only.)"""
import os
import sys
import tarfile

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import gpu_check  # noqa: E402


def rows(summary):
    """{step: (result, figure)} from summary.md's table."""
    table = [line.split(" | ") for line in summary.splitlines() if line.startswith("| ") and "---" not in line][1:]
    return {cells[0].lstrip("| "): (cells[1], cells[3]) for cells in table}


def test_a_rehearsal_runs_its_steps_and_writes_the_summary_and_bundle(fake_cifar, tmp_path):
    root, _ = fake_cifar
    out, bundle = tmp_path / "check", tmp_path / "check.tar.gz"
    code = gpu_check.main(["--rehearse", "--data", str(root / "cifar-10-batches-py"), "--out", str(out),
                           "--steps", "environment", "data", "agreement", "--bundle", str(bundle)])
    summary = (out / "summary.md").read_text()
    result = rows(summary)
    assert code == 0, summary
    assert list(result) == ["environment", "data", "agreement"]
    assert all(r == "ok" for r, _ in result.values())
    assert "within float32 tolerance" in result["agreement"][1]
    assert "agreement: within float32 tolerance" in (out / "04-agreement.log").read_text()
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert "gpu_check/summary.md" in names and "gpu_check/04-agreement.log" in names


def test_a_failing_step_is_logged_and_the_next_one_still_runs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "check"
    code = gpu_check.main(["--rehearse", "--data", str(empty), "--out", str(out),
                           "--steps", "data", "agreement"])
    result = rows((out / "summary.md").read_text())
    assert code == 1
    assert result["data"][0] == "FAIL" and "lacks data_batch_1" in result["data"][1]
    assert result["agreement"][0] == "ok"


def test_steps_past_the_budget_are_not_run_and_say_so(tmp_path):
    out = tmp_path / "check"
    code = gpu_check.main(["--rehearse", "--data", str(tmp_path), "--out", str(out), "--budget", "1",
                           "--steps", "environment", "kernels"])
    result = rows((out / "summary.md").read_text())
    assert code == 1
    assert result == {"environment": ("skipped", "not run: the time budget is spent"),
                      "kernels": ("skipped", "not run: the time budget is spent")}


def test_it_needs_data_and_an_output_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--out", str(tmp_path)])
    assert "--kit KIT" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_check.main(["--kit", str(tmp_path)])
    assert "--out DIR is required" in capsys.readouterr().err


@pytest.mark.skipif(__import__("shutil").which("g++") is None, reason="the CuPy stand-in needs g++")
def test_on_the_cupy_stand_in_the_steps_take_the_gpu_path(fake_cifar, tmp_path):
    """--stand-in: the same steps with --device gpu, on tests/cupy_stand_in (a CPU `cupy`):
    the agreement step trains on both devices and runs a step with host waits forbidden."""
    root, _ = fake_cifar
    out = tmp_path / "check"
    code = gpu_check.main(["--stand-in", "--data", str(root / "cifar-10-batches-py"), "--out", str(out),
                           "--steps", "environment", "agreement"])
    summary = (out / "summary.md").read_text()
    result = rows(summary)
    assert code == 0, summary
    assert "CPU stand-in for CuPy (not a GPU" in summary
    assert "CuPy CPU stand-in" in result["environment"][1]
    assert "within float32 tolerance" in result["agreement"][1]
    assert "host synchronisation inside a training step: none detected" in result["agreement"][1]
    with pytest.raises(SystemExit):
        gpu_check.main(["--stand-in", "--rehearse", "--data", str(tmp_path), "--out", str(out)])


def test_the_mixed_step_benchmarks_mixed_precision_apart(tmp_path):
    """The 'mixed' step runs run.py --precision mixed_float16 into a folder of its own (the
    float32 report stays) and reads its figure from there. (Run by hand in the rehearsal:
    32 s on 2 cores, NumPy having no float16 BLAS; too slow for the suite.)"""
    import argparse
    import json
    ctx = gpu_check.Context(argparse.Namespace(rehearse=True, out=str(tmp_path), kit=None, data=str(tmp_path),
                                               stand_in=False))
    step = next(s for s in gpu_check.STEPS if s.name == "mixed")
    command = step.command(ctx)
    assert command[command.index("--precision") + 1] == "mixed_float16" and "--skip-layers" in command
    assert command[command.index("--out") + 1] == str(tmp_path / "benchmark-mixed_float16")
    assert gpu_check.benchmark_command(ctx).count("--skip-layers") == 1  # rehearsal sizes skip them already
    folder = tmp_path / "benchmark-mixed_float16"
    folder.mkdir()
    step_times = {"numpy": {"train": {"median_s": 0.5}}, "torch-cpu": {"train": {"median_s": 0.25}}}
    (folder / "report.json").write_text(json.dumps(
        {"backends": ["numpy", "torch-cpu"], "precision": "mixed_float16",
         "steps": [{"model": "seed001_model0", **step_times}]}))
    assert step.figure(ctx, "") == "numpy step at batch 128, mixed_float16: seed001_model0 500.0 ms (2.00x torch)"
