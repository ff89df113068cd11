"""The queries behind "current result of an id" and "history of an id" use the (id, seq) index, not a scan."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from mlsm import open_store
from mlsm.documents import Documents, make_document


def fill(url: str, count: int = 3000) -> None:
    with open_store(url) as store:
        ids = [f"lead-{i}" for i in range(count)]
        docs = [
            make_document("lead", i, {"m": {"1": {"score": 0.5}}}, run="r", timestamp=int(time.time())) for i in ids
        ]
        store.write(Documents("lead", ids, docs, run="r"))


@pytest.mark.slow
def test_sqlite_current_and_history_use_the_id_index(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    fill(f"sqlite:///{path}")
    db = sqlite3.connect(path)
    for sql in (
        "SELECT doc FROM mlsm_results WHERE id = ? ORDER BY seq DESC LIMIT 1",
        "SELECT doc FROM mlsm_results WHERE id = ? ORDER BY seq DESC",
    ):
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ("lead-7",)))
        assert "USING INDEX mlsm_results_id_seq" in plan or "USING COVERING INDEX" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort: the index gives the order


def test_postgres_current_and_history_use_the_id_index(postgres_url: str) -> None:
    fill(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("ANALYZE mlsm_results")
        for sql in (
            "SELECT doc FROM mlsm_results WHERE id = 'lead-7' ORDER BY seq DESC LIMIT 1",
            "SELECT doc FROM mlsm_results WHERE id = 'lead-7' ORDER BY seq DESC",
        ):
            plan = "\n".join(row[0] for row in db.execute(f"EXPLAIN {sql}"))
            assert "mlsm_results_id_seq" in plan, plan
            assert "Seq Scan" not in plan and "Sort" not in plan, plan
