"""The engine: a model set checked and planned once, then scored one record at a time or one chunk of columns at a
time, every model's failure kept in its own result slot.

Private modules, in the order a record meets them: ``_plan`` (the model set checked once, one step per model),
``_record`` (the generated one-record path, and the nested layout), ``_columns`` (the chunk path), ``_frames``
(the DataFrames batch models receive), ``_calls`` (calling one model), ``_timeouts`` (time limits and timing),
``_slots`` (output checks and the slot of every outcome), and ``_engine`` (the :class:`Engine` that ties them).
"""

from __future__ import annotations

from mlsm.engine._calls import run_single
from mlsm.engine._engine import Engine
from mlsm.engine._plan import LAYOUTS
from mlsm.engine._slots import describe_error, error_slot

__all__ = ["LAYOUTS", "Engine", "describe_error", "error_slot", "run_single"]
