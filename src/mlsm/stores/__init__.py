"""Result stores behind one contract (:mod:`mlsm.stores.base`), one module per backend, chosen by URL."""

from __future__ import annotations

from mlsm.stores.base import DEFAULT_STORE, RunRecord, Store, default_store_url, open_store

__all__ = ["DEFAULT_STORE", "RunRecord", "Store", "default_store_url", "open_store"]
