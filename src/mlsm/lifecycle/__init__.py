"""A model's life before it scores: loading it, its project and git sources, the release rule, provenance,
preflight, golden files and the test suite."""

from __future__ import annotations

__all__: list[str] = []
