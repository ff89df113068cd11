"""Every store backend behind one fixture, so one conformance suite runs unchanged against each."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlsm import Store, open_store

from .. import servers

BACKENDS = ["sqlite", "postgres", "mongo"]


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend = request.param
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    if backend == "mongo":
        return str(request.getfixturevalue("mongo_url"))
    raise AssertionError(backend)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_url" in metafunc.fixturenames:
        metafunc.parametrize("store_url", BACKENDS, indirect=True)


@dataclass
class Outage:
    """A store of its own on a server that ``cut()`` takes away (for the test that reads through an outage)."""

    url: str
    cut: Callable[[], None]


@pytest.fixture
def outage(store_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    """Per backend, a store whose server can go away mid-read without harming the other tests' servers.

    SQLite: the file and its write-ahead log overwritten with zeros, their folder removed (the disk is gone).
    PostgreSQL: a database of its own that stops accepting connections, its sessions terminated (as a server
    restart does). MongoDB: an nx-27017 server of its own, stopped.
    """
    backend = request.node.callspec.params["store_url"]
    if backend == "sqlite":
        folder = tmp_path / "disk"
        folder.mkdir()
        path = folder / "results.db"

        def lose_the_disk() -> None:
            for file in (path, path.with_name(path.name + "-wal")):  # the committed pages are in one or the other
                with open(file, "r+b") as handle:
                    handle.write(bytes(file.stat().st_size))
            shutil.rmtree(folder)

        yield Outage(f"sqlite:///{path}", lose_the_disk)
    elif backend == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        if cluster is None:
            pytest.skip("MLSM_TEST_POSTGRES_URL names a server this test cannot take away")
        database = f"outage_{uuid.uuid4().hex[:12]}"
        cluster.admin(f"CREATE DATABASE {database} OWNER {servers.PG_USER}")

        def go_away() -> None:
            cluster.admin(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
            cluster.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")

        try:
            yield Outage(cluster.url(database), go_away)
        finally:
            cluster.admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    else:
        (tmp_path / "mongo").mkdir()
        server = servers.start_mongo(tmp_path / "mongo")
        try:
            yield Outage(f"{server.url}/outage?serverSelectionTimeoutMS=300", lambda: servers.stop_mongo(server))
        finally:
            servers.stop_mongo(server)
