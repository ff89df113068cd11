"""The engine: a model set checked and planned once, then scored one record at a time or one chunk of columns at a
time, every model's failure kept in its own result slot."""

from __future__ import annotations

from mlsm.engine._core import LAYOUTS, Engine, describe_error, error_slot, run_single

__all__ = ["LAYOUTS", "Engine", "describe_error", "error_slot", "run_single"]
