"""Per-core hardware ceiling of per-sample training (mini_batch_size=1), MNIST default network.

    python benchmarks/bench_ceiling.py [--repeats 5] [--dram-mb 256] [--active 0.5] [--rows 60000]
    python benchmarks/bench_ceiling.py --repeats 1 --seconds 0.002 --dram-mb 8 --rows 500   # smoke size

How fast could ONE core train H2O's default MNIST network (784 pixels, of which the columns that are
constant on the training set are dropped -> 717 inputs; 200, 200 Rectifier; 10 softmax; ADADELTA;
fast_mode) if the per-sample kernel ran at the speed of the hardware? Two parts:

1. Measured on one thread with numba loops (float32, fastmath, nothing allocated in the timed
   loop, warmed up, best of --repeats):
     read            sum of an array                                  bytes = 4 n
     read+write      a[i] = a[i] * s + t in place                     bytes = 2 * 4 n
     adadelta triad  the ADADELTA update of w, s1, s2 row by row      bytes = 2 * 3 * 4 n
                     (sqrt and divide, a row of activations as input)
     kernel update   dask_dl's own row update at H2O's defaults (_adadelta_row_sq) on the same
                     rows (same bytes as the triad)
   each at an L2-resident working set (--l2-kb), the network's size (weights + S1 + S2 = 12 bytes
   per weight, ~2.2 MB: L3 on most x86 cores) and a DRAM-sized one (--dram-mb); plus the GEMV
   y = W x for the first layer's W (200 x 717) as a numba loop and as numpy's BLAS (one thread).
2. A cost model of one training sample, per layer: weights read by the forward pass, read by the
   backward error propagation (into hidden layers only), and read+written by the update (W, S1, S2),
   and FLOPs, for two input encodings:
     dense   standardize=True: no input is zero, every weight of an active unit moves
     sparse  sparse=True: zero pixels stay zero; the kernel's forward stays a dense dot (faster than a
             gather) but fast_mode updates only the non-zero inputs' weights (when fewer than half
             are non-zero: gathered into contiguous scratch, updated vectorised, scattered back)
   Hidden units with a zero gradient (inactive ReLU: --active is the assumed active fraction) are
   skipped entirely by fast_mode; the output layer always updates. As in the kernel, zero *hidden*
   inputs are not skipped inside a row (that is a select, not a branch), so their bytes still move.
   Bytes are what crosses from L3: the backward propagation re-reads rows the update streams right
   after (L1 hits), so it costs FLOPs but no L3 bytes; a sparse gather moves whole 64-byte lines.
   Ceilings in samples/s: memory = triad bandwidth at the network's size / bytes, compute = best
   GEMV rate / FLOPs; the ceiling is the smaller one (the binding limit). The compute ceiling counts
   the update's FLOPs at the GEMV rate too; "phase sum" instead gives each phase of a sample the
   speed of the microbenchmark that *is* that phase and adds the times (the phases run one after
   the other): forward at max(bytes / read bandwidth, FLOPs / GEMV), backward at the GEMV rate,
   update at the triad bandwidth (its divides and square roots are in that measurement).

The machine is noisy (other jobs, shared caches): compare numbers from the same run only.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Callable

import numpy as np
import pandas as pd
from numba import njit

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DASK_DL_DATA") or os.path.join(HERE, "..", "..", "shared", "data")

F32 = 4                # bytes per float32
LINE = 64              # bytes per cache line
UPDATE_FLOPS = 14      # per weight, as the kernel's row loop at H2O's defaults (_adadelta_row_sq) computes
#                        it: grad = g*a (1), eg = rho*s1 + (omr*g^2)*a^2 (3, a^2 once per row of data),
#                        eta = sqrt((s2+eps)/(eg+eps)) (4, div and sqrt counted as 1 each), dx = eta*grad
#                        (1), s2 = rho*s2 + omr*dx^2 (4), w - dx (1)
BIAS_FLOPS = 12        # per updated unit (bias ADADELTA from the unit's mean squared gradient)
RHO, EPS = 0.99, 1e-8  # H2O's ADADELTA defaults


# ---------------------------------------------------------------------------------------------------
# measured kernels: each runs `passes` times over its arrays inside one jitted call

@njit(fastmath=True, cache=True, error_model="numpy")
def _read(a, passes, tiny):
    """Sum of a, `passes` times; one element changes between passes so nothing can be hoisted."""
    n = a.shape[0]
    acc = a[0] - a[0]
    for p in range(passes):
        s = a[0] - a[0]
        for i in range(n):
            s += a[i]
        acc += s
        a[p % n] += s * tiny
    return acc


@njit(fastmath=True, cache=True, error_model="numpy")
def _read_write(a, passes, s, t):
    """a[i] = a[i] * s + t in place (one read and one write per element)."""
    n = a.shape[0]
    for _ in range(passes):
        for i in range(n):
            a[i] = a[i] * s + t
    return a[0]


@njit(fastmath=True, cache=True, error_model="numpy")
def _triad(w, s1, s2, prev, g, rho, omr, eps, passes):
    """The ADADELTA update (H2O's, as in dask_dl.nn.optimizers._step) on rows of len(prev) weights: w, s1, s2 are
    each read and written once per element, prev (one row of activations) stays in L1."""
    n_in = prev.shape[0]
    rows = w.shape[0] // n_in
    gsq = g - g
    for _ in range(passes):
        for r in range(rows):
            wr = w[r * n_in:(r + 1) * n_in]
            s1r = s1[r * n_in:(r + 1) * n_in]
            s2r = s2[r * n_in:(r + 1) * n_in]
            for i in range(n_in):
                grad = g * prev[i]
                eg = rho * s1r[i] + omr * grad * grad
                eta = np.sqrt((s2r[i] + eps) / (eg + eps))
                dx = eta * grad
                s2r[i] = rho * s2r[i] + omr * dx * dx
                s1r[i] = eg
                wr[i] = wr[i] - dx
                gsq += grad * grad
    return gsq


def _make_kernel_update() -> Callable | None:
    """The project's own per-row update at H2O's defaults (dask_dl.nn.optimizers._adadelta_row_sq, the
    loop the first layer runs on standardized inputs: no zero input, no L1/L2) in the triad's loop;
    the inputs squared are computed once per pass, as the kernel does once per row of data.
    Not cached: numba's cache would not notice edits to optimizers.py. None when it cannot be built."""
    try:
        from dask_dl.nn.optimizers import _adadelta_row_sq as row_update
    except Exception:  # noqa: BLE001 - the measurement is optional
        return None
    from dask_dl.nn.codegen import estimate_rsqrt

    @njit(fastmath=True, error_model="numpy")
    def kernel_update(w, s1, s2, prev, g, rho, omr, eps, passes):
        estimate_rsqrt()  # as the kernels do (the attribute is per compiled function)
        n_in = prev.shape[0]
        rows = w.shape[0] // n_in
        gsq = g - g
        prev_sq = np.empty_like(prev)
        for _ in range(passes):
            ssq = g - g
            for i in range(n_in):
                prev_sq[i] = prev[i] * prev[i]
                ssq += prev_sq[i]
            for r in range(rows):
                row_update(w[r * n_in:(r + 1) * n_in], s1[r * n_in:(r + 1) * n_in], s2[r * n_in:(r + 1) * n_in],
                           prev, prev_sq, g, rho, omr, eps, False)
                gsq += g * g * ssq
        return gsq
    return kernel_update


@njit(fastmath=True, cache=True, error_model="numpy")
def _gemv(W, x, y, reps, tiny):
    """y = W x, one row per pass over x, `reps` times (x changes a little between reps)."""
    rows, cols = W.shape
    for r in range(reps):
        for j in range(rows):
            wj = W[j]
            z = y[0] - y[0]
            for i in range(cols):
                z += wj[i] * x[i]
            y[j] = z
        x[r % cols] += y[r % rows] * tiny
    return y[0]


def _make_kernel_gemv() -> Callable | None:
    """y = W x by the kernel's own forward product (dask_dl.nn.sample_kernel._rows_times: four rows per
    pass over x), `reps` times. Not cached, as _make_kernel_update. None when it cannot be built."""
    try:
        from dask_dl.nn.sample_kernel import _rows_times as rows_times
    except Exception:  # noqa: BLE001 - the measurement is optional
        return None

    @njit(fastmath=True, error_model="numpy")
    def kernel_gemv(W, x, y, reps, tiny):
        rows, cols = W.shape
        flat = W.ravel()
        b = y * (tiny - tiny)
        for r in range(reps):
            rows_times(flat, b, x, y)
            x[r % cols] += y[r % rows] * tiny
        return y[0]
    return kernel_gemv


# ---------------------------------------------------------------------------------------------------
# timing

def best_time(run: Callable[[int], object], repeats: int, seconds: float) -> tuple[int, float]:
    """(passes, best seconds) of run(passes): warmed up, then `passes` calibrated so that one timed
    call lasts about `seconds`, then the best of `repeats` calls (the least disturbed by other jobs)."""
    run(1)  # compile (or load from cache), page the arrays in, warm the caches
    n = 1
    while True:
        t0 = time.perf_counter()
        run(n)
        t = time.perf_counter() - t0
        if t >= seconds / 8 or n >= 1 << 30:
            break
        n *= 4
    n = max(1, int(round(n * seconds / t)))
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - t0)
    return n, best


def measure_bandwidths(levels: dict[str, int], n_in: int, repeats: int, seconds: float) -> list[dict]:
    """GB/s of read, read+write, the ADADELTA triad and the kernel's own update at each working set.

    Why all three: the forward pass is a read stream, the update a 3-array read+write stream with a
    divide and a sqrt per element; whether the update is memory- or divide-bound shows in the gap
    between read+write and triad at the same size."""
    rng = np.random.default_rng(0)
    f = np.float32
    prev = rng.random(n_in, dtype=np.float32)
    kernel_update = _make_kernel_update()
    out = []
    for level, ws in levels.items():
        a = np.ones(max(16, ws // F32), dtype=np.float32)
        passes, t = best_time(lambda p: _read(a, p, f(1e-30)), repeats, seconds)
        out.append(dict(measure="read", level=level, working_set=a.nbytes, rate=a.nbytes * passes / t / 1e9))
        passes, t = best_time(lambda p: _read_write(a, p, f(0.5), f(0.5)), repeats, seconds)
        out.append(dict(measure="read+write", level=level, working_set=a.nbytes,
                        rate=2 * a.nbytes * passes / t / 1e9))
        del a
        rows = max(1, ws // (3 * F32 * n_in))
        w = rng.standard_normal(rows * n_in, dtype=np.float32) * f(0.01)
        s1 = np.zeros_like(w)
        s2 = np.zeros_like(w)
        args = (prev, f(0.01), f(RHO), f(1 - RHO), f(EPS))
        passes, t = best_time(lambda p: _triad(w, s1, s2, *args, p), repeats, seconds)
        out.append(dict(measure="adadelta triad", level=level, working_set=3 * w.nbytes,
                        rate=2 * 3 * w.nbytes * passes / t / 1e9))
        if kernel_update is not None:
            try:
                passes, t = best_time(lambda p: kernel_update(w, s1, s2, *args, p), repeats, seconds)
            except Exception as err:  # noqa: BLE001 - the kernel changed its signature: skip, say so
                print(f"kernel update not measured: {type(err).__name__}: {str(err).splitlines()[0]}")
                kernel_update = None
            else:
                out.append(dict(measure="kernel _adadelta_row_sq", level=level, working_set=3 * w.nbytes,
                                rate=2 * 3 * w.nbytes * passes / t / 1e9))
        del w, s1, s2
    for r in out:
        r["unit"] = "GB/s"
    return out


def measure_gemv(rows: int, cols: int, repeats: int, seconds: float) -> list[dict]:
    """GFLOP/s of y = W x (W rows x cols, float32): a one-row-per-pass numba loop, the kernel's own
    four-rows-per-pass product (the forward pass's), and numpy's BLAS limited to one thread (with
    threadpoolctl when installed), Python call overhead included."""
    rng = np.random.default_rng(1)
    W = rng.standard_normal((rows, cols), dtype=np.float32)
    x = rng.standard_normal(cols, dtype=np.float32)
    y = np.zeros(rows, dtype=np.float32)
    flops = 2.0 * rows * cols
    where = f"{rows}x{cols} ({W.nbytes // 1024} KiB)"
    passes, t = best_time(lambda p: _gemv(W, x, y, p, np.float32(1e-30)), repeats, seconds)
    out = [dict(measure="gemv numba loop", level=where, working_set=W.nbytes, rate=flops * passes / t / 1e9)]
    kernel_gemv = _make_kernel_gemv()
    if kernel_gemv is not None:
        passes, t = best_time(lambda p: kernel_gemv(W, x, y, p, np.float32(1e-30)), repeats, seconds)
        out.append(dict(measure="gemv kernel _rows_times", level=where, working_set=W.nbytes,
                        rate=flops * passes / t / 1e9))

    def blas(p: int) -> None:
        for _ in range(p):
            np.dot(W, x, out=y)

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # not a dependency: then BLAS may use every core
        threadpool_limits = None
        where += ", BLAS threads not limited"
    if threadpool_limits is not None:
        with threadpool_limits(limits=1, user_api="blas"):
            passes, t = best_time(blas, repeats, seconds)
    else:
        passes, t = best_time(blas, repeats, seconds)
    out.append(dict(measure="gemv numpy BLAS", level=where, working_set=W.nbytes, rate=flops * passes / t / 1e9))
    for r in out:
        r["unit"] = "GFLOP/s"
    return out


# ---------------------------------------------------------------------------------------------------
# the data and the cost model

def mnist_inputs(rows: int | None) -> dict:
    """What the first layer sees on MNIST: inputs left after dropping the columns that are constant on
    the whole training set, and, on the first `rows` rows, the mean fraction of non-zero inputs, the
    mean number of inputs the sparse kernel path touches per row (all of them on rows where half or
    more are non-zero) and the mean number of 64-byte lines of a weight row those touch."""
    tr = pd.read_parquet(os.path.join(DATA, "mnist", "train.parquet"))
    X = tr.drop(columns=["C785"]).to_numpy()
    used = X.min(axis=0) != X.max(axis=0)  # zero variance on the training set
    n_in = int(used.sum())
    nz = X[:rows, used] != 0 if rows else X[:, used] != 0
    nnz = nz.sum(axis=1)
    sparse_path = 2 * nnz < n_in  # the kernel's switch (forward_train / backward_update)
    touched = nz | ~sparse_path[:, None]
    # lines of one row of W touched, averaged over the 16 possible alignments of the row's start
    lines = []
    width = -(-(n_in + 15) // 16) * 16
    for o in range(16):
        padded = np.zeros((touched.shape[0], width), dtype=bool)
        padded[:, o:o + n_in] = touched
        lines.append(padded.reshape(touched.shape[0], -1, 16).any(axis=2).sum(axis=1).mean())
    return dict(n_in=n_in, rows=int(nz.shape[0]), nonzero_fraction=float(nnz.mean() / n_in),
                sparse_path_fraction=float(sparse_path.mean()),
                sparse_inputs=float(np.where(sparse_path, nnz, n_in).mean()), sparse_lines=float(np.mean(lines)))


def cost_model(units: list[int], active: float, first_inputs: float | None = None,
               first_lines: float | None = None) -> pd.DataFrame:
    """Weights touched, L3 bytes and FLOPs of ONE training sample, per weight layer.

    units: [inputs, hidden..., outputs]; active: fraction of hidden units with a non-zero gradient
    (fast_mode skips the others' backward and update); first_inputs / first_lines: for the sparse
    encoding, the mean number of first-layer inputs the kernel touches per row and the 64-byte lines
    of a weight row they fall in (None: dense, every input)."""
    out = []
    n_layers = len(units) - 1
    for l in range(1, n_layers + 1):
        n_in, n_out = units[l - 1], units[l]
        gather = l == 1 and first_inputs is not None
        k = first_inputs if gather else n_in                       # inputs touched per row
        row_bytes = first_lines * LINE if gather else F32 * n_in   # bytes of one row of one array
        rows_upd = n_out if l == n_layers else active * n_out      # units whose gradient is not 0
        fwd_w = n_out * n_in  # the forward dot is dense even for sparse rows (it beats a gather)
        bwd_w = rows_upd * n_in if l > 1 else 0.0  # error into a hidden layer, pre-update weights
        upd_w = rows_upd * k
        fwd_bytes = n_out * F32 * n_in + F32 * n_out                # W rows + biases
        upd_bytes = 2 * 3 * (rows_upd * row_bytes + F32 * rows_upd)  # W, S1, S2 (+ bias state) r+w
        flops = 2 * fwd_w + 2 * bwd_w + UPDATE_FLOPS * upd_w + BIAS_FLOPS * rows_upd
        out.append(dict(layer=f"{l}: {n_in}->{n_out}", fwd_weights=fwd_w, bwd_weights=bwd_w, upd_weights=upd_w,
                        fwd_bytes=fwd_bytes, bwd_bytes=F32 * bwd_w, upd_bytes=upd_bytes,
                        l3_bytes=fwd_bytes + upd_bytes, fwd_flops=2 * fwd_w, bwd_flops=2 * bwd_w,
                        upd_flops=UPDATE_FLOPS * upd_w + BIAS_FLOPS * rows_upd, flops=flops))
    return pd.DataFrame(out)


def ceilings(cost: pd.DataFrame, read_bw: float, triad_bw: float, gemv: float) -> dict:
    """samples/s ceilings of one core from a cost model (bandwidths in GB/s, GEMV in GFLOP/s)."""
    s = cost.sum(numeric_only=True)
    mem = triad_bw * 1e9 / s["l3_bytes"]
    comp = gemv * 1e9 / s["flops"]
    phase = (max(s["fwd_bytes"] / (read_bw * 1e9), s["fwd_flops"] / (gemv * 1e9))
             + s["bwd_flops"] / (gemv * 1e9) + s["upd_bytes"] / (triad_bw * 1e9))
    return dict(bytes_per_sample=s["l3_bytes"], flops_per_sample=s["flops"], memory_ceiling=mem,
                compute_ceiling=comp, ceiling=min(mem, comp),
                binding="memory (triad)" if mem <= comp else "compute (GEMV)", phase_sum=1.0 / phase)


# ---------------------------------------------------------------------------------------------------

def main(argv: list | None = None) -> pd.DataFrame:
    """Measure, model, print; returns one long table (section, item, where, value, unit) holding the
    measured rates, the per-sample costs and the ceilings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (best is kept)")
    ap.add_argument("--seconds", type=float, default=0.05, help="target length of one timed call")
    ap.add_argument("--l2-kb", type=float, default=256, help="L2-resident working set (KiB)")
    ap.add_argument("--dram-mb", type=float, default=256, help="DRAM working set (MiB)")
    ap.add_argument("--active", type=float, default=0.5, help="assumed fraction of active ReLU units")
    ap.add_argument("--rows", type=int, default=None, help="MNIST rows for the non-zero fraction (default all)")
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    args = ap.parse_args(argv)
    if not 0.0 <= args.active <= 1.0:
        ap.error("--active must lie in [0, 1]")

    data = mnist_inputs(args.rows)
    n_in = data["n_in"]
    units = [n_in, *args.hidden, 10]
    n_w = sum(units[i] * units[i + 1] for i in range(len(units) - 1))
    n_b = sum(units[1:])
    net_bytes = 3 * F32 * (n_w + n_b)  # W + S1 + S2 and the biases' three
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; one thread. "
          f"network {'-'.join(map(str, units))}: {n_w} weights, {n_b} biases, weights+state "
          f"{net_bytes / 2**20:.2f} MiB", flush=True)
    print(f"MNIST ({data['rows']} rows): {n_in} of 784 inputs non-constant; non-zero fraction "
          f"{data['nonzero_fraction']:.3f}; sparse kernel path on {100 * data['sparse_path_fraction']:.1f}% of rows, "
          f"touching {data['sparse_inputs']:.1f} inputs in {data['sparse_lines']:.1f} of "
          f"{n_in * F32 / LINE:.1f} cache lines per weight row; assumed active ReLU fraction {args.active}",
          flush=True)

    levels = {f"L2 {args.l2_kb:g} KiB": int(args.l2_kb * 1024), f"network {net_bytes / 2**20:.2f} MiB": net_bytes,
              f"DRAM {args.dram_mb:g} MiB": int(args.dram_mb * 2**20)}
    meas = pd.DataFrame(measure_bandwidths(levels, n_in, args.repeats, args.seconds)
                        + measure_gemv(args.hidden[0], n_in, args.repeats, args.seconds))
    net = list(levels)[1]
    bw = meas[meas.unit == "GB/s"].set_index(["measure", "level"])["rate"]
    read_bw, triad_bw = bw[("read", net)], bw[("adadelta triad", net)]
    gemv = meas.loc[meas.unit == "GFLOP/s", "rate"].max()

    costs, ceil = [], []
    for case, k1, lines in [("dense", None, None), ("sparse", data["sparse_inputs"], data["sparse_lines"])]:
        c = cost_model(units, args.active, k1, lines)
        costs.append(c.assign(case=case))
        ceil.append(dict(case=case, active=args.active, first_layer_inputs=k1 if k1 is not None else n_in,
                         **ceilings(c, read_bw, triad_bw, gemv)))
    cost = pd.concat(costs, ignore_index=True)
    ceil = pd.DataFrame(ceil)

    def fmt(v: float) -> str:
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"

    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", fmt):
        view = meas.assign(working_set_KiB=meas.working_set / 1024).drop(columns="working_set")
        print("\nmeasured on one core (best of %d):\n" % args.repeats + view.to_string(index=False))
        print("\ncost of one training sample (bytes: from L3; bwd reads hit L1):\n"
              + cost[["case", "layer", "fwd_weights", "bwd_weights", "upd_weights", "fwd_bytes", "upd_bytes",
                      "l3_bytes", "flops"]].to_string(index=False))
        print(f"\nceilings, samples/s on one core (memory: triad at the network's size {triad_bw:.1f} GB/s; "
              f"compute: best GEMV {gemv:.1f} GFLOP/s; phase sum: fwd at read {read_bw:.1f} GB/s + bwd at GEMV "
              "+ update at triad):\n" + ceil.to_string(index=False))

    rows = [dict(section="measured", item=r.measure, where=r.level, value=r.rate, unit=r.unit)
            for r in meas.itertuples()]
    rows += [dict(section="mnist", item=k, where=f"{data['rows']} rows", value=float(v), unit="")
             for k, v in data.items() if k != "rows"]
    for r in ceil.itertuples():
        rows += [dict(section="cost", item="L3 bytes per sample", where=r.case, value=r.bytes_per_sample, unit="B"),
                 dict(section="cost", item="FLOPs per sample", where=r.case, value=r.flops_per_sample, unit="FLOP"),
                 dict(section="ceiling", item="memory", where=r.case, value=r.memory_ceiling, unit="samples/s"),
                 dict(section="ceiling", item="compute", where=r.case, value=r.compute_ceiling, unit="samples/s"),
                 dict(section="ceiling", item=f"ceiling ({r.binding})", where=r.case, value=r.ceiling,
                      unit="samples/s"),
                 dict(section="ceiling", item="phase sum", where=r.case, value=r.phase_sum, unit="samples/s")]
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
