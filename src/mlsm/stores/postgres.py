"""The PostgreSQL store (psycopg 3): documents as JSONB, written with ``COPY`` in one transaction per chunk.

Ids sort by code point (``COLLATE "C"``), as in the other stores, so exports and comparisons agree everywhere.
Same design as the SQLite store: documents are appended, ``seq`` orders them, ``_current`` is a document's rank
among its id's documents (newest first) computed on read, and a chunk commits together with its run's progress.
The index ``(id, seq DESC)`` serves "current document of an id" and "history of an id" at any size; the view
``mlsm_current`` gives SQL readers each id's newest document.

URL: ``postgresql://user:password@host:port/database`` (any libpq connection URI).

Opened for reading, the store creates nothing (``StoreNotFound`` when mlsm's tables are not there) and its
sessions are read-only (``default_transaction_read_only``), so a read command can never change the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlsm.documents import Documents, ordered
from mlsm.errors import RunError, StoreConfigError, StoreNotFound, StoreUnavailable
from mlsm.stores.base import (
    ChunkMark,
    RunRecord,
    Store,
    already_written,
    check_id_field,
    first_line,
    redact_url,
    split_model,
)
from mlsm.stores.outcomes import Outcome, OutcomeDocuments, OutcomeResult, grouped, window_clause, without_rank

__all__ = ["PostgresStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mlsm_results (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL,
    run TEXT,
    ts BIGINT NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS mlsm_results_id_seq ON mlsm_results (id, seq DESC);
CREATE TABLE IF NOT EXISTS mlsm_runs (
    id TEXT PRIMARY KEY,
    started DOUBLE PRECISION NOT NULL,
    ended DOUBLE PRECISION,
    status TEXT NOT NULL,
    rows BIGINT NOT NULL DEFAULT 0,
    chunks BIGINT NOT NULL DEFAULT 0,
    counts JSONB NOT NULL DEFAULT '{}',
    info JSONB NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS mlsm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mlsm_run_chunks (
    run TEXT NOT NULL,
    source TEXT NOT NULL,
    first BIGINT NOT NULL,
    last BIGINT NOT NULL,
    counts JSONB NOT NULL,
    PRIMARY KEY (run, source, first)
);
CREATE OR REPLACE VIEW mlsm_current AS
    SELECT DISTINCT ON (id) id, run, ts, doc FROM mlsm_results ORDER BY id, seq DESC;
"""

# created by the first load of outcomes (a store of results only never has them)
_OUTCOME_SCHEMA = """
CREATE TABLE IF NOT EXISTS mlsm_outcomes (
    id TEXT COLLATE "C" PRIMARY KEY,
    outcome SMALLINT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    loaded_at DOUBLE PRECISION NOT NULL,
    source TEXT,
    label TEXT
);
CREATE TABLE IF NOT EXISTS mlsm_outcome_history (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL,
    outcome SMALLINT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    loaded_at DOUBLE PRECISION NOT NULL,
    source TEXT,
    label TEXT
);
CREATE INDEX IF NOT EXISTS mlsm_outcome_history_id ON mlsm_outcome_history (id, seq DESC);
"""

# a chunk of outcomes is copied here first, then moved into both tables by two statements
_OUTCOME_LOAD = """
CREATE TEMP TABLE IF NOT EXISTS mlsm_outcome_load (
    pos BIGINT, id TEXT COLLATE "C", outcome SMALLINT, at DOUBLE PRECISION, loaded_at DOUBLE PRECISION,
    source TEXT, label TEXT
) ON COMMIT DELETE ROWS
"""


class PostgresStore(Store):
    """Results in PostgreSQL; many writers and readers may share it."""

    def __init__(self, url: str, *, mode: str = "write", connect_timeout: int = 10) -> None:
        import psycopg

        self.url, self.mode = url, mode
        self._shown = redact_url(url)
        self._id_field: str | None = None
        self._timeout = connect_timeout
        self._db = self._connect()
        if mode == "read":
            self._check_exists()
            return
        try:
            with self._db.transaction():
                # one schema creation at a time, whoever gets here first
                self._db.execute("SELECT pg_advisory_xact_lock(hashtext('mlsm schema'))")
                self._db.execute(_SCHEMA)
        except psycopg.Error as exc:
            self._db.close()
            raise StoreUnavailable(
                f"PostgreSQL store {self._shown} refused to create mlsm's tables: {first_line(exc)}"
            ) from exc

    def _connect(self, *, autocommit: bool = True) -> Any:
        """A connection (read-only sessions in read mode); ``StoreUnavailable`` when the server cannot be reached."""
        import psycopg

        try:
            db = psycopg.connect(self.url, autocommit=autocommit, connect_timeout=self._timeout)
        except psycopg.ProgrammingError as exc:
            raise StoreConfigError(f"bad PostgreSQL store URL {self._shown}: {first_line(exc)}") from exc
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL store {self._shown}: {first_line(exc)}") from exc
        if self.mode == "read":
            try:
                db.execute("SET SESSION default_transaction_read_only = on")
                if not autocommit:
                    db.commit()
            except psycopg.Error as exc:
                db.close()
                raise self._unavailable("cannot be read", exc) from exc
        return db

    def _check_exists(self) -> None:
        """``StoreNotFound`` unless mlsm's tables are on the connection's search path."""
        rows = self._query("SELECT to_regclass('mlsm_results') IS NOT NULL", ())
        if not rows[0][0]:
            self._db.close()
            raise StoreNotFound(
                f"no mlsm store in PostgreSQL {self._shown}: it holds no mlsm tables (nothing was ever written "
                "there; check --store, its database and search_path)"
            )

    @property
    def _conn(self) -> Any:
        """The connection, opened again when the server dropped it (a restart, a network blip)."""
        if self._db.closed or self._db.broken:
            self._db.close()
            self._db = self._connect()
        return self._db

    # -- results ---------------------------------------------------------------------------------------------

    def write(self, batch: Documents, run: RunRecord | None = None) -> None:
        import psycopg

        self._writable()
        try:
            with self._conn.transaction():
                self._claim(batch.id_field)
                self._copy(batch)
                if run is not None:
                    self._save_run(run)
        except psycopg.Error as exc:
            raise self._unavailable("refused a write", exc) from exc

    def write_chunk(self, batch: Documents, mark: ChunkMark) -> bool:
        import psycopg

        self._writable()
        try:
            with self._conn.transaction():
                self._claim(batch.id_field)
                # one writer per chunk at a time; writers of other chunks go on
                self._db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{mark.run}|{mark.source}",))
                found = self._db.execute(
                    f"SELECT {ChunkMark.COLUMNS} FROM mlsm_run_chunks"
                    " WHERE run = %s AND source = %s AND first <= %s AND last >= %s",
                    (mark.run, mark.source, mark.last, mark.first),
                ).fetchall()
                if already_written(mark, [ChunkMark.from_row(row) for row in found]):
                    return False
                self._copy(batch)
                self._db.execute(
                    f"INSERT INTO mlsm_run_chunks ({ChunkMark.COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                    mark.to_row(),
                )
            return True
        except psycopg.Error as exc:
            raise self._unavailable("refused a write", exc) from exc

    def _copy(self, batch: Documents) -> None:
        """The batch's documents into ``mlsm_results`` with one ``COPY`` (inside the caller's transaction)."""
        with self._db.cursor() as cursor, cursor.copy("COPY mlsm_results (id, run, ts, doc) FROM STDIN") as copy:
            for id_value, text in zip(batch.ids, batch.iter_json()):
                copy.write_row((id_value, batch.run, batch.timestamp, text))

    def chunk_marks(self, run_id: str) -> list[ChunkMark]:
        sql = f"SELECT {ChunkMark.COLUMNS} FROM mlsm_run_chunks WHERE run = %s ORDER BY source, first"
        return [ChunkMark.from_row(row) for row in self._query(sql, (run_id,))]

    def current(self, id_value: str) -> dict[str, Any] | None:
        rows = self._query("SELECT doc FROM mlsm_results WHERE id = %s ORDER BY seq DESC LIMIT 1", (str(id_value),))
        return self._document(rows[0][0], 0) if rows else None

    def history(self, id_value: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT doc FROM mlsm_results WHERE id = %s ORDER BY seq DESC", (str(id_value),))
        return [self._document(doc, rank) for rank, (doc,) in enumerate(rows)]

    def current_documents(self, model: str | None = None) -> Iterator[dict[str, Any]]:
        if model is None:
            sql = "SELECT DISTINCT ON (id) doc, 0 FROM mlsm_results ORDER BY id, seq DESC"
            params: tuple[Any, ...] = ()
        else:
            name, version = split_model(model)
            sql = """
                SELECT t.doc, (SELECT COUNT(*) FROM mlsm_results n WHERE n.id = t.id AND n.seq > t.seq)
                FROM (SELECT DISTINCT ON (id) id, seq, doc FROM mlsm_results
                      WHERE doc -> 'results' -> %s ? %s ORDER BY id, seq DESC) t
                ORDER BY t.id"""
            params = (name, version)
        for doc, rank in self._stream(sql, params):
            yield self._document(doc, int(rank))

    def run_documents(self, run_id: str) -> Iterator[dict[str, Any]]:
        sql = """SELECT doc, (SELECT COUNT(*) FROM mlsm_results n WHERE n.id = r.id AND n.seq > r.seq)
                 FROM mlsm_results r WHERE run = %s ORDER BY seq"""
        for doc, rank in self._stream(sql, (run_id,)):
            yield self._document(doc, int(rank))

    # -- runs ------------------------------------------------------------------------------------------------

    def start_run(self, run: RunRecord) -> None:
        import psycopg

        self._writable()
        try:
            self._conn.execute(
                f"INSERT INTO mlsm_runs ({RunRecord.COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", run.to_row()
            )
        except psycopg.errors.UniqueViolation as exc:
            raise RunError(
                f"run {run.id!r} already exists in {self._shown}: pick another --run-id, or add --resume"
            ) from exc
        except psycopg.Error as exc:
            raise self._unavailable("refused a write", exc) from exc

    def save_run(self, run: RunRecord) -> None:
        import psycopg

        self._writable()
        try:
            self._save_run(run)
        except psycopg.Error as exc:
            raise self._unavailable("refused a write", exc) from exc

    def _save_run(self, run: RunRecord) -> None:
        self._conn.execute(
            "UPDATE mlsm_runs SET ended = %s, status = %s, rows = %s, chunks = %s, counts = %s, info = %s"
            " WHERE id = %s",
            run.progress_row(),
        )

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._query(f"SELECT {RunRecord.COLUMNS} FROM mlsm_runs WHERE id = %s", (run_id,))
        return RunRecord.from_row(rows[0]) if rows else None

    def list_runs(self) -> list[RunRecord]:
        rows = self._query(f"SELECT {RunRecord.COLUMNS} FROM mlsm_runs ORDER BY started, id", ())
        return [RunRecord.from_row(row) for row in rows]

    # -- outcomes --------------------------------------------------------------------------------------------

    def write_outcomes(self, outcomes: list[Outcome]) -> None:
        import psycopg

        self._writable()
        try:
            with self._conn.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(hashtext('mlsm schema'))")
                self._db.execute(_OUTCOME_SCHEMA)
                self._db.execute(_OUTCOME_LOAD)
                copy_sql = f"COPY mlsm_outcome_load (pos, {Outcome.COLUMNS}) FROM STDIN"
                with self._db.cursor() as cursor, cursor.copy(copy_sql) as copy:
                    for pos, outcome in enumerate(outcomes):
                        copy.write_row((pos, *outcome.to_row()))
                columns = Outcome.COLUMNS
                self._db.execute(
                    f"INSERT INTO mlsm_outcome_history ({columns}) SELECT {columns} FROM mlsm_outcome_load ORDER BY pos"
                )
                self._db.execute(
                    f"INSERT INTO mlsm_outcomes ({columns}) SELECT DISTINCT ON (id) {columns} FROM mlsm_outcome_load"
                    " ORDER BY id, pos DESC ON CONFLICT (id) DO UPDATE SET outcome = EXCLUDED.outcome,"
                    " at = EXCLUDED.at, loaded_at = EXCLUDED.loaded_at, source = EXCLUDED.source,"
                    " label = EXCLUDED.label"
                )
        except psycopg.Error as exc:
            raise self._unavailable("refused a write", exc) from exc

    def _has_outcomes(self) -> bool:
        return bool(self._query("SELECT to_regclass('mlsm_outcomes') IS NOT NULL", ())[0][0])

    def outcomes(self, since: float | None = None, until: float | None = None) -> Iterator[Outcome]:
        if not self._has_outcomes():
            return
        where, params = window_clause("at", since, until, "%s")
        for row in self._stream(f"SELECT {Outcome.COLUMNS} FROM mlsm_outcomes{where} ORDER BY id", params):
            yield Outcome.from_row(row)

    def outcome_history(self, id_value: str) -> list[Outcome]:
        if not self._has_outcomes():
            return []
        sql = f"SELECT {Outcome.COLUMNS} FROM mlsm_outcome_history WHERE id = %s ORDER BY seq DESC"
        return [Outcome.from_row(row) for row in self._query(sql, (str(id_value),))]

    def outcome_documents(self, since: float | None = None, until: float | None = None) -> Iterator[OutcomeDocuments]:
        if not self._has_outcomes():
            return
        where, params = window_clause("o.at", since, until, "%s")
        sql = f"""SELECT o.id, o.outcome, o.at, o.loaded_at, o.source, o.label, r.doc
                  FROM mlsm_outcomes o LEFT JOIN mlsm_results r ON r.id = o.id{where}
                  ORDER BY o.id, r.seq"""
        yield from grouped(self._stream(sql, params), without_rank)

    def outcome_results(self, since: float | None = None, until: float | None = None) -> Iterator[OutcomeResult]:
        if not self._has_outcomes():
            return
        where, params = window_clause("o.at", since, until, "%s")
        # only what the join reads leaves the server
        sql = f"""SELECT o.id, o.outcome, o.at, r.doc -> '_timestamp', r.doc -> 'results'
                  FROM mlsm_outcomes o LEFT JOIN mlsm_results r ON r.id = o.id{where}
                  ORDER BY o.id, r.seq"""
        yield from self._stream(sql, params)

    def close(self) -> None:
        self._db.close()

    # -- helpers ---------------------------------------------------------------------------------------------

    def _claim(self, id_field: str) -> None:
        """Record the store's id field on its first write; refuse documents keyed by another field."""
        if self._id_field == id_field:
            return
        self._db.execute(
            "INSERT INTO mlsm_meta (key, value) VALUES ('id_field', %s) ON CONFLICT DO NOTHING", (id_field,)
        )
        row = self._db.execute("SELECT value FROM mlsm_meta WHERE key = 'id_field'").fetchone()
        check_id_field(self._shown, row[0] if row else None, id_field)
        self._id_field = id_field

    @property
    def id_field(self) -> str | None:
        if self._id_field is None:
            rows = self._query("SELECT value FROM mlsm_meta WHERE key = 'id_field'", ())
            self._id_field = rows[0][0] if rows else None
        return self._id_field

    def _document(self, doc: dict[str, Any], rank: int) -> dict[str, Any]:
        doc["_current"] = rank
        return ordered(doc, self.id_field)

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise self._unavailable("cannot be read", exc) from exc

    def _stream(self, sql: str, params: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        """Rows through a server-side cursor, so an export of millions of documents runs in bounded memory."""
        import psycopg

        try:
            with self._connect(autocommit=False) as reader, reader.cursor(name="mlsm_stream") as cursor:
                cursor.itersize = 2000
                cursor.execute(sql, params)
                yield from cursor
        except psycopg.Error as exc:
            raise self._unavailable("cannot be read", exc) from exc

    def _unavailable(self, what: str, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"PostgreSQL store {self._shown} {what}: {first_line(exc)}")
