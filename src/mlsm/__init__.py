"""mlsm — run many versioned data-science models against records, in batch and in real time, reliably.

The original API (``Model``, ``SummaryModel``, ``RunModels``, ``RunSummaryModels``, ``RunModelsAll``,
``SummaryModelListException``) works exactly as it did; ``Field``, ``Engine`` and the stores are built on it.
"""

from __future__ import annotations

from mlsm._version import __version__
from mlsm.engine import Engine
from mlsm.errors import (
    InputError,
    InvalidId,
    MlsmError,
    ModelCodeChanged,
    ModelDefinitionError,
    ModelLoadError,
    ModelTimeout,
    ProjectError,
    QueueFull,
    ReloadError,
    RequestError,
    ResultNotStored,
    ResultRefused,
    RunError,
    RunStopped,
    ServiceError,
    StoreConfigError,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
    SummaryModelListException,
    UnknownIdField,
    UnreleasedModelError,
)
from mlsm.fields import MISSING, Field
from mlsm.legacy import RunModels, RunModelsAll, RunSummaryModels
from mlsm.models import STATUSES, Model, SummaryModel
from mlsm.stores import DEFAULT_STORE, RunRecord, Store, open_store

__all__ = [
    "DEFAULT_STORE",
    "MISSING",
    "STATUSES",
    "Engine",
    "Field",
    "InputError",
    "InvalidId",
    "MlsmError",
    "Model",
    "ModelCodeChanged",
    "ModelDefinitionError",
    "ModelLoadError",
    "ModelTimeout",
    "ProjectError",
    "QueueFull",
    "ReloadError",
    "RequestError",
    "ResultNotStored",
    "ResultRefused",
    "RunError",
    "RunModels",
    "RunModelsAll",
    "RunRecord",
    "RunStopped",
    "RunSummaryModels",
    "ServiceError",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "SummaryModel",
    "SummaryModelListException",
    "UnknownIdField",
    "UnreleasedModelError",
    "__version__",
    "open_store",
]
