"""A worker killed mid-fit: MNIST on a 2-worker LocalCluster, the default network, with one worker
process killed (SIGKILL; its nanny restarts it) when the fit reaches 25%, 50% and 75% of its
samples, against the undisturbed fit with the same seed (issue 16's acceptance).

    python benchmarks/bench_faults.py [--rows 30000] [--epochs 12] [--seed 1] [--at 0.25 0.5 0.75]
    python benchmarks/bench_faults.py --rows 3000 --test-rows 500 --hidden 16 --epochs 2   # smoke

Reported per run: fit wall time, test error on --test-rows MNIST test rows, rounds re-run.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import signal
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")


class _KillAt(logging.Handler):
    """Kills one worker process when the fit logs an iteration past ``fraction`` of its epochs."""

    def __init__(self, fraction: float, epochs: float, pid: int):
        super().__init__(logging.INFO)
        self.fraction, self.epochs, self.pid, self.fired = fraction, epochs, pid, False

    def emit(self, record):
        found = re.search(r"iteration \d+: .* epochs ([0-9.]+)", record.getMessage())
        if found and not self.fired and float(found.group(1)) >= self.fraction * self.epochs:
            self.fired = True
            os.kill(self.pid, signal.SIGKILL)


def one_run(args, tr, te, fraction: float | None) -> dict:
    import dask.dataframe as dd
    import dask_dl
    from dask_dl.cluster.session import local_client
    with local_client(2, 1) as client:
        pids = client.run(os.getpid)
        log = logging.getLogger("dask_dl")
        killer = _KillAt(fraction, args.epochs, pids[sorted(pids)[1]]) if fraction is not None else None
        if killer:
            log.addHandler(killer)
        clf = dask_dl.DeepLearningClassifier(hidden=args.hidden, epochs=args.epochs, seed=args.seed, client=client,
                                             quiet_mode=killer is None)
        t0 = time.perf_counter()
        try:
            clf.fit(dd.from_pandas(tr, npartitions=max(2, len(tr) // 10000)), "C785")
        finally:
            if killer:
                log.removeHandler(killer)
        seconds = time.perf_counter() - t0
        err = float(np.mean(clf.predict(te.drop(columns=["C785"])) != te["C785"].to_numpy()))
        return {"killed_at": "-" if fraction is None else f"{fraction:.0%}", "fit_seconds": seconds, "test_error": err,
                "reruns": clf.model_.run["reruns"], "fired": bool(killer and killer.fired)}


def main(argv: list | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=30000)
    ap.add_argument("--test-rows", type=int, default=10000)
    ap.add_argument("--epochs", type=float, default=12.0)
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--at", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    args = ap.parse_args(argv)
    tr = pd.read_parquet(os.path.join(DATA, "mnist", "train.parquet")).iloc[:args.rows]
    te = pd.read_parquet(os.path.join(DATA, "mnist", "test.parquet")).iloc[:args.test_rows]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; MNIST {len(tr)} rows, "
          f"hidden {args.hidden}, {args.epochs} epochs, 2 workers x 1 thread, seed {args.seed}", flush=True)
    rows = [one_run(args, tr, te, None)] + [one_run(args, tr, te, f) for f in args.at]
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    table["time_vs_undisturbed"] = table["fit_seconds"] / base["fit_seconds"]
    table["error_vs_undisturbed"] = table["test_error"] - base["test_error"]
    with pd.option_context("display.width", 140, "display.float_format", "{:.4f}".format):
        print(table.to_string(index=False), flush=True)
    return table


if __name__ == "__main__":
    main()
