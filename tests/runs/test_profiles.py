"""A run's drift profile: its counts on edge values, exact after a killed run is resumed, the same whatever scored
the chunks (one process or worker processes), and stored with the run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsm import Engine, Field, Model, open_store
from mlsm.evaluation._drift import CategoricalProfile, NumericProfile
from mlsm.runs import Counts
from mlsm.runs._chunks import score_chunk
from mlsm.runs._profiles import RunProfile, Sample, profile_chunk, profile_records, profile_samples
from mlsm.service.grouping import score_records

from ..conftest import run_mlsm


def _echo(data: dict[str, object], results: dict[str, object]) -> dict[str, object]:
    return {"value": 1.0, "label": "x"}


#: Fields of every declared type, with bounds, choices, a default and a required one.
EDGE_FIELDS = {
    "n": Field(int, ge=0),
    "x": Field(float, required=False),
    "d": Field(float, default=1.0),
    "c": Field(str, choices=["a", "b"], required=False),
    "t": Field(str, required=False),
    "b": Field(bool, required=False),
}


def test_missing_and_invalid_counts_on_edge_values() -> None:
    fields = EDGE_FIELDS
    engine = Engine([Model("m", fields, "1", _echo, status="active")])
    columns = {
        # valid: 0, 12, 1e3 (integral); missing: blank, nan, NULL; invalid: 1.5, -1, abc
        "n": pa.array(["0", "12", "1e3", "", "nan", " NULL ", "1.5", "-1", "abc"]),
        # valid: 2.5, -0.0, 1e300; missing: None, "none"; invalid: inf, "1,5", "--1"
        "x": pa.array(["2.5", "-0.0", "1e300", None, "none", "inf", "1,5", "--1", "7"]),
        # a default: the missing values still count as missing
        "d": pa.array(["", "3", "", "4", "5", "", "6", "7", "8"]),
        "c": pa.array(["a", "b", "a", "c", "", "A", None, "b", "a"]),
        "t": pa.array(["  padded ", "x", "x", "", "y", "z", "null", "x", "é"]),
        "b": pa.array(["yes", "NO", "1", "0", "true", "maybe", "", "False", "2"]),
    }
    results = engine.score_columns(columns, 9)
    profile = profile_chunk(engine, columns, 9, results)
    assert profile is not None
    n, x, d = profile.fields["n"], profile.fields["x"], profile.fields["d"]
    assert isinstance(n, NumericProfile) and isinstance(x, NumericProfile) and isinstance(d, NumericProfile)
    assert (n.count, n.missing, n.invalid) == (3, 3, 3)
    assert (n.minimum, n.maximum, n.sum) == (0.0, 1000.0, 1012.0)
    assert (x.count, x.missing, x.invalid) == (4, 2, 3)
    assert (x.minimum, x.maximum) == (-0.0, 1e300)
    assert (d.count, d.missing, d.invalid) == (6, 3, 0)
    c, t, b = profile.fields["c"], profile.fields["t"], profile.fields["b"]
    assert isinstance(c, CategoricalProfile) and isinstance(t, CategoricalProfile) and isinstance(b, CategoricalProfile)
    assert (c.counts, c.missing, c.invalid) == ({"a": 3, "b": 2}, 2, 2)  # "c" and "A" are not choices
    assert (t.counts, t.missing, t.invalid) == ({"  padded ": 1, "x": 3, "y": 1, "z": 1, "é": 1}, 2, 0)
    assert (b.counts, b.missing, b.invalid) == ({"true": 3, "false": 3}, 1, 2)
    assert profile.types == {"n": "int", "x": "float", "d": "float", "c": "str", "t": "str", "b": "bool"}
    # the model's rows: an error wherever a field was invalid or a required one missing
    model = profile.models["m@1"]
    errors = sum("_error" in r["m"]["1"] for r in results)
    assert (model.rows, model.errors) == (9, errors) and errors > 0
    assert model.outputs["value"].count == 9 - errors and "label" not in model.outputs


def test_the_profile_a_chunk_gets_when_scored_equals_profiling_it_apart() -> None:
    engine = Engine([Model("m", {"n": Field(int, required=False), "s": str}, "1", _echo, status="active")])
    columns = {"n": pa.array(["1", "", "x", "4"]), "s": pa.array(["a", "b", None, "a"])}
    scored = score_chunk(engine, columns, ["1", "2", "3", "4"], id_field="id", run_id="r")
    apart = profile_chunk(engine, columns, 4, engine.score_columns(columns, 4))
    assert scored.profile == apart
    assert scored.without_objects().profile == apart
    s = apart.fields["s"] if apart else None
    assert isinstance(s, CategoricalProfile) and (s.count, s.missing) == (3, 1)  # required and missing: missing


def test_a_profile_merges_and_round_trips_through_counts_json() -> None:
    engine = Engine([Model("m", {"v": Field(float, required=False), "s": str}, "1", _echo, status="active")])
    rng = np.random.default_rng(3)
    values = [f"{v:.3f}" for v in rng.normal(10, 3, 300)] + ["", "bad"] * 10
    labels = [str(v) for v in rng.integers(0, 40, len(values))]
    whole = profile_chunk(
        engine, {"v": values, "s": labels}, len(values), engine.score_columns({"v": values, "s": labels}, len(values))
    )
    counts = Counts()
    for start in range(0, len(values), 37):
        part = {"v": values[start : start + 37], "s": labels[start : start + 37]}
        counts.add_profile(profile_chunk(engine, part, len(part["v"]), engine.score_columns(part, len(part["v"]))))
    assert counts.profile == whole
    again = Counts.from_dict(json.loads(json.dumps(counts.to_dict())))
    assert again.profile == whole
    assert whole is not None and RunProfile.from_json(whole.to_json()) == whole


MODELS = """
    import os
    import signal
    from pathlib import Path

    import pandas as pd
    from mlsm import Field, Model

    KILL = Path(__file__).with_name("kill-at-700")

    def score(frame):
        if KILL.exists() and (frame["n"] == 700).any():
            KILL.unlink()  # once: the resumed run goes past this chunk
            os.kill(os.getpid(), signal.SIGKILL)
        return pd.DataFrame({"score": frame["x"].fillna(0) * 2 + frame["n"] % 7})

    def words(data, results):
        return {"length": len(data["word"]), "word": data["word"]}

    MODELS = [
        Model("scorer", {"n": Field(int, ge=0), "x": Field(float, required=False)}, "1", score, batch=True,
              status="active"),
        Model("words", {"word": Field(str, choices=[f"w{i}" for i in range(30)])}, "1", words, status="active"),
    ]
"""


def _write_input(path: Path, rows: int = 1200) -> None:
    rng = np.random.default_rng(7)
    lines = ["id,n,x,word"]
    for i in range(1, rows + 1):
        x = "" if i % 13 == 0 else ("oops" if i % 29 == 0 else f"{rng.normal(5, 2):.4f}")
        n = "-3" if i % 41 == 0 else str(i)
        word = "w99" if i % 37 == 0 else f"w{int(rng.integers(0, 30))}"
        lines.append(f"{i},{n},{x},{word}")
    path.write_text("\n".join(lines) + "\n")


def _stored_profile(url: str, run_id: str) -> RunProfile:
    with open_store(url) as store:
        run = store.get_run(run_id)
        assert run is not None and run.status == "completed"
        return RunProfile.from_json(run.counts["profile"])


@pytest.mark.slow
def test_a_killed_and_resumed_run_has_the_profile_of_an_uninterrupted_one(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(textwrap.dedent(MODELS))
    _write_input(tmp_path / "in.csv")
    url = f"sqlite:///{tmp_path / 'results.db'}"
    common = ["run", "models.py", "in.csv", "--id-field", "id", "--store", url, "--chunk-size", "50", "--no-progress"]
    whole = run_mlsm(*common, "--run-id", "whole", cwd=tmp_path)
    assert whole.code == 0, whole.err
    (tmp_path / "kill-at-700").touch()
    killed = run_mlsm(*common, "--run-id", "killed", cwd=tmp_path)
    assert killed.code != 0  # SIGKILL in the middle of the run
    with open_store(url) as store:
        partial = store.get_run("killed")
        assert partial is not None and 0 < partial.rows < 1200
        assert RunProfile.from_json(partial.counts["profile"]).rows == partial.counts["scored"]
    resumed = run_mlsm(*common, "--run-id", "killed", "--resume", cwd=tmp_path)
    assert resumed.code == 0, resumed.err
    expected = _stored_profile(url, "whole")
    assert _stored_profile(url, "killed") == expected
    n, x, word = expected.fields["n"], expected.fields["x"], expected.fields["word"]
    assert (n.count, n.missing, n.invalid) == (1200 - 29, 0, 29)  # every 41st is negative
    assert (x.missing, x.invalid) == (92, 38)  # every 13th blank; every 29th (not 13th) is "oops"
    assert (word.invalid, word.missing) == (32, 0)  # every 37th is not a choice
    assert expected.models["scorer@1"].errors == 29 + 38 - 1  # row 1189 has both
    assert expected.models["words@1"].outputs["length"].count == 1200 - 32


@pytest.mark.slow
def test_a_profile_merged_from_worker_processes_equals_one_process(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(textwrap.dedent(MODELS))
    _write_input(tmp_path / "in.csv")
    url = f"sqlite:///{tmp_path / 'results.db'}"
    common = ["run", "models.py", "in.csv", "--id-field", "id", "--store", url, "--chunk-size", "100", "--no-progress"]
    one = run_mlsm(*common, "--run-id", "one", cwd=tmp_path)
    two = run_mlsm(*common, "--run-id", "two", "--workers", "2", cwd=tmp_path, timeout=240)
    assert one.code == 0 and two.code == 0, one.err + two.err
    assert _stored_profile(url, "two") == _stored_profile(url, "one")


_VALUES = {
    "n": ["0", "12", "1e3", "", "nan", " NULL ", "1.5", "-1", "abc", 7, None],
    "x": ["2.5", "-0.0", "1e300", None, "none", "inf", "1,5", 3.25],
    "d": ["", "3", "4", None],
    "c": ["a", "b", "c", "", "A", None],
    "t": ["  padded ", "x", "", "null", "é"],
    "b": ["yes", "NO", "1", "0", "maybe", "", True],
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(
        st.fixed_dictionaries({}, optional={name: st.sampled_from(values) for name, values in _VALUES.items()}),
        min_size=1,
        max_size=40,
    ),
    cuts=st.lists(st.integers(1, 8), min_size=1, max_size=12),
    kept=st.lists(st.booleans(), min_size=12, max_size=12),
    alone=st.integers(0, 3),
)
def test_the_service_profile_read_from_the_engines_conversions_equals_profiling_the_stored_records(
    records: list[dict[str, object]], cuts: list[int], kept: list[bool], alone: int
) -> None:
    # a group of requests scored together (rows cut into requests), some of them not stored, and requests scored
    # one at a time (no conversions): the profile of what was stored, whichever way each request was scored
    fields = EDGE_FIELDS
    engine = Engine([Model("m", fields, "1", _echo, status="active"), Model("k", {"n": int}, "1", _echo)])
    scored = score_records(engine, records, True)
    samples, stored_records, stored_results = [], [], []
    start = 0
    for i, size in enumerate(cuts):
        if start >= len(records):
            break
        rows = slice(start, start + size)
        if kept[i]:
            part = records[rows]
            samples.append(Sample(engine, part, scored.results[rows], scored.conversions, start))
            stored_records += part
            stored_results += scored.results[rows]
        start += size
    for record in records[:alone]:
        one = score_records(engine, [record], False)
        assert one.conversions is None
        samples.append(Sample(engine, [record], one.results))
        stored_records.append(record)
        stored_results += one.results
    expected = profile_records(engine, stored_records, stored_results) if stored_records else None
    assert profile_samples(samples) == expected
