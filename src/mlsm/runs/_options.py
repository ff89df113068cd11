"""What a batch run takes (:class:`RunOptions`) and gives (:class:`RunResult`, and its printed summary), whichever
executor runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlsm.runs._counts import Counts
from mlsm.stores.base import RunRecord, hide_password

if TYPE_CHECKING:
    from mlsm.engine import Engine
    from mlsm.runs._processes import EngineSource

__all__ = ["RunOptions", "RunResult", "format_summary"]


@dataclass
class RunOptions:
    """How to run: everything ``mlsm run`` takes besides the models and the store."""

    input: str
    id_field: str
    run_id: str | None = None
    resume: bool = False
    output: str | None = None
    rejects: str | None = None
    chunk_size: int = 10_000
    progress: bool | None = None  # None: on a terminal only
    retry_seconds: float = 60.0  # how long to keep retrying a failing store before stopping the run
    info: dict[str, Any] = field(default_factory=dict)  # recorded with the run (models, provenance, ...)
    resume_command: str | None = None  # shown when the run stops early
    workers: int = 1  # processes scoring chunks (1: in this process)
    engine_source: EngineSource | None = None  # how worker processes load the models (needed for workers > 1)


@dataclass
class RunResult:
    """The outcome of a run: its record in the store and how long this invocation took."""

    run: RunRecord
    elapsed: float
    scored_now: int  # records scored by this invocation (a resumed run counts only its own)

    @property
    def counts(self) -> Counts:
        return Counts.from_dict(self.run.counts)


def format_summary(result: RunResult, engine: Engine, *, store_url: str, input_path: str) -> str:
    """The human summary printed at the end of ``mlsm run``."""
    run, counts = result.run, result.counts
    lines = [f"run {run.id}: {run.status}", f"  input   {input_path}", f"  store   {hide_password(store_url)}"]
    rejected = f"{counts.rejected:,}"
    if counts.reject_lines:
        shown = ", ".join(str(n) for n in counts.reject_lines[:10])
        more = ", ..." if counts.rejected > 10 else ""
        rejected += f" (lines {shown}{more})"
    lines += [
        f"  records read {counts.read:,} · scored {counts.scored:,} · rejected {rejected}",
        "",
    ]
    width = max([len(m.key) for m in engine.all_models] + [5])
    lines.append(f"  {'model'.ljust(width)}  {'status':<6}  {'ok':>10}  {'errors':>10}")
    for model in engine.all_models:
        ok, errors = counts.models.get(model.key, [0, 0])
        lines.append(f"  {model.key.ljust(width)}  {model.status:<6}  {ok:>10,}  {errors:>10,}")
    rate = result.scored_now / result.elapsed if result.elapsed > 0 else 0.0
    lines += ["", f"  elapsed {result.elapsed:.1f} s · {rate:,.0f} records/s"]
    return "\n".join(lines)
