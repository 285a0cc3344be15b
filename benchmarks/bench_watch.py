"""What a set-up wait's stall watch costs the scheduler: one look (``watch.SetupStallWatch``) is a
``run_on_scheduler`` call that walks the step's graph, made at most once a second while a set-up
step runs longer than a second, and less often where the walk takes over 20 ms.

    python benchmarks/bench_watch.py [--partitions 4 100 1000 10000] [--looks 20]

Reported per step size: the median and the fastest of ``--looks`` looks, in milliseconds, on a
2-worker LocalCluster, for a step of one task per partition over ``to_delayed`` partitions (two
tasks per partition in the graph, all in memory).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def main(argv: list | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partitions", type=int, nargs="+", default=[4, 100, 1000, 10000])
    ap.add_argument("--looks", type=int, default=20)
    args = ap.parse_args(argv)
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    from dask_dl.cluster.watch import _executing_towards_function
    rows = []
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cl, Client(cl) as client:
        look = _executing_towards_function()
        for n_parts in args.partitions:
            frame = dd.from_pandas(pd.DataFrame({"a": np.arange(n_parts * 10.0)}), npartitions=n_parts)
            step = client.compute([part.sum() for part in frame.to_delayed()])
            client.gather(step)
            keys = [f.key for f in step]
            seconds = []
            for _ in range(args.looks):
                t0 = time.perf_counter()
                client.run_on_scheduler(look, keys=keys)
                seconds.append(time.perf_counter() - t0)
            rows.append({"partitions": n_parts, "median_ms": 1000 * float(np.median(seconds)),
                         "fastest_ms": 1000 * min(seconds)})
            del step
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="%.1f"))
    return table


if __name__ == "__main__":
    main()
