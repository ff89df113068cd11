"""A batch run driven from this process: read -> validate -> score -> summarize -> store, one committed chunk at a
time, the chunks scored here or in worker processes (``--workers N``).

Each chunk's documents are written to the store in one transaction together with the run's progress (rows
consumed, counts, and the byte offsets of ``--output`` and ``--rejects``), so a run killed at any moment resumes
exactly after its last committed chunk: no record is scored into the store twice and none is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from mlsm._gc import gc_paused
from mlsm._retry import retry
from mlsm.documents import Documents
from mlsm.engine import Engine
from mlsm.errors import RunError, RunStopped, StoreUnavailable
from mlsm.readers import Chunk, SeveralFiles, open_inputs
from mlsm.runs._chunks import ScoredChunk, score_chunk
from mlsm.runs._counts import Counts
from mlsm.runs._files import check_run_files, open_resumable
from mlsm.runs._options import RunOptions, RunResult
from mlsm.runs._processes import scored_in_processes
from mlsm.runs._progress import Progress
from mlsm.runs._run_record import complete_run, mark_interrupted, open_run, resume_hint
from mlsm.stores.base import RunRecord, Store

__all__ = ["run_batch"]


def run_batch(
    engine: Engine,
    store: Store,
    options: RunOptions,
    *,
    on_start: Callable[[str, int], None] | None = None,
    on_chunk: Callable[[RunRecord], None] | None = None,
) -> RunResult:
    """Score ``options.input`` with ``engine`` into ``store``; returns the finished run.

    ``on_start(run_id, rows_already_done)`` is called once the run is registered; ``on_chunk(run)`` after
    every committed chunk.
    """
    # the input opened first: an unreadable file or a missing id field is one error before the run is registered
    reader = open_inputs(
        options.input, id_field=options.id_field, fields=engine.input_fields, chunk_size=options.chunk_size
    )
    if isinstance(reader, SeveralFiles):  # a resumed run must read the same files, or positions would shift
        options = replace(options, info={**options.info, "files": [str(f.resolve()) for f in reader.files]})
    check_run_files(options.input, output=options.output, rejects=options.rejects, store_url=store.url)
    run = open_run(store, options, engine)
    reader.skip = run.rows  # resuming: what the committed chunks consumed
    if on_start is not None:
        on_start(run.id, run.rows)
    counts = Counts.from_dict(run.counts)
    offsets = run.info.setdefault("offsets", {})
    output = open_resumable(options.output, offsets.get("output", 0), options.resume)
    rejects = open_resumable(options.rejects, offsets.get("rejects", 0), options.resume)
    progress = Progress(reader.size, enabled=options.progress)
    started = time.monotonic()
    scored_now = 0
    scored_chunks = _scored(engine, reader, options, run.id)
    try:
        while True:
            # the collector waits from scoring until the chunk is stored and its objects are freed: re-enabled
            # before, it would traverse every document of the chunk for nothing (``gc_paused``)
            with gc_paused():
                item = next(scored_chunks, None)
                if item is None:
                    break
                chunk, scored = item
                documents = scored.documents
                counts.add_scored(len(documents), scored.models, scored.profile)
                counts.read = chunk.position
                counts.add_rejects(chunk.rejects)
                if output is not None:
                    output.write("".join(text + "\n" for text in documents.json()))
                    output.flush()
                    offsets["output"] = output.tell()
                if rejects is not None and chunk.rejects:
                    rejects.write("".join(reject.to_json() + "\n" for reject in chunk.rejects))
                    rejects.flush()
                    offsets["rejects"] = rejects.tell()
                committed_rows = run.rows
                run.rows = chunk.position
                run.chunks += 1
                run.counts = counts.to_dict()
                _write_with_retry(store, documents, run, options, committed_rows)
                scored_now += len(documents)
                progress.update(chunk.bytes_read, counts.scored)
                if on_chunk is not None:
                    on_chunk(run)
                del item, chunk, scored, documents
    except RunStopped as exc:
        mark_interrupted(store, run.id)
        if "resume with:" in str(exc):
            raise
        raise RunStopped(f"run {run.id!r} stopped: {exc}; resume with: {resume_hint(options, run.id)}") from exc
    except BaseException:
        mark_interrupted(store, run.id)
        raise
    finally:
        progress.close()
        for handle in (output, rejects):
            if handle is not None:
                handle.close()
    complete_run(store, run)
    return RunResult(run, time.monotonic() - started, scored_now)


def _scored(
    engine: Engine, chunks: Iterable[Chunk], options: RunOptions, run_id: str
) -> Iterator[tuple[Chunk, ScoredChunk]]:
    """Each chunk with its scored documents, in input order: scored here, or by worker processes."""
    if options.workers > 1:
        if options.engine_source is None:
            raise RunError("--workers needs the models' source, to load them in every worker process")
        yield from scored_in_processes(
            options.engine_source, chunks, options.workers, id_field=options.id_field, run_id=run_id
        )
        return
    for chunk in chunks:
        yield chunk, score_chunk(engine, chunk.columns, chunk.ids, id_field=options.id_field, run_id=run_id)


def _write_with_retry(
    store: Store, documents: Documents, run: RunRecord, options: RunOptions, committed_rows: int
) -> None:
    """Write a chunk, retrying a failing store with exponential backoff for ``options.retry_seconds``."""
    try:
        retry(lambda: store.write(documents, run), seconds=options.retry_seconds, first=0.2, longest=5.0)
    except StoreUnavailable as exc:
        raise RunStopped(
            f"run {run.id!r} stopped, the store stayed unavailable for {options.retry_seconds:g} s ({exc}); "
            f"last committed chunk: {run.chunks - 1} (input rows 1-{committed_rows:,}); "
            f"resume with: {resume_hint(options, run.id)}"
        ) from exc
