"""The embedded default store: one SQLite file (WAL mode), ``sqlite:///relative.db`` or ``sqlite:////abs.db``.

Documents are appended, never rewritten: ``seq`` orders them, and ``_current`` is the document's rank among its
id's documents, newest first, computed on read. A write is one transaction, so a killed run leaves either the
whole chunk with its progress or nothing. The view ``mlsm_current`` gives each id's newest document to SQL readers.

Pages a commit adds to the write-ahead log are copied into the database file by a checkpointer thread with its own
connection (:class:`_Checkpointer`), never by the commit itself: SQLite's automatic checkpoint runs inside the commit
that crosses 1000 pages and waits for two fsyncs there, which on a shared disk took 0.2-0.5 s now and then, the
service's worst latency.

Opened for reading, the file is opened read-only (``mode=ro``); in a folder nobody can write, where SQLite cannot
create the write-ahead log's shared-memory file, it is read as immutable (no writer can be at work there).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from mlsm.documents import Documents, decode
from mlsm.errors import StoreConfigError, StoreNotFound, StoreUnavailable
from mlsm.stores.base import (
    ChunkMark,
    RunRecord,
    Store,
    already_written,
    check_id_field,
    has_model,
    newest_per_id,
    split_model,
)
from mlsm.stores.outcomes import (
    Outcome,
    OutcomeDocuments,
    OutcomeResult,
    grouped,
    scan_document,
    window_clause,
    without_rank,
)

__all__ = ["CHECKPOINT_SECONDS", "WAL_LIMIT_PAGES", "SQLiteStore", "sqlite_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mlsm_results (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    run TEXT,
    ts INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mlsm_results_id_seq ON mlsm_results (id, seq);
CREATE TABLE IF NOT EXISTS mlsm_runs (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    status TEXT NOT NULL,
    rows INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    counts TEXT NOT NULL DEFAULT '{}',
    info TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS mlsm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mlsm_run_chunks (
    run TEXT NOT NULL,
    source TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    counts TEXT NOT NULL,
    PRIMARY KEY (run, source, first)
);
CREATE VIEW IF NOT EXISTS mlsm_current AS
    SELECT r.id, r.run, r.ts, r.doc FROM mlsm_results r
    WHERE r.seq = (SELECT MAX(seq) FROM mlsm_results WHERE id = r.id);
"""

# created by the first load of outcomes (a store of results only never has them); WITHOUT ROWID keeps the current
# outcomes in id order on disk, so the join reads them in order without a sort
_OUTCOME_SCHEMA = """
CREATE TABLE IF NOT EXISTS mlsm_outcomes (
    id TEXT PRIMARY KEY,
    outcome INTEGER NOT NULL,
    at REAL NOT NULL,
    loaded_at REAL NOT NULL,
    source TEXT,
    label TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mlsm_outcome_history (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    outcome INTEGER NOT NULL,
    at REAL NOT NULL,
    loaded_at REAL NOT NULL,
    source TEXT,
    label TEXT
);
CREATE INDEX IF NOT EXISTS mlsm_outcome_history_id ON mlsm_outcome_history (id, seq);
"""

_SYNCHRONOUS = ("off", "normal", "full", "extra")

#: How long (seconds) the checkpointer lets commits gather after one before it copies their pages.
CHECKPOINT_SECONDS = 0.2
#: A log this long (pages) has not started over since it was short: SQLite starts it over at a commit that finds
#: every page copied, which never happens while commits keep coming during the checkpoints. Then the writer copies
#: what is left itself, right after a commit (a short checkpoint on the commit path, once per this many pages), so
#: that its next commit starts the log over; a reader still at work in the log (an export, say) defers that.
WAL_LIMIT_PAGES = 4096


def sqlite_path(url: str) -> tuple[str, dict[str, str]]:
    """The file path and options of a ``sqlite:///`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc:
        raise StoreConfigError(
            f"bad SQLite store URL {url!r}: use sqlite:///relative/path.db or sqlite:////abs/path.db"
        )
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise StoreConfigError(f"bad SQLite store URL {url!r}: no file path (use sqlite:///results.db)")
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return path, options


class SQLiteStore(Store):
    """Results in one SQLite file; safe for one writer and many readers across processes."""

    def __init__(self, url: str, *, mode: str = "write") -> None:
        self.url, self.mode = url, mode
        path, options = sqlite_path(url)
        synchronous = options.get("synchronous", "normal").lower()
        if synchronous not in _SYNCHRONOUS:
            raise StoreConfigError(
                f"bad SQLite store URL {url!r}: synchronous={synchronous!r}; "
                f"valid values are: {', '.join(_SYNCHRONOUS)}"
            )
        if path != ":memory:" and not Path(path).parent.exists():
            raise StoreUnavailable(
                f"cannot open SQLite store {url!r}: directory {str(Path(path).parent)!r} does not exist"
            )
        self._lock = threading.Lock()
        self._id_field: str | None = None
        self._path = path
        self._checkpointer: _Checkpointer | None = None
        if mode == "read":
            self._db = self._open_for_reading()
            return
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
            journal = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.executescript(_SCHEMA)
            if journal == "wal" and path != ":memory:":
                self._db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job, off the commit path
                self._checkpointer = _Checkpointer(path, synchronous.upper())
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store {url!r}: {exc}") from exc

    def _open_for_reading(self) -> sqlite3.Connection:
        """A read-only connection to an existing mlsm store; ``StoreNotFound`` when there is none."""
        path = self._path
        if path == ":memory:" or not os.path.isfile(path):
            raise StoreNotFound(
                f"no SQLite store at {self.url!r}: the file {path!r} does not exist (a run creates it; "
                "check --store or MLSM_STORE)"
            )
        db = self._connect(path)
        try:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mlsm_results'").fetchone()
        except sqlite3.Error as exc:
            db.close()
            raise StoreUnavailable(f"cannot open SQLite store {self.url!r}: {exc}") from exc
        if found is None:
            db.close()
            raise StoreNotFound(f"no SQLite store at {self.url!r}: the file {path!r} holds no mlsm tables")
        return db

    def _connect(self, path: str) -> sqlite3.Connection:
        """A connection for reading: the writer's file as it is, or in read mode the file opened read-only."""
        try:
            if self.mode != "read":
                return sqlite3.connect(path, timeout=30.0)
            uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30.0)
            try:
                db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                return db
            except sqlite3.OperationalError:
                db.close()
                folder = os.path.dirname(os.path.abspath(path))
                # no -shm file can be made in a read-only folder; without a -wal file there, no writer is at work
                if os.access(folder, os.W_OK) or os.path.exists(f"{path}-wal"):
                    raise
            db = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return db
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store {self.url!r} cannot be read: {exc}") from exc

    # -- results ---------------------------------------------------------------------------------------------

    def write(self, batch: Documents, run: RunRecord | None = None) -> None:
        self._writable()
        with self._writing(batch.id_field):
            self._insert(batch)
            if run is not None:
                self._save_run(run)

    def write_chunk(self, batch: Documents, mark: ChunkMark) -> bool:
        self._writable()
        with self._writing(batch.id_field):
            found = self._db.execute(
                f"SELECT {ChunkMark.COLUMNS} FROM mlsm_run_chunks"
                " WHERE run = ? AND source = ? AND first <= ? AND last >= ?",
                (mark.run, mark.source, mark.last, mark.first),
            ).fetchall()
            if already_written(mark, [ChunkMark.from_row(row) for row in found]):
                return False
            self._insert(batch)
            self._db.execute(
                f"INSERT INTO mlsm_run_chunks ({ChunkMark.COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                mark.to_row(),
            )
            return True

    @contextmanager
    def _writing(self, id_field: str | None) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE``: writers queue up), rolled back on any error; result
        documents claim the store's id field (``id_field``), outcomes (None) do not."""
        with self._lock:
            if id_field is not None:
                self._claim(id_field)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store {self.url!r} refused a write: {exc}") from exc
            if self._checkpointer is not None:
                self._checkpointer.committed(self._db)

    def _insert(self, batch: Documents) -> None:
        rows = [(id_value, batch.run, batch.timestamp, text) for id_value, text in zip(batch.ids, batch.json())]
        self._db.executemany("INSERT INTO mlsm_results (id, run, ts, doc) VALUES (?, ?, ?, ?)", rows)

    def chunk_marks(self, run_id: str) -> list[ChunkMark]:
        rows = self._query(
            f"SELECT {ChunkMark.COLUMNS} FROM mlsm_run_chunks WHERE run = ? ORDER BY source, first",
            (run_id,),
        )
        return [ChunkMark.from_row(row) for row in rows]

    def _claim(self, id_field: str) -> None:
        """Record the store's id field on its first write; refuse documents keyed by another field."""
        if self._id_field == id_field:
            return
        try:
            self._db.execute("INSERT OR IGNORE INTO mlsm_meta (key, value) VALUES ('id_field', ?)", (id_field,))
            (recorded,) = self._db.execute("SELECT value FROM mlsm_meta WHERE key = 'id_field'").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store {self.url!r} refused a write: {exc}") from exc
        check_id_field(self.url, recorded, id_field)
        self._id_field = id_field

    @property
    def id_field(self) -> str | None:
        if self._id_field is None:
            row = self._query_one("SELECT value FROM mlsm_meta WHERE key = 'id_field'", ())
            self._id_field = row[0] if row else None
        return self._id_field

    def current(self, id_value: str) -> dict[str, Any] | None:
        row = self._query_one("SELECT doc FROM mlsm_results WHERE id = ? ORDER BY seq DESC LIMIT 1", (str(id_value),))
        return _with_current(row[0], 0) if row else None

    def history(self, id_value: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT doc FROM mlsm_results WHERE id = ? ORDER BY seq DESC", (str(id_value),))
        return [_with_current(doc, rank) for rank, (doc,) in enumerate(rows)]

    def current_documents(self, model: str | None = None) -> Iterator[dict[str, Any]]:
        if model is None:
            for text, _seq in self._iterate("SELECT doc, MAX(seq) FROM mlsm_results GROUP BY id ORDER BY id", ()):
                yield _with_current(text, 0)
            return
        name, version = split_model(model)
        if '"' in name or '"' in version:  # not expressible as a JSON path: filter here instead
            sql = "SELECT doc, (SELECT COUNT(*) FROM mlsm_results n WHERE n.id = r.id AND n.seq > r.seq) AS rank"
            sql += " FROM mlsm_results r ORDER BY r.id, r.seq DESC"
            documents = (_with_current(text, rank) for text, rank in self._iterate(sql, ()))
            yield from newest_per_id((d for d in documents if has_model(d, model)), self.id_field or "")
            return
        sql = """
            SELECT t.doc, (SELECT COUNT(*) FROM mlsm_results n WHERE n.id = t.id AND n.seq > t.seq)
            FROM (SELECT id, MAX(seq) AS seq, doc FROM mlsm_results WHERE json_type(doc, ?) IS NOT NULL GROUP BY id) t
            ORDER BY t.id"""
        for text, rank in self._iterate(sql, (f'$.results."{name}"."{version}"',)):
            yield _with_current(text, rank)

    def run_documents(self, run_id: str) -> Iterator[dict[str, Any]]:
        sql = """SELECT doc, (SELECT COUNT(*) FROM mlsm_results n WHERE n.id = r.id AND n.seq > r.seq)
                 FROM mlsm_results r WHERE run = ? ORDER BY seq"""
        for text, rank in self._iterate(sql, (run_id,)):
            yield _with_current(text, rank)

    # -- runs ------------------------------------------------------------------------------------------------

    def start_run(self, run: RunRecord) -> None:
        self._writable()
        with self._lock:
            try:
                self._db.execute(
                    f"INSERT INTO mlsm_runs ({RunRecord.COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", run.to_row()
                )
            except sqlite3.IntegrityError as exc:
                from mlsm.errors import RunError

                raise RunError(
                    f"run {run.id!r} already exists in {self.url}: pick another --run-id, or add --resume"
                ) from exc
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store {self.url!r} refused a write: {exc}") from exc

    def save_run(self, run: RunRecord) -> None:
        self._writable()
        with self._lock:
            try:
                self._save_run(run)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store {self.url!r} refused a write: {exc}") from exc

    def _save_run(self, run: RunRecord) -> None:
        self._db.execute(
            "UPDATE mlsm_runs SET ended = ?, status = ?, rows = ?, chunks = ?, counts = ?, info = ? WHERE id = ?",
            run.progress_row(),
        )

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._query_one(f"SELECT {RunRecord.COLUMNS} FROM mlsm_runs WHERE id = ?", (run_id,))
        return RunRecord.from_row(row) if row else None

    def list_runs(self) -> list[RunRecord]:
        rows = self._query(f"SELECT {RunRecord.COLUMNS} FROM mlsm_runs ORDER BY started, id", ())
        return [RunRecord.from_row(row) for row in rows]

    # -- outcomes --------------------------------------------------------------------------------------------

    def write_outcomes(self, outcomes: list[Outcome]) -> None:
        self._writable()
        rows = [outcome.to_row() for outcome in outcomes]
        with self._writing(None):
            for statement in _OUTCOME_SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.executemany(
                f"INSERT INTO mlsm_outcome_history ({Outcome.COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
            self._db.executemany(
                f"INSERT INTO mlsm_outcomes ({Outcome.COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO "
                "UPDATE SET outcome = excluded.outcome, at = excluded.at, loaded_at = excluded.loaded_at, "
                "source = excluded.source, label = excluded.label",
                rows,
            )

    def _has_outcomes(self) -> bool:
        found = self._query_one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mlsm_outcomes'", ())
        return found is not None

    def outcomes(self, since: float | None = None, until: float | None = None) -> Iterator[Outcome]:
        if not self._has_outcomes():
            return
        where, params = window_clause("at", since, until, "?")
        for row in self._iterate(f"SELECT {Outcome.COLUMNS} FROM mlsm_outcomes{where} ORDER BY id", params):
            yield Outcome.from_row(row)

    def outcome_history(self, id_value: str) -> list[Outcome]:
        if not self._has_outcomes():
            return []
        sql = f"SELECT {Outcome.COLUMNS} FROM mlsm_outcome_history WHERE id = ? ORDER BY seq DESC"
        return [Outcome.from_row(row) for row in self._query(sql, (str(id_value),))]

    def outcome_documents(self, since: float | None = None, until: float | None = None) -> Iterator[OutcomeDocuments]:
        if not self._has_outcomes():
            return
        where, params = window_clause("o.at", since, until, "?")
        # outcomes in key order, each id's documents by the (id, seq) index: no sort, nothing held
        sql = f"""SELECT o.id, o.outcome, o.at, o.loaded_at, o.source, o.label, r.doc
                  FROM mlsm_outcomes o LEFT JOIN mlsm_results r ON r.id = o.id{where}
                  ORDER BY o.id, r.seq"""
        yield from grouped(self._iterate(sql, params), lambda text: without_rank(decode(text)))

    def outcome_results(self, since: float | None = None, until: float | None = None) -> Iterator[OutcomeResult]:
        if not self._has_outcomes():
            return
        where, params = window_clause("o.at", since, until, "?")
        sql = f"""SELECT o.id, o.outcome, o.at, r.doc
                  FROM mlsm_outcomes o LEFT JOIN mlsm_results r ON r.id = o.id{where}
                  ORDER BY o.id, r.seq"""
        scan = scan_document
        for id_value, outcome, at, text in self._iterate(sql, params):
            if text is None:
                yield id_value, outcome, at, None, None
            else:
                document = scan(text)
                yield id_value, outcome, at, document["_timestamp"], document["results"]

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._db.close()  # the last connection: SQLite checkpoints the rest and removes the log

    # -- helpers ---------------------------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store {self.url!r} cannot be read: {exc}") from exc

    def _query_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def _iterate(self, sql: str, params: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        # a separate read connection streams without holding the writer's lock
        reader = self._connect(self._path) if self._path != ":memory:" else self._db
        try:
            cursor = reader.execute(sql, params)
            while True:
                rows = cursor.fetchmany(1000)
                if not rows:
                    break
                yield from rows
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store {self.url!r} cannot be read: {exc}") from exc
        finally:
            if reader is not self._db:
                reader.close()


class _Checkpointer:
    """A thread with its own connection that copies committed log pages into the database file
    (``PRAGMA wal_checkpoint(PASSIVE)``: it never holds up a writer or a reader) ``CHECKPOINT_SECONDS`` after a
    commit; and, when the log has grown past ``WAL_LIMIT_PAGES``, the writer's copy of the rest (see there)."""

    def __init__(self, path: str, synchronous: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute(f"PRAGMA synchronous={synchronous}")  # a checkpoint syncs as this says
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._long = False  # the log has grown past WAL_LIMIT_PAGES without starting over
        self.rounds = 0  # checkpoints run by the thread (for tests and curious readers)
        self._thread = threading.Thread(target=self._run, name="mlsm-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def committed(self, writer: sqlite3.Connection) -> None:
        """A commit on ``writer`` added pages to the log (called with the store's write lock held)."""
        self._due.set()
        if self._long:
            try:
                _busy, pages, copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
            except sqlite3.Error:
                return  # the thread's checkpoint is under way: after the next commit, then
            self._long = copied < pages  # all copied: the next commit starts the log over

    def stop(self) -> None:
        """Stop the thread (a checkpoint under way finishes) and close its connection."""
        self._stopping.set()
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            # stop() sets _stopping before _due: a round whose clear() below came after stop() ends the loop here
            while not self._stopping.is_set():
                self._due.wait()
                if self._stopping.wait(CHECKPOINT_SECONDS):
                    return
                self._due.clear()  # a commit from now on asks for another round
                try:
                    # fetchall: a statement left unfinished would keep a read snapshot, and the log from starting over
                    _busy, pages, _copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
                except sqlite3.Error:
                    continue  # a locked or busy file: the next commit's round tries again
                self.rounds += 1
                self._long = pages >= WAL_LIMIT_PAGES
        finally:
            self._db.close()


def _with_current(text: str, rank: int) -> dict[str, Any]:
    document = decode(text)
    document["_current"] = rank
    return document
