"""The ``mlsm`` command: one module per group of commands, one-line errors with exit 2."""

from __future__ import annotations

from mlsm.cli._main import main

__all__ = ["main"]
