"""Result stores behind one contract (:mod:`mlsm.stores.base`), one module per backend, chosen by URL scheme
(``open_store``)."""

from __future__ import annotations

from mlsm.stores._registry import DEFAULT_STORE, default_store_url, open_store
from mlsm.stores.base import RunRecord, Store

__all__ = ["DEFAULT_STORE", "RunRecord", "Store", "default_store_url", "open_store"]
