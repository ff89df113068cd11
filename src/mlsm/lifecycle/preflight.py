"""Preflight tests: run a model on inputs its own fields allow, with Hypothesis, and report whether it copes.

Inputs are generated from the ``Field`` rules (:func:`field_strategy`): any value of the declared type within
``ge``/``le`` and ``choices``, with edge values weighted in (0, the bounds, empty, long and non-ASCII strings), and,
for optional fields, ``None`` and the key left out. Numbers have realistic magnitudes unless ``extremes=True``
(``mlsm test --extremes``): an unbounded side of an int or float field stops at :data:`REALISTIC_LIMIT` (1e9; or
1e9 beyond the other bound when that one lies further out), and floats are 0 or at least :data:`REALISTIC_TINY`
(1e-9) in magnitude, never subnormal. With ``extremes=True`` an unbounded side reaches the 64-bit int limits and
the largest float, and the edge values include 2**31 boundaries, 1e300, 1e-300 and subnormals. Bounds and choices
a field declares are honoured exactly either way, its own bounds included as edge values.

Every model is first called on its **basic example**, the original package's test values (int 1, str
``'lorem ipsum'``, bool True, float 1.2, moved inside the field's bounds and choices), then on ``examples``
generated inputs; every generated input is tried (the run does not stop at the first failure), the failing ones are
counted, and Hypothesis then shrinks the first failure to the smallest input that causes it. A model fails on an
input when:

* it raises, or returns something the engine cannot store (not a dict, or for ``batch=True`` not one row per
  input row; not JSON-serializable; a non-finite number): the report shows the exception or problem and the
  smallest input that causes it;
* it takes longer than the per-record time budget (the slowest call is reported; the first call is a warm-up
  and is not held to the budget; a call running ten times over budget is stopped where the platform allows).

:attr:`PreflightReport.blocking` is the deploy policy, the one ``mlsm serve`` (at start and on every reload) and
``mlsm test``'s table apply: an **active** model is refused when it fails on its basic example (time budget
included), fails on every generated input, or returns output a run cannot store on more than half of them. Any
other failure, and every failure of a draft model, is reported and the model serves: the engine isolates it in the
model's result slot.

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
from typing import TYPE_CHECKING, Any

from mlsm.engine import Engine, describe_error, error_slot, run_single
from mlsm.engine._plan import is_summary
from mlsm.fields import MISSING, Field, FieldCheck, FieldProblem, as_field

if TYPE_CHECKING:
    from mlsm.models import Model

__all__ = [
    "BASIC_VALUES",
    "DEFAULT_EXAMPLES",
    "DEFAULT_TIME_BUDGET",
    "HARD_LIMIT_FACTOR",
    "MAX_BATCH_ROWS",
    "REALISTIC_LIMIT",
    "REALISTIC_TINY",
    "Failure",
    "PreflightReport",
    "basic_record",
    "basic_value",
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
#: Without ``extremes``, an unbounded side of a numeric field stops this far out.
REALISTIC_LIMIT = 10**9
#: Without ``extremes``, a float is 0 or at least this large in magnitude (when its bounds allow).
REALISTIC_TINY = 1e-9
#: The original package's test values, one per type; a field's basic value is moved inside its bounds and choices.
BASIC_VALUES: dict[type, Any] = {int: 1, str: "lorem ipsum", bool: True, float: 1.2}

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = 1.7976931348623157e308
_FLOAT_MIN_NORMAL = 2.2250738585072014e-308
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
    basic: bool = False  # True: on the model's basic example (see BASIC_VALUES)

    def describe(self, limit: int = 60) -> str:
        """One line: the problem and the input, long strings shortened to ``limit`` characters."""
        if self.input is None:
            return self.message
        where = "its basic example" if self.basic else "input"
        return f"{self.message} on {where} {show_input(self.input, limit)}"


@dataclass
class PreflightReport:
    """The outcome of one model's preflight."""

    model: str
    examples: int  # generated inputs tried (the basic example not counted)
    failures: list[Failure] = field(default_factory=list)  # basic example first, then the smallest generated one
    slowest: float | None = None  # seconds per record of the slowest call after the first
    elapsed: float = 0.0
    status: str = ""
    kind: str = "model"
    golden: str = "-"  # what the golden check found: "-", "ok 20/20", "FAIL 3/20"
    source: str = ""
    failing: int = 0  # generated inputs on which a check failed (raised, bad output, over the time budget)
    unstorable: int = 0  # of which the model returned output a run cannot store
    basic_example: Any = None  # the basic example as shown, or None when the fields allow no basic value

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not self.failures

    @property
    def first_failure(self) -> str:
        """The first failure in one line, or ``""``."""
        return self.failures[0].describe() if self.failures else ""

    @property
    def basic_failure(self) -> Failure | None:
        """How the model failed on its basic example, or None (it passed, or no basic example could be built)."""
        return next((failure for failure in self.failures if failure.basic), None)

    @property
    def blocking(self) -> list[str]:
        """Why ``mlsm serve`` refuses the set holding this model (empty: it serves, its failures reported).

        Only an active model blocks: when it fails on its basic example, on every generated input, or returns
        output a run cannot store on more than half of them.
        """
        if self.status != "active" or self.passed:
            return []
        reasons = []
        basic = self.basic_failure
        if basic is not None:
            reasons.append(
                "over its time budget on its basic example" if basic.check == "time" else "its basic example fails"
            )
        if self.examples and self.failing == self.examples:
            reasons.append(f"it fails on every generated input ({self.failing} of {self.examples})")
        elif self.unstorable * 2 > self.examples:
            reasons.append(
                f"its output cannot be stored on {self.unstorable} of {self.examples} generated inputs (more than half)"
            )
        return reasons

    @property
    def outcome(self) -> str:
        """In a few words: ``passed 100 generated inputs``, ``failed on 3 of 100 generated inputs``, ..."""
        if self.passed:
            basic = "its basic example and " if self.basic_example is not None else ""
            return f"passed {basic}{self.examples} generated inputs"
        parts = []
        if self.basic_failure is not None:
            parts.append("failed on its basic example")
        if self.failing:
            parts.append(f"failed on {self.failing} of {self.examples} generated inputs")
        if not parts:
            parts.append(f"failed ({self.failures[0].check})")
        return " and ".join(parts)

    def to_dict(self, limit: int = 300) -> dict[str, Any]:
        """The report as ``GET /v1/models`` shows it; the first failure in one line of at most ``limit`` chars."""
        first = self.first_failure
        return {
            "passed": self.passed,
            "blocking": bool(self.blocking),
            "examples": self.examples,
            "failing": self.failing,
            "first_failure": _shorten(first, limit) if first else None,
            "check": self.failures[0].check if self.failures else None,
        }


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def field_strategy(spec: Any, *also: Any, extremes: bool = False) -> Any:
    """A Hypothesis strategy for the values a field allows, edge values weighted in.

    ``None`` is among them when the field is optional (the key left out is :func:`record_strategy`'s job).
    Extra specs in ``also`` (the same field declared by other models) must hold too. Numbers have realistic
    magnitudes unless ``extremes`` (see the module's docstring).
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
        lo, hi = _int_range(f, extremes)
        edges = [0, 1, -1, lo, lo + 1, hi, hi - 1]
        if extremes:
            edges += [2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**53 + 1, 10**9]
        # small numbers are where counts, ages and divisors break; the full range is covered as well
        small_lo, small_hi = max(lo, -1000), min(hi, 1000)
        general = st.integers(min_value=lo, max_value=hi) if lo <= hi else st.nothing()
        if small_lo <= small_hi:
            general = st.one_of(st.integers(min_value=small_lo, max_value=small_hi), general)
    elif f.type is float:
        lo_f, hi_f = _float_range(f, extremes)
        edges = [0.0, -0.0, 1.0, -1.0, 0.5, lo_f, hi_f]
        if extremes:
            edges += [1e-300, -1e-300, 1e300, -1e300, 5e-324, _FLOAT_MAX, -_FLOAT_MAX]
        general = _float_strategy(lo_f, hi_f, extremes)
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


def _int_range(f: Field, extremes: bool) -> tuple[int, int]:
    """The ints to draw from: the field's bounds, an open side at the int64 limit or realistically far out."""
    lo = None if f.ge is None else max(_INT_MIN, math.ceil(f.ge))
    hi = None if f.le is None else min(_INT_MAX, math.floor(f.le))
    if extremes:
        return (_INT_MIN if lo is None else lo), (_INT_MAX if hi is None else hi)
    if lo is None:
        lo = max(_INT_MIN, min(-REALISTIC_LIMIT, (hi if hi is not None else 0) - REALISTIC_LIMIT))
    if hi is None:
        hi = min(_INT_MAX, max(REALISTIC_LIMIT, lo + REALISTIC_LIMIT))
    return lo, hi


def _float_range(f: Field, extremes: bool) -> tuple[float, float]:
    """The floats to draw from, as :func:`_int_range` for ints."""
    lo = None if f.ge is None else float(f.ge)
    hi = None if f.le is None else float(f.le)
    if extremes:
        return (-_FLOAT_MAX if lo is None else lo), (_FLOAT_MAX if hi is None else hi)
    if lo is None:
        lo = max(-_FLOAT_MAX, min(-REALISTIC_LIMIT, (hi if hi is not None else 0.0) - REALISTIC_LIMIT))
    if hi is None:
        hi = min(_FLOAT_MAX, max(REALISTIC_LIMIT, lo + REALISTIC_LIMIT))
    return float(lo), float(hi)


def _float_strategy(lo: float, hi: float, extremes: bool) -> Any:
    from hypothesis import strategies as st

    if not lo <= hi:
        return st.nothing()
    # subnormal bounds cannot be drawn without subnormals; a field declaring them gets them
    subnormal = extremes or any(0 < abs(bound) < _FLOAT_MIN_NORMAL for bound in (lo, hi))
    general = st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False, allow_subnormal=subnormal)
    if extremes or not lo <= 0.0 <= hi:
        return general
    # a realistic float is 0 or not vanishingly small: 1e9 / 1e-300 overflows, no feature is 1e-300
    return general.map(lambda value: value if abs(value) >= REALISTIC_TINY else 0.0)


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


def record_strategy(fields: Mapping[str, Sequence[Any]], *, extremes: bool = False) -> Any:
    """A strategy for records: ``fields`` maps a name to the specs every model reading it declares.

    A field is optional only when every spec allows it missing; optional fields may be left out of a record.
    ``extremes``: numbers of any magnitude (see :func:`field_strategy`).
    """
    from hypothesis import strategies as st

    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for name, specs in fields.items():
        strategy = field_strategy(specs[0], *specs[1:], extremes=extremes)
        if all(as_field(spec).optional for spec in specs):
            optional[name] = strategy
        else:
            required[name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def basic_value(spec: Any, *also: Any) -> Any:
    """A field's basic value: its type's :data:`BASIC_VALUES` entry moved inside its bounds (clamped) and choices
    (kept when among them, else the first choice); ``MISSING`` when the field allows none (an unknown type)."""
    f = _merge([as_field(s) for s in (spec, *also)])
    ok = _valid([FieldCheck("value", s) for s in (spec, *also)])
    base = BASIC_VALUES.get(f.type, MISSING)
    if f.choices is not None:
        candidates = [base] if base is not MISSING and base in f.choices else []
        candidates += list(f.choices)
    elif base is MISSING:
        return MISSING
    elif f.type is int:
        lo, hi = _int_range(f, extremes=True)
        candidates = [min(max(base, lo), hi)]
    elif f.type is float:
        lo_f, hi_f = _float_range(f, extremes=True)
        candidates = [min(max(base, lo_f), hi_f)]
    else:
        candidates = [base]
    return next((value for value in candidates if ok(value)), MISSING)


def basic_record(fields: Mapping[str, Sequence[Any]]) -> dict[str, Any] | None:
    """The basic example: every field (``fields`` as for :func:`record_strategy`) at its :func:`basic_value`,
    optional ones included; None when some field allows no basic value."""
    record = {name: basic_value(specs[0], *specs[1:]) for name, specs in fields.items()}
    return None if any(value is MISSING for value in record.values()) else record


def _fields_of(models: Sequence[Model]) -> dict[str, list[Any]]:
    fields: dict[str, list[Any]] = {}
    for model in models:
        for name, spec in model.fields.items():
            fields.setdefault(name, []).append(spec)
    return fields


def upstream_of(model: Model, models: Sequence[Model]) -> list[Model]:
    """The models a summary model needs, directly or through other summaries, in ``models`` order."""
    if not is_summary(model):
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
        if is_summary(found):
            pending.extend(found.needs())
    return [each for each in models if each.key in needed]


# -- running a model the way a run does ---------------------------------------------------------------------------


class _Runner:
    """Calls one model on a generated example through the engine; returns the model's slots and row count."""

    def __init__(self, model: Model, upstream: Sequence[Model]) -> None:
        self.model = model
        self.summary = is_summary(model)
        self.batch = model.scores_frames
        self.needs = model.needs() if is_summary(model) else []
        self.upstream = list(upstream)
        if self.summary:
            missing = [key for key in self.needs if key not in {m.key for m in self.upstream}]
            self.engine: Engine | None = Engine(self.upstream) if self.upstream and not missing else None
            self.fields = _fields_of([*(self.upstream if self.engine else []), model])
        else:
            self.engine = Engine([model])
            self.fields = _fields_of([model])

    def strategy(self, extremes: bool = False) -> Any:
        from hypothesis import strategies as st

        records = record_strategy(self.fields, extremes=extremes)
        if self.batch:
            return st.lists(records, min_size=1, max_size=MAX_BATCH_ROWS)
        if self.summary and self.engine is not None:
            failed = st.lists(st.booleans(), min_size=len(self.needs), max_size=len(self.needs))
            return st.tuples(records, failed)
        return records

    def basic(self) -> Any:
        """The basic example in the form :meth:`call` takes (a one-row frame for a batch model; for a summary,
        its upstream results as they come); None when some field allows no basic value."""
        record = basic_record(self.fields)
        if record is None:
            return None
        if self.batch:
            return [record]
        if self.summary and self.engine is not None:
            return (record, [False] * len(self.needs))
        return record

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
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


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


def _slot_problem(slots: list[dict[str, Any]]) -> tuple[str, str] | None:
    """``(check, message)`` for the first slot a run could not store as a result, else None."""
    for slot in slots:
        if slot.get("_error") is not None:
            # an exception's slot names its type in _errors; only mlsm's own output check writes "bad output"
            errors = slot.get("_errors") or [{}]
            raised = isinstance(errors[0], dict) and bool(errors[0].get("type"))
            error = describe_error(slot)
            return ("output" if not raised and error.startswith("bad output") else "raises"), error
        try:
            json.dumps(slot, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return "output", f"bad output: not JSON-serializable: {exc}"
    return None


class _Probe:
    """Calls the model through a runner and judges each call: its slots, then its time against the budget.

    The first call is a warm-up and is not held to the budget; with ``timing`` off (while shrinking) no call is.
    """

    def __init__(self, runner: _Runner, time_budget: float) -> None:
        self.runner = runner
        self.budget = time_budget
        self.calls = 0
        self.timing = True
        self.slowest: tuple[float, Any] | None = None  # seconds per row, the example as shown
        self.current: Any = None  # the example of the call under way, as shown

    def run(self, example: Any) -> Failure | None:
        """The failure of one call on ``example``, or None; ``_TooSlow`` when the call had to be stopped."""
        self.calls += 1
        rows = self.runner.rows(example)
        shown = self.current = self.runner.shown(example)
        with _hard_limit(max(1.0, HARD_LIMIT_FACTOR * self.budget * rows)):
            slots, seconds = self.runner.call(example)
        per_row = seconds / rows
        timed = self.timing and self.calls > 1
        if timed and (self.slowest is None or per_row > self.slowest[0]):
            self.slowest = (per_row, shown)
        problem = _slot_problem(slots)
        if problem is not None:
            return Failure(problem[0], problem[1], shown)
        if timed and per_row > self.budget:
            return Failure("time", self.over_budget(per_row), shown)
        return None

    def basic(self, example: Any) -> Failure | None:
        """The basic example's failure, or None: called twice when it is the warm-up, so that its time counts."""
        try:
            failure = self.run(example)
            if failure is None and self.calls == 1:
                failure = self.run(example)
        except _TooSlow:
            failure = Failure("time", self.stopped(), self.current)
        if failure is not None:
            failure.basic = True
        return failure

    def over_budget(self, seconds: float) -> str:
        return f"took {seconds * 1000:,.0f} ms per record, over the budget of {self.budget * 1000:,.0f} ms"

    def stopped(self) -> str:
        return f"still running after {max(1.0, HARD_LIMIT_FACTOR * self.budget):g} s per record: stopped"


def _run_given(strategy: Any, test: Callable[[Any], None], count: int, seed: int, *, shrink: bool) -> None:
    """Run ``test`` on up to ``count`` examples of ``strategy`` (Hypothesis, seeded, quiet); with ``shrink``, a
    failing example is shrunk to the smallest one before its exception propagates."""
    import hypothesis
    from hypothesis import HealthCheck, Phase, Verbosity

    settings = hypothesis.settings(
        max_examples=count,
        database=None,
        deadline=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate],
    )
    run = hypothesis.seed(seed)(settings(hypothesis.given(strategy)(test)))
    with hypothesis.reporting.with_reporter(lambda _text: None):
        run()


def preflight_model(
    model: Model,
    *,
    examples: int | None = None,
    upstream: Sequence[Model] = (),
    seed: int = 0,
    time_budget: float = DEFAULT_TIME_BUDGET,
    extremes: bool = False,
) -> PreflightReport:
    """Run ``model`` on its basic example and on ``examples`` generated inputs (default :data:`DEFAULT_EXAMPLES`),
    count the failing ones, and report with the smallest failing input.

    ``upstream`` lists models that may run before it: a summary model runs after the ones it needs. ``extremes``
    draws numbers of any magnitude (``mlsm test --extremes``). The same ``seed`` gives the same inputs, so a result
    can be reproduced.
    """
    from hypothesis.errors import HypothesisException

    runner = _Runner(model, upstream_of(model, upstream) if is_summary(model) else [])
    report = PreflightReport(model.key, 0, status=model.status, kind=model.kind)
    count = examples if examples is not None else DEFAULT_EXAMPLES
    probe = _Probe(runner, time_budget)
    strategy = runner.strategy(extremes)
    started = time.perf_counter()
    basic_failure: Failure | None = None
    basic = runner.basic()
    if basic is not None:
        report.basic_example = runner.shown(basic)
        basic_failure = probe.basic(basic)
    first: list[Failure] = []  # the first failure that is not about time, to be shrunk
    ended: Failure | None = None  # why generating stopped early

    def tally(example: Any) -> None:
        failure = probe.run(example)
        report.examples += 1
        if failure is None:
            return
        report.failing += 1
        if failure.check == "output":
            report.unstorable += 1
        if not first and failure.check != "time":
            first.append(failure)

    try:
        _run_given(strategy, tally, count, seed, shrink=False)
    except _TooSlow:
        report.examples += 1
        report.failing += 1
        ended = Failure("time", probe.stopped(), probe.current)
    except HypothesisException as exc:
        message = " ".join(str(exc).split())[:300]
        ended = Failure("generate", f"cannot generate inputs from its fields: {message}")
    smallest = _smallest(probe, strategy, count, seed, first[0]) if first else None
    failures = [failure for failure in (basic_failure, smallest, ended) if failure is not None]
    if probe.slowest is not None:
        report.slowest = probe.slowest[0]
        timed_out = any(failure.check == "time" for failure in failures)
        if report.slowest > time_budget and not timed_out:
            failures.append(Failure("time", probe.over_budget(report.slowest), probe.slowest[1]))
    report.failures = failures
    report.elapsed = time.perf_counter() - started
    return report


def _smallest(probe: _Probe, strategy: Any, count: int, seed: int, first: Failure) -> Failure:
    """The smallest input failing the way generated inputs failed (Hypothesis shrinking, the same seed); ``first``
    when the failure does not come back (a hang on the way, or a model that fails only sometimes)."""
    from hypothesis.errors import Flaky, HypothesisException

    def fails(example: Any) -> None:
        failure = probe.run(example)
        if failure is not None:
            raise _ModelFailed(failure)

    probe.timing = False  # shrinking repeats calls: they are not timed
    try:
        _run_given(strategy, fails, count, seed, shrink=True)
    except _ModelFailed as exc:
        return exc.failure
    except Flaky as exc:
        inner = next((e for e in getattr(exc, "exceptions", ()) if isinstance(e, _ModelFailed)), None)
        found = inner.failure if inner is not None else first
        return Failure("flaky", f"fails only sometimes on the same input: {found.message}", found.input)
    except (_TooSlow, HypothesisException):
        pass
    return first


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
