"""The iteration driver: broadcast the centre, one HOGWILD! task per worker, tree-average, score.

The client drives the loop (as LightGBM's and xgboost's Dask backends do). Each round the centre is
sent once, every worker trains its copy on its own persisted blocks, the copies are averaged by a
reduction tree on the workers, and only the average returns to the client as numpy — which also
cuts the task lineage, so a lost worker costs one round, never a replay.

``IterationLoop.run`` reads top-down: take a round (submitted now, or ahead while the last one
ran), absorb its average, score when the schedule says so, decide whether to stop, and at the end
restore the best model. Everything that changes between rounds is in ``_Progress``.
"""
from __future__ import annotations

import functools
import logging
import math
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ..errors import ClusterUnavailableError, ModelDivergedError
from ..nn.hogwild import proportional_split
from ..progress import FitObserver
from ..scoring import evaluate, history, sufficient
from ..task_names import task_key
from . import tasks
from .averaging import tree_average
from .placement import TrainingData
from .replan import replan
from .watch import RoundStallWatch, TasksStalled, WorkersUnavailable, describe, running, wait_for, worker_states

logger = logging.getLogger("dask_dl")

# conservative training speeds per thread behind the initial train_samples_per_iteration=-2
AUTO_SPEED_PER_SAMPLE, AUTO_SPEED_MINI_BATCH = 10_000, 30_000
# a round whose compute takes less than this has the next round submitted before its own result
# returns, so the workers train on while the client checks, scores and decides
PIPELINE_MAX_ROUND_S = 0.5
# a fit is scored at least this many times, evenly over its samples, and its auto-sized iterations
# are at most this fraction of it (H2O's "at least 10 iterations"): a fit 20x faster than H2O's
# would otherwise see 20x fewer of H2O's 5 s scorings, and overwrite_with_best_model pick from 2-3
# models where H2O's has ~10 (benchmarks/README, issue 17: the seed-to-seed spread)
SCORINGS_PER_FIT = 10
# H2O's instability thresholds (§9.8)
MAX_MEAN_WEIGHT, MAX_MEAN_BIAS = 1e10, 1e5
# how often (seconds) the loop looks for workers that joined or left between rounds
MEMBERSHIP_CHECK_S = 1.0
# how long a re-plan waits for a worker to train on when none is available
REPLAN_WAIT_S = 15.0
# rounds re-run in a row before the fit gives up on an unstable cluster
MAX_RERUNS_IN_A_ROW = 5
# a round's training task still processing after max(ROUND_STALL_MIN_S, ROUND_STALL_FACTOR x the
# last round's compute and scoring seconds) has stalled (a hung worker thread, or a task its worker
# lost track of): the round runs again under new keys, without those workers where others are left
ROUND_STALL_MIN_S, ROUND_STALL_FACTOR = 60.0, 50.0
# stalled rounds in a row before the fit gives up, naming the workers and what they do
MAX_STALLS_IN_A_ROW = 2
_RERUN = object()  # _one_round's answer when the round must run again


class _RoundLost(RuntimeError):
    """A round that cannot finish: workers it ran on were lost, paused or stalled, or its inputs were lost."""

    def __init__(self, reason: str, unavailable: set, stalled: bool = False):
        super().__init__(reason)
        self.unavailable, self.stalled = set(unavailable), stalled


@dataclass
class FitResult:
    state: np.ndarray
    history: list
    iterations: int
    samples: int
    epochs: float
    stop_reason: str
    threshold: float = 0.5
    run_seconds: float = 0.0
    train_samples_per_iteration: int = 0
    workers: int = 0
    timings: dict = field(default_factory=dict)
    metrics_stats: dict = field(default_factory=dict)  # the final scoring's statistics: "train", "valid"


def auto_speed(cfg) -> int:
    """The conservative samples/s per thread assumed before anything is measured."""
    return AUTO_SPEED_PER_SAMPLE if cfg.per_sample else AUTO_SPEED_MINI_BATCH


def worker_stream(wi: int, n_workers: int, streamed: int, rows: int, replicated: bool,
                  seed: int) -> tuple[float, int, tuple]:
    """Where worker ``wi`` resumes its row stream (in passes, after it streamed ``streamed``
    samples of its ``rows`` rows), the seed of its row order and its segment of each pass.
    Replicated data: every worker holds every row, so all walk ONE row order, worker i the i-th of
    P parts of each pass (``hogwild.visiting_order``): together they cover the data once per epoch,
    every epoch (independent orders would see only 1 - (1 - 1/P)^P of the rows in an epoch).
    Partitioned data: each worker its own order over its own rows."""
    if replicated:
        return streamed * n_workers / rows, seed, (wi, n_workers)
    return streamed / rows, seed + 1000003 * wi, (0, 1)


def samples_per_iteration(cfg, n_rows: int, n_threads_total: int, local_rows: int | None = None) -> int:
    """Resolve train_samples_per_iteration (H2O §9.2): 0 -> N, -1 -> all local data (``local_rows``,
    the rows all workers hold: N when partitioned, workers x N when replicated), N > 0 -> N capped at
    epochs*N, -2 -> auto: about 1.5 s of work for the whole cluster at a conservative per-thread
    speed, never more than one epoch nor a SCORINGS_PER_FIT-th of the fit (H2O: >= 10 iterations).
    With 2+ workers the loop then re-tunes it from measured times (H2O's rule)."""
    t = cfg.iteration_samples
    total = cfg.params["epochs"] * n_rows
    if t == 0:
        return n_rows
    if t == -1:
        return int(max(1, min(local_rows or n_rows, total)))
    if t > 0:
        return int(max(1, min(t, total)))
    work = auto_speed(cfg) * 1.5 * max(1, n_threads_total)
    return int(max(1, min(work, n_rows, total / SCORINGS_PER_FIT)))


def _split_budget(n: int, rows_by_worker: dict) -> dict:
    """Samples per worker, proportional to the rows each holds (every worker finishes together)."""
    workers = list(rows_by_worker)
    return dict(zip(workers, proportional_split(n, [rows_by_worker[w] for w in workers]).tolist()))


def _exploded(a: np.ndarray, limit: float) -> bool:
    return abs(float(a.mean())) > limit or float(np.sqrt((a.astype(np.float64) ** 2).mean())) > limit


def check_stable(layout, state: np.ndarray) -> str | None:
    """None if the state is sound, else why not (H2O's §9.8 rule plus non-finite values)."""
    if not np.isfinite(state).all():
        return "weights or optimizer state became NaN/inf"
    for l in range(1, layout.n_layers + 1):
        w, b = layout.weight_matrix(state, l), layout.bias_vector(state, l)
        if _exploded(w, MAX_MEAN_WEIGHT):
            return f"layer {l} weights exploded (mean {float(w.mean()):.3g})"
        if _exploded(b, MAX_MEAN_BIAS):
            return f"layer {l} biases exploded (mean {float(b.mean()):.3g})"
    return None


@dataclass
class _Round:
    """One submitted round: its averaging result, the scoring tasks sent with it (or None), the
    samples asked of the workers and each worker's stream position after it."""
    mean_f: object
    score_jobs: list | None
    expected: int
    positions: dict
    train_keys: tuple = ()  # its training tasks' keys (watched for a stall; keys, not futures)


@dataclass(frozen=True)
class Resume:
    """A checkpoint's progress, for a fit that continues it."""
    samples: int
    iterations: int
    history: list
    seconds: float  # its training time: the new rows' durations go on from there


@dataclass
class _Progress:
    """Where a fit stands between rounds: everything the loop changes."""
    state: np.ndarray               # the centre: the model so far
    settings: object                # kernel settings (Huber's delta moves at each scoring)
    tspi: int                       # samples per iteration (re-tuned when auto-sized)
    positions: dict                 # samples each worker has streamed
    round_s: float                  # the last round's compute seconds (the first one estimated)
    t_start: float
    samples: int = 0                # samples trained so far
    iteration: int = 0
    last_mean: object = None        # the last average's future while the centre IS that average
    pending: _Round | None = None   # the next round, submitted ahead
    history: list = field(default_factory=list)
    series: list = field(default_factory=list)  # the stopping metric at each scoring
    scoring_s: float = 0.0
    last_score_start: float | None = None
    last_score_s: float = 0.0
    last_full_start: float | None = None  # the last scoring of the training sample too (H2O's clock)
    last_full_s: float = 0.0
    samples_scored: int = 0         # pg.samples at the last scoring
    best: tuple | None = None       # (state, loss, threshold, training and validation metrics) of the best scored model
    threshold: float = 0.5
    last_ref: dict = field(default_factory=dict)  # the metrics the last scoring judged by
    m_train: dict = field(default_factory=dict)   # the last scoring's training metrics
    m_valid: dict | None = None                   # and its validation metrics
    stats: dict = field(default_factory=dict)     # and their sufficient statistics ("train", "valid")
    stop_reason: str = "epochs"
    timed_out: bool = False
    reruns: int = 0                 # rounds re-run after a worker was lost, paused or stalled
    reruns_in_a_row: int = 0
    stalls_in_a_row: int = 0
    membership_checked: float = 0.0  # when the loop last compared the workers with the plan
    # where the time goes (seconds summed over iterations): train = broadcast + the wait for the
    # average (compute: the slowest worker's kernel; reduce_wait: the rest) + bookkeeping; score =
    # scoring rounds; pipelined = rounds submitted before the previous one returned
    timings: dict = field(default_factory=lambda: {"train": 0.0, "score": 0.0, "broadcast": 0.0, "compute": 0.0,
                                                   "reduce_wait": 0.0, "pipelined": 0})


class IterationLoop:
    """Runs the rounds of one fit against a Dask client."""

    def __init__(self, client, cfg, info, layout, settings, data: TrainingData, n_threads: dict,
                 pipeline_max_round_s: float = PIPELINE_MAX_ROUND_S, on_scored=None, observer=None):
        self.client, self.cfg, self.info, self.layout, self.data = client, cfg, info, layout, data
        self.on_scored = on_scored  # called with the FitResult so far after every scoring (export_checkpoints_dir)
        # the client's view: live history, progress bar, the user's callbacks
        self.observer = observer or FitObserver(cfg.params.get("callbacks"), quiet=bool(cfg.params["quiet_mode"]))
        self.settings = settings
        self.scoring_spec = evaluate.ScoringSpec.of(cfg.kind, cfg.distribution, cfg.params, info)
        self.n_threads = n_threads
        self.fit_key = uuid.uuid4().hex[:10]
        self._stalled: set = set()  # workers left out after a stall, until they are idle again
        self._stall_after_s: float | None = None  # how long a task may process before it has stalled
        self.quiet = bool(cfg.params["quiet_mode"])
        self.total = cfg.params["epochs"] * data.n_rows
        self.threads_total = sum(n_threads.get(w, 1) for w in data.blocks_by_worker)
        self.tspi = samples_per_iteration(cfg, data.n_rows, self.threads_total, sum(data.rows_by_worker.values()))
        self.cadence = max(self.total / SCORINGS_PER_FIT, 1.0)  # samples between the fit's scored tenths
        self.auto_tune = self._auto_tunes()
        # the scoring tasks go out with the round's training, on its average where it lies
        self.score_with_round = cfg.score_every_round and not cfg.elastic
        # only where the next round does not wait on the client: the centre is the last average,
        # the kernel settings stay, the data is in memory and the round size fixed
        self.pipeline = (not cfg.elastic and not self.auto_tune and not data.streaming
                         and not cfg.adapts_huber_delta)
        self.pipeline_max_round_s = float(pipeline_max_round_s)
        self._last_mean = None  # the last average's future, for release() after the fit

    def _auto_tunes(self) -> bool:
        """H2O re-tunes only across several nodes (on one worker there is nothing to average), and
        not a fit whose iterations are already as long as a tenth of it may be."""
        return (self.cfg.auto_iteration_size and len(self.data.blocks_by_worker) > 1
                and self.tspi < self.cadence - 0.5)

    def _cadence_due(self, before: float, after: float) -> bool:
        """Whether the samples from ``before`` to ``after`` pass one of the fit's tenths."""
        return int((after + 0.5) // self.cadence) > int((before + 0.5) // self.cadence)

    def _log(self, msg: str, *args):
        if not self.quiet:
            logger.info(msg, *args)

    # ---------------------------------------------------------------------------------- run
    def run(self, state: np.ndarray, resume: Resume | None = None) -> FitResult:
        """Train from ``state`` until the epochs are done or a stopping rule fires; ``resume``: a
        checkpoint's progress, which this fit continues (samples, iterations, history, time)."""
        pg = self._start(state, resume)
        self.observer.start(pg.history, self.data.n_rows, self.total, pg.samples)
        try:
            while pg.samples < self.total - 1e-9:
                score_jobs = self._one_round(pg)
                if score_jobs is _RERUN:
                    continue
                pg.timed_out = self._timed_out(pg)
                final = pg.samples >= self.total - 1e-9 or pg.timed_out
                if not self._due_for_scoring(pg, final):
                    _release(score_jobs or [])
                    continue
                self._score_round(pg, score_jobs)
                if final:
                    break
                self._keep_if_best(pg)
                if self._stop_rule_fired(pg):
                    break
        finally:
            if pg.pending is not None:  # stopped early, or raised: the round submitted ahead is not wanted
                self._cancel(pg.pending, wait_s=10 * pg.round_s + 5)
            self._last_mean = pg.last_mean
            self.observer.close()
        if pg.timed_out:
            pg.stop_reason = "max_runtime_secs"
        self._restore_best(pg)
        self._score_final_training_sample(pg)
        return self._result(pg)

    def release(self) -> None:
        """Release every future of this fit: the data, the last average (see TrainingData.release)."""
        self.data.release()
        if self._last_mean is not None:
            self._last_mean.release()

    def drop_worker_state(self) -> None:
        """Forget this fit's worker-local (elastic averaging) models on every worker."""
        if self.cfg.elastic:  # a worker lost meanwhile took its models with it
            self.client.run(tasks.drop_fit_state, self.fit_key, on_error="ignore")

    # ----------------------------------------------------------------------------- the steps
    def _start(self, state: np.ndarray, resume: Resume | None = None) -> _Progress:
        if resume is not None:
            return self._resume(state, resume)
        data = self.data
        all_futs = [f for fs in data.blocks_by_worker.values() for f in fs]
        self._who_has = self.client.who_has(all_futs + list(data.score_train) + list(data.score_valid or []))
        tspi = self.tspi
        self._log("dask_dl: training on %d rows across %d worker(s), %d thread(s); %d samples per iteration",
                  data.n_rows, len(data.blocks_by_worker), self.threads_total, tspi)
        pg = _Progress(state=state, settings=self.settings, tspi=tspi,
                       positions={w: 0 for w in data.blocks_by_worker},
                       round_s=tspi / (auto_speed(self.cfg) * max(1, self.threads_total)),
                       t_start=time.perf_counter())
        # H2O's row 0: a dummy row, or an autoencoder's untrained (null) model with its metrics
        m_train, m_valid = self._score(state)[:2] if self.cfg.kind == "autoencoder" else ({}, {})
        pg.history.append(history.history_row(self.cfg.kind, 0.0, 0.0, 0, 0, data.n_rows, m_train,
                                               m_valid if data.score_valid is not None else None))
        return pg

    def _resume(self, state: np.ndarray, resume: Resume) -> _Progress:
        """Progress that continues a checkpoint: its samples (the rate schedules and each worker's
        stream position follow them), iterations and history; the clock goes on from its duration."""
        data = self.data
        self._who_has = self.client.who_has([f for fs in data.blocks_by_worker.values() for f in fs]
                                            + list(data.score_train) + list(data.score_valid or []))
        total_rows = max(1, sum(data.rows_by_worker.values()))
        pg = _Progress(state=state, settings=self.settings, tspi=self.tspi,
                       positions={w: int(resume.samples * r / total_rows) for w, r in data.rows_by_worker.items()},
                       round_s=self.tspi / (auto_speed(self.cfg) * max(1, self.threads_total)),
                       t_start=time.perf_counter() - resume.seconds, samples=int(resume.samples),
                       iteration=int(resume.iterations), history=list(resume.history),
                       samples_scored=int(resume.samples))
        self._log("dask_dl: continuing a checkpoint at %d samples (%.3f epochs of these %d rows) to %d samples",
                  pg.samples, pg.samples / data.n_rows, data.n_rows, int(self.total))
        return pg

    def _one_round(self, pg: _Progress):
        """Train one round and absorb its average; returns its scoring jobs (or None), or _RERUN
        when workers were lost or paused and the round must run again on the others."""
        t_it = time.perf_counter()
        rnd = self._take_round(pg)
        t_sub = time.perf_counter()
        self._submit_ahead(pg, rnd)
        try:
            self._absorb(pg, rnd, t_it, t_sub)
        except _RoundLost as lost:
            self._recover(pg, rnd, lost)
            return _RERUN
        return rnd.score_jobs

    def _take_round(self, pg: _Progress) -> _Round:
        """The next round: the one submitted ahead, or a new one from the centre (on the workers
        available now: a worker that joined takes a share, one that left gives its share away)."""
        pg.iteration += 1
        if pg.pending is not None:
            rnd, pg.pending = pg.pending, None
            pg.timings["pipelined"] += 1
            return rnd
        self._follow_membership(pg)
        center_f = pg.last_mean if pg.last_mean is not None else \
            self.client.scatter(tasks.ModelCopy(pg.state), hash=False)
        elastic_key = self.fit_key if self.cfg.elastic else None
        return self._submit_round(pg, pg.iteration, center_f, pg.samples, self._round_size(pg, pg.samples),
                                  pg.settings, pg.positions, elastic_key)

    def _submit_ahead(self, pg: _Progress, rnd: _Round) -> None:
        """Pipelining: submit the following round from this one's average before it returns."""
        ahead = pg.samples + rnd.expected
        membership_due = time.perf_counter() - pg.membership_checked >= MEMBERSHIP_CHECK_S
        if self.pipeline and pg.round_s < self.pipeline_max_round_s and ahead < self.total - 1e-9 \
                and not membership_due:
            pg.pending = self._submit_round(pg, pg.iteration + 1, rnd.mean_f, ahead, self._round_size(pg, ahead),
                                            pg.settings, rnd.positions, None)

    def _absorb(self, pg: _Progress, rnd: _Round, t_it: float, t_sub: float) -> None:
        """Wait for the round's average, make it (or, elastic, a step towards it) the new centre."""
        mean_state, trained, compute = self._round_result(pg, rnd)
        t_mean = time.perf_counter()
        pg.round_s = compute
        # none before a round is timed: a first round may load kernels or stream a whole epoch
        self._stall_after_s = max(ROUND_STALL_MIN_S, ROUND_STALL_FACTOR * (compute + pg.last_score_s))
        pg.positions = rnd.positions
        pg.last_mean = rnd.mean_f if not self.cfg.elastic else None
        if pg.pending is not None and int(trained) != rnd.expected:
            self._cancel(pg.pending, wait_s=10 * pg.round_s + 5)  # planned from the samples asked for
            pg.pending = None
        new_state = self._next_center(pg, mean_state)
        dt = time.perf_counter() - t_it
        if self.auto_tune and dt > 0:
            pg.tspi = self._retune(pg.tspi, dt, compute)
        self._count_time(pg, dt, t_sub - t_it, min(compute, t_mean - t_sub), t_mean - t_sub)
        why = check_stable(self.layout, new_state)
        if why:
            raise ModelDivergedError(
                f"training diverged at iteration {pg.iteration} ({why}); the model is numerically unstable. "
                "Try a smaller rate (adaptive_rate=False), a larger epsilon/rho, l2 regularisation, "
                "max_w2, or standardize=True. The last good model is kept on the error "
                "(.last_good_model).", last_good_state=pg.state, history_rows=pg.history)
        pg.state = new_state
        pg.samples += int(trained)
        self._progress(pg, trained, compute)

    def _progress(self, pg: _Progress, trained: float, compute: float) -> None:
        """The round on the progress bar, or as a log line, with the fit's speed and the time left
        at its rate so far: a pipelined round's own wall time is only the client's wait for it
        (0.02 s after a scoring it trained under, 0.5 s for the next), so it tells no speed."""
        spent = time.perf_counter() - pg.t_start
        rate = pg.samples / max(spent, 1e-9)
        if self.observer.shows_bar:
            self.observer.round_done(pg.samples, rate)
            return
        self._log("dask_dl: iteration %d: %d samples (slowest worker's compute %.2f s), epochs %.3f, "
                  "%.0f samples/s over the fit, ~%.0f s left", pg.iteration, trained, compute,
                  pg.samples / self.data.n_rows, rate, (self.total - pg.samples) / max(rate, 1e-9))

    def _round_result(self, pg: _Progress, rnd: _Round):
        """The round's (state, samples, compute seconds), waited for watchfully; _RoundLost when a
        worker it runs on is lost or paused, or its inputs were lost with one."""
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker
        from concurrent.futures import CancelledError
        failure = None
        try:
            wait_for(self.client, [rnd.mean_f], workers=list(self.data.blocks_by_worker),
                     what=f"iteration {pg.iteration}", expected_s=max(pg.round_s, 0.05), quiet=self.quiet,
                     stalls=self._stall_watch(rnd.train_keys))
            result = rnd.mean_f.result()
        except WorkersUnavailable as gone:
            failure = (str(gone), gone.workers)
        except TasksStalled as stuck:  # others train on while those workers are stuck, if any are left
            others = self._trainable(worker_states(self.client)) - stuck.workers
            failure = (str(stuck), stuck.workers if others else set(), True)
        except (CancelledError, KilledWorker, CommClosedError) as err:
            failure = (f"{type(err).__name__}: {_one_line(err)}", set())
        if failure:  # raised here, not in the handler: no traceback keeps the round's futures alive
            raise _RoundLost(*failure)
        pg.reruns_in_a_row = pg.stalls_in_a_row = 0
        return result

    def _recover(self, pg: _Progress, rnd: _Round, lost: _RoundLost) -> None:
        """Drop the failed round (and the one submitted ahead of it), re-plan the data on the
        workers available now and let the loop run the round again from the client's centre."""
        pg.reruns += 1  # the new attempt's tasks get new keys (_submit_round)
        pg.reruns_in_a_row += 1
        pg.stalls_in_a_row = pg.stalls_in_a_row + 1 if lost.stalled else 0
        _release([rnd.mean_f, *(rnd.score_jobs or [])])
        if pg.stalls_in_a_row >= MAX_STALLS_IN_A_ROW:
            raise ClusterUnavailableError(f"iteration {pg.iteration} stalled {pg.stalls_in_a_row} times in a row; "
                                          f"last: {lost}")
        if pg.reruns_in_a_row > MAX_RERUNS_IN_A_ROW:
            raise ClusterUnavailableError(f"iteration {pg.iteration} failed {MAX_RERUNS_IN_A_ROW + 1} times in a row; "
                               f"last: {lost}")
        if pg.pending is not None:
            self._cancel(pg.pending)
            pg.pending = None
        pg.last_mean = None  # it may have been lost with a worker: train from the client's copy
        if lost.stalled:
            self._stalled |= lost.unavailable
        self._replan(pg, exclude=lost.unavailable, why=str(lost))
        logger.warning("dask_dl: iteration %d could not finish (%s); running it again on %d worker(s) from the "
                       "last centre", pg.iteration, str(lost), len(self.data.blocks_by_worker))
        pg.iteration -= 1

    def _follow_membership(self, pg: _Progress) -> None:
        """At most every MEMBERSHIP_CHECK_S: re-plan when the running workers differ from the plan."""
        now = time.perf_counter()
        if now - pg.membership_checked < MEMBERSHIP_CHECK_S:
            return
        pg.membership_checked = now
        available = self._trainable(worker_states(self.client))
        planned = set(self.data.blocks_by_worker)
        if available and available != planned and not (self.cfg.single_worker and planned <= available):
            self._log("dask_dl: the workers changed (%d -> %d); re-planning the training data",
                      len(planned), len(available))
            pg.last_mean = None
            self._replan(pg)

    def _replan(self, pg: _Progress, exclude: set = frozenset(), why: str = "") -> None:
        """Lay the data out over the running workers (less ``exclude``; with none, waiting up to
        REPLAN_WAIT_S for one, e.g. a lost worker its nanny restarts) and carry the loop over."""
        deadline = time.perf_counter() + REPLAN_WAIT_S
        while True:
            states = worker_states(self.client)
            workers = sorted(self._trainable(states) - set(exclude))
            if workers or time.perf_counter() > deadline:
                break
            time.sleep(0.2)
        if not workers:
            raise ClusterUnavailableError(f"no Dask worker can train iteration {pg.iteration}: {why}; the cluster's workers: "
                               f"{describe(self.client, set(states), states) or 'none'}")
        self.data = replan(self.client, self.data, workers, single_worker=self.cfg.single_worker, quiet=self.quiet)
        self.n_threads = {a: int(s.get("nthreads", 1)) for a, s in states.items()}
        self.threads_total = sum(self.n_threads.get(w, 1) for w in self.data.blocks_by_worker)
        self.auto_tune = self._auto_tunes()
        total_rows = sum(self.data.rows_by_worker.values())
        pg.positions = {w: int(pg.samples * r / total_rows) for w, r in self.data.rows_by_worker.items()}
        self._who_has = self.client.who_has(list(self.data.score_train) + list(self.data.score_valid or []))

    def _stall_watch(self, keys) -> RoundStallWatch | None:
        """A watch on ``keys`` at this fit's stall limit (none before the first round is timed)."""
        return None if self._stall_after_s is None else RoundStallWatch(keys, self._stall_after_s)

    def _trainable(self, states: dict) -> set:
        """The running workers (``states``: ``worker_states``), less those a stalled round left out
        while they still run its released task (a hung thread would hold up any new work)."""
        for w in list(self._stalled):
            counts = ((states.get(w) or {}).get("metrics") or {}).get("task_counts") or {}
            if not (counts.get("cancelled") or counts.get("executing")):
                self._stalled.discard(w)
        return running(states) - self._stalled

    def _next_center(self, pg: _Progress, mean_state: np.ndarray) -> np.ndarray:
        """The average itself; with elastic averaging (H2O / EASGD) the centre moves towards the
        workers' mean by the moving rate, from the second round on."""
        if not self.cfg.elastic or pg.iteration == 1:
            return mean_state
        alpha = np.float32(self.cfg.params["elastic_averaging_moving_rate"])
        return alpha * mean_state + (np.float32(1.0) - alpha) * pg.state

    @staticmethod
    def _count_time(pg: _Progress, dt: float, broadcast: float, waited: float, wait: float) -> None:
        """A pipelined round computed partly before the client waited for it: only the wait counts."""
        pg.timings["train"] += dt
        pg.timings["broadcast"] += broadcast
        pg.timings["compute"] += waited
        pg.timings["reduce_wait"] += wait - waited

    def _timed_out(self, pg: _Progress) -> bool:
        max_rt = self.cfg.params["max_runtime_secs"]
        return bool(max_rt) and time.perf_counter() - pg.t_start > max_rt

    def _due_for_scoring(self, pg: _Progress, final: bool) -> bool:
        p = self.cfg.params
        return history.should_score(time.perf_counter(), pg.last_score_start, pg.last_score_s, p["score_interval"],
                                    p["score_duty_cycle"], first_iteration=pg.iteration == 1, final=final,
                                    score_each_iteration=self.cfg.score_every_round,
                                    cadence_due=self._cadence_due(pg.samples_scored, pg.samples))

    def _score_round(self, pg: _Progress, score_jobs) -> None:
        """Score the centre, append the history row, note the threshold and the stopping metric."""
        s0 = time.perf_counter()
        m_train, m_valid, stats = self._score(pg.state, score_jobs)
        if self.cfg.adapts_huber_delta and stats.get("train") is not None:
            pg.settings = pg.settings.with_huber_delta(
                evaluate.huber_delta_standardised(stats["train"], self.cfg.params["huber_alpha"], self.info))
        self._add_history_row(pg, s0, m_train, m_valid)
        ref = m_valid if self.data.score_valid is not None and m_valid else m_train
        pg.last_ref = ref
        if self.cfg.kind == "binomial" and ref:
            pg.threshold = float(ref.get("threshold", 0.5))
        if not self.observer.shows_bar:
            self._log("dask_dl: scoring: %s", _brief(m_train, m_valid, self.cfg.stopping_key))
        self.observer.scored(pg.history[-1])
        pg.series.append(ref.get(self.cfg.stopping_key, float("nan")) if ref else float("nan"))
        pg.m_train, pg.m_valid, pg.stats = m_train, m_valid, stats
        if self.on_scored is not None:
            self.on_scored(self._result(pg))

    def _add_history_row(self, pg: _Progress, s0: float, m_train, m_valid) -> None:
        now = time.perf_counter()
        pg.last_score_s, pg.last_score_start, pg.samples_scored = now - s0, s0, pg.samples
        if m_train or not self.data.score_train:
            pg.last_full_s, pg.last_full_start = now - s0, s0
        pg.scoring_s += now - s0
        pg.timings["score"] += now - s0
        pg.history.append(history.history_row(self.cfg.kind, now - pg.t_start, pg.scoring_s, pg.samples,
                                              pg.iteration, self.data.n_rows, m_train, m_valid))

    def _keep_if_best(self, pg: _Progress) -> None:
        """overwrite_with_best_model: remember the best scored model (non-final scorings, as H2O)."""
        key = self.cfg.best_key
        loss = pg.last_ref.get(key, float("nan")) if pg.last_ref else float("nan")
        if self.cfg.params["overwrite_with_best_model"] and history.is_better(
                loss, pg.best[1] if pg.best else None, key):
            pg.best = (pg.state.copy(), loss, pg.threshold, pg.m_train, pg.m_valid, pg.stats)

    def _stop_rule_fired(self, pg: _Progress) -> bool:
        if self.observer.stop_requested:
            pg.stop_reason = "callback"
            self._log("dask_dl: a callback asked to stop after %d scoring rounds", len(pg.series))
            return True
        reason = history.stop_reason(self.cfg, pg.m_train, pg.series)
        if reason is None:
            return False
        pg.stop_reason = reason
        if reason == "early_stopping":
            self._log("dask_dl: early stopping: %s did not improve over the last %d scoring rounds",
                      self.cfg.stopping_key, self.cfg.params["stopping_rounds"])
        return True

    def _restore_best(self, pg: _Progress) -> None:
        """overwrite_with_best_model: end on the best scored model when it beats the final one
        (dask_dl also does it after a timeout; see h2o-differences). H2O scores it again for the
        history's last row; the same model on the same scoring samples gives the metrics it was
        scored with, so those are reused; one the fit's tenths scored on the validation frame only
        has its training sample scored now."""
        key = self.cfg.best_key
        if not self.cfg.params["overwrite_with_best_model"] or pg.best is None:
            return
        best_state, best_loss, best_threshold, m_train, m_valid, stats = pg.best
        final_loss = pg.last_ref.get(key, float("nan")) if pg.last_ref else float("nan")
        if not history.is_better(best_loss, final_loss, key) or best_loss == final_loss:
            return
        if not m_train and self.data.score_train:
            m_train, _, scored = self._score(best_state, validation=False)
            stats = {**stats, **scored}
        pg.state, pg.threshold, pg.stats = best_state, best_threshold, stats
        self._add_history_row(pg, time.perf_counter(), m_train, m_valid)
        self._log("dask_dl: restored the best model (%s %.5g)", key, best_loss)

    def _score_final_training_sample(self, pg: _Progress) -> None:
        """A fit that ended on a scoring of the validation frame only (stopped early, out of time)
        has its model's training sample scored too: its training metrics and its history's last row."""
        if "train" in pg.stats or not self.data.score_train or len(pg.history) < 2:
            return
        pg.m_train, _, scored = self._score(pg.state, validation=False)
        pg.stats = {**pg.stats, **scored}
        pg.history[-1].update(history.metric_cells(self.cfg.kind, "training", pg.m_train))

    def _result(self, pg: _Progress) -> FitResult:
        return FitResult(state=pg.state, history=pg.history, iterations=pg.iteration, samples=pg.samples,
                         epochs=pg.samples / self.data.n_rows, stop_reason=pg.stop_reason, threshold=pg.threshold,
                         run_seconds=time.perf_counter() - pg.t_start, train_samples_per_iteration=pg.tspi,
                         workers=len(self.data.blocks_by_worker),
                         timings={**pg.timings, "iterations": pg.iteration, "reruns": pg.reruns},
                         metrics_stats=dict(pg.stats))

    # --------------------------------------------------------------------- rounds on the cluster
    def _round_size(self, pg: _Progress, done: int) -> int:
        """Samples of the round that starts after ``done`` samples. Auto-sized rounds take a last
        remainder under a quarter round along: a tiny last round pays a round's whole fixed cost."""
        left = math.ceil(self.total - done)
        if self.cfg.auto_iteration_size and left <= pg.tspi + pg.tspi // 4:
            return int(left)
        return int(min(pg.tspi, left))

    def _submit_round(self, pg: _Progress, iteration: int, center_f, n_seen: int, n_samples: int, settings,
                      positions: dict, elastic_key: str | None) -> _Round:
        """Submit one round: a training task per worker from ``center_f``, the averaging tree over
        them and, when the round will be scored (each round, the fit's tenths, the last), the
        scoring tasks on the average (``_scores_training_sample``: which sets). Nothing is waited for."""
        cfg, data = self.cfg, self.data
        budget = _split_budget(n_samples, data.rows_by_worker)
        # a re-run gets keys of its own: one reusing a released key can meet that task's remains
        round_key = f"{self.fit_key}-{pg.reruns}-{iteration}"
        futs, after = [], dict(positions)
        for wi, (w, blocks) in enumerate(data.blocks_by_worker.items()):
            position, order_seed, segment = worker_stream(wi, len(data.blocks_by_worker), positions[w],
                                                          data.rows_by_worker[w], data.replicated, cfg.seed)
            spec = tasks.RoundSpec(
                layout=self.layout, settings=settings, n_samples=int(budget[w]), n_seen=float(n_seen),
                rng_seeds=(cfg.seed, iteration, wi), position=position, order_seed=order_seed, segment=segment,
                n_threads=cfg.task_threads,
                elastic_key=elastic_key,
                elastic_strength=float(cfg.params["elastic_averaging_regularization"]) if elastic_key else 0.0)
            futs.append(self.client.submit(tasks.train_on_worker, center_f, list(blocks), spec=spec, workers=[w],
                                           allow_other_workers=True, pure=False,
                                           key=f"dask_dl-train-{round_key}-{wi}"))
            after[w] += int(budget[w])
        mean_f = tree_average(self.client, futs, round_key)
        score = self.score_with_round or (not cfg.elastic and self._cadence_due(n_seen, n_seen + n_samples))
        jobs = None
        if score and (data.score_train or data.score_valid):
            jobs = self._submit_scoring(mean_f, training=self._scores_training_sample(pg, iteration,
                                                                                       n_seen + n_samples))
        return _Round(mean_f, jobs, int(sum(budget.values())), after, tuple(f.key for f in futs))

    def _scores_training_sample(self, pg: _Progress, iteration: int, trained: float) -> bool:
        """Whether a round's scoring covers the training sample as well as the validation frame:
        always without a validation frame; with one, on H2O's own schedule (the first iteration,
        the last, score_each_iteration, the clock of ``score_interval`` and ``score_duty_cycle``
        over these full scorings). The scorings the fit's tenths add read the validation frame
        only: they give overwrite_with_best_model and early stopping their candidates, which are
        judged by validation metrics, at half the rows."""
        if self.data.score_valid is None or not self.data.score_train:
            return True
        p = self.cfg.params
        # a round submitted ahead of the first scoring counts the clock from the fit's start
        last = pg.last_full_start if pg.last_full_start is not None or iteration == 1 else pg.t_start
        return history.should_score(time.perf_counter(), last, pg.last_full_s, p["score_interval"],
                                    p["score_duty_cycle"], first_iteration=iteration == 1,
                                    final=trained >= self.total - 1e-9, score_each_iteration=self.cfg.score_every_round)

    def _cancel(self, rnd: _Round, wait_s: float = 0.0) -> None:
        """Drop a round whose result is not wanted. A round submitted ahead is short: it is let
        finish (for at most ``wait_s``), so that a fit leaves no work running on the cluster."""
        from distributed import wait
        futures = [rnd.mean_f, *(rnd.score_jobs or [])]
        try:
            if wait_s > 0:
                wait(futures, timeout=wait_s)
        except Exception:  # noqa: BLE001 - a failed or slow unwanted round changes nothing
            pass
        _release(futures)

    def _submit_scoring(self, model_f, workers=None, training: bool = True, validation: bool = True) -> list:
        """The scoring tasks for the model in future ``model_f``: one task per worker over the
        training-sample and validation blocks it holds (those of the sets asked for), on ``workers``
        only (default: the plan's); blocks held elsewhere (a lost or paused worker) are scored by
        one task on ``workers``."""
        workers = sorted(workers or self.data.blocks_by_worker)
        by_worker: dict = {}
        for which, fs in ((0, self.data.score_train if training else []),
                          (1, (self.data.score_valid or []) if validation else [])):
            for f in fs:
                holder = self._holder(f)
                by_worker.setdefault(holder if holder in workers else None, ([], []))[which].append(f)
        # ahead of a pipelined next round's training, which waits for the same average: the
        # client's decisions wait on the scores, not on that round
        return [self.client.submit(tasks.score_sets, model_f, layout=self.layout, spec=self.scoring_spec,
                                   train_blocks=tf, valid_blocks=vf, key=task_key("score"), priority=1,
                                   **({"workers": [w], "allow_other_workers": True} if w else {"workers": workers}))
                for w, (tf, vf) in by_worker.items()]

    def _score(self, state: np.ndarray, jobs: list | None = None, validation: bool = True):
        """One scoring round: sufficient statistics on the workers (``jobs``: submitted with the
        round; else the state is uploaded and scored now, the validation frame unless not
        ``validation``), merged and finished on the client. Returns (training metrics, validation
        metrics or None, {"train": statistics, "valid": ...})."""
        if not self.data.score_train and not self.data.score_valid:
            return {}, None, {}
        parts = self._scoring_outputs(state, jobs, validation)

        def merged(k):
            found = [p[k] for p in parts if p[k] is not None]
            return functools.reduce(sufficient.merge, found) if found else None

        train_stats, valid_stats = merged(0), merged(1)
        m_train = evaluate.metrics_from_stats(train_stats, self.cfg) if train_stats is not None else {}
        m_valid = None
        if self.data.score_valid is not None:
            m_valid = evaluate.metrics_from_stats(valid_stats, self.cfg) if valid_stats is not None else {}
        return m_train, m_valid, {k: v for k, v in (("train", train_stats), ("valid", valid_stats)) if v is not None}

    def _scoring_outputs(self, state: np.ndarray, jobs: list | None, validation: bool = True) -> list:
        """The scoring tasks' results; when a worker is lost under them (with the average they
        score) or they stall, once more from the client's copy of ``state`` on the workers available now."""
        from concurrent.futures import CancelledError
        from distributed.scheduler import KilledWorker
        for attempt in range(2):
            states = worker_states(self.client)
            available = self._trainable(states)
            if not available:
                stalled = f"{', '.join(sorted(self._stalled))} stalled (restart them: client.restart()); " \
                    if self._stalled else ""
                raise ClusterUnavailableError(f"no Dask worker can score the model: {stalled}"
                                              f"{describe(self.client, set(states), states) or 'none'}")
            if jobs is None:
                jobs = self._submit_scoring(self.client.scatter(tasks.ModelCopy(state), hash=False), available,
                                            validation=validation)
            try:  # the first attempt watches every worker: one paused with the scoring tasks ends it
                wait_for(self.client, jobs, workers=available if attempt else set(states), what="scoring",
                         quiet=self.quiet, stalls=self._stall_watch(f.key for f in jobs))
                return self.client.gather(jobs)
            except (WorkersUnavailable, TasksStalled, CancelledError, KilledWorker) as err:
                if attempt:
                    raise ClusterUnavailableError(f"scoring could not finish twice; last: {_one_line(err)}") from None
                if isinstance(err, TasksStalled):
                    self._stalled |= err.workers
                logger.warning("dask_dl: scoring could not finish (%s); scoring again", _one_line(err))
                _release(jobs)
                jobs = None

    def _holder(self, future):
        who = self._who_has.get(future.key)
        return who[0] if who else None

    def _retune(self, tspi: int, iteration_s: float, compute_s: float) -> int:
        """H2O's re-tuning of train_samples_per_iteration=-2 from measured times: keep communication
        (everything but the slowest worker's compute) near target_ratio_comm_to_comp of the iteration."""
        target = float(self.cfg.params["target_ratio_comm_to_comp"])
        ratio = max(iteration_s - compute_s, 1e-6) / iteration_s
        corr = min(2.0, max(0.5, target / ratio))
        if 0.8 <= corr <= 1.2:
            return tspi
        n_rows = self.data.n_rows
        lo = min(n_rows, 100 * self.threads_total)
        hi = max(lo, min(10 * n_rows * max(1, len(self.data.blocks_by_worker)), self.cadence))
        new = int(min(hi, max(lo, tspi / corr)))
        if new != tspi:
            self._log("dask_dl: auto-tuned train_samples_per_iteration %d -> %d (communication %.1f%% of a "
                      "%.2f s iteration, target %.1f%%)", tspi, new, 100 * ratio, iteration_s, 100 * target)
        return new


def _release(futures: list) -> None:
    """Drop this fit's claim on ``futures`` (the scheduler forgets them once nothing needs them).
    Not client.cancel: cancelling a key the client no longer wants trips the scheduler's
    ``assert ts.who_wants`` and cuts the client's connection (distributed 2026.8)."""
    for f in futures:
        f.release()


def _one_line(err) -> str:
    return " ".join(str(err).split())


def _brief(m_train, m_valid, key) -> str:
    parts = []
    for name, m in (("train", m_train), ("valid", m_valid)):
        if m:
            parts.append(f"{name} {key}={m.get(key, float('nan')):.5g}")
    return ", ".join(parts)
