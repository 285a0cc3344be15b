"""Smoke run of benchmarks/bench_profile.py at tiny sizes, and the loop's timing keys in model_.run."""
import pytest


def test_bench_profile_smoke(bench_path, monkeypatch):
    import bench_profile

    from dask_dl.cluster import loop
    # a membership check due (every MEMBERSHIP_CHECK_S of a fit) submits one round unpipelined: on a
    # loaded machine these 20 rounds outlast a second, and one of the 19 was not pipelined
    monkeypatch.setattr(loop, "MEMBERSHIP_CHECK_S", 1e9)
    tables = bench_profile.main(["--rows", "2000", "--test-rows", "300", "--hidden", "16", "--iterations", "20",
                                 "--overhead-rows", "200"])
    prof = tables["profile"].set_index("component")
    assert {"kernel compute", "broadcast", "reduce + Dask", "scoring", "loop other", "set-up",
            "fit wall time"} <= set(prof.index)
    assert ((prof["share"] >= 0) & (prof["share"] <= 1)).all()
    assert prof.loc["fit wall time", "share"] == 1.0
    parts = prof.drop(index="fit wall time")
    assert parts["share"].sum() == pytest.approx(1.0)
    for name in ("kernel compute", "broadcast", "reduce + Dask", "scoring", "set-up"):
        assert prof.loc[name, "seconds"] > 0, name

    over = tables["overhead"]
    assert list(over["workers"]) == [1, 1, 2, 2] and (over["iterations"] == 20).all()
    assert list(over["pipelined"]) == [19, 0, 19, 0]  # every round after the first, then none
    assert (over["iterations_per_s"] > 0).all()
    assert (over[["broadcast_ms", "compute_ms", "reduce_wait_ms"]] > 0).all().all()


def test_run_records_where_the_time_goes(client2, mnist_small):
    import dask_dl
    tr, _ = mnist_small
    clf = dask_dl.DeepLearningClassifier(hidden=[8], epochs=1, seed=1, quiet_mode=True, client=client2,
                                         train_samples_per_iteration=1000)
    clf.fit(tr.iloc[:3000], "C785")
    run = clf.model_.run
    assert run["iterations"] == 3
    for key in ("train", "score", "broadcast", "compute", "reduce_wait"):
        assert run[key] > 0, key
    assert run["compute"] <= run["train"]
    assert run["broadcast"] + run["compute"] + run["reduce_wait"] <= run["train"] + 1e-9
    assert run["train"] + run["score"] <= run["run_seconds"]
