"""Compile the kernels into numba's on-disk cache before a fit needs them (issue 21).

On a fresh install numba's cache is empty and the per-sample kernel takes ~25 s to compile (mostly
numba's front end on ``backward_update``'s inlined row updates): a first fit took 4x a warm one
(benchmarks/README.md, issue 21). Three things shorten the wait, none changes the machine code:

* ``start()``: when the client first touches an estimator class (``dask_dl.DeepLearningClassifier``
  and co.), a silent background process compiles the default fit's kernel (per sample, float32)
  while the user prepares data and the cluster starts; the fit's workers wait for it and load.
* ``compile_locked``: the compiling process hands ``_input_major_update`` and the forward pass and
  loss kernels to a helper process and compiles ``backward_update`` meanwhile (two cores).
* ``python -m dask_dl.nn.precompile``: compile every kernel now (an image build, an install script).

``DASK_DL_PRECOMPILE=0`` turns the background compile off. It never starts inside a Dask worker or
another multiprocessing child, nor twice in a process; numba writes its cache files atomically and
the compile holds the kernel family's lock (``hogwild.compile_lock``), so a killed compile leaves
nothing half-written and workers never compile what it is compiling.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

from . import hogwild

ENV = "DASK_DL_PRECOMPILE"
_STARTED: list = []  # the background compile of this process (at most one), or a None: not needed


def enabled() -> bool:
    """False when the user turned the background compile off (``DASK_DL_PRECOMPILE=0``)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _in_worker_process() -> bool:
    """Inside a Dask worker or a multiprocessing child (a nanny's worker re-imports the user's
    ``__main__``): the client's process compiles, not each worker."""
    import multiprocessing
    if multiprocessing.parent_process() is not None:
        return True
    worker = sys.modules.get("distributed.worker")
    return bool(worker is not None and len(getattr(worker.Worker, "_instances", ())))


def start() -> subprocess.Popen | None:
    """Compile the default fit's kernel (per sample, float32) into the on-disk cache in a silent
    background process, unless it is cached, uncacheable, turned off or already started here.
    The process is reaped by a daemon thread (no zombie); it finishes on its own if we exit first."""
    if _STARTED or not enabled() or _in_worker_process():
        return None
    kernels = hogwild._warm_kernels(1, False)
    if hogwild._all_cached(kernels) or not hogwild._cache_writable(kernels[0]):
        _STARTED.append(None)
        return None
    argv, env = hogwild.child_command("from dask_dl.nn import precompile; precompile.compile_locked(1, False)")
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _STARTED.append(proc)
    threading.Thread(target=proc.wait, name="dask_dl-precompile", daemon=True).start()
    return proc


def compile_locked(batch: int, elastic: bool) -> None:
    """In a child process: compile the fit's kernels into the cache under the family's lock, unless
    another process cached them meanwhile. Per sample (and with a second core), a helper process
    compiles the callees that ``backward_update`` does not inline while this one compiles
    ``backward_update`` itself (20 of the ~26 s)."""
    kernels = hogwild._warm_kernels(batch, elastic)
    with hogwild.compile_lock(batch):
        if hogwild._all_cached(kernels):
            return
        helper = _spawn_callee_compile() if batch == 1 and (os.cpu_count() or 1) > 1 else None
        try:
            if batch == 1:
                _compile_backward_update()
            hogwild._warm_calls(batch, elastic)
        finally:
            _finish(helper)


def _spawn_callee_compile() -> subprocess.Popen | None:
    """Start ``compile_callees`` in a helper process (None if it cannot start)."""
    argv, env = hogwild.child_command("from dask_dl.nn import precompile; precompile.compile_callees()")
    try:
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _finish(helper: subprocess.Popen | None, timeout: float = 600.0) -> None:
    """Wait for the helper (it is done by now, unless the machine is busy); kill it past ``timeout``."""
    if helper is None:
        return
    try:
        helper.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()


def compile_callees() -> None:
    """In the helper: compile, in the order ``train_rows`` needs them last, the float32 kernels that
    ``backward_update`` and ``train_rows_elastic`` call (loaded from the cache there)."""
    from . import activations, sample_kernel
    sigs = _signatures()
    for module, name in ((sample_kernel, "_input_major_update"), (sample_kernel, "forward_train"),
                         (activations, "output_error"), (activations, "autoencoder_error")):
        getattr(module, name).compile(sigs[name])


def _compile_backward_update() -> None:
    """Compile ``backward_update`` for float32 by its signature, before ``train_rows`` needs it."""
    from .sample_kernel import backward_update
    try:
        backward_update.compile(_signatures()["backward_update"])
    except Exception:  # noqa: BLE001 - the signature went stale: train_rows compiles it as it types it
        pass


def _signatures() -> dict:
    """The float32 argument types ``train_rows`` passes to its non-inlined callees (``fit``'s
    warm-up call gives the same; tests/test_precompile.py checks that nothing is compiled twice)."""
    from numba import types as t
    f, i, b = (t.Array(d, 1, "C") for d in (t.float32, t.int64, t.int8))
    return {
        "backward_update": (t.UniTuple(f, 6), t.UniTuple(f, 2), t.UniTuple(i, 5), f, f, i, t.int64, b, f, i,
                            t.float64, t.UniTuple(f, 9)),
        "_input_major_update": (t.UniTuple(f, 6), t.Tuple((f, f, f, b)), t.int64, t.boolean, i, t.int64, f,
                                t.boolean, t.boolean, t.Tuple((t.int64,) + (t.float32,) * 7), t.boolean,
                                t.float32, f, f, t.float32),
        "forward_train": (f, f, t.UniTuple(i, 5), f, f, f, i, b, t.boolean),
        "output_error": (f, f, t.int64, t.int64, t.int64, t.int64, t.float32, f),
        "autoencoder_error": (f, f, t.int64, t.int64, t.int64, t.int64, f, f),
    }


def main() -> None:
    """``python -m dask_dl.nn.precompile``: compile every kernel variant into the cache now."""
    for batch, elastic in ((1, True), (32, True)):
        if not hogwild._all_cached(hogwild._warm_kernels(batch, elastic)):
            compile_locked(batch, elastic)
        print(f"dask_dl: {'per-sample' if batch == 1 else 'mini-batch'} kernels cached", flush=True)


if __name__ == "__main__":
    main()
