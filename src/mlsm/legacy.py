"""The original mlsm API, kept working exactly: ``RunModels``, ``RunSummaryModels``, ``RunModelsAll``.

Records use the nested layout ``record['data'][model.name][model.version]`` and get their results in
``record['results']``. With a pymongo ``Database``, ``RunModelsAll`` stores each record's results as
``{dbIdentifier: id, '_current': 0, '_timestamp': <unix seconds>, 'results': ...}`` and increments the
``_current`` of that id's older documents, so 0 is always the newest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from mlsm.documents import make_document
from mlsm.engine import Engine, run_single
from mlsm.errors import SummaryModelListException
from mlsm.models import Model, SummaryModel

__all__ = ["RunModels", "RunModelsAll", "RunSummaryModels"]


def RunModels(models: Sequence[Model], record: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - original name
    """Run ``models`` on one nested-layout record; returns the record with ``results`` set."""
    record["results"] = {}
    for model in models:
        run_single(model, _nested_data(record, model), record["results"])
    return record


def RunSummaryModels(  # noqa: N802 - original name
    summaryModels: Sequence[SummaryModel],  # noqa: N803
    record: dict[str, Any],
) -> dict[str, Any]:
    """Run summary models on a record that already has ``results``; raises when a needed result is absent."""
    results = record.setdefault("results", {})
    missing = [
        f"{need} (needed by {summary.key})"
        for summary in summaryModels
        for need in summary.needs()
        if not _has_result(results, need)
    ]
    if missing:
        raise SummaryModelListException("summary models need results that are not in the record: " + ", ".join(missing))
    for summary in summaryModels:
        run_single(summary, _nested_data(record, summary), results)
    return record


def RunModelsAll(  # noqa: N802 - original name
    models: Sequence[Model],
    records: Iterable[dict[str, Any]],
    summaryModels: Sequence[SummaryModel] = (),  # noqa: N803
    verbose: bool = False,
    db: Any = None,
    collection: str | None = None,
    dbIdentifier: str | None = None,  # noqa: N803
) -> list[dict[str, Any]]:
    """Run every model, then every summary model, on each record; optionally store results in MongoDB.

    Raises ``SummaryModelListException`` once, before any record is scored, naming every missing
    ``name@version``.
    """
    engine = Engine(models, summaryModels, layout="nested")
    store = None
    id_field = dbIdentifier or ""
    if db is not None and collection and id_field:
        from mlsm.stores.mongo import MongoStore

        store = MongoStore.from_database(db, collection=collection, id_field=id_field)
    items: Iterable[dict[str, Any]] = records
    if verbose:
        from tqdm import tqdm

        items = tqdm(records, unit="records")
    out = []
    pending: list[dict[str, Any]] = []
    for record in items:
        record["results"] = engine.score(record)
        out.append(record)
        if store is not None:
            pending.append(
                make_document(id_field, record[id_field], record["results"], run=None, timestamp=int(time.time()))
            )
            if len(pending) >= _SEED_CHUNK:
                store.write_documents(pending)
                pending = []
    if store is not None and pending:
        store.write_documents(pending)
    return out


# Documents buffered before one bulk write to MongoDB (one update_many plus one insert_many).
_SEED_CHUNK = 1000


def _nested_data(record: dict[str, Any], model: Model) -> Any:
    try:
        return record["data"][model.name][model.version]
    except (KeyError, TypeError, IndexError):
        return {}


def _has_result(results: dict[str, Any], need: str) -> bool:
    name, version = need.rsplit("@", 1)
    return any(str(v) == version for v in results.get(name, {}))
