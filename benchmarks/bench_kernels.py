"""The per-sample kernel's compile time and training speed, for code trees compared side by side.

    python benchmarks/bench_kernels.py [--src DIR ...] [--what compile speed] [--repeats 3]

Each measurement is a fresh ``python`` process on one ``--src`` tree (PYTHONPATH), the trees
interleaved run by run so they share the machine's load; the table gives medians and ranges.

compile  the float32 per-sample kernel into an empty ``NUMBA_CACHE_DIR`` (a fresh install):
         "one process" types and compiles it in this process (``hogwild._warm_calls(1)``);
         "background" runs ``precompile.compile_locked(1)``, the background compile with its helper.
speed    samples/s of one HOGWILD! thread (``hogwild.train_shard``), no Dask: the default network
         (784-200-200-10) on MNIST's 60k training rows, standardised, or scaled to [0, 1] with
         ``sparse=True``; per sample (3 x ``--samples`` after a 2000-sample warm-up) and with
         ``mini_batch_size=32`` (3 x 3 ``--samples``). Kernels load from the tree's numba cache
         (the first run of a tree compiles them).

Trees older than issue 21's second part (``warm_up(batch, elastic)``) are driven through their
own signatures.
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(ROOT, "..", "shared", "data")

COMPILE_SCRIPT = textwrap.dedent("""
    import inspect, json, sys, time
    how = sys.argv[1]
    import dask_dl
    from dask_dl.nn import hogwild, precompile
    new = len(inspect.signature(hogwild._warm_calls).parameters) == 1
    t0 = time.perf_counter()
    if how == "background":
        precompile.compile_locked(1) if new else precompile.compile_locked(1, False)
    hogwild._warm_calls(1) if new else hogwild._warm_calls(1, False)
    print("RESULT " + json.dumps({"seconds": time.perf_counter() - t0, "code": dask_dl.__file__}))
""")

SPEED_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np, pandas as pd
    from dask_dl import params
    from dask_dl.nn.hogwild import train_shard
    from dask_dl.nn.network import build_layout, initial_state
    from dask_dl.nn.settings import settings_from_config
    data, case, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    frame = pd.read_parquet(data + "/mnist/train.parquet")
    y = frame.iloc[:, -1].to_numpy().astype(np.float32)
    X = frame.iloc[:, :-1].to_numpy().astype(np.float64)
    sd = X.std(0)
    X = X[:, sd > 0]
    sparse = case == "sparse"
    X = X / X.max(0) if sparse else (X - X.mean(0)) / sd[sd > 0]
    X = np.ascontiguousarray(X, dtype=np.float32)
    extra = {"sparse": True} if sparse else {"mini_batch_size": 32} if case == "batch" else {}
    n = 3 * n if case == "batch" else n
    cfg = params.resolve(extra, "classification", 10)
    layout = build_layout(X.shape[1], list(cfg.hidden), cfg.hidden_activation, 10, True, 0.0,
                          list(cfg.hidden_dropout), input_major=bool(getattr(cfg, "input_major_first_layer", False)))
    state = initial_state(layout, 1)
    run = dict(settings=settings_from_config(cfg), n_threads=1, rng_seeds=(1,))
    train_shard(state, layout, [(X, y)], n_samples=2000, n_seen=0.0, **run)
    t0 = time.perf_counter()
    for rep in range(3):
        train_shard(state, layout, [(X, y)], n_samples=n, n_seen=2000.0 + rep * n, position=0.1 * (rep + 1), **run)
    print("RESULT " + json.dumps({"samples_per_s": 3 * n / (time.perf_counter() - t0)}))
""")


def run_script(src: str, script: str, args: list, cache_dir: str | None = None) -> dict:
    """One fresh process on ``src``'s code (its numba cache in ``cache_dir`` if given)."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src), DASK_DL_PRECOMPILE="0")
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = cache_dir
    # run in src: ``python -c`` puts the working directory first on sys.path
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, cwd=src, capture_output=True,
                          text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{src} {args}: {proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def measure(srcs: list, what: list, repeats: int, samples: int) -> list:
    """[{src, item, value}] for every tree, item and repeat, interleaved tree by tree."""
    rows = []
    for src in srcs:  # the speed runs load each tree's kernels from its cache: compile them first
        if "speed" in what:
            for case in ("dense", "sparse", "batch"):
                run_script(src, SPEED_SCRIPT, [DATA, case, 500])
    for rep in range(repeats):
        for src in srcs if rep % 2 == 0 else srcs[::-1]:
            if "compile" in what:
                for how in ("one process", "background"):
                    with tempfile.TemporaryDirectory() as cache:
                        out = run_script(src, COMPILE_SCRIPT, [how.split()[0]], cache_dir=cache)
                    assert out["code"].startswith(os.path.abspath(src)), out["code"]  # the tree's own code ran
                    rows.append(dict(src=src, item=f"compile, {how} (s)", value=out["seconds"]))
            if "speed" in what:
                for case in ("dense", "sparse", "batch"):
                    sps = run_script(src, SPEED_SCRIPT, [DATA, case, samples])["samples_per_s"]
                    rows.append(dict(src=src, item=f"{case} (samples/s)", value=sps))
            print(f"  repeat {rep + 1} done on {src}", flush=True)
    return rows


def table(rows: list) -> str:
    """Markdown: one row per item, one column per tree, median (min-max); the last column is the
    last tree's median over the first's."""
    srcs = list(dict.fromkeys(r["src"] for r in rows))
    items = list(dict.fromkeys(r["item"] for r in rows))
    head = "| | " + " | ".join(os.path.basename(s.rstrip("/")) or s for s in srcs) + " | last / first |"
    out = [head, "|---" * (len(srcs) + 2) + "|"]
    for item in items:
        cells, medians = [], []
        for src in srcs:
            v = [r["value"] for r in rows if r["src"] == src and r["item"] == item]
            medians.append(statistics.median(v))
            fmt = "{:.1f}" if "compile" in item else "{:.0f}"
            cells.append(f"{fmt.format(medians[-1])} ({fmt.format(min(v))}-{fmt.format(max(v))})")
        out.append(f"| {item} | " + " | ".join(cells) + f" | {medians[-1] / medians[0]:.3f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", nargs="+", default=[ROOT], help="code trees to compare (PYTHONPATH), interleaved")
    ap.add_argument("--what", nargs="+", default=["compile", "speed"], choices=["compile", "speed"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=20000, help="per-sample draws per timed pass")
    args = ap.parse_args()
    print(table(measure(args.src, args.what, args.repeats, args.samples)))


if __name__ == "__main__":
    main()
