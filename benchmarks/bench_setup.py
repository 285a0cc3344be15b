"""Time to the first iteration (issue 21): a fresh install's first fit against a warm fit.

    python benchmarks/bench_setup.py [--repeats 3] [--epochs 1] [--src DIR ...] [--gap 0]

Each run is a fresh ``python`` process running the quickstart's fit (MNIST from Parquet via dask,
``DeepLearningClassifier(epochs=1, seed=1)`` validated on the test set, the embedded LocalCluster).
"cold" gives the run a new, empty ``NUMBA_CACHE_DIR`` (what a fresh install has: numba honours it for
``cache=True`` functions, and the nannies start the workers with this environment); "warm" runs again
on the cache the cold run filled. Per run: seconds from the script's start to ``import dask_dl``
done, the ``fit`` wall time, the whole process's wall time (interpreter start to exit, cluster
shutdown included) and how many functions numba compiled in the client process (it should be 0).
``--gap S`` sleeps S seconds between picking the estimator and ``fit`` (a notebook user's pause).
Several ``--src`` trees (e.g. a copy of the code before a change) are interleaved run by run, so
their numbers share the machine's load; the table gives medians and ranges over ``--repeats``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(ROOT, "..", "shared", "data")

FIT_SCRIPT = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    from numba.core import event
    compiled = []
    class _Count(event.Listener):
        def on_start(self, ev): pass
        def on_end(self, ev): compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    event.register("numba:compile", _Count())
    import dask.dataframe as dd
    import dask_dl
    t_import = time.perf_counter() - t0
    if __name__ == "__main__":
        data, epochs, gap = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
        train = dd.read_parquet(data + "/mnist/train.parquet", split_row_groups=True)
        test = dd.read_parquet(data + "/mnist/test.parquet")
        clf = dask_dl.DeepLearningClassifier(epochs=epochs, seed=1)
        time.sleep(gap)
        t1 = time.perf_counter()
        clf.fit(train, "C785", validation_data=test)
        fit_s = time.perf_counter() - t1
        run = clf.model_.run or {}
        print("RESULT " + json.dumps(dict(import_s=t_import, fit_s=fit_s, train_s=run.get("run_seconds"),
                                          client_compiled=sorted(set(compiled)))))
""")


def run_fit(src: str, cache_dir: str, epochs: float, gap: float, extra_env: dict | None = None) -> dict:
    """One fit in a fresh process on ``src``'s code with numba's cache in ``cache_dir``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir,
               PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])), **(extra_env or {}))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(FIT_SCRIPT)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, f.name, DATA, str(epochs), str(gap)], env=env, cwd=src,
                              capture_output=True, text=True, timeout=900)
    finally:
        os.unlink(f.name)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"fit failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return dict(json.loads(lines[-1][7:]), wall_s=wall)


def measure(srcs: list, repeats: int, epochs: float, gap: float) -> list:
    """Rows of (src, repeat, cache, import_s, fit_s, train_s, wall_s, client_compiled), the sources
    interleaved within every repeat: cold then warm on each."""
    rows = []
    for r in range(repeats):
        for src in srcs:
            with tempfile.TemporaryDirectory(prefix="numba_cache_") as cache:
                for kind in ("cold", "warm"):
                    res = run_fit(src, cache, epochs, gap)
                    rows.append(dict(src=src, repeat=r, cache=kind, **res))
                    print(f"  {os.path.basename(src.rstrip('/'))} #{r} {kind}: fit {res['fit_s']:.1f} s, "
                          f"process {res['wall_s']:.1f} s, client compiled {len(res['client_compiled'])}",
                          flush=True)
    return rows


def _stat(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def table(rows: list) -> str:
    """A markdown table per source: medians (ranges) of cold and warm, and cold / warm."""
    out = ["| code | cache | fit s | process s | import s | training s | cold/warm fit | cold/warm process |",
           "|---|---|---|---|---|---|---|---|"]
    for src in dict.fromkeys(r["src"] for r in rows):
        med = {}
        for kind in ("cold", "warm"):
            sel = [r for r in rows if r["src"] == src and r["cache"] == kind]
            med[kind] = (statistics.median(r["fit_s"] for r in sel), statistics.median(r["wall_s"] for r in sel))
            ratio = (f"{med['cold'][0] / med['warm'][0]:.2f}x | {med['cold'][1] / med['warm'][1]:.2f}x"
                     if kind == "warm" else " | ")
            out.append(f"| {src} | {kind} | {_stat([r['fit_s'] for r in sel])} | {_stat([r['wall_s'] for r in sel])} "
                       f"| {_stat([r['import_s'] for r in sel])} | {_stat([r['train_s'] for r in sel])} | {ratio} |")
    return "\n".join(out)


def main(argv: list | None = None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--gap", type=float, default=0.0, help="seconds between the estimator and fit")
    ap.add_argument("--src", nargs="+", default=[ROOT], help="code trees to compare (PYTHONPATH), interleaved")
    args = ap.parse_args(argv)
    rows = measure([os.path.abspath(s) for s in args.src], args.repeats, args.epochs, args.gap)
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
