"""``mlsm demo``: the lead-scoring example end to end, on the embedded SQLite default store.

It trains the example's scikit-learn models when their artifacts are missing or were made by another
scikit-learn version, generates synthetic leads, scores them with ``mlsm run``'s engine into the store, and prints
the run summary and the ten best leads as the store holds them. Then it writes what happened to those leads (the
``Converted`` the generator drew from its hidden propensity) as an outcomes file with decision times in the hour after
the scores, loads it as ``mlsm outcomes load`` does, prints ``mlsm evaluate``'s table of the champion (the active
model a draft challenger shares its name with) against the challenger with the verdict, and writes ``mlsm report``'s
page next to the leads.
"""

from __future__ import annotations

import heapq
import importlib.util
import json
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from mlsm.engine import Engine
from mlsm.errors import MlsmError
from mlsm.evaluation._assemble import build_report
from mlsm.evaluation.evaluate import evaluate_joined
from mlsm.evaluation.join import join_outcomes
from mlsm.evaluation.outcomes import load_outcomes
from mlsm.evaluation.report import render_report
from mlsm.lifecycle.loader import load_models
from mlsm.lifecycle.provenance import collect_provenance
from mlsm.models import Model, SummaryModel
from mlsm.runs import RunOptions, format_summary, run_batch
from mlsm.stores import open_store
from mlsm.stores.base import RunRecord, Store, hide_password

__all__ = ["DECISION_WINDOW", "contenders", "ensure_artifacts", "example_dir", "run_demo", "write_outcomes"]

_ID = "Prospect ID"
#: The demo's decisions follow the scores by a minute to this many seconds (sales working through the new leads).
DECISION_WINDOW = 3600.0


def example_dir() -> Path:
    """``examples/lead_scoring`` of this source checkout."""
    folder = Path(__file__).resolve().parents[2] / "examples" / "lead_scoring"
    if not (folder / "models.py").exists():
        raise MlsmError(f"mlsm demo needs a source checkout of mlsm: {folder} does not exist")
    return folder


def _module(folder: Path, name: str) -> ModuleType:
    """Import ``folder/name.py`` (its folder importable meanwhile), leaving no trace in ``sys.path``/``sys.modules``.

    ``train.py`` imports ``features`` and ``leads`` from its folder; left in ``sys.modules`` they would be what a
    later ``from features import ...`` of another model source finds, and a script's own ``sys.path.insert`` would
    keep the example folder importable for the rest of the process.
    """
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(f"mlsm_example_{name}", folder / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path[:] = path_before
        home = folder.resolve()
        for added in set(sys.modules) - modules_before:
            file = getattr(sys.modules[added], "__file__", None)
            if file and Path(file).resolve().parent == home:
                del sys.modules[added]


def ensure_artifacts(folder: Path) -> None:
    """Train the example models unless current artifacts exist."""
    try:
        import sklearn
    except ImportError:
        raise MlsmError("mlsm demo needs scikit-learn: pip install 'mlsm[examples]'") from None
    report = folder / "artifacts" / "report.json"
    if report.exists():
        made = json.loads(report.read_text())
        if made and all(entry.get("sklearn") == sklearn.__version__ for entry in made.values()):
            return
    print("mlsm demo: training the example models (once) ...", file=sys.stderr)
    _module(folder, "train").train()


def contenders(models: list[Model]) -> tuple[str, str] | None:
    """The champion and the challenger as ``name@version``: the first draft model (not a summary) and the active
    model of the same name (its last version, in the set's order); None when the set has no such pair."""
    plain = [m for m in models if not isinstance(m, SummaryModel)]
    for draft in (m for m in plain if m.status == "draft"):
        active = [m for m in plain if m.name == draft.name and m.status == "active"]
        if active:
            return active[-1].key, draft.key
    return None


def write_outcomes(leads: Path, target: Path, *, after: float, seed: int) -> Path:
    """Write the outcomes of the leads in ``leads`` (their id and ``Converted``, the generator's own truth) to the
    CSV file ``target``, each decided at a time (ISO 8601, UTC) between a minute and ``DECISION_WINDOW`` seconds past
    ``after``, in order of decision; returns ``target``."""
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(leads, usecols=[_ID, "Converted"], dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    at = np.sort(after + 60.0 + rng.uniform(0.0, DECISION_WINDOW - 60.0, len(frame)))
    order = rng.permutation(len(frame))  # who is decided first has nothing to do with the file's order
    frame = frame.iloc[order].reset_index(drop=True)
    frame["decided_at"] = pd.to_datetime(at, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(target, index=False)
    return target


def run_demo(
    *, records: int = 100_000, store_url: str | None = None, seed: int = 7, workdir: Path | None = None
) -> dict[str, Any]:
    """Run the demo; returns the finished run record."""
    folder = example_dir()
    ensure_artifacts(folder)
    workdir = workdir or Path(".mlsm") / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    leads = workdir / f"leads-{records}-{seed}.csv"
    if not leads.exists():
        started = time.perf_counter()
        _module(folder, "leads").write_leads(leads, records, seed)
        print(
            f"mlsm demo: generated {records:,} leads in {time.perf_counter() - started:.1f} s -> {leads}",
            file=sys.stderr,
        )
    loaded = load_models(str(folder / "models.py"))
    engine = Engine(loaded.models)
    # recorded like any run's; the draft rule is not applied: the demo runs the example as shipped in this checkout
    provenance = collect_provenance(
        loaded.models, default_files=dict.fromkeys((m.key for m in loaded.models), loaded.path)
    )
    with open_store(store_url) as store:
        info = {"source": "mlsm demo", "store": hide_password(store.url), "provenance": provenance}
        options = RunOptions(input=str(leads), id_field=_ID, info=info)
        result = run_batch(engine, store, options)
        print(format_summary(result, engine, store_url=store.url, input_path=str(leads)))
        top = heapq.nlargest(10, store.run_documents(result.run.id), key=_winning_score)
        print("\nTop ten leads (lead_score@1.0, as stored):")
        print(f"  {_ID:<38}  {'score':>6}  {'priority':<8}  won by")
        for document in top:
            slot = document["results"]["lead_score"]["1.0"]
            print(f"  {document[_ID]:<38}  {slot['score']:>6.3f}  {slot['priority']:<8}  {slot['model']}")
        print(f"\nInspect one: mlsm results {top[0][_ID]} --store {store.url}" if top else "")
        _evaluate(store, loaded.models, leads, workdir / f"outcomes-{records}-{seed}.csv", result.run, seed)
    return result.run.to_dict()


def _evaluate(store: Store, models: list[Model], leads: Path, outcomes: Path, run: RunRecord, seed: int) -> None:
    """Load the demo leads' outcomes, print the champion against the challenger and write the report."""
    started = time.perf_counter()
    url = shlex.quote(store.url)  # commands to run, for whoever gave the URL: as given
    write_outcomes(leads, outcomes, after=run.ended or time.time(), seed=seed)
    minutes = round(DECISION_WINDOW / 60)
    print(f"\nOutcomes: did each lead convert (the generator's truth), decided within {minutes} minutes (simulated)")
    print(
        f"  mlsm outcomes load {shlex.quote(str(outcomes))} --store {url} --id-field {shlex.quote(_ID)} "
        "--outcome Converted --at decided_at"
    )
    summary = load_outcomes(store, str(outcomes), id_field=_ID, outcome="Converted", at="decided_at")
    print(f"  {summary.line()}")
    joined = join_outcomes(store)
    pair = contenders(models)
    if pair is not None:
        selection = " ".join(f"--model {model}" for model in pair)
        print(f"\nChampion vs challenger: mlsm evaluate --store {url} {selection}")
        print(evaluate_joined(joined, pair).table())
    # the report: the champion and the challenger first (its headline), then the set's other scoring models
    shown = [*(pair or ()), *(m.key for m in models if not isinstance(m, SummaryModel) and m.key not in (pair or ()))]
    report = outcomes.parent / "report.html"
    page = render_report(build_report(store, joined, title="mlsm demo: lead scoring", models=shown))
    report.write_text(page, encoding="utf-8")
    selection = " ".join(f"--model {model}" for model in shown)
    print(f"\nReport: {report} (open it in a browser)")
    print(f"  mlsm report --store {url} --output {shlex.quote(str(report))} {selection}")
    print(f"mlsm demo: outcomes, evaluation and report in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def _winning_score(document: dict[str, Any]) -> float:
    score = document["results"].get("lead_score", {}).get("1.0", {}).get("score")
    return float(score) if isinstance(score, (int, float)) else float("-inf")
