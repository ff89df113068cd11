"""Which backend a store URL names: a table from URL scheme to the function that opens that backend.

The contract (:mod:`mlsm.stores.base`) imports no backend and each backend imports only the contract; this module
alone knows them all, and imports a backend only when a URL names it (so a driver is needed only where it is used).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit

from mlsm.errors import StoreConfigError
from mlsm.stores.base import MODES, Store, redact_url

__all__ = ["DEFAULT_STORE", "SCHEMES", "default_store_url", "open_store"]

#: The embedded default store: a SQLite file in the working directory (override with ``MLSM_STORE``).
DEFAULT_STORE = "sqlite:///mlsm.db"


def default_store_url(environ: dict[str, str] | None = None) -> str:
    """``MLSM_STORE`` when set, else :data:`DEFAULT_STORE`."""
    env = os.environ if environ is None else environ
    return env.get("MLSM_STORE") or DEFAULT_STORE


def _sqlite(url: str, mode: str) -> Store:
    from mlsm.stores.sqlite import SQLiteStore

    return SQLiteStore(url, mode=mode)


def _postgres(url: str, mode: str) -> Store:
    from mlsm.stores.postgres import PostgresStore

    return PostgresStore(url, mode=mode)


def _mongo(url: str, mode: str) -> Store:
    from mlsm.stores.mongo import MongoStore

    return MongoStore(url, mode=mode)


#: Each URL scheme (lower case) and the function that opens its backend: ``opener(url, mode) -> Store``.
SCHEMES: dict[str, Callable[[str, str], Store]] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
    "mongodb": _mongo,
    "mongodb+srv": _mongo,
}


def open_store(url: str | None = None, *, mode: str = "write") -> Store:
    """The store a URL names: ``sqlite:///path.db`` (default), ``postgresql://...``, ``mongodb://...``.

    ``mode="read"`` opens an existing store read-only (``StoreNotFound`` when there is none); see
    :data:`~mlsm.stores.base.MODES`.
    """
    if mode not in MODES:
        raise StoreConfigError(f"invalid store mode {mode!r}: valid modes are {', '.join(MODES)}")
    url = url or default_store_url()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what finds a bad one
    except ValueError as exc:
        raise StoreConfigError(f"bad store URL {redact_url(url)}: {exc}") from exc
    opener = SCHEMES.get(parts.scheme.lower())
    if opener is None:
        raise StoreConfigError(
            f"unknown store URL {redact_url(url)}: valid schemes are sqlite:///path.db, postgresql://..., "
            "mongodb://host:port/db"
        )
    return opener(url, mode)
