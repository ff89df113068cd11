"""The MongoDB store: exactly the seed's layout, so existing consumers of the original keep working.

Documents live in one collection (default ``results``) as ``{<id field>: id, _current, _timestamp, _run, results}``
with ``_current`` materialized: a chunk is written with one ``update_many`` per distinct multiplicity (in practice
one) that increments the ``_current`` of older documents, then one ``insert_many``. Runs live in ``mlsm_runs``.

URL: ``mongodb://host:port/db`` with optional ``?collection=results&id_field=id`` (mlsm's own options, removed
before the URL reaches the driver).

Opened for reading, the store needs the results collection or mlsm's runs to exist (``StoreNotFound`` otherwise)
and creates nothing: no indexes, and writes left unfinished by a dead writer are not settled (a writer does that).
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mlsm.documents import Documents
from mlsm.errors import StoreConfigError, StoreNotFound, StoreUnavailable
from mlsm.stores.base import ChunkMark, RunRecord, Store, first_line, has_model, newest_per_id, redact_url, split_model
from mlsm.stores.base import already_written as _already_written
from mlsm.stores.outcomes import Outcome, OutcomeDocuments, without_rank

__all__ = ["STALE_INTENT_SECONDS", "MongoStore"]

_OWN_OPTIONS = ("collection", "id_field")

#: The keys of a stored document besides its id field (the seed's layout plus ``_run``).
_LAYOUT_KEYS = frozenset({"_id", "_current", "_timestamp", "_run", "results"})

#: A write's note older than this belongs to a writer that died (a write takes seconds at most).
STALE_INTENT_SECONDS = 1800.0


class MongoStore(Store):
    """Results in a MongoDB collection, in the seed's document layout."""

    def __init__(
        self,
        url: str,
        *,
        mode: str = "write",
        collection: str | None = None,
        id_field: str | None = None,
        timeout_ms: int = 5000,
    ) -> None:
        import pymongo
        from pymongo.errors import ConfigurationError, InvalidURI, PyMongoError

        self.url, self.mode = url, mode
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        own = {key: options.pop(key) for key in _OWN_OPTIONS if key in options}
        database = parts.path.lstrip("/")
        if not database:
            raise StoreConfigError(
                f"bad MongoDB store URL {redact_url(url)}: name the database, e.g. mongodb://localhost:27017/mlsm"
            )
        driver_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(options), ""))
        try:
            # a timeout in the URL wins over ours
            timeouts: dict[str, Any] = {
                key: timeout_ms for key in ("serverSelectionTimeoutMS", "connectTimeoutMS") if key not in options
            }
            client: Any = pymongo.MongoClient(driver_url, **timeouts)
        except (ConfigurationError, InvalidURI, ValueError) as exc:
            raise StoreConfigError(f"bad MongoDB store URL {redact_url(url)}: {first_line(exc)}") from exc
        self._client = client
        self._init(client[database], collection or own.get("collection", "results"), id_field or own.get("id_field"))
        try:
            client.admin.command("ping")
            if mode == "read":
                names = set(self._db.list_collection_names())
            else:
                self._ensure_indexes()
        except PyMongoError as exc:
            client.close()
            raise StoreUnavailable(f"cannot reach MongoDB store {redact_url(url)}: {first_line(exc)}") from exc
        if mode == "read" and self._collection not in names and "mlsm_runs" not in names:
            client.close()
            raise StoreNotFound(
                f"no mlsm store at MongoDB {redact_url(url)}: database {database!r} has no collection "
                f"{self._collection!r} and no mlsm runs (nothing was ever written there; check --store)"
            )

    @classmethod
    def from_database(cls, db: Any, *, collection: str, id_field: str) -> MongoStore:
        """A store over an existing pymongo ``Database`` (the seed API's ``RunModelsAll(db=...)``)."""
        store = cls.__new__(cls)
        store.url = f"mongodb database {db.name!r}"
        store._client = None
        store._init(db, collection, id_field)
        store._guard(store._ensure_indexes)
        return store

    def _init(self, db: Any, collection: str, id_field: str | None) -> None:
        self._db = db
        self._collection = collection
        self._results = db[collection]
        self._runs = db["mlsm_runs"]
        self._meta = db["mlsm_meta"]
        self._chunks = db["mlsm_chunks"]
        self._intents = db["mlsm_intents"]
        self._unfinished: list[dict[str, Any]] = []
        self._id_field = id_field
        self._claimed: str | None = None
        self._indexed: set[str] = set()

    def _ensure_indexes(self) -> None:
        if self._id_field:
            self._index_for(self._id_field)
        self._create_index([("_run", 1), ("_timestamp", 1)])
        self.settle_stale()

    def _index_for(self, id_field: str) -> None:
        if id_field not in self._indexed:
            self._indexed.add(id_field)
            self._create_index([(id_field, 1), ("_current", 1)])

    def _create_index(self, keys: list[tuple[str, int]]) -> None:
        """Create an index; a server that cannot index these fields still stores and finds documents, slower."""
        from pymongo.errors import OperationFailure

        try:
            self._results.create_index(keys)
        except OperationFailure as exc:
            fields = ", ".join(name for name, _ in keys)
            warnings.warn(f"MongoDB store: no index on ({fields}): {first_line(exc)}; queries will scan", stacklevel=3)

    @property
    def id_field(self) -> str | None:
        """The id field queries use: given, from the URL, or the one this collection's documents use (recorded by
        mlsm's first write, else read off a document written by the original package); None while it is empty."""
        if self._id_field is None:
            self._id_field = self._guard(self._recorded_id_field)
        return self._id_field

    def _recorded_id_field(self) -> str | None:
        recorded = self._meta.find_one({"_id": self._collection})
        if recorded is not None and recorded.get("id_field"):
            return str(recorded["id_field"])
        document = self._results.find_one({})
        return next((key for key in document if key not in _LAYOUT_KEYS), None) if document else None

    def _claim(self, id_field: str) -> None:
        """Record the collection's id field on its first write; refuse documents keyed by another field."""
        if self._claimed == id_field:
            return
        recorded = self._meta.find_one({"_id": self._collection})
        if recorded is not None and recorded.get("id_field") != id_field:
            raise StoreConfigError(
                f"collection {self._collection!r} holds documents keyed by {recorded.get('id_field')!r}, "
                f"not {id_field!r}: use another store or ?collection= for these"
            )
        if recorded is None:
            self._meta.update_one({"_id": self._collection}, {"$set": {"id_field": id_field}}, upsert=True)
        self._claimed = id_field
        self._id_field = id_field

    # -- results ---------------------------------------------------------------------------------------------

    def write(self, batch: Documents, run: RunRecord | None = None) -> None:
        self._writable()
        if run is None:  # no progress to commit: the chunk is in once all its documents are
            self._guard(lambda: self._write_noted(batch, batch.run or "", 0, lambda: None, {"complete": True}))
            return

        def progress() -> None:
            self._runs.update_one({"_id": run.id}, {"$set": run.to_dict()})

        done = {"run": run.id, "chunks": run.chunks}  # the run's progress says the chunk is in
        self._guard(lambda: self._write_noted(batch, run.id, run.chunks, progress, done))

    def write_chunk(self, batch: Documents, mark: ChunkMark) -> bool:
        self._writable()

        def record() -> None:
            self._chunks.insert_one({"_id": _mark_id(mark), **asdict(mark)})

        def steps() -> bool:
            found = list(self._chunks.find({"run": mark.run, "source": mark.source, "first": {"$lte": mark.last}}))
            if _already_written(mark, [_mark(d) for d in found if d["last"] >= mark.first]):
                return False
            self._write_noted(batch, mark.run, mark.first, record, {"mark": _mark_id(mark)})
            return True

        return bool(self._guard(steps))

    def chunk_marks(self, run_id: str) -> list[ChunkMark]:
        found = self._guard(lambda: list(self._chunks.find({"run": run_id}).sort([("source", 1), ("first", 1)])))
        return [_mark(document) for document in found]

    def _write_noted(self, batch: Documents, run_id: str, sequence: int, commit: Any, done: dict[str, Any]) -> None:
        """Write a chunk without multi-document transactions (a standalone server has none).

        The steps: note the write (an intent), bump the older documents' ``_current``, insert the new documents,
        ``commit()`` (the run's progress, or the chunk's mark), drop the note. A writer killed between two steps
        leaves its note behind; ``recover()`` looks at ``done`` (what shows the commit happened) and, when it did
        not, deletes the chunk's documents and renumbers its ids, so the chunk can be written again exactly once.
        A write that failed in this process is settled the same way before the next.
        """
        for intent in list(self._unfinished):
            self._undo(intent)
            self._unfinished.remove(intent)
        documents = [dict(document) for document in batch.documents]
        # ids in write order (second, then chunk number), unique across concurrent writers (3 random bytes)
        tag, stamp = (sequence % 65536).to_bytes(2, "big") + os.urandom(3), int(time.time())
        for i, document in enumerate(documents):
            document["_id"] = _object_id(stamp, tag, i)
        intent = {
            "_id": f"{run_id}:{tag.hex()}",
            "run": run_id,
            "stamp": stamp,
            "tag": tag.hex(),
            "n": len(documents),
            "ids": list(dict.fromkeys(batch.ids)),
            "id_field": batch.id_field,
            "done": done,
        }
        self._intents.insert_one(intent)
        self._unfinished.append(intent)
        self._write_documents(batch.id_field, documents)
        commit()
        self._intents.delete_one({"_id": intent["_id"]})
        self._unfinished.remove(intent)

    def recover(self, run: RunRecord) -> None:
        self._writable()

        def steps() -> None:
            for intent in list(self._intents.find({"run": run.id})):
                self._undo(intent)

        self._guard(steps)

    def settle_stale(self, older_than: float = STALE_INTENT_SECONDS) -> int:
        """Settle the notes of writes left unfinished longer ago than ``older_than`` seconds by writers that
        died (a service, a seed ``RunModelsAll``, a run never resumed); returns how many. Done on every open."""

        self._writable()

        def steps() -> int:
            stale = list(self._intents.find({"stamp": {"$lt": int(time.time() - older_than)}}))
            for intent in stale:
                self._undo(intent)
            return len(stale)

        return int(self._guard(steps))

    def _committed(self, intent: dict[str, Any]) -> bool:
        """Whether a noted write reached its commit (killed after it, only the note's removal is missing)."""
        done = intent.get("done") or {}
        if done.get("complete"):
            written = [_object_id(intent["stamp"], bytes.fromhex(intent["tag"]), i) for i in range(intent["n"])]
            found = sum(  # find, not count_documents: the wire-protocol test server miscounts $in on _id
                len(list(self._results.find({"_id": {"$in": written[i : i + 5000]}}, {"_id": 1})))
                for i in range(0, len(written), 5000)
            )
            return found == intent["n"]
        if "mark" in done:
            return self._chunks.find_one({"_id": done["mark"]}) is not None
        saved = self._runs.find_one({"_id": done.get("run")}, {"chunks": 1})
        return saved is not None and saved.get("chunks", 0) >= done.get("chunks", 1)

    def _undo(self, intent: dict[str, Any]) -> None:
        """Settle a noted write: if it never committed, delete its documents and renumber its ids' ``_current``."""
        from pymongo import UpdateOne

        if self._committed(intent):
            self._intents.delete_one({"_id": intent["_id"]})
            return

        id_field = intent["id_field"]
        tag = bytes.fromhex(intent["tag"])
        written = [_object_id(intent["stamp"], tag, i) for i in range(intent["n"])]
        for start in range(0, len(written), 5000):
            self._results.delete_many({"_id": {"$in": written[start : start + 5000]}})
        updates = []
        for start in range(0, len(intent["ids"]), 5000):
            ids = intent["ids"][start : start + 5000]
            found = self._results.find({id_field: {"$in": ids}}, {"_id": 1, id_field: 1, "_current": 1})
            ranked = sorted(found, key=lambda d: (d[id_field], d.get("_current", 0), d["_id"].generation_time))
            rank, last = 0, object()
            for document in ranked:
                rank = rank + 1 if document[id_field] == last else 0
                last = document[id_field]
                if document.get("_current") != rank:
                    updates.append(UpdateOne({"_id": document["_id"]}, {"$set": {"_current": rank}}))
        if updates:
            self._results.bulk_write(updates, ordered=False)
        self._intents.delete_one({"_id": intent["_id"]})

    def write_documents(self, documents: list[dict[str, Any]]) -> None:
        """Write seed-layout documents (``_current`` renumbered): two bulk operations, noted like any write."""
        self._writable()
        id_field = self.id_field
        if id_field is None:
            raise StoreConfigError(f"MongoDB store {redact_url(self.url)}: name the documents' id field to write them")
        batch = Documents(id_field, [document[id_field] for document in documents], documents)
        self._guard(lambda: self._write_noted(batch, "", 0, lambda: None, {"complete": True}))

    def _write_documents(self, id_field: str, documents: list[dict[str, Any]]) -> None:
        if not documents:
            return
        self._claim(id_field)
        self._index_for(id_field)
        ids = [document[id_field] for document in documents]
        by_count: dict[int, list[Any]] = defaultdict(list)
        for id_value, count in Counter(ids).items():
            by_count[count].append(id_value)
        for count, group in by_count.items():
            self._results.update_many({id_field: {"$in": group}}, {"$inc": {"_current": count}})
        later: Counter[Any] = Counter()
        for document in reversed(documents):
            document["_current"] = later[document[id_field]]
            later[document[id_field]] += 1
        self._results.insert_many(documents, ordered=True)

    def current(self, id_value: str) -> dict[str, Any] | None:
        id_field = self.id_field
        if id_field is None:  # nothing was ever written
            return None
        query = {id_field: {"$eq": id_value}, "_current": 0}
        return self._guard(lambda: _clean(self._results.find_one(query)))

    def history(self, id_value: str) -> list[dict[str, Any]]:
        id_field = self.id_field
        if id_field is None:
            return []
        # explicit $eq: same meaning as {field: value}, and the wire-protocol test server needs it for "id"
        query = {id_field: {"$eq": id_value}}
        return self._guard(lambda: [_clean(d) for d in self._results.find(query).sort("_current", 1)])

    def current_documents(self, model: str | None = None) -> Iterator[dict[str, Any]]:
        id_field = self.id_field
        if id_field is None:
            return iter(())
        if model is None:
            return self._stream(lambda: self._results.find({"_current": 0}).sort(id_field, 1))
        name, _ = split_model(model)
        # versions hold dots ("1.0"), which a query path would read as nesting: match the version here
        query = {f"results.{name}": {"$exists": True}} if "." not in name and not name.startswith("$") else {}
        candidates = self._stream(lambda: self._results.find(query).sort([(id_field, 1), ("_current", 1)]))
        return newest_per_id((d for d in candidates if has_model(d, model)), id_field)

    def run_documents(self, run_id: str) -> Iterator[dict[str, Any]]:
        return self._stream(lambda: self._results.find({"_run": run_id}).sort([("_timestamp", 1), ("_id", 1)]))

    def _stream(self, find: Callable[[], Any]) -> Iterator[dict[str, Any]]:
        """The documents of a query (without ``_id``) as they arrive; a driver error on any of them, the first
        or one fetched later from a server gone meanwhile, is raised as ``StoreUnavailable``."""
        from pymongo.errors import PyMongoError

        try:
            for document in find():
                document.pop("_id", None)
                yield document
        except PyMongoError as exc:
            raise self._error(exc) from exc

    # -- runs ------------------------------------------------------------------------------------------------

    def start_run(self, run: RunRecord) -> None:
        from pymongo.errors import DuplicateKeyError

        self._writable()
        try:
            self._guard(lambda: self._runs.insert_one({"_id": run.id, **run.to_dict()}))
        except DuplicateKeyError as exc:
            from mlsm.errors import RunError

            raise RunError(
                f"run {run.id!r} already exists in {redact_url(self.url)}: pick another --run-id, or add --resume"
            ) from exc

    def save_run(self, run: RunRecord) -> None:
        self._writable()
        self._guard(lambda: self._runs.update_one({"_id": run.id}, {"$set": run.to_dict()}, upsert=True))

    def get_run(self, run_id: str) -> RunRecord | None:
        found = self._guard(lambda: self._runs.find_one({"_id": run_id}))
        return _run(found) if found else None

    def list_runs(self) -> list[RunRecord]:
        return self._guard(lambda: [_run(d) for d in self._runs.find({}).sort([("started", 1), ("_id", 1)])])

    # -- outcomes --------------------------------------------------------------------------------------------
    #
    # ``mlsm_outcomes`` holds each id's current outcome under ``_id`` = the id; ``mlsm_outcome_history`` every one
    # loaded. A standalone server has no multi-document transactions: the history is written first, then the
    # current outcomes with one ordered bulk of replacements (each atomic). A load cut in the middle leaves some
    # ids updated and some not; loading the chunk again completes it (replacing is idempotent), with its history
    # entries twice.

    def write_outcomes(self, outcomes: list[Outcome]) -> None:
        from pymongo import ReplaceOne

        self._writable()
        if not outcomes:
            return

        def steps() -> None:
            self._db["mlsm_outcome_history"].insert_many([outcome.to_dict() for outcome in outcomes], ordered=True)
            last = {outcome.id: outcome for outcome in outcomes}  # the last of an id in the chunk wins
            replacements = [
                ReplaceOne({"_id": id_value}, _outcome_document(outcome), upsert=True)
                for id_value, outcome in last.items()
            ]
            self._db["mlsm_outcomes"].bulk_write(replacements, ordered=True)

        self._guard(steps)

    def outcomes(self, since: float | None = None, until: float | None = None) -> Iterator[Outcome]:
        from pymongo.errors import PyMongoError

        try:
            for document in self._db["mlsm_outcomes"].find(_window(since, until)).sort("_id", 1):
                yield _outcome(document)
        except PyMongoError as exc:
            raise self._error(exc) from exc

    def outcome_history(self, id_value: str) -> list[Outcome]:
        history = self._db["mlsm_outcome_history"]
        found = self._guard(
            lambda: list(history.find({"id": {"$eq": id_value}}).sort([("loaded_at", -1), ("_id", -1)]))
        )
        return [_outcome({**document, "_id": document["id"]}) for document in found]

    def outcome_documents(self, since: float | None = None, until: float | None = None) -> Iterator[OutcomeDocuments]:
        id_field = self.id_field
        pending: list[Outcome] = []
        for outcome in self.outcomes(since, until):
            pending.append(outcome)
            if len(pending) >= 1000:
                yield from self._joined(pending, id_field)
                pending = []
        yield from self._joined(pending, id_field)

    def _joined(self, outcomes: list[Outcome], id_field: str | None) -> Iterator[OutcomeDocuments]:
        """The outcomes (by id) each with its id's documents, oldest first: one sorted query for all their ids,
        merged with them (a sort bounded by the group, where a sort of the collection would not fit the server)."""
        if not outcomes:
            return
        if id_field is None:  # no documents at all
            for outcome in outcomes:
                yield outcome, iter(())
            return
        ids = [outcome.id for outcome in outcomes]
        query = {id_field: {"$in": ids}}
        documents = self._stream(lambda: self._results.find(query).sort([(id_field, 1), ("_current", -1)]))
        cursor = _Peek(documents)
        for outcome in outcomes:
            while cursor.item is not None and str(cursor.item.get(id_field)) < outcome.id:
                cursor.advance()
            yield outcome, cursor.take(id_field, outcome.id)
            while cursor.item is not None and cursor.item.get(id_field) == outcome.id:
                cursor.advance()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _guard(self, action: Callable[[], Any]) -> Any:
        """``action()``, its driver errors raised as ``StoreUnavailable`` (a duplicate key as it is, for callers)."""
        from pymongo.errors import DuplicateKeyError, PyMongoError

        try:
            return action()
        except DuplicateKeyError:
            raise
        except PyMongoError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> StoreUnavailable:
        """The one-line error a driver error becomes."""
        from pymongo.errors import ConnectionFailure

        if isinstance(exc, ConnectionFailure):  # AutoReconnect and timeouts included
            return StoreUnavailable(f"MongoDB store {redact_url(self.url)} is unreachable: {first_line(exc)}")
        return StoreUnavailable(f"MongoDB store {redact_url(self.url)} refused the operation: {first_line(exc)}")


def _mark_id(mark: ChunkMark) -> str:
    return f"{mark.run}|{mark.source}|{mark.first}"


def _mark(document: dict[str, Any]) -> ChunkMark:
    return ChunkMark(**{f.name: document[f.name] for f in fields(ChunkMark)})


def _object_id(stamp: int, tag: bytes, index: int) -> Any:
    """A document id a repair can compute again: creation second, the chunk's tag, the position in the chunk."""
    from bson import ObjectId

    return ObjectId(stamp.to_bytes(4, "big") + tag + index.to_bytes(3, "big"))


def _clean(document: dict[str, Any] | None) -> dict[str, Any] | None:
    if document is not None:
        document.pop("_id", None)
    return document


def _run(document: dict[str, Any]) -> RunRecord:
    names = {f.name for f in fields(RunRecord)}
    return RunRecord(**{key: value for key, value in document.items() if key in names})


def _outcome_document(outcome: Outcome) -> dict[str, Any]:
    document = outcome.to_dict()
    document["_id"] = document.pop("id")
    return document


def _outcome(document: dict[str, Any]) -> Outcome:
    return Outcome(
        str(document["_id"]), int(document["outcome"]), float(document["at"]), float(document["loaded_at"]),
        document.get("source"), document.get("label"),
    )  # fmt: skip


def _window(since: float | None, until: float | None) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if since is not None:
        bounds["$gte"] = since
    if until is not None:
        bounds["$lt"] = until
    return {"at": bounds} if bounds else {}


class _Peek:
    """A document stream with its next document in view, for merging it with the outcomes."""

    def __init__(self, documents: Iterator[dict[str, Any]]) -> None:
        self.documents = documents
        self.item: dict[str, Any] | None = next(documents, None)

    def advance(self) -> None:
        self.item = next(self.documents, None)

    def take(self, id_field: str, id_value: str) -> Iterator[dict[str, Any]]:
        while self.item is not None and self.item.get(id_field) == id_value:
            document = self.item
            self.advance()
            yield without_rank(document)
