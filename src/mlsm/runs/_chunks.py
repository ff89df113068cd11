"""A chunk scored into its result documents: the one place documents are built from engine results."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlsm._gc import gc_paused
from mlsm.documents import Documents, make_document
from mlsm.engine import Engine
from mlsm.runs._counts import tally_slots
from mlsm.runs._profiles import Conversions, RunProfile, profile_chunk

__all__ = ["ScoredChunk", "documents_from_results", "score_chunk"]


def documents_from_results(
    id_field: str, ids: list[str], results: Sequence[dict[str, Any]], *, run_id: str | None
) -> Documents:
    """One document per id and engine result, stamped now and with ``run_id``, their JSON encoded already."""
    now = int(time.time())
    documents = [make_document(id_field, i, r, run=run_id, timestamp=now) for i, r in zip(ids, results)]
    batch = Documents(id_field, ids, documents, run=run_id, timestamp=now)
    batch.json()
    return batch


@dataclass
class ScoredChunk:
    """A chunk's documents, ready to store, and each model's ok/error tally in it.

    What a worker process or a Ray actor sends back: JSON text, not objects (cheaper to move between processes).
    """

    documents: Documents
    models: dict[str, list[int]]  # key -> [ok, errors]
    profile: RunProfile | None = None  # the chunk's drift profile

    def without_objects(self) -> ScoredChunk:
        """The same chunk holding only the documents' JSON (for sending to another process)."""
        batch = self.documents
        return ScoredChunk(
            Documents(batch.id_field, batch.ids, run=batch.run, json=batch.json(), timestamp=batch.timestamp),
            self.models,
            self.profile,
        )


def score_chunk(engine: Engine, columns: dict[str, Any], ids: list[str], *, id_field: str, run_id: str) -> ScoredChunk:
    """Score one chunk's columns and build its documents, JSON included (``gc_paused`` says why the collector waits)."""
    with gc_paused():
        conversions = Conversions()  # the columns the engine converted, profiled without converting them again
        results = engine.score_columns(columns, len(ids), on_converted=conversions)
        profile = profile_chunk(engine, columns, len(ids), results, conversions)
        models: dict[str, list[int]] = {}
        tally_slots(results, models, engine.all_models)
        documents = documents_from_results(id_field, ids, results, run_id=run_id)
    return ScoredChunk(documents, models, profile)
