"""The ok/error tallies of scored records, kept by batch runs, Ray actors, the service's writer and its metrics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsm.runs._profiles import RunProfile

if TYPE_CHECKING:
    from mlsm.models import Model
    from mlsm.readers import Reject

__all__ = ["REJECT_LINES_KEPT", "Counts", "add_tallies", "tally_slots"]

#: How many reject line numbers a run keeps for its summary (the rejects file keeps them all).
REJECT_LINES_KEPT = 50


def tally_slots(
    results: Sequence[Mapping[str, Mapping[Any, Any]]],
    tallies: dict[str, list[int]],
    models: Sequence[Model] | None = None,
) -> None:
    """Add each ``name@version``'s ok and error slots in ``results`` (``{name: {version: slot}}`` per record) to
    ``tallies`` (key -> [ok, errors]); with ``models``, only their slots, in their order, each one counted."""
    if models is not None:
        for model in models:
            name, version = model.name, model.version
            errors = sum(1 for r in results if "_error" in r[name][version])
            tally = tallies.setdefault(model.key, [0, 0])
            tally[0] += len(results) - errors
            tally[1] += errors
        return
    for record in results:
        for name, versions in record.items():
            for version, slot in versions.items():
                key = f"{name}@{version}"
                found = tallies.get(key)
                if found is None:
                    found = tallies[key] = [0, 0]
                found[1 if "_error" in slot else 0] += 1


def add_tallies(tallies: dict[str, list[int]], more: Mapping[str, Sequence[int]]) -> None:
    """Add the tallies ``more`` (key -> [ok, errors]) to ``tallies``."""
    for key, (ok, errors) in more.items():
        tally = tallies.setdefault(key, [0, 0])
        tally[0] += ok
        tally[1] += errors


@dataclass
class Counts:
    """What a run has done so far: rows read, scored, rejected, and ok/error per model."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    reject_lines: list[int | str] = field(default_factory=list)  # line numbers, or file:line for several files
    models: dict[str, list[int]] = field(default_factory=dict)  # key -> [ok, errors]
    profile: RunProfile | None = None  # the drift profile: None for runs scored without one

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "scored": self.scored,
            "rejected": self.rejected,
            "reject_lines": list(self.reject_lines),
            "models": {key: {"ok": ok, "errors": errors} for key, (ok, errors) in self.models.items()},
            **({"profile": self.profile.to_json()} if self.profile is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counts:
        models = {key: [value["ok"], value["errors"]] for key, value in data.get("models", {}).items()}
        return cls(
            data.get("read", 0),
            data.get("scored", 0),
            data.get("rejected", 0),
            list(data.get("reject_lines", [])),
            models,
            RunProfile.from_json(data["profile"]) if "profile" in data else None,
        )

    def add(self, other: Counts) -> None:
        """Add ``other``'s rows read, scored and rejected and its model tallies (not its reject lines)."""
        self.read += other.read
        self.scored += other.scored
        self.rejected += other.rejected
        add_tallies(self.models, other.models)
        self.add_profile(other.profile)

    def add_scored(self, records: int, models: Mapping[str, Sequence[int]], profile: RunProfile | None = None) -> None:
        """Add ``records`` scored records, their model tallies and their drift profile (a scored chunk's)."""
        self.scored += records
        add_tallies(self.models, models)
        self.add_profile(profile)

    def add_profile(self, profile: RunProfile | None) -> None:
        """Merge a chunk's drift profile into the run's (None: the chunk has none)."""
        if profile is not None:
            self.profile = profile if self.profile is None else self.profile.merge(profile)

    def add_results(
        self, results: Sequence[Mapping[str, Mapping[Any, Any]]], models: Sequence[Model] | None = None
    ) -> None:
        """Count ``results`` as scored, with each model's ok and error slots (only ``models``' when given)."""
        self.scored += len(results)
        tally_slots(results, self.models, models)

    def add_rejects(self, rejects: Iterable[Reject]) -> None:
        """Count rejected rows, keeping the first :data:`REJECT_LINES_KEPT` line numbers."""
        for reject in rejects:
            self.rejected += 1
            if len(self.reject_lines) < REJECT_LINES_KEPT:
                self.reject_lines.append(reject.where)
