"""The ``mlsm`` command: run, models, test, results; one-line setup errors with exit 2."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import CliResult, run_mlsm

INPUT = """
    lead,a,b
    1,6,3
    2,5,0
    3,x,1
    4,1,1,extra
    ,2,2
    6,7,7
"""


def test_run_scores_into_the_default_sqlite_store_and_summarizes(
    cli: Callable[..., CliResult], simple_models: Path, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    data = write_csv(INPUT)
    result = cli("run", simple_models, data, "--id-field", "lead", "--chunk-size", "2")
    assert result.code == 0, result.err
    out = result.out
    assert "records read 6 · scored 4 · rejected 2 (lines 5, 6)" in out
    assert "adder@1" in out and "summary@1" in out
    # adder: 3 ok, 1 bad input ('x'); divider: 2 ok, 1 bad input, 1 ZeroDivisionError; summary: all 4 ok
    rows = {line.split()[0]: line.split()[2:] for line in out.splitlines() if "@1" in line}
    assert rows == {"adder@1": ["3", "1"], "divider@1": ["2", "2"], "summary@1": ["4", "0"]}
    assert "records/s" in out
    db = sqlite3.connect(tmp_path / "mlsm.db")
    assert db.execute("SELECT COUNT(*) FROM mlsm_results").fetchone() == (4,)


def test_results_prints_the_stored_documents_newest_first(
    cli: Callable[..., CliResult], simple_models: Path, write_csv: Callable[..., Path]
) -> None:
    data = write_csv(INPUT)
    assert cli("run", simple_models, data, "--id-field", "lead", "--run-id", "first").code == 0
    assert cli("run", simple_models, data, "--id-field", "lead", "--run-id", "second").code == 0
    current = cli("results", "2")
    assert current.code == 0
    (line,) = current.out.splitlines()
    document = json.loads(line)
    assert document["lead"] == "2" and document["_current"] == 0 and document["_run"] == "second"
    assert document["results"]["divider"]["1"]["_error"] == "division by zero"
    assert document["results"]["adder"]["1"] == {"c": 5, "_status": "active"}
    history = cli("results", "2", "--history")
    assert [(d["_run"], d["_current"]) for d in map(json.loads, history.out.splitlines())] == [
        ("second", 0),
        ("first", 1),
    ]
    missing = cli("results", "nobody")
    assert missing.code == 1 and "no results for id 'nobody'" in missing.err


def test_output_and_rejects_files_as_json_lines(
    cli: Callable[..., CliResult], simple_models: Path, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    data = write_csv(INPUT)
    result = cli(
        "run",
        simple_models,
        data,
        "--id-field",
        "lead",
        "--output",
        "out.jsonl",
        "--rejects",
        "rejects.jsonl",
        "--run-id",
        "r",
    )
    assert result.code == 0
    docs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [d["lead"] for d in docs] == ["1", "2", "3", "6"]
    assert all(d["_run"] == "r" and d["_current"] == 0 for d in docs)
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert rejects == [
        {"line": 5, "reason": "cannot parse: 4 fields where the header has 3", "record": "4,1,1,extra"},
        {"line": 6, "reason": "no id: field 'lead' is empty", "record": {"lead": "", "a": "2", "b": "2"}},
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_run_reads_json_lines_and_parquet(
    cli: Callable[..., CliResult], simple_models: Path, tmp_path: Path, fmt: str
) -> None:
    rows = [{"lead": 1, "a": 6, "b": 3}, {"lead": 2, "a": 5, "b": 0}]
    path = tmp_path / f"input.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    assert cli("run", simple_models, path, "--id-field", "lead").code == 0
    document = json.loads(cli("results", "1").out)
    assert document["results"]["adder"]["1"]["c"] == 9 and document["results"]["divider"]["1"]["r"] == 2.0


def test_run_reads_a_directory_or_glob_of_files_as_one_input(
    cli: Callable[..., CliResult], simple_models: Path, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    write_csv(INPUT, "in/week-1.csv")
    (tmp_path / "in" / "week-2.jsonl").write_text('{"lead": "7", "a": 1, "b": 1}\n{"a": 2}\n')
    result = cli("run", simple_models, "in", "--id-field", "lead", "--rejects", "rejects.jsonl")
    assert result.code == 0, result.err
    assert "records read 8 · scored 5 · rejected 3 (lines in/week-1.csv:5, in/week-1.csv:6, in/week-2.jsonl:2)" in (
        result.out
    )
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["file"], r["line"]) for r in rejects] == [("in/week-1.csv", 5), ("in/week-1.csv", 6),
                                                         ("in/week-2.jsonl", 2)]  # fmt: skip
    assert json.loads(cli("results", "7").out)["results"]["adder"]["1"]["c"] == 2
    only_csv = cli("run", simple_models, "in/*.csv", "--id-field", "lead", "--store", "sqlite:///csv.db")
    assert only_csv.code == 0 and "records read 6 · scored 4" in only_csv.out
    nothing = cli("run", simple_models, "in/*.tsv", "--id-field", "lead")
    assert nothing.code == 2
    assert nothing.err.strip() == "mlsm: error: cannot read input 'in/*.tsv': no CSV, JSON lines or Parquet files there"


def test_models_lists_name_version_status_kind_batch_fields(cli: Callable[..., CliResult], simple_models: Path) -> None:
    result = cli("models", simple_models)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "STATUS", "KIND", "BATCH", "ORIGIN", "FIELDS"]
    assert lines[1].split() == ["adder", "1", "active", "model", "no", str(simple_models), "a:", "int,", "b:", "int"]
    assert lines[3].split()[:5] == ["summary", "1", "draft", "summary", "no"]


@pytest.mark.slow
def test_test_command_fails_a_model_that_breaks_on_inputs_its_fields_allow(
    cli: Callable[..., CliResult], simple_models: Path
) -> None:
    result = cli("test", simple_models)
    assert result.code == 1
    table = result.out.split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line for line in table[1:]}
    assert " pass " in rows["adder@1"]
    assert " FAIL " in rows["divider@1"] and "ZeroDivisionError" in rows["divider@1"]
    assert " pass " in rows["summary@1"]
    assert "2 of 3 models passed" in result.out


def test_test_command_exits_0_when_every_model_passes(
    cli: Callable[..., CliResult], write_models: Callable[..., Path]
) -> None:
    path = write_models(
        """
        from mlsm import Field, Model
        MODELS = [Model("safe", {"n": Field(int, ge=1), "s": str}, "1", lambda data, results: {"x": 1 / data["n"]})]
        """
    )
    result = cli("test", path)
    assert result.code == 0, result.out
    assert "1 of 1 models passed" in result.out


def test_models_list_in_MODELS_wins_over_top_level_bindings(
    cli: Callable[..., CliResult], write_models: Callable[..., Path]
) -> None:
    path = write_models(
        """
        from mlsm import Model
        a = Model("a", {}, "1", lambda data, results: {})
        b = Model("b", {}, "1", lambda data, results: {})
        MODELS = [b]
        """
    )
    assert [line.split()[0] for line in cli("models", path).out.splitlines()[1:]] == ["b"]


def test_a_dotted_module_name_works_as_models(
    cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "scoring"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "lead_models.py").write_text(
        "from mlsm import Model\nm = Model('m', {}, '1', lambda data, results: {})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli("models", "scoring.lead_models").out.splitlines()[1].split()[0] == "m"


# -- setup errors: one line, exit 2, before any work ------------------------------------------------------------


@pytest.mark.parametrize(
    ("models_source", "message"),
    [
        (
            "raise RuntimeError('artifact missing')\n",
            "cannot load models from 'models.py': RuntimeError: artifact missing (line 1)",
        ),
        ("def broken(:\n", "cannot load models from 'models.py': SyntaxError: invalid syntax"),
        ("x = 1\n", "'models.py' defines no models"),
        ("from mlsm import Model\nm = Model('m', {}, '1', print, status='prod')\n", "invalid status 'prod'"),
    ],
)
def test_a_bad_model_file_is_one_line_and_exit_2(
    cli: Callable[..., CliResult],
    write_models: Callable[..., Path],
    write_csv: Callable[..., Path],
    models_source: str,
    message: str,
) -> None:
    write_models(models_source)
    data = write_csv(INPUT)
    result = cli("run", "models.py", data, "--id-field", "lead")
    assert result.code == 2
    assert result.out == ""
    (line,) = result.err.strip().splitlines()
    assert line.startswith("mlsm: error: ") and message in line


def test_setup_errors_from_a_real_process(tmp_path: Path, simple_models: Path, write_csv: Callable[..., Path]) -> None:
    data = write_csv(INPUT)
    cases = [
        (["run", simple_models, tmp_path / "nope.csv", "--id-field", "lead"], "cannot read input"),
        (["run", simple_models, data, "--id-field", "Lead"], "id field 'Lead' is not a column"),
        (
            ["run", "no_such_models.py", data, "--id-field", "lead"],
            "cannot load models from 'no_such_models.py': no such file",
        ),
        (["run", simple_models, data, "--id-field", "lead", "--store", "redis://x"], "unknown store URL 'redis://x'"),
        (
            ["run", simple_models, data, "--id-field", "lead", "--store", f"sqlite:///{tmp_path}/no/dir/x.db"],
            "does not exist",
        ),
    ]
    for args, message in cases:
        result = run_mlsm(*args, cwd=tmp_path)
        assert result.code == 2, (args, result.err)
        assert result.out == ""
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.err
        assert "Traceback" not in result.err
    assert not (tmp_path / "mlsm.db").exists()  # nothing was created before the error


def test_debug_shows_the_traceback(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    data = write_csv(INPUT)
    result = run_mlsm("--debug", "run", "missing.py", data, "--id-field", "lead", cwd=tmp_path)
    assert result.code != 0 and "Traceback" in result.err


def test_a_store_file_that_is_not_sqlite_is_one_line(
    cli: Callable[..., CliResult], simple_models: Path, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "junk.db").write_text("this is not a database" * 100)
    result = cli("run", simple_models, write_csv(INPUT), "--id-field", "lead", "--store", "sqlite:///junk.db")
    assert result.code == 2 and "cannot open SQLite store" in result.err


def test_store_from_environment(
    cli: Callable[..., CliResult],
    simple_models: Path,
    write_csv: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLSM_STORE", f"sqlite:///{tmp_path / 'env.db'}")
    assert cli("run", simple_models, write_csv(INPUT), "--id-field", "lead").code == 0
    assert (tmp_path / "env.db").exists() and not (tmp_path / "mlsm.db").exists()


# -- hostile input: a bad row is a reject, nothing the run writes destroys its input -----------------------------

READS_A = """
    from mlsm import Field, Model
    MODELS = [Model("m", {"a": Field(str, required=False)}, "1", lambda data, results: {"n": len(data["a"] or "")},
                    status="active")]
"""


def no_constants(name: str) -> None:
    raise AssertionError(f"bare {name} in a rejects line")


def test_rows_that_used_to_stop_a_run_are_rejects_and_the_run_completes(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    write_models(READS_A)
    lines = [
        '{"id": "1", "a": "x"}',
        "[" * 100_000 + "]" * 100_000,
        '{"id": "3", "a": "bad \\udc00"}',
        '{"id": "bad \\udc01", "a": "y"}',
        '{"id": "5", "a": NaN, "b": Infinity}',
        '{"a": NaN}',
        '{"id": "7", "a": "z"}',
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    args = ["run", "models.py", "in.jsonl", "--id-field", "id", "--chunk-size", "1", "--run-id", "r"]
    result = cli(*args, "--rejects", "rejects.jsonl", "--output", "out.jsonl")
    assert result.code == 0, result.err
    assert "records read 7 · scored 3 · rejected 4 (lines 2, 3, 4, 6)" in result.out
    rejected = [json.loads(line, parse_constant=no_constants) for line in (tmp_path / "rejects.jsonl").open()]
    assert [(r["line"], r["reason"]) for r in rejected] == [
        (2, "cannot parse: nested too deeply"),
        (3, "field 'a' holds text that is not valid Unicode (lone surrogate \\udc00)"),
        (4, "field 'id' holds text that is not valid Unicode (lone surrogate \\udc01)"),
        (6, "no id: field 'id' is missing or empty"),
    ]
    assert rejected[3]["record"] == {"a": None}
    assert [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").open()] == ["1", "5", "7"]
    again = cli(*args, "--resume", "--rejects", "rejects.jsonl", "--output", "out.jsonl")
    assert again.code == 0 and "records read 7 · scored 3 · rejected 4" in again.out
    assert json.loads(cli("results", "7").out)["results"]["m"]["1"]["n"] == 1


def test_a_csv_field_of_megabytes_is_scored_like_any_other(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    write_models(READS_A)
    (tmp_path / "in.csv").write_text(f"id,a\n1,x\n2,{'y' * 3_000_000}\n3,z\n")
    result = cli("run", "models.py", "in.csv", "--id-field", "id", "--chunk-size", "1")
    assert result.code == 0, result.err
    assert "records read 3 · scored 3 · rejected 0" in result.out
    assert json.loads(cli("results", "2").out)["results"]["m"]["1"]["n"] == 3_000_000


def test_a_header_naming_a_read_column_twice_is_one_line_before_anything_is_written(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    write_models(READS_A)
    (tmp_path / "in.csv").write_text("id,a,a\n1,x,y\n")
    result = cli("run", "models.py", "in.csv", "--id-field", "id")
    assert result.code == 2 and result.out == ""
    assert result.err.strip() == (
        "mlsm: error: cannot read input 'in.csv': the header names column 'a' 2 times (columns 2, 3); "
        "a column the run reads must have one name: rename or remove the others"
    )
    assert not (tmp_path / "mlsm.db").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--output", "in.csv"], "--output 'in.csv' is the input file 'in.csv': writing it would destroy the input"),
        (["--rejects", "link.csv"], "--rejects 'link.csv' is the input file 'in.csv'"),  # a symbolic link to it
        (["--output", "hard.csv"], "--output 'hard.csv' is the input file 'in.csv'"),  # a hard link to it
        (["--output", "out.jsonl", "--rejects", "./out.jsonl"], "--output and --rejects name the same file"),
        (["--rejects", "mlsm.db"], "--rejects 'mlsm.db' is a file of the store sqlite:///mlsm.db"),
        (["--output", "missing/out.jsonl"], "cannot write --output 'missing/out.jsonl': no such directory"),
    ],
)
def test_an_output_that_would_destroy_the_input_is_refused_before_anything_is_written(
    cli: Callable[..., CliResult],
    write_models: Callable[..., Path],
    tmp_path: Path,
    flags: list[str],
    message: str,
) -> None:
    write_models(READS_A)
    data = tmp_path / "in.csv"
    data.write_text("id,a\n1,x\n2,y\n")
    (tmp_path / "link.csv").symlink_to(data)
    (tmp_path / "hard.csv").hardlink_to(data)
    result = cli("run", "models.py", "in.csv", "--id-field", "id", *flags)
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith("mlsm: error: " + message)
    assert data.read_text() == "id,a\n1,x\n2,y\n"
    assert not (tmp_path / "mlsm.db").exists() and not (tmp_path / "out.jsonl").exists()


@pytest.mark.slow
def test_an_output_inside_a_directory_or_glob_input_is_refused(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    write_models(READS_A)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id,a\n1,x\n")
    (tmp_path / "in" / "b.jsonl").write_text('{"id": "2"}\n')
    cases = [
        ("in", ["--output", "in/b.jsonl"], "--output 'in/b.jsonl' is the input file 'in/b.jsonl'"),
        ("in", ["--rejects", "in/rejects.jsonl"], "--rejects 'in/rejects.jsonl' would become one of the files"),
        ("in/*.jsonl", ["--output", "in/out.jsonl"], "--output 'in/out.jsonl' would become one of the files"),
    ]
    for source, flags, message in cases:
        result = cli("run", "models.py", source, "--id-field", "id", *flags)
        assert result.code == 2 and result.err.startswith("mlsm: error: " + message), result.err
    assert (tmp_path / "in" / "b.jsonl").read_text() == '{"id": "2"}\n'
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.csv", "b.jsonl"]
    fine = cli("run", "models.py", "in/*.csv", "--id-field", "id", "--output", "in/out.jsonl")
    assert fine.code == 0, fine.err  # not a file the glob names
