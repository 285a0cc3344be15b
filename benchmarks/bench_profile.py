"""Where the time goes: one MNIST fit broken down by phase, and the iteration loop's own overhead.

    python benchmarks/bench_profile.py [--workers 2] [--params '{"mini_batch_size": 32}']
    python benchmarks/bench_profile.py --rows 2000 --test-rows 300 --hidden 16 --iterations 20   # smoke

(a) profile: one fit of the default network (784-200-200-10, all H2O defaults, 1 epoch on the 60k
    training rows, validating on the 10k test rows, as bench_mnist.py) on a LocalCluster of
    --workers single-threaded worker processes; --params adds dask_dl parameters. From
    model_.run (seconds summed over the fit; see IterationLoop.run):
      kernel compute    per iteration the slowest worker's HOGWILD! kernel time (train_on_worker's
                        own clock), summed
      broadcast         submitting the round: the centre scattered to the workers in the first
                        round (later rounds train from the last average where it lies)
      reduce + Dask     submit-to-mean wait minus compute: the reduction tree, task scheduling,
                        moving the copies and the mean back to the client
      scoring           scoring rounds (forward passes on the workers, metrics on the client)
      loop other        the rest of the training loop (stability checks, history rows, logging):
                        run_seconds - the four above
      set-up            fit wall time - run_seconds: statistics pass, encoding, data placement,
                        worker JIT warm-up (numba cache load, or compiling if the kernels changed)
    Shares are of the fit's wall time; per iteration = seconds / iterations (scoring: per round).
    This fit runs with the loop's pipelining off (job.train(..., pipeline_max_round_s=0)) so the parts add up:
    a pipelined round trains while the client scores the one before. At the default sizes the rounds
    are longer than the pipelining limit anyway; (b) shows what pipelining saves on short rounds.
(b) overhead: the loop's fixed cost per iteration with almost no work: hidden=--overhead-hidden (2),
    --overhead-rows (400) MNIST rows, train_samples_per_iteration=10, --iterations (200) iterations,
    score_interval huge (only the first and the final iteration score); 1 and 2 single-threaded
    workers (the same cluster as (a) where the worker count matches, so its workers are warm).
    Iterations/s = iterations / (run_seconds - scoring). Each worker count runs twice: with the
    loop's pipelining (such short rounds go out before the previous one returns; "pipelined" counts
    them) and without it (pipeline_max_round_s=0, every round waited for). Pipelined rounds
    overlap, so their compute/reduce split is not additive.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")


class _Clusters:
    """LocalClusters of single-threaded workers by worker count, started once and shared by (a) and (b)."""

    def __init__(self):
        self.stack, self.clients = contextlib.ExitStack(), {}

    def client(self, workers: int):
        from dask_dl.cluster.session import local_client
        if workers not in self.clients:
            self.clients[workers] = self.stack.enter_context(local_client(workers, 1))
        return self.clients[workers]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stack.close()


def _fit(client, train, valid, hidden, epochs: float, seed: int, params: dict, pipelined: bool = True):
    """One fit through the training job (as the estimators run it), with the loop's pipelining on
    (its default limit) or off (every round waited for). Returns (model, wall seconds)."""
    from dask_dl import job, params as P
    from dask_dl.data.schema import RESPONSE
    values = dict(hidden=hidden, epochs=epochs, seed=seed, quiet_mode=True, **params)
    frame = train.rename(columns={"C785": RESPONSE})
    valid = None if valid is None else valid.rename(columns={"C785": RESPONSE})
    columns = job.ColumnRoles(response="C785", features={c: "numeric" for c in frame.columns if c != RESPONSE})
    limit = {} if pipelined else {"pipeline_max_round_s": 0.0}
    t0 = time.perf_counter()
    model = job.train(frame, columns, P.resolve(values, "classification", n_classes=10), validation=valid,
                      client=client, **limit)
    return model, time.perf_counter() - t0


def profile(args, params: dict, clusters: _Clusters) -> pd.DataFrame:
    import dask.dataframe as dd
    tr_path = os.path.join(DATA, "mnist", "train.parquet")
    te_path = os.path.join(DATA, "mnist", "test.parquet")
    if args.rows is None and args.test_rows is None:  # the full files: read on the workers, as users would
        train, valid = dd.read_parquet(tr_path, split_row_groups=True), dd.read_parquet(te_path)
    else:
        tr = pd.read_parquet(tr_path).iloc[:args.rows]
        te = pd.read_parquet(te_path).iloc[:args.test_rows]
        train = dd.from_pandas(tr, npartitions=max(1, len(tr) // 10000))
        valid = dd.from_pandas(te, npartitions=1)
    # every round waited for, so the parts add up (see the docstring)
    model, wall = _fit(clusters.client(args.workers), train, valid, args.hidden, args.epochs, args.seed, params,
                       pipelined=False)
    run = model.run
    it = max(1, int(run["iterations"]))
    rounds = max(1, len(model.scoring_history()) - 1)  # row 0 is H2O's dummy row
    timed = run["compute"] + run["broadcast"] + run["reduce_wait"] + run["score"]
    parts = [("kernel compute", run["compute"], it), ("broadcast", run["broadcast"], it),
             ("reduce + Dask", run["reduce_wait"], it), ("scoring", run["score"], rounds),
             ("loop other", run["run_seconds"] - timed, it),
             ("set-up", wall - run["run_seconds"], None), ("fit wall time", wall, None)]
    table = pd.DataFrame([{"component": name, "seconds": s, "per_iteration_ms": 1000 * s / n if n else float("nan"),
                           "share": s / wall} for name, s, n in parts])
    print(f"\n(a) one fit: {run['samples']} samples in {run['iterations']} iterations "
          f"({run['train_samples_per_iteration']} samples/iteration at the end), {rounds} scoring rounds, "
          f"{run['workers']} worker(s); state {model.state.nbytes / 1e6:.2f} MB; "
          f"training speed {run['samples'] / max(run['train'], 1e-9):.0f} samples/s")
    with pd.option_context("display.width", 140, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False), flush=True)
    return table


def overhead(args, clusters: _Clusters) -> pd.DataFrame:
    import dask.dataframe as dd
    tr = pd.read_parquet(os.path.join(DATA, "mnist", "train.parquet")).iloc[:args.overhead_rows]
    tspi = 10
    epochs = args.iterations * tspi / len(tr)
    params = {"train_samples_per_iteration": tspi, "score_interval": 1e9, "score_training_samples": 100}
    rows = []
    for k, piped in [(k, piped) for k in args.overhead_workers for piped in (True, False)]:
        train = dd.from_pandas(tr, npartitions=k)
        model, wall = _fit(clusters.client(k), train, None, args.overhead_hidden, epochs, args.seed, params,
                           pipelined=piped)
        run = model.run
        it = int(run["iterations"])
        loop_s = run["run_seconds"] - run["score"]
        rows.append({"workers": k, "pipelined": int(run["pipelined"]), "iterations": it,
                     "iterations_per_s": it / loop_s,
                     "ms_per_iteration": 1000 * loop_s / it, "broadcast_ms": 1000 * run["broadcast"] / it,
                     "compute_ms": 1000 * run["compute"] / it, "reduce_wait_ms": 1000 * run["reduce_wait"] / it,
                     "other_ms": 1000 * (loop_s - run["broadcast"] - run["compute"] - run["reduce_wait"]) / it,
                     "fit_seconds": wall})
    table = pd.DataFrame(rows)
    print(f"\n(b) loop overhead: hidden {args.overhead_hidden}, {len(tr)} rows, {tspi} samples/iteration, "
          f"{args.iterations} iterations, scoring only at the first and final iteration")
    with pd.option_context("display.width", 140, "display.float_format", "{:.2f}".format):
        print(table.to_string(index=False), flush=True)
    return table


def main(argv: list | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="(a): single-threaded worker processes")
    ap.add_argument("--params", default="{}", help='(a): extra dask_dl parameters as JSON')
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200], help="(a): hidden layers")
    ap.add_argument("--rows", type=int, default=None, help="(a): training rows (default: all 60k)")
    ap.add_argument("--test-rows", type=int, default=None, help="(a): validation rows (default: all 10k)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=200, help="(b): iterations per overhead fit")
    ap.add_argument("--overhead-rows", type=int, default=400)
    ap.add_argument("--overhead-hidden", type=int, nargs="+", default=[2])
    ap.add_argument("--overhead-workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    params = json.loads(args.params)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"(a) {args.workers} worker(s) x 1 thread, hidden {args.hidden}, epochs {args.epochs} {params or ''}",
          flush=True)
    with _Clusters() as clusters:
        return {"profile": profile(args, params, clusters), "overhead": overhead(args, clusters)}


if __name__ == "__main__":
    main()
