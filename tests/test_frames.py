"""Persisted frames handed to the set-up tasks from their futures (dask_dl/cluster/frames.py).

``frames._graph_sources`` is the one place that reads dask-expr internals. If dask changes them, the
fit still works (every frame then goes through ``to_delayed()``) but each set-up pass re-materialises
persisted partitions: these tests fail loudly instead of letting that slip by.
"""
import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import futures_of

from dask_dl.cluster import frames

CHANGED = ("dask's internals changed (dask {v}): dask_dl/cluster/frames.py::_graph_sources no longer "
           "recognises {what}; update that one function (its docstring says what it relies on)")


@pytest.fixture
def df():
    return pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 3})


def _sources(frame, what):
    found = frames._direct_sources(frame)
    assert found is not None, CHANGED.format(v=dask.__version__, what=what)
    return found


def test_persisted_frame_and_its_rename_are_recognised(client2, df):
    persisted = client2.persist(dd.from_pandas(df, npartitions=4, sort=False))
    direct = _sources(persisted, "a persisted frame (FromGraph, operand 'layer')")
    assert len(direct) == 4 and all(columns is None for _, columns in direct), \
        CHANGED.format(v=dask.__version__, what="a persisted frame's partition futures")
    assert [f.key[1] for f, _ in direct] == [0, 1, 2, 3]
    renamed = persisted.rename(columns={"b": "target"})
    direct = _sources(renamed, "a column rename over persisted partitions (RenameFrame, operands "
                               "'frame' and 'columns')")
    assert [f.key for f, _ in direct] == sorted((f.key for f in futures_of(persisted)), key=lambda k: k[1])
    assert all(columns == {"b": "target"} for _, columns in direct), \
        CHANGED.format(v=dask.__version__, what="the columns of a RenameFrame")


def test_frames_not_made_of_persisted_partitions_are_not_recognised(client2, df, tmp_path):
    lazy = dd.from_pandas(df, npartitions=2, sort=False)
    assert frames._direct_sources(lazy) is None
    assert frames._direct_sources(lazy.rename(columns={"b": "target"})) is None
    lazy.to_parquet(str(tmp_path / "p"))
    from_storage = dd.read_parquet(str(tmp_path / "p"))
    assert frames._direct_sources(from_storage) is None
    assert frames.persist_if_in_memory(client2, from_storage) is from_storage  # not held in memory
    persisted = client2.persist(lazy)
    assert frames._direct_sources(persisted[["b"]]) is None  # a projection: a task of its own


def test_set_up_passes_take_persisted_partitions_as_futures(client2, df):
    """Set-up tasks get persisted partitions straight from their futures (to_delayed() re-materialised
    them in every pass): the response rename over them happens inside the same task, with no
    dask-dataframe task (or re-persist) in between; another frame built on persisted data is
    persisted once; none may hand out the underlying partitions unchanged."""
    persisted = client2.persist(dd.from_pandas(df, npartitions=4, sort=False))
    renamed = persisted.rename(columns={"b": "target"})
    assert frames.persist_if_in_memory(client2, renamed) is renamed  # nothing to persist
    calls = frames.partition_calls(len, renamed)
    assert len(calls) == 4
    sources = []
    for c in calls:  # one task per partition, its only input the persisted partition's future
        graph = dict(c.__dask_graph__())
        assert list(graph) == [c.key] and len(graph[c.key].dependencies) == 1
        assert c.key.startswith("dask_dl-len-")  # named for the dashboard
        sources += list(graph[c.key].dependencies)
    assert len(set(sources)) == 4 and all(k[0] == sources[0][0] for k in sources)
    assert dask.compute(*calls) == (10, 10, 10, 10)
    got = pd.concat(dask.compute(*frames.partition_calls(lambda p: p, renamed)))
    pd.testing.assert_frame_equal(got, df.rename(columns={"b": "target"}))  # renamed, in partition order
    projected = persisted[["b"]].assign(c=1.0)
    ready = frames.persist_if_in_memory(client2, projected)
    assert ready is not projected
    got = pd.concat(dask.compute(*frames.partition_calls(lambda p: p, ready)))
    pd.testing.assert_frame_equal(got, df[["b"]].assign(c=1.0))
    from_storage = dd.from_pandas(df, npartitions=2, sort=False)  # not persisted: left alone
    assert frames.persist_if_in_memory(client2, from_storage) is from_storage


def test_in_memory_frames_ride_inside_their_tasks_as_from_pandas_would_split_them(client2, df):
    """A pandas frame is cut into from_pandas(sort=False)'s row ranges, each inside its set-up task:
    no task of its own, nothing stored on a worker before the encoded block."""
    for n in (1, 3, 4, 7):
        parts = frames.InMemoryFrame(df, n).parts
        expected = dd.from_pandas(df, npartitions=n, sort=False).to_delayed()
        assert len(parts) == len(expected)
        for got, want in zip(parts, dask.compute(*expected)):
            pd.testing.assert_frame_equal(got, want)
    calls = frames.partition_calls(len, frames.InMemoryFrame(df, 3))
    for c in calls:
        graph = dict(c.__dask_graph__())
        assert list(graph) == [c.key] and not graph[c.key].dependencies
    assert dask.compute(*calls) == (14, 13, 13)


def test_a_pandas_frame_trains_the_model_its_from_pandas_frame_does(client2):
    """The same rows, in the same partitions, give the same model from pandas (InMemoryFrame) and
    from dd.from_pandas; the pandas fit runs no dask-dataframe task."""
    from distributed import get_task_stream
    from dask_dl import DeepLearningClassifier
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 5)), columns=list("abcde"))
    X["y"] = np.where(X["a"] + X["b"] > 0, "p", "n")
    kw = dict(hidden=[6], epochs=2, seed=5, quiet_mode=True, client=client2)
    with get_task_stream(client2) as ts:
        a = DeepLearningClassifier(**kw).fit(X, "y", validation_data=X.iloc[:100]).model_
    prefixes = {str(t["key"][0] if isinstance(t["key"], tuple) else t["key"]).split("-")[0] for t in ts.data}
    assert prefixes == {"dask_dl"}, prefixes
    b = DeepLearningClassifier(**kw).fit(dd.from_pandas(X, npartitions=2, sort=False), "y",
                                         validation_data=dd.from_pandas(X.iloc[:100], npartitions=2, sort=False)).model_
    assert np.array_equal(a.state, b.state)


def test_a_large_pandas_frame_fits_without_dasks_large_graph_advice(client2):
    """The rows of a pandas frame travel inside the encoding tasks by design: Dask's "Sending large
    graph ... load the data with Dask directly" warning is not shown for them."""
    import warnings
    from dask_dl import DeepLearningRegressor
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(4000, 800)), columns=[f"x{i}" for i in range(800)])  # 12.8 MB a partition
    X["y"] = X["x0"] * 2.0
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        DeepLearningRegressor(hidden=[4], epochs=1, seed=1, quiet_mode=True, client=client2).fit(X, "y")
    assert not [w for w in seen if "large graph" in str(w.message)], [str(w.message)[:80] for w in seen]


def test_a_from_pandas_frame_rides_inside_its_tasks_with_dasks_own_partitions(client2):
    """``dd.from_pandas`` of a pandas frame (sorted by its index, strings made pyarrow strings, split
    at dask's own locations) is cut as dask would cut it, renamed inside its tasks, and trains the
    model the same frame trains through ``to_delayed()``, without a dask-dataframe task (a frame of
    fewer partitions than workers is re-cut on the client, not repartitioned by dask)."""
    from distributed import get_task_stream
    from dask_dl import DeepLearningClassifier
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"), index=rng.permutation(300))
    X["kind"] = rng.choice(["u", "v", "w"], size=300).astype(object)
    X["y"] = np.where(X["a"] - X["c"] > 0, "p", "n")
    frame = dd.from_pandas(X, npartitions=3)
    renamed = frame.rename(columns={"y": "target"})
    found = frames.InMemoryFrame.of_dask(renamed)
    assert found is not None, CHANGED.format(v=dask.__version__, what="dd.from_pandas (FromPandas, operands "
                                             "'_partitions' and '_series', _filtered_task(...).value)")
    assert found.npartitions == renamed.npartitions == 3 and found.rename == {"y": "target"}
    for i, part in enumerate(found.parts):
        pd.testing.assert_frame_equal(part.rename(columns=found.rename), renamed.get_partition(i).compute())
    assert frames.InMemoryFrame.of_dask(frame.map_partitions(lambda p: p)) is None
    dropped = frames.InMemoryFrame.of_dask(frame.drop(columns=["b"]).rename(columns={"y": "t"}))  # ignored_columns
    assert dropped is not None and list(dropped.parts[0].columns) == ["a", "c", "d", "kind", "y"]
    kw = dict(hidden=[6], epochs=2, seed=5, quiet_mode=True, client=client2)
    with get_task_stream(client2) as ts:
        a = DeepLearningClassifier(**kw).fit(frame, "y", validation_data=dd.from_pandas(X.iloc[:90], npartitions=1))
    prefixes = {str(t["key"][0] if isinstance(t["key"], tuple) else t["key"]).split("-")[0] for t in ts.data}
    assert prefixes == {"dask_dl"}, prefixes
    valid = dd.from_pandas(X.iloc[:90], npartitions=2).map_partitions(lambda p: p)
    b = DeepLearningClassifier(**kw).fit(frame.map_partitions(lambda p: p), "y", validation_data=valid)
    held = frames.InMemoryFrame.of_dask(dd.from_pandas(X, npartitions=1), 2)  # one partition for 2 workers
    assert [len(p) for p in held.parts] == [150, 150] and held.rename is None
    assert np.array_equal(a.model_.state, b.model_.state)
