"""Smoke run of benchmarks/bench_time_to_accuracy.py at a tiny size with loose targets, so it keeps
working (times are not asserted). torch is a benchmark-only extra: without it, its part is skipped."""
import math

import pytest


@pytest.fixture
def bench(bench_path):
    import bench_time_to_accuracy
    return bench_time_to_accuracy


def _check(table, systems):
    assert set(table["system"]) == set(systems)
    for system in systems:
        row = table[table["system"] == system].iloc[0]
        assert row["reached"], (system, row.to_dict())
        assert 0 < row["time_to_target_s"] < 60 and row["wall_s"] > 0
        assert row["epochs"] > 0 and 0 <= row["final_test_error"] < 0.7 and not math.isnan(row["setup_s"])


SMALL = ["--rows", "2000", "--test-rows", "500", "--hidden", "16", "--threads", "1", "--budget", "5",
         "--target-mnist", "0.5", "--target-covtype", "0.6"]


def test_bench_time_to_accuracy_smoke(bench):
    pytest.importorskip("sklearn")
    tables = bench.main([*SMALL, "--epochs", "20", "--systems", "dask_dl", "sklearn"])
    assert set(tables) == {"mnist", "covtype"}
    for table in tables.values():
        _check(table, ["dask_dl", "sklearn"])


@pytest.mark.parametrize("dropout", [[], ["--torch-dropout", "0.1", "0.2"]])
def test_bench_time_to_accuracy_torch(bench, dropout):
    pytest.importorskip("torch")  # a benchmark-only extra, not in the test dependencies
    tables = bench.main([*SMALL, "--systems", "torch", *dropout])
    for table in tables.values():
        _check(table, ["torch"])
        assert table["config"].str.contains("dropout 0.1 / 0.2").all() == bool(dropout)


def test_unknown_dask_dl_parameter_is_reported_not_raised(bench):
    tables = bench.main(["--datasets", "covtype", "--rows", "1000", "--test-rows", "300", "--hidden", "8",
                         "--threads", "1", "--budget", "2", "--systems", "dask_dl",
                         "--dask-dl-config", '{"no_such_parameter_xyz": 1}'])
    row = tables["covtype"].iloc[0]
    assert row["note"].startswith("unsupported") and "no_such_parameter_xyz" in row["note"]
    assert not row["reached"]
