"""What the client sees of a running fit: the scoring history so far, a progress display and the
user's callbacks. Everything here runs on the client, in the fit's thread: progress never travels
through workers' stdout.

The display is a tqdm bar when tqdm is installed (``pip install "dask_dl[progress]"``) and someone
watches: a terminal, or Jupyter (a notebook widget when ipywidgets is there too). It shows once a
fit has run for ``BAR_DELAY_S``, so short fits stay silent. Elsewhere (no tqdm, output to a file or
a CI log, fits trained at once from threads by a grid or a cross-validation) the training loop's
log lines are the display.
``quiet_mode=True`` silences both. ``callbacks`` are called after every scoring round with that
round's scoring-history row as a dict; one that returns True stops the fit cleanly (stop reason
"callback"), and the model trained so far is kept.
"""
from __future__ import annotations

import logging
import sys
import threading
import time

import pandas as pd

logger = logging.getLogger(__name__)

BAR_DELAY_S = 1.0  # a fit shorter than this shows no bar


class FitObserver:
    """One fit's client-side view. The training loop calls ``start``, ``round_done``, ``scored`` and
    ``close``; users read ``scoring_history()`` (any thread) while the fit runs."""

    def __init__(self, callbacks=None, quiet: bool = False):
        self.callbacks = list(callbacks or [])
        self.quiet = bool(quiet)
        self._rows: list = []
        self._lock = threading.Lock()
        self._bar = None
        self._n_rows = 1
        self._shown_after = 0.0  # perf_counter time from which the bar may show
        self._last_metric = ""    # the last scoring's headline metric, for the bar
        self.stop_requested = False

    # ------------------------------------------------------------------ the training loop's side
    def start(self, rows: list, n_rows: int, total_samples: float, done_samples: int) -> None:
        """The fit's history list (the loop appends to it) and its size in samples."""
        with self._lock:
            self._rows = rows
        self._n_rows = max(1, int(n_rows))
        if not self.quiet:
            self._bar = _make_bar(total_samples / self._n_rows, done_samples / self._n_rows)
            self._shown_after = time.perf_counter() + BAR_DELAY_S

    @property
    def shows_bar(self) -> bool:
        """Whether a bar is the display (the loop's per-round log lines are not needed then)."""
        return self._bar is not None

    def round_done(self, samples: int, samples_per_s: float) -> None:
        if self._bar is not None:
            self._bar.n = samples / self._n_rows
            self._bar.set_postfix_str(self._postfix(samples_per_s), refresh=False)
            if time.perf_counter() >= self._shown_after:
                self._bar.refresh()

    def scored(self, row: dict) -> bool:
        """After a scoring round (its row is in the history): the callbacks; True when one asks to stop."""
        self._last_metric = _headline(row)
        for callback in self.callbacks:
            if callback(dict(row)) is True:
                self.stop_requested = True
        return self.stop_requested

    def close(self) -> None:
        if self._bar is not None:
            if time.perf_counter() < self._shown_after:
                self._bar.disable = True  # a short fit: it never showed, and closing leaves no trace
            self._bar.close()
            self._bar = None

    # ------------------------------------------------------------------------- the user's side
    def scoring_history(self) -> pd.DataFrame:
        """The scoring history so far, safe to read from another thread while the fit runs."""
        with self._lock:
            rows = list(self._rows)
        return pd.DataFrame(rows)

    def _postfix(self, samples_per_s: float) -> str:
        rate = f"{samples_per_s:,.0f} samples/s"
        return f"{rate}, {self._last_metric}" if self._last_metric else rate


def _headline(row: dict) -> str:
    """The row's latest validation metric (else training): one name=value for the bar."""
    for prefix in ("validation_", "training_"):
        for name in ("logloss", "deviance", "rmse", "mse"):
            value = row.get(prefix + name)
            if isinstance(value, float) and value == value:
                return f"{prefix.rstrip('_')} {name}={value:.4g}"
    return ""


def _interactive() -> bool:
    """Whether someone watches the output (a terminal or a Jupyter kernel, not a log file) of one
    fit: the fits a grid or a cross-validation trains at once, from threads, would share one line."""
    if threading.current_thread() is not threading.main_thread():
        return False
    return _in_jupyter() or bool(getattr(sys.stderr, "isatty", lambda: False)())


def _in_jupyter() -> bool:
    """Whether this process is a running Jupyter (IPython) kernel, not merely one that imported it."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None) is not None


def _make_bar(total_epochs: float, done_epochs: float):
    """A tqdm bar in epochs, or None without tqdm or without anyone watching."""
    if not _interactive():
        return None
    try:
        tqdm = _tqdm_class()
    except ImportError:
        return None
    return tqdm(total=total_epochs, initial=done_epochs, unit="epoch", delay=BAR_DELAY_S, leave=True,
                bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} epochs [{elapsed}<{remaining}{postfix}]",
                desc="dask_dl", file=sys.stderr)


def _tqdm_class():
    """tqdm's notebook widget inside a Jupyter kernel with ipywidgets, its text bar elsewhere."""
    if _in_jupyter():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm
            return tqdm
        except ImportError:
            pass
    from tqdm import tqdm
    return tqdm
