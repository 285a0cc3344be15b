"""Prostate (CAPSULE, binary): held-out AUC of dask_dl and real H2O-3 on the same split and
parameters, over seeds (issue 18's acceptance: within 0.02 of H2O's).

    python benchmarks/bench_prostate.py [--seeds 1 2 3 4 5] [--epochs 10] [--hidden 200 200]

The split: 20% of the rows for testing (numpy seed 0), the same for every model seed; features
AGE, RACE, DPROS, DCAPS, PSA, VOL, GLEASON (ID dropped); the test rows are both systems'
validation frame; AUC from each system's predicted P(CAPSULE = 1) with scikit-learn.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(os.path.join(DATA, "prostate", "prostate.csv")).drop(columns=["ID"])
    df["CAPSULE"] = df["CAPSULE"].astype(str)
    test = np.random.default_rng(0).random(len(df)) < 0.2
    return df[~test].reset_index(drop=True), df[test].reset_index(drop=True)


def run_dask_dl(tr, te, seed: int, epochs: float, hidden) -> float:
    from sklearn.metrics import roc_auc_score

    import dask_dl
    clf = dask_dl.DeepLearningClassifier(hidden=list(hidden), epochs=epochs, seed=seed, quiet_mode=True)
    clf.fit(tr, "CAPSULE", validation_data=te)
    p1 = clf.predict_proba(te.drop(columns=["CAPSULE"]))[:, list(clf.classes_).index("1")]
    return float(roc_auc_score(te["CAPSULE"] == "1", p1))


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--epochs", type=float, default=10.0)
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    ap.add_argument("--no-h2o", action="store_true", help="dask_dl only")
    args = ap.parse_args(argv)
    tr, te = load()
    rows = [{"system": "dask_dl", "seed": s, "auc": run_dask_dl(tr, te, s, args.epochs, args.hidden)}
            for s in args.seeds]
    if not args.no_h2o:
        sys.path.insert(0, HERE)
        from h2o_reference import h2o_cluster, run_h2o_deeplearning
        with h2o_cluster(nthreads=2):
            for s in args.seeds:
                r = run_h2o_deeplearning(tr, te, "CAPSULE", classification=True, hidden=list(args.hidden),
                                         epochs=args.epochs, seed=s)
                rows.append({"system": "H2O-3", "seed": s, "auc": r["test_auc"]})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(table.groupby("system")["auc"].agg(["mean", "std", "min", "max"]).to_string())
    return table


if __name__ == "__main__":
    main()
