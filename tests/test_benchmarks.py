"""benchmarks/run.py end to end on a tiny setting: it must run and write its three outputs
with the numbers they claim (the real runs are committed in benchmarks/results/)."""
import json
import os
import sys

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
