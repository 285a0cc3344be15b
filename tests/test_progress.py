"""Issue 21, point 1: progress reaches the client — callbacks that can stop a fit, the scoring history
read while fit runs, a tqdm bar (log lines without tqdm), dashboard task names, quiet_mode."""
import threading
import time

import numpy as np
import pytest

from dask_dl import DeepLearningClassifier, DeepLearningRegressor, load_model
from dask_dl import progress

ROUNDS = dict(hidden=[8], seed=1, train_samples_per_iteration=100, score_each_iteration=True)


def test_a_callback_that_stops_after_3_rounds_stops_the_fit_with_a_usable_model(client2, iris, tmp_path):
    rows = []

    def stop_after_three(row):
        rows.append(row)
        return len(rows) >= 3

    clf = DeepLearningClassifier(epochs=200, callbacks=[stop_after_three], quiet_mode=True, client=client2,
                                 **{**ROUNDS, "train_samples_per_iteration": 1500}).fit(iris, "class")
    history = clf.model_.scoring_history()
    assert len(rows) == 3 and len(history) == 4  # row 0 (H2O's dummy row) and the 3 scored rounds
    assert clf.model_.run["stop_reason"] == "callback"
    assert clf.model_.run["epochs"] == pytest.approx(3 * 1500 / 150, rel=0.01)  # 3 rounds of 1500 samples
    last = history.iloc[-1].to_dict()  # each call got that round's row
    assert set(rows[-1]) == set(last)
    assert all(rows[-1][k] == v or (v != v and rows[-1][k] != rows[-1][k]) for k, v in last.items())
    assert {"epochs", "samples", "training_logloss"} <= set(rows[0])
    assert clf.score(iris.drop(columns="class"), iris["class"]) > 0.8
    clf.model_.save(str(tmp_path / "m.npz"))  # callables are not model data: the model saves
    assert load_model(str(tmp_path / "m.npz")).params["callbacks"] is None


def test_callbacks_are_checked_and_shared_by_clones():
    from sklearn.base import clone
    with pytest.raises(ValueError, match="callbacks.*a list of callables"):
        DeepLearningClassifier(callbacks=[print, 3]).fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="callbacks.*None or a list of callables"):
        DeepLearningClassifier(callbacks=print).fit(np.zeros((4, 2)), [0, 1, 0, 1])
    recorder = [lambda row: None]
    assert clone(DeepLearningClassifier(callbacks=recorder)).callbacks is recorder


def test_the_scoring_history_is_readable_while_fit_runs(client2, wine):
    seen, done = [], threading.Event()
    reg = DeepLearningRegressor(epochs=4, quiet_mode=True, client=client2, **ROUNDS)

    def watch():
        while not done.is_set():
            try:
                seen.append(len(reg.scoring_history()))
            except RuntimeError:  # not fitting yet, not fitted yet
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        reg.fit(wine.iloc[:500], "quality")
    finally:
        done.set()
        watcher.join()
    final = len(reg.scoring_history())
    partial = [n for n in seen if 0 < n < final]
    assert partial, f"no partial history seen while fitting ({sorted(set(seen))}, final {final})"
    assert partial == sorted(partial)  # it grows


class _Bar:
    """Stands in for tqdm: records what the fit shows."""
    made = []

    def __init__(self, **kwargs):
        self.kwargs, self.n, self.postfixes, self.closed = kwargs, kwargs.get("initial", 0), [], False
        _Bar.made.append(self)

    def set_postfix_str(self, s, refresh=True):
        self.postfixes.append(s)

    def refresh(self):
        pass

    def close(self):
        self.closed = True


def test_a_progress_bar_with_tqdm_and_log_lines_without(client2, iris, dl_log, monkeypatch):
    monkeypatch.setattr(progress, "_interactive", lambda: True)  # a terminal or Jupyter
    monkeypatch.setattr(progress, "_tqdm_class", lambda: _Bar)
    _Bar.made.clear()
    DeepLearningClassifier(epochs=2, client=client2, **ROUNDS).fit(iris, "class")
    bar, = _Bar.made
    assert bar.kwargs["total"] == pytest.approx(2.0) and bar.kwargs["unit"] == "epoch" and bar.closed
    assert bar.n == pytest.approx(2.0)
    assert "samples/s" in bar.postfixes[-1] and "training logloss=" in bar.postfixes[-1]
    assert not [r for r in dl_log if "dask_dl: iteration" in r or "scoring:" in r]  # the bar replaces them

    def no_tqdm():
        raise ImportError("no tqdm")
    monkeypatch.setattr(progress, "_tqdm_class", no_tqdm)
    DeepLearningClassifier(epochs=2, client=client2, **ROUNDS).fit(iris, "class")
    lines = [r for r in dl_log if "dask_dl: iteration" in r]
    assert lines and all("s left" in r for r in lines)


def test_no_bar_when_nobody_watches(client2, iris, dl_log, monkeypatch):
    monkeypatch.setattr(progress, "_interactive", lambda: False)  # output to a file or a CI log
    monkeypatch.setattr(progress, "_tqdm_class", lambda: _Bar)
    _Bar.made.clear()
    DeepLearningClassifier(epochs=1, client=client2, **ROUNDS).fit(iris, "class")
    assert not _Bar.made and [r for r in dl_log if "dask_dl: iteration" in r]


def test_quiet_mode_silences_the_bar_and_the_lines(client2, iris, dl_log, monkeypatch):
    monkeypatch.setattr(progress, "_interactive", lambda: True)
    monkeypatch.setattr(progress, "_tqdm_class", lambda: _Bar)
    _Bar.made.clear()
    DeepLearningClassifier(epochs=1, quiet_mode=True, client=client2, **ROUNDS).fit(iris, "class")
    assert not _Bar.made and not list(dl_log)


def test_dashboard_task_names_say_what_each_task_is(client2, iris):
    client2.get_task_stream(start=time.time())  # the stream is read back from now on
    t0 = time.time()
    DeepLearningClassifier(epochs=1, quiet_mode=True, client=client2, **ROUNDS).fit(iris, "class")
    prefixes = {_prefix(t["key"]) for t in client2.get_task_stream(start=t0)}
    assert {"dask_dl-encode", "dask_dl-train", "dask_dl-average", "dask_dl-score"} <= prefixes, prefixes


def _prefix(key) -> str:
    from dask.utils import key_split
    return key_split(key)


def test_concurrent_fits_in_threads_log_instead_of_drawing_bars(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(progress._interactive()))
    worker.start()
    worker.join()
    assert seen == [False] and progress._interactive()
