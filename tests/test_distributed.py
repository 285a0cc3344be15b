"""Distribution modes: elastic averaging, single-node mode, measured iteration auto-tuning."""
import numpy as np
import pytest

from dask_dl import DeepLearningClassifier
from dask_dl.cluster import tasks
from dask_dl.nn.settings import settings_from_config
from dask_dl.nn.network import build_layout, initial_state
from dask_dl.params import resolve

from conftest import FakeClient, response_only_info

QUIET = dict(seed=1, quiet_mode=True)


def _local_models(client):
    return client.run(lambda: len(__import__("dask_dl.cluster.tasks", fromlist=["x"])._LOCAL_MODELS))


def test_elastic_averaging_learns_and_cleans_up(client2, iris):
    # shuffled rows: iris is sorted by class, and with a weak elastic pull each worker's persistent
    # local model would specialise on its own half (non-IID shards)
    iris = iris.sample(frac=1.0, random_state=0).reset_index(drop=True)
    clf = DeepLearningClassifier(hidden=[16], epochs=40, elastic_averaging=True, train_samples_per_iteration=300,
                                 **QUIET).fit(iris, "class")
    assert clf.model_.run["workers"] == 2 and clf.model_.run["iterations"] == 20
    assert clf.score(iris.drop(columns=["class"]), iris["class"]) > 0.9
    assert sum(_local_models(client2).values()) == 0  # worker-local models dropped after fit


def test_worker_keeps_its_local_model_between_iterations():
    """The second iteration trains the stored local model (pulled to the centre), not the centre."""
    X = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    layout = build_layout(4, [6], "Tanh", 2, True, 0.0, [0.0])
    ks = settings_from_config(resolve({"hidden": [6]}, "classification", 2))
    center = initial_state(layout, 1)

    def spec(fit):
        return tasks.RoundSpec(layout=layout, settings=ks, n_samples=200, n_seen=0.0, rng_seeds=(1, 1, 0),
                               position=0.0, order_seed=1, n_threads=1, elastic_key=fit, elastic_strength=1e-3)

    first, n1, _ = tasks.train_on_worker(tasks.ModelCopy(center), [(X, y)], spec=spec("fitA"))
    assert n1 == 200 and not np.array_equal(first, center)
    other_center = tasks.ModelCopy(initial_state(layout, 99))
    second, _, _ = tasks.train_on_worker(other_center, [(X, y)], spec=spec("fitA"))
    fresh, _, _ = tasks.train_on_worker(other_center, [(X, y)], spec=spec("fitB"))
    # continuing from the local model stays near it; a fresh worker starts from the (other) centre
    assert np.abs(second - first).mean() < np.abs(fresh - first).mean()
    assert tasks.drop_fit_state("fitA") == 1 and tasks.drop_fit_state("fitB") == 1


def test_single_node_mode_trains_on_one_worker(client2, iris):
    clf = DeepLearningClassifier(hidden=[8], epochs=5, single_node_mode=True, **QUIET).fit(iris, "class")
    assert clf.model_.run["workers"] == 1 and clf.model_.run["samples"] == 750


def test_auto_tuning_adjusts_iteration_size(client2, wine, dl_log):
    # long enough that a tenth of the fit (the auto size's cap) is more than the first size, an epoch
    DeepLearningClassifier(hidden=[8], epochs=50, seed=1).fit(wine, "type")
    tuned = [m for m in dl_log if "auto-tuned train_samples_per_iteration" in m]
    # a tiny network: communication dominates, so iterations must grow (H2O's rule, factor <= 2)
    assert tuned and "target 5.0%" in tuned[0]
    before, after = (int(x) for x in tuned[0].split("train_samples_per_iteration ")[1].split(" (")[0].split(" -> "))
    assert after > before and after <= 2 * before


def test_replicated_data_iterates_over_every_workers_copy(client2, iris):
    kw = dict(hidden=[8], epochs=4, train_samples_per_iteration=-1, **QUIET)
    rep = DeepLearningClassifier(**kw).fit(iris, "class").model_.run
    part = DeepLearningClassifier(replicate_training_data=False, **kw).fit(iris, "class").model_.run
    # H2O: -1 = all local data; replicated, each of the 2 workers holds all 150 rows
    assert rep["replicated_training_data"] and rep["workers"] == 2
    assert rep["train_samples_per_iteration"] == 300 and rep["iterations"] == 2 and rep["samples"] == 600
    assert not part["replicated_training_data"] and part["workers"] == 2
    assert part["train_samples_per_iteration"] == 150 and part["iterations"] == 4 and part["samples"] == 600


def _replicated_visits(n_workers: int, threads: int, sizes: list, epochs: int, stream) -> list:
    """How often each row of each block is trained when ``n_workers`` replicas stream ``epochs``
    epochs in 7 iterations (which do not line up with the epochs); ``stream(wi, streamed)`` gives
    a worker's (position, order seed, segment)."""
    from dask_dl.nn.hogwild import shard_plan
    share = sum(sizes) // n_workers * epochs  # each worker's samples over the fit
    chunks = [share // 7] * 6 + [share - 6 * (share // 7)]
    visits = [np.zeros(n, dtype=int) for n in sizes]
    for wi in range(n_workers):
        streamed = 0
        for chunk in chunks:
            position, seed, segment = stream(wi, streamed)
            for bi, rows in shard_plan(sizes, n_samples=chunk, n_threads=threads, position=position,
                                       order_seed=seed, segment=segment):
                np.add.at(visits[bi], np.concatenate(rows), 1)
            streamed += chunk
    return visits


@pytest.mark.parametrize("n_workers,threads,sizes", [(2, 1, [600, 400]), (2, 2, [600, 400]), (4, 2, [800, 800])])
def test_replicated_workers_split_each_pass_between_them(n_workers, threads, sizes):
    """Every worker holds every row: over three epochs (each worker 1/P of the rows per epoch) the
    P workers together train on every row once per epoch, as one node would."""
    from dask_dl.cluster.loop import worker_stream
    total = sum(sizes)
    visits = _replicated_visits(n_workers, threads, sizes, 3,
                                lambda wi, streamed: worker_stream(wi, n_workers, streamed, total, True, 7))
    # a thread resumes at round(position x its segment), and the blocks' shares of an iteration are
    # rounded: a row or two per thread and iteration may be visited once more or less
    for v in visits:
        assert v.sum() == pytest.approx(3 * len(v), abs=n_workers * threads * 7)
        assert np.mean(v != 3) < 0.05, np.bincount(v)
    # before each worker walked its own part of every pass (evenly spaced starts in one stream),
    # the workers' halves overlapped after the first epoch: a quarter of the rows off by one or more
    old = _replicated_visits(n_workers, threads, sizes, 3,
                             lambda wi, streamed: (streamed / total + wi / n_workers, 7, (0, 1)))
    assert all(np.mean(v != 3) > 0.2 for v in old)
    # partitioned data: each worker streams its own rows in an order of its own
    assert worker_stream(1, 2, 50, 100, False, 7) == (0.5, 7 + 1000003, (0, 1))


def test_replicas_live_on_every_worker_and_survive_the_memory_manager(client2):
    import time
    from dask_dl.cluster.replication import replicate_blocks
    workers = sorted(client2.nthreads())
    blocks = [(np.full((5, 2), i, np.float32), np.zeros(5, np.float32)) for i in range(3)]
    futures = client2.scatter(blocks, workers=[workers[0]])
    copies = replicate_blocks(client2, futures, workers)
    assert copies[workers[0]] == futures  # the holder keeps its own blocks
    time.sleep(3)  # longer than the Active Memory Manager's 2 s interval
    who = client2.who_has(copies[workers[1]])
    assert all(workers[1] in who[f.key] for f in copies[workers[1]])
    assert [float(b[0][0, 0]) for b in client2.gather(copies[workers[1]])] == [0.0, 1.0, 2.0]


def test_replicas_asked_for_while_their_blocks_are_computed_follow_them(client2):
    """Placement asks for the copies while the blocks are still being encoded (``submit_replicas``
    with the worker computing each): each copy is made as its block is done."""
    import time
    from dask_dl.cluster.replication import replicate_blocks, submit_replicas
    workers = sorted(client2.nthreads())

    def slow_block(i):
        time.sleep(0.5)
        return np.full((5, 2), i, np.float32), np.zeros(5, np.float32)

    futures = [client2.submit(slow_block, i, workers=[workers[i % 2]], pure=False) for i in range(3)]
    asked = submit_replicas(client2, futures, workers, {f.key: workers[i % 2] for i, f in enumerate(futures)})
    assert not any(f.done() for f in futures)  # asked for before any block exists
    copies = replicate_blocks(client2, futures, workers, submitted=asked)
    for wi, w in enumerate(workers):
        assert [float(b[0][0, 0]) for b in client2.gather(copies[w])] == [0.0, 1.0, 2.0]
        assert [f for i, f in enumerate(copies[w]) if i % 2 == wi] == futures[wi::2]  # its own blocks
        made = [f for i, f in enumerate(copies[w]) if i % 2 != wi]
        who = client2.who_has(made)
        assert made and all(f.key.startswith("dask_dl-replicate-") and w in who[f.key] for f in made)


def test_a_partition_without_responses_is_not_replicated(client2, iris):
    """A pandas partition whose rows all lack a response encodes to an empty block: its copy is
    dropped and both workers train on the other's rows."""
    data = iris.copy()
    data.loc[75:, "class"] = None
    clf = DeepLearningClassifier(hidden=[4], epochs=1, seed=1, client=client2, quiet_mode=True).fit(data, "class")
    assert clf.model_.run["replicated_training_data"] and clf.model_.run["workers"] == 2
    assert clf.model_.run["samples"] == 75


def test_replication_only_when_it_fits_in_a_worker(dl_log):
    from dask_dl.cluster.replication import wants_replication
    from dask_dl.params import resolve

    def cfg(**values):
        return resolve(values, "regression")

    info = response_only_info(1_000_000)
    need = 4_000_000  # encoded bytes: a 0-input frame is its float32 response
    p = cfg()
    assert wants_replication(FakeClient([4 * need, 4 * need]), info, p, 2) is True
    assert wants_replication(FakeClient([0, 0]), info, p, 2) is True  # no limits: this machine's memory
    huge = response_only_info(2**40)
    assert wants_replication(FakeClient([0, 0]), huge, p, 2) is False  # 4 TB: never copied blindly
    assert wants_replication(FakeClient([4 * need]), info, p, 1) is False  # nothing to replicate to
    assert wants_replication(FakeClient([4 * need] * 2), info, cfg(replicate_training_data=False), 2) is False
    assert wants_replication(FakeClient([4 * need] * 2), info, cfg(reproducible=True), 2) is False
    assert wants_replication(FakeClient([4 * need] * 2), info, cfg(single_node_mode=True), 2) is False
    assert wants_replication(FakeClient([4 * need, need]), info, p, 2) is False  # the smallest decides
    assert any("exceeds half a worker's memory limit" in m for m in dl_log)


def test_pipelined_rounds_train_exactly_as_sequential_ones(client2, wine):
    """Short rounds go out before the previous one returns (from its average, where it lies); the
    result is the same model, bit for bit, as waiting for every round."""
    from dask_dl import job
    from dask_dl.data.schema import RESPONSE, column_role
    from dask_dl.params import resolve
    kw = dict(hidden=[16, 8], epochs=2, seed=7, reproducible=True, quiet_mode=True, train_samples_per_iteration=2000,
              score_each_iteration=True)
    frame = wine.rename(columns={"type": RESPONSE})
    columns = job.ColumnRoles(response="type", features={c: column_role(c, frame.dtypes[c]) for c in frame.columns
                                                                if c != RESPONSE})
    cfg = resolve(kw, "classification", n_classes=2)
    piped = job.train(frame, columns, cfg)
    plain = job.train(frame, columns, cfg, pipeline_max_round_s=0.0)
    iterations = piped.run["iterations"]
    assert iterations >= 6 and piped.run["pipelined"] == iterations - 1
    assert plain.run["pipelined"] == 0
    assert np.array_equal(piped.state, plain.state)
    cols = ["epochs", "samples", "training_classification_error", "validation_classification_error"]
    hp, hs = piped.scoring_history(), plain.scoring_history()
    assert hp[[c for c in cols if c in hp]].equals(hs[[c for c in cols if c in hs]])


def _train_keys_seen(client) -> set:
    return set(client.run_on_scheduler(lambda dask_scheduler: sorted({str(t[0]) for t in dask_scheduler.transition_log
                                                                      if "dask_dl-train" in str(t[0])})))


def test_a_stop_cancels_the_round_submitted_ahead(client2, wine):
    """classification_stop ends the fit after the first round: the round already submitted behind it
    is dropped, never counted, and leaves nothing on the cluster."""
    import time
    before = _train_keys_seen(client2)
    clf = DeepLearningClassifier(hidden=[8], epochs=50, seed=3, quiet_mode=True, train_samples_per_iteration=500,
                                 score_each_iteration=True, classification_stop=0.99).fit(wine, "type")
    run = clf.model_.run
    assert run["stop_reason"] == "classification_stop" and run["iterations"] == 1 and run["samples"] == 500
    assert run["pipelined"] == 0
    rounds = {k.rsplit("-", 2)[1] for k in _train_keys_seen(client2) - before}
    assert rounds == {"1", "2"}  # round 2 went out ahead, and no later one
    left = ["?"]
    for _ in range(50):
        left = client2.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks
                                                                if "dask_dl-train" in str(k)])
        if not left:
            break
        time.sleep(0.1)
    assert left == []


def test_concurrent_fits_share_the_cluster_boundedly_and_leave_nothing(client2, iris, monkeypatch, dl_log):
    """Fits from several threads (grids, cross-validation) finish without deadlock, at most
    job.MAX_CONCURRENT_FITS training at once (the others say they wait), and leave no task behind."""
    import threading
    import time
    from dask_dl import job
    monkeypatch.setattr(job, "MAX_CONCURRENT_FITS", 2)
    monkeypatch.setattr(job, "_SLOTS", {})
    before = set(client2.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks]))
    training, peak, lock = [0], [0], threading.Lock()
    run = job.loop.IterationLoop.run

    def counted_run(self, state, resume=None):
        with lock:
            training[0] += 1
            peak[0] = max(peak[0], training[0])
        try:
            return run(self, state, resume)
        finally:
            with lock:
                training[0] -= 1
    monkeypatch.setattr(job.loop.IterationLoop, "run", counted_run)
    fits, errors = [], []

    def fit(seed):
        try:
            fits.append(DeepLearningClassifier(hidden=[8], epochs=20, seed=seed, client=client2).fit(iris, "class"))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=fit, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(fits) == 6
    assert 1 <= peak[0] <= 2 and any("fits are training on this cluster" in m for m in dl_log)
    for _ in range(50):
        left = set(client2.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])) - before
        if not left:
            break
        time.sleep(0.1)
    assert left == set()


def test_persisted_partitions_are_encoded_where_they_lie_and_evenly(client2):
    """A persisted partition is encoded on its holder (a wide raw partition is slow to move) while
    that worker is under its share; the rest go to the least loaded worker (round-robin otherwise)."""
    import dask.dataframe as dd
    import pandas as pd
    from distributed import futures_of, wait
    from dask_dl.cluster.placement import _encoding_workers
    a, b = sorted(client2.nthreads())
    df = pd.DataFrame({"x": np.arange(40.0)})
    on_b = client2.persist(dd.from_pandas(df, npartitions=4, sort=False), workers=[b])
    wait(futures_of(on_b))
    assert set(w for ws in client2.who_has(futures_of(on_b)).values() for w in ws) == {b}
    assert _encoding_workers(client2, on_b, [a, b]) == [b, b, a, a]  # b's share stays on b, the rest moves
    on_a = client2.persist(dd.from_pandas(df + 1.0, npartitions=4, sort=False), workers=[a])  # other keys
    wait(futures_of(on_a))
    assert _encoding_workers(client2, on_a.rename(columns={"x": "y"}), [a, b]) == [a, a, b, b]
    lazy = dd.from_pandas(df, npartitions=3, sort=False)
    assert _encoding_workers(client2, lazy, [a, b]) == [a, b, a]  # not persisted: round-robin


def test_a_one_partition_validation_frame_is_scored_by_every_worker(client2, iris, monkeypatch):
    """Each worker holds and scores a share of the validation rows at every scoring round, so a
    round's scoring waits for half the rows on two workers, not for all of them on one."""
    import dask.dataframe as dd
    from dask_dl import job
    from dask_dl.cluster import loop
    valid = dd.from_pandas(iris, npartitions=1)
    assert job._validation_partitioned(client2, valid, 2).npartitions == 2
    assert job._validation_partitioned(client2, valid, 1).npartitions == 1
    assert job._validation_partitioned(client2, iris, 2).npartitions == 2  # pandas: row ranges
    holders = []
    submit = loop.IterationLoop._submit_scoring

    def recording(self, model_f, workers=None, **sets):
        who = self.client.who_has(self.data.score_valid)
        holders.append(sorted(w for f in self.data.score_valid for w in who[f.key]))
        return submit(self, model_f, workers, **sets)

    monkeypatch.setattr(loop.IterationLoop, "_submit_scoring", recording)
    clf = DeepLearningClassifier(hidden=[8], epochs=1, seed=1, client=client2, quiet_mode=True)
    clf.fit(dd.from_pandas(iris, npartitions=2), "class", validation_data=valid)
    assert holders and all(h == sorted(client2.nthreads()) for h in holders)
    assert clf.model_.scoring_history()["validation_classification_error"].iloc[1:].notna().all()


@pytest.mark.parametrize("rate", [0.9, 0.5])
def test_the_centre_moves_towards_the_workers_mean_by_the_moving_rate(rate):
    """elastic_averaging_moving_rate: from the second round the centre becomes
    rate * workers' mean + (1 - rate) * previous centre (the first round takes the mean)."""
    from types import SimpleNamespace
    from dask_dl.cluster.loop import IterationLoop
    from dask_dl.params import resolve
    cfg = resolve({"elastic_averaging": True, "elastic_averaging_moving_rate": rate}, "regression")
    old, mean = np.zeros(4, np.float32), np.ones(4, np.float32)
    runner = SimpleNamespace(cfg=cfg)
    np.testing.assert_allclose(IterationLoop._next_center(runner, SimpleNamespace(iteration=2, state=old), mean), rate)
    np.testing.assert_array_equal(IterationLoop._next_center(runner, SimpleNamespace(iteration=1, state=old), mean), 1)
