"""Out of core: partitions streamed from storage every iteration instead of persisted."""
import numpy as np
import pytest

import dask_dl
from dask_dl.cluster.streaming import StreamSource, wants_streaming
from dask_dl.params import resolve

from conftest import FakeClient, response_only_info


@pytest.fixture(scope="module")
def mnist_parquet(tmp_path_factory, mnist_small):
    tr, te = mnist_small
    path = tmp_path_factory.mktemp("mnist") / "train"
    import dask.dataframe as dd
    dd.from_pandas(tr, npartitions=6).to_parquet(str(path))
    return str(path), te


def _error(clf, te):
    return float(np.mean(clf.predict(te.drop(columns=["C785"])) != te["C785"].to_numpy()))


def test_streaming_matches_in_memory_training(client2, mnist_parquet):
    path, te = mnist_parquet
    kw = dict(hidden=[64], epochs=5, seed=1, quiet_mode=True, train_samples_per_iteration=6000)
    streamed = dask_dl.DeepLearningClassifier(out_of_core=True, **kw).fit(dask_dl.read_parquet(path), "C785")
    in_memory = dask_dl.DeepLearningClassifier(out_of_core=False, **kw).fit(dask_dl.read_parquet(path), "C785")
    assert streamed.model_.run["out_of_core"] and not in_memory.model_.run["out_of_core"]
    assert streamed.model_.run["workers"] == 2 and streamed.model_.run["samples"] == 30000
    e_s, e_m = _error(streamed, te), _error(in_memory, te)
    assert e_s < 0.15 and abs(e_s - e_m) < 0.03
    hist = streamed.model_.scoring_history()
    assert np.isfinite(hist["training_logloss"].iloc[-1])  # scoring sample drawn in the set-up pass


def test_auto_decision_from_worker_memory_limits():
    info = response_only_info(1_000_000)
    need = 1_000_000 * (info.n_inputs + 1) * 4  # 4 MB for a 0-input frame: only the response
    auto = resolve({"out_of_core": "auto"}, "regression")
    assert wants_streaming(FakeClient([need // 2, need // 2]), info, auto) is True  # needs > half the memory
    assert wants_streaming(FakeClient([4 * need, 4 * need]), info, auto) is False
    assert wants_streaming(FakeClient([0, 0]), info, auto) is False              # no limit set
    assert wants_streaming(FakeClient([4 * need]), info, resolve({"out_of_core": True}, "regression")) is True
    assert wants_streaming(FakeClient([need // 4]), info, resolve({"out_of_core": False}, "regression")) is False
    # one worker trains on everything in memory (reproducible, single_node_mode)
    for one in ({"reproducible": True}, {"single_node_mode": True}):
        assert wants_streaming(FakeClient([4 * need]), info, resolve({"out_of_core": True, **one}, "regression")) \
            is False


def test_stream_plan_reads_only_what_the_iteration_needs():
    src = StreamSource([None] * 3, [10, 20, 10], None)
    assert src.plan(15, 0) == [(0, 0.0, 10), (1, 0.0, 5)]
    assert src.plan(30, 15) == [(1, 0.25, 15), (2, 0.0, 10), (0, 1.0, 5)]   # wraps into the 2nd pass
    assert sum(c for _, _, c in src.plan(95, 7)) == 95


def test_partitions_are_assigned_round_robin():
    """One assignment for persisted encoding and streaming: partition i to worker i mod P."""
    from dask_dl.cluster.placement import round_robin
    assert round_robin(5, ["a", "b"]) == [("a", [0, 2, 4]), ("b", [1, 3])]
    assert round_robin(1, ["a", "b", "c"]) == [("a", [0])]  # workers without a partition left out
    assert round_robin(0, ["a"]) == []


@pytest.mark.parametrize("out_of_core", [True, False])
def test_rows_that_do_not_train_are_counted_in_the_log(client2, iris, tmp_path, dl_log, out_of_core):
    """Rows without a response, and with missing_values_handling='Skip' rows with a missing
    predictor, are said in the log, in memory and out of core alike."""
    import dask.dataframe as dd
    df = iris.copy()
    df.loc[:4, "class"] = None            # 5 rows without a response
    df.loc[10:12, "sepal_len"] = np.nan   # 3 rows with a missing predictor
    dd.from_pandas(df, npartitions=3).to_parquet(str(tmp_path / "p"))
    clf = dask_dl.DeepLearningClassifier(hidden=[4], epochs=1, seed=1, out_of_core=out_of_core,
                                         missing_values_handling="Skip", train_samples_per_iteration=100)
    clf.fit(dask_dl.read_parquet(str(tmp_path / "p")), "class")
    assert clf.model_.run["out_of_core"] is out_of_core
    assert any("5 training rows have a missing response" in m for m in dl_log)
    assert any("3 training rows with a missing predictor are skipped" in m for m in dl_log)
