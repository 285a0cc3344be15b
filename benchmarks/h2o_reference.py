"""Reference side of the benchmark: train real H2O-3 Deep Learning on the same data.

Needs the ``h2o`` Python package (3.46.x, which bundles ``h2o.jar``) and a Java
runtime.  Nothing is fetched from the network: the JVM is started locally on a
free port and client telemetry is switched off.

Usage::

    from benchmarks.h2o_reference import run_h2o_deeplearning
    res = run_h2o_deeplearning(train_df, test_df, "C785", classification=True,
                               nthreads=2, hidden=[200, 200], epochs=1,
                               activation="Rectifier", seed=1)
    res["test_error"], res["samples_per_sec"], res["train_seconds"]

To train several models on one JVM (start-up costs ~5-7 s)::

    with h2o_cluster(nthreads=2, max_mem="4G"):
        r1 = run_h2o_deeplearning(...)   # reuses the running cluster
        r2 = run_h2o_deeplearning(...)   # and leaves it running
    # the cluster is shut down here

Frames are moved to H2O by writing a temporary CSV with pyarrow's CSV writer
and ``h2o.upload_file``-ing it.  Measured on MNIST train (60k x 785, 2 cores):
``h2o.H2OFrame(pandas_df)`` ~11 s; pandas ``to_csv`` + import ~7.5 s; Parquet
write + ``h2o.import_file`` 6-8 s (H2O's Parquet parser is slow); pyarrow CSV
write (~1.9 s) + ``upload_file``/``import_file`` (~1.6-2 s) ~3.5 s, the fastest.

Run ``python benchmarks/h2o_reference.py [--nthreads N]`` for the MNIST
reference numbers (H2O defaults: hidden=[200,200], Rectifier, epochs=1, seed=1,
validation_frame = test set).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from typing import Any, Iterator

import numpy as np
import pandas as pd

# Opt out of h2o-py's client telemetry before h2o is imported (no internet here
# anyway; this just avoids any attempt).
os.environ.setdefault("DO_NOT_TRACK", "1")

__all__ = ["run_h2o_deeplearning", "h2o_cluster", "H2OClusterHandle"]


# --------------------------------------------------------------------------------------
# Cluster lifecycle
# --------------------------------------------------------------------------------------


class H2OClusterHandle:
    """A local H2O JVM started by this module (see :func:`h2o_cluster`)."""

    def __init__(self, nthreads: int, max_mem: str, server: Any, tmpdir: str, startup_seconds: float):
        self.nthreads = nthreads
        self.max_mem = max_mem
        self.server = server
        self.tmpdir = tmpdir
        self.startup_seconds = startup_seconds

    def shutdown(self) -> None:
        import h2o

        with contextlib.redirect_stdout(io.StringIO()):
            try:
                h2o.cluster().shutdown()  # REST POST /3/Shutdown + close connection
            except Exception:  # pragma: no cover - cluster already gone
                pass
            # Make sure the JVM process is really gone (terminate, then kill).
            proc = getattr(self.server, "_process", None)
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except Exception:
                    proc.kill()
                    proc.wait(timeout=10)
                self.server._process = None
        shutil.rmtree(self.tmpdir, ignore_errors=True)


_ACTIVE: H2OClusterHandle | None = None

#: Start the JVM with ``-ea``?  ``h2o.init()`` does by default; plain ``java -jar h2o.jar``
#: (and production deployments) do not.  Module-level so the public signature stays
#: exactly the H2O parameters; the CLI exposes it as ``--enable-assertions``.
ENABLE_ASSERTIONS = False


def _start_cluster(nthreads: int, max_mem: str) -> H2OClusterHandle:
    """Start a *fresh* local H2O JVM (never attach to someone else's on :54321)."""
    import h2o
    from h2o.backend import H2OLocalServer

    h2o.no_progress()
    tmpdir = tempfile.mkdtemp(prefix="h2o_ref_")
    ice_root = os.path.join(tmpdir, "ice")
    log_dir = os.path.join(tmpdir, "logs")
    os.makedirs(ice_root)
    os.makedirs(log_dir)
    mmax = _mem_bytes(max_mem)
    t0 = time.perf_counter()
    out = io.StringIO()
    server = None
    try:
        # H2OLocalServer.start + h2o.connect is what h2o.init() does when no server is
        # found; calling it directly guarantees a new JVM with *our* nthreads, on the
        # first free port >= 54321 chosen by the JVM itself.
        with contextlib.redirect_stdout(out):
            server = H2OLocalServer.start(
                nthreads=nthreads,
                max_mem_size=mmax,
                min_mem_size=None,
                ice_root=ice_root,
                log_dir=log_dir,
                log_level=None,  # h2o-py forces -log_level INFO anyway (it parses the port from the log)
                port="54321+",
                name=f"h2o_ref_{os.getpid()}",
                enable_assertions=ENABLE_ASSERTIONS,
                bind_to_localhost=True,
                verbose=False,
            )
            h2o.connect(server=server, verbose=False, strict_version_check=False, telemetry=False)
            h2o.no_progress()
    except BaseException:
        sys.stderr.write(out.getvalue())
        if server is not None:
            with contextlib.redirect_stdout(io.StringIO()):
                server.shutdown()
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return H2OClusterHandle(nthreads, max_mem, server, tmpdir, time.perf_counter() - t0)


def _mem_bytes(mem: str | int | None) -> int | None:
    if mem is None or isinstance(mem, int):
        return mem
    s = str(mem).strip().upper().rstrip("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


@contextlib.contextmanager
def h2o_cluster(nthreads: int = -1, max_mem: str = "4G") -> Iterator[H2OClusterHandle]:
    """Context manager: start one local H2O, let every ``run_h2o_deeplearning`` inside reuse it."""
    global _ACTIVE
    if _ACTIVE is not None:
        raise RuntimeError("an h2o_cluster() is already active")
    handle = _start_cluster(nthreads, max_mem)
    _ACTIVE = handle
    try:
        yield handle
    finally:
        _ACTIVE = None
        handle.shutdown()


# --------------------------------------------------------------------------------------
# Data transfer
# --------------------------------------------------------------------------------------


def _is_categorical_like(s: pd.Series) -> bool:
    return (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(s.dtype)
        or pd.api.types.is_string_dtype(s.dtype)
        or pd.api.types.is_bool_dtype(s.dtype)
    )


def _upload(df: pd.DataFrame, tmpdir: str, name: str, enum_cols: list[str]):
    """pandas -> H2OFrame via a pyarrow-written CSV + h2o.upload_file (fastest measured)."""
    import h2o
    import pyarrow as pa
    import pyarrow.csv as pacsv

    conv = {}
    for c in df.columns:
        if c in enum_cols and not pd.api.types.is_string_dtype(df[c].dtype):
            # nullable string keeps NA as null (written as an empty field = NA in H2O)
            conv[c] = df[c].astype("string")
    if conv:
        df = df.assign(**conv)
    table = pa.Table.from_pandas(df, preserve_index=False)
    path = os.path.join(tmpdir, f"{name}.csv")
    pacsv.write_csv(table, path)
    col_types = {c: "enum" for c in enum_cols}
    try:
        fr = h2o.upload_file(path, destination_frame=name, col_types=col_types or None, header=1)
    finally:
        os.remove(path)
    return fr


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def _last(sh: pd.DataFrame, *cols: str):
    for c in cols:
        if c in sh.columns:
            v = sh[c].dropna()
            if len(v):
                return v.iloc[-1]
    return None


def _parse_speed(v) -> float | None:
    """H2O reports training_speed as e.g. '896.12345 obs/sec' (string) -> float."""
    if v is None:
        return None
    if isinstance(v, (int, float, np.floating, np.integer)):
        return float(v)
    try:
        return float(str(v).strip().split()[0].replace(",", ""))
    except ValueError:
        return None


def _proc_cpu_seconds(pid: int | None) -> float | None:
    """utime+stime of a process (Linux /proc), None where unavailable."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_h2o_deeplearning(
    train: pd.DataFrame,
    valid: pd.DataFrame | None,
    y: str,
    *,
    classification: bool,
    nthreads: int = -1,
    max_mem: str = "4G",
    **params,
) -> dict:
    """Train ``H2ODeepLearningEstimator(**params)`` on ``train`` (``valid`` = validation_frame).

    ``params`` are H2O parameter names verbatim (hidden, epochs, activation, seed, ...).
    Predictors are all columns except ``y``.  Object/string/category/bool columns
    are parsed as H2O enums; for ``classification`` the response is an enum too.

    If called inside ``with h2o_cluster(...)`` the running cluster is reused (and
    ``nthreads``/``max_mem`` are ignored); otherwise a fresh local H2O is started
    and shut down before returning.

    Returns a dict with ``train_seconds`` (wall time of ``model.train`` only),
    ``samples_per_sec`` (= training samples from the scoring history / train_seconds),
    ``h2o_training_speed`` (H2O's own last ``training_speed``, obs/sec), ``samples``,
    ``epochs``, ``test_error`` (classification, computed from ``model.predict(valid)``)
    or ``test_rmse`` (regression), ``h2o_valid_metric`` (H2O's own validation
    classification error / RMSE, for cross-checking), ``scoring_history`` (DataFrame),
    ``startup_seconds``, ``upload_seconds``, ``predict_seconds``, ``nthreads``
    (cores H2O actually used), ``h2o_version``.
    """
    import h2o
    from h2o.estimators import H2ODeepLearningEstimator

    global _ACTIVE
    own = _ACTIVE is None
    handle = _start_cluster(nthreads, max_mem) if own else _ACTIVE
    assert handle is not None
    tag = f"{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    try:
        h2o.no_progress()
        cl = h2o.cluster()
        used_threads = int(sum(n.get("nthreads", 0) for n in cl.nodes)) or None

        enum_cols = [c for c in train.columns if _is_categorical_like(train[c])]
        if classification and y not in enum_cols:
            enum_cols.append(y)
        if not classification and y in enum_cols:
            raise ValueError(f"regression response {y!r} is not numeric")

        t0 = time.perf_counter()
        htrain = _upload(train, handle.tmpdir, f"train_{tag}", enum_cols)
        hvalid = None
        if valid is not None:
            hvalid = _upload(valid, handle.tmpdir, f"valid_{tag}", [c for c in enum_cols if c in valid.columns])
        if classification:
            # already enum from the parse; asfactor() is a no-op safety net
            if not htrain[y].isfactor()[0]:
                htrain[y] = htrain[y].asfactor()
            if hvalid is not None and not hvalid[y].isfactor()[0]:
                hvalid[y] = hvalid[y].asfactor()
        upload_seconds = time.perf_counter() - t0

        x = [c for c in train.columns if c != y]
        model = H2ODeepLearningEstimator(**params)
        jvm_pid = getattr(getattr(handle.server, "_process", None), "pid", None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cpu0 = _proc_cpu_seconds(jvm_pid)
            t0 = time.perf_counter()
            model.train(x=x, y=y, training_frame=htrain, validation_frame=hvalid)
            train_seconds = time.perf_counter() - t0
            cpu1 = _proc_cpu_seconds(jvm_pid)
        dropped: list[str] = []
        for w in caught:
            msg = str(w.message)
            if msg.startswith("Dropping bad and constant columns:"):
                # H2O drops all-constant pixels (67 on MNIST); keep the list, skip the noise
                dropped = [c.strip() for c in msg.split("[", 1)[-1].rstrip("]").split(",") if c.strip()]
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sh = model.scoring_history()
        if not isinstance(sh, pd.DataFrame):  # pragma: no cover - h2o without pandas
            sh = sh.as_data_frame()
        samples = _last(sh, "samples", "training_samples")
        samples = float(samples) if samples is not None else None
        epochs = _last(sh, "epochs")
        epochs = float(epochs) if epochs is not None else None

        res: dict[str, Any] = {
            "train_seconds": train_seconds,
            "samples": samples,
            "samples_per_sec": (samples / train_seconds) if samples else None,
            "h2o_training_speed": _parse_speed(_last(sh, "training_speed")),
            "epochs": epochs,
            "dropped_columns": dropped,
            # JVM CPU seconds during model.train / train_seconds: ~nthreads when the
            # machine is otherwise idle, clearly less when something else competes for it
            "train_cpu_utilization": ((cpu1 - cpu0) / train_seconds) if cpu0 is not None and cpu1 is not None else None,
            "scoring_history": sh,
            "startup_seconds": handle.startup_seconds if own else 0.0,
            "upload_seconds": upload_seconds,
            "nthreads": used_threads,
            "h2o_version": h2o.__version__,
        }

        if hvalid is not None:
            t0 = time.perf_counter()
            pred = model.predict(hvalid)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = pred["predict"].as_data_frame()["predict"]
                truth = hvalid[y].as_data_frame()[y]
            res["predict_seconds"] = time.perf_counter() - t0
            if classification:
                pl = p.astype(str).str.strip().to_numpy()
                tl = truth.astype(str).str.strip().to_numpy()
                mask = truth.notna().to_numpy()
                res["test_error"] = float(np.mean(pl[mask] != tl[mask]))
                if pred.ncol == 3:  # binomial: AUC of P(second level), H2O's positive class
                    from sklearn.metrics import roc_auc_score
                    positive = pred.columns[2]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        p1 = pred[positive].as_data_frame()[positive].to_numpy(dtype=float)
                    # H2O names a probability column p<level> for numeric-looking levels, <level> otherwise
                    level = positive[1:] if positive.startswith("p") and positive[1:] in set(tl) else positive
                    res["test_auc"] = float(roc_auc_score(tl[mask] == level, p1[mask]))
                # H2O's own figure for the final model: last scoring-history row
                v = _last(sh, "validation_classification_error")
                res["h2o_valid_metric"] = float(v) if v is not None else None
            else:
                pv = p.to_numpy(dtype=float)
                tv = truth.to_numpy(dtype=float)
                mask = ~np.isnan(tv)
                res["test_rmse"] = float(math.sqrt(np.mean((pv[mask] - tv[mask]) ** 2)))
                res["test_predictions"] = pv
                res["h2o_valid_metric"] = float(model.model_performance(valid=True).rmse())
            h2o.remove(pred)
        for fr in (htrain, hvalid):
            if fr is not None:
                h2o.remove(fr)
        h2o.remove(model)
        return res
    finally:
        if own:
            handle.shutdown()


# --------------------------------------------------------------------------------------
# MNIST reference run
# --------------------------------------------------------------------------------------


def _main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="H2O-3 Deep Learning reference run on MNIST")
    ap.add_argument("--nthreads", type=int, default=2)
    ap.add_argument("--max-mem", default="4G")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--data", default="/work/shared/data/mnist")
    ap.add_argument("--history", action="store_true", help="print H2O's scoring history")
    ap.add_argument("--enable-assertions", action="store_true", help="start the JVM with -ea like h2o.init()")
    args = ap.parse_args(argv)
    global ENABLE_ASSERTIONS
    ENABLE_ASSERTIONS = args.enable_assertions

    t_all = time.perf_counter()
    t0 = time.perf_counter()
    train = pd.read_parquet(os.path.join(args.data, "train.parquet"))
    test = pd.read_parquet(os.path.join(args.data, "test.parquet"))
    read_s = time.perf_counter() - t0
    res = run_h2o_deeplearning(
        train,
        test,
        "C785",
        classification=True,
        nthreads=args.nthreads,
        max_mem=args.max_mem,
        hidden=[200, 200],
        activation="Rectifier",
        epochs=args.epochs,
        seed=1,
    )
    total = time.perf_counter() - t_all
    print(
        f"H2O {res['h2o_version']}  nthreads={args.nthreads} (H2O nthreads={res['nthreads']})"
        f"  -ea={ENABLE_ASSERTIONS}"
    )
    print(
        f"read parquet {read_s:.1f}s | startup {res['startup_seconds']:.1f}s | upload {res['upload_seconds']:.1f}s"
        f" | train {res['train_seconds']:.1f}s | predict {res.get('predict_seconds', float('nan')):.1f}s"
        f" | total {total:.1f}s"
    )
    print(
        f"samples {res['samples']:.0f}  epochs {res['epochs']:.3f}  samples/s {res['samples_per_sec']:.0f}"
        f"  (H2O training_speed {res['h2o_training_speed']})"
    )
    print(f"test error {res['test_error'] * 100:.2f}%  (H2O validation error {res['h2o_valid_metric']})")
    util = res.get("train_cpu_utilization")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"JVM CPU utilisation during train {util:.2f} cores" if util is not None else "JVM CPU utilisation n/a",
        f"| load avg after {load[0]:.2f} (machine has {os.cpu_count()} cores)" if load else "",
    )
    if args.history:
        cols = ["duration", "training_speed", "epochs", "samples", "training_classification_error",
                "validation_classification_error"]
        print(res["scoring_history"][[c for c in cols if c in res["scoring_history"].columns]].to_string())


if __name__ == "__main__":
    _main()
