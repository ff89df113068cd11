"""Scoring chunks in worker processes (``mlsm run --workers N``): every core of one machine.

The main process reads the input and writes the store; N worker processes (started with ``spawn``, each loading the
models once) validate, score and build the documents of one chunk at a time. Results come back in input order, so
the main process commits chunk after chunk exactly as a single-process run does: the same checkpoints, the same
``--resume``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from mlsm.engine import Engine
from mlsm.errors import ModelCodeChanged, ModelLoadError, RunStopped
from mlsm.readers import Chunk
from mlsm.runs._chunks import ScoredChunk, score_chunk

__all__ = ["EngineSource", "scored_in_processes"]


@dataclass(frozen=True)
class EngineSource:
    """How another process builds the engine: the ``MODELS`` argument, loaded the way ``mlsm run`` loads it.

    ``keys`` are the models the main process planned and ``digests`` the code hash the run recorded for each
    (``(key, sha256)`` pairs, from its provenance); a process that loads other models or other code refuses to
    score, so no result is attributed to code that did not produce it.
    """

    spec: str
    keys: tuple[str, ...] = ()
    digests: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_run(cls, spec: str, engine: Engine, provenance: dict[str, Any]) -> EngineSource:
        """The source of a run's models: ``engine``'s keys and the hashes ``provenance`` recorded for them."""
        recorded = provenance.get("models", {})
        digests = tuple((key, entry["sha256"]) for key, entry in recorded.items() if entry.get("sha256"))
        return cls(spec, tuple(model.key for model in engine.all_models), digests)

    def build(self, who: str = "a worker process") -> Engine:
        """Load the models and plan them; ``ModelLoadError`` when they are not the run's models and code."""
        from mlsm.lifecycle.prepare import SameCode, prepare

        return prepare(self.spec, SameCode(self.keys, self.digests, who)).engine


# The engine of *this* worker process, built once by its initializer (a worker serves one run, then exits).
_worker: dict[str, Any] = {}


def _start(source: EngineSource, parent: int) -> None:
    from mlsm._children import die_with_parent

    die_with_parent(parent)  # a worker has nothing to save once the run that needs its results is gone
    try:
        _worker["engine"] = source.build()
    except ModelCodeChanged as exc:  # says itself which process found what
        _worker["refused"] = exc
    except Exception as exc:  # reported by the first task, as one line, instead of a dead pool
        _worker["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ModelLoadError) else str(exc)


def _score(columns: dict[str, Any], ids: list[str], id_field: str, run_id: str) -> ScoredChunk:
    if "refused" in _worker:
        raise _worker["refused"]
    if "error" in _worker:
        raise ModelLoadError(f"a worker process could not load the models: {_worker['error']}")
    return score_chunk(_worker["engine"], columns, ids, id_field=id_field, run_id=run_id).without_objects()


def scored_in_processes(
    source: EngineSource, chunks: Iterable[Chunk], workers: int, *, id_field: str, run_id: str
) -> Iterator[tuple[Chunk, ScoredChunk]]:
    """Each chunk with its scored documents, in input order, scored by ``workers`` processes.

    At most two chunks per worker are in flight, so memory stays bounded whatever the input size.
    """
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start, initargs=(source, os.getpid())
    )
    window: deque[tuple[Chunk, Future[ScoredChunk]]] = deque()
    try:
        for chunk in chunks:
            window.append((chunk, pool.submit(_score, chunk.columns, chunk.ids, id_field, run_id)))
            if len(window) >= 2 * workers:
                yield _done(*window.popleft())
        while window:
            yield _done(*window.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _done(chunk: Chunk, future: Future[ScoredChunk]) -> tuple[Chunk, ScoredChunk]:
    try:
        return chunk, future.result()
    except BrokenProcessPool as exc:
        raise RunStopped(
            f"a worker process died while scoring input rows up to {chunk.position:,} (a model that crashes the "
            "interpreter, or the system killing it for memory); chunks committed so far are kept"
        ) from exc
