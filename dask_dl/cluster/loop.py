"""The iteration driver: broadcast the centre, one HOGWILD! task per worker, tree-average, score.

The client drives the loop (as LightGBM's and xgboost's Dask backends do). Each round the centre is
scattered once, every worker trains its copy on its own persisted blocks, the copies are averaged by
a reduction tree on the workers, and only the average returns to the client as numpy — which also
cuts the task lineage, so a lost worker costs one round, never a replay.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ..nn import kernels as K
from ..nn.hogwild import proportional_split
from ..scoring import evaluate, history
from . import tasks
from .averaging import tree_average

logger = logging.getLogger("dask_dl")

# conservative training speeds per thread behind the initial train_samples_per_iteration=-2
AUTO_SPEED_PER_SAMPLE, AUTO_SPEED_MINI_BATCH = 10_000, 30_000
# pipelining: a round whose compute takes less than this (measured; estimated from the speeds above
# for the first) has the next round submitted before its own result returns, so the workers train on
# while the client checks, scores and decides. A stop waits for at most one such round, unused.
PIPELINE_MAX_ROUND_S = 0.5
# H2O's instability thresholds (§9.8)
MAX_MEAN_WEIGHT, MAX_MEAN_BIAS = 1e10, 1e5


class ModelDivergedError(RuntimeError):
    """Training produced NaN/inf or exploding weights; ``last_good_model`` holds the last sound state."""

    def __init__(self, message: str, last_good_state=None, history_rows=None):
        super().__init__(message)
        self.last_good_state = last_good_state
        self.history_rows = history_rows or []
        self.last_good_model = None  # filled in by the estimator


@dataclass
class TrainingData:
    """Where the encoded data lives: persisted block futures, grouped by the worker that holds them."""
    blocks_by_worker: dict          # {worker address: [future of (X, y)]}
    rows_by_worker: dict            # {worker address: rows}
    score_train: list               # futures of sampled training blocks (scoring)
    score_valid: list | None        # futures of validation blocks (scoring), or None
    n_rows: int
    streaming: bool = False         # out of core: blocks_by_worker holds one StreamSource per worker
    replicated: bool = False        # replicate_training_data: every worker holds every block


@dataclass
class FitResult:
    state: np.ndarray
    history: list
    iterations: int
    samples: int
    epochs: float
    stop_reason: str
    huber_delta: float = 1.0
    threshold: float = 0.5
    run_seconds: float = 0.0
    train_samples_per_iteration: int = 0
    workers: int = 0
    timings: dict = field(default_factory=dict)


def auto_speed(cfg) -> int:
    """The conservative samples/s per thread assumed before anything is measured."""
    return AUTO_SPEED_PER_SAMPLE if int(cfg.params["mini_batch_size"]) == 1 else AUTO_SPEED_MINI_BATCH


def worker_stream(wi: int, n_workers: int, streamed: int, rows: int, replicated: bool,
                  seed: int) -> tuple[float, int]:
    """Where worker ``wi`` resumes its row stream (in passes over its ``rows`` rows, after
    ``streamed`` samples) and the seed of its row order. Replicated data: every worker holds every
    row, so all walk ONE row order from evenly spaced starts and the P workers together cover the
    data once per epoch (independent orders would see only 1 - (1 - 1/P)^P of the rows in an epoch,
    ~75% for two workers, some twice). With shuffle_training_data (a new order per pass) that holds
    for the first epoch; later epochs straddle two passes' orders, as independent orders did.
    Partitioned data: each worker its own order."""
    position = streamed / rows
    if replicated:
        return position + wi / n_workers, seed
    return position, seed + 1000003 * wi


def samples_per_iteration(cfg, n_rows: int, n_threads_total: int, local_rows: int | None = None) -> int:
    """Resolve train_samples_per_iteration (H2O §9.2): 0 -> N, -1 -> all local data (``local_rows``,
    the rows all workers hold: N when partitioned, workers x N when replicated), N > 0 -> N capped at
    epochs*N, -2 -> auto.

    Auto: about 1.5 s of work for the whole cluster at a conservative per-thread speed (per-sample
    ADADELTA ~12k samples/s per thread on the MNIST default network, mini-batches several times
    more; benchmarks/README.md), so the ~50 ms round cost stays near 3%, never more than one epoch;
    short jobs get smaller iterations (down to a quarter of that) so they still iterate ~10 times.
    With 2+ workers the loop then re-tunes it from measured times (H2O's rule)."""
    t = int(cfg.params["train_samples_per_iteration"])
    if t == -2 and cfg.params["reproducible"]:
        t = -1  # H2O: reproducible runs iterate over whole epochs
    total = cfg.params["epochs"] * n_rows
    if t == 0:
        return n_rows
    if t == -1:
        return int(max(1, min(local_rows or n_rows, total)))
    if t > 0:
        return int(max(1, min(t, total)))
    work = auto_speed(cfg) * 1.5 * max(1, n_threads_total)
    tspi = min(work, n_rows, max(total / 10.0, work / 4.0))
    return int(max(1, min(tspi, total)))


def _split_budget(n: int, rows_by_worker: dict) -> dict:
    """Samples per worker, proportional to the rows each holds (every worker finishes together)."""
    workers = list(rows_by_worker)
    return dict(zip(workers, proportional_split(n, [rows_by_worker[w] for w in workers]).tolist()))


def check_stable(layout, state: np.ndarray) -> str | None:
    """None if the state is sound, else why not (H2O's §9.8 rule plus non-finite values)."""
    if not np.isfinite(state).all():
        return "weights or optimizer state became NaN/inf"
    for l in range(1, layout.n_layers + 1):
        w = layout.weight_matrix(state, l)
        b = layout.bias_vector(state, l)
        if abs(float(w.mean())) > MAX_MEAN_WEIGHT or float(np.sqrt((w.astype(np.float64) ** 2).mean())) > MAX_MEAN_WEIGHT:
            return f"layer {l} weights exploded (mean {float(w.mean()):.3g})"
        if abs(float(b.mean())) > MAX_MEAN_BIAS or float(np.sqrt((b.astype(np.float64) ** 2).mean())) > MAX_MEAN_BIAS:
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


class IterationLoop:
    """Runs the rounds of one fit against a Dask client."""

    def __init__(self, client, cfg, info, layout, ks, data: TrainingData, n_threads: dict):
        self.client, self.cfg, self.info, self.layout, self.ks, self.data = client, cfg, info, layout, ks, data
        self.n_threads = n_threads
        self.fit_key = uuid.uuid4().hex[:10]
        self.quiet = bool(cfg.params["quiet_mode"])
        self.kind = cfg.kind
        self.stop_key = history.resolve_stopping_metric(cfg.params["stopping_metric"], self.kind)
        self.best_key = history.best_model_metric(cfg.params["stopping_metric"], self.kind)

    # ------------------------------------------------------------------------------ helpers
    def _log(self, msg: str, *args):
        if not self.quiet:
            logger.info(msg, *args)

    def _submit_round(self, iteration: int, center_f, processed: int, n_iter: int, hp: np.ndarray,
                      positions: dict, elastic, score: bool) -> _Round:
        """Submit one round: a training task per worker from ``center_f``, the averaging tree over
        them and, with ``score``, the scoring tasks on the average. Nothing is waited for."""
        c, cfg, p = self.client, self.cfg, self.cfg.params
        budget = _split_budget(n_iter, self.data.rows_by_worker)
        ks = dataclasses.replace(self.ks, hp=hp)
        threads = 1 if p["reproducible"] else None
        futs, after = [], dict(positions)
        n_workers = len(self.data.blocks_by_worker)
        for wi, (w, blocks) in enumerate(self.data.blocks_by_worker.items()):
            position, stream_seed = worker_stream(wi, n_workers, positions[w], self.data.rows_by_worker[w],
                                                  self.data.replicated, cfg.seed)
            futs.append(c.submit(tasks.train_on_worker, center_f, self.layout, ks, int(budget[w]),
                                 (cfg.seed, iteration, wi), float(processed), bool(p["shuffle_training_data"]),
                                 threads, position, stream_seed, elastic, *blocks, workers=[w],
                                 allow_other_workers=True, pure=False,
                                 key=f"dask_dl-train-{self.fit_key}-{iteration}-{wi}"))
            after[w] += int(budget[w])
        mean_f = tree_average(c, futs, f"{self.fit_key}-{iteration}")
        jobs = None
        if score and (self.data.score_train or self.data.score_valid):
            jobs = self._submit_scoring(mean_f)
        return _Round(mean_f, jobs, int(sum(budget.values())), after)

    @staticmethod
    def _cancel(rnd: _Round) -> None:
        """Drop a round submitted ahead once it has finished: it is short (PIPELINE_MAX_ROUND_S), and a
        fit must leave no work running on the cluster (a worker closed under it logs a CancelledError;
        the next call would queue behind it). Its result is never used."""
        from distributed import wait
        try:
            wait([rnd.mean_f, *(rnd.score_jobs or [])])
        except Exception:  # noqa: BLE001 - a failed unwanted round changes nothing
            pass
        for f in (rnd.mean_f, *(rnd.score_jobs or [])):
            f.release()

    def _submit_scoring(self, state_f) -> list:
        """The scoring tasks of one round for the state (or averaging result) in future ``state_f``:
        one task per worker over its training-sample and validation blocks together."""
        train, valid = list(self.data.score_train), list(self.data.score_valid or [])
        by_worker: dict = {}
        for which, fs in ((0, train), (1, valid)):
            for f in fs:
                by_worker.setdefault(self._holder(f), ([], []))[which].append(f)
        c = self.client
        # ahead of a pipelined next round's training where both wait for the same average: the
        # client's decisions wait on the scores, not on that round
        return [c.submit(tasks.score_sets, state_f, self.layout, len(tf), *tf, *vf, workers=[w] if w else None,
                         allow_other_workers=True, pure=False, priority=1) for w, (tf, vf) in by_worker.items()]

    def _score(self, state: np.ndarray,
               jobs: list | None = None) -> tuple[dict, dict | None, np.ndarray, np.ndarray]:
        """One scoring round: forward passes on the workers (``jobs``: already submitted with the
        round's training, on the state where it lies; else the state is uploaded and scored now),
        metrics on the client from the outputs. Returns (training metrics, validation metrics or None,
        training outputs, training targets)."""
        if not self.data.score_train and not self.data.score_valid:
            return {}, None, None, None
        c = self.client
        if jobs is None:
            jobs = self._submit_scoring(c.scatter(state, hash=False))
        parts = c.gather(jobs)

        def metrics_of(k):
            o, y = np.concatenate([p[k][0] for p in parts]), np.concatenate([p[k][1] for p in parts])
            return (evaluate.score(o, y, self.info, self.cfg), o, y) if len(y) else ({}, None, None)

        m_train, outs, ys = metrics_of(0)
        m_valid = metrics_of(1)[0] if self.data.score_valid is not None else None
        return m_train, m_valid, outs, ys

    def _holder(self, future):
        who = self._who_has.get(future.key)
        return who[0] if who else None

    def _history_row(self, run_time, scoring_time, processed, iteration, m_train, m_valid) -> dict:
        epochs = processed / self.data.n_rows
        train_time = max(1e-9, run_time - scoring_time)
        row = {"timestamp": time.strftime("%Y-%m-%d %H:%M:%S"), "duration": f"{run_time:.3f} sec",
               "training_speed": f"{processed / train_time:.0f} obs/sec" if processed else "",
               "epochs": epochs, "iterations": iteration, "samples": float(processed)}
        for prefix, m in (("training", m_train), ("validation", m_valid)):
            if m is None:
                continue
            for key in self._metric_columns():
                row[f"{prefix}_{key}"] = m.get(key, float("nan")) if m else float("nan")
        return row

    def _metric_columns(self) -> list:
        if self.kind == "regression":
            return ["rmse", "deviance", "mae", "r2"]
        if self.kind == "binomial":
            return ["rmse", "logloss", "r2", "auc", "pr_auc", "lift", "classification_error"]
        return ["rmse", "logloss", "r2", "classification_error"]

    def _retune(self, tspi: int, iteration_s: float, compute_s: float, n_rows: int, threads_total: int) -> int:
        """H2O's re-tuning of train_samples_per_iteration=-2 from measured times: keep communication
        (everything but the slowest worker's compute) near target_ratio_comm_to_comp of the iteration."""
        target = float(self.cfg.params["target_ratio_comm_to_comp"])
        comm = max(iteration_s - compute_s, 1e-6)
        ratio = comm / iteration_s
        corr = min(2.0, max(0.5, target / ratio))
        if 0.8 <= corr <= 1.2:
            return tspi
        lo = min(n_rows, 100 * threads_total)
        hi = 10 * n_rows * max(1, len(self.data.blocks_by_worker))
        new = int(min(hi, max(lo, tspi / corr)))
        if new != tspi:
            self._log("dask_dl: auto-tuned train_samples_per_iteration %d -> %d (communication %.1f%% of a "
                      "%.2f s iteration, target %.1f%%)", tspi, new, 100 * ratio, iteration_s, 100 * target)
        return new

    def drop_worker_state(self) -> None:
        """Forget this fit's worker-local (elastic averaging) models on every worker."""
        if self.cfg.params["elastic_averaging"]:
            self.client.run(tasks.drop_fit_state, self.fit_key)

    # ---------------------------------------------------------------------------------- run
    def run(self, state: np.ndarray) -> FitResult:
        c, cfg, p = self.client, self.cfg, self.cfg.params
        all_futs = [f for fs in self.data.blocks_by_worker.values() for f in fs]
        all_futs += list(self.data.score_train) + list(self.data.score_valid or [])
        self._who_has = c.who_has(all_futs)
        n = self.data.n_rows
        total = p["epochs"] * n
        threads_total = sum(self.n_threads.get(w, 1) for w in self.data.blocks_by_worker)
        tspi = samples_per_iteration(cfg, n, threads_total, sum(self.data.rows_by_worker.values()))
        self._log("dask_dl: training on %d rows across %d worker(s), %d thread(s); %d samples per iteration",
                  n, len(self.data.blocks_by_worker), threads_total, tspi)
        has_valid = self.data.score_valid is not None
        t_start = time.perf_counter()
        rows = [self._history_row(0.0, 0.0, 0, 0, {}, {} if has_valid else None)]  # H2O's dummy row 0
        scoring_time = 0.0
        last_score_start, last_score_dur = None, 0.0
        processed, iteration = 0, 0
        best_state, best_loss = None, None
        threshold, stop_reason = 0.5, "epochs"
        huber_delta = 1.0
        # where the time goes (seconds, summed over iterations): train = broadcast + the submit-to-mean
        # wait (compute: the slowest worker's kernel time; reduce_wait: the rest, i.e. reduction tree,
        # scheduling and transfers; of a pipelined round only what the client waited for) + client-side
        # bookkeeping; score = scoring rounds
        timings = {"train": 0.0, "score": 0.0, "broadcast": 0.0, "compute": 0.0, "reduce_wait": 0.0,
                   "pipelined": 0}  # pipelined: rounds that were submitted before the previous one returned
        series: list = []
        last_ref: dict = {}
        hp = self.ks.hp.copy()
        max_rt = p["max_runtime_secs"]
        worker_done = {w: 0 for w in self.data.blocks_by_worker}  # samples each worker has streamed
        elastic = (self.fit_key, float(p["elastic_averaging_regularization"])) if p["elastic_averaging"] else None
        # -2 in effect (reproducible runs iterate over whole epochs instead, as H2O)
        auto_size = int(p["train_samples_per_iteration"]) == -2 and not p["reproducible"]
        # H2O re-tunes only across several nodes: on one worker there is nothing to average
        auto_tune = auto_size and len(self.data.blocks_by_worker) > 1
        timed_out = False
        # the last round's averaging result while the centre IS that average (not with elastic
        # averaging, whose centre moves on the client): the next round trains from it where it lies
        last_mean = None
        # score_each_iteration: the round's scoring tasks go out with its training tasks, on the
        # averaged state where it lies, and come back in the same wait (one round trip, not three)
        score_with_round = bool(p["score_each_iteration"] or p["reproducible"]) and elastic is None
        # pipelining (see PIPELINE_MAX_ROUND_S): only where the next round does not wait on the client
        # (the centre is the last average, the kernel settings stay, in-memory data, fixed round size)
        pipeline = (elastic is None and not auto_tune and not self.data.streaming
                    and not (cfg.kind == "regression" and cfg.loss == "Huber"))
        round_s = tspi / (auto_speed(cfg) * max(1, threads_total))  # the first round's compute, estimated
        pending = None  # the next round, already submitted

        def round_size(done: int) -> int:
            """Samples of the round that starts after ``done`` samples. Auto-sized rounds take a
            last remainder under a quarter round along: a round's fixed cost (~40 ms: scheduling,
            the reduction, the result) bought little training in a tiny last round (MNIST: 2.6k
            samples at 16k samples/s after rounds at 23-25k)."""
            left = math.ceil(total - done)
            if auto_size and left <= tspi + tspi // 4:
                return int(left)
            return int(min(tspi, left))

        try:
            while processed < total - 1e-9:
                iteration += 1
                t_it = time.perf_counter()
                if pending is not None:
                    rnd, pending = pending, None
                    timings["pipelined"] += 1
                else:
                    center_f = last_mean if last_mean is not None else c.scatter(state, hash=False)
                    rnd = self._submit_round(iteration, center_f, processed, round_size(processed), hp,
                                             worker_done, elastic, score_with_round)
                    del center_f
                t_sub = time.perf_counter()
                ahead = processed + rnd.expected
                if pipeline and round_s < PIPELINE_MAX_ROUND_S and ahead < total - 1e-9:
                    pending = self._submit_round(iteration + 1, rnd.mean_f, ahead, round_size(ahead), hp,
                                                 rnd.positions, None, score_with_round)
                score_jobs = rnd.score_jobs
                mean_state, done, compute = rnd.mean_f.result()
                t_mean = time.perf_counter()
                round_s = compute
                worker_done = rnd.positions
                last_mean = rnd.mean_f if elastic is None else None
                if pending is not None and int(done) != rnd.expected:
                    self._cancel(pending)  # it was planned from the samples asked for
                    pending = None
                del rnd
                if elastic is not None and iteration > 1:
                    # H2O / EASGD: the centre moves towards the workers' mean by the moving rate
                    alpha = np.float32(p["elastic_averaging_moving_rate"])
                    new_state = alpha * mean_state + (np.float32(1.0) - alpha) * state
                else:
                    new_state = mean_state
                dt = time.perf_counter() - t_it
                if auto_tune and dt > 0:
                    tspi = self._retune(tspi, dt, compute, n, threads_total)
                timings["train"] += dt
                timings["broadcast"] += t_sub - t_it
                # a pipelined round computed partly before the client started waiting for it: count
                # only the wait (the parts then add up to the round's time on the client)
                waited = min(compute, t_mean - t_sub)
                timings["compute"] += waited
                timings["reduce_wait"] += t_mean - t_sub - waited
                why = check_stable(self.layout, new_state)
                if why:
                    raise ModelDivergedError(
                        f"training diverged at iteration {iteration} ({why}); the model is numerically unstable. "
                        "Try a smaller rate (adaptive_rate=False), a larger epsilon/rho, l2 regularisation, "
                        "max_w2, or standardize=True. The last good model is kept on the error "
                        "(.last_good_model).", last_good_state=state, history_rows=rows)
                state = new_state
                processed += int(done)
                now = time.perf_counter()
                run_time = now - t_start
                keep_running = processed < total - 1e-9
                self._log("dask_dl: iteration %d: %d samples in %.2f s (%.0f samples/s; slowest worker's compute %.2f s), "
                          "epochs %.3f", iteration, done, dt, done / max(dt, 1e-9), compute, processed / n)
                if max_rt and run_time > max_rt:
                    timed_out = True
                    keep_running = False
                if not history.should_score(now, last_score_start, last_score_dur, p["score_interval"],
                                            p["score_duty_cycle"], first_iteration=iteration == 1,
                                            final=not keep_running, score_each_iteration=p["score_each_iteration"]
                                            or p["reproducible"]):
                    continue
                # ----------------------------------------------------------------- scoring round
                s0 = time.perf_counter()
                m_train, m_valid, outs, ys = self._score(state, score_jobs)
                if cfg.kind == "regression" and cfg.loss == "Huber" and outs is not None:
                    huber_delta = evaluate.huber_delta_standardised(outs, ys, p["huber_alpha"])
                    hp = hp.copy()
                    hp[K.HP_HUBER] = huber_delta
                last_score_dur = time.perf_counter() - s0
                last_score_start = s0
                scoring_time += last_score_dur
                timings["score"] += last_score_dur
                rows.append(self._history_row(time.perf_counter() - t_start, scoring_time, processed,
                                              iteration, m_train, m_valid))
                ref = m_valid if has_valid and m_valid else m_train
                last_ref = ref
                if cfg.kind == "binomial" and ref:
                    threshold = float(ref.get("threshold", 0.5))
                self._log("dask_dl: scoring: %s", _brief(m_train, m_valid, self.stop_key))
                series.append(ref.get(self.stop_key, float("nan")) if ref else float("nan"))
                if not keep_running:
                    break
                # best model (non-final scoring only, as H2O)
                cur_loss = ref.get(self.best_key, float("nan")) if ref else float("nan")
                if p["overwrite_with_best_model"] and history.is_better(cur_loss, best_loss, self.best_key):
                    best_state, best_loss, best_threshold = state.copy(), cur_loss, threshold
                # stopping rules
                if cfg.kind != "regression" and p["classification_stop"] != -1 and m_train \
                        and m_train.get("classification_error", 1.0) <= p["classification_stop"]:
                    stop_reason = "classification_stop"
                    break
                if cfg.kind == "regression" and p["regression_stop"] != -1 and m_train \
                        and m_train.get("mse", math.inf) <= p["regression_stop"]:
                    stop_reason = "regression_stop"
                    break
                if p["stopping_rounds"] > 0 and history.stop_early(series, p["stopping_rounds"],
                                                                   p["stopping_tolerance"], self.stop_key):
                    stop_reason = "early_stopping"
                    self._log("dask_dl: early stopping: %s did not improve over the last %d scoring rounds",
                              self.stop_key, p["stopping_rounds"])
                    break
        finally:
            if pending is not None:  # stopped early, or raised: the round submitted ahead is not wanted
                self._cancel(pending)
        if timed_out:
            stop_reason = "max_runtime_secs"
        # overwrite with the best model (dask_dl also does it after a timeout; see h2o-differences)
        if p["overwrite_with_best_model"] and best_state is not None:
            final_loss = last_ref.get(self.best_key, float("nan")) if last_ref else float("nan")
            if history.is_better(best_loss, final_loss, self.best_key) and best_loss != final_loss:
                state, threshold = best_state, best_threshold
                s0 = time.perf_counter()
                m_train, m_valid = self._score(state)[:2]
                restore_score = time.perf_counter() - s0
                scoring_time += restore_score
                timings["score"] += restore_score
                rows.append(self._history_row(time.perf_counter() - t_start, scoring_time, processed,
                                              iteration, m_train, m_valid))
                self._log("dask_dl: restored the best model (%s %.5g)", self.best_key, best_loss)
        return FitResult(state=state, history=rows, iterations=iteration, samples=processed,
                         epochs=processed / n, stop_reason=stop_reason, huber_delta=huber_delta,
                         threshold=threshold, run_seconds=time.perf_counter() - t_start,
                         train_samples_per_iteration=tspi, workers=len(self.data.blocks_by_worker),
                         timings={**timings, "iterations": iteration})


def _brief(m_train, m_valid, key) -> str:
    parts = []
    for name, m in (("train", m_train), ("valid", m_valid)):
        if m:
            parts.append(f"{name} {key}={m.get(key, float('nan')):.5g}")
    return ", ".join(parts)
