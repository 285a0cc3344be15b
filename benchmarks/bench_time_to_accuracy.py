"""Time to accuracy: wall seconds until the test error first reaches a target, dask_dl vs PyTorch vs
scikit-learn, on the same cores in one run.

    python benchmarks/bench_time_to_accuracy.py [--budget 300] [--threads N] [--datasets mnist covtype]
    python benchmarks/bench_time_to_accuracy.py --dask-dl-config '{}' \\
        --dask-dl-config '{"mini_batch_size": 1}' --dask-dl-config '{"mini_batch_size": 32}'
    python benchmarks/bench_time_to_accuracy.py --rows 2000 --test-rows 500 --hidden 16 --budget 5 \\
        --threads 1 --target-mnist 0.5 --target-covtype 0.6                       # smoke size

Datasets (targets are test classification errors):
  mnist      60k training rows, the 10k test rows, target 2.5% (--target-mnist); 784-200-200-10.
  covtype    rows sampled with --seed from covtype.parquet: a test set of 20,000 rows and 20,000
             disjoint training rows when the file has them; the stored file is H2O's 20k-row subset,
             so there it is 5,000 test rows (a quarter) and the other 15,000 for training. Target 25%
             (--target-covtype). Same hidden layers on the one-hot encoded categoricals and the
             standardized numerics.

Systems (one after another; nothing else of this script runs meanwhile):
  dask_dl    one configuration per --dask-dl-config (a JSON dict of dask_dl / H2O parameters; default
             '{}' = H2O's defaults) on a LocalCluster of --dask-workers worker processes sharing
             --threads threads (default "auto": as dask_dl's embedded cluster would on --threads cores,
             session.embedded_shape: per sample a worker per thread, at most 4 workers, since
             per-sample HOGWILD! threads sharing one copy fight over its cache lines; with
             mini-batches one worker per 8 threads, whose HOGWILD! threads share well and need no
             averaging; started before the clock, passed as client=). The harness sets
             epochs=--epochs (large), max_runtime_secs=--budget,
             score_each_iteration=False, score_interval=1 s, score_duty_cycle=0.5, stopping_rounds=0
             and classification_stop=-1 (so only the budget ends a run: H2O's stopping rules cannot
             end it before the target) and the test set as validation_data; a configuration's own
             keys override these.
             The data are persisted on the worker before the clock starts, and an untimed 200-row
             fit of the same configuration runs first, so numba's compilation (or cache load: ~0.6 s
             on a fresh worker, but 15-30 s of compiling whenever the kernels' source changed) is
             off the clock too; --no-warm-up puts it back in the set-up time.
             Time to target = the fit's set-up before the training loop (fit wall time minus
             model_.run["run_seconds"]: statistics pass, encoding, worker warm-up, data placement) + the
             `duration` of the first scoring-history row with validation_classification_error <= target.
             Scoring happens only between iterations (with the default train_samples_per_iteration and
             a large `epochs`, one iteration = one epoch on one worker), so the time is that of the
             first scored model at or below the target. dask_dl offers no way to stop at a validation
             target (classification_stop watches the sampled TRAINING error), so every dask_dl fit
             runs its whole budget. A parameter dask_dl does not know (e.g. mini_batch_size before it
             lands) makes the row "unsupported" instead of stopping the run.
  torch      PyTorch CPU, torch.set_num_threads(--threads): Linear/ReLU layers of the same sizes
             (with --torch-dropout, Dropout on the inputs and after every hidden layer),
             Adam lr 1e-3, batch 128, cross-entropy, a fresh shuffle each epoch, the test error
             checked after every epoch.
  sklearn    MLPClassifier(hidden_layer_sizes=hidden, solver="adam", batch_size=200, otherwise
             sklearn's defaults: learning_rate_init 1e-3, alpha 1e-4), trained with partial_fit on
             10k-row chunks of a fresh permutation each epoch, BLAS limited to --threads threads
             (threadpoolctl), the test error checked after every epoch.
  torch and sklearn get the inputs standardized the simple way (per-column mean/std of the training
  rows, std 0 -> 1; categoricals one-hot, left 0/1), and their clock (time.perf_counter) starts before
  that preprocessing and the conversion to float32 arrays / tensors (after the imports and, for torch,
  one tiny untimed Adam step that does its one-time lazy initialisation).

Every system stops at the target or once --budget seconds have passed (torch/sklearn: measured from
before their preprocessing, checked between batches/chunks; dask_dl: max_runtime_secs bounds its
training loop and its set-up comes on top, so a dask_dl time to target can exceed the budget).
Reported per system and configuration: time to target (s, or "not reached"), epochs at the target
(or run, if not reached), the final test error (dask_dl: the model fit returns, i.e. the last
scoring-history row, after H2O's best-model restore), set-up seconds (dask_dl: fit wall time minus
the training loop; torch/sklearn: preprocessing and model construction) and the total wall seconds.
main() returns {dataset: DataFrame}.

On a shared VM, torch's OpenMP threads (and BLAS's) wait for each other at every batch, so when
another process takes one of the cores they slow down several- to tens-fold (seen here: 2 threads
5-40x slower than 1), while dask_dl's HOGWILD! threads run independently through an iteration:
compare runs made in the same quiet moment, or also run with --threads 1.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
import traceback

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")

SYSTEMS = ("dask_dl", "torch", "sklearn")
TORCH_BATCH, SKLEARN_BATCH, SKLEARN_CHUNK = 128, 200, 10000


# ------------------------------------------------------------------------------------------- data
def load_mnist(rows: int | None, test_rows: int | None, seed: int):
    tr = pd.read_parquet(os.path.join(DATA, "mnist", "train.parquet"))
    te = pd.read_parquet(os.path.join(DATA, "mnist", "test.parquet"))
    return (tr.iloc[:rows] if rows else tr), (te.iloc[:test_rows] if test_rows else te), "C785"


def load_covtype(rows: int | None, test_rows: int | None, seed: int):
    """Disjoint random train/test rows (numpy seed ``seed``): 20k/20k where the file has 40k rows,
    else a quarter of the file for testing and the rest (at most 20k) for training."""
    df = pd.read_parquet(os.path.join(DATA, "covtype", "covtype.parquet"))
    n = len(df)
    n_test = test_rows or (20000 if n >= 40000 else n // 4)
    n_train = min(rows or 20000, n - n_test)
    if n_train <= 0:
        raise SystemExit(f"covtype has {n} rows: too few for {n_test} test rows and {rows} training rows")
    perm = np.random.default_rng(seed).permutation(n)
    te = df.iloc[np.sort(perm[:n_test])].reset_index(drop=True)
    tr = df.iloc[np.sort(perm[n_test:n_test + n_train])].reset_index(drop=True)
    return tr, te, "Cover_Type"


LOADERS = {"mnist": load_mnist, "covtype": load_covtype}


def _levels(col: pd.Series) -> list:
    """The sorted distinct values of a column as plain Python objects (categorical dtype dropped)."""
    return sorted(set(col.dropna().astype(object).tolist()))


def prepare(tr: pd.DataFrame, te: pd.DataFrame, y: str):
    """float32 design matrices and int64 labels for torch/sklearn: numeric columns standardized with
    the training rows' mean/std (std 0 -> 1), categorical ones one-hot (levels from the training rows),
    labels coded by the sorted training classes."""
    feats = [c for c in tr.columns if c != y]
    cat = [c for c in feats if not pd.api.types.is_numeric_dtype(tr[c]) or isinstance(tr[c].dtype, pd.CategoricalDtype)]
    num = [c for c in feats if c not in cat]

    def design(df):
        parts = []
        if num:
            parts.append(np.array(df[num].to_numpy(dtype=np.float32), copy=True))  # writable
        for c in cat:
            levels = _levels(tr[c])
            codes = pd.Index(levels).get_indexer(df[c].astype(object))
            onehot = np.zeros((len(df), len(levels)), dtype=np.float32)
            ok = codes >= 0
            onehot[np.nonzero(ok)[0], codes[ok]] = 1.0  # unseen levels / NA: all zeros
            parts.append(onehot)
        return np.concatenate(parts, axis=1) if len(parts) > 1 else np.array(parts[0], copy=True)

    Xtr, Xte = design(tr), design(te)
    k = len(num)
    if k:
        mean = Xtr[:, :k].mean(axis=0, dtype=np.float64)
        std = Xtr[:, :k].std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        Xtr[:, :k] = (Xtr[:, :k] - mean) / std
        Xte[:, :k] = (Xte[:, :k] - mean) / std
    classes = _levels(tr[y])
    ytr = pd.Index(classes).get_indexer(tr[y].astype(object)).astype(np.int64)
    yte = pd.Index(classes).get_indexer(te[y].astype(object)).astype(np.int64)  # unseen class: -1, always wrong
    return np.ascontiguousarray(Xtr), ytr, np.ascontiguousarray(Xte), yte, len(classes)


# ---------------------------------------------------------------------------------------- systems
def _row(system, config, reached_at, epochs_at, epochs_run, final_error, setup, wall, budget, note=""):
    reached = reached_at is not None and reached_at <= budget
    return {"system": system, "config": config, "reached": reached,
            "time_to_target_s": float(reached_at) if reached else float("nan"),
            "epochs": float(epochs_at if reached else epochs_run),
            "final_test_error": float(final_error), "setup_s": float(setup), "wall_s": float(wall),
            "note": note}


def _duration_seconds(value) -> float:
    """Scoring-history 'duration' ("12.345 sec", or a number) in seconds."""
    if isinstance(value, (int, float, np.number)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        td = pd.to_timedelta(text)
        return td.total_seconds()


def _workers_for(config: dict, args) -> int:
    """--dask-workers, or with "auto" the workers dask_dl's embedded cluster would start on --threads
    cores for this configuration (session.embedded_shape)."""
    if str(args.dask_workers) != "auto":
        return int(args.dask_workers)
    from dask_dl.cluster.session import embedded_shape
    return embedded_shape(max(1, args.threads), mini_batch=int(config.get("mini_batch_size", 1)) > 1)[0]


def run_dask_dl(tr, te, y, config: dict, args, target: float, label: str) -> dict:
    import warnings

    import dask.dataframe as dd
    from distributed import wait

    import dask_dl
    from dask_dl.cluster.session import local_client
    params = {"hidden": list(args.hidden), "epochs": args.epochs, "seed": args.seed, "quiet_mode": True,
              "max_runtime_secs": float(args.budget), "score_each_iteration": False, "score_interval": 1.0,
              "score_duty_cycle": 0.5, "stopping_rounds": 0, "classification_stop": -1}
    params.update(config)
    workers = _workers_for(config, args)
    with local_client(workers, max(1, args.threads // workers)) as client:
        # the data sit in the worker's memory before the clock starts, as torch's and sklearn's sit in
        # this process's (the pandas -> worker transfer is not dask_dl's cost)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sending large graph")
            train, valid = client.persist([dd.from_pandas(df, npartitions=max(1, len(df) // 10000), sort=False)
                                           for df in (tr, te)])
            wait([train, valid])
        t0 = time.perf_counter()
        try:
            if args.warm_up:  # a tiny untimed fit: worker imports and numba compile / cache load off the clock
                small = {**params, "epochs": 1.0, "max_runtime_secs": 0.0}
                dask_dl.DeepLearningClassifier(**small, client=client).fit(tr.iloc[:200], y)
            t0 = time.perf_counter()
            clf = dask_dl.DeepLearningClassifier(**params, client=client)
            clf.fit(train, y, validation_data=valid)
            wall = time.perf_counter() - t0  # before the cluster's shutdown, which is not the fit's
        except (TypeError, ValueError) as err:
            wall = time.perf_counter() - t0
            named = [k for k in config if k in str(err)]
            if not named:
                raise
            known = getattr(getattr(dask_dl, "params", None), "PARAMETERS", {})
            status = "unsupported" if any(k not in known for k in named) else "rejected"
            msg = str(err).splitlines()[0][:160]
            print(f"  {label}: {status}: {msg}", flush=True)
            return {"system": "dask_dl", "config": label, "reached": False, "time_to_target_s": float("nan"),
                    "epochs": float("nan"), "final_test_error": float("nan"), "setup_s": float("nan"),
                    "wall_s": wall, "note": f"{status}: {msg}"}
    run = clf.model_.run
    hist = clf.model_.scoring_history()
    setup = wall - float(run["run_seconds"])
    err_col = "validation_classification_error"
    errors = pd.to_numeric(hist[err_col], errors="coerce") if err_col in hist else pd.Series(np.nan, hist.index)
    hit = hist[errors <= target]
    reached_at = epochs_at = None
    if len(hit):
        first = hit.iloc[0]
        reached_at = setup + _duration_seconds(first["duration"])
        epochs_at = float(first["epochs"])
    final = float(errors.dropna().iloc[-1]) if errors.notna().any() else float("nan")
    best = float(errors.min()) if errors.notna().any() else float("nan")
    note = (f"{workers} worker(s) x {max(1, args.threads // workers)} thread(s); stop {run.get('stop_reason')}, "
            f"{run.get('iterations')} it, {len(hist) - 1} scorings, best scored {best:.4f}")
    if getattr(args, "history_dir", None):  # the whole trajectory (e.g. of a long run towards the booklet's 1%)
        os.makedirs(args.history_dir, exist_ok=True)
        hist.to_csv(os.path.join(args.history_dir, f"dask_dl-{time.strftime('%Y%m%dT%H%M%S')}.csv"), index=False)
    # the budget bounded the training loop (max_runtime_secs); the set-up before it is on top
    return _row("dask_dl", label, reached_at, epochs_at, float(run["epochs"]), final, setup, wall,
                math.inf, note)


def run_torch(tr, te, y, args, target: float) -> dict:
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        # torch's one-time lazy initialisation (the first optimizer imports ~1.6 s of modules), off the clock
        warm = torch.nn.Linear(2, 2)
        warm_opt = torch.optim.Adam(warm.parameters(), lr=1e-3)
        warm(torch.zeros(1, 2)).sum().backward()
        warm_opt.step()
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        Xtr, ytr, Xte, yte, k = prepare(tr, te, y)
        Xtr_t, ytr_t = torch.from_numpy(Xtr), torch.from_numpy(ytr)
        Xte_t, yte_t = torch.from_numpy(Xte), torch.from_numpy(yte)
        drop_in, drop_hidden = args.torch_dropout
        layers, width = ([torch.nn.Dropout(drop_in)] if drop_in else []), Xtr.shape[1]
        for h in args.hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()] + ([torch.nn.Dropout(drop_hidden)] if drop_hidden
                                                                     else [])
            width = h
        net = torch.nn.Sequential(*layers, torch.nn.Linear(width, k))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(args.seed)
        setup = time.perf_counter() - t0

        def test_error() -> float:
            net.eval()
            with torch.no_grad():
                pred = net(Xte_t).argmax(dim=1)
            net.train()
            return float((pred != yte_t).float().mean())

        n, epochs, reached_at, epochs_at, err = len(ytr), 0.0, None, None, float("nan")
        out_of_time = False
        while not out_of_time:
            perm = torch.randperm(n, generator=gen)
            done = 0
            for i in range(0, n, TORCH_BATCH):
                idx = perm[i:i + TORCH_BATCH]
                opt.zero_grad(set_to_none=True)
                loss_fn(net(Xtr_t[idx]), ytr_t[idx]).backward()
                opt.step()
                done += len(idx)
                if time.perf_counter() - t0 > args.budget:
                    out_of_time = True
                    break
            epochs += done / n
            err = test_error()
            if err <= target:
                reached_at, epochs_at = time.perf_counter() - t0, epochs
                break
        wall = time.perf_counter() - t0
    finally:
        torch.set_num_threads(previous)
    dropout = f", dropout {drop_in:g} / {drop_hidden:g}" if drop_in or drop_hidden else ""
    return _row("torch", f"Adam lr 1e-3, batch {TORCH_BATCH}{dropout}", reached_at, epochs_at, epochs, err, setup, wall,
                args.budget)


def run_sklearn(tr, te, y, args, target: float) -> dict:
    import warnings

    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=args.threads):
        t0 = time.perf_counter()
        Xtr, ytr, Xte, yte, k = prepare(tr, te, y)
        clf = MLPClassifier(hidden_layer_sizes=tuple(args.hidden), solver="adam", batch_size=SKLEARN_BATCH,
                            learning_rate_init=1e-3, shuffle=False, random_state=args.seed)
        classes = np.arange(k)
        rng = np.random.default_rng(args.seed)
        setup = time.perf_counter() - t0
        n, epochs, reached_at, epochs_at, err = len(ytr), 0.0, None, None, float("nan")
        out_of_time = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while not out_of_time:
                perm = rng.permutation(n)
                done = 0
                for i in range(0, n, SKLEARN_CHUNK):
                    idx = perm[i:i + SKLEARN_CHUNK]
                    clf.partial_fit(Xtr[idx], ytr[idx], classes=classes)
                    done += len(idx)
                    if time.perf_counter() - t0 > args.budget:
                        out_of_time = True
                        break
                epochs += done / n
                err = float(np.mean(clf.predict(Xte) != yte))
                if err <= target:
                    reached_at, epochs_at = time.perf_counter() - t0, epochs
                    break
        wall = time.perf_counter() - t0
    return _row("sklearn", f"MLPClassifier adam, batch {SKLEARN_BATCH}", reached_at, epochs_at, epochs, err,
                setup, wall, args.budget)


# ------------------------------------------------------------------------------------------- main
def _config_label(cfg: dict) -> str:
    return json.dumps(cfg, sort_keys=True) if cfg else "{} (H2O defaults)"


def _print_table(name: str, n_train: int, n_test: int, target: float, table: pd.DataFrame) -> None:
    shown = table.copy()
    shown["time_to_target_s"] = [f"{t:.1f}" if r else "not reached"
                                 for t, r in zip(table["time_to_target_s"], table["reached"])]
    shown = shown.drop(columns=["reached"])
    with pd.option_context("display.width", 200, "display.max_colwidth", 70,
                           "display.float_format", "{:.4f}".format):
        print(f"\n{name}: {n_train} training rows, {n_test} test rows, target test error {target:.4g}\n"
              + shown.to_string(index=False), flush=True)


def main(argv: list | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", choices=sorted(LOADERS), default=["mnist", "covtype"])
    ap.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    ap.add_argument("--dask-dl-config", action="append", default=None, metavar="JSON",
                    help="a JSON dict of dask_dl parameters (repeatable; default '{}': H2O's defaults)")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds per system and configuration")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dask-workers", default="auto",
                    help="dask_dl worker processes sharing the --threads, or 'auto' (default): the workers "
                         "dask_dl's embedded cluster starts on that many cores (per sample a worker per thread, "
                         "at most 4; mini-batches one worker per 8 threads)")
    ap.add_argument("--epochs", type=float, default=100.0, help="dask_dl epochs (large: the budget stops it)")
    ap.add_argument("--warm-up", action=argparse.BooleanOptionalAction, default=True,
                    help="dask_dl: first an untimed 200-row fit of each configuration on its cluster, so "
                         "numba compilation / cache loading is off the clock (default: on)")
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    ap.add_argument("--rows", type=int, default=None, help="training rows (default: all / 20k for covtype)")
    ap.add_argument("--test-rows", type=int, default=None)
    ap.add_argument("--target-mnist", type=float, default=0.025)
    ap.add_argument("--target-covtype", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--history-dir", default=None,
                    help="write each dask_dl fit's scoring history there as CSV (its test error over time)")
    ap.add_argument("--torch-dropout", type=float, nargs=2, default=[0.0, 0.0], metavar=("INPUT", "HIDDEN"),
                    help="PyTorch: dropout ratios of the inputs and of every hidden layer (default none)")
    args = ap.parse_args(argv)
    configs = []
    for text in args.dask_dl_config or ["{}"]:
        cfg = json.loads(text)
        if not isinstance(cfg, dict):
            ap.error(f"--dask-dl-config must be a JSON object, got {text!r}")
        configs.append(cfg)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.threads} threads "
          f"per system; budget {args.budget:g} s; hidden {args.hidden}; seed {args.seed}", flush=True)
    tables = {}
    for name in args.datasets:
        tr, te, y = LOADERS[name](args.rows, args.test_rows, args.seed)
        target = args.target_mnist if name == "mnist" else args.target_covtype
        print(f"\n== {name}: train {len(tr)} rows, test {len(te)} rows, target {target:.4g}", flush=True)
        rows = []
        for system in args.systems:
            if system == "dask_dl":
                for cfg in configs:
                    label = _config_label(cfg)
                    try:
                        rows.append(run_dask_dl(tr, te, y, cfg, args, target, label))
                    except Exception as err:  # a failing configuration must not lose the others' results
                        traceback.print_exc()
                        rows.append({"system": "dask_dl", "config": label, "reached": False,
                                     "time_to_target_s": float("nan"), "epochs": float("nan"),
                                     "final_test_error": float("nan"), "setup_s": float("nan"),
                                     "wall_s": float("nan"), "note": f"error: {type(err).__name__}: {err}"[:160]})
                    print(f"  {rows[-1]}", flush=True)
            else:
                rows.append((run_torch if system == "torch" else run_sklearn)(tr, te, y, args, target))
                print(f"  {rows[-1]}", flush=True)
        table = pd.DataFrame(rows)
        _print_table(name, len(tr), len(te), target, table)
        tables[name] = table
    return tables


if __name__ == "__main__":
    main()
