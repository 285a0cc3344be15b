"""Smoke runs of the benchmark scripts at tiny sizes, so they keep working (speed is not asserted)."""


def test_bench_mnist_smoke(bench_path):
    import bench_mnist
    table = bench_mnist.main(["--rows", "3000", "--test-rows", "500", "--hidden", "16", "--threads", "1"])
    row = table.iloc[0]
    assert row["system"] == "dask_dl" and row["samples"] == 3000
    assert row["training_speed"] > 0 and row["test_error"] < 0.5


def test_bench_elastic_smoke(bench_path):
    import bench_elastic
    table = bench_elastic.main(["--workers", "2", "--epochs", "1", "--per-epoch", "2", "--rows", "2000",
                                "--test-rows", "300", "--hidden", "16"])
    assert set(table["averaging"]) == {"plain", "elastic"}
    assert (table.groupby("averaging")["epochs"].max() == 1.0).all()
    assert table["test_error"].max() < 0.6


def test_bench_scaling_smoke(bench_path):
    import bench_scaling
    table = bench_scaling.main(["--workers", "1", "2", "--rows", "2000", "--test-rows", "300", "--hidden", "16"])
    assert list(table["workers"]) == [1, 2] and table["efficiency"].iloc[0] == 1.0
    assert (table["training_speed"] > 0).all() and (table["test_error"] < 0.6).all()


def test_bench_out_of_core_smoke(bench_path):
    import bench_out_of_core
    table = bench_out_of_core.main(["--memory-limit", "1GB", "--factors", "0.04", "--samples", "3000",
                                    "--hidden", "16", "--no-in-memory"])
    (row,) = table.to_dict("records")
    assert row["rows"] == 30000 and row["samples"] == 3000 and not row["out_of_core"]
    assert row["run"].startswith("0.04x memory, in memory")
    assert row["spilled_bytes"] == 0 and not row["restarted"]
    assert 0 < row["peak_worker_MB"] < 1000 and row["test_error"] < 0.6


def test_bench_faults_smoke(bench_path):
    import bench_faults
    table = bench_faults.main(["--rows", "3000", "--test-rows", "500", "--hidden", "16", "--epochs", "4",
                               "--at", "0.5"])
    assert list(table["killed_at"]) == ["-", "50%"] and table["fired"].iloc[1]
    assert (table["test_error"] < 0.6).all() and (table["fit_seconds"] > 0).all()
