"""Smoke run of benchmarks/bench_ceiling.py at tiny sizes, so it keeps working (speed is not asserted)."""


def test_bench_ceiling_smoke(bench_path):
    import bench_ceiling
    table = bench_ceiling.main(["--repeats", "1", "--seconds", "0.001", "--dram-mb", "4", "--rows", "300",
                                "--active", "0.4"])
    measured = table[table.section == "measured"]
    bandwidths = measured[measured.unit == "GB/s"]
    assert {"read", "read+write", "adadelta triad", "kernel _adadelta_row_sq"} <= set(bandwidths["item"])
    assert len(set(bandwidths["where"])) == 3 and (bandwidths["value"] > 0).all()
    gemv = measured[measured.unit == "GFLOP/s"]
    assert set(gemv["item"]) == {"gemv numba loop", "gemv kernel _rows_times", "gemv numpy BLAS"}
    assert (gemv["value"] > 0).all()

    mnist = table[table.section == "mnist"].set_index("item")["value"]
    assert mnist["n_in"] == 717  # constant columns come from the whole training set, not the 300 rows
    assert 0 < mnist["nonzero_fraction"] < 0.5

    cost = table[table.section == "cost"].set_index(["item", "where"])["value"]
    assert (cost > 0).all()
    # the sparse encoding touches fewer first-layer weights, so fewer bytes and FLOPs
    assert cost[("L3 bytes per sample", "sparse")] < cost[("L3 bytes per sample", "dense")]
    assert cost[("FLOPs per sample", "sparse")] < cost[("FLOPs per sample", "dense")]

    ceil = table[table.section == "ceiling"]
    assert set(ceil["where"]) == {"dense", "sparse"} and (ceil["value"] > 0).all()
    for case, rows in ceil.groupby("where"):
        v = rows.set_index("item")["value"]
        binding = v[v.index.str.startswith("ceiling")]
        assert len(binding) == 1 and binding.iloc[0] == min(v["memory"], v["compute"])


def test_cost_model_counts(bench_path):
    """Hand count of the model for a tiny network: 4 inputs, 2 hidden units, 1 output, half active."""
    import bench_ceiling
    cost = bench_ceiling.cost_model([4, 2, 1], active=0.5).set_index("layer")
    l1, l2 = cost.loc["1: 4->2"], cost.loc["2: 2->1"]
    assert (l1.fwd_weights, l1.bwd_weights, l1.upd_weights) == (8, 0, 4)  # 1 active unit x 4 inputs
    assert (l2.fwd_weights, l2.bwd_weights, l2.upd_weights) == (2, 2, 2)  # the output always updates
    assert l1.l3_bytes == 4 * (8 + 2) + 24 * (4 + 1)  # forward W + biases; r+w of W, S1, S2 (+ bias state)
    assert l2.flops == 2 * 2 + 2 * 2 + bench_ceiling.UPDATE_FLOPS * 2 + bench_ceiling.BIAS_FLOPS
