"""Compile the kernels into numba's on-disk cache before a fit needs them (issue 21).

On a fresh install numba's cache is empty and the per-sample kernel takes ~13 s of a core to
compile (~30 s before its row updates were inlined by LLVM rather than by numba, see optimizers): a
first fit took 4x a warm one (benchmarks/README.md, issue 21). Three things shorten the wait, none
changes the machine code:

* ``start()``: when a client imports ``dask_dl``, a silent background process compiles the default
  fit's kernel (per sample, float32) while the user reads data and the cluster starts; the fit's
  workers wait for it and load it.
* ``compile_locked``: with two cores, the kernel's callees are compiled in two processes at once
  (``HELPER_GROUP``, ``OWN_GROUP``), then the kernel, which loads them from the cache.
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

ENV = "DASK_DL_PRECOMPILE"
_STARTED: list = []  # the background compile of this process (at most one), or a None: not needed


def enabled() -> bool:
    """False when the user turned the background compile off (``DASK_DL_PRECOMPILE=0``)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _in_worker_process() -> bool:
    """Inside a Dask worker or a multiprocessing child: the client's process compiles, not each
    worker. A spawned child (a nanny's worker) first re-imports the user's script as ``__mp_main__``,
    before multiprocessing records its parent: a top-level ``import dask_dl`` runs then."""
    import multiprocessing
    if multiprocessing.parent_process() is not None:
        return True
    main = sys.modules.get("__main__")
    if getattr(main, "__name__", None) == "__mp_main__" or getattr(multiprocessing.current_process(),
                                                                    "_inheriting", False):
        return True
    worker = sys.modules.get("distributed.worker")
    return bool(worker is not None and len(getattr(worker.Worker, "_instances", ())))


def start() -> subprocess.Popen | None:
    """Compile the default fit's kernel (per sample, float32) into the on-disk cache in a silent
    background process, unless it is cached, uncacheable, turned off or already started here.
    The process is reaped by a daemon thread (no zombie); it finishes on its own if we exit first."""
    if _STARTED or not enabled() or _in_worker_process():
        return None
    from . import hogwild
    kernel = hogwild.fit_kernel(1)
    if hogwild.is_cached(kernel) or not hogwild._cache_writable(kernel):
        _STARTED.append(None)
        return None
    code = "from dask_dl.nn import precompile; precompile.compile_locked(1, early_helper=True)"
    argv, env = hogwild.child_command(code)
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _STARTED.append(proc)
    threading.Thread(target=proc.wait, name="dask_dl-precompile", daemon=True).start()
    return proc


# per sample, two processes first compile the kernels ``train_rows_elastic`` calls, in two groups of
# about equal compile time (benchmarks/README.md, issue 21) that never compile one kernel twice: each
# group's kernels call only kernels cached (by either process) before they get there, in this order;
# this process then compiles ``train_rows_elastic``, loading them all from the cache
HELPER_GROUP = ("_cap_columns", "_elastic_row_update", "_adadelta_row_sq", "_cap_norm", "forward_train",
                "output_error", "autoencoder_error", "_input_major_update")
OWN_GROUP = ("_dense_row_update", "_bias_step", "_gathered_row_update", "_unit_major_update")


def compile_locked(batch: int, early_helper: bool = False) -> None:
    """In a child process: compile the fit's kernel into the cache under the family's lock, unless
    another process cached it meanwhile; per sample with a second core, its callees in two
    processes first (``HELPER_GROUP`` in a helper process, ``OWN_GROUP`` here). ``early_helper``
    (the client's background compile, which nothing else runs yet): start the helper before taking
    the lock, so its interpreter and imports load while this process waits for it."""
    two_cores = batch == 1 and (os.cpu_count() or 1) > 1
    helper = _spawn_helper() if two_cores and early_helper else None
    try:
        from . import hogwild
        kernel = hogwild.fit_kernel(batch)
        with hogwild.compile_lock(batch):
            if hogwild.is_cached(kernel):
                return
            if two_cores:
                helper = helper or _spawn_helper()
                if helper is not None:
                    compile_group(OWN_GROUP)
            _finish(helper)
            hogwild._warm_calls(batch)
    finally:
        _finish(helper)


def under_way() -> bool:
    """Whether this process's background compile (``start``) is still running."""
    proc = _STARTED[0] if _STARTED else None
    return proc is not None and proc.poll() is None


def _spawn_helper() -> subprocess.Popen | None:
    """Start ``compile_group(HELPER_GROUP)`` in a helper process (None if it cannot start)."""
    from . import hogwild
    code = "from dask_dl.nn import precompile; precompile.compile_group(precompile.HELPER_GROUP)"
    argv, env = hogwild.child_command(code)
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


def wait_for_callees(timeout: float = 600.0) -> None:
    """Wait until this process's background compile has cached both groups, at most ``timeout``
    seconds: from then on one process compiles (``train_rows_elastic``) and a core is free. Each
    group compiles in order, so its last kernel cached means it is done."""
    import time
    from . import hogwild
    kernels = [_kernel(HELPER_GROUP[-1]), _kernel(OWN_GROUP[-1])]
    deadline = time.monotonic() + timeout
    while under_way() and time.monotonic() < deadline and not all(map(hogwild.is_cached, kernels)):
        time.sleep(0.1)


def _kernel(name: str):
    """The numba dispatcher of a kernel in ``_signatures``."""
    from . import activations, optimizers, sample_kernel
    return next(getattr(m, name) for m in (sample_kernel, activations, optimizers) if hasattr(m, name))


def compile_group(names: tuple) -> None:
    """Compile these float32 kernels by their signatures (``_signatures``) into the cache, unless the
    per-sample kernel is cached already (then a fit needs none of them)."""
    from . import hogwild
    if hogwild.is_cached(hogwild.fit_kernel(1)):
        return
    sigs = _signatures()
    for name in names:
        try:
            _kernel(name).compile(sigs[name])
        except Exception:  # noqa: BLE001 - a stale signature: the kernel compiles it as it types it
            pass


def _signatures() -> dict:
    """The float32 argument types ``train_rows_elastic`` (``backward_update`` inlined) passes to each
    kernel of the two groups (``fit``'s warm-up call gives the same; tests/test_precompile.py checks
    that nothing is compiled twice)."""
    from numba import types as t
    f, i, b = (t.Array(d, 1, "C") for d in (t.float32, t.int64, t.int8))
    f32 = t.float32
    optim = t.Tuple((t.int64,) + (f32,) * 7)  # (opt, l1, l2, rho, omr, eps, rate, mom)
    return {
        "_input_major_update": (t.UniTuple(f, 6), t.Tuple((f, f, f, b)), t.int64, t.boolean, i, t.int64, f,
                                t.boolean, t.boolean, optim, t.boolean, f32, f, f, f32),
        "forward_train": (f, f, t.UniTuple(i, 5), f, f, f, i, b, t.boolean),
        "output_error": (f, f, t.int64, t.int64, t.int64, t.int64, f32, f),
        "autoencoder_error": (f, f, t.int64, t.int64, t.int64, t.int64, f, f),
        "_unit_major_update": (t.UniTuple(f, 6), t.UniTuple(f, 2), t.UniTuple(i, 5), t.int64, f, f, i, t.int64, b,
                               t.UniTuple(f, 9), optim, f, t.UniTuple(t.boolean, 5)),
        "_gathered_row_update": (f, f, f, i, t.int64, f, f, f, f, f32, optim),
        "_cap_columns": (f, f, f, t.int64, f32, t.boolean),
        "_dense_row_update": (f, f, f, f, f32, t.int64) + (f32,) * 7 + (t.boolean, f),
        "_bias_step": (f, f, f, t.int64, f32, f32, f32, t.int64) + (f32,) * 5,
        "_elastic_row_update": (f, f, f, f, f, f32, t.int64) + (f32,) * 8 + (t.boolean,),
        "_adadelta_row_sq": (f, f, f, f, f, f32, f32, f32, f32, t.boolean),
        "_cap_norm": (f, f32),
    }


def main() -> None:
    """``python -m dask_dl.nn.precompile``: compile every kernel variant into the cache now."""
    from . import hogwild
    for batch in (1, 32):
        if not hogwild.is_cached(hogwild.fit_kernel(batch)):
            compile_locked(batch)
        print(f"dask_dl: {'per-sample' if batch == 1 else 'mini-batch'} kernels cached", flush=True)


if __name__ == "__main__":
    main()
