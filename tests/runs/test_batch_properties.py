"""Properties of batch runs on hostile input: random bytes, random JSON lines, random CSV text.

Whatever a file holds, no exception escapes a run (a file with no usable header is one ``InputError`` before it
starts), every input row is scored (a document in a real SQLite store) or rejected with its line number and a
reason, every rejects line is valid JSON, and ``--resume`` after the run completed adds nothing.
"""

from __future__ import annotations

import codecs
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsm import Engine, Field, InputError, Model, open_store
from mlsm.runs import RunOptions, run_batch
from mlsm.stores.base import Store

from ..conftest import CliResult


def score(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"length": len(data["a"] or ""), "n": data["n"]}


ENGINE = Engine([Model("m", {"a": Field(str, required=False), "n": Field(int, required=False)}, "1", score)])
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One real SQLite store for every example (each run has its own id)."""
    with open_store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'results.db'}?synchronous=off") as opened:
        yield opened


def no_constants(name: str) -> None:
    raise AssertionError(f"bare {name} in a rejects line")


def json_lines(path: Path) -> list[str]:
    """The lines of a JSON lines file we wrote: split at \\n only (a JSON string may hold U+2028 or U+0085)."""
    text = path.read_bytes().decode("utf-8")
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1]


def check_run(
    store: Store, folder: Path, name: str, data: bytes, chunk_size: int
) -> tuple[Any, list[dict[str, Any]], list[str]]:
    """Run ``data`` (a file called ``name``) through ``run_batch`` and check the invariants; the run's counts, its
    rejects and the ids it scored, or None when the file has no usable header (a setup error, before the run)."""
    work = Path(tempfile.mkdtemp(dir=folder))
    path = work / name
    path.write_bytes(data)
    run_id = uuid.uuid4().hex
    options = RunOptions(
        str(path), "id", run_id=run_id, chunk_size=chunk_size, progress=False,
        output=str(work / "out.jsonl"), rejects=str(work / "rejects.jsonl"),
    )  # fmt: skip
    try:
        result = run_batch(ENGINE, store, options)
    except InputError:
        assert store.get_run(run_id) is None  # refused before the run was registered
        return None, [], []
    counts = result.counts
    documents = list(store.run_documents(run_id))
    output = json_lines(work / "out.jsonl")
    rejected = [json.loads(line, parse_constant=no_constants) for line in json_lines(work / "rejects.jsonl")]
    assert counts.scored == len(documents) == len(output)
    assert counts.rejected == len(rejected)
    assert counts.read == counts.scored + counts.rejected == result.run.rows
    assert all(isinstance(r["line"], int) and r["line"] >= 1 and r["reason"] for r in rejected)
    assert len({r["line"] for r in rejected}) == len(rejected)  # one reject per row
    again = run_batch(ENGINE, store, RunOptions(**{**options.__dict__, "resume": True}))
    assert again.counts.to_dict() == counts.to_dict()
    assert again.scored_now == 0 and len(list(store.run_documents(run_id))) == len(documents)
    assert json_lines(work / "out.jsonl") == output
    return counts, rejected, [document["id"] for document in documents]


# -- random bytes ---------------------------------------------------------------------------------------------------


def input_lines(data: bytes) -> list[int]:
    """The numbers of a JSON lines file's lines that are not blank: lines end at \\n, \\r\\n or \\r, as Python's
    text files split them, and a BOM starts the file."""
    lines = data.removeprefix(codecs.BOM_UTF8).splitlines()
    return [number for number, line in enumerate(lines, 1) if line.decode("utf-8", "replace").strip()]


@SETTINGS
@given(data=st.binary(max_size=2000), fmt=st.sampled_from(["csv", "jsonl", "parquet"]), header=st.booleans())
def test_random_bytes_never_break_a_run(store: Store, tmp_path: Path, data: bytes, fmt: str, header: bool) -> None:
    if header and fmt == "csv":
        data = b"id,a,n\n" + data  # past the header, so that the rows are what is random
    counts, rejected, _ = check_run(store, tmp_path, f"input.{fmt}", data, chunk_size=3)
    if fmt == "jsonl":
        assert counts.read == len(input_lines(data)) and {r["line"] for r in rejected} <= set(input_lines(data))


# -- random JSON lines ------------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
    st.text(alphabet=st.characters(), max_size=4),  # lone surrogates among them
    st.integers(min_value=10**20, max_value=10**40),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def json_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["object", "object", "object", "garbage", "deep", "value", "constants", "blank"]))
    if kind == "object":
        record = draw(st.dictionaries(st.sampled_from(["id", "a", "n", "other"]), values, max_size=4))
        text = json.dumps(record, ensure_ascii=draw(st.booleans()))
    elif kind == "garbage":
        return draw(st.binary(max_size=40)).replace(b"\n", b" ").replace(b"\r", b" ")
    elif kind == "deep":
        depth = draw(st.sampled_from([99, 101, 990, 2_000, 50_000]))
        text = '{"id": "d", "a": ' + "[" * depth + "]" * depth + "}"
    elif kind == "value":
        text = json.dumps(draw(values))
    elif kind == "constants":
        constant = draw(st.sampled_from(["NaN", "Infinity", "1e400", "-0.0", "42.0"]))
        text = f'{{"id": {constant}, "n": NaN}}'
    else:
        text = draw(st.sampled_from(["", "  ", "\t", "\u3000"]))
    data = text.encode("utf-8", "surrogatepass")  # a raw surrogate is written as the bytes no decoder accepts
    if draw(st.integers(0, 9)) == 0:
        data = data.replace(b'"', b'"\xff', 1)  # a byte that is not UTF-8, in a string
    return data


@SETTINGS
@given(
    lines=st.lists(json_line(), max_size=12),
    ends=st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=12, max_size=12),
    bom=st.booleans(),
    chunk_size=st.integers(1, 5),
)
@pytest.mark.slow
def test_random_json_lines_every_line_scored_or_rejected(
    store: Store, tmp_path: Path, lines: list[bytes], ends: list[bytes], bom: bool, chunk_size: int
) -> None:
    data = (codecs.BOM_UTF8 if bom else b"") + b"".join(line + end for line, end in zip(lines, ends))
    counts, rejected, _ = check_run(store, tmp_path, "input.jsonl", data, chunk_size)
    rows = input_lines(data)  # every line that is not blank is an input row
    assert counts.read == len(rows)
    assert {r["line"] for r in rejected} <= set(rows)


# -- random CSV text --------------------------------------------------------------------------------------------------

cell_text = st.text(alphabet=st.characters(), max_size=10) | st.sampled_from(
    ['"', ",", "\n", "\r\n", '""', "a,b", "caf\udce9", "\ufdd0", "\ufffd"]  # \udce9: written as a byte not UTF-8
)
BIG = ["<300 KB of x>", "<1.2 MB of x>"]
good_id = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)


def quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@st.composite
def csv_row(draw: st.DrawFn) -> tuple[list[str], str | None]:
    """A row as CSV text fields (quoted as a writer quotes them), and its id when it must be scored."""
    width = draw(st.sampled_from([3, 3, 3, 3, 2, 4]))
    good = draw(good_id) if width == 3 and draw(st.booleans()) else None
    cells = [good if good is not None else draw(cell_text)] + [draw(cell_text) for _ in range(width - 1)]
    if draw(st.integers(0, 14)) == 0:
        cells[1] = draw(st.sampled_from(BIG))  # over pyarrow's 256 KiB block; over two: read by Python's csv module
    fields = [quoted(c) if any(ch in c for ch in ',"\r\n') or c.strip() != c or c == "" else c for c in cells]
    return fields, good


@SETTINGS
@given(
    rows=st.lists(csv_row(), max_size=10),
    blank=st.lists(st.booleans(), min_size=10, max_size=10),
    end=st.sampled_from(["\n", "\r\n"]),
    chunk_size=st.integers(1, 4),
)
@pytest.mark.slow
def test_random_csv_every_row_scored_or_rejected(
    store: Store, tmp_path: Path, rows: list[tuple[list[str], str | None]], blank: list[bool], end: str, chunk_size: int
) -> None:
    lines = ["id,a,n"]
    for (fields, _), blank_before in zip(rows, blank):
        lines += [""] * blank_before + [",".join(fields)]  # blank lines are no records
    text = (end.join(lines) + end).replace(BIG[0], "x" * 300_000).replace(BIG[1], "x" * 1_200_000)
    data = text.encode("utf-8", "surrogatepass")  # a surrogate: bytes that are not UTF-8
    counts, rejected, scored = check_run(store, tmp_path, "input.csv", data, chunk_size)
    assert counts.read == len(rows)
    wrong_width = {number for number, (fields, _) in enumerate(rows, 2) if len(fields) != 3}
    assert wrong_width <= {r["line"] for r in rejected} <= set(range(2, len(rows) + 2))
    must = [good for _, good in rows if good is not None]
    remaining = iter(scored)
    assert all(any(i == good for i in remaining) for good in must)  # each row with 3 fields and a plain id, in order


# -- one real command line ------------------------------------------------------------------------------------------


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(json_line(), min_size=1, max_size=8))
def test_mlsm_run_on_random_json_lines_exits_0_and_resumes_to_nothing(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path, lines: list[bytes]
) -> None:
    write_models("from mlsm import Field, Model\nm = Model('m', {'a': Field(str, required=False)}, '1', "
                 "lambda data, results: {'ok': True})\n")  # fmt: skip
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    run_id = uuid.uuid4().hex
    args = ["run", "models.py", "in.jsonl", "--id-field", "id", "--run-id", run_id, "--rejects", "rejects.jsonl"]
    first = cli(*args, "--chunk-size", "2")
    assert first.code == 0, first.err
    summary = next(line for line in first.out.splitlines() if "records read" in line)
    again = cli(*args, "--chunk-size", "2", "--resume")
    assert again.code == 0, again.err
    assert summary in again.out  # the same counts: nothing added
    for line in json_lines(tmp_path / "rejects.jsonl"):
        json.loads(line, parse_constant=no_constants)
