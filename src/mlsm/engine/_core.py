"""The scoring engine: one object that scores one record (real time) or a chunk of columns (batch).

An :class:`Engine` plans a model set once: it checks statuses, duplicate ``name@version`` keys, field specs and
summary-model dependencies, raising before any record is scored. Then, per record: validate each model's fields,
call the model, check its output, and put the result or an error in the model's own slot; summary models run last.
A model's failure never reaches another model or another record.

Options shared by both paths: ``timeout`` (seconds, for every model or by ``name@version``/``name``) cuts off a
model call that hangs, putting ``_error`` in that model's slot only (see :mod:`mlsm.engine._timeouts`);
``on_call`` is told how long every model call took (the service's per-model latency metric).
"""

from __future__ import annotations

import functools
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsm._gc import gc_paused
from mlsm.engine._outputs import BadOutput, clean_result, clean_value
from mlsm.engine._timeouts import CallPool, ModelCaller, OnCall
from mlsm.errors import ModelDefinitionError, ModelTimeout, SummaryModelListException
from mlsm.fields import MISSING, MISSING_REQUIRED, ColumnResult, FieldCheck, FieldProblem, compile_fields
from mlsm.models import STATUSES, Model, SummaryModel

__all__ = ["LAYOUTS", "Engine", "describe_error", "error_slot", "run_single"]

#: Record layouts: ``flat`` (each model reads its fields from the record) or the seed's ``nested``
#: (``record['data'][model.name][model.version]``).
LAYOUTS = ("flat", "nested")


def error_slot(message: str, errors: list[dict[str, Any]] | None = None, *, status: str | None) -> dict[str, Any]:
    """A result slot for a model that could not produce a result: ``_error`` (``message``), ``_errors`` (the
    structured problems; by default one without a field) and the model's ``_status`` (left out when None)."""
    slot: dict[str, Any] = {"_error": message}
    slot["_errors"] = errors if errors is not None else [{"field": None, "problem": message}]
    if status is not None:
        slot["_status"] = status
    return slot


def describe_error(slot: Mapping[str, Any]) -> str:
    """One line for people about an error slot: ``ValueError: bad value (models.py:24)`` for an exception (its
    type, message and place), else the slot's ``_error`` itself."""
    errors = slot.get("_errors")
    first = errors[0] if isinstance(errors, list) and len(errors) == 1 and isinstance(errors[0], dict) else {}
    kind = first.get("type")
    if not kind:
        return str(slot.get("_error"))
    message = " ".join(str(first.get("problem", "")).split())
    text = f"{kind}: {message}" if message else str(kind)
    return text + (f" ({first['at']})" if first.get("at") else "")


def _invalid_slot(problems: list[tuple[str, str]], status: str) -> dict[str, Any]:
    """The slot of a model whose fields are missing or invalid.

    A required field without a value reads as the original package wrote it (``Expected 'data' input 'NAME' not
    found``); the problems the original never checked follow as ``invalid input: field 'x': ...``; all joined by
    ``"; "``, missing fields first.
    """
    parts = [f"Expected 'data' input '{name}' not found" for name, problem in problems if problem == MISSING_REQUIRED]
    invalid = [f"field {name!r}: {problem}" for name, problem in problems if problem != MISSING_REQUIRED]
    if invalid:
        parts.append("invalid input: " + "; ".join(invalid))
    errors = [{"field": name, "problem": problem} for name, problem in problems]
    return error_slot("; ".join(parts), errors, status=status)


def _exception_slot(exc: BaseException, step: _Step) -> dict[str, Any]:
    """The slot of a model whose call raised: ``_error`` is ``str(exc)`` exactly, as the original package wrote it;
    ``_errors`` adds the exception's ``type`` and where it was raised (``at``, ``file:line``)."""
    status = step.model.status
    if isinstance(exc, ModelTimeout):  # raised by mlsm, not the model: its place in our code says nothing
        return error_slot(str(exc), status=status)
    try:
        message = str(exc)
    except Exception:  # a broken __str__ is the model's failure too, never the engine's
        message = f"<{type(exc).__name__} that cannot be shown>"
    problem = {"field": None, "problem": message, "type": type(exc).__name__, "at": _raised_at(exc)}
    return error_slot(message, [problem], status=status)


def _raised_at(exc: BaseException) -> str | None:
    """``file:line`` of the deepest frame of the model's own code in the traceback (not mlsm, the standard
    library or installed packages), else of the deepest frame; None without a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    chosen = next((frame for frame in reversed(frames) if _is_user_file(frame.filename)), frames[-1])
    return f"{chosen.filename.rsplit('/', 1)[-1]}:{chosen.lineno}"


@functools.lru_cache(maxsize=256)
def _is_user_file(filename: str) -> bool:
    from mlsm.lifecycle.provenance import is_library_file

    path = Path(filename)
    return path.is_file() and not path.resolve().is_relative_to(_PACKAGE) and not is_library_file(path)


_PACKAGE = Path(__file__).resolve().parent


@dataclass(eq=False)
class _Step:
    """One model of a planned set: its compiled checks and where its fields sit among the engine's checks."""

    model: Model
    checks: list[FieldCheck]
    slots: list[int]  # index into Engine._checks for each of self.checks
    names: tuple[str, ...]
    summary: bool
    call: Callable[..., Any]  # model.fcn, or a ModelCaller adding a time limit and timing

    @property
    def batch(self) -> bool:
        return self.model.scores_frames


class Engine:
    """A planned model set that scores records.

    ``Engine(models, summary_models=(), layout="flat", timeout=None, on_call=None)``; ``SummaryModel`` instances
    found in ``models`` run after the plain models, in their order. ``score(record)`` returns the record's results
    ``{name: {version: slot}}``; ``score_columns(columns, n)`` returns one such dict per row.

    ``timeout`` is a number of seconds for every model, or a mapping from ``name@version`` or ``name`` to seconds
    (``"*"`` for the rest); a call past its limit gets ``_error`` "timed out ..." in its slot. ``on_call(key,
    seconds, rows)`` is called after every model call. ``close()`` releases the threads a time limit uses.
    """

    def __init__(
        self,
        models: Iterable[Model],
        summary_models: Iterable[SummaryModel] = (),
        *,
        layout: str = "flat",
        timeout: float | Mapping[str, float] | None = None,
        on_call: OnCall | None = None,
    ) -> None:
        if layout not in LAYOUTS:
            raise ModelDefinitionError(f"invalid layout {layout!r}; valid layouts are: {', '.join(LAYOUTS)}")
        self.layout = layout
        everything: list[Model] = [*models, *summary_models]
        plain = [m for m in everything if not isinstance(m, SummaryModel)]
        summaries = [m for m in everything if isinstance(m, SummaryModel)]
        _check_models([*plain, *summaries])
        _check_summaries(plain, summaries)
        self.models: tuple[Model, ...] = tuple(plain)
        self.summary_models: tuple[SummaryModel, ...] = tuple(summaries)
        self.timeouts = _resolve_timeouts(timeout, self.all_models)
        self._pool = CallPool() if any(t is not None for t in self.timeouts.values()) else None
        self._checks: list[FieldCheck] = []
        self._record_path: Any = None  # compiled on first use
        index: dict[tuple[str, Any], int] = {}
        self._steps: list[_Step] = []
        for model in (*plain, *summaries):
            checks = compile_fields(model.fields)
            slots = []
            for check in checks:
                key = (check.name, check.field)
                if key not in index:
                    index[key] = len(self._checks)
                    self._checks.append(check)
                slots.append(index[key])
            summary = isinstance(model, SummaryModel)
            step = _Step(model, checks, slots, tuple(c.name for c in checks), summary, model.fcn)
            seconds = self.timeouts[model.key]
            if seconds is not None or on_call is not None:
                step.call = ModelCaller(
                    model.key, model.fcn, seconds=seconds, pool=self._pool, on_call=on_call, batch=step.batch
                )
            self._steps.append(step)

    @property
    def all_models(self) -> tuple[Model, ...]:
        """Every model in the order it runs: plain models, then summary models."""
        return self.models + self.summary_models

    def stuck_calls(self) -> dict[str, int]:
        """Calls cut off by a time limit that are still running, by model key (empty without time limits)."""
        return self._pool.stuck_calls() if self._pool is not None else {}

    def close(self) -> None:
        """Release the worker threads that time limits use (calls still running are left to finish)."""
        if self._pool is not None:
            self._pool.close()

    @property
    def input_fields(self) -> list[str]:
        """The names of every field some model reads, in first-use order."""
        return list(dict.fromkeys(check.name for check in self._checks))

    # -- one record ------------------------------------------------------------------------------------------

    def score(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Score one record; returns ``{name: {version: slot}}``. Never raises for a bad record or model."""
        if self.layout == "flat":
            if self._record_path is None:
                self._record_path = _compile_record_path(self._checks, self._steps)
            return self._record_path(record)
        results: dict[str, Any] = {}
        for step in self._steps:
            slot = _score_nested(step, record, results)
            results.setdefault(step.model.name, {})[step.model.version] = slot
        return results

    # -- a chunk of columns ----------------------------------------------------------------------------------

    def score_columns(
        self,
        columns: Mapping[str, Any],
        length: int,
        *,
        on_converted: Callable[[Sequence[FieldCheck], Sequence[ColumnResult]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Score ``length`` rows given as columns (Arrow arrays or lists) by field name; flat layout only.
        ``on_converted(checks, columns)`` is given every field check and its converted column (the drift profile
        reads them instead of converting the columns again)."""
        if self.layout != "flat":
            raise ModelDefinitionError("score_columns needs the flat layout; score nested records one at a time")
        with gc_paused():
            return self._score_columns(columns, length, on_converted)

    def _score_columns(
        self,
        columns: Mapping[str, Any],
        length: int,
        on_converted: Callable[[Sequence[FieldCheck], Sequence[ColumnResult]], None] | None = None,
    ) -> list[dict[str, Any]]:
        converted = [check.convert_column(columns.get(check.name), length) for check in self._checks]
        if on_converted is not None:  # drift profile
            on_converted(self._checks, converted)
        rows: list[dict[str, Any]] = [{} for _ in range(length)]
        py_cache: dict[int, list[Any]] = {}
        frames: dict[tuple[int, ...], Any] = {}  # batch models reading the same fields share one frame build
        seen_names: set[str] = set()
        for step in self._steps:
            bad: dict[int, list[tuple[str, str]]] = {}
            for name, i in zip(step.names, step.slots):
                for row, problem in converted[i].problems.items():
                    bad.setdefault(row, []).append((name, problem))
            valid = [r for r in range(length) if r not in bad] if bad else range(length)
            if step.batch:
                shape = tuple(step.slots)  # the same fields: the same valid rows, the same frame
                if shape not in frames:
                    frames[shape] = _frame_from_columns(step, converted, valid, length)
                # each model gets its own copy (shallow under copy-on-write): one model's changes never reach another
                slots = _call_batch(step, _own_copy(frames[shape]), len(valid))
            else:
                for i in step.slots:
                    if i not in py_cache:
                        py_cache[i] = converted[i].py_values()
                data_rows: Iterable[tuple[Any, ...]]
                data_rows = zip(*[py_cache[i] for i in step.slots]) if step.slots else ((),) * length
                if bad:
                    data_rows = (values for row, values in enumerate(data_rows) if row not in bad)
                names, call = step.names, _call_record
                if isinstance(step.call, ModelCaller):  # one hand-off to a time-limit thread for all the rows
                    calls = [
                        ((), {"data": dict(zip(names, values)), "results": rows[row]})
                        for row, values in zip(valid, data_rows)
                    ]
                    slots = [_record_slot(step, outcome) for outcome in step.call.map(calls)]
                else:
                    slots = [call(step, dict(zip(names, values)), rows[row]) for row, values in zip(valid, data_rows)]
            if bad:
                full: list[Any] = [None] * length
                for row, slot in zip(valid, slots):
                    full[row] = slot
                for row, problems in bad.items():
                    full[row] = _invalid_slot(problems, step.model.status)
                slots = full
            name, version = step.model.name, step.model.version
            if name in seen_names:
                for results, slot in zip(rows, slots):
                    results[name][version] = slot
            else:
                seen_names.add(name)
                for results, slot in zip(rows, slots):
                    results[name] = {version: slot}
        return rows


_SAFE_SCALARS = frozenset({str, int, bool, type(None)})
_STR_MEMO_LIMIT = 4096  # valid strings remembered per field, so repeated categories skip conversion


def _compile_record_path(checks: list[FieldCheck], steps: list[_Step]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Generate the real-time path for a planned model set: one function, no per-field or per-model calls.

    Scoring one record is dominated by interpreter overhead, not work: a call per field and per model would cost
    more than the models. So the checks are inlined: a value that already has its declared type (and passes its
    bounds) is taken as is, anything else goes through the full converter; each model's call, error capture and
    output check are written out. Semantics are those of ``FieldCheck.convert`` and ``_call_record`` exactly
    (``tests/test_engine.py`` checks both paths agree on generated records).
    """
    env: dict[str, Any] = {
        "MISSING": MISSING,
        "FieldProblem": FieldProblem,
        "SAFE": _SAFE_SCALARS,
        "invalid": _invalid_from,
        "exception_slot": _exception_slot,
        "finish": _finish_output,
        "call_batch_one": _call_batch_one,
        "call_batch_frame": _call_batch_frame,
        "frame_one": _frame_from_record,
        "own_copy": _own_copy,
        "LIMIT": _STR_MEMO_LIMIT,
    }
    lines = ["def score(record):", "    problems = None"]
    for i, check in enumerate(checks):
        env[f"conv{i}"] = check.convert
        field = check.field
        fast = _fast_test(check, i, env)
        if fast and field.default is MISSING and (field.nullable or not field.required):
            fast = f"{fast} or v{i} is None"  # an optional field's None stays None
        lines.append("    try:")
        lines.append(f"        v{i} = record[{check.name!r}]")
        lines.append("    except KeyError:")
        lines.append(f"        v{i} = MISSING")
        lines.append(f"    if not ({fast}):" if fast else "    if True:")
        lines.append("        try:")
        lines.append(f"            v{i} = conv{i}(v{i})")
        if check._kind is str and field.default is MISSING:
            env.setdefault(f"ok{i}", set())
            lines.append(f"            if v{i}.__class__ is str and len(ok{i}) < LIMIT:")
            lines.append(f"                ok{i}.add(v{i})")
        lines.append("        except FieldProblem as exc:")
        lines.append(f"            v{i} = None")
        lines.append("            if problems is None:")
        lines.append("                problems = {}")
        lines.append(f"            problems[{i}] = exc.problem")
    lines.append("    results = {}")
    seen: set[str] = set()
    built: dict[tuple[int, ...], int] = {}  # models reading the same fields copy one data dict
    shapes = Counter(tuple(step.slots) for step in steps)
    batch_shapes = Counter(tuple(step.slots) for step in steps if step.batch)
    frames: dict[tuple[int, ...], int] = {}  # batch models reading the same fields share one frame build
    for k, step in enumerate(steps):
        model = step.model
        env[f"fcn{k}"] = step.call
        env[f"status{k}"] = model.status
        env[f"step{k}"] = step
        env[f"idx{k}"] = frozenset(step.slots)
        env[f"pairs{k}"] = tuple(zip(step.names, step.slots))
        shape = tuple(step.slots)
        literal = "{" + ", ".join(f"{name!r}: v{i}" for name, i in zip(step.names, step.slots)) + "}"
        reuse_frame = step.batch and shape in frames
        if reuse_frame:
            data = ""  # not needed: the frame of an earlier model with these fields is copied
        elif shapes[shape] == 1:
            data = literal
        elif shape in built:
            data = f"data{built[shape]}.copy()"
        else:  # the first of several models reading these fields builds the dict; each model gets a copy
            built[shape] = k
            data = f"(data{k} := {literal}).copy()"
        lines.append(f"    if problems is not None and not idx{k}.isdisjoint(problems):")
        lines.append(f"        slot = invalid(problems, pairs{k}, status{k})")
        if step.batch:
            lines.append("    else:")
            if reuse_frame:  # valid exactly when the first model with these fields was: its frame exists
                lines.append(f"        slot = call_batch_frame(step{k}, own_copy(frame{frames[shape]}))")
            elif batch_shapes[shape] > 1:  # each model gets its own copy (shallow under copy-on-write)
                frames[shape] = k
                built_frame = f"(frame{k} := frame_one(step{k}, {data}))"
                lines.append(f"        slot = call_batch_frame(step{k}, own_copy({built_frame}))")
            else:
                lines.append(f"        slot = call_batch_one(step{k}, {data})")
        else:
            lines.append("    else:")
            lines.append("        try:")
            lines.append(f"            out = fcn{k}(data={data}, results=results)")
            lines.append("        except (Exception, SystemExit) as exc:")
            lines.append(f"            slot = exception_slot(exc, step{k})")
            lines.append("        else:")
            lines.append("            if out.__class__ is dict:")
            lines.append("                for key, value in out.items():")
            lines.append("                    kind = value.__class__")
            lines.append(
                "                    if (value - value != 0.0 if kind is float else kind is not str and kind is not int"
                " and value is not None and kind is not bool) or key.__class__ is not str:"
            )
            lines.append(f"                        slot = finish(out, status{k})")
            lines.append("                        break")
            lines.append("                else:")
            lines.append("                    slot = out.copy()")
            lines.append(f"                    slot['_status'] = status{k}")
            lines.append("            else:")
            lines.append(f"                slot = finish(out, status{k})")
        if model.name in seen:
            lines.append(f"    results[{model.name!r}][{model.version!r}] = slot")
        else:
            seen.add(model.name)
            lines.append(f"    results[{model.name!r}] = {{{model.version!r}: slot}}")
    lines.append("    return results")
    # the body's names are closure variables of a factory: cell lookups, no dict lookups
    names = sorted(env)
    source = f"def make({', '.join(names)}):\n" + "\n".join("    " + line for line in lines) + "\n    return score"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<mlsm record path>", "exec"), namespace)
    scorer: Callable[[Mapping[str, Any]], dict[str, Any]] = namespace["make"](**env)
    return scorer


def _fast_test(check: FieldCheck, i: int, env: dict[str, Any]) -> str:
    """A Python expression true when ``v{i}`` already is a valid value of the field, as is; '' for none."""
    field, kind = check.field, check._kind
    value = f"v{i}"
    if field.choices is not None:
        if kind is str:
            env[f"ok{i}"] = {
                c for c in field.choices if isinstance(c, str) and c.strip().lower() not in ("", "nan", "none", "null")
            }
            return f"{value}.__class__ is str and {value} in ok{i}"
        return ""
    if kind is int:
        env[f"lo{i}"] = field.ge if field.ge is not None else -(2**63)
        env[f"hi{i}"] = field.le if field.le is not None else 2**63 - 1
        return f"{value}.__class__ is int and lo{i} <= {value} <= hi{i}"
    if kind is float:
        test = f"{value}.__class__ is float and {value} - {value} == 0.0"
        if field.ge is not None or field.le is not None:
            env[f"lo{i}"] = field.ge if field.ge is not None else float("-inf")
            env[f"hi{i}"] = field.le if field.le is not None else float("inf")
            test += f" and lo{i} <= {value} <= hi{i}"
        return test
    if kind is bool:
        return f"{value}.__class__ is bool"
    if kind is str:
        if field.default is not MISSING:
            return ""
        return f"{value}.__class__ is str and {value} in ok{i}"
    return ""


def _invalid_from(problems: dict[int, str], pairs: tuple[tuple[str, int], ...], status: str) -> dict[str, Any]:
    return _invalid_slot([(name, problems[i]) for name, i in pairs if i in problems], status)


def _finish_output(output: Any, status: str) -> dict[str, Any]:
    """The slow path of an output check: clean it (numpy values, nested data) or report it as bad."""
    try:
        slot = clean_result(output)
    except BadOutput as exc:
        return error_slot(f"bad output: {exc}", status=status)
    slot["_status"] = status
    return slot


def _call_batch_one(step: _Step, data: dict[str, Any]) -> dict[str, Any]:
    return _call_batch(step, _frame_from_record(step, data), 1)[0]


def _call_batch_frame(step: _Step, frame: Any) -> dict[str, Any]:
    return _call_batch(step, frame, 1)[0]


def run_single(model: Model, data: Mapping[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """``Model.execute``: validate ``data`` for one model, run it, store its slot in ``results``."""
    step = _Step(model, compile_fields(model.fields), [], (), isinstance(model, SummaryModel), model.fcn)
    step.names = tuple(check.name for check in step.checks)
    slot = _score_one(step, data, results)
    results.setdefault(model.name, {})[model.version] = slot
    return results


def _score_nested(step: _Step, record: Mapping[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    data = record.get("data", {})
    model = step.model
    try:
        source = data[model.name][model.version]
    except (KeyError, TypeError, IndexError):
        source = {}
    return _score_one(step, source, results)


def _score_one(step: _Step, source: Mapping[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(source, Mapping):
        message = f"invalid input: expected a dict of fields, got {type(source).__name__}"
        return error_slot(message, status=step.model.status)
    data: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    for check in step.checks:
        try:
            data[check.name] = check.convert(source.get(check.name, MISSING))
        except FieldProblem as exc:
            bad.append((check.name, exc.problem))
    if bad:
        return _invalid_slot(bad, step.model.status)
    if step.batch:
        return _call_batch(step, _frame_from_record(step, data), 1)[0]
    return _call_record(step, data, results)


def _call_record(step: _Step, data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    try:
        output = step.call(data=data, results=results)
    except (Exception, SystemExit) as exc:
        return _exception_slot(exc, step)
    return _output_slot(step, output)


def _record_slot(step: _Step, outcome: tuple[bool, Any, float]) -> dict[str, Any]:
    """The slot for one outcome of ``ModelCaller.map``, as :func:`_call_record` makes it for one call."""
    ok, value, _ = outcome
    if ok:
        return _output_slot(step, value)
    if isinstance(value, (Exception, SystemExit)):
        return _exception_slot(value, step)
    raise value  # KeyboardInterrupt and the like are not a model's failure


def _output_slot(step: _Step, output: Any) -> dict[str, Any]:
    try:
        slot = clean_result(output)
    except BadOutput as exc:
        return error_slot(f"bad output: {exc}", status=step.model.status)
    slot["_status"] = step.model.status
    return slot


def _call_batch(step: _Step, frame: Any, count: int) -> list[dict[str, Any]]:
    """Call a batch model once on ``frame``; one slot per row, errors isolated per row where possible."""
    import numpy as np
    import pandas as pd

    if count == 0:
        return []
    model = step.model
    status = model.status
    try:
        output = step.call(frame)
    except (Exception, SystemExit) as exc:
        slot = _exception_slot(exc, step)
        return [{**slot, "_errors": [dict(error) for error in slot["_errors"]]} for _ in range(count)]
    if not isinstance(output, pd.DataFrame):
        message = f"bad output: expected a pandas DataFrame with {count} rows, got {type(output).__name__}"
        return [error_slot(message, status=status) for _ in range(count)]
    if len(output) != count:
        message = f"bad output: expected a DataFrame with {count} rows (one per input row), got {len(output)}"
        return [error_slot(message, status=status) for _ in range(count)]
    keys = list(output.columns)
    bad_key = next((key for key in keys if not isinstance(key, str)), None)
    if bad_key is not None:
        return [error_slot(f"bad output: column name {bad_key!r} is not a string", status=status) for _ in range(count)]
    row_errors: dict[int, str] = {}
    columns: list[list[Any]] = []
    for key in keys:
        array = output[key].to_numpy()
        kind = array.dtype.kind
        if kind == "f":
            values = array.tolist()
            finite = np.isfinite(array)
            if not finite.all():
                for row in (~finite).nonzero()[0].tolist():
                    problem = f"bad output: column {key!r}: {values[row]!r} is not allowed (numbers must be finite)"
                    row_errors.setdefault(row, problem)
            columns.append(values)
        elif kind in "iub":
            columns.append(array.tolist())
        else:
            values = array.tolist()
            for row, value in enumerate(values):
                try:
                    values[row] = clean_value(value, f"column {key!r}")
                except BadOutput as exc:
                    row_errors.setdefault(row, f"bad output: {exc}")
            columns.append(values)
    slots = _slot_builder(tuple(keys))(columns, model.status, count)
    for row, problem in row_errors.items():
        slots[row] = error_slot(problem, status=status)
    return slots


@functools.lru_cache(maxsize=512)
def _slot_builder(keys: tuple[str, ...]) -> Callable[[list[list[Any]], str, int], list[dict[str, Any]]]:
    """A function building one ``{key: value, ..., '_status': status}`` per row from output columns.

    A dict display in a comprehension is several times faster than ``dict(zip(...))`` per row; the source is
    generated from the column names (``repr`` makes any string a safe literal). Pure, so caching is safe.
    """
    if not keys:
        return lambda columns, status, count: [{"_status": status} for _ in range(count)]
    names = [f"a{i}" for i in range(len(keys))]
    items = ", ".join(f"{key!r}: {name}" for key, name in zip(keys, names))
    source = f"lambda columns, status, count: [{{{items}, '_status': status}} for {', '.join(names)}, in zip(*columns)]"
    builder: Callable[[list[list[Any]], str, int], list[dict[str, Any]]] = eval(source)
    return builder


def _frame_from_columns(step: _Step, converted: list[ColumnResult], rows: Sequence[int], length: int) -> Any:
    """The DataFrame a batch model receives: its declared fields, typed, for the given rows."""
    import numpy as np

    take = None if len(rows) == length else np.asarray(rows, dtype=np.intp)
    columns = {}
    for name, i in zip(step.names, step.slots):
        col = converted[i]
        values = col.values if take is None else col.values[take]
        missing = col.missing if take is None else col.missing[take]
        columns[name] = (values, missing)
    return _frame(columns, len(rows))


def _frame_from_record(step: _Step, data: dict[str, Any]) -> Any:
    """The one-row DataFrame a batch model receives when a single record is scored."""
    columns = {}
    for check in step.checks:
        col = check.from_values([data[check.name]])
        columns[check.name] = (col.values, col.missing)
    return _frame(columns, 1)


def _own_copy(frame: Any) -> Any:
    """A copy of a shared frame for one model: shallow under pandas' copy-on-write (the default from pandas 3),
    where changing it copies what changes; deep otherwise, where a shallow copy would share changes."""
    import pandas as pd

    cow = int(pd.__version__.split(".", 1)[0]) >= 3 or pd.options.mode.copy_on_write is True
    return frame.copy(deep=not cow)


def _frame(columns: dict[str, tuple[Any, Any]], length: int) -> Any:
    import pandas as pd

    data: dict[str, Any] = {}
    for name, (values, missing) in columns.items():
        kind = values.dtype.kind
        if kind in "ib" and missing.any():
            # a missing int or bool is pandas' NA, keeping the column's declared type
            array_type = pd.arrays.IntegerArray if kind == "i" else pd.arrays.BooleanArray
            data[name] = array_type(values, missing.copy())
        else:
            data[name] = values
    return pd.DataFrame(data, index=pd.RangeIndex(length))


def _resolve_timeouts(timeout: float | Mapping[str, float] | None, models: Sequence[Model]) -> dict[str, float | None]:
    """Each model's time limit in seconds (None: none), from one number or a mapping by key, name or ``*``."""
    if timeout is None:
        return {model.key: None for model in models}
    if not isinstance(timeout, Mapping):
        return {model.key: _timeout_value("timeout", timeout) for model in models}
    keys = {model.key for model in models} | {model.name for model in models} | {"*"}
    unknown = [name for name in timeout if name not in keys]
    if unknown:
        raise ModelDefinitionError(
            f"timeout given for unknown model {unknown[0]!r}; valid keys are: {', '.join(sorted(keys))}"
        )
    resolved: dict[str, float | None] = {}
    for model in models:
        for name in (model.key, model.name, "*"):
            if name in timeout:
                resolved[model.key] = _timeout_value(f"timeout[{name!r}]", timeout[name])
                break
        else:
            resolved[model.key] = None
    return resolved


def _timeout_value(label: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        raise ModelDefinitionError(f"invalid {label} {value!r}: expected a number of seconds greater than 0")
    return float(value)


def _check_models(models: Sequence[Model]) -> None:
    seen: set[str] = set()
    for model in models:
        if not isinstance(model, Model):
            raise ModelDefinitionError(f"expected Model or SummaryModel objects, got {type(model).__name__}: {model!r}")
        if not isinstance(model.name, str) or not model.name:
            raise ModelDefinitionError(f"model name must be a non-empty string, got {model.name!r}")
        if model.status not in STATUSES:
            raise ModelDefinitionError(
                f"model {model.key!r}: invalid status {model.status!r}; valid statuses are: "
                + ", ".join(repr(s) for s in STATUSES)
            )
        if not callable(model.fcn):
            raise ModelDefinitionError(f"model {model.key!r}: fcn must be callable, got {model.fcn!r}")
        if not isinstance(model.fields, Mapping):
            raise ModelDefinitionError(
                f"model {model.key!r}: fields must map field names to types, got {type(model.fields).__name__}"
            )
        if model.key in seen:
            raise ModelDefinitionError(f"duplicate model {model.key!r} in one run: each name@version may appear once")
        seen.add(model.key)


def _check_summaries(models: Sequence[Model], summaries: Sequence[SummaryModel]) -> None:
    available = {model.key for model in models}
    missing: list[str] = []
    for summary in summaries:
        try:
            needs = summary.needs()
        except (KeyError, TypeError) as exc:
            raise ModelDefinitionError(
                f"summary model {summary.key!r}: models must be a list of {{'name': ..., 'version': ...}}, "
                f"got {summary.models!r}"
            ) from exc
        for need in needs:
            if need not in available:
                missing.append(f"{need} (needed by {summary.key})")
        available.add(summary.key)
    if missing:
        raise SummaryModelListException("summary models need models that are not in this run: " + ", ".join(missing))
