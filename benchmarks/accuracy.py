"""Every tutorial's published accuracy against minicnn's (and PyTorch's) on the same data.

    python benchmarks/accuracy.py run --data DIR [--device gpu] [--only seed004_base ...] [--engine torch]
    python benchmarks/accuracy.py report      # README table and plot from the committed runs

``run`` trains each zoo model with its tutorial's recipe (examples/train_cifar.py, or
benchmarks/torch_reference.py for --engine torch) and keeps, for each run, one small
JSON record under benchmarks/results/accuracy/: the command, the machine, the per-epoch
history, the test accuracy and seconds per epoch. ``report`` writes README.md's accuracy
table (between its markers) and benchmarks/results/accuracy/accuracy.png from those
records alone, so the table cannot drift from what was measured (tests/test_accuracy.py
checks that README.md holds exactly what ``report`` writes).

Long runs: on 2 CPU cores the whole plan takes many hours, minutes on a GPU. Each run is
a separate process with its own log (runs/accuracy/); an interrupted run is continued by
running the same command again (train_cifar.py --resume, torch_reference.py --checkpoint).
"""
import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "accuracy")
WORK = os.path.join(ROOT, "runs", "accuracy")
sys.path.insert(0, ROOT)

from minicnn import zoo  # noqa: E402

# (model, epochs, seeds, extra train_cifar flags, what the row reports), as issue 17 lists them.
PLAN = [
    ("seed000_sequential", 50, [0], [], "test"),
    ("seed001_model0", 10, [0], [], "train and test"),
    ("seed001_model1", 10, [0], [], "train and test"),
    ("seed001_model2", 10, [0], [], "train and test"),
    ("seed002_cnn", 27, [0], ["--val-split", "0.2"], "test, and the last 10,000 training images held out"),
    ("seed003_4layer", 50, [0], [], "test at 10, 20 and 50 epochs"),
    ("seed003_6layer", 10, [0], [], "test"),
    ("seed004_base", 2, [0, 1], [], "test"),
    ("seed004_augmented", 4, [0], [], "test"),
    ("seed004_vgg16", 2, [0], [], "test (from scratch)"),
]
# Published figures beyond the one the zoo keeps: seed 003's 4-layer net at 10 and 20 epochs.
PUBLISHED_AT = {("seed003_4layer", 10): 0.713, ("seed003_4layer", 20): 0.746}


RECORD = re.compile(r"^(minicnn|torch)-\w+-e\d+-s\d+-(cpu|gpu)\.json$")


def record_name(engine, model, epochs, seed, device):
    return f"{engine}-{model}-e{epochs}-s{seed}-{device}.json"


# --- running -----------------------------------------------------------------------------------
def run_minicnn(model, epochs, seed, extra, device, data):
    out = os.path.join(WORK, f"minicnn-{model}-e{epochs}-s{seed}-{device}")
    command = [sys.executable, "examples/train_cifar.py", "--device", device, "--model", model,
               "--epochs", str(epochs), "--seed", str(seed), "--data", data, "--out", out, *extra]
    if os.path.isfile(os.path.join(out, "checkpoint.npz")) and not os.path.isfile(os.path.join(out, "results.json")):
        command.append("--resume")  # an interrupted run: continue it
    log = out + ".log"
    if not os.path.isfile(os.path.join(out, "results.json")):
        with open(log, "a") as f:
            done = subprocess.run(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, PYTHONUNBUFFERED="1"))
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    return {"history": {k: v for k, v in history.items() if k != "seconds"},
            "seconds_per_epoch": results["seconds_per_epoch"], "test_accuracy": results["test_accuracy"],
            "command": "python " + " ".join(a if a != data else "DIR" for a in command[1:]
                                            if a not in ("--out", out, "--resume"))}


def run_torch(model, epochs, seed, extra, device, data):
    if extra and extra[0] != "--val-split":
        raise ValueError(f"{model}: torch_reference.py does not take {extra}")
    work = os.path.join(WORK, f"torch-{model}-e{epochs}-s{seed}-{device}")
    command = [sys.executable, "benchmarks/torch_reference.py", "--model", model, "--epochs", str(epochs),
               "--seed", str(seed), "--data", data, "--device", device, *extra]
    os.makedirs(WORK, exist_ok=True)
    # An interrupted run continues from its last finished epoch when run again (--checkpoint),
    # and prints every epoch's line again, so only this attempt's lines are read.
    with open(work + ".log", "a") as log:
        start = log.tell()
        done = subprocess.run(command + ["--checkpoint", work + ".pt"], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    with open(work + ".log") as log:
        log.seek(start)
        output = log.read()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}): {output[-2000:]}")
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    history = {key: [row[key] for row in rows] for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")}
    # With --val-split, validation was on held-out training images and the last row has the test set's.
    return {"history": history, "test_accuracy": rows[-1].get("test_accuracy", rows[-1]["val_accuracy"]),
            "seconds_per_epoch": sum(row["train_seconds"] for row in rows) / len(rows),
            "command": "python " + " ".join(a if a != data else "DIR" for a in command[1:])}


def machine(device):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    if device == "gpu":
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        text = f"{name} ({text})"
    return text


def run(args):
    os.makedirs(RESULTS, exist_ok=True)
    os.makedirs(WORK, exist_ok=True)
    engines = ["minicnn", "torch"] if args.engine == "both" else [args.engine]
    for model, epochs, seeds, extra, reports in PLAN:
        if args.only and model not in args.only:
            continue
        for seed in (args.seeds if args.seeds is not None else seeds):
            for engine in engines:
                name = record_name(engine, model, epochs, seed, args.device)
                if os.path.isfile(os.path.join(RESULTS, name)) and not args.again:
                    print(f"{name}: already measured (--again to measure it anew)")
                    continue
                print(f"{name}: training ...", flush=True)
                start = time.time()
                runner = run_minicnn if engine == "minicnn" else run_torch
                result = runner(model, epochs, seed, extra, args.device, args.data)
                record = {"engine": engine, "model": model, "epochs": epochs, "seed": seed, "device": args.device,
                          "machine": machine(args.device), "date": time.strftime("%Y-%m-%d"), "reports": reports,
                          **result}
                with open(os.path.join(RESULTS, name), "w") as f:
                    json.dump(record, f, indent=1)
                print(f"{name}: test accuracy {record['test_accuracy']:.4f}, "
                      f"{record['seconds_per_epoch']:.0f} s/epoch ({time.time() - start:.0f} s)", flush=True)


# --- reporting -----------------------------------------------------------------------------------
def records():
    found = []
    for name in sorted(os.listdir(RESULTS)) if os.path.isdir(RESULTS) else []:
        if RECORD.match(name):  # other files there (investigations) are not plan runs
            with open(os.path.join(RESULTS, name)) as f:
                found.append(json.load(f))
    order = {model: i for i, (model, *_rest) in enumerate(PLAN)}
    return sorted(found, key=lambda r: (order.get(r["model"], 99), r["epochs"], r["engine"] != "minicnn",
                                        r["device"], r["seed"]))


def rows(found):
    """One table row per (record, reported epoch): seed003_4layer's 50-epoch run also gives
    its accuracy at 10 and 20 epochs, which the tutorial published too."""
    out = []
    for r in found:
        history = r["history"]
        points = [r["epochs"]]
        if r["model"] == "seed003_4layer":
            points = [e for e in (10, 20, 50) if e <= r["epochs"]]
        for epochs in points:
            i = history["epoch"].index(epochs)
            test = r["test_accuracy"] if epochs == r["epochs"] else history["val_accuracy"][i]
            if r["model"] == "seed002_cnn":  # validation is the held-out training images
                test_text = f"{100 * r['test_accuracy']:.2f}% (held-out train {100 * history['val_accuracy'][i]:.2f}%)"
            elif r["model"].startswith("seed001"):
                test_text = f"{100 * test:.2f}% (train {100 * history['accuracy'][i]:.2f}%)"
            else:
                test_text = f"{100 * test:.2f}%"
            published = PUBLISHED_AT.get((r["model"], epochs), zoo.RECIPES[r["model"]].published)
            out.append([f"`{r['model']}`", str(epochs), f"{r['engine']}, {r['device']}", str(r["seed"]), test_text,
                        "-" if published is None else f"{100 * published:.2f}%", f"{r['seconds_per_epoch']:.0f}",
                        f"`{r['command']}`"])
    return out


def table(found):
    head = ["model", "epochs", "engine, device", "seed", "test accuracy", "published", "s/epoch*", "command"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(found)]
    machines = sorted({f"{r['device']}: {r['machine']}" for r in found})
    lines += ["", "Measured on " + "; ".join(machines) + "." if machines else "No run measured yet."]
    if found:
        lines += ["\\* minicnn: training and validation (train_cifar.py's seconds per epoch); PyTorch: training "
                  "only (torch_reference.py's). A record's date and machine are in its JSON; the CPU runs of "
                  "2026-11-22/23 sometimes shared the 2 cores with other work, so their seconds are not a benchmark "
                  "(benchmarks/run.py is)."]
    lines += gap_notes(found)
    return "\n".join(lines)


def gap_notes(found):
    """For each model whose minicnn figure is more than 2 points from the published one, or
    that has no comparable published figure: the gap, PyTorch beside it, and what the
    recipe's notes (minicnn.zoo) know about why."""
    notes = []
    for model in dict.fromkeys(r["model"] for r in found):
        published = zoo.RECIPES[model].published
        mine = [r for r in found if r["model"] == model and r["engine"] == "minicnn"]
        if not mine:
            continue
        # seed 001 published training accuracy; the others test accuracy
        measured = [r["history"]["accuracy"][-1] if model.startswith("seed001") else r["test_accuracy"] for r in mine]
        best = max(measured)
        if published is not None and abs(best - published) <= 0.02:
            continue
        theirs = [r for r in found if r["model"] == model and r["engine"] == "torch"]
        torch = [r["history"]["accuracy"][-1] if model.startswith("seed001") else r["test_accuracy"] for r in theirs]
        beside = (f"; PyTorch, same recipe and data: {100 * max(torch):.2f}%" if torch
                  else "" if published is not None and best > published else "; no PyTorch run beside it yet")
        if torch and max(torch) < 0.12:  # PyTorch guessing too: the recipe, not the engine
            beside += (f", chance level too (its training loss ended at "
                       f"{min(r['history']['loss'][-1] for r in theirs):.4f})")
        why = " ".join(n[0].upper() + n[1:].rstrip(".") + "." for n in zoo.RECIPES[model].notes
                       if n != zoo.KERAS_BATCH_NOTE)
        if published is None:
            gap = f"no comparable published figure; best minicnn figure {100 * best:.2f}%"
            if best < 0.12:  # ten classes: 10% is guessing
                losses = [r["history"]["loss"][-1] for r in mine]
                gap += (f", chance level: the training loss ended at {min(losses):.4f} "
                        f"(ln 10 = {math.log(10):.4f} is guessing)")
        else:
            gap = (f"best minicnn figure {100 * best:.2f}% against {100 * published:.2f}% published "
                   f"({100 * (best - published):+.2f} points)")
        notes.append(f"- `{model}`: {gap}{beside}. {why}".rstrip())
    header = ("More than 2 points from the published figure, or no comparable one (seed 001's figures are "
              "training accuracy, the others test accuracy). Every run here trains on ../shared/data's CIFAR-10, "
              "whose pixels went through a quality-75 JPEG (mean PSNR 30.5 dB against the official images), "
              "estimated (not measured here) to cost about a point or more:")
    return ["", header, "", *notes] if notes else []


MARKERS = ("<!-- accuracy-table -->", "<!-- /accuracy-table -->")


def readme_with_table(text, found):
    pattern = re.compile(re.escape(MARKERS[0]) + r"\n.*?" + re.escape(MARKERS[1]), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README.md has no {MARKERS[0]} ... {MARKERS[1]} section")
    return pattern.sub(lambda _: f"{MARKERS[0]}\n{table(found)}\n{MARKERS[1]}", text)


def plot(found, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = list(dict.fromkeys(r["model"] for r in found))
    cols = min(4, len(models)) or 1
    fig, axes = plt.subplots(-(-len(models) // cols) or 1, cols, figsize=(4 * cols, 3 * (-(-len(models) // cols) or 1)),
                             squeeze=False)
    for ax, model in zip(axes.flat, models):
        for r in (r for r in found if r["model"] == model):
            ax.plot(r["history"]["epoch"], r["history"]["val_accuracy"], marker=".",
                    label=f"{r['engine']} {r['device']} s{r['seed']}")
        published = zoo.RECIPES[model].published
        if published is not None:
            ax.axhline(published, color="k", linestyle="--", linewidth=1, label="published")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def report(args):
    found = records()
    readme = os.path.join(ROOT, "README.md")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    with open(readme, "w", encoding="utf-8") as f:
        f.write(readme_with_table(text, found))
    if found:
        plot(found, os.path.join(RESULTS, "accuracy.png"))
    print(table(found))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train the plan's models and keep one record per run")
    r.add_argument("--data", required=True, help="the folder holding cifar-10-batches-py")
    r.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    r.add_argument("--engine", choices=["minicnn", "torch", "both"], default="minicnn")
    r.add_argument("--only", nargs="+", choices=[m for m, *_ in PLAN], help="these models only")
    r.add_argument("--seeds", nargs="+", type=int, help="these seeds instead of the plan's")
    r.add_argument("--again", action="store_true", help="measure runs that already have a record")
    sub.add_parser("report", help="README.md's accuracy table and the plot, from the records")
    args = p.parse_args(argv)
    return run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    main()
