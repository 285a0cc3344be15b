"""Accuracy parity, dask_dl vs real H2O-3: the same training rows, the same test rows, several seeds;
the mean, sd and range of the test metric per system, and whether dask_dl meets the acceptance.

    python benchmarks/bench_parity.py [--datasets spiral wine covtype mnist10k mnist20k mnist60k]
        [--epochs 1 10] [--seeds 1 2 3 4 5] [--shapes 1x1 1x2 1x2tl 2x1] [--systems dask_dl h2o]
        [--params '{"mini_batch_size": 32}' --variant mb32] [--results benchmarks/results/parity.jsonl]
    python benchmarks/bench_parity.py --report                       # the table of what is in the file
    python benchmarks/bench_parity.py --datasets spiral mnist10k --rows 600 --test-rows 200 --hidden 8 \\
        --epochs 1 --seeds 1 2 --shapes 1x1 --results /tmp/parity.jsonl   # smoke size

Datasets (the train/test split is fixed, numpy seed 0, whatever the model seed; --rows/--test-rows cap
both sides with random subsets of them, except MNIST whose first rows are taken):
  mnist10k, mnist20k, mnist60k  the first 10k / 20k / all 60k rows of mnist/train.parquet; test: the
             10k rows of test.parquet; response C785 (classification: test error).
  covtype    covtype/covtype.parquet split by bench_time_to_accuracy's load_covtype with split seed 0
             (that benchmark's --seed defaults to 1: other rows): of the stored 20k-row subset, 5,000
             random test rows and the other 15,000 for training; response Cover_Type (7 classes).
  wine       wine/winequality-redwhite.csv, a random 20% for testing; response quality as a regression
             (test RMSE), the other 12 columns (the categorical type included) as features.
  spiral     spiral/spiral.csv, 25% of each class (color: Black / Red) for testing; response color.
Both systems use H2O's default network (hidden 200,200 unless --hidden, Rectifier, ADADELTA, every other
parameter at its default) with --epochs, --seeds and --params (H2O gets the ones it has: not
bench_mnist.NOT_H2O), and the test rows as the validation frame; the metric is computed from
predict() on the test rows.

Shapes (dask_dl side: a LocalCluster started once per worker shape, 1x2 and 1x2tl sharing theirs, and
reused for every run; H2O runs with nthreads = workers x threads, once per (dataset, epochs, nthreads,
seed), shared by the shapes):
  1x1        1 worker x 1 thread                                  H2O nthreads 1
  1x2        1 worker x 2 HOGWILD! threads sharing one copy       H2O nthreads 2
  1x2tl      1 worker x 2 threads with thread_local_models=True   H2O nthreads 2
  2x1        2 workers x 1 thread (model averaging)               H2O nthreads 2

Acceptance per (dataset, epochs, shape, variant): dask_dl's mean test error <= H2O's mean + 0.2
percentage points (regression: mean test RMSE <= 1.01 x H2O's), and dask_dl's seed-to-seed sd (sample
sd) <= 1.5 x H2O's.

Every finished run is appended at once as a JSON line to --results (an exception: a line with
"error"); a run whose key (system, dataset, epochs, shape / H2O nthreads, seed, variant, params,
hidden, row caps) is already there without an error is skipped (a failed one runs again), so an
interrupted study continues and a new --variant reuses the H2O runs. Work goes in (dataset, epochs)
groups, cheapest first (per-epoch cost x epochs), each finished on every system, shape and seed before
the next; one H2O JVM runs at a time (h2o_reference.h2o_cluster), restarted only when a group needs
the other nthreads. The report (also printed after every study) reads the whole file: per group the
mean ± sd [min–max] (n) of each system, errors in %, RMSE absolute; only runs with the same row caps,
hidden layers and H2O parameters are compared. main() returns the report as a DataFrame.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import math
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # the shared helpers of the other benchmarks
    sys.path.insert(0, HERE)
from bench_mnist import DATA, NOT_H2O  # noqa: E402
from bench_mnist import load as load_mnist  # noqa: E402

SPLIT_SEED = 0
SYSTEMS = ("dask_dl", "h2o")
ERROR_MARGIN, RMSE_FACTOR, SD_FACTOR = 0.002, 1.01, 1.5  # the acceptance rule (0.2 pp = 0.002)


# ------------------------------------------------------------------------------------------ data
@dataclass
class Data:
    train: pd.DataFrame
    test: pd.DataFrame
    y: str
    regression: bool

    @property
    def metric(self) -> str:
        return "test_rmse" if self.regression else "test_error"


def split(df: pd.DataFrame, test_frac: float, rows: int | None, test_rows: int | None,
          by: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fixed random split (numpy seed SPLIT_SEED), ``test_frac`` of the rows (of each class of ``by``)
    for testing; caps take the first rows of the permutation; both sides keep the file's row order."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(df))
    if by is None:
        is_test = np.arange(len(df)) < round(test_frac * len(df))
    else:
        labels = pd.Series(df[by].astype(str).to_numpy()[perm])
        rank = labels.groupby(labels).cumcount().to_numpy()
        is_test = rank < np.round(test_frac * labels.map(labels.value_counts()).to_numpy())
    tr, te = np.sort(perm[~is_test][:rows]), np.sort(perm[is_test][:test_rows])
    return df.iloc[tr].reset_index(drop=True), df.iloc[te].reset_index(drop=True)


def _mnist(n: int | None) -> Callable[[int | None, int | None], Data]:
    def load(rows: int | None, test_rows: int | None) -> Data:
        cap = min(x for x in (n, rows) if x) if (n or rows) else None
        return Data(*load_mnist(cap, test_rows), "C785", regression=False)
    return load


def _covtype(rows: int | None, test_rows: int | None) -> Data:
    from bench_time_to_accuracy import load_covtype
    return Data(*load_covtype(rows, test_rows, SPLIT_SEED), regression=False)


def _wine(rows: int | None, test_rows: int | None) -> Data:
    df = pd.read_csv(os.path.join(DATA, "wine", "winequality-redwhite.csv"), encoding="utf-8-sig")
    return Data(*split(df, 0.2, rows, test_rows), "quality", regression=True)


def _spiral(rows: int | None, test_rows: int | None) -> Data:
    df = pd.read_csv(os.path.join(DATA, "spiral", "spiral.csv"))
    return Data(*split(df, 0.25, rows, test_rows, by="color"), "color", regression=False)


# name -> (loader, relative cost of one epoch ~ training rows x input width, for the order of work)
DATASETS: dict[str, tuple[Callable[[int | None, int | None], Data], float]] = {
    "spiral": (_spiral, 150 * 2), "wine": (_wine, 5200 * 13), "covtype": (_covtype, 15000 * 52),
    "mnist10k": (_mnist(10000), 10000 * 717), "mnist20k": (_mnist(20000), 20000 * 717),
    "mnist60k": (_mnist(None), 60000 * 717)}

# name -> (workers, threads per worker, extra dask_dl parameters)
SHAPES: dict[str, tuple[int, int, dict]] = {
    "1x1": (1, 1, {}), "1x2": (1, 2, {}), "1x2tl": (1, 2, {"thread_local_models": True}), "2x1": (2, 1, {})}


def h2o_params(params: dict) -> dict:
    """The parameters H2O gets: all but dask_dl-only ones."""
    return {k: v for k, v in params.items() if k not in NOT_H2O}


# ------------------------------------------------------------------------------- clusters, runs
class Engines:
    """The dask_dl LocalClusters (one per worker shape, started on first use, kept to the end; 1x2 and
    1x2tl share theirs) and the one H2O JVM running (h2o_reference allows one at a time)."""

    def __init__(self) -> None:
        self.clusters: dict[tuple[int, int], tuple[contextlib.ExitStack, object]] = {}
        self.jvm = contextlib.ExitStack()
        self.h2o_nthreads: int | None = None

    def __enter__(self) -> Engines:
        return self

    def __exit__(self, *exc) -> None:
        log = logging.getLogger("distributed")
        level = log.level
        log.setLevel(logging.WARNING)  # not the INFO lines of every worker and scheduler closing
        try:
            self.jvm.close()
            for shape in list(self.clusters):
                self.reset_cluster(shape)
        finally:
            log.setLevel(level)

    def client(self, workers: int, threads: int):
        if (workers, threads) not in self.clusters:
            from dask_dl.cluster.session import local_client
            stack = contextlib.ExitStack()
            self.clusters[(workers, threads)] = stack, stack.enter_context(local_client(workers, threads))
        return self.clusters[(workers, threads)][1]

    def reset_cluster(self, shape: tuple[int, int]) -> None:
        stack, _ = self.clusters.pop(shape, (None, None))
        if stack is not None:
            stack.close()

    def use_h2o(self, nthreads: int) -> None:
        if self.h2o_nthreads != nthreads:
            from h2o_reference import h2o_cluster
            self.reset_h2o()
            self.jvm.enter_context(h2o_cluster(nthreads=nthreads))
            self.h2o_nthreads = nthreads

    def reset_h2o(self) -> None:
        self.h2o_nthreads = None
        self.jvm.close()

    def after_error(self, job: dict) -> None:
        """A failed run may have left its cluster or JVM broken: the next run starts a fresh one."""
        if job["system"] == "dask_dl":
            self.reset_cluster((job["workers"], job["threads"]))
        else:
            self.reset_h2o()


def test_metric(data: Data, pred) -> float:
    """RMSE (regression) or the classification error of predictions on the test rows."""
    truth = data.test[data.y]
    if data.regression:
        return float(np.sqrt(np.mean((np.asarray(pred, dtype=float) - truth.to_numpy(dtype=float)) ** 2)))
    return float(np.mean(np.asarray(pred).astype(str) != truth.astype(str).to_numpy()))


def fit_dask_dl(client, data: Data, job: dict) -> dict:
    import dask.dataframe as dd

    import dask_dl
    cls = dask_dl.DeepLearningRegressor if data.regression else dask_dl.DeepLearningClassifier
    params = {**job["params"], **SHAPES[job["shape"]][2]}
    model = cls(hidden=job["hidden"], epochs=job["epochs"], seed=job["seed"], quiet_mode=True, client=client,
                **params)
    train = dd.from_pandas(data.train, npartitions=max(1, len(data.train) // 10000))
    t0 = time.perf_counter()
    model.fit(train, data.y, validation_data=dd.from_pandas(data.test, npartitions=1))
    wall = time.perf_counter() - t0
    pred = model.predict(data.test.drop(columns=[data.y]))
    return {"value": test_metric(data, pred), "fit_seconds": wall,
            "run_seconds": model.model_.run.get("run_seconds"), "dask_dl_version": dask_dl.__version__}


def fit_h2o(data: Data, job: dict) -> dict:
    from h2o_reference import run_h2o_deeplearning
    r = run_h2o_deeplearning(data.train, data.test, data.y, classification=not data.regression,
                             hidden=job["hidden"], epochs=job["epochs"], seed=job["seed"], **job["params"])
    return {"value": r[data.metric], "fit_seconds": r["train_seconds"], "train_seconds": r["train_seconds"],
            "h2o_valid_metric": r.get("h2o_valid_metric"), "h2o_nthreads_used": r.get("nthreads"),
            "h2o_version": r.get("h2o_version")}


def run_job(job: dict, data: Data, engines: Engines) -> dict:
    """One fit, as the record to append: the job, its test metric and times, or an "error"."""
    try:
        if job["system"] == "dask_dl":
            out = fit_dask_dl(engines.client(job["workers"], job["threads"]), data, job)
        else:
            engines.use_h2o(job["nthreads"])
            out = fit_h2o(data, job)
    except Exception as exc:  # recorded; the study goes on
        traceback.print_exc()
        engines.after_error(job)
        out = {"error": f"{type(exc).__name__}: {exc}"}
    return {**job, "metric": data.metric, "n_train": len(data.train), "n_test": len(data.test), **out,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), **({"dask_dl_commit": _commit()} if job["system"] == "dask_dl" else {})}


def _commit() -> str | None:
    """The dask_dl checkout's commit (a dask_dl run belongs to the code that made it), if a git one."""
    import subprocess
    import dask_dl
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=os.path.dirname(dask_dl.__file__),
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------- the study
KEY = ("system", "dataset", "epochs", "seed", "rows", "test_rows", "hidden", "params", "shape", "nthreads",
       "variant")


def run_key(record: dict) -> str:
    return json.dumps([record.get(k) for k in KEY], sort_keys=True)


def read_results(path: str) -> list[dict]:
    """The records in the results file (a line cut short by a kill is passed over)."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as fh:
        for line in fh:
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
    return records


def append_result(path: str, record: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def plan(args: argparse.Namespace) -> list[tuple[str, float]]:
    """(dataset, epochs) groups, cheapest first."""
    groups = [(d, float(e)) for d in args.datasets for e in args.epochs]
    return sorted(groups, key=lambda g: (DATASETS[g[0]][1] * g[1], g[1]))


def group_jobs(dataset: str, epochs: float, args: argparse.Namespace, h2o_now: int | None) -> list[dict]:
    """Every run of one group: dask_dl per shape and seed, then H2O per nthreads (the running JVM's
    first) and seed."""
    params = json.loads(args.params)
    base = {"dataset": dataset, "epochs": epochs, "rows": args.rows, "test_rows": args.test_rows,
            "hidden": list(args.hidden)}
    jobs = []
    if "dask_dl" in args.systems:
        for shape in args.shapes:
            w, t, _ = SHAPES[shape]
            jobs += [{"system": "dask_dl", **base, "seed": s, "shape": shape, "workers": w, "threads": t,
                      "nthreads": w * t, "variant": args.variant, "params": params} for s in args.seeds]
    if "h2o" in args.systems:
        nthreads = sorted({SHAPES[s][0] * SHAPES[s][1] for s in args.shapes}, key=lambda n: (n != h2o_now, n))
        jobs += [{"system": "h2o", **base, "seed": s, "shape": None, "nthreads": n, "variant": None,
                  "params": h2o_params(params)} for n in nthreads for s in args.seeds]
    return jobs


def study(args: argparse.Namespace) -> None:
    if "h2o" in args.systems and importlib.util.find_spec("h2o") is None:
        raise SystemExit("the H2O runs need the h2o package (pip install h2o) and Java; or --systems dask_dl")
    done = {run_key(r) for r in read_results(args.results) if "error" not in r}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; results "
          f"{args.results} ({len(done)} runs done)", flush=True)
    with Engines() as engines:
        for dataset, epochs in plan(args):
            jobs = [j for j in group_jobs(dataset, epochs, args, engines.h2o_nthreads) if run_key(j) not in done]
            if not jobs:
                continue
            data = DATASETS[dataset][0](args.rows, args.test_rows)
            for job in jobs:
                record = run_job(job, data, engines)
                append_result(args.results, record)
                print(_progress(record), flush=True)


def _progress(r: dict) -> str:
    what = r.get("error") or f"{r['metric']} {r['value']:.4f}, fit {r['fit_seconds']:.1f} s"
    where = r["shape"] or f"nthreads {r['nthreads']}"
    return f"{r['dataset']} epochs {r['epochs']:g} {r['system']} {where} seed {r['seed']}: {what}"


# -------------------------------------------------------------------------------------- report
def _js(value) -> str:
    return json.dumps(value, sort_keys=True)


def stats(values: list[float]) -> dict:
    """n, mean, sample sd (ddof=1; NaN below 2 runs), min and max."""
    v = np.asarray(values, dtype=float)
    nan = float("nan")
    return {"n": len(v), "mean": float(v.mean()) if len(v) else nan,
            "sd": float(v.std(ddof=1)) if len(v) > 1 else nan,
            "min": float(v.min()) if len(v) else nan, "max": float(v.max()) if len(v) else nan}


def meets(metric: str, d: dict, h: dict) -> str:
    """The acceptance on two stats() dicts: "yes", "no", or "—" with fewer than 2 runs on a side."""
    if d["n"] < 2 or h["n"] < 2:
        return "—"
    bound = h["mean"] * RMSE_FACTOR if metric == "test_rmse" else h["mean"] + ERROR_MARGIN
    ok = d["mean"] <= bound + 1e-12 and d["sd"] <= SD_FACTOR * h["sd"] + 1e-12
    return "yes" if ok else "no"


def _compare(setup: tuple, shape: str | None, variant: str | None, params: dict, dask: list[dict],
             h2o: list[dict]) -> dict:
    """One report row: a dask_dl group against the H2O runs of the same setup."""
    dataset, epochs, rows, test_rows, hidden, nthreads, _ = setup
    metric = (dask or h2o)[0]["metric"]
    d, h = stats([r["value"] for r in dask]), stats([r["value"] for r in h2o])
    ratio = d["sd"] / h["sd"] if h["sd"] > 0 else float("inf") if d["sd"] > 0 else float("nan")
    return {"dataset": dataset, "epochs": epochs, "shape": shape or f"h2o nthreads {nthreads}",
            "variant": variant, "params": params, "rows": rows, "test_rows": test_rows, "hidden": list(hidden),
            "nthreads": nthreads, "metric": metric, **{f"dask_dl_{k}": v for k, v in d.items()},
            **{f"h2o_{k}": v for k, v in h.items()}, "delta": d["mean"] - h["mean"], "sd_ratio": ratio,
            "meets": meets(metric, d, h)}


def summarize(records: list[dict]) -> pd.DataFrame:
    """The report as a DataFrame: a row per dask_dl (dataset, epochs, shape, variant, params, setup),
    compared with H2O's runs of the same setup (dataset, epochs, row caps, hidden, nthreads, H2O
    parameters); H2O runs no dask_dl group matches get rows of their own."""
    dask: dict[tuple, list[dict]] = {}
    h2o: dict[tuple, list[dict]] = {}
    for r in records:
        if "error" in r or r.get("value") is None or not math.isfinite(r["value"]):
            continue
        hp = r["params"] if r["system"] == "h2o" else h2o_params(r["params"])
        setup = (r["dataset"], r["epochs"], r["rows"], r["test_rows"], tuple(r["hidden"]), r["nthreads"], _js(hp))
        if r["system"] == "h2o":
            h2o.setdefault(setup, []).append(r)
        else:
            dask.setdefault((setup, r["shape"], r["variant"], _js(r["params"])), []).append(r)
    rows = [_compare(setup, shape, variant, json.loads(p), recs, h2o.get(setup, []))
            for (setup, shape, variant, p), recs in dask.items()]
    matched = {k[0] for k in dask}
    rows += [_compare(setup, None, None, json.loads(setup[-1]), [], recs)
             for setup, recs in h2o.items() if setup not in matched]
    order = {name: i for i, name in enumerate(sorted(DATASETS, key=lambda n: DATASETS[n][1]))}
    shapes = list(SHAPES)
    rows.sort(key=lambda r: (order.get(r["dataset"], 99), r["epochs"], str(r["rows"]), str(r["test_rows"]),
                             shapes.index(r["shape"]) if r["shape"] in shapes else 99, str(r["variant"])))
    return pd.DataFrame(rows)


def _cell(row: dict, system: str) -> str:
    """mean ± sd [min–max] (n): errors in percent with 2 decimals, RMSE with 4."""
    if not row[f"{system}_n"]:
        return "—"
    scale, digits = (1.0, 4) if row["metric"] == "test_rmse" else (100.0, 2)
    f = [f"{scale * row[f'{system}_{k}']:.{digits}f}" if math.isfinite(row[f"{system}_{k}"]) else "—"
         for k in ("mean", "sd", "min", "max")]
    return f"{f[0]} ± {f[1]} [{f[2]}–{f[3]}] ({row[f'{system}_n']})"


def _row_cells(row: dict) -> list[str]:
    setup = [f"rows≤{row['rows']}" if row["rows"] else "", f"test≤{row['test_rows']}" if row["test_rows"] else "",
             "" if row["hidden"] == [200, 200] else "hidden " + ",".join(map(str, row["hidden"]))]
    setup = ", ".join(s for s in setup if s)
    rmse = row["metric"] == "test_rmse"
    delta = (f"{row['delta']:+.4f}" if rmse else f"{100 * row['delta']:+.2f} pp") if math.isfinite(row["delta"]) \
        else "—"
    ratio = f"{row['sd_ratio']:.2f}" if math.isfinite(row["sd_ratio"]) else "—"
    variant = row["variant"] if isinstance(row["variant"], str) else "—"  # H2O-only rows: none
    variant += f" {_js(row['params'])}" if row["params"] else ""
    return [row["dataset"] + (f" ({setup})" if setup else ""), f"{row['epochs']:g}", row["shape"], variant,
            _cell(row, "dask_dl"), _cell(row, "h2o"), delta, ratio, row["meets"]]


def markdown(table: pd.DataFrame, failed: int = 0) -> str:
    lines = [f"test error in % (RMSE for wine); Δ mean = dask_dl − H2O; sd: sample sd over seeds; meets: mean "
             f"<= H2O's + {100 * ERROR_MARGIN:g} pp (RMSE <= {RMSE_FACTOR:g} x H2O's) and sd <= {SD_FACTOR:g} x "
             f"H2O's (—: under 2 runs on a side)", "",
             "| dataset | epochs | shape | variant | dask_dl mean ± sd [min–max] (n) | H2O mean ± sd [min–max] (n) "
             "| Δ mean | sd ratio | meets |", "|" + " --- |" * 9]
    lines += ["| " + " | ".join(_row_cells(r)) + " |" for r in table.to_dict("records")]
    if failed:
        lines.append(f"\n{failed} run(s) failed and have no successful rerun: see the 'error' lines of the file")
    return "\n".join(lines)


def report(path: str) -> pd.DataFrame:
    """Print the report of the results file; return it as a DataFrame."""
    records = read_results(path)
    ok = {run_key(r) for r in records if "error" not in r}
    failed = len({run_key(r) for r in records if "error" in r} - ok)
    table = summarize(records)
    print("\n" + markdown(table, failed), flush=True)
    return table


# ---------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    ap.add_argument("--epochs", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    ap.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    ap.add_argument("--params", default="{}", help="extra dask_dl parameters as JSON (H2O gets them too, but "
                    "for dask_dl-only ones)")
    ap.add_argument("--variant", default="default", help="a label stored with the dask_dl runs")
    ap.add_argument("--rows", type=int, default=None, help="cap on the training rows (smoke size)")
    ap.add_argument("--test-rows", type=int, default=None, help="cap on the test rows")
    ap.add_argument("--results", default=os.path.join(HERE, "results", "parity.jsonl"))
    ap.add_argument("--report", action="store_true", help="only print the report of --results")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    if not args.report:
        study(args)
    return report(args.results)


if __name__ == "__main__":
    main()
