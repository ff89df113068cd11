"""Batch runs: an input read in chunks, scored by the engine in this process, in worker processes or on Ray, and
stored one transaction per chunk with its checkpoint, so a run resumes exactly."""

from __future__ import annotations

from mlsm.runs._counts import Counts
from mlsm.runs._files import check_run_files
from mlsm.runs._local import run_batch
from mlsm.runs._options import RunOptions, RunResult, format_summary
from mlsm.runs._run_record import new_run_id

__all__ = ["Counts", "RunOptions", "RunResult", "check_run_files", "format_summary", "new_run_id", "run_batch"]
