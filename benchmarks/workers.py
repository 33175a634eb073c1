"""``benchmarks/run.py --workers N``: the training step of data-parallel minicnn (N MPI
ranks on this machine, minicnn.distributed) beside one minicnn process and PyTorch with
every core, measured in one run.

    python benchmarks/run.py --device cpu --workers 2 [--models ...] [--batch-sizes 128]

In each of --rounds rounds (default 3), on an otherwise idle machine: for each model,
PyTorch's step (torch.set_num_threads(cores)) and minicnn's single-process step (its
thread pool on every core); then minicnn's step on N ranks for every model:
``mpiexec -n N python benchmarks/workers.py --rank ...`` starts them, each pinned to its share of the cores with BLAS on as many
threads; each rank takes 1/N of the same global batch, and the step (forward, backward,
gradient all-reduce, update) is timed on rank 0 between barriers, so it counts the
slowest rank and the messages. The figure is the median of the repeats after a first,
untimed call, as in timing.py; the table gives the median over the rounds (each round's
figure is in the JSON), since a shared cloud machine's speed drifts by 10-20% over
minutes and the rounds spread that drift over all three engines alike.

Writes benchmarks/results/<machine>-workersN.json and .md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)


def rank_main(argv):
    """One rank: time the data-parallel step of each model; rank 0 prints a JSON line."""
    p = argparse.ArgumentParser()
    p.add_argument("--rank", action="store_true")
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=1.0)
    args = p.parse_args(argv)
    from minicnn import distributed
    import run as bench
    comm = distributed.Communicator()
    cores = distributed.use_my_cores(comm)
    results = {}
    for name in args.models:
        model, _, _ = bench.minicnn_step(name, args.batch, "numpy")
        parallel = distributed.data_parallel(model, comm)
        start, stop = args.batch * comm.rank // comm.size, args.batch * (comm.rank + 1) // comm.size
        r = numpy.random.default_rng(0)  # the same global batch as run.py's single-process step
        x = r.standard_normal((args.batch, 32, 32, 3), dtype=numpy.float32)[start:stop]
        y = r.integers(0, 10, args.batch)[start:stop]
        from minicnn.autograd import Tensor
        x_tensor = Tensor(x)

        def step():
            """The step's time on the slowest rank, the same number on every rank (so every
            rank takes the same decision below on whether to time another step)."""
            comm.barrier()
            begin = time.perf_counter()
            model.train_on_batch(x_tensor, y)
            comm.barrier()
            return comm.allreduce_max(time.perf_counter() - begin)
        first = step()
        times = []
        while len(times) < args.repeats or (sum(times) < args.min_time and len(times) < 50):
            times.append(step())
        results[name] = {"first_s": first, "median_s": float(statistics.median(times)),
                         "repeats": len(times), "cores_per_rank": len(cores)}
        del parallel
    if comm.is_root:
        print("RESULTS " + json.dumps(results), flush=True)


def workers_step(models, batch, workers, repeats):
    """{model: timing} of the N-rank step, from a fresh mpiexec launch."""
    from minicnn.distributed import launch
    launch.require_mpi()
    per_rank = str(max(1, (os.cpu_count() or 1) // workers))
    env = dict(os.environ, **{name: per_rank for name in launch.THREAD_VARIABLES})
    command = [launch.mpiexec_path(), "-n", str(workers), sys.executable, os.path.abspath(__file__), "--rank",
               "--models", *models, "--batch", str(batch), "--repeats", str(repeats)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1][len("RESULTS "):])


def bench(args, backends_for, slug_info):
    """The side-by-side table: torch (all cores), minicnn 1 process, minicnn N ranks."""
    import run as bench_run
    import timing
    cores = os.cpu_count() or 1
    names = ["numpy"]
    torch_backend = None
    if args.against == "torch":
        import importlib.util
        if importlib.util.find_spec("torch") is not None:
            torch_backend = timing.Backend("torch-cpu")
            torch_backend.torch.set_num_threads(cores)
            names.append("torch-cpu")
        else:
            print("PyTorch is not importable: minicnn only", file=sys.stderr)
    numpy_backend = timing.Backend("numpy")
    one_core = timing.Backend("numpy", threads=1)  # what each rank has: one core, batch / N
    repeats = args.repeats or 5
    key = f"numpy-{args.workers}-workers"
    rows = {(batch, name): {"model": name, "batch": batch, "rounds": []}
            for batch in args.batch_sizes for name in args.models}
    for round_ in range(args.rounds):
        for batch in args.batch_sizes:
            measured = {}
            for name in args.models:
                measured[name] = {}
                model, train, _ = bench_run.minicnn_step(name, batch, "numpy")
                if torch_backend is not None:
                    t_train, _ = bench_run.torch_step(model, batch, "cpu")
                    measured[name]["torch-cpu"] = torch_backend.measure(t_train, repeats, min_time=1.0)
                measured[name]["numpy"] = numpy_backend.measure(train, repeats, min_time=1.0)
                share = max(1, batch // args.workers)  # one rank's part of the batch, on one core
                model, train, _ = bench_run.minicnn_step(name, share, "numpy")
                measured[name]["numpy-1-core"] = one_core.measure(train, repeats, min_time=1.0)
                if torch_backend is not None:
                    t_train, _ = bench_run.torch_step(model, share, "cpu")
                    torch_backend.torch.set_num_threads(1)
                    measured[name]["torch-cpu-1-thread"] = torch_backend.measure(t_train, repeats, min_time=1.0)
                    torch_backend.torch.set_num_threads(cores)
                del model, train
            for name, timing_ in workers_step(args.models, batch, args.workers, repeats).items():
                measured[name][key] = timing_
            for name in args.models:
                rows[batch, name]["rounds"].append(measured[name])
                shown = ", ".join(f"{k} {v['median_s'] * 1e3:.1f} ms" for k, v in measured[name].items())
                print(f"  round {round_ + 1}: {name} batch {batch}: {shown}", flush=True)
    for entry in rows.values():  # the median over the rounds of each engine's median
        for engine in entry["rounds"][0]:
            entry[engine] = {"median_s": statistics.median(r[engine]["median_s"] for r in entry["rounds"]),
                             **{k: v for k, v in entry["rounds"][0][engine].items() if k == "cores_per_rank"}}
    rows = list(rows.values())
    info = timing.machine("cpu")
    info["torch_threads"] = cores
    slug = timing.slug(info, "cpu") + f"-workers{args.workers}" + (f"-{args.tag}" if args.tag else "")
    report = {"slug": slug, "machine": info, "workers": args.workers, "date": time.strftime("%Y-%m-%d"),
              "command": "python benchmarks/run.py " + " ".join(slug_info["argv"]), "steps": rows}
    base = timing.write_report(args.out, slug, report, markdown(report))
    print(markdown(report))
    print(f"wrote {base}.json, .md")
    return report


def markdown(report):
    n = report["workers"]
    key = f"numpy-{n}-workers"
    lines = [f"# minicnn data-parallel training step: {report['slug']}", "",
             f"Measured {report['date']} with `{report['command']}`, side by side in one run on an otherwise "
             "idle machine.", "", "| machine | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in report["machine"].items()]
    lines += ["", f"## Training step (median ms): minicnn on {n} ranks, minicnn in one process, PyTorch", "",
              f"| model | batch | minicnn {n} workers | minicnn 1 process | torch-cpu ({report['machine']['torch_threads']}"
              f" threads) | {n} workers / torch | 1 process / torch | minicnn 1 core, batch / {n} | torch 1 thread, "
              f"batch / {n} | 1 core / 1 thread |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def ms(e, engine):
        return f"{e[engine]['median_s'] * 1e3:.1f}" if engine in e else "-"

    def ratio(e, engine, against):
        return f"{e[engine]['median_s'] / e[against]['median_s']:.2f}" if engine in e and against in e else "-"
    for e in report["steps"]:
        lines.append(f"| {e['model']} | {e['batch']} | {ms(e, key)} | {ms(e, 'numpy')} | {ms(e, 'torch-cpu')} | "
                     f"{ratio(e, key, 'torch-cpu')} | {ratio(e, 'numpy', 'torch-cpu')} | {ms(e, 'numpy-1-core')} | "
                     f"{ms(e, 'torch-cpu-1-thread')} | {ratio(e, 'numpy-1-core', 'torch-cpu-1-thread')} |")
    lines += ["", f"{n} workers: {n} MPI ranks (mpiexec, the mpich wheel), each pinned to "
              f"{report['steps'][0][key]['cores_per_rank'] if report['steps'] else '?'} core(s), each taking "
              "1/N of the batch; the step includes the gradient all-reduce and is the slowest rank's, "
              "between barriers. 1 process: minicnn's thread pool on every core. 1 core / 1 thread: one rank's share of "
              "the batch on one core, minicnn against PyTorch: how fast each engine is per core, which bounds what "
              "the ranks can reach. First calls excluded.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    if "--rank" in sys.argv:
        rank_main(sys.argv[1:])
    else:
        sys.exit("run it as: python benchmarks/run.py --device cpu --workers N")
