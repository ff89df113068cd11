"""Live evaluation: outcomes, the point-in-time join, statistics, drift, the report."""

from __future__ import annotations

__all__: list[str] = []
