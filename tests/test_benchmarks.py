"""Smoke runs of the benchmark scripts at tiny sizes, so they keep working (speed is not asserted)."""
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "benchmarks")


@pytest.fixture
def bench_path():
    sys.path.insert(0, os.path.abspath(BENCH))
    yield
    sys.path.remove(os.path.abspath(BENCH))


def test_bench_mnist_smoke(bench_path):
    import bench_mnist
    table = bench_mnist.main(["--rows", "3000", "--test-rows", "500", "--hidden", "16", "--threads", "1"])
    row = table.iloc[0]
    assert row["system"] == "dask_dl" and row["samples"] == 3000
    assert row["training_speed"] > 0 and row["test_error"] < 0.5
