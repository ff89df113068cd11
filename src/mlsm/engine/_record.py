"""The one-record path: a function generated for a planned model set (flat layout), and the nested layout.

Scoring one record is dominated by interpreter overhead, not work: a call per field and per model would cost more
than the models. So the flat path is one generated function, ``score(record)``, with the checks inlined: a value
that already has its declared type (and passes its bounds) is taken as is, anything else goes through the full
converter; each model's call, error capture and output check are written out. Its semantics are those of
:meth:`FieldCheck.convert <mlsm.fields.FieldCheck.convert>` and :func:`~mlsm.engine._calls.call_record` exactly
(``tests/engine/test_engine.py`` checks that both paths agree on generated records).

The generated function reads, in order:

1. every distinct field into ``v0``, ``v1``, ... (:meth:`_Source.add_field`), a field's problem into
   ``problems[i]``;
2. every model in running order (:meth:`_Source.add_model`): an invalid-input slot when one of its fields has a
   problem, else its call and output check; models reading the same fields copy one data dict, batch models reading
   the same fields copy one frame (``batch="columns"`` models get one-row arrays and no frame);
3. ``return results``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlsm.engine._calls import call_batch_frame, call_batch_one, call_columns_one, score_one
from mlsm.engine._frames import frame_from_record, own_copy
from mlsm.engine._slots import exception_slot, invalid_slot, output_slot
from mlsm.fields import MISSING, FieldCheck, FieldProblem

if TYPE_CHECKING:
    from mlsm.engine._plan import Step

__all__ = ["compile_record_path", "score_nested"]

_SAFE_SCALARS = frozenset({str, int, bool, type(None)})
_STR_MEMO_LIMIT = 4096  # valid strings remembered per field, so repeated categories skip conversion

RecordPath = Callable[[Mapping[str, Any]], dict[str, Any]]


def compile_record_path(checks: Sequence[FieldCheck], steps: Sequence[Step]) -> RecordPath:
    """Generate ``score(record) -> {name: {version: slot}}`` for a planned model set: one function, no per-field or
    per-model calls."""
    source = _Source(steps)
    for i, check in enumerate(checks):
        source.add_field(i, check)
    source.lines.append("    results = {}")
    for k, step in enumerate(steps):
        source.add_model(k, step)
    return source.build()


def score_nested(steps: Sequence[Step], record: Mapping[str, Any]) -> dict[str, Any]:
    """Score one record of the nested layout, where each model reads ``record['data'][name][version]``."""
    results: dict[str, Any] = {}
    for step in steps:
        model = step.model
        data = record.get("data", {})
        try:
            source = data[model.name][model.version]
        except (KeyError, TypeError, IndexError):
            source = {}
        slot = score_one(step, source, results)
        results.setdefault(model.name, {})[model.version] = slot
    return results


# -- what the generated code calls --------------------------------------------------------------------------------


def _invalid(problems: dict[int, str], pairs: tuple[tuple[str, int], ...], status: str) -> dict[str, Any]:
    """The invalid-input slot of a model reading the fields ``pairs`` (name, index) from the record's problems."""
    return invalid_slot([(name, problems[i]) for name, i in pairs if i in problems], status)


def _exception_slot(exc: BaseException, step: Step) -> dict[str, Any]:
    return exception_slot(exc, step.model.status)


# -- writing the code ---------------------------------------------------------------------------------------------


class _Source:
    """The lines of ``score(record)`` being written, and ``env``: the values its names stand for."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.env: dict[str, Any] = {
            "MISSING": MISSING,
            "FieldProblem": FieldProblem,
            "SAFE": _SAFE_SCALARS,
            "invalid": _invalid,
            "exception_slot": _exception_slot,
            "finish": output_slot,
            "call_batch_one": call_batch_one,
            "call_batch_frame": call_batch_frame,
            "call_columns_one": call_columns_one,
            "frame_one": frame_from_record,
            "own_copy": own_copy,
            "LIMIT": _STR_MEMO_LIMIT,
        }
        self.lines = ["def score(record):", "    problems = None"]
        self._names: set[str] = set()  # model names with a results entry already
        self._dicts: dict[tuple[int, ...], int] = {}  # models reading the same fields copy one data dict
        self._shapes = Counter(tuple(step.slots) for step in steps)
        self._batch_shapes = Counter(tuple(step.slots) for step in steps if step.batch and not step.columns)
        self._frames: dict[tuple[int, ...], int] = {}  # batch models reading the same fields share one frame build

    def add_field(self, i: int, check: FieldCheck) -> None:
        """Read field ``i`` into ``v{i}``: as is when it passes the fast test, else converted; a problem goes into
        ``problems[i]``."""
        env, lines = self.env, self.lines
        env[f"conv{i}"] = check.convert
        field = check.field
        fast = _fast_test(check, i, env)
        if fast and field.default is MISSING and field.optional:
            fast = f"{fast} or v{i} is None"  # an optional field's None stays None
        lines.append("    try:")
        lines.append(f"        v{i} = record[{check.name!r}]")
        lines.append("    except KeyError:")
        lines.append(f"        v{i} = MISSING")
        lines.append(f"    if not ({fast}):" if fast else "    if True:")
        lines.append("        try:")
        lines.append(f"            v{i} = conv{i}(v{i})")
        if check.kind is str and field.default is MISSING:
            env.setdefault(f"ok{i}", set())
            lines.append(f"            if v{i}.__class__ is str and len(ok{i}) < LIMIT:")
            lines.append(f"                ok{i}.add(v{i})")
        lines.append("        except FieldProblem as exc:")
        lines.append(f"            v{i} = None")
        lines.append("            if problems is None:")
        lines.append("                problems = {}")
        lines.append(f"            problems[{i}] = exc.problem")

    def add_model(self, k: int, step: Step) -> None:
        """Score model ``k``: its invalid-input slot, or its call; then store its slot in ``results``."""
        model = step.model
        self.env.update(
            {
                f"fcn{k}": step.call,
                f"status{k}": model.status,
                f"step{k}": step,
                f"idx{k}": frozenset(step.slots),
                f"pairs{k}": tuple(zip(step.names, step.slots)),
            }
        )
        shape = tuple(step.slots)
        frames = step.batch and not step.columns
        reuse_frame = frames and shape in self._frames
        data = "" if reuse_frame else self._data(k, step)  # a reused frame needs no data: it is copied
        self.lines.append(f"    if problems is not None and not idx{k}.isdisjoint(problems):")
        self.lines.append(f"        slot = invalid(problems, pairs{k}, status{k})")
        self.lines.append("    else:")
        if step.columns:  # one-row arrays from the values: no DataFrame on this path
            self.lines.append(f"        slot = call_columns_one(step{k}, {data})")
        elif step.batch:
            self._batch_call(k, shape, data, reuse_frame)
        else:
            self._record_call(k, data)
        if model.name in self._names:
            self.lines.append(f"    results[{model.name!r}][{model.version!r}] = slot")
        else:
            self._names.add(model.name)
            self.lines.append(f"    results[{model.name!r}] = {{{model.version!r}: slot}}")

    def _data(self, k: int, step: Step) -> str:
        """The expression of model ``k``'s data dict: a literal, or a copy of the first one with the same fields."""
        shape = tuple(step.slots)
        literal = "{" + ", ".join(f"{name!r}: v{i}" for name, i in zip(step.names, step.slots)) + "}"
        if self._shapes[shape] == 1:
            return literal
        if shape in self._dicts:
            return f"data{self._dicts[shape]}.copy()"
        # the first of several models reading these fields builds the dict; each model gets a copy
        self._dicts[shape] = k
        return f"(data{k} := {literal}).copy()"

    def _batch_call(self, k: int, shape: tuple[int, ...], data: str, reuse_frame: bool) -> None:
        """A batch model on a one-row frame: its own, or a copy of one shared with models reading the same fields."""
        if reuse_frame:  # valid exactly when the first model with these fields was: its frame exists
            self.lines.append(f"        slot = call_batch_frame(step{k}, own_copy(frame{self._frames[shape]}))")
        elif self._batch_shapes[shape] > 1:  # each model gets its own copy (shallow under copy-on-write)
            self._frames[shape] = k
            built_frame = f"(frame{k} := frame_one(step{k}, {data}))"
            self.lines.append(f"        slot = call_batch_frame(step{k}, own_copy({built_frame}))")
        else:
            self.lines.append(f"        slot = call_batch_one(step{k}, {data})")

    def _record_call(self, k: int, data: str) -> None:
        """A per-record model's call and its output check: a dict of plain keys and values is copied as is, anything
        else goes through the full check (``finish``)."""
        self.lines.extend(
            [
                "        try:",
                f"            out = fcn{k}(data={data}, results=results)",
                "        except (Exception, SystemExit) as exc:",
                f"            slot = exception_slot(exc, step{k})",
                "        else:",
                "            if out.__class__ is dict:",
                "                for key, value in out.items():",
                "                    kind = value.__class__",
                "                    if (value - value != 0.0 if kind is float else kind is not str and kind is not int"
                " and value is not None and kind is not bool) or key.__class__ is not str:",
                f"                        slot = finish(out, status{k})",
                "                        break",
                "                else:",
                "                    slot = out.copy()",
                f"                    slot['_status'] = status{k}",
                "            else:",
                f"                slot = finish(out, status{k})",
            ]
        )

    def build(self) -> RecordPath:
        """Compile the function; its names are closure variables of a factory (cell lookups, no dict lookups)."""
        self.lines.append("    return results")
        names = sorted(self.env)
        body = "\n".join("    " + line for line in self.lines)
        source = f"def make({', '.join(names)}):\n" + body + "\n    return score"
        namespace: dict[str, Any] = {}
        exec(compile(source, "<mlsm record path>", "exec"), namespace)
        scorer: RecordPath = namespace["make"](**self.env)
        return scorer


def _fast_test(check: FieldCheck, i: int, env: dict[str, Any]) -> str:
    """A Python expression true when ``v{i}`` already is a valid value of the field, as is; '' for none."""
    field, kind = check.field, check.kind
    value = f"v{i}"
    if field.choices is not None:
        if kind is str:
            env[f"ok{i}"] = check.unchanged_choices()
            return f"{value}.__class__ is str and {value} in ok{i}"
        return ""
    if kind is int:
        env[f"lo{i}"], env[f"hi{i}"] = check.value_range()
        return f"{value}.__class__ is int and lo{i} <= {value} <= hi{i}"
    if kind is float:
        test = f"{value}.__class__ is float and {value} - {value} == 0.0"
        if field.ge is not None or field.le is not None:
            env[f"lo{i}"], env[f"hi{i}"] = check.value_range()
            test += f" and lo{i} <= {value} <= hi{i}"
        return test
    if kind is bool:
        return f"{value}.__class__ is bool"
    if kind is str:
        if field.default is not MISSING:
            return ""
        return f"{value}.__class__ is str and {value} in ok{i}"
    return ""
