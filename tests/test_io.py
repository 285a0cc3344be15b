"""Training where the data lives: s3:// (a loopback moto server) and hdfs:// (a fake fsspec protocol
backed by a local directory), on a real 2-process LocalCluster with real MNIST rows. The workers
read the data themselves; models are saved/loaded at the same URLs without storing credentials."""
import io
import json
import re

import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
import pytest
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem

import dask_dl
from dask_dl import DeepLearningClassifier
from dask_dl.data.io import read_table

from conftest import data_path
from s3server import s3  # noqa: F401  (module-scoped fixture)

LABEL = "C785"
NET = dict(hidden=[32], epochs=3, seed=1, quiet_mode=True)


@pytest.fixture(scope="module")
def mnist_sub():
    tr = pd.read_parquet(data_path("mnist", "train.parquet")).iloc[:3000].reset_index(drop=True)
    te = pd.read_parquet(data_path("mnist", "test.parquet")).iloc[:1000].reset_index(drop=True)
    return tr, te


@pytest.fixture(scope="module")
def s3_data(s3, mnist_sub):
    """MNIST subset uploaded to the bucket as Parquet (3 parts) and as CSV; returns (so, bucket)."""
    so, bucket = s3
    tr, te = mnist_sub
    dd.from_pandas(tr, npartitions=3).to_parquet(f"s3://{bucket}/train/", storage_options=so,
                                                 write_index=False, compute_kwargs={"scheduler": "sync"})
    dd.from_pandas(te, npartitions=2).to_parquet(f"s3://{bucket}/test/", storage_options=so,
                                                 write_index=False, compute_kwargs={"scheduler": "sync"})
    dd.from_pandas(tr.iloc[:2000], npartitions=2).to_csv(f"s3://{bucket}/csv/train-*.csv", index=False,
                                                         storage_options=so, compute_kwargs={"scheduler": "sync"})
    dd.from_pandas(te.iloc[:500], npartitions=2).to_csv(f"s3://{bucket}/csvtest/test-*.csv", index=False,
                                                        storage_options=so, compute_kwargs={"scheduler": "sync"})
    return so, bucket


def _error(pred, y) -> float:
    return float(np.mean(np.asarray(pred) != np.asarray(y)))


def _check_lazy_matches_eager(clf, lazy_frame, eager_frame):
    lazy_p = clf.predict_proba(lazy_frame)
    lazy_y = clf.predict(lazy_frame)
    assert hasattr(lazy_p, "dask") and hasattr(lazy_y, "dask")  # lazy: nothing computed yet
    lp, ly = lazy_p.compute(), lazy_y.compute()
    X = eager_frame.drop(columns=[LABEL])
    ep, ey = clf.predict_proba(X), clf.predict(X)
    assert isinstance(ep, np.ndarray) and lp.shape == ep.shape == (len(eager_frame), 10)
    # the same rows give the same predictions; the probabilities only to float32 rounding, because
    # workers run OpenBLAS single-threaded (distributed sets OMP/OPENBLAS_NUM_THREADS=1) and the
    # client does not, which changes the sgemm summation order
    np.testing.assert_allclose(lp, ep, rtol=0, atol=1e-5)
    assert np.array_equal(ly, ey)
    return ly


# --------------------------------------------------------------------------------------------- S3
def test_train_and_predict_from_s3_parquet(client2, s3_data, mnist_sub):
    so, bucket = s3_data
    _, te = mnist_sub
    train = dask_dl.read_parquet(f"s3://{bucket}/train/", storage_options=so)
    valid = dask_dl.read_parquet(f"s3://{bucket}/test/", storage_options=so)
    assert train.npartitions == 3
    clf = DeepLearningClassifier(**NET).fit(train, LABEL, validation_data=valid)
    hist = clf.model_.scoring_history()
    assert "validation_classification_error" in hist.columns
    assert hist["validation_classification_error"].iloc[-1] < 0.25
    labels = _check_lazy_matches_eager(clf, valid, te)
    assert _error(labels, te[LABEL]) < 0.25

    # save to S3 with the same storage_options, load back: identical predictions
    url = f"s3://{bucket}/models/m.npz"
    assert clf.model_.save(url, storage_options=so) == url
    loaded = dask_dl.load_model(url, storage_options=so)
    X = te.drop(columns=[LABEL])
    assert np.array_equal(loaded.predict_proba_frame(X), clf.model_.predict_proba_frame(X))
    assert np.array_equal(loaded.predict_values(X), clf.model_.predict_values(X))

    # the stored object carries no credentials and no endpoint
    with fsspec.open(url, "rb", **so) as f:
        raw = f.read()
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        text = z["metadata"].tobytes().decode("utf-8")
    port = re.search(r":(\d+)$", so["client_kwargs"]["endpoint_url"]).group(1)
    assert "testing" not in text
    assert "127.0.0.1" not in text and f":{port}" not in text and "endpoint" not in text
    meta = json.loads(text)
    assert "client" not in meta["params"] and "storage_options" not in meta["params"]
    assert "client" not in loaded.params


def test_train_and_predict_from_s3_csv(client2, s3_data, mnist_sub):
    so, bucket = s3_data
    _, te = mnist_sub
    train = dask_dl.read_csv(f"s3://{bucket}/csv/*.csv", storage_options=so)
    valid = dask_dl.read_csv(f"s3://{bucket}/csvtest/*.csv", storage_options=so)
    assert train.npartitions >= 2
    clf = DeepLearningClassifier(**NET).fit(train, LABEL, validation_data=valid)
    te = te.iloc[:500]
    labels = _check_lazy_matches_eager(clf, valid, te)
    assert _error(labels, te[LABEL]) < 0.25
    # read_table picks CSV by the extension of the same URL
    via_table = read_table(f"s3://{bucket}/csv/*.csv", storage_options=so)
    assert list(via_table.columns) == list(train.columns)
    assert len(via_table) == 2000


def test_lazy_predict_on_a_single_partition_file(client2, tmp_path, iris):
    """Regression test (production bug, dask_dl/estimators.py _apply, lines 265-271): a frame read
    from ONE file (dd.read_csv / dd.read_parquet with npartitions == 1) predicted lazily through
    ``dask.delayed(model, traverse=False)`` + ``map_partitions(...).to_dask_array()`` fails at compute
    with "ValueError: Cannot fuse tasks with multiple outputs {'DeepLearningModel-...', 'finalize-...'}"
    (dask 2026.8 array optimisation, any scheduler). from_pandas(npartitions=1) is not affected."""
    clf = DeepLearningClassifier(hidden=[4], epochs=1, seed=1, quiet_mode=True).fit(iris, "class")
    csv = tmp_path / "iris.csv"
    iris.to_csv(csv, index=False)
    pq = tmp_path / "iris.parquet"
    iris.to_parquet(pq, index=False)
    X = iris.drop(columns=["class"])
    for frame in (dask_dl.read_csv(str(csv)), dask_dl.read_parquet(str(pq))):
        assert frame.npartitions == 1
        np.testing.assert_allclose(clf.predict_proba(frame).compute(), clf.predict_proba(X), atol=1e-5)
        assert np.array_equal(clf.predict(frame).compute(), clf.predict(X))


# ------------------------------------------------------------------------------------------- HDFS
class FakeHDFS(DirFileSystem):
    """An fsspec filesystem answering hdfs://host:port/path from the local directory ``root`` (set per
    process by ``_install``; host and port in the URL are ignored). Workers import it from this module."""

    protocol = "hdfs"
    root = None

    def __init__(self, *args, **kwargs):
        if FakeHDFS.root is None:
            raise RuntimeError("the fake hdfs:// protocol is not installed in this process")
        super().__init__(path=FakeHDFS.root, fs=LocalFileSystem())

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = re.sub(r"^hdfs://[^/]*", "", str(path))
        return path.strip("/")

    @staticmethod
    def _get_kwargs_from_urls(path):
        return {}


def _install(root):
    """Register the fake protocol in this process (fsspec's registry is per process)."""
    import fsspec as f
    FakeHDFS.root = root
    FakeHDFS.clear_instance_cache()
    if root is None:
        from fsspec.registry import _registry
        _registry.pop("hdfs", None)  # back to fsspec's known (libhdfs) implementation
    else:
        f.register_implementation("hdfs", FakeHDFS, clobber=True)
    return True


@pytest.fixture
def fake_hdfs(client2, tmp_path):
    _install(str(tmp_path))  # the client ...
    client2.run(_install, str(tmp_path))  # ... and every worker
    try:
        yield tmp_path
    finally:
        client2.run(_install, None)
        _install(None)


def test_train_from_hdfs_and_save_there(client2, fake_hdfs, mnist_sub):
    tr, te = mnist_sub
    url = "hdfs://namenode:8020/data/train"
    dd.from_pandas(tr, npartitions=3).to_parquet(url, write_index=False)  # written by the workers
    assert (fake_hdfs / "data" / "train").is_dir()
    assert len(list((fake_hdfs / "data" / "train").glob("*.parquet"))) == 3
    train = dask_dl.read_parquet(url)
    assert train.npartitions == 3
    clf = DeepLearningClassifier(**NET).fit(train, LABEL)
    X = te.drop(columns=[LABEL])
    assert _error(clf.predict(X), te[LABEL]) < 0.25

    murl = "hdfs://namenode:8020/models/mnist.npz"
    dask_dl.save_model(clf.model_, murl)
    assert (fake_hdfs / "models" / "mnist.npz").is_file()
    loaded = dask_dl.load_model(murl)
    assert np.array_equal(loaded.predict_proba_frame(X), clf.model_.predict_proba_frame(X))


# ------------------------------------------------------------------------------------- read_table
def test_read_table_picks_csv_or_parquet_by_extension(tmp_path, iris):
    csv = tmp_path / "iris.csv"
    iris.to_csv(csv, index=False)
    txt = tmp_path / "iris.TXT"
    iris.to_csv(txt, index=False)
    pq = tmp_path / "iris_pq"
    dd.from_pandas(iris, npartitions=2).to_parquet(str(pq), write_index=False)
    pq_file = tmp_path / "iris.parquet"
    iris.to_parquet(pq_file, index=False)

    for path in (csv, txt, pq, str(pq) + "/", pq_file):
        got = read_table(str(path)).compute().reset_index(drop=True)
        pd.testing.assert_frame_equal(got, iris, check_dtype=False)

    # the readers really differ: CSV bytes named .parquet fail, Parquet bytes named .csv fail
    wrong = tmp_path / "really_csv.parquet"
    iris.to_csv(wrong, index=False)
    with pytest.raises(Exception):
        read_table(str(wrong)).compute()
    wrong_csv = tmp_path / "really_parquet.csv"
    iris.to_parquet(wrong_csv, index=False)
    with pytest.raises(Exception):
        got = read_table(str(wrong_csv)).compute()
        assert list(got.columns) == list(iris.columns)  # garbage parse must not look like the data
