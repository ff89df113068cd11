"""Every store backend behind one fixture, so one conformance suite runs unchanged against each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsm import Store, open_store

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
