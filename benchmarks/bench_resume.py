"""A driver killed mid-fit resumes to an uninterrupted fit's accuracy (issue 20's acceptance, MNIST).

    python benchmarks/bench_resume.py [--seeds 1 2 3 4 5] [--epochs 4] [--kill-at 2]

Per seed: a driver process trains H2O's default network on MNIST with ``export_checkpoints_dir`` on
its own LocalCluster and is SIGKILLed with it once a checkpoint past ``--kill-at`` epochs exists; the
newest checkpoint that loads is continued to ``--epochs`` on this process's cluster, and the same fit
runs uninterrupted beside it (both clusters 2 workers x 1 thread). Test error on the 10k test set of
both, their difference, and whether the weights are identical.
"""
from __future__ import annotations

import argparse
import glob
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import dask.dataframe as dd
import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")
ROUNDS_PER_EPOCH = 3
ROWS = 60000  # MNIST's training set


def params(seed: int, epochs: float, rows: int) -> dict:
    return dict(epochs=epochs, seed=seed, quiet_mode=True, score_each_iteration=True,
                train_samples_per_iteration=rows // ROUNDS_PER_EPOCH)


def killed_run(folder: str, p: dict, kill_at: float, timeout: float = 900) -> str:
    """Start a fitting driver, SIGKILL it (and its cluster) past ``kill_at`` epochs; the newest good checkpoint."""
    from dask_dl import load_model
    script = textwrap.dedent(f"""
        import dask.dataframe as dd, dask_dl
        from dask_dl.cluster.session import local_client
        if __name__ == "__main__":
            train = dd.read_parquet({os.path.join(DATA, "mnist", "train.parquet")!r}, split_row_groups=True)
            with local_client(2, 1, dashboard_address=None) as client:
                dask_dl.DeepLearningClassifier(export_checkpoints_dir={folder!r}, client=client,
                                               **{p!r}).fit(train, "C785")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, wanted = time.time() + timeout, int(np.ceil(kill_at * ROUNDS_PER_EPOCH)) + 1  # round 0 too
        while len(glob.glob(folder + "/*.npz")) < wanted and proc.poll() is None:
            if time.time() > deadline:
                raise TimeoutError(f"no checkpoint past {kill_at} epochs within {timeout:.0f} s")
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(f"the driver ended before it was killed: {proc.stderr.read().decode()[-2000:]}")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    for path in sorted(glob.glob(folder + "/*.npz"), reverse=True):
        try:
            load_model(path)
            return path
        except ValueError:  # cut short by the kill
            continue
    raise RuntimeError("no checkpoint could be loaded")


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--epochs", type=float, default=4.0)
    ap.add_argument("--kill-at", type=float, default=2.0)
    args = ap.parse_args(argv)
    import dask_dl
    from dask_dl.cluster.session import local_client
    train = dd.read_parquet(os.path.join(DATA, "mnist", "train.parquet"), split_row_groups=True)
    test = pd.read_parquet(os.path.join(DATA, "mnist", "test.parquet"))
    X, y = test.drop(columns="C785"), test["C785"].to_numpy()
    rows = []
    with local_client(2, 1, dashboard_address=None) as client:
        for seed in args.seeds:
            p = params(seed, args.epochs, ROWS)
            with tempfile.TemporaryDirectory() as folder:
                last = killed_run(folder, p, args.kill_at)
                killed_at = dask_dl.load_model(last).run["epochs"]
                resumed = dask_dl.DeepLearningClassifier(checkpoint=last, client=client, **p).fit(train, "C785")
            straight = dask_dl.DeepLearningClassifier(client=client, **p).fit(train, "C785")
            err = [float(100 * np.mean(m.predict(X) != y)) for m in (resumed, straight)]
            rows.append({"seed": seed, "killed_at_epochs": round(killed_at, 2), "resumed_err": round(err[0], 2),
                         "uninterrupted_err": round(err[1], 2), "difference": round(err[0] - err[1], 2),
                         "same_weights": bool(np.array_equal(resumed.model_.state, straight.model_.state))})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    for c in ("resumed_err", "uninterrupted_err", "difference"):
        print(f"{c}: {table[c].mean():.2f} ± {table[c].std():.2f}")
    print(f"largest |difference|: {table['difference'].abs().max():.2f} points")
    return table


if __name__ == "__main__":
    main()
