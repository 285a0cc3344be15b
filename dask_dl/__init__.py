"""dask_dl: H2O-3 style deep learning (HOGWILD! per-sample SGD, model averaging) on Dask."""
import logging as _logging
import sys as _sys

_log = _logging.getLogger("dask_dl")
if not _log.handlers:  # progress lines are visible by default (quiet_mode=True silences them)
    _handler = _logging.StreamHandler(_sys.stderr)
    _handler.setFormatter(_logging.Formatter("%(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(_logging.INFO)
    _log.propagate = False
from .cluster.loop import ModelDivergedError
from .data.io import read_csv, read_parquet
from .data.schema import DataError
from .estimators import DeepLearningClassifier, DeepLearningRegressor
from .model import DeepLearningModel
from .persist import load_model, save_model

__all__ = ["DeepLearningClassifier", "DeepLearningRegressor", "DeepLearningModel", "DataError",
           "ModelDivergedError", "load_model", "save_model", "read_csv", "read_parquet"]
__version__ = "0.1.0"
