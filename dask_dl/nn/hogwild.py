"""Train one shard: k plain Python threads run the nogil kernel on ONE shared state vector, lock-free.

This is H2O's node-local Hogwild!: races between threads are intended. Threads, not numba's
``parallel=True``: numba's default threading layer aborts when parallel code is entered from two
threads at once (two Dask worker threads would do exactly that). With ``thread_local_models``
(per sample, opt-in) each thread trains its own copy instead and the shard ends with their mean
weighted by rows: no two cores write the same weights, and no result depends on thread timing.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from .batch_kernel import train_batches, train_batches_elastic
from .network import NetworkLayout
from .sample_kernel import train_rows, train_rows_elastic
from .settings import ADADELTA, CROSS_ENTROPY, HP_EA, HP_N0, HP_NSTEP, N_HP, KernelSettings


_BLAS_LIMIT = None


def one_blas_thread() -> None:
    """Mini-batch HOGWILD! threads each call BLAS: cap this process's BLAS pools at one thread so k
    HOGWILD! threads use k cores, not k x cores (set once, kept for the worker's life)."""
    global _BLAS_LIMIT
    if _BLAS_LIMIT is None:
        # numba's np.dot calls scipy's BLAS (scipy.linalg.cython_blas), a library of its own beside
        # numpy's: load it first, or threadpoolctl cannot see it and its pool keeps one thread per
        # core, spinning against the HOGWILD! threads
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import threadpool_limits
        _BLAS_LIMIT = threadpool_limits(limits=1, user_api="blas")


def proportional_split(total: int, weights) -> np.ndarray:
    """Integers proportional to ``weights`` that sum exactly to ``total`` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    quota = total * w / w.sum()
    out = np.floor(quota).astype(np.int64)
    out[np.argsort(out - quota)[: int(total - out.sum())]] += 1
    return out


def thread_seed(*parts: int) -> int:
    """A 31-bit seed for numba's per-thread RNG, derived from (fit seed, iteration, worker, thread...)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def segment_bounds(n_rows: int, segment: tuple) -> tuple[int, int]:
    """The rows [lo, hi) of a pass's permutation that part i of P walks (``segment`` = (i, P));
    the whole pass where there are fewer rows than parts."""
    i, parts = segment
    lo, hi = n_rows * i // parts, n_rows * (i + 1) // parts
    return (lo, hi) if hi > lo else (0, n_rows)


def visiting_order(n_rows: int, n_samples: int, start: int, seed: int, segment: tuple = (0, 1)) -> np.ndarray:
    """Row indices for ``n_samples`` draws from a stream of passes over ``n_rows`` rows, starting at
    stream position ``start``: every pass visits every row once, so an epoch sees each row once
    however it is cut into iterations. Each pass is a fresh random permutation, as H2O draws a
    fresh random order of each chunk at every (sub-epoch) iteration: one order repeated every pass
    let the validation logloss plateau higher on 10-epoch fits (benchmarks/README.md, issue 17).
    ``segment`` (i, P): the stream of the i-th of P equal parts of each pass's permutation, so that
    P workers holding the same rows (replicated) share every pass exactly, epoch after epoch."""
    lo, hi = segment_bounds(n_rows, segment)
    length = hi - lo
    out = np.empty(int(n_samples), dtype=np.int64)
    filled, pos = 0, int(start)
    while filled < n_samples:
        p, offset = divmod(pos, length)
        order = np.random.default_rng([seed, p]).permutation(n_rows)[lo:hi]
        take = min(length - offset, int(n_samples) - filled)
        out[filled:filled + take] = order[offset:offset + take]
        filled += take
        pos += take
    return out


def shard_plan(sizes, *, n_samples: int, n_threads: int, position: float, order_seed: int,
               segment: tuple = (0, 1)) -> list:
    """Which rows each HOGWILD! thread trains: [(block, [rows of thread 0, rows of thread 1, ...])] for
    ``n_samples`` draws over blocks of ``sizes`` rows, split in proportion to the blocks' sizes. Each
    block is cut into one contiguous slice per thread; a thread streams passes over its slice
    (``visiting_order``, seeded from ``order_seed``; ``segment``: its part of each pass), resuming
    ``position`` passes in."""
    sizes = np.asarray(sizes, dtype=np.int64)
    plan = []
    for bi, (n, m) in enumerate(zip(sizes, proportional_split(n_samples, sizes))):
        if m == 0:
            continue
        n, m = int(n), int(m)
        k = int(max(1, min(n_threads, n, m)))
        rows = []
        for t in range(k):
            lo, hi = n * t // k, n * (t + 1) // k
            m_t = m * (t + 1) // k - m * t // k
            seg_lo, seg_hi = segment_bounds(hi - lo, segment)
            start = int(round(position * (seg_hi - seg_lo)))
            rows.append(lo + visiting_order(hi - lo, m_t, start, thread_seed(order_seed, bi, t, k), segment))
        plan.append((bi, rows))
    return plan


def train_shard(state: np.ndarray, layout: NetworkLayout, blocks: list, *, n_samples: int,
                settings: KernelSettings, n_threads: int, rng_seeds: tuple, n_seen: float,
                position: float = 0.0, order_seed: int = 0, center: np.ndarray | None = None,
                elastic_strength: float = 0.0, segment: tuple = (0, 1)) -> int:
    """Train ``state`` in place on ``n_samples`` draws from ``blocks`` (``block_arrays``) with
    ``n_threads`` HOGWILD! threads; ``n_seen`` samples were trained before (the learning-rate
    schedule). ``rng_seeds`` seed each thread's dropout stream (with the block and thread),
    ``order_seed`` the row visiting order; ``position`` is how many passes over these blocks earlier
    iterations made (each thread resumes its slice's stream there; ``segment``: the part of each
    pass this worker walks, ``visiting_order``). With ``center`` every gradient
    gets ``elastic_strength * (state - center)`` (elastic averaging). Returns the samples trained."""
    sizes = [len(b[1]) for b in blocks]
    if sum(sizes) == 0 or n_samples <= 0:
        return 0
    kernel = _pick_kernel(layout, settings, elastic=center is not None)
    hp = settings.hp.astype(state.dtype)
    hp[HP_EA] = elastic_strength if center is not None else 0.0
    plan = shard_plan(sizes, n_samples=n_samples, n_threads=n_threads, position=position, order_seed=order_seed,
                      segment=segment)
    # thread_local_models: thread t > 0 trains copies[t] (thread 0 the state itself) in every block;
    # the copies are averaged into the state, weighted by the rows each thread trained, at the end
    k_max = max((len(rows) for _, rows in plan), default=1)
    copies = [state] + ([state.copy() for _ in range(k_max - 1)] if settings.thread_copies else [state] * (k_max - 1))
    net = layout.kernel_arrays()
    # thread t's kernel calls, one per block, in block order: the threads meet once per shard, not
    # at every block (a join per block makes the faster thread wait for the slower one)
    thread_jobs: list = [[] for _ in range(k_max)]
    trained = np.zeros(k_max, dtype=np.int64)
    done = 0
    for bi, thread_rows in plan:
        X, y, w, o = block_arrays(blocks[bi])
        for t, rows in enumerate(thread_rows):
            hp_t = hp.copy()
            hp_t[HP_N0] = n_seen + done  # where this block starts in the shard's sample count
            hp_t[HP_NSTEP] = len(thread_rows)  # every thread's step advances the shared count by ~k
            ip = settings.int_params(thread_seed(*rng_seeds, bi, t), input_major=layout.input_major)
            lead = (copies[t],) if center is None else (copies[t], center)
            thread_jobs[t].append((*lead, net, X, y, w, o, rows, hp_t, ip))
            trained[t] += len(rows)
        done += sum(len(r) for r in thread_rows)
    _run_threads(kernel, [jobs for jobs in thread_jobs if jobs])
    if settings.thread_copies and k_max > 1 and done > 0:
        state[:] = weighted_mean_of(copies, trained)
    return done


_NONE = np.zeros(0, dtype=np.float32)


def block_arrays(block: tuple) -> tuple:
    """(X, y, w, o) of a block given as (X, y) or (X, y, weights, offsets): empty arrays stand for
    no weights (1 each) and no offsets."""
    if len(block) == 4:
        return block
    X, y = block
    return X, y, _NONE.astype(X.dtype), _NONE.astype(X.dtype)


def _pick_kernel(layout: NetworkLayout, settings: KernelSettings, elastic: bool):
    """The kernel for this layout and batch size (refusing the combinations it cannot train)."""
    if layout.input_major and not settings.fast:
        raise ValueError("an input-major first layer needs fast_mode (see TrainingConfig.input_major_first_layer)")
    if settings.batch > 1:
        if layout.input_major:
            raise ValueError("the mini-batch kernel needs a unit-major layout (input_major=False)")
        one_blas_thread()
        return train_batches_elastic if elastic else train_batches
    return train_rows_elastic if elastic else train_rows


def _run_threads(kernel, thread_jobs: list) -> None:
    """Run each list of kernel calls in ``thread_jobs`` in order on a thread of its own (the first
    on the calling thread) and wait for all; a kernel's error is raised here, after the join."""
    errors: list = []

    def walk(jobs):
        try:
            for job in jobs:
                kernel(*job)
        except BaseException as err:  # noqa: BLE001 - re-raised on the calling thread
            errors.append(err)

    threads = [threading.Thread(target=walk, args=(jobs,)) for jobs in thread_jobs[1:]]
    for th in threads:
        th.start()
    walk(thread_jobs[0] if thread_jobs else [])
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def weighted_mean_of(states: list, rows) -> np.ndarray:
    """The mean of ``states`` weighted by the ``rows`` each trained, in their dtype (a new array).
    A state that trained nothing counts for nothing (the first must have trained). Thread copies
    here and the workers' copies in the reduction tree (cluster.tasks.weighted_mean) average alike."""
    w = np.asarray(rows, dtype=np.float64) / float(np.sum(rows))
    out = states[0] * states[0].dtype.type(w[0])
    for s, wt in zip(states[1:], w[1:]):
        if wt > 0:
            out += s * states[0].dtype.type(wt)
    return out


def warm_up(batch: int = 1) -> None:
    """Compile (or load from numba's cache) the float32 kernel a fit will run, in this process: the
    per-sample or the ``batch``-row kernel (plain and elastic-averaging fits run the same one).
    Kernels are compiled per argument types, not per activation or loss, so one tiny call does it.

    A kernel that is neither loaded here nor in numba's on-disk cache is compiled in a child process
    first (``_compile_in_child``), and this process loads the cached machine code: compiling leaves
    ~170 MiB of LLVM's memory in the compiling process (a Dask worker would carry it for its life
    and pause under a small memory_limit), loading only the code (benchmarks/README.md, issue 16).
    A compile already under way (the client's background ``precompile``, another worker's child)
    is waited for first, so no worker starts a child only to wait on the lock (issue 21)."""
    kernel = fit_kernel(batch)
    if not is_cached(kernel) and _cache_writable(kernel):
        wait_for_compiler(batch)
        if not is_cached(kernel):
            _compile_in_child(batch)
    compiled = not is_cached(kernel)
    _warm_calls(batch)
    if compiled:  # compiled here after all (no usable cache): hand glibc's freed pages back
        _malloc_trim()


def is_cached(kernel) -> bool:
    """Whether ``kernel`` is loaded in this process or in numba's on-disk cache."""
    return bool(kernel.overloads) or _in_disk_cache(kernel)


def fit_kernel(batch: int):
    """The numba dispatcher a fit with this batch size runs (``_pick_kernel``: the plain kernels
    are Python wrappers around it)."""
    return train_batches_elastic if batch > 1 else train_rows_elastic


def _warm_calls(batch: int) -> None:
    """One tiny ``train_shard``: numba loads (or compiles) the fit's kernel for float32."""
    from .network import build_layout, initial_state
    layout = build_layout(3, [2], "Rectifier", 2, True, 0.0, [0.0])
    state = initial_state(layout, 1)
    X = np.zeros((2, 3), dtype=np.float32)
    y = np.zeros(2, dtype=np.float32)
    settings = KernelSettings(hp=np.zeros(N_HP), opt=ADADELTA, fast=True, loss=CROSS_ENTROPY, batch=batch)
    run = dict(n_samples=2, settings=settings, n_threads=1, rng_seeds=(1,), n_seen=0.0)
    train_shard(state, layout, [(X, y)], **run)


def _in_disk_cache(kernel) -> bool:
    """Whether numba's on-disk cache holds ``kernel`` compiled from this source for this CPU (read
    from the cache's index: nothing is compiled or loaded). numba internals: False if they moved."""
    try:
        cache = kernel._cache
        codegen = kernel.targetctx.codegen()
        index = cache._cache_file._load_index()
        return any(cache._index_key(key[0], codegen) == key for key in index)
    except Exception:  # noqa: BLE001 - no cache, or numba changed: compile as before
        return False


def _cache_writable(kernel) -> bool:
    """Whether numba can cache ``kernel`` on disk (else a child's compilation would be lost)."""
    import os
    path = getattr(getattr(kernel, "_cache", None), "cache_path", None)
    return bool(path) and os.access(path if os.path.isdir(path) else os.path.dirname(path), os.W_OK)


def _compile_in_child(batch: int) -> bool:
    """Compile the fit's kernel into numba's on-disk cache in a short-lived child process (one at a
    time per kernel family and cache directory, so workers starting together compile once; the
    child is ``precompile.compile_locked``). True if it succeeded."""
    import subprocess
    argv, env = child_command(f"from dask_dl.nn import precompile; precompile.compile_locked({int(batch)})")
    try:
        return subprocess.run(argv, env=env, capture_output=True, timeout=1800).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def child_command(code: str) -> tuple:
    """(argv, env) of a ``python -c code`` child that imports this checkout's dask_dl and starts no
    background compile of its own (``DASK_DL_PRECOMPILE=0``)."""
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, DASK_DL_PRECOMPILE="0",
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    return [sys.executable, "-c", code], env


def compile_lock_path(batch: int) -> str:
    """The lock file of a kernel family (per sample, mini-batch) in numba's cache directory: the two
    families compile independently, each at most once at a time."""
    import os
    family = "batch" if batch > 1 else "sample"
    return os.path.join(train_rows_elastic._cache.cache_path, f"dask_dl_warm_up_{family}.lock")


@contextlib.contextmanager
def compile_lock(batch: int, timeout: float = 1800.0):
    """Hold the kernel family's compile lock (an exclusive ``flock``), waiting at most ``timeout``
    seconds for it (then go on without it: at worst two processes compile the same kernel)."""
    import os
    import time
    os.makedirs(train_rows_elastic._cache.cache_path, exist_ok=True)
    with open(compile_lock_path(batch), "a") as lock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            yield
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        yield


def wait_for_compiler(batch: int, timeout: float = 1800.0) -> None:
    """Return once no process compiles this kernel family into the cache (at once if none does)."""
    import os
    if os.path.exists(compile_lock_path(batch)):
        with compile_lock(batch, timeout):
            pass


def _malloc_trim() -> None:
    """Return the C heap's free pages to the system (glibc only; elsewhere nothing)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
