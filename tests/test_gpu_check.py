"""benchmarks/gpu_check.py, the one command that checks a GPU machine, rehearsed on the
CPU: its steps run, a failing step is logged while the next ones still run, the time
budget is kept, and the summary and the bundle are written. (The whole rehearsal takes
about 2.5 minutes on 2 cores; these run the quick steps only.)"""
import argparse
import os
import sys
import tarfile
import time

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import gpu_check  # noqa: E402


def rehearsal_context(folder):
    """The Context that `--rehearse --data FOLDER --out FOLDER` gives the steps."""
    return gpu_check.Context(argparse.Namespace(rehearse=True, out=str(folder), kit=None, data=str(folder),
                                                stand_in=False, workers=2, test_files=None))


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
    import json
    ctx = rehearsal_context(tmp_path)
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


def test_the_untimed_steps_share_a_batch_and_the_timed_ones_run_alone():
    numbered = list(enumerate(gpu_check.STEPS, 1))
    names = [[step.name for _, step in group] for group in gpu_check.batches(numbered)]
    assert names[:2] == [["environment"], ["data", "kernels", "agreement", "tests"]]
    assert all(len(group) == 1 for group in names[2:])  # train, benchmark, speedrun, ...: alone
    # a --steps choice keeps the grouping of what is left
    chosen = [(i, s) for i, s in numbered if s.name in ("agreement", "tests", "train")]
    assert [[s.name for _, s in g] for g in gpu_check.batches(chosen)] == [["agreement", "tests"], ["train"]]


def test_steps_of_one_batch_run_at_the_same_time(tmp_path):
    """Two steps where the first waits for a file that only the second writes: run one
    after the other, the first would reach its limit."""
    flag = tmp_path / "flag"
    waits = gpu_check.Step("waits", 60, lambda ctx: gpu_check.python(
        "-c", f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.05)\nprint('saw it')"),
        gpu_check.last_line_starting("saw"), beside_others=True)
    writes = gpu_check.Step("writes", 60, lambda ctx: gpu_check.python(
        "-c", f"import time; time.sleep(0.5); open({str(flag)!r}, 'w').close(); print('wrote it')"),
        gpu_check.last_line_starting("wrote"), beside_others=True)
    ctx = rehearsal_context(tmp_path)
    ended = []
    rows = gpu_check.run_together([(1, waits), (2, writes)], ctx, 60, lambda row: ended.append(row["step"]))
    assert [(r["step"], r["result"]) for r in rows] == [("waits", "ok"), ("writes", "ok")]
    assert sorted(ended) == ["waits", "writes"]  # each reported once, as it ended
    assert "\nsaw it\n" in (tmp_path / "01-waits.log").read_text()  # its output, in its own log


def test_a_step_past_its_limit_is_killed_and_says_so(tmp_path):
    sleeps = gpu_check.Step("sleeps", 1, lambda ctx: gpu_check.python("-c", "import time; time.sleep(60)"))
    ctx = rehearsal_context(tmp_path)
    row = gpu_check.run_step(1, sleeps, ctx, 60)
    assert row["result"] == "TIMEOUT" and row["seconds"] < 30
    assert "[killed at its 1 s limit]" in (tmp_path / "01-sleeps.log").read_text()


def running(pid):
    """True while the process pid runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def gone_soon(pid):
    """True once the process pid has stopped running, within 5 s (an orphan is reaped by
    whoever adopts it)."""
    for _ in range(50):
        if not running(pid):
            return True
        time.sleep(0.1)
    return False


def leaving_a_child_running(pid_file, then):
    """Python code that starts a child (it sleeps 60 s), writes the child's pid to pid_file,
    then runs the code `then`."""
    return (f"import subprocess, sys, time\n"
            f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n" + then)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to see which processes run")
@pytest.mark.parametrize("how", ["killed at its limit", "exits"])
def test_a_step_s_own_children_end_with_it(tmp_path, how):
    """What a step started (the tests step's pytest processes) must not run on into the timed
    steps after it: the step's whole process group is killed when it ends, however it ends."""
    pid_file = tmp_path / "child.pid"
    script = leaving_a_child_running(pid_file, "time.sleep(60)\n" if how == "killed at its limit"
                                     else "print('left it running')\n")
    step = gpu_check.Step("parent", 3, lambda ctx: gpu_check.python("-c", script))
    ctx = rehearsal_context(tmp_path)
    row = gpu_check.run_step(1, step, ctx, 60)
    assert row["result"] == ("TIMEOUT" if how == "killed at its limit" else "ok")
    assert gone_soon(int(pid_file.read_text()))


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to see which processes run")
def test_a_sigterm_to_the_check_ends_the_running_step_s_processes(tmp_path):
    """Steps lead sessions of their own, so a SIGTERM to gpu_check (``timeout`` sends one)
    must end them through its own handler, or they would run on, orphaned."""
    import signal
    import subprocess
    pid_file = tmp_path / "child.pid"
    step_script = leaving_a_child_running(pid_file, "time.sleep(60)\n")
    check_script = (f"import argparse, sys\n"
                    f"sys.path.insert(0, {os.path.dirname(gpu_check.__file__)!r})\n"
                    f"import gpu_check\n"
                    f"gpu_check.end_steps_on_sigterm()\n"
                    f"step = gpu_check.Step('sleeps', 60, lambda ctx: gpu_check.python('-c', {step_script!r}))\n"
                    f"ctx = gpu_check.Context(argparse.Namespace(rehearse=True, out={str(tmp_path)!r}, kit=None, "
                    f"data={str(tmp_path)!r}, stand_in=False, workers=2, test_files=None))\n"
                    f"gpu_check.run_step(1, step, ctx, 60)\n")
    check = subprocess.Popen([sys.executable, "-c", check_script])
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert running(child)
    check.send_signal(signal.SIGTERM)
    assert check.wait(timeout=20) == 128 + signal.SIGTERM
    assert gone_soon(child)


def test_the_pytest_figure_says_why_everything_was_skipped():
    skipped_only = ("sss                                  [100%]\n"
                    "SKIPPED [3] tests/test_gpu_kernel_cuda.py:41: nvcc is not on PATH\n"
                    "3 skipped in 0.12s\n")
    assert gpu_check.pytest_figure(None, skipped_only) == "3 skipped in 0.12s (nvcc is not on PATH)"
    assert gpu_check.pytest_figure(None, "..s\n2 passed, 1 skipped in 3.1s\n") == "2 passed, 1 skipped in 3.1s"
    assert gpu_check.pytest_figure(None, "== 1 failed, 4 passed in 2.0s ==") == "1 failed, 4 passed in 2.0s"
    with pytest.raises(RuntimeError, match="no result line"):
        gpu_check.pytest_figure(None, "Traceback (most recent call last):\n  ImportError: no cupy\n")


def make_test_folder(folder, tests):
    """A folder of pytest files with the --device-half option (tests/conftest.py's) declared."""
    folder.mkdir()
    (folder / "conftest.py").write_text(
        "def pytest_addoption(parser):\n    parser.addoption('--device-half', default=None)\n")
    for name, body in tests.items():
        (folder / name).write_text(body)
    return folder


def test_the_tests_step_runs_files_apart_and_totals_them(tmp_path, capsys, monkeypatch):
    folder = make_test_folder(tmp_path / "suite", {
        "test_good.py": "import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    pass\n\n"
                        "@pytest.mark.skip(reason='no reason')\ndef test_c():\n    pass\n",
        "test_bad.py": "def test_fails():\n    assert 1 + 1 == 3, 'planted failure'\n"})
    monkeypatch.delenv("GPU_CHECK_DEADLINE", raising=False)
    out = tmp_path / "logs"
    code = gpu_check.main(["--inner", "tests", "--device", "cpu", "--out", str(out), "--workers", "2",
                           "--test-files", str(folder / "test_good.py"), str(folder / "test_bad.py")])
    printed = capsys.readouterr().out
    assert code == 1
    assert "test_good.py: ok, 2 passed, 1 skipped" in printed
    assert "test_bad.py: FAILED, 1 failed" in printed
    assert "planted failure" in printed  # the failed file's short summary, in the step's log
    assert printed.strip().splitlines()[-1] == (
        "tests: 2 passed, 1 failed, 0 errors, 1 skipped in 2 of 2 files, 2 at a time, "
        + printed.strip().splitlines()[-1].split("2 at a time, ")[1])
    assert "failed: test_bad.py" in printed.splitlines()[-1]
    assert "planted failure" in (out / "test_bad.log").read_text()


def test_the_tests_step_stops_its_files_before_the_limit_and_says_which(tmp_path, capsys, monkeypatch):
    folder = make_test_folder(tmp_path / "suite", {
        "test_slow.py": "import time\n\ndef test_sleeps():\n    time.sleep(120)\n"})
    monkeypatch.setenv("GPU_CHECK_DEADLINE", str(__import__("time").time() + 13))  # it stops 10 s early
    code = gpu_check.main(["--inner", "tests", "--device", "cpu", "--out", str(tmp_path / "logs"),
                           "--test-files", str(folder / "test_slow.py")])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 1
    assert last.startswith("tests: 0 passed, 0 failed, 0 errors, 0 skipped in 1 of 1 files")
    assert "stopped at the limit: test_slow.py" in last


def test_a_misspelt_test_file_is_refused_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--rehearse", "--data", str(tmp_path), "--out", str(tmp_path / "check"),
                        "--test-files", "test_layerz.py"])
    assert "no such test file: test_layerz.py" in capsys.readouterr().err
    assert not (tmp_path / "check").exists()


def test_the_tests_step_has_more_time_on_the_cpu_only(tmp_path):
    """The rehearsals run the whole suite on 2 cores, 1 file at a time: the tests step gets
    360 s there; on a GPU machine it keeps its 240 s."""
    step = next(s for s in gpu_check.STEPS if s.name == "tests")
    assert step.limit_for(rehearsal_context(tmp_path)) == 360
    on_gpu = rehearsal_context(tmp_path)
    on_gpu.small = False
    assert step.limit_for(on_gpu) == 240
    assert all(s.limit_for(on_gpu) == s.limit for s in gpu_check.STEPS)
