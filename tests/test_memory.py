"""Memory pre-flight (issue 16): each worker's estimated need against where Dask pauses it."""
import re
import threading
import time

import numpy as np
import pandas as pd
import pytest

from dask_dl.cluster import memory
from dask_dl.cluster.memory import MiB, WorkerMemory, WorkerMemoryError
from dask_dl.data.schema import ColumnInfo, DataInfo
from dask_dl.nn.network import build_layout
from dask_dl.params import resolve

from conftest import FakeClient


def _info(n_rows: int, n_inputs: int) -> DataInfo:
    """A regression DataInfo with ``n_inputs`` numeric inputs: (n_inputs + 1) * 4 bytes a row encoded."""
    cols = [ColumnInfo(name=f"x{i}", kind="numeric", mean=0.0, sigma=1.0) for i in range(n_inputs)]
    return DataInfo(feature_names=[c.name for c in cols], columns=cols, ignored=[], standardize=True,
                    use_all_factor_levels=True, skip_missing=False, response_name="y", response_kind="regression",
                    n_rows=n_rows)


def _layout(n_inputs: int, hidden=(10,)):
    return build_layout(n_inputs, list(hidden), "Rectifier", 1, False, 0.0, [0.0] * len(hidden))


def _workers(n: int, limit_mib: float, rss_mib: float = 280, pause: float = 0.8, threads: int = 1, paused=False):
    return [WorkerMemory(address=f"tcp://w{i}", rss=int(rss_mib * MiB), limit=int(limit_mib * MiB), pause=pause,
                         paused=paused, threads=threads) for i in range(n)]


class SurveyClient(FakeClient):
    """A FakeClient whose workers answer ``client.run(memory.worker_memory)``."""

    def __init__(self, workers):
        super().__init__([w.limit for w in workers])
        self.workers = workers

    def run(self, fn, *args):
        assert fn is memory.worker_memory
        return {w.address: {"rss": w.rss, "limit": w.limit, "pause": w.pause, "paused": w.paused,
                            "threads": w.threads} for w in self.workers}


def test_estimate_counts_model_copies_blocks_and_samples():
    info, layout = _info(100_000, 99), _layout(99)  # 40 MB encoded (100 floats a row)
    cfg = resolve({"score_training_samples": 10_000}, "regression")
    est = memory.estimate(info, layout, cfg, n_workers=2, threads=2, n_parts=4)
    state = layout.state_size * 4
    assert est.model == (1 + memory.ROUND_COPIES) * state            # HOGWILD! threads share one copy
    assert est.partitioned == 2 * 10_000_000 + 10_000_000            # 2 of 4 blocks, + one being encoded
    assert est.replicated == 40_000_000 + 10_000_000
    assert est.streamed == memory.STREAM_PARTITIONS * 10_000_000
    assert est.scoring == 10_000 * 400 // 2
    copies = resolve({"thread_local_models": True}, "regression")     # a copy per thread
    assert memory.estimate(info, layout, copies, 2, 4, 4).model == (4 + memory.ROUND_COPIES) * state
    elastic = resolve({"elastic_averaging": True}, "regression")     # + the local model and its copy
    assert memory.estimate(info, layout, elastic, 2, 1, 4).model == (3 + memory.ROUND_COPIES) * state
    one = resolve({"reproducible": True}, "regression")              # one worker holds everything
    assert memory.estimate(info, layout, one, 2, 1, 1).partitioned == 80_000_000


def test_preflight_keeps_what_fits():
    info, layout = _info(100_000, 99), _layout(99)
    cfg = resolve({}, "regression")
    assert memory.preflight(SurveyClient(_workers(2, 1000)), info, layout, cfg, n_parts=4) is cfg
    assert memory.preflight(SurveyClient(_workers(2, 0)), info, layout, cfg, n_parts=4) is cfg  # no limits


def test_preflight_turns_replication_off_then_streams(dl_log):
    info, layout = _info(1_000_000, 99), _layout(99)  # 400 MB encoded, 8 partitions of 50 MB
    cfg = resolve({"replicate_training_data": True}, "regression")
    # 800 MiB limit: 640 usable, 280 footprint; own 4 blocks + 1 (250 MB) fit, all 8 + 1 (450 MB) do not
    off = memory.preflight(SurveyClient(_workers(2, 800)), info, layout, cfg, n_parts=8)
    assert off.params["replicate_training_data"] is False and off.params["out_of_core"] == "auto"
    assert "replicate_training_data off" in dl_log[-1]
    # 500 MiB: 400 usable, not even the worker's own share (210 MB in 40 partitions); 6 partitions of
    # 10 MB out of core fit
    streamed = memory.preflight(SurveyClient(_workers(2, 500)), info, layout, cfg, n_parts=40)
    assert streamed.params["out_of_core"] is True and "out of core" in dl_log[-1]
    quiet = resolve({"quiet_mode": True}, "regression")
    n_logged = len(dl_log)
    memory.preflight(SurveyClient(_workers(2, 500)), info, layout, quiet, n_parts=40)
    assert len(dl_log) == n_logged


def test_preflight_counts_a_kernel_still_to_load():
    """The first fit after an install places its data before its workers load the kernel: the
    pre-flight adds KERNEL_FOOTPRINT to each worker's measured footprint."""
    info, layout = _info(1_000_000, 99), _layout(99)
    cfg = resolve({"replicate_training_data": True}, "regression")
    est = memory.estimate(info, layout, cfg, 2, 1, n_parts=8)
    # replication fits with 32 MiB to spare, so not with the kernel's 64 MiB on top
    limit_mib = (280 * MiB + est.model + est.scoring + est.replicated + 32 * MiB) / 0.8 / MiB
    workers = _workers(2, limit_mib)
    assert memory.preflight(SurveyClient(workers), info, layout, cfg, n_parts=8) is cfg
    off = memory.preflight(SurveyClient(workers), info, layout, cfg, n_parts=8, kernel_to_load=True)
    assert off.params["replicate_training_data"] is False


def test_preflight_refuses_with_the_numbers():
    info, layout = _info(1_000_000, 99), _layout(99)
    forced = resolve({"out_of_core": False}, "regression")
    with pytest.raises(WorkerMemoryError) as err:
        memory.preflight(SurveyClient(_workers(2, 600)), info, layout, forced, n_parts=8)
    text = str(err.value)
    assert "tcp://w" in text and "280 MiB footprint" in text and "480 MiB" in text and "600 MiB" in text
    assert "out_of_core=True" in text and re.search(r"memory_limit of at least \d+ MiB", text)
    # out of core, but partitions too large to stream: says so
    with pytest.raises(WorkerMemoryError, match="smaller partitions"):
        memory.preflight(SurveyClient(_workers(2, 600)), info, layout, resolve({"out_of_core": True}, "regression"),
                         n_parts=1)
    # one worker trains on everything: no out-of-core way out
    with pytest.raises(WorkerMemoryError, match="one worker"):
        memory.preflight(SurveyClient(_workers(2, 600)), info, layout, resolve({"reproducible": True}, "regression"),
                         n_parts=1)
    # a huge model: fewer threads or a smaller network
    big = _layout(99, hidden=(4000, 4000))
    with pytest.raises(WorkerMemoryError, match="thread_local_models=False"):
        memory.preflight(SurveyClient(_workers(1, 600, threads=8)), _info(1000, 99), big,
                         resolve({"thread_local_models": True, "hidden": [4000, 4000]}, "regression"))


def test_minimum_limit_is_from_the_tightest_worker():
    info, layout = _info(1_000_000, 99), _layout(99)
    workers = _workers(2, 2000)[:1] + [WorkerMemory("tcp://small", 280 * MiB, 600 * MiB, 0.8, False, 1)]
    with pytest.raises(WorkerMemoryError, match="tcp://small"):
        memory.preflight(SurveyClient(workers), info, layout, resolve({"out_of_core": False}, "regression"), n_parts=8)


def test_check_workers_refuses_paused_and_too_small_workers():
    assert len(memory.check_workers(SurveyClient(_workers(2, 1000)))) == 2
    with pytest.raises(WorkerMemoryError, match="paused for memory"):
        memory.check_workers(SurveyClient(_workers(1, 1000, paused=True)))
    with pytest.raises(WorkerMemoryError) as err:  # 400 MB limit: paused at 320 MB = 305 MiB, footprint 300
        memory.check_workers(SurveyClient(_workers(1, 400e6 / MiB, rss_mib=300)))
    text = str(err.value)
    assert "uses 300 MiB" in text and "305 MiB" in text and "381 MiB memory_limit" in text
    assert f"at least {int(np.ceil((300 + 16) / 0.8))} MiB" in text


def test_worker_memory_reads_the_worker(client2):
    found = memory.survey(client2)
    assert len(found) == 2 and all(w.rss > 50 * MiB and w.threads == 1 and not w.paused for w in found)
    assert all(w.pause == pytest.approx(0.8) for w in found)


def _bounded(fn, seconds: float):
    """fn() on a thread; (result or exception, seconds taken); fails the test if it takes longer."""
    out: list = []

    def call():
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    t0 = time.perf_counter()
    th = threading.Thread(target=call, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), f"the fit still ran after {seconds} s: it hangs"
    return out[0], time.perf_counter() - t0


def test_small_memory_limit_streams_or_fails_fast(tmp_path):
    """A worker paused at 80% of 500 MB holds its ~310-330 MiB footprint after the statistics pass
    and under 70 MiB more: 120 MB of encoded data in memory would pause it; the fit streams the data
    instead (40 partitions of 3 MB), or refuses with the numbers — within a bounded time either way."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import dask_dl
    rng = np.random.default_rng(0)
    n, k = 300_000, 99
    df = pd.DataFrame(rng.standard_normal((n, k)).astype(np.float32), columns=[f"x{i}" for i in range(k)])
    df["y"] = df["x0"] * 2 + rng.standard_normal(n).astype(np.float32)
    dd.from_pandas(df, npartitions=40).to_parquet(str(tmp_path / "wide"))
    del df
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="500MB") as cl, Client(cl) as c:
        reg = dask_dl.DeepLearningRegressor(hidden=[4], epochs=0.05, out_of_core="auto", max_runtime_secs=30,
                                            quiet_mode=True, seed=1)
        result, took = _bounded(lambda: reg.fit(dask_dl.read_parquet(str(tmp_path / "wide")), "y"), 120)
    if isinstance(result, WorkerMemoryError):
        assert re.search(r"\d+ MiB", str(result)) and "memory_limit" in str(result)
    else:
        assert not isinstance(result, BaseException), result
        assert result.model_.run["out_of_core"] is True
    assert took < 120


def test_warm_up_loads_only_the_fits_kernels_and_compiles_elsewhere(monkeypatch):
    """The worker loads the kernel its fit runs (plain and elastic fits share it); a child process
    compiles only what no cache holds."""
    from dask_dl.nn import hogwild
    assert hogwild.fit_kernel(1) is hogwild.train_rows_elastic
    assert hogwild.fit_kernel(32) is hogwild.train_batches_elastic
    hogwild._warm_calls(1)  # loaded (or compiled) in this process
    children = []
    monkeypatch.setattr(hogwild, "_compile_in_child", lambda *a: children.append(a) or True)
    hogwild.warm_up(1)  # already here: no child
    kernel = hogwild.train_rows_elastic
    assert children == [] and kernel.overloads
    assert hogwild._in_disk_cache(kernel) == hogwild._cache_writable(kernel)
