"""``mlsm demo``: the lead-scoring example end to end, on the embedded SQLite default store.

It trains the example's scikit-learn models when their artifacts are missing or were made by another
scikit-learn version, generates synthetic leads, scores them with ``mlsm run``'s engine into the store, and prints
the run summary and the ten best leads as the store holds them.
"""

from __future__ import annotations

import heapq
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from mlsm.engine import Engine
from mlsm.errors import MlsmError
from mlsm.lifecycle.loader import load_models
from mlsm.lifecycle.provenance import collect_provenance
from mlsm.runs import RunOptions, format_summary, run_batch
from mlsm.stores import open_store

__all__ = ["ensure_artifacts", "example_dir", "run_demo"]


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
        info = {"source": "mlsm demo", "store": store.url, "provenance": provenance}
        options = RunOptions(input=str(leads), id_field="Prospect ID", info=info)
        result = run_batch(engine, store, options)
        print(format_summary(result, engine, store_url=store.url, input_path=str(leads)))
        top = heapq.nlargest(10, store.run_documents(result.run.id), key=_winning_score)
    print("\nTop ten leads (lead_score@1.0, as stored):")
    print(f"  {'Prospect ID':<38}  {'score':>6}  {'priority':<8}  won by")
    for document in top:
        slot = document["results"]["lead_score"]["1.0"]
        print(f"  {document['Prospect ID']:<38}  {slot['score']:>6.3f}  {slot['priority']:<8}  {slot['model']}")
    print(f"\nInspect one: mlsm results {top[0]['Prospect ID']} --store {store.url}" if top else "")
    return result.run.to_dict()


def _winning_score(document: dict[str, Any]) -> float:
    score = document["results"].get("lead_score", {}).get("1.0", {}).get("score")
    return float(score) if isinstance(score, (int, float)) else float("-inf")
