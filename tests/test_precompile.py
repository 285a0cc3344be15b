"""The kernels' early compile (issue 21, dask_dl/nn/precompile.py): the background compile fills an
empty numba cache with what a default fit runs, the fit then compiles nothing; it is skippable,
never starts in workers, and workers wait for a compile under way instead of starting their own.
No timings are asserted (benchmarks/bench_setup.py measures them)."""
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# a script that fits on a LocalCluster of worker processes: what do the client and the worker
# compile, did the fit place its data while the kernel compiled, what is in the cache afterwards?
FIT = textwrap.dedent("""
    import json, logging
    import numpy as np, pandas as pd
    import dask_dl  # at the top, as in a script: on an empty cache it starts the background compile
    from numba.core import event

    def listen():  # the record lives in a module: functions of __main__ reach workers by value
        class Count(event.Listener):
            def on_start(self, ev): pass
            def on_end(self, ev): event.dask_dl_compiled.append(ev.data["dispatcher"].py_func.__qualname__)
        event.dask_dl_compiled = []
        event.register("numba:compile", Count())
        return True

    def compiled():
        return [n for n in event.dask_dl_compiled if n in KERNELS]

    KERNELS = {"train_rows_elastic", "backward_update", "forward_train", "_input_major_update", "output_error",
               "autoencoder_error", "_rows_times", "_softmax_inplace", "_capped_exp", "_dense_row_update",
               "_adaptive_row", "_gathered_row_update", "_bias_step", "_unit_major_update"}

    if __name__ == "__main__":
        from distributed import Client, LocalCluster
        from dask_dl.nn import precompile
        messages = []
        class Keep(logging.Handler):
            def emit(self, record): messages.append(record.getMessage())
        logging.getLogger("dask_dl").addHandler(Keep())
        listen()
        rng = np.random.default_rng(0)
        X = pd.DataFrame(rng.normal(size=(400, 4)), columns=list("abcd"))
        y = pd.Series(np.where(X["a"] > 0, "p", "n"))
        # a spawned worker re-imports this script (and dask_dl): it must start no compile of its own
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \\
                Client(cl) as c:
            c.run(listen)
            clf = dask_dl.DeepLearningClassifier(hidden=[8], epochs=10, seed=1).fit(X, y)
            workers = list(c.run(compiled).values())
        proc = precompile._STARTED[0] if precompile._STARTED else None
        rc = proc.wait(timeout=1200) if proc is not None else None
        names = ("train_rows_elastic",) + precompile.HELPER_GROUP + precompile.OWN_GROUP
        entries = {n: len(precompile._kernel(n)._cache._cache_file._load_index()) for n in names}
        print("RESULT " + json.dumps(dict(client=compiled(), workers=workers, rc=rc, entries=entries,
                                          late=any("placed meanwhile" in m for m in messages),
                                          accuracy=float(np.mean(clf.predict(X) == y)))))
""")


def _run(code: str, cache: str, **env) -> dict:
    """Run ``code`` in a fresh Python on this checkout with numba's cache in ``cache``."""
    full = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=os.pathsep.join(
        filter(None, [ROOT, os.environ.get("PYTHONPATH")])), **env)
    proc = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=1500)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_a_script_fits_while_the_background_compile_fills_an_empty_cache(tmp_path):
    """``import dask_dl`` starts the compile; the fit places its data meanwhile, its worker waits and
    loads the kernel: neither the client nor the worker compiles a kernel, and it trains."""
    fit = _run(FIT, str(tmp_path / "numba_cache"))
    assert fit["rc"] == 0 and fit["late"] and fit["accuracy"] > 0.9
    assert fit["client"] == [] and fit["workers"] == [[]]
    # one entry each: the two groups' hand-written signatures are the ones train_rows_elastic uses
    # (a mismatch would compile and cache a second, unused specialisation)
    assert len(fit["entries"]) == 13 and fit["entries"] == {name: 1 for name in fit["entries"]}


def test_a_fresh_cache_without_the_background_compile_still_trains(tmp_path):
    """DASK_DL_PRECOMPILE=0 on an empty cache: the worker's warm-up compiles in its child, as before."""
    fit = _run(FIT, str(tmp_path / "numba_cache"), DASK_DL_PRECOMPILE="0")
    assert fit["rc"] is None and not fit["late"] and fit["accuracy"] > 0.9
    assert fit["client"] == [] and fit["workers"] == [[]]  # compiled in the warm-up's child, loaded here


@pytest.fixture
def fresh(monkeypatch):
    """precompile with no record of a start in this process and Popen recorded, not run."""
    from dask_dl.nn import hogwild, precompile
    monkeypatch.setattr(precompile, "_STARTED", [])
    monkeypatch.setattr(hogwild, "is_cached", lambda kernel: False)
    monkeypatch.setattr(hogwild, "_cache_writable", lambda kernel: True)
    spawned = []

    class Popen:
        def __init__(self, argv, **kw):
            spawned.append((argv, kw))

        def wait(self, timeout=None):
            return 0
    monkeypatch.setattr(precompile.subprocess, "Popen", Popen)
    return precompile, spawned


def test_background_compile_starts_once_silently_and_without_recursion(fresh, monkeypatch):
    precompile, spawned = fresh
    monkeypatch.setattr(precompile, "_in_worker_process", lambda: False)
    monkeypatch.delenv("DASK_DL_PRECOMPILE", raising=False)
    assert precompile.start() is not None and precompile.start() is None
    assert len(spawned) == 1
    argv, kw = spawned[0]
    assert "compile_locked(1, early_helper=True)" in argv[-1]
    assert kw["stdout"] == kw["stderr"] == subprocess.DEVNULL
    assert kw["env"]["DASK_DL_PRECOMPILE"] == "0"  # its own imports start nothing


@pytest.mark.parametrize("case", ["off", "worker", "cached"])
def test_no_background_compile_when_off_in_a_worker_or_cached(fresh, monkeypatch, case):
    from dask_dl.nn import hogwild
    precompile, spawned = fresh
    monkeypatch.setattr(precompile, "_in_worker_process", lambda: case == "worker")
    monkeypatch.setenv("DASK_DL_PRECOMPILE", "0" if case == "off" else "1")
    if case == "cached":
        monkeypatch.setattr(hogwild, "is_cached", lambda kernel: True)
    assert precompile.start() is None and spawned == []


def test_a_dask_worker_process_is_recognised():
    from distributed import Client, LocalCluster
    from dask_dl.nn import precompile
    assert not precompile._in_worker_process()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            Client(cl) as c:
        assert list(c.run(precompile._in_worker_process).values()) == [True]


def test_warm_up_waits_for_a_compile_under_way_instead_of_compiling(monkeypatch):
    """While another process holds the family's lock, warm_up waits; finding the kernels cached
    then, it starts no child of its own."""
    from dask_dl.nn import hogwild
    held, release, state = threading.Event(), threading.Event(), {"cached": False}

    def compiler():
        with hogwild.compile_lock(1):
            held.set()
            release.wait(30)
            state["cached"] = True

    children = []
    monkeypatch.setattr(hogwild, "is_cached", lambda kernel: state["cached"])
    monkeypatch.setattr(hogwild, "_cache_writable", lambda kernel: True)
    monkeypatch.setattr(hogwild, "_compile_in_child", lambda *a: children.append(a) or True)
    monkeypatch.setattr(hogwild, "_warm_calls", lambda *a: None)
    other = threading.Thread(target=compiler)
    other.start()
    assert held.wait(30)
    waiter = threading.Thread(target=hogwild.warm_up, args=(1,))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()  # blocked on the lock
    release.set()
    waiter.join(30)
    other.join(30)
    assert not waiter.is_alive() and children == []


def test_bench_setup_table_gives_medians_and_the_ratio(bench_path):
    """benchmarks/bench_setup.py's summary (its runs are minutes of compiling: not run here)."""
    import bench_setup
    rows = [dict(src="/x/after", repeat=r, cache=kind, import_s=1.0, fit_s=fit, train_s=3.0, wall_s=fit + 2,
                 client_compiled=[]) for r, (kind, fit) in enumerate([("cold", 20.0), ("cold", 30.0), ("cold", 22.0),
                                                                         ("warm", 10.0), ("warm", 11.0), ("warm", 9.0)])]
    text = bench_setup.table(rows)
    assert "| /x/after | cold | 22.0 (20.0-30.0) |" in text
    assert "2.20x" in text  # median cold fit / median warm fit


def test_bench_kernels_measures_speed_and_tabulates(bench_path):
    """benchmarks/bench_kernels.py: a short speed run of this tree gives samples/s, and the table
    gives medians, ranges and the last tree over the first (its compile runs are not run here)."""
    import bench_kernels
    sps = bench_kernels.run_script(ROOT, bench_kernels.SPEED_SCRIPT, [bench_kernels.DATA, "dense", 300])
    assert sps["samples_per_s"] > 500
    rows = [dict(src=s, item="dense (samples/s)", value=v) for s, v in
            [("/a", 100.0), ("/b", 110.0), ("/a", 120.0), ("/b", 130.0), ("/a", 140.0), ("/b", 90.0)]]
    text = bench_kernels.table(rows)
    assert "| dense (samples/s) | 120 (100-140) | 110 (90-130) | 0.917 |" in text
