"""Shared fixtures: real LocalClusters and the real datasets from ../shared/data."""
import os

import numpy as np
import pandas as pd
import pytest

DATA = os.environ.get("DASK_DL_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


BENCH = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "benchmarks"))


def data_path(*parts) -> str:
    path = os.path.join(DATA, *parts)
    if not os.path.exists(path):
        pytest.fail(f"dataset {path} is missing: the tests need ../shared/data (or DASK_DL_DATA)")
    return path


def assert_same_predictions(got, expected) -> None:
    """Predictions of one model made in other batches (a dask frame's partitions, another process)
    against the whole frame's: labels exactly; numbers to float32 precision, because OpenBLAS's sgemm
    rounds a row differently with the batch's shape and the row's place in it on some CPUs (an
    AVX-only AMD EPYC: a 600 x 14 product cut in three differs by 1e-6)."""
    if np.issubdtype(np.asarray(expected).dtype, np.floating):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    else:
        assert np.array_equal(got, expected)


def _local_cluster(n_workers: int, threads: int):
    from distributed import LocalCluster
    return LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True, dashboard_address=None)


def _client(cluster):
    from distributed import Client
    with Client(cluster) as c:
        yield c


@pytest.fixture(scope="session")
def cluster2():
    """Two single-threaded worker processes: model averaging across workers."""
    with _local_cluster(2, 1) as cl:
        yield cl


@pytest.fixture
def client2(cluster2):
    yield from _client(cluster2)


@pytest.fixture(scope="session")
def cluster_threads():
    """One worker process with two threads: HOGWILD! inside a worker."""
    with _local_cluster(1, 2) as cl:
        yield cl


@pytest.fixture
def client_threads(cluster_threads):
    yield from _client(cluster_threads)


@pytest.fixture(scope="session")
def iris():
    return pd.read_csv(data_path("iris", "iris_wheader.csv"))


@pytest.fixture(scope="session")
def wine():
    return pd.read_csv(data_path("wine", "winequality-redwhite.csv"), encoding="utf-8-sig")


@pytest.fixture(scope="session")
def prostate():
    return pd.read_csv(data_path("prostate", "prostate.csv"))


@pytest.fixture(scope="session")
def covtype():
    return pd.read_parquet(data_path("covtype", "covtype.parquet"))


@pytest.fixture(scope="session")
def mnist_small():
    """First 6000 training and 2000 test rows of MNIST."""
    tr = pd.read_parquet(data_path("mnist", "train.parquet")).iloc[:6000]
    te = pd.read_parquet(data_path("mnist", "test.parquet")).iloc[:2000]
    return tr, te


def split(df: pd.DataFrame, fractions=(0.6, 0.2, 0.2), seed: int = 42):
    idx = np.random.default_rng(seed).permutation(len(df))
    cuts = np.cumsum([int(f * len(df)) for f in fractions])[:-1]
    return [df.iloc[part].reset_index(drop=True) for part in np.split(idx, cuts)]


@pytest.fixture
def bench_path():
    """benchmarks/ on sys.path, for the benchmark scripts' smoke runs."""
    import sys
    sys.path.insert(0, BENCH)
    yield
    sys.path.remove(BENCH)


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail if fit reaches the point where it would use a cluster."""
    def refuse(*a, **k):
        raise AssertionError("cluster work started before the input was validated")
    monkeypatch.setattr("dask_dl.job.cluster_client", refuse)


@pytest.fixture
def dl_log():
    """Records of the dask_dl logger (it does not propagate to the root logger)."""
    import logging

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.records = []

        def emit(self, record):
            self.records.append(record.getMessage())

    handler = Keep()
    logging.getLogger("dask_dl").addHandler(handler)
    yield handler.records
    logging.getLogger("dask_dl").removeHandler(handler)


class FakeClient:
    """Just enough of a distributed.Client for decisions made from the workers' memory limits."""

    def __init__(self, limits):
        self.limits = limits

    def scheduler_info(self, n_workers=-1):
        return {"workers": {f"w{i}": {"memory_limit": m} for i, m in enumerate(self.limits)}}


def response_only_info(n_rows: int):
    """A DataInfo with no inputs: its encoded data is the float32 response, 4 * n_rows bytes."""
    from dask_dl.data.schema import DataInfo
    return DataInfo(feature_names=[], columns=[], ignored=[], standardize=True, use_all_factor_levels=True,
                    skip_missing=False, response_name="y", response_kind="regression", n_rows=n_rows)
