"""``mlsm results / export / runs / compare`` on every backend, and one-line errors for unusable stores."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats

from mlsm import StoreNotFound, open_store
from mlsm.documents import Documents, make_document

from .conftest import CliResult, run_mlsm
from .servers import CuttingProxy, free_port

MODELS = """
    from mlsm import Field, Model

    def champion(data, results):
        return {"score": data["x"] / 100, "band": "high" if data["x"] > 50 else "low", "tags": ["a", "b"]}

    def challenger(data, results):
        if data["x"] % 17 == 0:
            raise ValueError("challenger breaks on multiples of 17")
        return {"score": (data["x"] * 7 % 100) / 100 if data["x"] % 3 == 0 else data["x"] / 100 + 0.01}

    MODELS = [
        Model("champion", {"x": int}, "1.0", champion, status="active"),
        Model("challenger", {"x": int}, "2.0", challenger),
    ]
"""


@pytest.fixture(params=["sqlite", "postgres", "mongo"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def scored(store_url: str, cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path) -> str:
    """Two runs into the store: 100 ids, then ids 1-10 again with the champion alone."""
    models = write_models(MODELS)
    (tmp_path / "all.csv").write_text("id,x\n" + "".join(f"{i},{i}\n" for i in range(1, 101)))
    assert cli("run", models, "all.csv", "--id-field", "id", "--store", store_url, "--run-id", "first").code == 0
    write_models(MODELS.replace('Model("challenger"', '# Model("challenger"'), "champion_only.py")
    (tmp_path / "few.csv").write_text("id,x\n" + "".join(f"{i},{i + 1}\n" for i in range(1, 11)))
    again = cli("run", "champion_only.py", "few.csv", "--id-field", "id", "--store", store_url, "--run-id", "second")
    assert again.code == 0, again.err
    return store_url


def test_runs_prints_one_json_line_per_run(scored: str, cli: Callable[..., CliResult]) -> None:
    result = cli("runs", "--store", scored)
    runs = [json.loads(line) for line in result.out.splitlines()]
    assert [(r["id"], r["status"]) for r in runs] == [("first", "completed"), ("second", "completed")]
    first = runs[0]
    assert set(first) >= {"id", "start", "end", "status", "counts"}
    assert first["start"].endswith("Z") and first["end"] >= first["start"]
    assert first["counts"]["scored"] == 100
    assert first["counts"]["models"]["challenger@2.0"] == {"ok": 95, "errors": 5}


def test_export_jsonl_has_one_current_document_per_id(
    scored: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    assert cli("export", "--store", scored, "--output", "out.jsonl").code == 0
    docs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(d["id"] for d in docs) == sorted(str(i) for i in range(1, 101))
    by_id = {d["id"]: d for d in docs}
    assert by_id["5"]["_run"] == "second" and by_id["5"]["results"]["champion"]["1.0"]["score"] == 0.06
    assert "challenger" not in by_id["5"]["results"] and by_id["50"]["_run"] == "first"


def test_export_of_one_model_takes_each_ids_current_result_of_it(
    scored: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    assert cli("export", "--store", scored, "--output", "c.jsonl", "--model", "challenger@2.0").code == 0
    docs = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert len(docs) == 100
    by_id = {d["id"]: d for d in docs}
    assert by_id["5"]["_run"] == "first" and by_id["5"]["_current"] == 1  # id 5's newest document lacks it
    assert list(by_id["5"]["results"]) == ["challenger"]
    error = by_id["34"]["results"]["challenger"]["2.0"]
    assert error["_error"] == "challenger breaks on multiples of 17" and error["_status"] == "draft"
    assert error["_errors"][0]["type"] == "ValueError"


def test_export_csv_and_parquet_are_flat_with_a_column_per_result_key(
    scored: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    assert cli("export", "--store", scored, "--output", "out.csv").code == 0
    assert cli("export", "--store", scored, "--output", "out.parquet").code == 0
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    for flat in (rows, table):
        assert len(flat) == 100
        by_id = {str(r["id"]): r for r in flat}
        assert float(by_id["50"]["champion@1.0.score"]) == 0.5
        assert by_id["50"]["champion@1.0.band"] == "low"
        assert json.loads(by_id["50"]["champion@1.0.tags"]) == ["a", "b"]
        assert by_id["34"]["challenger@2.0._error"] == "challenger breaks on multiples of 17"
        assert by_id["34"]["challenger@2.0._status"] == "draft"  # an error slot's status is a column like the rest
        assert json.loads(by_id["34"]["challenger@2.0._errors"])[0]["type"] == "ValueError"
        assert by_id["5"]["_run"] == "second"
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert str(schema.field("champion@1.0.score").type) == "double"
    assert str(schema.field("_timestamp").type) == "int64"


def test_compare_matches_independently_computed_statistics(scored: str, cli: Callable[..., CliResult]) -> None:
    result = cli("compare", "--store", scored, "champion@1.0", "challenger@2.0", "--json")
    report = json.loads(result.out)
    # champion's current result: ids 1-10 from the second run (x + 1), others from the first
    champion = {i: ((i + 1) if i <= 10 else i) / 100 for i in range(1, 101)}
    challenger = {i: (i * 7 % 100) / 100 if i % 3 == 0 else i / 100 + 0.01 for i in range(1, 101) if i % 17}
    ids = sorted(challenger)
    a = np.array([champion[i] for i in ids])
    b = np.array([challenger[i] for i in ids])
    assert report["both"] == len(ids) == 95
    assert (report["only_a"], report["only_b"], report["unusable_b"]) == (0, 0, 5)
    assert report["mean_abs_diff"] == pytest.approx(np.mean(np.abs(a - b)))
    assert report["pearson"] == pytest.approx(stats.pearsonr(a, b)[0])
    assert report["spearman"] == pytest.approx(stats.spearmanr(a, b)[0])
    top = int(np.ceil(len(ids) / 10))
    expected = len(set(np.argsort(-a, kind="stable")[:top]) & set(np.argsort(-b, kind="stable")[:top])) / top
    assert report["top_decile_agreement"] == pytest.approx(expected)
    table = cli("compare", "--store", scored, "champion@1.0", "challenger@2.0")
    assert "Spearman rho" in table.out and f"{report['pearson']:.4f}" in table.out


def test_results_reads_every_backend(scored: str, cli: Callable[..., CliResult]) -> None:
    history = [json.loads(line) for line in cli("results", "5", "--store", scored, "--history").out.splitlines()]
    assert [(d["_run"], d["_current"]) for d in history] == [("second", 0), ("first", 1)]
    missing = cli("results", "nobody", "--store", scored)
    assert missing.code == 1 and "no results for id 'nobody'" in missing.err
    assert "mlsm-test-password" not in missing.err  # the store's URL is shown without its password


def test_bad_model_names_and_export_targets_are_one_line(scored: str, cli: Callable[..., CliResult]) -> None:
    bad = cli("compare", "--store", scored, "champion", "challenger@2.0")
    assert bad.code == 2 and "invalid model 'champion': write it as NAME@VERSION" in bad.err
    unknown = cli("export", "--store", scored, "--output", "out.xlsx")
    assert unknown.code == 2 and "unknown extension '.xlsx'" in unknown.err


# -- unusable stores: one line, exit 2, before any work ------------------------------------------------------------


def test_unusable_stores_are_one_line_and_exit_2(
    tmp_path: Path, write_models: Callable[..., Path], postgres_url: str, mongo_server: str
) -> None:
    models = write_models(MODELS)
    (tmp_path / "in.csv").write_text("id,x\n1,1\n")
    port = free_port()
    wrong_password = postgres_url.replace("mlsm-test-password", "not-the-password")
    cases = [
        ("postgresql://", "cannot connect to PostgreSQL store"),
        (f"postgresql://mlsm@127.0.0.1:{port}/mlsm", "cannot connect to PostgreSQL store"),
        (wrong_password, "password authentication failed"),
        (f"mongodb://127.0.0.1:{port}/mlsm?serverSelectionTimeoutMS=500", "cannot reach MongoDB store"),
        (f"{mongo_server}", "bad MongoDB store URL"),
        ("mongodb://[bad/x", "bad store URL"),
        ("sqlite://host/x.db", "bad SQLite store URL"),
        ("oracle://x", "unknown store URL"),
    ]
    for url, message in cases:
        result = run_mlsm("run", models, "in.csv", "--id-field", "id", "--store", url, cwd=tmp_path)
        assert result.code == 2, (url, result.err)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (url, result.err)
        assert "not-the-password" not in result.err


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres", "mongo"])
def test_a_server_gone_mid_read_is_one_line_and_exit_2(
    backend: str, request: pytest.FixtureRequest, cli: Callable[..., CliResult]
) -> None:
    url = str(request.getfixturevalue(f"{backend}_url"))
    slots = {"champion": {"1.0": {"score": 0.5}}, "challenger": {"2.0": {"score": 0.25}}}
    ids = [f"{i:05d}" for i in range(3000)] + ["busy"] * 3000  # an export's worth, and one id's long history
    with open_store(url) as store:
        store.write(Documents("id", ids, [make_document("id", i, slots, run="r", timestamp=1) for i in ids], run="r"))
    where = urlsplit(url)
    commands = [
        ("export", "--output", "out.jsonl"),
        ("export", "--output", "out.parquet"),
        ("results", "busy", "--history"),
        ("compare", "champion@1.0", "challenger@2.0"),
    ]
    assert cli("export", "--output", "out.jsonl", "--store", url).code == 0  # an export made before the outage
    earlier = Path("out.jsonl").resolve()  # (cli runs in the test's folder)
    exported = earlier.read_bytes()
    for command in commands:
        # the server answers the opening (a few kB), then goes away in the middle of the documents (~1 MB)
        proxy = CuttingProxy(str(where.hostname), int(where.port or 0), limit=50_000)
        proxied = url.replace(f"{where.hostname}:{where.port}", proxy.address)
        if backend == "mongo":
            proxied += "?serverSelectionTimeoutMS=500"
        result = cli(*command, "--store", proxied)
        assert proxy.received > proxy.limit, command  # the cut came while documents were flowing
        lines = result.err.strip().splitlines()
        assert result.code == 2 and len(lines) == 1, (command, result.err)
        assert lines[0].startswith("mlsm: error: ") and ("unreachable" in lines[0] or "cannot be read" in lines[0])
    # an export is written whole or not at all: the earlier one intact, no partial file left behind
    assert earlier.read_bytes() == exported
    assert sorted(p.name for p in earlier.parent.iterdir() if p.name.startswith((".out", "out"))) == ["out.jsonl"]


# -- read commands read: they never create a store, and read one nobody may write -----------------------------


READ_COMMANDS = [
    ("results", "5"),
    ("export", "--output", "out.jsonl"),
    ("runs",),
    ("compare", "champion@1.0", "challenger@2.0"),
]


def test_read_commands_on_a_store_that_does_not_exist_say_so_and_create_nothing(
    store_url: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    for command in READ_COMMANDS:
        result = cli(*command, "--store", store_url)
        lines = result.err.strip().splitlines()
        assert result.code == 2 and len(lines) == 1 and "no " in lines[0] and "store" in lines[0], (command, result)
        assert result.out == ""
    with pytest.raises(StoreNotFound):  # nothing was created on the way
        open_store(store_url, mode="read")
    assert not (tmp_path / "out.jsonl").exists()
    default = cli("runs")  # the default store, mlsm.db in the working directory
    assert default.code == 2 and "no SQLite store at 'sqlite:///mlsm.db'" in default.err
    assert not (tmp_path / "mlsm.db").exists()


def read_only(folder: Path, *command: str) -> list[str]:
    """``command`` in a mount namespace of its own where ``folder`` is a read-only bind mount (root included)."""
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", script, str(folder), *command]


@pytest.mark.slow
def test_read_commands_read_a_store_in_a_folder_nobody_may_write(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    if subprocess.run(read_only(tmp_path, "true"), capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only bind mount here (needs unshare --mount, as root)")
    folder = tmp_path / "archive"
    folder.mkdir()
    url = f"sqlite:///{folder / 'results.db'}"
    (tmp_path / "in.csv").write_text("id,x\n" + "".join(f"{i},{i}\n" for i in range(1, 21)))
    assert cli("run", write_models(MODELS), "in.csv", "--id-field", "id", "--store", url, "--run-id", "r").code == 0
    # the folder really is read-only for the commands below, root or not
    assert subprocess.run(read_only(folder, "touch", str(folder / "probe")), capture_output=True).returncode != 0
    outputs = {}
    for command in READ_COMMANDS:
        argv = read_only(folder, sys.executable, "-m", "mlsm", *command, "--store", url)
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stderr)
        outputs[command[0]] = done.stdout
    assert json.loads(outputs["results"])["results"]["champion"]["1.0"]["score"] == 0.05
    assert [json.loads(line)["id"] for line in outputs["runs"].splitlines()] == ["r"]
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 20
    assert "Spearman rho" in outputs["compare"]
    assert sorted(p.name for p in folder.iterdir()) == ["results.db"]


def test_the_store_password_is_neither_printed_nor_stored_in_the_run_record(
    tmp_path: Path, write_models: Callable[..., Path], postgres_url: str
) -> None:
    password = urlsplit(postgres_url).password
    assert password
    models = write_models(MODELS)
    (tmp_path / "in.csv").write_text("id,x\n1,1\n2,2\n")
    shown = run_mlsm("run", models, "in.csv", "--id-field", "id", "--store", postgres_url, cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert "store   postgresql://mlsm:***@127.0.0.1:" in shown.out
    as_json = run_mlsm("run", models, "in.csv", "--id-field", "id", "--store", postgres_url, "--json", cwd=tmp_path)
    assert as_json.code == 0, as_json.err
    for result in (shown, as_json):
        assert password not in result.out + result.err
    with open_store(postgres_url, mode="read") as store:
        runs = store.list_runs()
    assert len(runs) == 2
    for run in runs:
        stored = json.dumps(run.to_dict())
        assert password not in stored
        assert run.info["store"].startswith("postgresql://mlsm:***@127.0.0.1:")
