"""dask_dl: H2O-3 style deep learning (HOGWILD! per-sample SGD, model averaging) on Dask.

Public names load lazily (PEP 562): worker processes import only the modules their tasks use
(``dask_dl.cluster.tasks`` and the kernels), not the estimators and scikit-learn — about 100 MB of
resident memory per worker, which matters out of core. A warmed-up worker holds ~276 MiB
(benchmarks/README.md, issue 16); a fit that would not fit in the workers' memory limits raises
``WorkerMemoryError`` before placing its data, naming the figures.
"""
import importlib as _importlib
import logging as _logging
import sys as _sys

_log = _logging.getLogger("dask_dl")
if not _log.handlers:  # progress lines are visible by default (quiet_mode=True silences them)
    _handler = _logging.StreamHandler(_sys.stderr)
    _handler.setFormatter(_logging.Formatter("%(message)s"))
    _log.addHandler(_handler)
    _log.setLevel(_logging.INFO)
    _log.propagate = False

_PUBLIC = {
    "DeepLearningClassifier": ".estimators",
    "DeepLearningRegressor": ".estimators",
    "DeepLearningAutoencoder": ".estimators",
    "GridSearch": ".grid",
    "DeepLearningModel": ".model",
    "DataError": ".errors",
    "ModelDivergedError": ".errors",
    "ClusterUnavailableError": ".errors",
    "WorkerMemoryError": ".cluster.memory",
    "load_model": ".model",
    "save_model": ".model",
    "read_csv": ".data.io",
    "read_parquet": ".data.io",
}
__all__ = list(_PUBLIC)
__version__ = "0.1.0"


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'dask_dl' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)


def _precompile_soon() -> None:
    """Start ``nn.precompile.start`` (never failing the import that triggered it)."""
    try:
        _importlib.import_module(".nn.precompile", __name__).start()
    except Exception:  # noqa: BLE001 - an optimisation only: the fit compiles as before
        pass


# a client's import: on a fresh install, compile the default kernel in the background while the user
# reads data and the cluster starts (issue 21; DASK_DL_PRECOMPILE=0: off; never in Dask workers)
_precompile_soon()
