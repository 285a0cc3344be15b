"""dask_dl: H2O-3 style deep learning (HOGWILD! per-sample SGD, model averaging) on Dask."""
from .cluster.loop import ModelDivergedError
from .data.schema import DataError
from .estimators import DeepLearningClassifier, DeepLearningRegressor
from .model import DeepLearningModel

__all__ = ["DeepLearningClassifier", "DeepLearningRegressor", "DeepLearningModel", "DataError",
           "ModelDivergedError"]
__version__ = "0.1.0"
