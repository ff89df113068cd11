"""``mlsm test`` over a model set: every model's preflight, its golden file when it has one, and the reports.

``check_model_set`` runs the models in the order a run does (plain models, then summary models after the models
they need) and returns one :class:`ModelCheck` per model; ``junit_cases`` turns them into JUnit test cases.
``record_model_set`` writes golden files instead (``mlsm test --record-golden``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsm.engine import Engine
from mlsm.errors import InputError
from mlsm.lifecycle.golden import GOLDEN_DIR, GoldenCheck, GoldenFileInvalid, check_golden, golden_path, record_golden
from mlsm.lifecycle.junit import Case
from mlsm.lifecycle.preflight import (
    DEFAULT_TIME_BUDGET,
    Failure,
    PreflightReport,
    generated_records,
    preflight_model,
    show_input,
)
from mlsm.lifecycle.project import ModelSet
from mlsm.models import Model
from mlsm.readers import open_input

__all__ = [
    "ModelCheck",
    "check_model_set",
    "describe_failure",
    "first_records",
    "golden_folder",
    "junit_cases",
    "record_model_set",
]


@dataclass
class ModelCheck:
    """One model's outcome in ``mlsm test``: its preflight and, when it has a golden file, the comparison."""

    model: Model
    source: str  # where the model came from (its source's label)
    preflight: PreflightReport
    golden: GoldenCheck | None = None
    golden_error: str | None = None  # the golden file exists but cannot be read

    @property
    def failures(self) -> list[Failure]:
        """Every failure: the preflight's, then the golden file's."""
        found = list(self.preflight.failures)
        if self.golden_error is not None:
            found.append(Failure("golden", self.golden_error))
        elif self.golden is not None and self.golden.mismatches:
            first = self.golden.mismatches[0]
            found.append(Failure("golden", f"{self._golden_message()}; first: {first}"))
        return found

    @property
    def passed(self) -> bool:
        """True when the preflight and the golden comparison both passed."""
        return not self.failures

    @property
    def blocking(self) -> list[str]:
        """Why ``mlsm serve`` would refuse a set holding this model (:attr:`PreflightReport.blocking`; golden files
        are ``mlsm test``'s alone); empty when it would serve."""
        return self.preflight.blocking

    @property
    def verdict(self) -> str:
        """``pass``, ``FAIL (blocks deploy)`` or ``FAIL (reported)``: the RESULT column of ``mlsm test``."""
        if self.passed:
            return "pass"
        return "FAIL (blocks deploy)" if self.blocking else "FAIL (reported)"

    @property
    def deploy(self) -> str:
        """What a deploy of this model would meet, in one line (for a failing model)."""
        if self.blocking:
            return "blocks deploy: mlsm serve refuses the set: " + "; ".join(self.blocking)
        if self.preflight.passed:
            return "reported: mlsm serve would serve it (it does not check golden files)"
        return "reported: mlsm serve would serve it, warning about its preflight failures"

    @property
    def golden_summary(self) -> str:
        """``-`` (no golden file), ``ok 20/20``, ``FAIL 3/20`` or ``FAIL`` (unreadable file)."""
        if self.golden_error is not None:
            return "FAIL"
        return self.golden.summary if self.golden is not None else "-"

    def _golden_message(self) -> str:
        assert self.golden is not None
        return f"golden {self.golden.path.name}: {len(self.golden.mismatches)} of {self.golden.cases} cases differ"


def golden_folder(model_set: ModelSet, model: Model, override: Path | None = None) -> Path:
    """Where ``model``'s golden file lives: ``override``, else ``golden/`` beside the file it was loaded from."""
    if override is not None:
        return override
    path = model_set.source_of(model).path
    return (path.parent if path is not None else Path.cwd()) / GOLDEN_DIR


def check_model_set(
    model_set: ModelSet,
    *,
    examples: int | None = None,
    seed: int = 0,
    time_budget: float = DEFAULT_TIME_BUDGET,
    golden_dir: Path | None = None,
    extremes: bool = False,
) -> list[ModelCheck]:
    """Preflight every model of ``model_set`` (``extremes``: numbers of any magnitude) and compare it with its
    golden file when there is one."""
    models = list(Engine(model_set.models).all_models)
    checks = []
    for model in models:
        report = preflight_model(
            model, examples=examples, upstream=models, seed=seed, time_budget=time_budget, extremes=extremes
        )
        check = ModelCheck(model, model_set.source_of(model).label, report)
        path = golden_path(golden_folder(model_set, model, golden_dir), model)
        if path.exists():
            try:
                check.golden = check_golden(model, models, path)
            except GoldenFileInvalid as exc:
                check.golden_error = str(exc)
        checks.append(check)
    return checks


def describe_failure(failure: Failure) -> str:
    """A failure in full: the check and message, then the smallest failing input (strings up to 500 chars)."""
    lines = [f"{failure.check}: {failure.message}"]
    if failure.input is not None:
        where = "basic example" if failure.basic else "smallest failing input"
        lines.append(f"{where}: {show_input(failure.input, 500)}")
    return "\n".join(lines)


def junit_cases(checks: list[ModelCheck]) -> list[Case]:
    """JUnit cases: ``<name@version> preflight`` for every model, ``<name@version> golden`` when it has one; a
    failing preflight case says whether it would block a deploy."""
    cases = []
    for check in checks:
        report = check.preflight
        failures = report.failures
        details = [f"{report.outcome}; {check.deploy}"] if failures else []
        cases.append(
            Case(
                check.source,
                f"{check.model.key} preflight",
                report.elapsed,
                failures[0].describe(200) if failures else None,
                "\n".join([*details, *(describe_failure(failure) for failure in failures)]),
            )
        )
        name = f"{check.model.key} golden"
        if check.golden_error is not None:
            cases.append(Case(check.source, name, 0.0, check.golden_error))
        elif check.golden is not None:
            message = check._golden_message() if check.golden.mismatches else None
            cases.append(Case(check.source, name, 0.0, message, "\n".join(check.golden.mismatches)))
    return cases


def record_model_set(
    model_set: ModelSet,
    *,
    cases: int = 20,
    seed: int = 0,
    golden_dir: Path | None = None,
    input_path: str | None = None,
    id_field: str | None = None,
) -> list[tuple[str, str, str, str]]:
    """Write every model's golden file from its current outputs; one row per model (key, cases written, inputs
    skipped because the model errored on them, file or why nothing was written).

    Inputs are the first ``cases`` rows of ``input_path`` (with their ids) or generated from the fields.
    Git sources are not recorded unless ``golden_dir`` is given: their golden files belong in their repository.
    """
    models = list(Engine(model_set.models).all_models)
    file_records: list[dict[str, Any]] | None = None
    ids: list[Any] | None = None
    if input_path is not None:
        id_field = id_field or model_set.settings.id_field
        if not id_field:
            raise InputError("--golden-input needs --id-field NAME (or id_field in the project's [defaults])")
        file_records, ids = first_records(input_path, id_field, models, cases)
    rows = []
    for model in models:
        if model_set.source_of(model).kind == "git" and golden_dir is None:
            rows.append((model.key, "-", "-", "not recorded: a git source records golden files in its own repository"))
            continue
        path = golden_path(golden_folder(model_set, model, golden_dir), model)
        if file_records is not None:
            written, skipped = record_golden(model, models, file_records, path, ids=ids)
        else:
            written, skipped = record_golden(model, models, generated_records(model, models, cases, seed=seed), path)
        rows.append((model.key, str(written), str(skipped), str(path)))
    return rows


def first_records(path: str, id_field: str, models: list[Model], count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The first ``count`` scorable rows of an input file as flat records of the fields the models read (raw
    values, as a run reads them; missing ones left out), and their ids."""
    fields = Engine(models).input_fields
    records: list[dict[str, Any]] = []
    ids: list[str] = []
    for chunk in open_input(path, id_field=id_field, fields=fields, chunk_size=count):
        columns = {
            name: column.to_pylist() if hasattr(column, "to_pylist") else list(column)
            for name, column in chunk.columns.items()
            if name in fields
        }
        for row in range(len(chunk)):
            record = {name: _json_safe(values[row]) for name, values in columns.items()}
            records.append({name: value for name, value in record.items() if value is not None})
            ids.append(chunk.ids[row])
        if len(records) >= count:
            break
    return records[:count], ids[:count]


def _json_safe(value: Any) -> Any:
    """A raw input value as JSON can hold it: non-finite floats are missing, anything else exotic is its text."""
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, float):
        return value if value - value == 0.0 else None
    return str(value)
