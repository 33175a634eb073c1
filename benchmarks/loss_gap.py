"""Is minicnn's training loss on seed003_6layer really higher than PyTorch's? (issue 17)

Several seeds of each engine, trained the same way, and the difference of their means
against the spread between seeds (Welch's t-test).

    python benchmarks/loss_gap.py collect RUNS   # RUNS/minicnn-sS/ (train_cifar.py --out),
                                                 # RUNS/torch-sS.jsonl (torch_reference.py's output),
                                                 # RUNS/torch-sameDraws-sS.jsonl (its --draws minicnn)
                                                 # and RUNS/torch-draws-D-sS.jsonl (its --draws D,
                                                 # D one of init, order, masks)
    python benchmarks/loss_gap.py report         # the tables, from the records

collect keeps one record per run in benchmarks/results/accuracy/loss-gap-{engine}-s{S}.json
(a run already recorded is left alone); report takes each seed's longest run (a
loss-gap record, or accuracy.py's record of seed003_6layer) and prints, for each epoch a run
reaches, each engine's mean and standard deviation over its seeds of the training loss
and the test accuracy, and the t statistic and two-sided p-value of the difference,
with the medians and a rank test beside them (a seed that starts slowly is an outlier
that a mean over a dozen seeds feels strongly), and a test of whether the two spread
differently (Brown-Forsythe: do slow starts come more often in one of them?).

The gap between the engines has two possible sources, and the PyTorch runs with
``--draws minicnn`` (the same initial weights, batch order and dropout masks as minicnn's
run of that seed) tell them apart: minicnn against PyTorch on minicnn's draws, seed by seed
(a paired t-test), is what the engines compute differently; PyTorch on minicnn's draws
against PyTorch on its own (Welch) is what the draws themselves do.

The runs with one of minicnn's draws alone (``--draws init``, ``order`` or ``masks``) differ
from PyTorch's own run of the same seed in that one draw, so each is compared with it seed
by seed (a paired test): which of the three, if any, carries what minicnn's draws do.

The tail of slow starts (PyTorch on minicnn's draws ending epoch 1 above SLOW_START more
often than on its own) was seen with a threshold picked after looking at seeds 0-36; the
seeds from FRESH_FROM on were run to test it afresh, with the threshold and the test
(Fisher's exact, one-sided) fixed before they ran. report shows both samples apart.
"""
import argparse
import glob
import json
import math
import os
import re
import sys

import numpy

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "accuracy")
DRAWN = ("init", "order", "masks")  # torch_reference.py --draws D: one of minicnn's draws
SINGLE = tuple(f"torch-minicnn-{d}" for d in DRAWN)
ENGINES = ("minicnn", "torch", "torch-minicnn-draws") + SINGLE  # torch-minicnn-draws: --draws minicnn
NAMES = {"minicnn": "minicnn", "torch": "PyTorch", "torch-minicnn-draws": "PyTorch, minicnn's draws",
         **{f"torch-minicnn-{d}": f"PyTorch, minicnn's {d} only" for d in DRAWN}}
RECORD = re.compile(r"^loss-gap-(" + "|".join(ENGINES) + r")-s(\d+)\.json$")
SLOW_START = 1.88  # epoch-1 training loss above which a run counts as starting slowly
FRESH_FROM = 37    # the first seed of the test declared before its runs
# accuracy.py's runs of the same recipe count too: a seed's longest run is the one reported
ACCURACY_RUN = re.compile(r"^(minicnn|torch)-seed003_6layer-e\d+-s(\d+)-(cpu|gpu)\.json$")


def collect(runs):
    """Records for the runs in ``runs`` that have none yet; returns their names."""
    written = []
    for path in sorted(glob.glob(os.path.join(runs, "minicnn-s*", "history.json"))):
        seed = int(re.search(r"minicnn-s(\d+)", path).group(1))
        if not os.path.isfile(os.path.join(os.path.dirname(path), "results.json")):
            continue  # still training
        with open(path) as f:
            written += _write("minicnn", seed, {"engine": "minicnn", "seed": seed, "history": json.load(f)})
    patterns = [(r"torch-s(\d+)\.jsonl", "torch"), (r"torch-sameDraws-s(\d+)\.jsonl", "torch-minicnn-draws")]
    patterns += [(rf"torch-draws-{d}-s(\d+)\.jsonl", f"torch-minicnn-{d}") for d in DRAWN]
    for pattern, engine in patterns:
        for path in sorted(glob.glob(os.path.join(runs, "torch-*.jsonl"))):
            match = re.fullmatch(pattern, os.path.basename(path))
            if match is None:
                continue
            seed = int(match.group(1))
            with open(path) as f:
                epochs = [json.loads(line) for line in f if line.startswith("{")]
            if epochs:  # an empty file is a run that has not finished an epoch
                written += _write(engine, seed, {"engine": engine, "seed": seed, "epochs": epochs})
    return written


def _write(engine, seed, record):
    name = os.path.join(RESULTS, f"loss-gap-{engine}-s{seed}.json")
    if os.path.isfile(name):
        return []
    with open(name, "w") as f:
        json.dump(record, f, indent=1)
    return [name]


def per_epoch(record):
    """{epoch: (training loss, test accuracy)} of one record, whichever engine wrote it."""
    if "history" in record and record["history"].get("epoch"):  # minicnn's, or an accuracy.py record
        h = record["history"]
        return {e: (l, a) for e, l, a in zip(h["epoch"], h["loss"], h["val_accuracy"])}
    return {row["epoch"]: (row["loss"], row["val_accuracy"]) for row in record["epochs"]}


def welch(a, b):
    """(t, degrees of freedom, two-sided p) of mean(a) - mean(b), variances not assumed equal."""
    a, b = numpy.asarray(a, float), numpy.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:  # no spread at all: the means are equal or certainly different
        same = a.mean() == b.mean()
        return (0.0 if same else math.copysign(math.inf, a.mean() - b.mean())), math.nan, (1.0 if same else 0.0)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(t), float(df), 2 * t_tail(abs(float(t)), df)


def ranks(values):
    """1-based ranks of values, ties given the mean of the ranks they share."""
    values = numpy.asarray(values, float)
    order = values.argsort(kind="stable")
    result = numpy.empty(len(values))
    result[order] = numpy.arange(1, len(values) + 1)
    for v in numpy.unique(values):  # ties: the mean of their ranks
        same = values == v
        result[same] = result[same].mean()
    return result


def normal_p(z):
    """Two-sided p-value of a standard normal z."""
    return math.erfc(abs(z) / math.sqrt(2))


def mann_whitney(a, b):
    """(U of a, z, two-sided p) of the rank-sum test, by the normal approximation without
    continuity correction (ties lower the variance). Unlike the t-test it does not let
    one slow-starting seed (a run stuck near ln 10 for a while) decide the comparison."""
    n1, n2 = len(a), len(b)
    r = ranks(numpy.concatenate([numpy.asarray(a, float), numpy.asarray(b, float)]))
    u = r[:n1].sum() - n1 * (n1 + 1) / 2
    n = n1 + n2
    _, counts = numpy.unique(r, return_counts=True)
    var = n1 * n2 / 12 * ((n + 1) - (counts ** 3 - counts).sum() / (n * (n - 1)))
    z = 0.0 if var == 0 else (u - n1 * n2 / 2) / math.sqrt(var)
    return float(u), float(z), normal_p(z)


def wilcoxon(a, b):
    """(W+, z, two-sided p) of the signed-rank test of paired a - b (zero differences
    dropped), by the normal approximation."""
    d = numpy.asarray(a, float) - numpy.asarray(b, float)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 0.0, 0.0, 1.0
    r = ranks(numpy.abs(d))
    w = r[d > 0].sum()
    _, counts = numpy.unique(r, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - (counts ** 3 - counts).sum() / 48
    z = (w - n * (n + 1) / 4) / math.sqrt(var)
    return float(w), float(z), normal_p(z)


def spread_test(a, b):
    """(t, df, two-sided p) of whether a and b spread differently: Brown and Forsythe's
    test, Welch's t on each value's absolute deviation from its own group's median. A
    shift of one group leaves it unchanged; a few slow-starting seeds in one group show
    up here even where the medians agree."""
    a, b = numpy.asarray(a, float), numpy.asarray(b, float)
    return welch(numpy.abs(a - numpy.median(a)), numpy.abs(b - numpy.median(b)))


def t_tail(t, df):
    """P(T > t), t > 0, for Student's t with df degrees of freedom: the density f
    integrated from t to infinity, written with u = 1/x as the integral of f(1/u) / u^2
    from 0 to 1/t (a finite interval, smooth even for df = 1), by Simpson's rule."""
    if t == 0:
        return 0.5
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    u = numpy.linspace(0.0, 1.0 / t, 20001)[1:]  # u = 0 contributes 0 for every df >= 1
    x = 1.0 / u
    g = numpy.concatenate([[0.0], numpy.exp(log_norm - (df + 1) / 2 * numpy.log1p(x * x / df)) * x * x])
    h = 1.0 / t / 20000
    return float(h / 3 * (g[0] + g[-1] + 4 * g[1:-1:2].sum() + 2 * g[2:-1:2].sum()))


def fisher_greater(a, n1, b, n2):
    """One-sided p of Fisher's exact test that a of n1 is a larger share than b of n2: the
    chance, with the a + b hits dealt at random among the n1 + n2 runs, that the first
    group gets a or more of them (the hypergeometric upper tail)."""
    hits, runs = a + b, n1 + n2
    return sum(math.comb(n1, i) * math.comb(n2, hits - i) for i in range(a, min(hits, n1) + 1)) / math.comb(runs, hits)


def paired(a, b):
    """(mean difference, sd of the differences, t, two-sided p) of paired samples a - b."""
    d = numpy.asarray(a, float) - numpy.asarray(b, float)
    sd = d.std(ddof=1)
    if sd == 0:
        return float(d.mean()), 0.0, (0.0 if d.mean() == 0 else math.copysign(math.inf, d.mean())), \
            (1.0 if d.mean() == 0 else 0.0)
    t = d.mean() / (sd / math.sqrt(len(d)))
    return float(d.mean()), float(sd), float(t), 2 * t_tail(abs(float(t)), len(d) - 1)


def load_records():
    """{engine: {seed: {epoch: (training loss, test accuracy)}}}, each seed's longest run."""
    found = {engine: {} for engine in ENGINES}
    for name in sorted(os.listdir(RESULTS)):
        match = RECORD.match(name) or ACCURACY_RUN.match(name)
        if match:
            with open(os.path.join(RESULTS, name)) as f:
                run = per_epoch(json.load(f))
            engine, seed = match.group(1), int(match.group(2))
            if len(run) > len(found[engine].get(seed, {})):  # one run per seed: its longest
                found[engine][seed] = run
    return found


def report():
    found = load_records()
    if not found["minicnn"] or not found["torch"]:
        sys.exit(f"report: no loss-gap records of both engines in {RESULTS}")
    print("Each engine with its own draws:\n")
    unpaired_table(found, "minicnn", "torch")
    if found["torch-minicnn-draws"]:
        print("\nThe engines on the same draws (PyTorch with --draws minicnn), seed by seed:\n")
        paired_table(found, "minicnn", "torch-minicnn-draws")
        for seed in sorted(found["torch-minicnn-draws"]):
            if len(found["torch-minicnn-draws"][seed]) > 1 and len(found["minicnn"].get(seed, {})) > 1:
                print(f"\nSeed {seed}, epoch by epoch, on the same draws:\n")
                seed_table(found, seed)
        print("\nThe draws in one engine (PyTorch on minicnn's draws against PyTorch on its own):\n")
        unpaired_table(found, "torch-minicnn-draws", "torch", second_name="PyTorch, its own")
    singles = [engine for engine in SINGLE if found[engine]]
    if singles:
        print("\nOne of minicnn's draws at a time: each against PyTorch's own run of the same seed:\n")
        for engine in singles:
            paired_table(found, engine, "torch")
        print("\nThe same, seed by seed, after epoch 1 (training loss):\n")
        draws_seed_table(found, singles)
    if found["torch-minicnn-draws"]:
        print(f"\nSlow starts (epoch-1 training loss above {SLOW_START}), PyTorch on minicnn's draws "
              "against PyTorch on its own:\n")
        tail_table(found, "torch-minicnn-draws", "torch")
    last = max(_epochs(found, *ENGINES))
    if last > 1:
        print(f"\nEvery run that reached epoch {last}: where it started and where it ended:\n")
        start_table(found, last)


def _epochs(found, *engines):
    return sorted(set().union(*(set(r) for engine in engines for r in found[engine].values())))


def unpaired_table(found, first, second, second_name=None):
    """Per epoch, each of two engines' seeds (mean, sd) and Welch's test of the difference;
    the columns are headed by NAMES (second_name in place of the second's, where given)."""
    first_name, second_name = NAMES[first], second_name or NAMES[second]
    print(f"| epoch | what | {first_name}: seeds, mean, sd | {second_name}: seeds, mean, sd | difference | t (df) | p "
          "| medians | rank-sum p | spread p |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for epoch in _epochs(found, first, second):
        for column, what in ((0, "training loss"), (1, "test accuracy")):
            values = [[r[epoch][column] for r in found[engine].values() if epoch in r] for engine in (first, second)]
            if min(len(v) for v in values) < 2:
                continue
            t, df, p = welch(*values)
            cells = [f"{len(v)}, {numpy.mean(v):.4f}, {numpy.std(v, ddof=1):.4f}" for v in values]
            print(f"| {epoch} | {what} | {cells[0]} | {cells[1]} | "
                  f"{numpy.mean(values[0]) - numpy.mean(values[1]):+.4f} | {t:.2f} ({df:.1f}) | {p:.3f} | "
                  f"{numpy.median(values[0]):.4f}, {numpy.median(values[1]):.4f} | {mann_whitney(*values)[2]:.3f} | "
                  f"{spread_test(*values)[2]:.3f} |")


def start_table(found, last):
    """Each run that reached epoch ``last``: its first epoch's loss beside its last epoch's
    loss and test accuracy, and Pearson's r between them over the runs. A high r says a
    comparison at epoch ``last`` carries the luck of the first epoch's start with it."""
    print(f"| run | seed | epoch 1 training loss | epoch {last} training loss | epoch {last} test accuracy |")
    print("| --- | --- | --- | --- | --- |")
    rows = [(engine, seed, run) for engine in ENGINES for seed, run in sorted(found[engine].items())
            if 1 in run and last in run]
    for engine, seed, run in rows:
        print(f"| {NAMES[engine]} | {seed} | {run[1][0]:.4f} | {run[last][0]:.4f} | {run[last][1]:.2%} |")
    if len(rows) > 2:
        first = [run[1][0] for _, _, run in rows]
        r_loss, r_acc = (pearson(first, [run[last][column] for _, _, run in rows]) for column in (0, 1))
        print(f"\nPearson r over these {len(rows)} runs, epoch 1 loss against epoch {last}: "
              f"{r_loss:+.2f} (loss), {r_acc:+.2f} (test accuracy).")


def pearson(a, b):
    """Pearson's correlation of a and b; nan where either does not vary at all."""
    a, b = numpy.asarray(a, float) - numpy.mean(a), numpy.asarray(b, float) - numpy.mean(b)
    scale = math.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / scale) if scale > 0 else math.nan


def seed_table(found, seed):
    """One seed's longer run in minicnn and in PyTorch on the same draws, epoch by epoch."""
    ours, theirs = found["minicnn"][seed], found["torch-minicnn-draws"][seed]
    print("| epoch | training loss: minicnn, PyTorch (same draws) | test accuracy: minicnn, PyTorch (same draws) |")
    print("| --- | --- | --- |")
    for epoch in sorted(set(ours) & set(theirs)):
        (la, aa), (lb, ab) = ours[epoch], theirs[epoch]
        print(f"| {epoch} | {la:.4f}, {lb:.4f} | {aa:.2%}, {ab:.2%} |")


def paired_table(found, first, second):
    """Per epoch, the seeds both engines ``first`` and ``second`` reached: the mean and sd of
    their differences (first - second), the paired t-test, and the sd of ``second`` between
    seeds for scale. Nothing where no epoch has two such seeds."""
    ours, theirs, rows = found[first], found[second], []
    for epoch in _epochs(found, first):
        seeds = sorted(s for s in ours if s in theirs and epoch in ours[s] and epoch in theirs[s])
        if len(seeds) < 2:
            continue
        for column, what in ((0, "training loss"), (1, "test accuracy")):
            a, b = [ours[s][epoch][column] for s in seeds], [theirs[s][epoch][column] for s in seeds]
            mean, sd, t, p = paired(a, b)
            rows.append(f"| {epoch} | {what} | {len(seeds)} | {numpy.mean(a):.4f} | {numpy.mean(b):.4f} | {mean:+.4f} | "
                        f"{sd:.4f} | {numpy.std(b, ddof=1):.4f} | {t:.2f} ({len(seeds) - 1}) | {p:.3f} | "
                        f"{wilcoxon(a, b)[2]:.3f} |")
    if rows:
        print(f"| epoch | what | seeds | {NAMES[first]} mean | {NAMES[second]} mean | mean difference | "
              "sd of differences | sd between seeds | t (df) | p | signed-rank p |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(rows) + "\n")


def tail_table(found, first, second):
    """The seeds before FRESH_FROM (where the threshold was picked after looking) and the
    fresh ones (declared beforehand) apart: in each, the seeds both engines finished epoch
    1 of, how many of each engine's runs ended it above SLOW_START, Fisher's one-sided p
    that ``first`` does so more often, and beside it the spread test and the difference of
    the means with Welch's p over the same seeds (not a paired test: PyTorch's own run of a
    seed and its run on minicnn's draws of that seed share no draw)."""
    print(f"| seeds | runs each | {NAMES[first]}: above {SLOW_START} | {NAMES[second]}: above {SLOW_START} | "
          "Fisher one-sided p | spread p | difference of the means | Welch p |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    both = sorted(s for s in found[first] if 1 in found[first][s] and 1 in found[second].get(s, {}))
    for label, seeds in (("threshold picked after looking", [s for s in both if s < FRESH_FROM]),
                         ("declared beforehand", [s for s in both if s >= FRESH_FROM])):
        if len(seeds) < 2:
            continue
        a, b = ([found[engine][s][1][0] for s in seeds] for engine in (first, second))
        slow_a, slow_b = sum(v > SLOW_START for v in a), sum(v > SLOW_START for v in b)
        _, _, p = welch(a, b)
        mean = numpy.mean(a) - numpy.mean(b)
        print(f"| {seeds[0]}-{seeds[-1]}, {label} | {len(seeds)} | {slow_a} | {slow_b} | "
              f"{fisher_greater(slow_a, len(seeds), slow_b, len(seeds)):.3f} | {spread_test(a, b)[2]:.3f} | "
              f"{mean:+.4f} | {p:.3f} |")


def draws_seed_table(found, singles):
    """Each seed with a single-draw run: its epoch-1 training loss on PyTorch's own draws,
    with each of minicnn's draws alone, and with all three (--draws minicnn), slowest
    all-three start first: does one draw alone carry a slow start?"""
    columns = ["torch", *singles, "torch-minicnn-draws"]
    seeds = sorted({s for engine in singles for s, run in found[engine].items() if 1 in run},
                   key=lambda s: -found["torch-minicnn-draws"].get(s, {}).get(1, (0,))[0])
    print("| seed | " + " | ".join(NAMES[c] for c in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for seed in seeds:
        cells = [f"{found[c][seed][1][0]:.4f}" if 1 in found[c].get(seed, {}) else "" for c in columns]
        print(f"| {seed} | " + " | ".join(cells) + " |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="records from finished runs")
    c.add_argument("runs", help="the folder holding minicnn-sS/ and torch-sS.jsonl")
    sub.add_parser("report", help="the table, from the records")
    args = p.parse_args(argv)
    if args.command == "collect":
        for name in collect(args.runs):
            print(f"wrote {name}")
    else:
        report()


if __name__ == "__main__":
    main()
