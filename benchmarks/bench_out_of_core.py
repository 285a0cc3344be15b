"""Out of core: peak worker memory stays flat while the dataset grows past the workers' memory.

    python benchmarks/bench_out_of_core.py [--memory-limit 500MB] [--factors 1 3] [--samples 300000]
    python benchmarks/bench_out_of_core.py --memory-limit 1GB --factors 0.04 --samples 3000 \
        --hidden 16 --no-in-memory                                  # smoke size (in memory)
    python benchmarks/bench_out_of_core.py --autoencoder ...        # a Tanh autoencoder on the pixels

(A worker with the kernels loaded and a fit running holds ~300 MB before any data: under a
~500 MB limit Dask pauses it at 80% and the fit waits for it.)

Writes augmented MNIST (every image shifted by up to 2 pixels and given pixel noise, the way
MNIST-8M was made) as Parquet files of 10,000 rows, as many as make the ENCODED training data
``factor`` x the total memory limit of a LocalCluster of 2 single-threaded workers; trains the
default network on a fixed number of samples with out_of_core="auto", and polls every worker's
RSS (psutil) while it trains. Then, unless --no-in-memory, trains on the largest dataset's rows
with the data persisted in memory on a cluster with enough memory, same seed and samples, to
compare the test error. Reports spilled bytes and worker restarts (both must be zero).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")
ROWS_PER_FILE = 10_000


def parse_bytes(text: str) -> int:
    from dask.utils import parse_bytes as pb
    return int(pb(text))


def write_augmented(out_dir: str, n_files: int, seed: int = 0) -> list:
    """n_files Parquet files of augmented MNIST training rows (C1..C784 uint8, C785 label)."""
    tr = pd.read_parquet(os.path.join(DATA, "mnist", "train.parquet"))
    images = tr.drop(columns=["C785"]).to_numpy(np.uint8).reshape(-1, 28, 28)
    labels = tr["C785"].to_numpy()
    rng = np.random.default_rng(seed)
    cols = [f"C{i + 1}" for i in range(784)]
    paths = []
    for f in range(n_files):
        idx = rng.integers(0, len(images), ROWS_PER_FILE)
        batch = images[idx].astype(np.int16)
        shifts = rng.integers(-2, 3, size=(ROWS_PER_FILE, 2))
        for dx in range(-2, 3):
            for dy in range(-2, 3):
                sel = (shifts[:, 0] == dx) & (shifts[:, 1] == dy)
                batch[sel] = np.roll(batch[sel], (dy, dx), axis=(1, 2))
        batch += rng.integers(-8, 9, size=batch.shape, dtype=np.int16)
        flat = np.clip(batch, 0, 255).astype(np.uint8).reshape(ROWS_PER_FILE, 784)
        df = pd.DataFrame(flat, columns=cols)
        df["C785"] = labels[idx]
        path = os.path.join(out_dir, f"part-{f:05d}.parquet")
        df.to_parquet(path, index=False)
        paths.append(path)
    return paths


class PeakMemory:
    """Polls every worker's RSS (psutil, via client.run) in a background thread."""

    def __init__(self, client, every: float = 0.5):
        self.client, self.every, self.peak, self._stop = client, every, {}, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        import psutil
        while not self._stop.is_set():
            try:
                rss = self.client.run(lambda: psutil.Process().memory_info().rss)
                for w, r in rss.items():
                    self.peak[w] = max(self.peak.get(w, 0), r)
            except Exception:  # a poll can race with shutdown
                pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def spilled_bytes(client) -> int:
    def spilled(dask_worker):
        slow = getattr(dask_worker.data, "slow", None)
        return int(sum(getattr(slow, "weight_by_key", {}).values())) if slow is not None else 0
    try:
        return int(sum(client.run(spilled).values()))
    except Exception:
        return 0


def train(files, te, memory_limit: str, samples: int, hidden, seed: int, out_of_core, autoencoder=False) -> dict:
    import dask_dl
    from dask_dl.cluster.session import local_client
    with local_client(2, 1, memory_limit=memory_limit, dashboard_address=None) as client:
        pids = client.run(os.getpid)
        base = client.run(lambda: __import__("psutil").Process().memory_info().rss)
        rows = len(files) * ROWS_PER_FILE
        # the in-memory reference: each worker holds its half, as the streamed run does (not a copy of everything)
        common = dict(hidden=hidden, epochs=samples / rows, seed=seed, quiet_mode=True, client=client,
                      out_of_core=out_of_core, replicate_training_data=False)
        if autoencoder:  # the pixels alone, the label left out
            est = dask_dl.DeepLearningAutoencoder(activation="Tanh", ignored_columns=["C785"], **common)
        else:
            est = dask_dl.DeepLearningClassifier(**common)
        t0 = time.perf_counter()
        with PeakMemory(client) as mem:
            est.fit(dask_dl.read_parquet(files), None if autoencoder else "C785")
        wall = time.perf_counter() - t0
        restarted = client.run(os.getpid) != pids
        spill = spilled_bytes(client)
    X = te.drop(columns=["C785"])
    err = float(np.mean(est.anomaly(X))) if autoencoder else float(np.mean(est.predict(X) != te["C785"].to_numpy()))
    encoded = rows * (est.model_.info.n_inputs + 1) * 4
    return {"rows": rows, "encoded_GB": encoded / 1e9, "memory_limit_total_GB": 2 * parse_bytes(memory_limit) / 1e9,
            "out_of_core": est.model_.run["out_of_core"], "samples": est.model_.run["samples"],
            "peak_worker_MB": max(mem.peak.values()) / 1e6 if mem.peak else float("nan"),
            "idle_worker_MB": max(base.values()) / 1e6, "spilled_bytes": spill, "restarted": restarted,
            "fit_seconds": wall, ("test_reconstruction_mse" if autoencoder else "test_error"): err}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory-limit", default="500MB", help="per worker (2 workers)")
    ap.add_argument("--factors", type=float, nargs="+", default=[1.0, 3.0])
    ap.add_argument("--samples", type=int, default=300_000, help="training samples per run")
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-in-memory", action="store_true")
    ap.add_argument("--autoencoder", action="store_true", help="a Tanh DeepLearningAutoencoder on the pixels")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)
    te = pd.read_parquet(os.path.join(DATA, "mnist", "test.parquet"))
    limit_total = 2 * parse_bytes(args.memory_limit)
    row_bytes = 785 * 4
    n_files = [max(1, int(np.ceil(f * limit_total / row_bytes / ROWS_PER_FILE))) for f in args.factors]
    work = args.workdir or tempfile.mkdtemp(prefix="dask_dl_ooc_")
    try:
        t0 = time.perf_counter()
        files = write_augmented(work, max(n_files), seed=args.seed)
        print(f"wrote {len(files)} files x {ROWS_PER_FILE} rows in {time.perf_counter() - t0:.0f} s "
              f"({sum(os.path.getsize(f) for f in files) / 1e6:.0f} MB on disk)", flush=True)
        results = []
        for factor, n in zip(args.factors, n_files):
            r = train(files[:n], te, args.memory_limit, args.samples, args.hidden, args.seed, "auto", args.autoencoder)
            how = "streamed" if r["out_of_core"] else "in memory (out_of_core='auto' chose it)"
            results.append({"run": f"{factor:g}x memory, {how}", **r})
            print(results[-1], flush=True)
        if not args.no_in_memory:
            big = parse_bytes(args.memory_limit) * 4 * max(args.factors) + 2e9
            r = train(files[:max(n_files)], te, f"{int(big)}B", args.samples, args.hidden, args.seed, False,
                      args.autoencoder)
            results.append({"run": "same rows, in memory", **r})
            print(results[-1], flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    table = pd.DataFrame(results)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\n" + table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
