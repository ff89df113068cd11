"""The one exception tree of mlsm.

Setup problems raise; per-record problems never do (they are data in the results).

    MlsmError
    ├── ModelDefinitionError
    │   └── SummaryModelListException
    ├── ModelLoadError
    │   └── ProjectError
    ├── UnreleasedModelError
    ├── InputError
    │   └── UnknownIdField
    ├── StoreError
    │   ├── StoreConfigError
    │   └── StoreUnavailable
    └── RunError
        └── RunStopped
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "MlsmError",
    "ModelDefinitionError",
    "ModelLoadError",
    "ProjectError",
    "RunError",
    "RunStopped",
    "StoreConfigError",
    "StoreError",
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


class UnreleasedModelError(MlsmError):
    """An ``active`` model comes from unreleased code (a non-release branch or uncommitted changes)."""


class InputError(MlsmError):
    """An input cannot be read: missing file, unknown format, unreadable header."""


class UnknownIdField(InputError):
    """The id field named for a run is not in the input."""


class StoreError(MlsmError):
    """A result store cannot be used."""


class StoreConfigError(StoreError):
    """A store URL is malformed or names an unknown backend."""


class StoreUnavailable(StoreError):
    """A store cannot be reached, or refused a write, after retrying."""


class RunError(MlsmError):
    """A run cannot start or continue (for example, resuming a run that does not exist)."""


class RunStopped(RunError):
    """A run stopped before its end (its store stayed unavailable); it resumes after its last committed chunk."""
