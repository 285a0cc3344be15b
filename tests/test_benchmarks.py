"""Smoke runs of the benchmark scripts at tiny sizes, so they keep working (speed is not asserted)."""
import pytest


def test_bench_mnist_smoke(bench_path):
    import bench_mnist
    table = bench_mnist.main(["--rows", "3000", "--test-rows", "500", "--hidden", "16", "--threads", "1", "--warm-up"])
    row = table.iloc[0]
    assert row["system"] == "dask_dl" and row["samples"] == 3000
    assert row["training_speed"] > 0 and row["test_error"] < 0.5
    assert 0 < row["setup_seconds"] < row["fit_seconds"]


def test_bench_mnist_session_fits_every_seed_on_one_cluster(bench_path):
    import bench_mnist
    table = bench_mnist.main(["--rows", "3000", "--test-rows", "300", "--hidden", "16", "--workers", "2",
                              "--threads", "1", "--session", "--seeds", "1", "2"])
    assert list(table["seed"]) == [1, 2] and (table["samples"] == 3000).all()
    assert table["test_error"].max() < 0.5


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


PARITY_SMOKE = ["--systems", "dask_dl", "--seeds", "1", "2", "--datasets", "spiral", "mnist10k", "--rows", "600",
                "--test-rows", "200", "--hidden", "8", "--epochs", "1", "--shapes", "1x1"]


def test_bench_parity_smoke_and_resume(bench_path, tmp_path, capsys):
    import json
    import math

    import bench_parity
    results = tmp_path / "parity.jsonl"
    argv = [*PARITY_SMOKE, "--results", str(results)]
    table = bench_parity.main(argv)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(records) == 4 and all("error" not in r and math.isfinite(r["value"]) for r in records)
    assert {(r["dataset"], r["seed"], r["n_test"]) for r in records} == {
        ("spiral", 1, 50), ("spiral", 2, 50), ("mnist10k", 1, 200), ("mnist10k", 2, 200)}
    capsys.readouterr()
    again = bench_parity.main(argv)  # resumed: every run is in the file already
    assert len(results.read_text().splitlines()) == 4
    out = capsys.readouterr().out
    for t in (table, again):
        assert sorted(zip(t["dataset"], t["shape"])) == [("mnist10k", "1x1"), ("spiral", "1x1")]
        assert (t["dask_dl_n"] == 2).all() and (t["h2o_n"] == 0).all() and (t["meets"] == "—").all()
    assert sum(line.startswith(("| spiral", "| mnist10k")) and "(2) | — |" in line for line in out.splitlines()) == 2


def _parity_record(system, dataset, where, value, metric="test_error", hidden=(200, 200), **extra):
    """A results line as bench_parity writes it (dask_dl: ``where`` is the shape; H2O: nthreads)."""
    from bench_parity import SHAPES
    run = {"system": system, "dataset": dataset, "epochs": 1.0, "rows": None, "test_rows": None,
           "hidden": list(hidden), "seed": 1, "metric": metric, "value": value, "params": {}}
    if system == "h2o":
        return {**run, "shape": None, "nthreads": where, "variant": None, **extra}
    return {**run, "shape": where, "nthreads": SHAPES[where][0] * SHAPES[where][1], "variant": "default", **extra}


def test_bench_parity_report_statistics(bench_path, tmp_path, capsys):
    import json

    import bench_parity
    r = _parity_record
    records = ([r("dask_dl", "spiral", "1x1", v) for v in (0.10, 0.12, 0.14)]      # mean ok, sd 0.02 > 1.5 x 0.01
               + [r("h2o", "spiral", 1, v) for v in (0.11, 0.12, 0.13)]
               + [r("dask_dl", "spiral", "2x1", v) for v in (0.120, 0.122)]       # +0.1 pp, sd 0.0014: yes
               + [r("h2o", "spiral", 2, v) for v in (0.11, 0.13)]
               + [r("dask_dl", "wine", "1x1", v, "test_rmse") for v in (0.70, 0.72)]   # yes
               + [r("h2o", "wine", 1, v, "test_rmse") for v in (0.70, 0.71, 0.72)]
               + [r("dask_dl", "wine", "1x2", v, "test_rmse") for v in (0.73, 0.74)]   # 0.735 > 1.01 x 0.71
               + [r("h2o", "wine", 2, v, "test_rmse") for v in (0.70, 0.72)]
               + [r("h2o", "spiral", 1, 0.9, hidden=(16,)), r("h2o", "spiral", 1, 0.9, seed=9, error="Boom")])
    path = tmp_path / "parity.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in records) + '{"cut short')
    table = bench_parity.report(str(path)).set_index(["dataset", "shape"])
    out = capsys.readouterr().out
    row = table.loc[("spiral", "1x1")]
    assert (row["dask_dl_n"], row["h2o_n"]) == (3, 3)  # the hidden-16 and the failed H2O runs are not counted
    assert row["dask_dl_mean"] == pytest.approx(0.12) and row["dask_dl_sd"] == pytest.approx(0.02)
    assert (row["dask_dl_min"], row["dask_dl_max"]) == (0.10, 0.14) and row["h2o_sd"] == pytest.approx(0.01)
    assert row["sd_ratio"] == pytest.approx(2.0) and row["meets"] == "no"
    assert table.loc[("spiral", "2x1"), "meets"] == "yes"
    assert table.loc[("spiral", "2x1"), "delta"] == pytest.approx(0.001)
    assert table.loc[("wine", "1x1"), "meets"] == "yes" and table.loc[("wine", "1x2"), "meets"] == "no"
    assert table.loc[("spiral", "h2o nthreads 1"), "h2o_n"] == 1  # the hidden-16 run: a row of its own
    assert "| 12.00 ± 2.00 [10.00–14.00] (3) | 12.00 ± 1.00 [11.00–13.00] (3) | +0.00 pp | 2.00 | no |" in out
    assert "| 0.7100 ± 0.0141 [0.7000–0.7200] (2) | 0.7100 ± 0.0100 [0.7000–0.7200] (3) | +0.0000 | 1.41 | yes |" in out
    assert "1 run(s) failed" in out


def test_bench_parity_meets_rule(bench_path):
    from bench_parity import meets, stats
    h = stats([0.10, 0.12])  # mean 11%, sd 1.41 pp
    assert meets("test_error", stats([0.101, 0.121]), h) == "yes"  # +0.1 pp, the same sd
    assert meets("test_error", stats([0.105, 0.125]), h) == "no"   # +0.5 pp
    assert meets("test_error", stats([0.09, 0.13]), h) == "no"     # the same mean, twice the sd
    assert meets("test_error", stats([0.0995, 0.1205]), h) == "yes"  # 1.05 x the sd
    assert meets("test_rmse", stats([0.1005, 0.1205]), h) == "yes"  # 1.0045 x
    assert meets("test_rmse", stats([0.103, 0.123]), h) == "no"     # 1.027 x
    assert meets("test_error", stats([0.11]), h) == "—"


def test_bench_performance_smoke(bench_path):
    """Rows generated on a worker, reduced where they lie: what moves is the statistics, not the rows."""
    import bench_performance
    out = bench_performance.main(["--rows", "400000", "--partitions", "4", "--workers", "1"])
    assert out["rows"] == 400000 and out["auc"] > 0.9
    assert 0 <= out["loopback_mb"] < 5  # the rows alone are ~18 MB


def test_bench_prostate_smoke(bench_path):
    import bench_prostate
    table = bench_prostate.main(["--seeds", "1", "--epochs", "1", "--hidden", "8", "--no-h2o"])
    assert list(table["system"]) == ["dask_dl"] and 0.5 < table["auc"].iloc[0] <= 1.0


def test_bench_offsets_smoke(bench_path):
    import bench_offsets
    table = bench_offsets.main(["--seeds", "1", "--epochs", "1", "--hidden", "4"])
    by = table.set_index("system")
    assert by.loc["dask_dl", "deviance"] < by.loc["dask_dl (no offset)", "deviance"]
    assert abs(by.loc["dask_dl", "mean_ratio"] - 1) < 0.1


def test_bench_autoencoder_smoke(bench_path):
    import bench_autoencoder
    table = bench_autoencoder.main(["--seeds", "1", "--rows", "2000", "--anomaly-rows", "3000", "--epochs", "1",
                                    "--ae-epochs", "1"])
    row = table.iloc[0]
    assert row["mse_9"] > 0 and row["mse_0_8"] > 0 and 0 < row["error_scratch"] < 0.5


def test_bench_concurrency_smoke(bench_path):
    import bench_concurrency
    table = bench_concurrency.main(["--rows", "600", "--epochs", "1"])
    assert list(table["models"]) == [4, 4] and list(table["fits"]) == [16, 16]


def test_bench_watch_smoke(bench_path):
    import bench_watch
    table = bench_watch.main(["--partitions", "4", "50", "--looks", "3"])
    assert list(table["partitions"]) == [4, 50]
    assert (table["fastest_ms"] > 0).all() and (table["fastest_ms"] <= table["median_ms"]).all()
