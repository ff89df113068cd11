"""The one exception tree of mlsm.

Setup problems raise; per-record problems never do (they are data in the results).

    MlsmError
    ├── ModelDefinitionError
    │   └── SummaryModelListException
    ├── ModelLoadError
    │   ├── ProjectError
    │   └── ModelCodeChanged
    ├── UnreleasedModelError
    ├── ModelTimeout
    ├── InputError
    │   ├── UnknownIdField
    │   ├── InvalidId
    │   └── InvalidOutcome
    ├── StoreError
    │   ├── StoreConfigError
    │   ├── StoreNotFound
    │   └── StoreUnavailable
    ├── RunError
    │   └── RunStopped
    └── ServiceError
        ├── ReloadError
        ├── RequestError
        └── ResultNotStored
            ├── QueueFull
            └── ResultRefused
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "InvalidId",
    "InvalidOutcome",
    "MlsmError",
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
    "RunStopped",
    "ServiceError",
    "StoreConfigError",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "SummaryModelListException",
    "UnknownIdField",
    "UnreleasedModelError",
]


class MlsmError(Exception):
    """Base of every error mlsm raises on purpose."""


class ModelDefinitionError(MlsmError, ValueError):
    """A model or model set is defined wrongly (status, duplicate name@version, field spec)."""


class SummaryModelListException(ModelDefinitionError):
    """A summary model needs a model/version that is not in the run (kept from the original API)."""


class ModelLoadError(MlsmError):
    """A model source (file, module, project) cannot be imported or holds no models."""


class ProjectError(ModelLoadError):
    """A project file (``mlsm.toml``) is invalid, or one of its model sources cannot be fetched or pinned."""


class ModelCodeChanged(ModelLoadError):
    """A process loading a run's models again (a worker, a Ray actor) found other code than the run recorded."""


class UnreleasedModelError(MlsmError):
    """An ``active`` model comes from unreleased code (a non-release branch or uncommitted changes)."""


class ModelTimeout(MlsmError):
    """A model call ran past its time limit; reported in the model's result slot, never raised to callers."""


class InputError(MlsmError):
    """An input cannot be read: missing file, unknown format, unreadable header."""


class UnknownIdField(InputError):
    """The id field named for a run is not in the input."""


class InvalidId(InputError):
    """A value that cannot be a record id; ``reason`` completes "the id ..." and ``missing`` tells a value that is
    absent or blank from one that is unusable (a batch run rejects its row, the service answers 422)."""

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(f"the id {reason}")
        self.reason = reason
        self.missing = missing


class InvalidOutcome(InputError):
    """An outcome line that cannot be loaded (no or bad outcome value, bad decision time); ``reason`` says why. A
    load rejects the line and goes on; the service answers 422."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreError(MlsmError):
    """A result store cannot be used."""


class StoreConfigError(StoreError):
    """A store URL is malformed or names an unknown backend."""


class StoreNotFound(StoreError):
    """A store opened for reading does not exist: no database file, no mlsm tables, no such collection."""


class StoreUnavailable(StoreError):
    """A store cannot be reached, or refused a write, after retrying."""


class RunError(MlsmError):
    """A run cannot start or continue (for example, resuming a run that does not exist)."""


class RunStopped(RunError):
    """A run stopped before its end (its store stayed unavailable); it resumes after its last committed chunk."""


class ServiceError(MlsmError):
    """The scoring service cannot start or run as configured (an option, the API key file, the address)."""


class ReloadError(ServiceError):
    """A model reload was refused (import, plan or preflight failed); ``reasons`` lists why, one line each."""

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message)
        self.reasons = reasons


class RequestError(ServiceError):
    """A request the service refuses before scoring it (400, 413, 422): ``status`` and what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ResultNotStored(ServiceError):
    """A scored result could not be stored, so its request is answered 503 and nothing is acknowledged."""


class QueueFull(ResultNotStored):
    """The result queue stayed full for longer than a request may wait for room."""


class ResultRefused(ResultNotStored):
    """The store refused a request's results for good (not a passing outage): 422, retrying will not help."""
