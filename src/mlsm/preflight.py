"""Preflight tests: run a model on inputs its own fields allow, with Hypothesis, and report whether it copes.

Inputs are generated from the ``Field`` rules (:func:`field_strategy`): any value of the declared type within
``ge``/``le`` and ``choices``, with edge values weighted in (0, the bounds, the extremes of 64-bit ints and of
floats, empty, long and non-ASCII strings), and, for optional fields, ``None`` and the key left out. A model fails
its preflight when, on such an input:

* it raises, or returns something the engine cannot store (not a dict, or for ``batch=True`` not one row per
  input row; not JSON-serializable; a non-finite number): the report shows the exception or problem and the
  smallest input that causes it (Hypothesis shrinks it);
* it takes longer than the per-record time budget (the slowest call is reported; the first call is a warm-up
  and is not held to the budget; a call running ten times over budget is stopped where the platform allows).

Every call goes through :class:`mlsm.Engine`, exactly as in a run. A batch model gets frames of up to
:data:`MAX_BATCH_ROWS` rows. A summary model runs after its upstream models on a record holding all their fields,
with any mix of the upstream results replaced by error slots, as happens in runs when upstream input is invalid.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .engine import Engine, describe_error, error_slot, run_single
from .fields import Field, FieldCheck, FieldProblem, as_field
from .models import Model, SummaryModel

__all__ = [
    "DEFAULT_EXAMPLES",
    "DEFAULT_TIME_BUDGET",
    "MAX_BATCH_ROWS",
    "Failure",
    "PreflightReport",
    "field_strategy",
    "generated_records",
    "preflight_model",
    "record_strategy",
    "show_input",
    "upstream_of",
]

#: Generated inputs per model unless told otherwise (``--examples``).
DEFAULT_EXAMPLES = 100
#: Seconds one record may take (``--time-budget``); a batch call may take this much per row.
DEFAULT_TIME_BUDGET = 1.0
#: Rows in a generated batch for a ``batch=True`` model.
MAX_BATCH_ROWS = 8
#: A call taking this many times its budget is stopped (on the main thread of a platform with ``setitimer``).
HARD_LIMIT_FACTOR = 10

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = 1.7976931348623157e308
_EDGE_TEXTS = (
    "a",
    "0",
    "-1",
    "Zürich – 東京 ✓",
    "مرحبا",
    "🙂🚀",
    " padded ",
    "line\nbreak",
    "' OR 1=1 --",
    "x" * 10_000,
    "é" * 5_000,
)


@dataclass
class Failure:
    """One way a model failed: which check, on which (smallest) input, and what went wrong."""

    check: str  # "raises" | "output" | "time" | "generate" | "flaky" | "golden"
    message: str
    input: Any = None  # the smallest failing input: a record, a list of rows, or None

    def describe(self, limit: int = 60) -> str:
        """One line: the problem and the input, long strings shortened to ``limit`` characters."""
        if self.input is None:
            return self.message
        return f"{self.message} on input {show_input(self.input, limit)}"


@dataclass
class PreflightReport:
    """The outcome of one model's preflight."""

    model: str
    examples: int  # inputs tried (for a failing model: up to the first failure)
    failures: list[Failure] = field(default_factory=list)
    slowest: float | None = None  # seconds per record of the slowest call after the first
    elapsed: float = 0.0
    status: str = ""
    kind: str = "model"
    golden: str = "-"  # what the golden check found: "-", "ok 20/20", "FAIL 3/20"
    source: str = ""

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not self.failures

    @property
    def first_failure(self) -> str:
        """The first failure in one line, or ``""``."""
        return self.failures[0].describe() if self.failures else ""


def show_input(value: Any, limit: int = 60) -> str:
    """JSON of an input with strings longer than ``limit`` shortened (their length kept), for reports."""

    def shorten(item: Any) -> Any:
        if isinstance(item, str) and len(item) > limit:
            return f"{item[:limit]}…({len(item)} chars)"
        if isinstance(item, dict):
            return {key: shorten(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [shorten(inner) for inner in item]
        return item

    return json.dumps(shorten(value), ensure_ascii=False, default=repr)


# -- strategies ----------------------------------------------------------------------------------------------------


def _valid(checks: Sequence[FieldCheck]) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        for check in checks:
            try:
                check.convert(value)
            except FieldProblem:
                return False
        return True

    return ok


def field_strategy(spec: Any, *also: Any) -> Any:
    """A Hypothesis strategy for the values a field allows, edge values weighted in.

    ``None`` is among them when the field is optional (the key left out is :func:`record_strategy`'s job).
    Extra specs in ``also`` (the same field declared by other models) must hold too.
    """
    from hypothesis import strategies as st

    f = _merge([as_field(s) for s in (spec, *also)])
    checks = [FieldCheck("value", s) for s in (spec, *also)]
    edges: list[Any]
    general: Any
    if f.choices is not None:
        edges = list(f.choices)
        general = st.sampled_from(f.choices) if f.choices else st.nothing()
    elif f.type is bool:
        edges, general = [True, False], st.booleans()
    elif f.type is int:
        lo = _INT_MIN if f.ge is None else max(_INT_MIN, math.ceil(f.ge))
        hi = _INT_MAX if f.le is None else min(_INT_MAX, math.floor(f.le))
        edges = [0, 1, -1, lo, lo + 1, hi, hi - 1, 2**31 - 1, -(2**31), 10**9]
        # small numbers are where counts, ages and divisors break; the full range is covered as well
        small_lo, small_hi = max(lo, -1000), min(hi, 1000)
        general = st.integers(min_value=lo, max_value=hi) if lo <= hi else st.nothing()
        if small_lo <= small_hi:
            general = st.one_of(st.integers(min_value=small_lo, max_value=small_hi), general)
    elif f.type is float:
        lo_f = -_FLOAT_MAX if f.ge is None else float(f.ge)
        hi_f = _FLOAT_MAX if f.le is None else float(f.le)
        edges = [0.0, -0.0, 1.0, -1.0, 0.5, lo_f, hi_f, 1e-300, -1e-300, 1e300, -1e300, 5e-324]
        general = (
            st.floats(min_value=lo_f, max_value=hi_f, allow_nan=False, allow_infinity=False)
            if lo_f <= hi_f
            else st.nothing()
        )
    elif f.type is str:
        edges = list(_EDGE_TEXTS)
        general = st.text(max_size=40)
    else:
        edges, general = [], st.from_type(f.type)
    ok = _valid(checks)
    edges = [value for value in dict.fromkeys(edges) if ok(value)] if f.type is not float else _floats(edges, ok)
    parts = [st.sampled_from(edges)] if edges else []
    parts.append(general.filter(ok))
    if f.optional:
        parts.append(st.none())
    return st.one_of(*parts)


def _merge(fields: list[Field]) -> Field:
    """One field whose values satisfy all of ``fields`` when they share a type (bounds and choices intersected);
    otherwise the first (the values are filtered by all of them anyway)."""
    first = fields[0]
    if len(fields) == 1 or any(f.type is not first.type for f in fields):
        return first
    ges = [f.ge for f in fields if f.ge is not None]
    les = [f.le for f in fields if f.le is not None]
    choices: tuple[Any, ...] | None = None
    for f in fields:
        if f.choices is not None:
            choices = f.choices if choices is None else tuple(c for c in choices if c in f.choices)
    optional = all(f.optional for f in fields)
    return Field(
        first.type,
        required=not optional,
        ge=max(ges) if ges else None,
        le=min(les) if les else None,
        choices=choices,
    )


def _floats(values: list[float], ok: Callable[[Any], bool]) -> list[float]:
    out: list[float] = []
    for value in values:  # 0.0 == -0.0, so dict.fromkeys would merge them
        if ok(value) and not any(value == seen and math.copysign(1, value) == math.copysign(1, seen) for seen in out):
            out.append(value)
    return out


def record_strategy(fields: Mapping[str, Sequence[Any]]) -> Any:
    """A strategy for records: ``fields`` maps a name to the specs every model reading it declares.

    A field is optional only when every spec allows it missing; optional fields may be left out of a record.
    """
    from hypothesis import strategies as st

    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for name, specs in fields.items():
        strategy = field_strategy(specs[0], *specs[1:])
        if all(as_field(spec).optional for spec in specs):
            optional[name] = strategy
        else:
            required[name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def _fields_of(models: Sequence[Model]) -> dict[str, list[Any]]:
    fields: dict[str, list[Any]] = {}
    for model in models:
        for name, spec in model.fields.items():
            fields.setdefault(name, []).append(spec)
    return fields


def upstream_of(model: Model, models: Sequence[Model]) -> list[Model]:
    """The models a summary model needs, directly or through other summaries, in ``models`` order."""
    if not isinstance(model, SummaryModel):
        return []
    by_key = {each.key: each for each in models}
    needed: set[str] = set()
    pending = list(model.needs())
    while pending:
        key = pending.pop()
        if key in needed or key not in by_key:
            continue
        needed.add(key)
        found = by_key[key]
        if isinstance(found, SummaryModel):
            pending.extend(found.needs())
    return [each for each in models if each.key in needed]


# -- running a model the way a run does ---------------------------------------------------------------------------


class _Runner:
    """Calls one model on a generated example through the engine; returns the model's slots and row count."""

    def __init__(self, model: Model, upstream: Sequence[Model]) -> None:
        self.model = model
        self.summary = isinstance(model, SummaryModel)
        self.batch = model.scores_frames
        self.needs = model.needs() if isinstance(model, SummaryModel) else []
        self.upstream = list(upstream)
        if self.summary:
            missing = [key for key in self.needs if key not in {m.key for m in self.upstream}]
            self.engine: Engine | None = Engine(self.upstream) if self.upstream and not missing else None
            self.fields = _fields_of([*(self.upstream if self.engine else []), model])
        else:
            self.engine = Engine([model])
            self.fields = _fields_of([model])

    def strategy(self) -> Any:
        from hypothesis import strategies as st

        records = record_strategy(self.fields)
        if self.batch:
            return st.lists(records, min_size=1, max_size=MAX_BATCH_ROWS)
        if self.summary and self.engine is not None:
            failed = st.lists(st.booleans(), min_size=len(self.needs), max_size=len(self.needs))
            return st.tuples(records, failed)
        return records

    def rows(self, example: Any) -> int:
        return len(example) if self.batch else 1

    def call(self, example: Any) -> tuple[list[dict[str, Any]], float]:
        """The model's slots for ``example`` and the seconds the model's own part took."""
        model, name, version = self.model, self.model.name, self.model.version
        started = time.perf_counter()
        if self.batch:
            assert self.engine is not None
            columns = {key: [row.get(key) for row in example] for key in self.fields}  # absent: missing
            rows = self.engine.score_columns(columns, len(example))
            return [results[name][version] for results in rows], time.perf_counter() - started
        if not self.summary:
            assert self.engine is not None
            slot = self.engine.score(example)[name][version]
            return [slot], time.perf_counter() - started
        if self.engine is not None:
            record, failed = example
            results = self.engine.score(record)
            for key, fail in zip(self.needs, failed):
                if fail:
                    need, _, _ = key.rpartition("@")
                    slot_version = next(v for v in results[need] if f"{need}@{v}" == key)
                    results[need][slot_version] = _upstream_error(key, results[need][slot_version].get("_status"))
        else:  # on its own, a summary model sees its upstream results as errors: they did not run
            record, results = example, {}
            for dep in model.models:  # type: ignore[attr-defined]
                results.setdefault(dep["name"], {})[dep["version"]] = _upstream_error(f"{dep['name']}@{dep['version']}")
        started = time.perf_counter()  # upstream models are timed in their own preflight
        slot = run_single(model, record, results)[name][version]
        return [slot], time.perf_counter() - started

    def shown(self, example: Any) -> Any:
        """The example as a report shows it."""
        if self.summary and self.engine is not None:
            record, failed = example
            errors = [key for key, fail in zip(self.needs, failed) if fail]
            return {**record, "<upstream errors>": errors} if errors else record
        return example


def _upstream_error(key: str, status: str | None = None) -> dict[str, Any]:
    return error_slot(f"invalid input: preflight made {key} fail, as invalid input would", status=status)


class _ModelFailed(Exception):
    def __init__(self, check: str, message: str, example: Any) -> None:
        super().__init__(message)
        self.check, self.message, self.example = check, message, example


class _TooSlow(BaseException):  # not an Exception: neither the engine nor Hypothesis may swallow it
    pass


@contextmanager
def _hard_limit(seconds: float) -> Iterator[None]:
    """Stop the block with ``_TooSlow`` after ``seconds``, where a timer signal can do it (main thread, Unix)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise _TooSlow()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check_slots(slots: list[dict[str, Any]], shown: Any) -> None:
    for slot in slots:
        if slot.get("_error") is not None:
            error = describe_error(slot)
            check = "output" if error.startswith("bad output") else "raises"
            raise _ModelFailed(check, error, shown)
        try:
            json.dumps(slot, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise _ModelFailed("output", f"bad output: not JSON-serializable: {exc}", shown) from exc


def preflight_model(
    model: Model,
    *,
    examples: int | None = None,
    upstream: Sequence[Model] = (),
    seed: int = 0,
    time_budget: float = DEFAULT_TIME_BUDGET,
) -> PreflightReport:
    """Run ``model`` on ``examples`` generated inputs (default :data:`DEFAULT_EXAMPLES`) and report.

    ``upstream`` lists models that may run before it: a summary model runs after the ones it needs. The same
    ``seed`` gives the same inputs, so a result can be reproduced.
    """
    import hypothesis
    from hypothesis import HealthCheck, Phase, Verbosity
    from hypothesis.errors import Flaky, HypothesisException

    runner = _Runner(model, upstream_of(model, upstream) if isinstance(model, SummaryModel) else [])
    report = PreflightReport(model.key, 0, status=model.status, kind=model.kind)
    count = examples if examples is not None else DEFAULT_EXAMPLES
    slowest: list[Any] = []  # [seconds per row, example as shown]
    calls = 0
    first_failure_at: int | None = None
    current: list[Any] = [None]

    def check(example: Any) -> None:
        nonlocal calls, first_failure_at
        calls += 1
        rows = runner.rows(example)
        current[0] = runner.shown(example)
        with _hard_limit(max(1.0, HARD_LIMIT_FACTOR * time_budget * rows)):
            slots, seconds = runner.call(example)
        per_row = seconds / rows
        if calls > 1 and (not slowest or per_row > slowest[0]):
            slowest[:] = [per_row, current[0]]
        try:
            _check_slots(slots, current[0])
        except _ModelFailed:
            if first_failure_at is None:
                first_failure_at = calls
            raise

    settings = hypothesis.settings(
        max_examples=count,
        database=None,
        deadline=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    test = hypothesis.seed(seed)(settings(hypothesis.given(runner.strategy())(check)))
    started = time.perf_counter()
    try:
        with hypothesis.reporting.with_reporter(lambda _text: None):
            test()
    except _ModelFailed as exc:
        report.failures.append(Failure(exc.check, exc.message, exc.example))
    except _TooSlow:
        limit = max(1.0, HARD_LIMIT_FACTOR * time_budget)
        report.failures.append(Failure("time", f"still running after {limit:g} s per record: stopped", current[0]))
    except Flaky as exc:
        inner = next((e for e in getattr(exc, "exceptions", ()) if isinstance(e, _ModelFailed)), None)
        where = inner.example if inner is not None else current[0]
        detail = f": {inner.message}" if inner is not None else ""
        report.failures.append(Failure("flaky", f"fails only sometimes on the same input{detail}", where))
    except HypothesisException as exc:
        message = " ".join(str(exc).split())[:300]
        report.failures.append(Failure("generate", f"cannot generate inputs from its fields: {message}"))
    report.elapsed = time.perf_counter() - started
    report.examples = min(calls, count) if first_failure_at is None else min(first_failure_at, count)
    if slowest:
        report.slowest = slowest[0]
        if slowest[0] > time_budget:
            report.failures.append(
                Failure(
                    "time",
                    f"took {slowest[0] * 1000:,.0f} ms per record, over the budget of {time_budget * 1000:,.0f} ms",
                    slowest[1],
                )
            )
    return report


def generated_records(model: Model, upstream: Sequence[Model], count: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` distinct generated records a model's fields allow (for recording golden files)."""
    import hypothesis
    from hypothesis import HealthCheck, Phase, Verbosity

    models = [*upstream_of(model, upstream), model]
    strategy = record_strategy(_fields_of(models))
    found: dict[str, dict[str, Any]] = {}

    def collect(record: dict[str, Any]) -> None:
        if len(found) < count:
            found.setdefault(json.dumps(record, sort_keys=True, default=repr), record)

    settings = hypothesis.settings(
        max_examples=count * 5,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    test = hypothesis.seed(seed)(settings(hypothesis.given(strategy)(collect)))
    with hypothesis.reporting.with_reporter(lambda _text: None):
        test()
    return list(found.values())
