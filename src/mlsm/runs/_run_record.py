"""A run record's lifecycle, for batch runs on every executor and for the service: started (or reopened to
resume), then completed, or interrupted when it stops early."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsm.errors import RunError
from mlsm.stores.base import RunRecord, Store

if TYPE_CHECKING:
    from mlsm.engine import Engine
    from mlsm.runs._options import RunOptions

__all__ = ["complete_run", "mark_interrupted", "new_run_id", "open_run", "resume_hint", "start_run"]


def new_run_id() -> str:
    """A fresh run id: UTC time plus a random suffix, e.g. ``20261126-040512-3f2a``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def start_run(store: Store, run_id: str, info: dict[str, Any]) -> RunRecord:
    """Register a new run ``run_id`` (status running) with ``info`` in ``store``; returns its record."""
    run = RunRecord.new(run_id, info)
    store.start_run(run)
    return run


def complete_run(store: Store, run: RunRecord) -> None:
    """Mark ``run`` completed now and save it; the store's error, if any, is the caller's to handle."""
    run.status, run.ended = "completed", time.time()
    store.save_run(run)


def mark_interrupted(store: Store, run_id: str) -> None:
    """Record that a run stopped early, keeping the progress of its last committed chunk (the stored one, not what
    the caller holds); never raises: the store may be what failed, and the run stays resumable."""
    try:
        saved = store.get_run(run_id)
        if saved is not None:
            saved.status, saved.ended = "interrupted", time.time()
            store.save_run(saved)
    except Exception:  # the store may be what failed; the run stays resumable from its last committed chunk
        pass


def resume_hint(options: RunOptions, run_id: str) -> str:
    """The command that resumes a run, as a message ending ``resume with:`` shows it."""
    return options.resume_command or f"mlsm run ... --run-id {run_id} --resume"


def open_run(store: Store, options: RunOptions, engine: Engine) -> RunRecord:
    """Register a new batch run, or reopen one to resume (same models, same id field, same code; a half-written
    chunk undone)."""
    models = [model.key for model in engine.all_models]
    if not options.resume:
        info = {**options.info, "input": str(Path(options.input)), "id_field": options.id_field, "models": models}
        return start_run(store, options.run_id or new_run_id(), info)
    if not options.run_id:
        raise RunError("--resume needs --run-id NAME: the run to continue")
    run = store.get_run(options.run_id)
    if run is None:
        raise RunError(f"no run {options.run_id!r} in {store.url}: start it without --resume")
    _check_same_run(run, options, models)
    store.recover(run)
    run = store.get_run(run.id) or run
    run.status = "running"
    run.ended = None
    store.save_run(run)
    return run


def _check_same_run(run: RunRecord, options: RunOptions, models: list[str]) -> None:
    """A resumed run must score the same models on the same id field and files as when it started."""
    before = run.info.get("models")
    if before is not None and before != models:
        raise RunError(
            f"run {run.id!r} was started with models {', '.join(before)}; "
            f"these are {', '.join(models)}: resume with the same models"
        )
    if run.info.get("id_field") not in (None, options.id_field):
        raise RunError(f"run {run.id!r} was started with --id-field {run.info['id_field']!r}")
    if run.info.get("files") != options.info.get("files"):  # several files: the same ones, or rows would shift
        raise RunError(
            f"run {run.id!r} read the files {', '.join(run.info.get('files') or [run.info.get('input', '?')])}; "
            f"this input names {', '.join(options.info.get('files') or [str(options.input)])}: "
            "resume with the same files"
        )
    _check_same_code(run, options.info.get("provenance"))


def _check_same_code(run: RunRecord, provenance: dict[str, Any] | None) -> None:
    """A resumed run must score its remaining records with the code that scored the first ones."""
    before = (run.info.get("provenance") or {}).get("models", {})
    now = (provenance or {}).get("models", {})
    for key, entry in now.items():
        old, new = before.get(key, {}).get("sha256"), entry.get("sha256")
        if old and new and old != new:
            raise RunError(
                f"run {run.id!r}: the source of model {key!r} ({entry.get('source')}) changed since the run started "
                f"(sha256 {old[:12]} then, {new[:12]} now): resume with the code it started with, or start a new run"
            )
