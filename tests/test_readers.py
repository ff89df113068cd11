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


# -- hostile rows: each one a reject, the reading goes on ---------------------------------------------------------


def positions_add_up(chunks: list[Chunk], rows: int) -> bool:
    """Every input row is a scored row or a reject, and the last chunk's resume point is the last row."""
    return sum(len(c) for c in chunks) + len(rejects(chunks)) == rows == chunks[-1].position


def test_json_lines_that_cannot_become_records_are_rejects_and_the_lines_after_them_are_read(tmp_path: Path) -> None:
    path = tmp_path / "input.jsonl"
    lines = [
        json.dumps({"id": "1", "a": "x"}),
        "[" * 100_000 + "]" * 100_000,  # deeper than Python's parser goes
        json.dumps({"id": "3", "a": 7 * 10**4000 // 10**4000}),
        '{"id": "4", "a": ' + "9" * 5000 + "}",  # more digits than Python turns into an int
        '{"id": "5", "a": ' + "[" * 150 + "]" * 150 + "}",  # a value the models read, nested 150 deep
        '{"id": "6", "unread": ' + "[" * 150 + "]" * 150 + "}",  # nested as deep, but no model reads it
        json.dumps({"id": "7"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    chunks = read_all(path, chunk_size=2)
    assert ids(chunks) == ["1", "3", "6", "7"]
    assert rejects(chunks) == [
        (2, "cannot parse: nested too deeply"),
        (4, "cannot parse: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits; "
            "use sys.set_int_max_str_digits() to increase the limit"),
        (5, "field 'a' is nested more than 100 levels deep"),
    ]  # fmt: skip
    assert positions_add_up(chunks, 7)
    for chunk in chunks:  # resuming after any chunk gives exactly the rows after it
        after = [c for c in chunks if c.position > chunk.position]
        assert ids(read_all(path, chunk_size=2, skip=chunk.position)) == ids(after)


def test_text_that_is_not_valid_unicode_in_an_id_or_a_read_field_is_a_reject_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text(
        '{"id": "1", "a": "ok \\ud83d\\ude00"}\n'  # a surrogate pair: an emoji, valid
        '{"id": "2", "a": "bad \\udc00"}\n'
        '{"id": "x\\ud800", "a": "ok"}\n'
        '{"id": "4", "b": ["nested", {"k": "\\udfff"}]}\n'
        '{"id": "5", "unread": "\\udc00"}\n'  # no model reads it: scored
    )
    chunks = read_all(path, chunk_size=10)
    assert ids(chunks) == ["1", "5"]
    assert rejects(chunks) == [
        (2, "field 'a' holds text that is not valid Unicode (lone surrogate \\udc00)"),
        (3, "field 'id' holds text that is not valid Unicode (lone surrogate \\ud800)"),
        (4, "field 'b' holds text that is not valid Unicode (lone surrogate \\udfff)"),
    ]
    assert chunks[0].columns["a"][0] == "ok \U0001f600"


def test_bytes_that_are_not_utf8_make_an_id_a_reject_and_any_other_value_hold_U_FFFD(tmp_path: Path) -> None:
    csv_path = tmp_path / "input.csv"
    csv_path.write_bytes(
        b"id,a,b\n"
        b"1,caf\xe9,1\n"
        b"caf\xe9,x,2\n"  # would become 'caf\ufffd', the id of the last row
        b"\xef\xb7\x90,\xef\xb7\x90 kept,3\n"  # U+FDD0 in the file, as it was
        b"4,trunc \xe2\x82,4\n"
        b"caf\xef\xbf\xbd,y,5\n"  # a real U+FFFD in an id is kept
    )
    chunks = read_all(csv_path, chunk_size=10)
    assert ids(chunks) == ["1", "\ufdd0", "4", "caf\ufffd"]
    assert chunks[0].columns["a"].to_pylist() == ["caf\ufffd", "\ufdd0 kept", "trunc \ufffd", "y"]
    assert rejects(chunks) == [(3, "field 'id' holds bytes that are not valid UTF-8 (b'caf\\xe9')")]

    jsonl_path = tmp_path / "input.jsonl"
    jsonl_path.write_bytes(b'{"id": "caf\xe9"}\n{"id": "2", "a": "caf\xe9"}\n{"id": "caf\xef\xbf\xbd", "a": "\xff"}\n')
    chunks = read_all(jsonl_path, chunk_size=10)
    assert ids(chunks) == ["2", "caf\ufffd"]
    assert chunks[0].columns["a"] == ["caf\ufffd", "\ufffd"]
    assert rejects(chunks) == [(1, "field 'id' holds bytes that are not valid UTF-8 (b'caf\\xe9')")]

    parquet_path = tmp_path / "input.parquet"
    text = pa.array([b"1", b"caf\xe9", b"3"], pa.binary()).view(pa.string())  # Parquet does not check its strings
    pq.write_table(pa.table({"id": text, "a": text, "b": ["1", "2", "3"]}), parquet_path)
    chunks = read_all(parquet_path, chunk_size=10)
    assert ids(chunks) == ["1", "3"]
    assert rejects(chunks) == [(2, "field 'id' holds bytes that are not valid UTF-8 (b'caf\\xe9')")]
    assert chunks[0].columns["a"].to_pylist() == ["1", "3"]


def test_a_csv_field_larger_than_pyarrows_block_is_read_and_so_is_every_row_after_it(tmp_path: Path) -> None:
    path = tmp_path / "input.csv"
    big, bigger = "x" * 300_000, "y" * 2_000_000  # pyarrow reads 256 KiB blocks
    rows = ["1,a,1", f"2,{big},2", "3,b", "", f'4,"{bigger}\nwith, a line break",4', "5,c,5,extra", "6,d,6"]
    path.write_text("id,a,b\r\n" + "\r\n".join(rows) + "\r\n")
    chunks = read_all(path, chunk_size=2)
    assert ids(chunks) == ["1", "2", "4", "6"]
    values = [v for c in chunks for v in c.columns["a"].to_pylist()]
    assert values == ["a", big, f"{bigger}\nwith, a line break", "d"]
    assert rejects(chunks) == [
        (4, "cannot parse: 2 fields where the header has 3"),
        (6, "cannot parse: 4 fields where the header has 3"),
    ]  # the blank line is no record, as everywhere in CSV
    assert positions_add_up(chunks, 6)
    for chunk in chunks:
        rest = read_all(path, chunk_size=2, skip=chunk.position)
        assert ids(rest) == ids([c for c in chunks if c.position > chunk.position])
        assert rejects(rest) == rejects([c for c in chunks if c.position > chunk.position])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.slow
def test_a_row_over_the_size_limit_is_a_reject_read_past_in_bounded_memory(tmp_path: Path, fmt: str) -> None:
    import tracemalloc

    limit = 64 * 1024 * 1024  # readers.MAX_ROW_BYTES
    path = tmp_path / f"input.{fmt}"
    huge = b"z" * (2 * limit)
    with open(path, "wb") as handle:
        if fmt == "csv":
            handle.write(b"id,a,b\n1,x,1\n2," + huge + b",2\n3,y,3\n")
        else:
            handle.write(b'{"id": "1"}\n{"id": "2", "a": "' + huge + b'"}\n{"id": "3"}\n')
    del huge
    tracemalloc.start()
    try:
        chunks = read_all(path, chunk_size=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ids(chunks) == ["1", "3"]
    ((line, reason),) = rejects(chunks)
    assert line == 3 if fmt == "csv" else line == 2
    assert "longer than 67,108,864 bytes" in reason
    assert len(chunks[0].rejects[0].record) <= 1000  # its start, to show what it was
    assert peak < 1.5 * limit  # up to the limit, it might have been a row to score; never the whole of it


def test_a_header_naming_a_column_the_run_reads_twice_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "input.csv"
    path.write_text("id,a,b,a,,\n1,x,2,y,,\n")
    with pytest.raises(InputError, match=r"the header names column 'a' 2 times \(columns 2, 4\)"):
        open_input(path, id_field="id", fields=["a", "b"])
    assert ids(list(open_input(path, id_field="id", fields=["b"]))) == ["1"]  # '' twice and 'a' twice: unread
    with pytest.raises(InputError, match="the header names column 'id' 2 times"):
        (tmp_path / "ids.csv").write_text("id,id\n1,2\n")
        open_input(tmp_path / "ids.csv", id_field="id")
    parquet = tmp_path / "input.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["1"]), pa.array(["x"]), pa.array(["y"])], ["id", "a", "a"]), parquet)
    with pytest.raises(InputError, match="the header names column 'a' 2 times"):
        open_input(parquet, id_field="id", fields=["a"])


def test_a_damaged_parquet_row_group_makes_its_rows_rejects_and_the_other_groups_are_read(tmp_path: Path) -> None:
    path = tmp_path / "input.parquet"
    table = pa.table({"id": [str(i) for i in range(1, 31)], "a": [f"v{i}" * 50 for i in range(1, 31)]})
    pq.write_table(table, path, row_group_size=10, compression="snappy", use_dictionary=False)
    column = pq.ParquetFile(path).metadata.row_group(1).column(1)
    data = bytearray(path.read_bytes())
    start, stop = column.data_page_offset + 24, column.data_page_offset + column.total_compressed_size
    data[start:stop] = bytes(stop - start)  # the middle group's compressed values, not the footer
    path.write_bytes(bytes(data))
    chunks = read_all(path, chunk_size=4)
    assert ids(chunks) == [str(i) for i in [*range(1, 11), *range(21, 31)]]
    assert [line for line, _ in rejects(chunks)] == list(range(11, 21))
    assert rejects(chunks)[0][1].startswith("cannot read: row group 2 of the file is damaged (")
    assert positions_add_up(chunks, 30)


def test_rejects_are_cut_into_chunks_so_a_file_of_bad_lines_streams(tmp_path: Path) -> None:
    path = tmp_path / "input.jsonl"
    path.write_text("not json\n" * 25 + '{"id": "1"}\n')
    chunks = read_all(path, chunk_size=10)
    assert [len(c.rejects) for c in chunks] == [10, 10, 5]
    assert ids(chunks) == ["1"] and positions_add_up(chunks, 26)


def test_json_lines_ended_by_a_carriage_return_alone_are_lines(tmp_path: Path) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes(b'{"id": "1"}\r{"id": "2"}\r\n\r{"id": "3"}\nbad\r')
    chunks = read_all(path, chunk_size=10)
    assert ids(chunks) == ["1", "2", "3"]
    assert [line for line, _ in rejects(chunks)] == [5]


def test_a_reject_is_always_one_line_of_valid_json() -> None:
    from mlsm.readers import Reject

    def no_constants(name: str) -> None:
        raise AssertionError(f"bare {name} in a rejects line")

    record = {
        "nan": float("nan"),
        "inf": [float("inf"), -float("inf")],
        "surrogate": "a\udc00b",
        "bytes": b"\xff",
        "deep": json.loads("[" * 300 + "]" * 300),
        "big": 10**100,
    }
    line = Reject(3, "reason \udcff", record, file="in\udc80.jsonl").to_json()
    assert "\n" not in line
    line.encode("utf-8")  # valid UTF-8: no lone surrogate left
    back = json.loads(line, parse_constant=no_constants)
    assert back["record"]["nan"] is None and back["record"]["inf"] == [None, None]
    assert back["record"]["surrogate"] == "a\ufffdb" and back["reason"] == "reason \ufffd"
    assert back["record"]["bytes"] == "b'\\xff'" and back["record"]["big"] == 10**100
    depth, value = 0, back["record"]["deep"]
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    assert depth == 99 and value == "(nested more than 100 levels)"


@pytest.mark.slow
def test_pyarrow_reads_on_after_python_read_past_a_large_csv_record(tmp_path: Path) -> None:
    path = tmp_path / "input.csv"
    small = [f"{i},v{i},{i}" for i in range(150_000)]  # more than the stretch Python's csv module reads
    big = "z" * 2_000_000
    rows = ["a,first,1", f"b,{big},2", *small, "c,x", f"d,{big},4", *small[:10], "e,last,5"]
    path.write_text("id,a,b\n" + "\n".join(rows) + "\n")
    chunks = read_all(path, chunk_size=20_000)
    expected = ["a", "b", *(str(i) for i in range(150_000)), "d", *(str(i) for i in range(10)), "e"]
    assert ids(chunks) == expected
    assert rejects(chunks) == [(150_004, "cannot parse: 2 fields where the header has 3")]  # "c,x"
    assert positions_add_up(chunks, len(rows))
    for chunk in chunks[::3]:
        after = [c for c in chunks if c.position > chunk.position]
        rest = read_all(path, chunk_size=20_000, skip=chunk.position)
        assert ids(rest) == ids(after) and rejects(rest) == rejects(after)
