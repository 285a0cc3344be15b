"""The exceptions dask_dl raises on purpose, in one place (the bottom layer: anything may raise them)."""
from __future__ import annotations


class DataError(ValueError):
    """Bad input data, named by column."""


class ModelFileError(ValueError):
    """A model file that is damaged (truncated, corrupt, missing a field, NaN weights) or not a
    dask_dl model at all; the message names the file where it is known."""


class ClusterUnavailableError(RuntimeError):
    """The Dask cluster cannot do the fit's work: no worker left, all paused, or rounds failing."""


class ModelDivergedError(RuntimeError):
    """Training produced NaN/inf or exploding weights; ``last_good_model`` holds the last sound state."""

    def __init__(self, message: str, last_good_state=None, history_rows=None):
        super().__init__(message)
        self.last_good_state = last_good_state
        self.history_rows = history_rows or []
        self.last_good_model = None  # set by the training job once the model is assembled


def exception_chain(err: BaseException | None):
    """``err`` and the exceptions it was raised from or during (``__cause__``, ``__context__``),
    each once."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__
