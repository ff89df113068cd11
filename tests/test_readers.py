"""Readers: CSV, JSON lines and Parquet in chunks, rejects with line numbers, resuming with skip, streaming."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlsm import InputError, UnknownIdField
from mlsm.readers import Chunk, expand_inputs, open_input, open_inputs


def read_all(path: Path, **kwargs: object) -> list[Chunk]:
    return list(open_input(path, **{"id_field": "id", "fields": ["a", "b"], "chunk_size": 2, **kwargs}))  # type: ignore[arg-type]


def ids(chunks: list[Chunk]) -> list[str]:
    return [i for c in chunks for i in c.ids]


def rejects(chunks: list[Chunk]) -> list[tuple[int, str]]:
    return [(r.line, r.reason) for c in chunks for r in c.rejects]


def test_csv_in_chunks_with_columns_as_text(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        id,a,b,unused
        1,x,10,u
        2,y,,u
        3,z,30,u
        """
    )
    chunks = read_all(path)
    assert [len(c) for c in chunks] == [2, 1]
    assert ids(chunks) == ["1", "2", "3"]
    assert chunks[0].columns["a"].to_pylist() == ["x", "y"]
    assert chunks[0].columns["b"].to_pylist() == ["10", ""]
    assert "unused" not in chunks[0].columns
    assert [c.position for c in chunks] == [2, 3]


def test_csv_malformed_lines_and_missing_ids_are_rejects_with_line_numbers(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        id,a,b
        1,x,10
        2,y,20,extra
        ,z,30
        4,w
        5,"quoted, comma",50
        """
    )
    chunks = read_all(path, chunk_size=10)
    assert ids(chunks) == ["1", "5"]
    assert rejects(chunks) == [
        (3, "cannot parse: 4 fields where the header has 3"),
        (4, "no id: field 'id' is empty"),
        (5, "cannot parse: 2 fields where the header has 3"),
    ]
    by_line = {r.line: r.record for c in chunks for r in c.rejects}
    assert by_line[3] == "2,y,20,extra"
    assert by_line[4] == {"id": "", "a": "z", "b": "30"}
    assert chunks[-1].columns["a"].to_pylist() == ["x", "quoted, comma"]


def test_csv_with_bom_and_bad_bytes_still_reads_every_record(tmp_path: Path) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(b"\xef\xbb\xbfid,a,b\n1,caf\xe9,1\n2,ok,2\n")
    chunks = read_all(path)
    assert ids(chunks) == ["1", "2"]
    assert chunks[0].columns["a"].to_pylist() == ["caf\ufffd", "ok"]


def test_unknown_id_field_names_the_columns(write_csv: Callable[..., Path]) -> None:
    path = write_csv("id,a\n1,2\n")
    with pytest.raises(
        UnknownIdField, match=r"id field 'lead' is not a column of .*input.csv'; its columns are: 'id', 'a'"
    ):
        open_input(path, id_field="lead")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("input.xlsx", "x", "unknown extension '.xlsx'; valid extensions are: "),
        ("empty.csv", "", "the file is empty"),
        ("bad.parquet", "not parquet", "not a readable Parquet file"),
    ],
)
def test_unreadable_inputs_are_one_clear_error(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        open_input(path, id_field="id")


def test_json_lines_with_bad_lines_and_ids_of_any_json_type(tmp_path: Path) -> None:
    path = tmp_path / "input.jsonl"
    lines = [
        json.dumps({"id": 1, "a": 5}),
        "{not json",
        "",
        json.dumps([1, 2]),
        json.dumps({"a": 1}),
        json.dumps({"id": "x7", "b": "2"}),
        json.dumps({"id": 3.0}),
    ]
    path.write_text("\n".join(lines) + "\n")
    chunks = read_all(path, chunk_size=10)
    assert ids(chunks) == ["1", "x7", "3"]
    assert [line for line, _ in rejects(chunks)] == [2, 4, 5]
    assert rejects(chunks)[0][1].startswith("cannot parse: Expecting property name")
    assert rejects(chunks)[1][1] == "not a JSON object: got list"
    assert rejects(chunks)[2][1] == "no id: field 'id' is missing or empty"
    assert chunks[0].columns["a"][:2] == [5, chunks[0].columns["a"][1]]


def test_parquet_reads_typed_columns_a_batch_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "input.parquet"
    table = pa.table({"id": [1, 2, None, 4, 5], "a": ["x", None, "z", "w", "v"], "b": [1.5, 2.0, 3.0, None, 5.0]})
    pq.write_table(table, path, row_group_size=2)
    chunks = read_all(path)
    assert ids(chunks) == ["1", "2", "4", "5"]
    assert rejects(chunks) == [(3, "no id: field 'id' is empty")]
    assert chunks[0].columns["b"].type == pa.float64()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_skip_resumes_exactly_after_a_position_rejects_included(tmp_path: Path, fmt: str) -> None:
    rows = [{"id": str(i) if i % 4 else "", "a": f"v{i}", "b": str(i)} for i in range(1, 12)]
    path = tmp_path / f"input.{fmt}"
    if fmt == "csv":
        path.write_text("id,a,b\n" + "".join(f"{r['id']},{r['a']},{r['b']}\n" for r in rows))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    whole = read_all(path, chunk_size=3)
    for chunk in whole:
        rest = read_all(path, chunk_size=3, skip=chunk.position)
        after = [c for c in whole if c.position > chunk.position]
        assert ids(rest) == ids(after)
        assert rejects(rest) == rejects(after)
    assert sum(len(c) for c in whole) + len(rejects(whole)) == len(rows) == whole[-1].position


def test_reading_streams_without_loading_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with open(path, "w") as handle:
        handle.write("id,a,b\n")
        handle.writelines(f"{i},{'x' * 20},{i}\n" for i in range(1_000_000))
    reader = open_input(path, id_field="id", fields=["a"], chunk_size=1000)
    first = next(iter(reader))
    assert len(first) == 1000
    assert first.bytes_read < reader.size / 2  # a bounded read-ahead, not the whole file


# -- several files as one input -----------------------------------------------------------------------------------


def write_parts(folder: Path) -> list[Path]:
    """Three files of different formats, with rejects, and a file of another kind that is not input."""
    folder.mkdir()
    (folder / "a.csv").write_text("id,a,b\n1,x,1\n,y,2\n2,z,3,extra\n3,w,4\n")
    (folder / "b.jsonl").write_text('{"id": "4", "a": "v"}\nnot json\n{"id": "5"}\n')
    pq.write_table(pa.table({"id": ["6", None, "7"], "a": ["p", "q", "r"], "b": ["1", "2", "3"]}), folder / "c.parquet")
    (folder / "notes.txt").write_text("not an input")
    return [folder / "a.csv", folder / "b.jsonl", folder / "c.parquet"]


def test_a_directory_is_its_input_files_read_in_name_order_as_one_input(tmp_path: Path) -> None:
    files = write_parts(tmp_path / "in")
    assert expand_inputs(tmp_path / "in") == files  # notes.txt is not an input file
    chunks = list(open_inputs(tmp_path / "in", id_field="id", fields=["a", "b"], chunk_size=2))
    assert ids(chunks) == ["1", "3", "4", "5", "6", "7"]
    # positions count across files: 4 rows in a.csv, 3 in b.jsonl, 3 in c.parquet
    assert chunks[-1].position == 10
    named = [(r.file, r.line, r.reason.split(":")[0]) for c in chunks for r in c.rejects]
    assert named == [
        (str(files[0]), 3, "no id"),
        (str(files[0]), 4, "cannot parse"),
        (str(files[1]), 2, "cannot parse"),
        (str(files[2]), 2, "no id"),
    ]
    assert [r.to_dict()["file"] for c in chunks for r in c.rejects][:1] == [str(files[0])]
    for chunk in chunks:  # a chunk never spans two files
        assert len({r.file for r in chunk.rejects}) <= 1


def test_skipping_across_file_boundaries_leaves_exactly_the_rows_after_it(tmp_path: Path) -> None:
    write_parts(tmp_path / "in")

    def rows_after(skip: int) -> list[str]:
        chunks = open_inputs(tmp_path / "in", id_field="id", fields=["a"], chunk_size=2, skip=skip)
        return [*ids(list(chunks))]

    # each scored row's input position (rejected rows take positions too): a.csv 1-4, b.jsonl 5-7, c.parquet 8-10
    positions = {"1": 1, "3": 4, "4": 5, "5": 7, "6": 8, "7": 10}
    for skip in range(11):  # every resume point, in every file and on every boundary
        assert rows_after(skip) == [i for i, p in positions.items() if p > skip], skip


def test_a_glob_names_its_files_and_an_empty_match_is_one_line(tmp_path: Path) -> None:
    files = write_parts(tmp_path / "in")
    assert expand_inputs(str(tmp_path / "in" / "*.csv")) == files[:1]
    assert expand_inputs(str(tmp_path / "in" / "[ab].*")) == files[:2]
    with pytest.raises(InputError, match="no CSV, JSON lines or Parquet files there"):
        expand_inputs(str(tmp_path / "in" / "*.tsv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no CSV, JSON lines or Parquet files there"):
        open_inputs(tmp_path / "empty", id_field="id")


def test_a_bad_file_among_several_is_named_before_anything_is_read(tmp_path: Path) -> None:
    write_parts(tmp_path / "in")
    (tmp_path / "in" / "d.csv").write_text("lead,a\n1,2\n")
    with pytest.raises(UnknownIdField, match=r"id field 'id' is not a column of '.*d\.csv'"):
        open_inputs(tmp_path / "in", id_field="id")
