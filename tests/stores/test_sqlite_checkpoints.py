"""SQLite's write-ahead log is copied into the database file by the store's checkpointer thread, never by a commit:
the log stays bounded under writes that never pause, a reader parked in the log never holds writes up, and closing
the store leaves one file."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from mlsm import open_store
from mlsm.documents import Documents, make_document
from mlsm.stores import sqlite as sqlite_store


def chunk(first: int, size: int) -> Documents:
    ids = [f"lead-{first + i:07d}" for i in range(size)]
    now = int(time.time())
    docs = [
        make_document("lead", i, {"m": {"1": {"score": 0.5, "pad": "x" * 400}}}, run="r", timestamp=now) for i in ids
    ]
    return Documents("lead", ids, docs, run="r")


def wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mlsm-sqlite-checkpoint"]


def test_a_commit_leaves_its_pages_in_the_log_for_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    with open_store(f"sqlite:///{path}") as store:
        before = len(checkpoint_threads())
        for k in range(12):  # ~2,400 pages: SQLite's own automatic checkpoint would have run inside two commits
            store.write(chunk(k * 800, 800))
        probe = sqlite3.connect(path)
        (autocheckpoint,) = probe.execute("PRAGMA wal_autocheckpoint").fetchone()
        probe.close()
        deadline = time.monotonic() + 10
        while store._checkpointer.rounds == 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        assert store._checkpointer.rounds >= 1  # type: ignore[attr-defined]
        assert before >= 1
        assert autocheckpoint == 1000  # another connection keeps SQLite's default: only the store's writer differs
        assert store.current("lead-0009599") is not None
    assert not path.with_name(path.name + "-wal").exists()  # closed: one file holds everything
    assert len(checkpoint_threads()) == before - 1
    with open_store(f"sqlite:///{path}", mode="read") as reread:
        assert sum(1 for _ in reread.current_documents()) == 12 * 800


def test_the_log_stays_bounded_under_writes_that_never_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "WAL_LIMIT_PAGES", 256)  # 1 MB, so that the test writes many times over
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 0.01)
    path = tmp_path / "results.db"
    largest = 0
    with open_store(f"sqlite:///{path}") as store:
        for k in range(400):  # ~50 MB of documents, commits back to back
            store.write(chunk(k * 100, 100))
            largest = max(largest, wal_bytes(path))
        assert store.current("lead-0039999") is not None
    assert largest < 16 * 1024 * 1024, f"the write-ahead log grew to {largest / 1e6:.1f} MB"


def test_a_reader_parked_in_the_log_never_holds_writes_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "WAL_LIMIT_PAGES", 64)
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 0.01)
    path = tmp_path / "results.db"
    with open_store(f"sqlite:///{path}") as store:
        store.write(chunk(0, 1500))
        reading = store.current_documents()
        next(reading)  # an export half done: its snapshot keeps the log from starting over
        slowest = 0.0
        for k in range(1, 60):
            started = time.perf_counter()
            store.write(chunk(k * 100 + 10_000, 100))
            slowest = max(slowest, time.perf_counter() - started)
        assert sum(1 for _ in reading) == 1499  # the reader sees its snapshot, whole
        reading.close()
        assert slowest < 5.0, f"a write waited {slowest:.1f} s behind the checkpointer"  # its busy wait is 0.1 s
        assert store.current("lead-0015999") is not None
    assert os.path.getsize(path) > 0
