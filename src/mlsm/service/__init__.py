"""``mlsm serve``: the real-time scoring service, the same engine as batch runs behind HTTP.

Modules: :mod:`~mlsm.service.settings` (options), :mod:`~mlsm.service.modelset` (the live set and safe reload),
:mod:`~mlsm.service.grouping` (grouping concurrent records), :mod:`~mlsm.service.writer` (the background writer),
:mod:`~mlsm.service.metrics` (Prometheus), :mod:`~mlsm.service.runtime` (the parts and their lifecycle),
:mod:`~mlsm.service.app` (HTTP: routes, errors, auth), :mod:`~mlsm.service.openapi` (model schemas),
:mod:`~mlsm.service.server` (uvicorn, signals, worker processes). Needs the ``service`` extra.
"""

from __future__ import annotations

from mlsm.service.settings import ServiceSettings

__all__ = ["ServiceSettings"]
