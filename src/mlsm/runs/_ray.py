"""Runs on Ray (``mlsm run --executor ray``): Ray Data reads the input, an actor pool scores and stores it.

The input (a file, a directory, or a glob of CSV / JSON lines / Parquet files) is read by a Ray Data datasource
built on mlsm's own readers, one read task per file, so rejects and line numbers are exactly those of a local run.
Each dataset row is one whole chunk (its columns serialized, its position range in its file, its rejects), so chunk
boundaries never depend on how Ray splits blocks. Actors (``map_batches`` with an actor pool) load the models once,
score a chunk and write it to the store in bulk from where they run, together with a chunk mark; chunks commit in
any order, and ``--resume`` skips every chunk that has its mark. The driver only sees small summaries: it writes
the rejects file in input order, sums the counts from the marks, and writes ``--output`` from the store at the end.

With no ``--ray-address`` a local Ray is started on this machine; with one, the job joins that cluster. Then the
store must be reachable from every node (PostgreSQL or MongoDB; an SQLite file only works on one machine) and the
model source and input paths must exist on every node (a shared volume, or the job's working directory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import pickle
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsm import errors
from mlsm._children import Guardian, end_with_this_process
from mlsm._retry import retry
from mlsm.documents import Documents, encode
from mlsm.engine import Engine
from mlsm.errors import MlsmError, RunError
from mlsm.readers import Reject, expand_inputs, open_input
from mlsm.runs._chunks import score_chunk
from mlsm.runs._counts import REJECT_LINES_KEPT, Counts
from mlsm.runs._files import check_run_files
from mlsm.runs._options import RunOptions, RunResult
from mlsm.runs._processes import EngineSource
from mlsm.runs._run_record import complete_run, mark_interrupted, open_run
from mlsm.stores import open_store
from mlsm.stores.base import ChunkMark, RunRecord, Store, first_line

__all__ = ["require_ray", "run_on_ray"]


def require_ray() -> None:
    """Fail with one line (exit 2) when Ray is not installed."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MlsmError("--executor ray needs Ray, an optional extra: pip install 'mlsm[ray]'") from None


def _chunk_rows(
    path: str, id_field: str, fields: list[str], chunk_size: int, done: frozenset[int], shown: str | None = None
) -> Iterator[dict[str, Any]]:
    """One dataset row per chunk of one file: its position range, rejects and (unless done) its columns.

    ``shown``: the file's name as the input named it, for rejects when the input names several files."""
    reader = open_input(path, id_field=id_field, fields=fields, chunk_size=chunk_size)
    start = 1
    for chunk in reader:
        first, last = start, chunk.position
        start = last + 1
        for reject in chunk.rejects:
            reject.file = shown
        payload = b"" if first in done else pickle.dumps((chunk.columns, chunk.ids), protocol=5)
        yield {
            "source": path,
            "first": first,
            "last": last,
            "done": first in done,
            "payload": payload,
            "rejects": json.dumps([r.to_dict() for r in chunk.rejects], ensure_ascii=False, allow_nan=False),
        }


def _datasource(
    files: dict[str, str | None],
    id_field: str,
    fields: list[str],
    chunk_size: int,
    done: dict[str, frozenset[int]],
) -> Any:
    """A Ray Data datasource over mlsm's readers: one read task per file, one row per chunk.

    ``files`` maps each file's absolute path to the name its rejects give (None for a one-file input)."""
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    class MlsmInput(Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return sum(os.path.getsize(f) for f in files)

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
        ) -> list[Any]:
            return [
                ReadTask(_reader(file), BlockMetadata(None, os.path.getsize(file), None, input_files=(file,)))
                for file in files
            ]

    def _reader(file: str) -> Callable[[], Iterator[Any]]:
        def read() -> Iterator[Any]:
            import pyarrow as pa

            for row in _chunk_rows(file, id_field, fields, chunk_size, done.get(file, frozenset()), files[file]):
                yield pa.Table.from_pylist([row])

        return read

    return MlsmInput()


class _Scorer:
    """The actor: loads the models once, then scores and stores one chunk per call."""

    def __init__(self, source: EngineSource, store_url: str, run_id: str, id_field: str, retry_seconds: float) -> None:
        self.engine = source.build("a Ray actor")
        self.store = open_store(store_url)
        self.run_id, self.id_field, self.retry_seconds = run_id, id_field, retry_seconds

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        out = []
        for row in batch.to_pylist():
            rejects = json.loads(row["rejects"])
            written = False
            counts: dict[str, Any] = {}
            if not row["done"]:
                columns, ids = pickle.loads(row["payload"])
                scored = score_chunk(self.engine, columns, ids, id_field=self.id_field, run_id=self.run_id)
                tally = Counts(read=row["last"] - row["first"] + 1)
                tally.add_rejects(Reject(**r) for r in rejects)
                tally.add_scored(len(scored.documents), scored.models, scored.profile)
                counts = tally.to_dict()
                mark = ChunkMark(self.run_id, row["source"], row["first"], row["last"], counts)
                written = self._write(scored.documents, mark)
            out.append({**{k: row[k] for k in ("source", "first", "last", "rejects")}, "written": written,
                        "scored": counts.get("scored", 0)})  # fmt: skip
        return pa.Table.from_pylist(out)

    def _write(self, documents: Documents, mark: ChunkMark) -> bool:
        """Store a chunk with its mark, retrying an unavailable store for ``retry_seconds`` (then its error)."""
        return retry(
            functools.partial(self.store.write_chunk, documents, mark),
            seconds=self.retry_seconds,
            first=0.2,
            longest=5.0,
        )


def _restore_environment(saved: dict[str, str]) -> None:
    """Put ``os.environ`` back as it was before Ray started, for the processes a library caller starts later."""
    for name in [name for name in os.environ if name not in saved]:
        del os.environ[name]
    for name, value in saved.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """One line for a cluster address nothing answers on, before Ray's own connect: that one retries for a minute
    and then ends the whole process from native code rather than raising."""
    if address in ("auto", "local"):
        return  # Ray finds the cluster of this machine itself, and says so when there is none
    target = address.removeprefix("ray://")
    if target != address and ":" not in target:
        target += ":10001"  # the Ray Client's default port
    host, colon, port = target.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise MlsmError(f"--ray-address {address!r} is not HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise MlsmError(
            f"cannot join the Ray cluster at {address!r}: nothing answers there ({exc.strerror or exc}); "
            "check the address and that the cluster's head is up (ray status)"
        ) from None


def run_on_ray(
    engine: Engine,
    store: Store,
    options: RunOptions,
    *,
    address: str | None = None,
    on_start: Callable[[str, int], None] | None = None,
) -> RunResult:
    """Score ``options.input`` on Ray into ``store``; returns the finished run (as ``run_batch`` does)."""
    require_ray()
    import ray

    if options.engine_source is None:
        raise RunError("--executor ray needs the models' source, to load them in every actor")
    files = _checked_files(engine, store, options)
    if address is not None and not ray.is_initialized():
        _check_reachable(address)
    run = open_run(store, options, engine)
    if on_start is not None:
        on_start(run.id, 0)
    done: dict[str, set[int]] = {}
    for mark in store.chunk_marks(run.id):
        done.setdefault(mark.source, set()).add(mark.first)
    started = time.monotonic()
    with _ray_session(address, store, run):
        try:
            rows = _scored_rows(engine, store, options, run, files, done)
            collected = _collect(rows, options.rejects)
        except BaseException as exc:
            mark_interrupted(store, run.id)
            found = _mlsm_error_in(exc)
            if found is not None:  # an actor refused (other code, models that do not load): its one line, not Ray's
                raise found from exc
            raise
    run.counts = _total(store.chunk_marks(run.id), collected.reject_lines)
    run.rows, run.chunks = run.counts["read"], collected.chunks
    if options.output:
        _export_run(store, run.id, options.output)
    complete_run(store, run)
    return RunResult(run, time.monotonic() - started, collected.scored_now)


def _checked_files(engine: Engine, store: Store, options: RunOptions) -> dict[str, str | None]:
    """The input's files, each absolute path (for the cluster's nodes) with the name its rejects give when the input
    names several (else None); header, id field, format and ``--output``/``--rejects`` problems are one line here,
    before any work."""
    named = expand_inputs(options.input)
    files = {str(f.resolve()): (str(f) if len(named) > 1 else None) for f in named}
    for file in files:
        open_input(file, id_field=options.id_field, fields=engine.input_fields, chunk_size=options.chunk_size)
    check_run_files(options.input, output=options.output, rejects=options.rejects, store_url=store.url)
    return files


@contextlib.contextmanager
def _ray_session(address: str | None, store: Store, run: RunRecord) -> Iterator[None]:
    """Ray joined (a local one of this run's own without ``address``) for the ``with`` block, and left after it with
    this process's environment as it was; a caller's own Ray session is used and left as it was."""
    import ray

    if ray.is_initialized():
        yield
        return
    environment = dict(os.environ)  # ray.init sets variables (RAY_AUTH_MODE, PYTHONBREAKPOINT) that outlive it
    guardian = Guardian()
    logging.getLogger("ray").setLevel(logging.ERROR)  # Ray's own progress chatter; errors still show
    # Ray Data logs the stack trace of an error it then raises: the error reaches the caller anyway (an
    # actor's refusal as its one line, see _mlsm_error_in), so not twice
    logging.getLogger("ray.data.exceptions").setLevel(logging.CRITICAL)
    if address is None:
        # a local Ray dies with its driver, except processes that were starting and two agents that spend a
        # minute reporting to its dead GCS: a guardian ends those (its processes inherit the guardian's mark)
        guardian = end_with_this_process("MLSM_LOCAL_RAY")
        os.environ.update(guardian.mark)
    try:
        # "local": a Ray of this run's own, as documented, not whatever `ray start` left running on this machine
        ray.init(address=address or "local", include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        guardian.close()
        _restore_environment(environment)
        mark_interrupted(store, run.id)
        where = f"join the Ray cluster at {address!r}" if address else "start a local Ray"
        raise MlsmError(f"cannot {where}: {first_line(exc)}") from exc
    for name in guardian.mark:  # Ray's processes have it; what this process starts later is none of Ray's
        os.environ.pop(name, None)
    try:
        yield
    finally:
        ray.shutdown()  # stops a local Ray started here; only disconnects from a cluster
        guardian.close()
        _restore_environment(environment)


def _scored_rows(
    engine: Engine,
    store: Store,
    options: RunOptions,
    run: RunRecord,
    files: dict[str, str | None],
    done: dict[str, set[int]],
) -> Iterator[dict[str, Any]]:
    """The actors' summary of every chunk, in input order: the input read by the datasource (chunks in ``done``
    skipped), scored and stored by an actor pool sized to the cluster (or ``--workers``)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rejects and summaries come back in input order
    context.enable_progress_bars = bool(options.progress)
    cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1.0)))
    actors = options.workers if options.workers > 1 else max(1, int(cpus))
    marked = {file: frozenset(firsts) for file, firsts in done.items()}
    dataset = ray.data.read_datasource(
        _datasource(files, options.id_field, engine.input_fields, options.chunk_size, marked), num_cpus=0.1
    )
    assert options.engine_source is not None  # checked by run_on_ray
    scored = dataset.map_batches(
        _Scorer,
        fn_constructor_kwargs={
            "source": _absolute(options.engine_source),
            "store_url": _absolute_store(store.url),
            "run_id": run.id,
            "id_field": options.id_field,
            "retry_seconds": options.retry_seconds,
        },
        batch_size=1,
        batch_format="pyarrow",
        concurrency=actors,
        num_cpus=max(0.1, (cpus - 0.2) / actors),
    )
    rows: Iterator[dict[str, Any]] = scored.iter_rows()
    return rows


@dataclass
class _Collected:
    """What the driver gathers from the chunk summaries: chunks seen, records this invocation stored, reject lines."""

    chunks: int = 0
    scored_now: int = 0
    reject_lines: list[int | str] = field(default_factory=list)  # in input order (the dataset preserves it)


def _collect(rows: Iterator[dict[str, Any]], rejects_path: str | None) -> _Collected:
    """Go through the chunk summaries, writing ``--rejects`` (when named) in input order."""
    collected = _Collected()
    rejects_file = open(rejects_path, "w", encoding="utf-8") if rejects_path else None  # noqa: SIM115
    try:
        for row in rows:
            collected.chunks += 1
            collected.scored_now += row["scored"] if row["written"] else 0
            rejects = [Reject(**r) for r in json.loads(row["rejects"])]
            collected.reject_lines.extend(r.where for r in rejects)
            if rejects_file is not None and rejects:
                rejects_file.write("".join(reject.to_json() + "\n" for reject in rejects))
    finally:
        if rejects_file is not None:
            rejects_file.close()
    return collected


_RAISED = re.compile(r"^mlsm\.errors\.(\w+): (.+)$", re.MULTILINE)


def _mlsm_error_in(exc: BaseException) -> MlsmError | None:
    """The mlsm error an actor raised, from the Ray error that reports it (Ray keeps only its text), else None."""
    if isinstance(exc, MlsmError) and type(exc).__module__ == "mlsm.errors":
        return None  # raised here, already one line
    found = _RAISED.findall(str(exc))
    if not found:
        return None
    name, message = found[-1]
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, MlsmError):
        try:
            return kind(message)
        except TypeError:  # an error built from more than a message
            pass
    return MlsmError(message)


def _absolute(source: EngineSource) -> EngineSource:
    """Actors may run elsewhere than here: a model file named relative to this directory, made absolute."""
    spec = source.spec
    return dataclasses.replace(source, spec=str(Path(spec).resolve())) if Path(spec).exists() else source


def _absolute_store(url: str) -> str:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path, _, query = url[len("sqlite:///") :].partition("?")
        return f"sqlite:///{Path(path).resolve()}" + (f"?{query}" if query else "")
    return url


def _total(marks: list[ChunkMark], reject_lines: list[int | str]) -> dict[str, Any]:
    total = Counts()
    for mark in marks:
        total.add(Counts.from_dict(mark.counts))
    total.reject_lines = reject_lines[:REJECT_LINES_KEPT]
    return total.to_dict()


def _export_run(store: Store, run_id: str, output: str) -> None:
    with open(output, "w", encoding="utf-8") as handle:
        for document in store.run_documents(run_id):
            handle.write(encode(document) + "\n")
