"""The model lifecycle commands: ``mlsm models`` (what a source holds and where it came from), ``mlsm test``
(preflight and golden files, the gate before a release) and ``mlsm pin`` (a project's git source pinned to a
release)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mlsm.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    MODELS_HELP,
    add_command,
    positive_float,
    positive_int,
    print_table,
)
from mlsm.errors import MlsmError

if TYPE_CHECKING:
    from mlsm.lifecycle.project import ModelSource

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    """Add ``models``, ``test`` and ``pin`` to the subcommands ``commands``."""
    models = add_command(commands, "models", help="list the models of a model source, and where each came from")
    models.add_argument("models", metavar="MODELS", help=MODELS_HELP)
    models.set_defaults(handler=_cmd_models)

    test = add_command(commands, "test", help="preflight every model on generated inputs (exit 1 on a failure)")
    test.add_argument("models", metavar="MODELS", help=MODELS_HELP)
    test.add_argument(
        "--examples", type=positive_int, default=None, metavar="N", help="generated inputs per model (default 100)"
    )
    test.add_argument("--junit-xml", metavar="FILE", help="also write the results as JUnit XML (for CI servers)")
    test.add_argument("--seed", type=int, default=0, help="the seed of the generated inputs (default 0)")
    test.add_argument(
        "--extremes",
        action="store_true",
        help="also draw numbers of extreme magnitude for unbounded fields (int64 limits, float max, subnormals); "
        "default: |x| <= 1e9",
    )
    test.add_argument(
        "--time-budget",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="how long one record may take (default 1)",
    )
    test.add_argument(
        "--golden", metavar="DIR", help="the folder of golden files (default: golden/ beside each models file)"
    )
    test.add_argument(
        "--record-golden",
        action="store_true",
        help="write golden files from the models' current outputs instead of testing",
    )
    test.add_argument(
        "--golden-input", metavar="FILE", help="with --record-golden: take the inputs from this CSV/JSONL/Parquet file"
    )
    test.add_argument(
        "--golden-cases", type=positive_int, default=20, metavar="N", help="cases to record per model (default 20)"
    )
    test.add_argument("--id-field", metavar="NAME", help="with --golden-input: the field that identifies a record")
    test.set_defaults(handler=_cmd_test)

    pin = add_command(commands, "pin", help="pin a git source of a project file to a tag or commit")
    pin.add_argument("project", metavar="PROJECT", help="the project file (mlsm.toml)")
    pin.add_argument("source", metavar="SOURCE", help="the git source's name (default: its repository's name)")
    where = pin.add_mutually_exclusive_group(required=True)
    where.add_argument("--tag", help="the release tag to pin")
    where.add_argument("--commit", help="the commit hash to pin")
    pin.set_defaults(handler=_cmd_pin)


def _cmd_models(args: argparse.Namespace) -> int:
    from mlsm.engine import Engine
    from mlsm.fields import as_field
    from mlsm.lifecycle.project import load_model_set
    from mlsm.lifecycle.provenance import collect_provenance

    model_set = load_model_set(args.models)
    engine = Engine(model_set.models)
    provenance = collect_provenance(model_set.models, default_files=model_set.files())["models"]
    # COMPILED only for a set with estimator models (Model.from_estimator): small groups compiled, or not and why
    estimators = any(_compiled(model.fcn) != "-" for model in engine.all_models)
    rows: list[tuple[str, ...]] = [
        ("NAME", "VERSION", "STATUS", "KIND", "BATCH", "ORIGIN", *(("COMPILED",) if estimators else ()), "FIELDS")
    ]
    notes = []
    for model in engine.all_models:
        fields = ", ".join(f"{name}: {as_field(spec).describe()}" for name, spec in model.fields.items())
        origin = _origin(model_set.source_of(model), provenance[model.key])
        rows.append(
            (
                model.name,
                str(model.version),
                model.status,
                model.kind,
                "yes" if model.scores_frames else "no",
                origin,
                *((_compiled(model.fcn),) if estimators else ()),
                fields or "-",
            )
        )
        if _compiled(model.fcn) == "no":
            notes.append(f"{model.key}: scored by the estimator itself, {getattr(model.fcn, 'description', '')}")
    print_table(rows)
    for note in notes:
        print(note)
    return EXIT_OK


def _compiled(fcn: Any) -> str:
    """``yes``/``no`` for a model made by ``Model.from_estimator`` (small groups scored by the compiled form or by
    the estimator itself), ``-`` for any other model."""
    from mlsm.estimators import EstimatorScorer

    if not isinstance(fcn, EstimatorScorer):
        return "-"
    return "yes" if fcn.compiled else "no"


def _origin(source: ModelSource, entry: dict[str, Any]) -> str:
    """``models.py [develop 3f2a9c1 dirty]``: a source's label and the git state of the model's file."""
    git = entry.get("git")
    if source.kind == "git" or not git:
        return source.label
    if git.get("error"):
        return f"{source.label} [git: {git['error']}]"
    if git.get("commit") is None:
        return f"{source.label} [git: no commits]"
    state = [git.get("branch") or "detached", git["commit"][:7], *git.get("tags", [])]
    if git.get("dirty") or not entry.get("tracked", True):
        state.append("dirty" if git.get("dirty") else "untracked")
    return f"{source.label} [{' '.join(state)}]"


def _cmd_test(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlsm.lifecycle.junit import write_junit
    from mlsm.lifecycle.preflight import DEFAULT_TIME_BUDGET
    from mlsm.lifecycle.project import load_model_set
    from mlsm.lifecycle.suite import check_model_set, describe_failure, junit_cases, record_model_set

    model_set = load_model_set(args.models)
    golden_dir = Path(args.golden) if args.golden else None
    if args.record_golden:
        recorded = record_model_set(
            model_set,
            cases=args.golden_cases,
            seed=args.seed,
            golden_dir=golden_dir,
            input_path=args.golden_input,
            id_field=args.id_field,
        )
        print_table([("MODEL", "CASES", "SKIPPED", "FILE"), *recorded])
        print("\nskipped: inputs on which the model gave an error (they are not recorded)")
        return EXIT_OK
    if args.golden_input:
        raise MlsmError("--golden-input only applies with --record-golden")
    checks = check_model_set(
        model_set,
        examples=args.examples,
        seed=args.seed,
        time_budget=args.time_budget or DEFAULT_TIME_BUDGET,
        golden_dir=golden_dir,
        extremes=args.extremes,
    )
    rows = [("MODEL", "STATUS", "RESULT", "EXAMPLES", "FAILING", "SLOWEST", "GOLDEN", "DETAIL")]
    for check in checks:
        report, failures = check.preflight, check.failures
        slowest = "-" if report.slowest is None else f"{max(report.slowest * 1000, 0.1):,.1f} ms"
        detail = failures[0].describe()[:160] if failures else ""
        rows.append(
            (
                check.model.key,
                check.model.status,
                check.verdict,
                str(report.examples),
                str(report.failing),
                slowest,
                check.golden_summary,
                detail,
            )
        )
    print_table(rows)
    failed = [check for check in checks if not check.passed]
    for check in failed:
        print(f"\n{check.model.key} FAILED ({check.source}): {check.preflight.outcome}")
        print(f"  {check.deploy}")
        for failure in check.failures:
            print("  " + describe_failure(failure).replace("\n", "\n  "))
    if args.junit_xml:
        write_junit(Path(args.junit_xml), junit_cases(checks))
    blocking = sum(1 for check in failed if check.blocking)
    blocks = f"; {blocking} would block a deploy (mlsm serve refuses them)" if blocking else ""
    print(f"\n{len(checks) - len(failed)} of {len(checks)} models passed{blocks}")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_pin(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlsm.lifecycle.project import pin_source

    old, new = pin_source(Path(args.project), args.source, tag=args.tag, commit=args.commit)
    keys = ", ".join(model.key for model in new.models)
    print(f"pinned {args.source} to {new.label.rsplit(' @ ', 1)[-1]} (was {old}) in {args.project}: {keys}")
    return EXIT_OK
