"""Check a GPU machine end to end with one command, in under 10 minutes.

    python benchmarks/gpu_check.py --kit KIT --out DIR [--bundle FILE.tar.gz]
    python benchmarks/gpu_check.py --kit KIT --out DIR --rehearse     # the same, on the CPU
    python benchmarks/gpu_check.py --kit KIT --out DIR --stand-in     # the GPU path, on a fake CuPy

KIT holds ../shared/data's cifar10-jpeg.tar.xz, cifar10-order.npz and
make_cifar10_batches.py (CIFAR-10 is rebuilt from them into DIR/cifar10 first); or give
--data, a cifar-10-batches-py folder. Run from a copied source tree with PYTHONPATH=. : nothing
needs installing beyond NumPy, CuPy, pytest and hypothesis (PyTorch and matplotlib where
present).

The steps, in order. Each runs as a process of its own under its own time limit (and
within --budget seconds in all); a failure or a timeout is logged and the next step runs.
Whatever a step started ends with it (its process group is killed), so nothing it left
running shares the machine with a timed step after it.
data, kernels, agreement and tests time nothing, so they run at the same time, on the
cores a GPU machine has to spare; every step that times something runs alone:

  environment  the GPU, driver, CUDA, CuPy, NumPy and PyTorch; one CuPy kernel compiled and run
  data         CIFAR-10 rebuilt from the kit (or --data checked)
  kernels      nvcc builds every fast_gpu kernel for sm_90 (tests/test_gpu_kernel_cuda.py)
  agreement    a small net with every kind of layer trained 3 steps (SGD Nesterov, Adam, and
               RMSprop centered with momentum and global_clipnorm) on the CPU and on the GPU from
               the same weights: losses and weights must agree to float32 tolerance; and one
               training step run with device synchronisation forbidden
  tests        the GPU half of the test suite (pytest --device-half gpu), one pytest per test file,
               --workers at a time (half the cores), each file's log in DIR/tests/; stopped 10 s
               before its limit, it still counts what ended; --test-files reruns only some
  train        examples/train_cifar.py --device gpu: seed004_base, its tutorial's 2 epochs; every
               file it writes is checked
  benchmark    benchmarks/run.py --device gpu: the seed models' steps at batch 128 beside PyTorch,
               and NumPy held to 2 threads
  speedrun     examples/speedrun.py --device gpu, one seed
  profile      benchmarks/profile_step.py --device gpu: seed004_base's step op by op, host and
               device time (is the step launch-bound?)
  mixed        benchmarks/run.py --device gpu --precision mixed_float16: the same steps in mixed
               precision, beside PyTorch's autocast (float16) with GradScaler
  speedrun-mixed  examples/speedrun.py --device gpu --precision mixed_float16, one seed

Each step's whole output goes to DIR/NN-step.log; DIR/summary.md, the table of results,
is written after every step and printed last. --bundle keeps a .tar.gz of DIR up to date
after every step, so a session that can bring back only a few files gets all of it, even
when the command is cut off.

--rehearse runs every step on the CPU (NumPy) instead, at a smaller size: the tests' CPU
twins, a short training run, one benchmarked model, a few speedrun steps. It proves the
script and everything it calls work, so that on a GPU machine only the GPU is unknown.

--stand-in runs the GPU path itself (--device gpu everywhere), at the rehearsal's sizes, on
tests/cupy_stand_in: a CPU stand-in for CuPy with CuPy's separate array type, its refusals
of implicit host/device copies and its ElementwiseKernel (compiled as C++). It finds what
the GPU path gets wrong in Python (a host array in a device operation, a device array
printed or plotted, a kernel given the wrong arguments) before a GPU's minutes are spent on
it. Its timings and memory figures are NumPy's and mean nothing.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CIFAR_FILES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta"]
STAND_IN = os.path.join(ROOT, "tests", "cupy_stand_in")  # --stand-in: a CPU `cupy` module
DATA_FOLDER = "cifar10"  # under --out: CIFAR-10 rebuilt from the kit (left out of the bundle)
TRAIN_OUTPUTS = ["checkpoint.npz", "best_model.npz", "model.npz", "history.json", "history.csv",
                 "results.json", "accuracy.png", "loss.png", "confusion_matrix.png", "predictions.png"]


# --- the steps ------------------------------------------------------------------------------
class Step:
    """One check: a command to run, its time limit, and how to read its result.

    command(ctx) -> argv list (or a str: the reason it is skipped); figure(ctx, log) -> a
    short line for the summary, or raises (then the step counts as failed). beside_others:
    the step times nothing, so it may run at the same time as its neighbours marked so too
    (the machine has cores to spare); a step that times something always runs alone.
    rehearsal_limit: the limit under --rehearse and --stand-in, where it differs (the tests
    step: the whole suite on 2 CPU cores, 1 file at a time, takes longer than on a GPU
    machine's 16, 8 at a time)."""

    def __init__(self, name, limit, command, figure=None, beside_others=False, rehearsal_limit=None):
        self.name, self.limit, self.command, self.figure = name, limit, command, figure
        self.beside_others, self.rehearsal_limit = beside_others, rehearsal_limit

    def limit_for(self, ctx):
        """This step's time limit on this run: the rehearsal's on the CPU, where it has one."""
        return self.rehearsal_limit if ctx.small and self.rehearsal_limit else self.limit


def python(*args):
    return [sys.executable, *map(str, args)]


def environment_command(ctx):
    return python(__file__, "--inner", "environment", "--device", ctx.device, "--kit", ctx.kit or "")


def data_command(ctx):
    if ctx.data:
        return python(__file__, "--inner", "data", "--data", ctx.data)
    script = os.path.join(ctx.kit, "make_cifar10_batches.py")
    if not os.path.isfile(script):
        return f"no --data, and the kit {ctx.kit!r} holds no make_cifar10_batches.py"
    return python(script, ctx.built_data_parent)


def data_figure(ctx, log):
    folder = ctx.cifar_folder()
    missing = [name for name in CIFAR_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise RuntimeError(f"{folder} lacks {', '.join(missing)}")
    return f"CIFAR-10 in {folder}"


PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)\b")
PYTEST_VERBOSE_RESULT = re.compile(r"::\S+ (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b")


def pytest_figure(ctx, log):
    """The last line pytest prints, e.g. '95 passed in 61.2s'; where nothing passed or
    failed (the kernels' test without nvcc, say), the first skip reason -rs printed too."""
    lines = [line.strip("= ") for line in log.splitlines() if " in " in line and PYTEST_COUNT.search(line)]
    if not lines:
        raise RuntimeError("pytest printed no result line")
    figure = lines[-1]
    if not re.search(r"\d+ (passed|failed|errors?)\b", figure):
        # "SKIPPED [3] tests/test_gpu_kernel_cuda.py:110: nvcc (the CUDA compiler) is not on the PATH"
        reasons = [line.split("] ", 1)[-1].split(": ", 1)[-1] for line in log.splitlines()
                   if line.startswith("SKIPPED")]
        figure += f" ({reasons[0]})" if reasons else ""
    return figure


def kernels_command(ctx):
    return python("-m", "pytest", "-q", "-rs", os.path.join(ROOT, "tests", "test_gpu_kernel_cuda.py"))


def agreement_command(ctx):
    return python(__file__, "--inner", "agreement", "--device", ctx.device)


def last_line_starting(prefix):
    def figure(ctx, log):
        lines = [line for line in log.splitlines() if line.startswith(prefix)]
        if not lines:
            raise RuntimeError(f"no line starting {prefix!r} in the output")
        return lines[-1][len(prefix):].strip()
    return figure


def tests_command(ctx):
    # one pytest per test file, several at a time (see inner_tests), each file's log in
    # DIR/tests/; -v there: a line per test as it ends, so a file stopped at the limit still
    # says which of its tests passed and failed
    return python(__file__, "--inner", "tests", "--device", ctx.device, "--out", os.path.join(ctx.out, "tests"),
                  "--workers", ctx.workers, *(["--test-files", *ctx.test_files] if ctx.test_files else []))


def train_command(ctx):
    size = ["--epochs", 1, "--limit", 2000] if ctx.small else []  # else the tutorial's 2 epochs
    return python(os.path.join(ROOT, "examples", "train_cifar.py"), "--device", ctx.device,
                  "--model", "seed004_base", "--seed", 0, "--data", ctx.cifar_folder(),
                  "--out", os.path.join(ctx.out, "train-seed004_base"), *size)


def train_figure(ctx, log):
    folder = os.path.join(ctx.out, "train-seed004_base")
    empty = [name for name in TRAIN_OUTPUTS
             if not os.path.isfile(os.path.join(folder, name)) or os.path.getsize(os.path.join(folder, name)) == 0]
    if empty:
        raise RuntimeError(f"train_cifar.py did not write {', '.join(empty)}")
    with open(os.path.join(folder, "results.json")) as f:
        results = json.load(f)
    with open(os.path.join(folder, "history.json")) as f:
        history = json.load(f)
    if results["device"] != ctx.device or len(history["epoch"]) != results["epochs"]:
        raise RuntimeError(f"results.json says device {results['device']}, {len(history['epoch'])} "
                           f"of {results['epochs']} epochs in history.json")
    if sum(map(sum, results["confusion_matrix"])) != 10000:
        raise RuntimeError("the confusion matrix does not count the 10,000 test images")
    return (f"test accuracy {results['test_accuracy']:.4f} after {results['epochs']} epoch(s), "
            f"{results['seconds_per_epoch']:.1f} s/epoch; all {len(TRAIN_OUTPUTS)} files written")


def benchmark_command(ctx, precision="float32"):
    if ctx.small:
        size = ["--models", "seed001_model0", "--repeats", 1, "--skip-layers", "--numpy-threads", 1]
    else:
        size = ["--repeats", 5]
    if precision != "float32" and "--skip-layers" not in size:  # the layer table is float32 either way
        size.append("--skip-layers")
    return python(os.path.join(ROOT, "benchmarks", "run.py"), "--device", ctx.device, "--batch-sizes", 128,
                  "--precision", precision, "--out", os.path.join(ctx.out, benchmark_folder(precision)), *size)


def benchmark_folder(precision):
    return "benchmark" if precision == "float32" else f"benchmark-{precision}"


def benchmark_figure(ctx, log, precision="float32"):
    """minicnn's step time against PyTorch's (and CuPy's against NumPy's) per model."""
    folder = os.path.join(ctx.out, benchmark_folder(precision))
    reports = [name for name in os.listdir(folder) if name.endswith(".json")] if os.path.isdir(folder) else []
    if not reports:
        raise RuntimeError("benchmarks/run.py wrote no report")
    with open(os.path.join(folder, reports[0])) as f:
        report = json.load(f)
    main = "cupy" if "cupy" in report["backends"] else "numpy"
    torch = next((n for n in report["backends"] if n.startswith("torch")), None)
    parts = []
    for entry in report["steps"]:
        cell = f"{entry['model']} {entry[main]['train']['median_s'] * 1e3:.1f} ms"
        if torch:
            cell += f" ({entry[main]['train']['median_s'] / entry[torch]['train']['median_s']:.2f}x torch"
            if main == "cupy" and "numpy" in entry:
                cell += f", {entry['numpy']['train']['median_s'] / entry['cupy']['train']['median_s']:.0f}x numpy"
            cell += ")"
        parts.append(cell)
    return f"{main} step at batch 128, {report.get('precision', 'float32')}: " + "; ".join(parts)


def mixed_benchmark_command(ctx):
    return benchmark_command(ctx, "mixed_float16")


def mixed_benchmark_figure(ctx, log):
    return benchmark_figure(ctx, log, "mixed_float16")


def speedrun_command(ctx, precision="float32"):
    if ctx.stand_in:  # one step, no warm-up run (the same code again): NumPy-speed convolutions
        size = ["--epochs", 1, "--limit", 1024, "--no-warmup"]
    elif ctx.rehearse:
        size = ["--epochs", 2, "--limit", 2048]
    else:
        size = []
    return python(os.path.join(ROOT, "examples", "speedrun.py"), "--device", ctx.device, "--runs", 1,
                  "--precision", precision, "--data", ctx.cifar_folder(), *size)


def mixed_speedrun_command(ctx):
    return speedrun_command(ctx, "mixed_float16")


def profile_command(ctx):
    steps = 3 if ctx.small else 20
    return python(os.path.join(ROOT, "benchmarks", "profile_step.py"), "--device", ctx.device,
                  "--model", "seed004_base", "--batch", 128, "--steps", steps,
                  "--out", os.path.join(ctx.out, "profile-seed004_base.md"))


def profile_figure(ctx, log):
    """The step's wall time and how busy the GPU was, from profile_step.py's table."""
    wall = last_line_starting("Step (wall")(ctx, log)
    busy = [line for line in log.splitlines() if line.startswith("Ops' device time")]
    return "seed004_base step" + wall.split(":", 1)[1].rstrip(".") + (f"; {busy[-1]}" if busy else "")


STEPS = [
    Step("environment", 90, environment_command, last_line_starting("environment:")),
    # these four time nothing and run at the same time, each in a process of its own
    Step("data", 90, data_command, data_figure, beside_others=True),
    Step("kernels", 90, kernels_command, pytest_figure, beside_others=True),
    Step("agreement", 120, agreement_command, last_line_starting("agreement:"), beside_others=True),
    Step("tests", 240, tests_command, last_line_starting("tests:"), beside_others=True, rehearsal_limit=360),
    Step("train", 150, train_command, train_figure),
    Step("benchmark", 200, benchmark_command, benchmark_figure),
    Step("speedrun", 150, speedrun_command, last_line_starting("1 run(s) on")),
    Step("profile", 60, profile_command, profile_figure),
    Step("mixed", 120, mixed_benchmark_command, mixed_benchmark_figure),
    Step("speedrun-mixed", 150, mixed_speedrun_command, last_line_starting("1 run(s) on")),
]


# --- running them -----------------------------------------------------------------------------
class Context:
    def __init__(self, args):
        self.rehearse, self.out, self.kit, self.data = args.rehearse, os.path.abspath(args.out), args.kit, args.data
        self.stand_in, self.workers, self.test_files = args.stand_in, args.workers, args.test_files
        self.small = args.rehearse or args.stand_in  # the rehearsal's sizes: CPU speed
        self.device = "cpu" if args.rehearse else "gpu"
        # the stand-in goes first on the steps' path, so their `import cupy` finds it
        self.path = [STAND_IN] if args.stand_in else []
        self.built_data_parent = os.path.join(self.out, DATA_FOLDER)

    def cifar_folder(self):
        if self.data:
            return self.data
        return os.path.join(self.built_data_parent, "cifar-10-batches-py")


class Watched:
    """A child process with a deadline (a time.time()): ``ended()`` polls it, and kills it
    once the deadline has passed.

    own_group: it leads a process group of its own, which is swept (SIGKILL) when it ends,
    however it ends: whatever the step started (the tests step's pytest processes, their
    own children) must not run on into the timed steps after it. The tests step's pytest
    processes are Watched too, but in the step's group (own_group=False): stopping one of
    them must not take the step itself down."""

    def __init__(self, command, log, deadline, own_group=True, **popen):
        self.deadline, self.own_group, self.start, self.killed = deadline, own_group, time.time(), False
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=own_group, **popen)

    def ended(self):
        """True once the process has exited, or been killed at its deadline (then
        ``killed``); ``returncode`` is its exit code, None when killed."""
        if self.process.poll() is not None:
            self.kill()  # what it left running in its group
            return True
        if time.time() < self.deadline:
            return False
        self.kill()
        self.killed = True
        return True

    @property
    def returncode(self):
        return None if self.killed else self.process.returncode

    @property
    def seconds(self):
        return time.time() - self.start

    def kill(self):
        try:
            if self.own_group:
                os.killpg(self.process.pid, signal.SIGKILL)
            elif self.process.poll() is None:
                self.process.kill()
        except (ProcessLookupError, PermissionError):  # the group has no process left
            pass
        self.process.wait()


class RunningStep:
    """A step's process under way: its row for the summary, its log and its deadline."""

    def __init__(self, index, step, ctx, seconds_left):
        self.step, self.ctx = step, ctx
        self.log_name = f"{index:02d}-{step.name}.log"
        self.row = {"step": step.name, "result": "skipped", "seconds": 0.0, "figure": "", "log": self.log_name}
        self.process = None  # stays None for a step skipped before it starts
        command = step.command(ctx)
        self.limit = min(step.limit_for(ctx), seconds_left)
        log = open(os.path.join(ctx.out, self.log_name), "w")
        if isinstance(command, str) or seconds_left < 5:
            self.row["figure"] = command if isinstance(command, str) else "not run: the time budget is spent"
            log.write(f"skipped: {self.row['figure']}\n")
            log.close()
            return
        log.write(f"$ {shlex.join(map(str, command))}\n(limit {self.limit:.0f} s)\n\n")
        log.flush()
        self.log = log
        deadline = time.time() + self.limit
        # GPU_CHECK_DEADLINE: for a step that can stop itself cleanly before it is killed
        # (the tests: it stops its pytest processes and reports what finished)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [*ctx.path, ROOT, os.environ.get("PYTHONPATH")])),
                   PYTHONUNBUFFERED="1", MPLBACKEND="Agg", GPU_CHECK_DEADLINE=f"{deadline:.1f}")
        self.process = Watched(command, log, deadline, cwd=ROOT, env=env)

    def poll(self):
        """The finished row, or None while the step runs on (it is killed at its limit)."""
        if self.process is None:
            return self.row
        if not self.process.ended():
            return None
        returncode, elapsed = self.process.returncode, self.process.seconds
        self.row["seconds"] = elapsed
        self.log.write(f"\n[exit code {returncode}, {elapsed:.1f} s]\n" if returncode is not None
                       else f"\n[killed at its {self.limit:.0f} s limit]\n")
        self.log.close()
        self.process = None
        return self.read_result(returncode)

    def read_result(self, returncode):
        row = self.row
        with open(os.path.join(self.ctx.out, self.log_name), errors="replace") as f:
            text = f.read()
        row["result"] = "TIMEOUT" if returncode is None else "FAIL" if returncode != 0 else "ok"
        try:
            row["figure"] = self.step.figure(self.ctx, text) if self.step.figure else ""
        except Exception as error:  # the step ran but its result is missing or wrong
            row["figure"] = f"{error}"
            row["result"] = row["result"] if row["result"] != "ok" else "FAIL"
        if row["result"] != "ok" and not row["figure"]:
            tail = [line for line in text.splitlines() if line.strip()][-2:]
            row["figure"] = " / ".join(tail)
        return row


def run_together(numbered_steps, ctx, seconds_left, on_done):
    """Start every (index, step) at once, each under its own limit; on_done(row) as each
    ends. One step alone is the common case: a timed step never shares the machine."""
    running = [RunningStep(index, step, ctx, seconds_left) for index, step in numbered_steps]
    rows = [None] * len(running)
    try:
        while None in rows:
            for i, step in enumerate(running):
                if rows[i] is None and (row := step.poll()) is not None:
                    rows[i] = row
                    on_done(row)
            if None in rows:
                time.sleep(0.1)
    finally:  # interrupted (Ctrl-C): no step runs on unwatched
        for step in running:
            if step.process is not None:
                step.process.kill()
    return rows


def run_step(index, step, ctx, seconds_left):
    """Run one step alone; returns its summary row {step, result, seconds, figure, log}."""
    return run_together([(index, step)], ctx, seconds_left, lambda row: None)[0]


def batches(numbered_steps):
    """The steps in order, grouped: neighbours marked beside_others share a batch, every
    other step is a batch of its own."""
    groups = []
    for index, step in numbered_steps:
        if groups and step.beside_others and groups[-1][-1][1].beside_others:
            groups[-1].append((index, step))
        else:
            groups.append([(index, step)])
    return groups


def summary(rows, ctx, total_seconds):
    where = ("CPU rehearsal (NumPy)" if ctx.rehearse else
             "the GPU path on the CPU stand-in for CuPy (not a GPU; its times are NumPy's)" if ctx.stand_in else "GPU")
    lines = [f"# GPU check: {where}", "",
             f"`{ctx.command}`, {time.strftime('%Y-%m-%d %H:%M:%S')}, {total_seconds:.0f} s in all", "",
             "| step | result | seconds | figure | log |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        figure = row["figure"].replace("|", "/").replace("\n", " ")
        lines.append(f"| {row['step']} | {row['result']} | {row['seconds']:.1f} | {figure} | {row['log']} |")
    return "\n".join(lines) + "\n"


def bundle(ctx, path):
    """DIR as a .tar.gz, written beside and renamed into place: never half a file. The
    rebuilt data set and the trained models (.npz) stay out: large, and checked already."""
    def small(info):
        top = info.name.split("/")[1] if "/" in info.name else ""
        return None if top == DATA_FOLDER or info.name.endswith(".npz") else info
    partial = path + ".partial"
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(ctx.out, arcname="gpu_check", filter=small)
    os.replace(partial, path)


def default_workers():
    # half the cores: the other steps of the first batch, and each test's own NumPy
    # threads, use the rest (on 2 cores, one file at a time: two ran 189 s against 133 s
    # for one pytest of everything, the cores oversubscribed)
    return max(1, (os.cpu_count() or 2) // 2)


def end_steps_on_sigterm():
    """A SIGTERM (``timeout``, a job's cancel) ends this process as Ctrl-C does, through
    run_together's ``finally``: each step leads a session of its own, out of reach of a
    signal sent to ours, so without this its processes would run on, orphaned."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--out", help="folder for the logs, the outputs and summary.md (required)")
    p.add_argument("--kit", default=None, help="folder with ../shared/data's three files (CIFAR-10 is rebuilt "
                   f"into OUT/{DATA_FOLDER})")
    p.add_argument("--data", default=None, help="a cifar-10-batches-py folder, instead of --kit")
    p.add_argument("--rehearse", action="store_true", help="run every step on the CPU (NumPy), smaller")
    p.add_argument("--stand-in", action="store_true", help="run the GPU path on tests/cupy_stand_in, a CPU "
                   "stand-in for CuPy, at the rehearsal's sizes (finds Python errors; measures nothing)")
    p.add_argument("--budget", type=float, default=540, help="seconds for all steps together (default 540)")
    p.add_argument("--steps", nargs="+", choices=[s.name for s in STEPS], default=None,
                   help="run only these steps (default: all)")
    p.add_argument("--bundle", default=None, help="keep a .tar.gz of --out up to date after every step")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="test files checked at a time in the tests step (default: half the cores: "
                   f"{default_workers()} here)")
    p.add_argument("--test-files", nargs="+", default=None, metavar="FILE",
                   help="the tests step checks only these files of tests/ (a rerun after a fix)")
    p.add_argument("--inner", choices=sorted(INNER), help=argparse.SUPPRESS)
    p.add_argument("--device", choices=["cpu", "gpu"], default="gpu", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.inner:
        return INNER[args.inner](args)
    if args.out is None:
        p.error("--out DIR is required: the folder for the logs and the summary")
    if (args.kit is None) == (args.data is None):
        p.error("give one of --kit KIT (the CIFAR-10 kit from ../shared/data) or --data DIR")
    if args.rehearse and args.stand_in:
        p.error("--rehearse (NumPy, device cpu) and --stand-in (the GPU path on a fake CuPy) exclude each other")
    if args.budget <= 0:
        p.error(f"--budget must be positive, got {args.budget}")
    if args.workers < 1:
        p.error(f"--workers must be at least 1, got {args.workers}")
    if args.test_files:
        try:
            test_files(args.test_files)  # a misspelt name stops here, not in the tests step
        except ValueError as error:
            p.error(str(error))
    os.makedirs(args.out, exist_ok=True)
    end_steps_on_sigterm()
    ctx = Context(args)
    ctx.command = "python benchmarks/gpu_check.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    rows = []

    def done(row):
        print(f"        {row['step']}: {row['result']} ({row['seconds']:.1f} s) {row['figure']}", flush=True)
        rows.append(row)
        ordered = sorted(rows, key=lambda r: r["log"])  # the steps' order, whichever ended first
        with open(os.path.join(ctx.out, "summary.md"), "w") as f:
            f.write(summary(ordered, ctx, time.perf_counter() - started))
        if args.bundle:
            bundle(ctx, args.bundle)

    chosen = [(index, step) for index, step in enumerate(STEPS, 1) if not args.steps or step.name in args.steps]
    for group in batches(chosen):
        left = args.budget - (time.perf_counter() - started)
        names = " + ".join(step.name for _, step in group)
        print(f"[{time.perf_counter() - started:5.0f} s] {names} ...", flush=True)
        run_together(group, ctx, left, done)
    rows.sort(key=lambda r: r["log"])
    text = summary(rows, ctx, time.perf_counter() - started)
    print("\n" + text)
    return 0 if all(row["result"] == "ok" for row in rows) else 1


# --- the steps that are code of this file, each run in a process of its own ------------------
def inner_environment(args):
    import platform
    import numpy
    import minicnn
    from minicnn import backend
    print(f"python {platform.python_version()} ({sys.executable}), numpy {numpy.__version__}, "
          f"minicnn from {os.path.dirname(minicnn.__file__)}")
    wheels = os.path.join(args.kit or "", "wheels")
    if args.kit and os.path.isdir(wheels):  # mpi4py and mpich for the data-parallel GPU tests (no registry there)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", wheels,
                               "mpi4py", "mpich"], capture_output=True, text=True, timeout=60)
        print(f"pip install mpi4py mpich from {wheels}: exit {done.returncode} {done.stderr[-500:]}")
    for name in ("torch", "matplotlib", "hypothesis", "pytest", "threadpoolctl", "PIL", "mpi4py"):
        try:
            module = __import__(name)
            print(f"{name} {getattr(module, '__version__', '?')}")
        except ImportError as error:
            print(f"{name}: not importable ({error})")
    try:
        print(subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"nvidia-smi: {error}")
    if args.device == "cpu":
        print(f"environment: CPU rehearsal, {os.cpu_count()} cores, numpy {numpy.__version__}")
        return 0
    reason = backend.gpu_unavailable_reason()
    if reason:
        print(f"no GPU: {reason}")
        return 1
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    square = cupy.ElementwiseKernel("T x", "T y", "y = x * x", "minicnn_gpu_check_square")
    value = float(square(cupy.arange(4, dtype=cupy.float32)).sum())  # compiles with NVRTC, runs
    assert value == 14.0, value
    print(f"environment: {name}, {props['totalGlobalMem'] / 2 ** 30:.0f} GiB, CuPy {cupy.__version__}, "
          f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, driver {cupy.cuda.runtime.driverGetVersion()}; "
          "a CuPy kernel compiled and ran")
    return 0


def inner_data(args):
    folder = args.data
    missing = [name for name in CIFAR_FILES if not os.path.isfile(os.path.join(folder, name))]
    print(f"{folder}: " + (f"missing {missing}" if missing else "every batch is there"))
    return 1 if missing else 0


def pytest_counts(log):
    """{'passed': n, 'failed': n, ...} from a pytest log: its result line, or, for a run
    stopped before it printed one, the -v lines of the tests that ended."""
    result_lines = [line for line in log.splitlines() if line.startswith("=") and " in " in line
                    and PYTEST_COUNT.search(line)]
    counts = {}
    if result_lines:
        for number, word in PYTEST_COUNT.findall(result_lines[-1]):
            word = "errors" if word.startswith("error") else word
            counts[word] = counts.get(word, 0) + int(number)
        return counts
    for word in PYTEST_VERBOSE_RESULT.findall(log):
        word = {"ERROR": "errors", "XFAIL": "xfailed", "XPASS": "xpassed"}.get(word, word.lower())
        counts[word] = counts.get(word, 0) + 1
    return counts


def test_files(names=None):
    """tests/test_*.py, or the files named (a name in tests/, or a path), largest first."""
    if not names:
        files = glob.glob(os.path.join(ROOT, "tests", "test_*.py"))
    else:
        files = [name if os.path.isfile(name) else os.path.join(ROOT, "tests", name) for name in names]
        missing = [name for name, path in zip(names, files) if not os.path.isfile(path)]
        if missing:
            raise ValueError(f"--test-files: no such test file: {', '.join(missing)} (looked in {ROOT}/tests)")
    return sorted(files, key=os.path.getsize, reverse=True)


def inner_tests(args):
    """The device's half of the test suite (pytest --device-half), one pytest process per
    test file, --workers of them at a time, the largest files first so that the long ones
    do not start last. A file's whole output goes to OUT/<file>.log, and a line here as it
    ends; then the failures' short summaries and one 'tests:' line of totals. It stops its
    pytest processes 10 s before the step's limit (GPU_CHECK_DEADLINE), so that what ended
    is still counted and said."""
    import tempfile
    files = test_files(args.test_files)
    os.makedirs(args.out, exist_ok=True)
    deadline = float(os.environ.get("GPU_CHECK_DEADLINE", time.time() + 3600)) - 10
    scratch = tempfile.mkdtemp(prefix="gpu_check_tests_")  # each file's own pytest --basetemp
    started = time.time()
    waiting, running, ended = list(files), {}, {}  # running: file -> (Watched, log)
    stopped = []
    try:
        while waiting or running:
            while waiting and len(running) < args.workers and time.time() < deadline:
                path = waiting.pop(0)
                name = os.path.basename(path)
                log = open(os.path.join(args.out, name[:-3] + ".log"), "w")
                command = python("-m", "pytest", "-v", "--tb=short", "-ra", "-p", "no:cacheprovider",
                                 "--basetemp", os.path.join(scratch, name[:-3]), "--device-half", args.device, path)
                running[path] = (Watched(command, log, deadline, own_group=False, cwd=ROOT), log)
            for path, (process, log) in list(running.items()):
                if not process.ended():
                    continue
                if process.killed:  # the step's limit is near: it was stopped; count what ended
                    stopped.append(os.path.basename(path))
                log.close()
                del running[path]
                with open(log.name, errors="replace") as f:
                    text = f.read()
                code = process.returncode
                ended[path] = (code, pytest_counts(text), text)
                counts = ", ".join(f"{n} {word}" for word, n in ended[path][1].items()) or "no tests"
                # exit code 5: nothing collected, every test of the file being the other device's
                verdict = {0: "ok", 1: "FAILED", 5: "ok", None: "STOPPED at the limit"}.get(code, f"ERROR (exit {code})")
                print(f"{os.path.basename(path)}: {verdict}, {counts}, {process.seconds:.1f} s", flush=True)
            if not running and time.time() >= deadline:
                break
            time.sleep(0.05)
    finally:  # interrupted: no pytest runs on unwatched
        for process, _ in running.values():
            process.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    bad = [path for path, (code, _, _) in ended.items() if code not in (0, 5)]
    for path in bad:  # each failed file's tracebacks and pytest's summary, for the step's log
        text = ended[path][2]
        start = min((text.find(mark) for mark in (" FAILURES ", " ERRORS ") if mark in text), default=-1)
        section = text[start:] if start >= 0 else text
        print(f"\n--- {os.path.basename(path)} ---\n{section.strip()[-6000:]}")
    totals = {}
    for _, counts, _ in ended.values():
        for word, n in counts.items():
            totals[word] = totals.get(word, 0) + n
    line = ", ".join(f"{totals.get(word, 0)} {word}" for word in ("passed", "failed", "errors", "skipped"))
    line += f" in {len(ended)} of {len(files)} files, {args.workers} at a time, {time.time() - started:.0f} s"
    failing = [os.path.basename(path) for path in bad if os.path.basename(path) not in stopped]
    if failing:
        line += f"; failed: {', '.join(failing)}"
    if stopped:
        line += f"; stopped at the limit: {', '.join(stopped)}"
    if waiting:
        line += f"; not started: {len(waiting)} files"
    print(f"\ntests: {line}")
    return 1 if bad or waiting else 0


def agreement_model(seed):
    """A small net with each kind of layer the seed models and the speed run use."""
    import minicnn
    from minicnn.layers import (Activation, BatchNormalization, Conv2D, Dense, Flatten,
                                MaxPooling2D)
    from minicnn.models import Sequential
    minicnn.set_seed(seed)  # weights are drawn on the host: the same on both devices
    return Sequential([Conv2D(16, 3, padding="same", activation="relu", input_shape=(16, 16, 3)),
                       BatchNormalization(), MaxPooling2D(2),
                       Conv2D(32, 3, strides=2, use_bias=False), Activation("gelu"),
                       Flatten(), Dense(10, activation="softmax")])


def train_steps(device, optimizer_name, x, y, steps=3):
    """Losses of ``steps`` training steps and the weights after them, as host arrays."""
    import minicnn
    from minicnn import backend, optimizers
    with minicnn.device(device):
        model = agreement_model(0)
        model.build((16, 16, 3), device)
        optimizer = {"sgd": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                     "adam": lambda: optimizers.Adam(1e-3),
                     "rmsprop": lambda: optimizers.RMSprop(1e-3, momentum=0.5, centered=True,
                                                           global_clipnorm=1.0)}[optimizer_name]()
        model.compile(optimizer, "sparse_categorical_crossentropy")
        xb, yb = backend.to_device(x, device), backend.to_device(y, device)
        losses = [float(model.train_on_batch(xb, yb)[0]) for _ in range(steps)]
        return losses, [backend.to_numpy(w) for w in model.get_weights()]


def inner_agreement(args):
    """The device under test against the CPU (on a rehearsal: the CPU's fast kernels against
    its plain reference code, the same comparison with the same tolerances)."""
    import numpy
    from minicnn import backend
    rng = numpy.random.default_rng(0)
    x = rng.random((32, 16, 16, 3), dtype=numpy.float32)
    y = rng.integers(0, 10, 32)
    worst = {"loss": 0.0, "weights": 0.0}
    failed = []
    for name in ("sgd", "adam", "rmsprop"):
        with backend.fast_kernels(args.device == "gpu"):  # rehearsal: reference code on the CPU
            reference = train_steps("cpu", name, x, y)
        tested = train_steps(args.device, name, x, y)
        loss_diff = max(abs(a - b) / abs(b) for a, b in zip(tested[0], reference[0]))
        each = [float(numpy.abs(a - b).max() / (numpy.abs(b).max() + 1e-12)) for a, b in zip(tested[1], reference[1])]
        weight_diff = max(each)
        print(f"{name}: losses {args.device} {tested[0]}, cpu {reference[0]}; largest difference of each "
              f"weight, relative to its largest value: {', '.join(f'{d:.1e}' for d in each)}")
        worst["loss"], worst["weights"] = max(worst["loss"], loss_diff), max(worst["weights"], weight_diff)
        if loss_diff > 1e-4 or weight_diff > 1e-3:
            failed.append(name)
    syncs = "not checked (CPU)"
    if args.device == "gpu":
        syncs = step_without_synchronisation(x, y)
    print(f"agreement: {'FAILED for ' + ', '.join(failed) if failed else 'within float32 tolerance'} "
          f"(largest relative loss difference {worst['loss']:.1e}, weights {worst['weights']:.1e}); "
          f"host synchronisation inside a training step: {syncs}")
    return 1 if failed else 0


def step_without_synchronisation(x, y):
    """Run one training step with CuPy's synchronisation detector on: a step that waits
    for the GPU (a device-to-host copy, float() of a device value) would stall the queue."""
    import minicnn
    from minicnn import backend, optimizers
    try:
        import cupyx
        forbid = cupyx.allow_synchronize
    except (ImportError, AttributeError):
        return "not checked (this CuPy has no cupyx.allow_synchronize)"
    import warnings
    with minicnn.device("gpu"):
        model = agreement_model(0)
        model.build((16, 16, 3), "gpu")
        model.compile(optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
        xb, yb = backend.to_device(x, "gpu"), backend.to_device(y, "gpu")
        model.train_on_batch(xb, yb)  # the first step allocates and compiles
        backend.synchronize()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the detector is deprecated, not gone
            try:
                with forbid(False):
                    model.train_on_batch(xb, yb)
            except Exception as error:  # cupyx.DeviceSynchronized, with where it happened
                import traceback
                traceback.print_exc()
                return f"YES ({type(error).__name__}: see the log)"
    return "none detected"


INNER = {"environment": inner_environment, "data": inner_data, "agreement": inner_agreement, "tests": inner_tests}


if __name__ == "__main__":
    sys.exit(main())
