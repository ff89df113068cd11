"""A batch run: read -> validate -> score -> summarize -> store, one committed chunk at a time.

Each chunk's documents are written to the store in one transaction together with the run's progress (rows
consumed, counts, and the byte offsets of ``--output`` and ``--rejects``), so a run killed at any moment resumes
exactly after its last committed chunk: no record is scored into the store twice and none is skipped.
"""

from __future__ import annotations

import fnmatch
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mlsm._gc import gc_paused
from mlsm.documents import Documents, make_document
from mlsm.engine import Engine
from mlsm.errors import RunError, RunStopped, StoreUnavailable
from mlsm.readers import FORMATS, Chunk, SeveralFiles, expand_inputs, open_inputs
from mlsm.runs._profiles import Conversions, RunProfile, profile_chunk  # drift profile
from mlsm.runs._progress import Progress
from mlsm.stores.base import RunRecord, Store

if TYPE_CHECKING:
    from mlsm.runs._processes import EngineSource

__all__ = [
    "Counts",
    "RunOptions",
    "RunResult",
    "ScoredChunk",
    "check_run_files",
    "new_run_id",
    "run_batch",
    "score_chunk",
]

#: How many reject line numbers a run keeps for its summary (the rejects file keeps them all).
REJECT_LINES_KEPT = 50


def new_run_id() -> str:
    """A fresh run id: UTC time plus a random suffix, e.g. ``20261126-040512-3f2a``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


@dataclass
class Counts:
    """What a run has done so far: rows read, scored, rejected, and ok/error per model."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    reject_lines: list[int | str] = field(default_factory=list)  # line numbers, or file:line for several files
    models: dict[str, list[int]] = field(default_factory=dict)  # key -> [ok, errors]
    profile: RunProfile | None = None  # drift profile: None for runs scored without one

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "scored": self.scored,
            "rejected": self.rejected,
            "reject_lines": list(self.reject_lines),
            "models": {key: {"ok": ok, "errors": errors} for key, (ok, errors) in self.models.items()},
            **({"profile": self.profile.to_json()} if self.profile is not None else {}),  # drift profile
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counts:
        models = {key: [value["ok"], value["errors"]] for key, value in data.get("models", {}).items()}
        return cls(
            data.get("read", 0),
            data.get("scored", 0),
            data.get("rejected", 0),
            list(data.get("reject_lines", [])),
            models,
            RunProfile.from_json(data["profile"]) if "profile" in data else None,  # drift profile
        )

    def add_chunk(self, scored: ScoredChunk) -> None:
        """Add a scored chunk's records and model tallies."""
        self.scored += len(scored.batch)
        for key, (ok, errors) in scored.models.items():
            tally = self.models.setdefault(key, [0, 0])
            tally[0] += ok
            tally[1] += errors
        self.add_profile(scored.profile)  # drift profile

    def add_profile(self, profile: RunProfile | None) -> None:
        """Merge a chunk's drift profile into the run's (None: the chunk has none)."""
        if profile is not None:
            self.profile = profile if self.profile is None else self.profile.merge(profile)

    def add_results(self, engine: Engine, results: list[dict[str, Any]]) -> None:
        """Count each model's ok and error slots in ``results``."""
        self.scored += len(results)
        for model in engine.all_models:
            name, version = model.name, model.version
            errors = sum(1 for r in results if "_error" in r[name][version])
            tally = self.models.setdefault(model.key, [0, 0])
            tally[0] += len(results) - errors
            tally[1] += errors


@dataclass
class RunOptions:
    """How to run: everything ``mlsm run`` takes besides the models and the store."""

    input: str
    id_field: str
    run_id: str | None = None
    resume: bool = False
    output: str | None = None
    rejects: str | None = None
    chunk_size: int = 10_000
    progress: bool | None = None  # None: on a terminal only
    retry_seconds: float = 60.0  # how long to keep retrying a failing store before stopping the run
    info: dict[str, Any] = field(default_factory=dict)  # recorded with the run (models, provenance, ...)
    resume_command: str | None = None  # shown when the run stops early
    workers: int = 1  # processes scoring chunks (1: in this process)
    engine_source: EngineSource | None = None  # how worker processes load the models (needed for workers > 1)


@dataclass
class RunResult:
    """The outcome of a run: its record in the store and how long this invocation took."""

    run: RunRecord
    elapsed: float
    scored_now: int  # records scored by this invocation (a resumed run counts only its own)

    @property
    def counts(self) -> Counts:
        return Counts.from_dict(self.run.counts)


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
    output = _open_resumable(options.output, offsets.get("output", 0), options.resume)
    rejects = _open_resumable(options.rejects, offsets.get("rejects", 0), options.resume)
    progress = Progress(reader.size, enabled=options.progress)
    started = time.monotonic()
    scored_now = 0
    try:
        for chunk, scored in _scored(engine, reader, options, run.id):
            batch = scored.batch
            counts.add_chunk(scored)
            counts.read = chunk.position
            for reject in chunk.rejects:
                counts.rejected += 1
                if len(counts.reject_lines) < REJECT_LINES_KEPT:
                    counts.reject_lines.append(reject.where)
            if output is not None:
                output.write("".join(text + "\n" for text in batch.json()))
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
            _write_with_retry(store, batch, run, options, committed_rows)
            scored_now += len(batch)
            progress.update(chunk.bytes_read, counts.scored)
            if on_chunk is not None:
                on_chunk(run)
    except RunStopped as exc:
        _mark_interrupted(store, run.id)
        if "resume with:" in str(exc):
            raise
        hint = options.resume_command or f"mlsm run ... --run-id {run.id} --resume"
        raise RunStopped(f"run {run.id!r} stopped: {exc}; resume with: {hint}") from exc
    except BaseException:
        _mark_interrupted(store, run.id)
        raise
    finally:
        progress.close()
        for handle in (output, rejects):
            if handle is not None:
                handle.close()
    run.status = "completed"
    run.ended = time.time()
    store.save_run(run)
    return RunResult(run, time.monotonic() - started, scored_now)


def _mark_interrupted(store: Store, run_id: str) -> None:
    """Record that a run stopped early, keeping the progress of its last committed chunk (not this one's)."""
    try:
        saved = store.get_run(run_id)
        if saved is not None:
            saved.status, saved.ended = "interrupted", time.time()
            store.save_run(saved)
    except Exception:  # the store may be what failed; the run stays resumable from its last committed chunk
        pass


def open_run(store: Store, options: RunOptions, engine: Engine) -> RunRecord:
    """Register a new run, or reopen one to resume (same models, same id field, same code; a half-written
    chunk undone)."""
    models = [model.key for model in engine.all_models]
    if options.resume:
        if not options.run_id:
            raise RunError("--resume needs --run-id NAME: the run to continue")
        run = store.get_run(options.run_id)
        if run is None:
            raise RunError(f"no run {options.run_id!r} in {store.url}: start it without --resume")
        before = run.info.get("models")
        if before is not None and before != models:
            raise RunError(
                f"run {run.id!r} was started with models {', '.join(before)}; "
                f"these are {', '.join(models)}: resume with the same models"
            )
        if run.info.get("id_field") not in (None, options.id_field):
            raise RunError(f"run {run.id!r} was started with --id-field {run.info['id_field']!r}")
        if run.info.get("files") != options.info.get("files"):  # several files: the same ones, or rows would shift
            raise RunError(
                f"run {run.id!r} read the files {', '.join(run.info.get('files') or [run.info.get('input', '?')])}; "
                f"this input names {', '.join(options.info.get('files') or [str(options.input)])}: "
                "resume with the same files"
            )
        _check_same_code(run, options.info.get("provenance"))
        store.recover(run)
        run = store.get_run(run.id) or run
        run.status = "running"
        run.ended = None
        store.save_run(run)
        return run
    run = RunRecord.new(
        options.run_id or new_run_id(),
        {**options.info, "input": str(Path(options.input)), "id_field": options.id_field, "models": models},
    )
    store.start_run(run)
    return run


def _check_same_code(run: RunRecord, provenance: dict[str, Any] | None) -> None:
    """A resumed run must score its remaining records with the code that scored the first ones."""
    before = (run.info.get("provenance") or {}).get("models", {})
    now = (provenance or {}).get("models", {})
    for key, entry in now.items():
        old, new = before.get(key, {}).get("sha256"), entry.get("sha256")
        if old and new and old != new:
            raise RunError(
                f"run {run.id!r}: the source of model {key!r} ({entry.get('source')}) changed since the run started "
                f"(sha256 {old[:12]} then, {new[:12]} now): resume with the code it started with, or start a new run"
            )


@dataclass
class ScoredChunk:
    """A chunk's documents, ready to store, and each model's ok/error tally in it.

    What a worker process or a Ray actor sends back: JSON text, not objects (cheaper to move between processes).
    """

    batch: Documents
    models: dict[str, list[int]]  # key -> [ok, errors]
    profile: RunProfile | None = None  # drift profile of the chunk

    def without_objects(self) -> ScoredChunk:
        """The same chunk holding only the documents' JSON (for sending to another process)."""
        batch = self.batch
        return ScoredChunk(
            Documents(batch.id_field, batch.ids, run=batch.run, json=batch.json(), timestamp=batch.timestamp),
            self.models,
            self.profile,  # drift profile
        )


def score_chunk(engine: Engine, columns: dict[str, Any], ids: list[str], *, id_field: str, run_id: str) -> ScoredChunk:
    """Score one chunk's columns and build its documents, JSON included (``gc_paused`` says why the collector waits)."""
    with gc_paused():
        conversions = Conversions()  # drift profile: the engine's converted columns
        results = engine.score_columns(columns, len(ids), on_converted=conversions)
        profile = profile_chunk(engine, columns, len(ids), results, conversions)  # drift profile
        tally = Counts()
        tally.add_results(engine, results)
        now = int(time.time())
        documents = [
            make_document(id_field, id_value, result, run=run_id, timestamp=now)
            for id_value, result in zip(ids, results)
        ]
        batch = Documents(id_field, ids, documents, run=run_id, timestamp=now)
        batch.json()
    return ScoredChunk(batch, tally.models, profile)  # drift profile


def _scored(
    engine: Engine, chunks: Iterable[Chunk], options: RunOptions, run_id: str
) -> Iterator[tuple[Chunk, ScoredChunk]]:
    """Each chunk with its scored documents, in input order: scored here, or by worker processes."""
    if options.workers > 1:
        from mlsm.runs._processes import scored_in_processes

        if options.engine_source is None:
            raise RunError("--workers needs the models' source, to load them in every worker process")
        yield from scored_in_processes(
            options.engine_source, chunks, options.workers, id_field=options.id_field, run_id=run_id
        )
        return
    for chunk in chunks:
        yield chunk, score_chunk(engine, chunk.columns, chunk.ids, id_field=options.id_field, run_id=run_id)


def check_run_files(
    input_spec: str | os.PathLike[str], *, output: str | None, rejects: str | None, store_url: str | None = None
) -> None:
    """Refuse (``RunError``, one line) an ``--output`` or ``--rejects`` file that would overwrite an input file, the
    SQLite store's file or the other one, would join a directory or glob input, or cannot be written; opens nothing.

    Paths are compared with links followed: the same device and inode for files that exist, the resolved paths for
    those that do not yet.
    """
    inputs = expand_inputs(input_spec)
    spec = str(input_spec)
    store_files = []
    if store_url and store_url.startswith("sqlite:"):
        from mlsm.stores.sqlite import sqlite_path

        base = sqlite_path(store_url)[0]
        store_files = [base, base + "-wal", base + "-shm", base + "-journal"]
    named = [(flag, path) for flag, path in (("--output", output), ("--rejects", rejects)) if path is not None]
    for flag, path in named:
        target = Path(path)
        for file in inputs:
            if _same_file(target, file):
                raise RunError(f"{flag} {path!r} is the input file {str(file)!r}: writing it would destroy the input")
        if _joins_input(target, spec):
            raise RunError(
                f"{flag} {path!r} would become one of the files of the input {spec!r} (and be read by the next run, or "
                "change what a resumed run reads): write it elsewhere"
            )
        for part in store_files:
            if _same_file(target, Path(part)):
                raise RunError(f"{flag} {path!r} is a file of the store {store_url}: writing it would ruin the store")
        _check_writable(flag, target)
    if len(named) == 2 and _same_file(Path(named[0][1]), Path(named[1][1])):
        raise RunError(f"--output and --rejects name the same file {named[0][1]!r}: give each its own file")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: hard and symbolic links included."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _joins_input(target: Path, spec: str) -> bool:
    """Whether a file written at ``target`` would be one of the files a directory or glob input names."""
    if target.suffix.lower() not in FORMATS:
        return False
    where = Path(spec)
    if where.is_dir():
        return os.path.realpath(target.parent) == os.path.realpath(where)
    if any(char in spec for char in "*?[") and not where.exists():
        return fnmatch.fnmatch(os.path.abspath(target), os.path.abspath(spec))
    return False


def _check_writable(flag: str, target: Path) -> None:
    if target.is_dir():
        raise RunError(f"{flag} {str(target)!r} is a directory: name a file")
    folder = target.parent
    if not folder.is_dir():
        raise RunError(f"cannot write {flag} {str(target)!r}: no such directory {str(folder)!r}")
    if not os.access(target if target.exists() else folder, os.W_OK):
        raise RunError(f"cannot write {flag} {str(target)!r}: permission denied")


def _open_resumable(path: str | None, offset: int, resume: bool) -> IO[str] | None:
    """A JSON lines output file; when resuming, cut back to what the last committed chunk had written."""
    if path is None:
        return None
    target = Path(path)
    if resume and target.exists():
        handle = open(target, "r+", encoding="utf-8", newline="\n")  # noqa: SIM115 - the caller closes it
        handle.truncate(offset)
        handle.seek(offset)
        return handle
    return open(target, "w", encoding="utf-8", newline="\n")


def _write_with_retry(store: Store, batch: Documents, run: RunRecord, options: RunOptions, committed_rows: int) -> None:
    """Write a chunk, retrying a failing store with exponential backoff for ``options.retry_seconds``."""
    deadline = time.monotonic() + options.retry_seconds
    delay = 0.2
    while True:
        try:
            store.write(batch, run)
            return
        except StoreUnavailable as exc:
            if time.monotonic() + delay > deadline:
                hint = options.resume_command or f"mlsm run ... --run-id {run.id} --resume"
                raise RunStopped(
                    f"run {run.id!r} stopped, the store stayed unavailable for {options.retry_seconds:g} s ({exc}); "
                    f"last committed chunk: {run.chunks - 1} (input rows 1-{committed_rows:,}); resume with: {hint}"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def format_summary(result: RunResult, engine: Engine, *, store_url: str, input_path: str) -> str:
    """The human summary printed at the end of ``mlsm run``."""
    run, counts = result.run, result.counts
    lines = [f"run {run.id}: {run.status}", f"  input   {input_path}", f"  store   {store_url}"]
    rejected = f"{counts.rejected:,}"
    if counts.reject_lines:
        shown = ", ".join(str(n) for n in counts.reject_lines[:10])
        more = ", ..." if counts.rejected > 10 else ""
        rejected += f" (lines {shown}{more})"
    lines += [
        f"  records read {counts.read:,} · scored {counts.scored:,} · rejected {rejected}",
        "",
    ]
    width = max([len(m.key) for m in engine.all_models] + [5])
    lines.append(f"  {'model'.ljust(width)}  {'status':<6}  {'ok':>10}  {'errors':>10}")
    for model in engine.all_models:
        ok, errors = counts.models.get(model.key, [0, 0])
        lines.append(f"  {model.key.ljust(width)}  {model.status:<6}  {ok:>10,}  {errors:>10,}")
    rate = result.scored_now / result.elapsed if result.elapsed > 0 else 0.0
    lines += ["", f"  elapsed {result.elapsed:.1f} s · {rate:,.0f} records/s"]
    return "\n".join(lines)
