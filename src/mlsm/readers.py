"""Streaming readers for CSV, JSON lines and Parquet: chunks of columns, plus rejects, in bounded memory.

``open_input(path, id_field=..., chunk_size=...)`` picks the format by extension and yields :class:`Chunk`s of at
most ``chunk_size`` rows. A line that cannot be parsed (a CSV row with more or fewer fields than the header,
a JSON line that is not an object) and a row without an id are not scored: they become :class:`Reject`s with
their line number and reason, and the reading goes on.

Line numbers count the header as line 1 (CSV) or the first line as line 1 (JSON lines); for Parquet they are row
numbers from 1. In a CSV file with blank lines or line breaks inside quoted values, a line number counts records,
not physical lines.

No row stops a reading: a line or record longer than :data:`MAX_ROW_BYTES`, a JSON line nested too deeply, an id
holding bytes that are not UTF-8, an id or a field the models read holding text that is not valid Unicode (the rule
of :mod:`mlsm.unicode`), a damaged Parquet row group: each is a reject and the rows after it are read. Bytes that are
not UTF-8 in any other value become U+FFFD, as Python's ``errors="replace"`` decodes them (an id is never changed:
two different ids could become one). A CSV record too large for pyarrow's blocks is read, with the megabyte after
it, by Python's ``csv`` module, and pyarrow reads on: same rows, same numbers. A header naming the id field or a
field the models read twice is an ``InputError`` when the file is opened.

``skip`` drops the first ``skip`` input rows (scored or rejected): this is how a run resumes after its last
committed chunk.

``open_inputs(spec, ...)`` also takes a directory or a glob: its files (sorted by name) are read one after another
as one input, positions counting across them, each reject naming its file.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import json
import math
import numbers as _numbers
import os
import re
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from mlsm.errors import InputError, InvalidId, UnknownIdField
from mlsm.fields import MISSING, show_value
from mlsm.ids import _WHITESPACE as _ID_WHITESPACE  # the one rule's whitespace, for ids checked in Arrow
from mlsm.ids import MAX_ID_LENGTH, normalize_id
from mlsm.unicode import record_text_problem

__all__ = [
    "FORMATS",
    "MAX_ROW_BYTES",
    "Chunk",
    "CsvReader",
    "JsonLinesReader",
    "ParquetReader",
    "Reader",
    "Reject",
    "SeveralFiles",
    "expand_inputs",
    "open_input",
    "open_inputs",
]

# CSV block size: pyarrow reads a few dozen blocks ahead, so this bounds a run's input buffering (~10 MB).
_BLOCK = 256 * 1024

#: The longest line (JSON lines) or record (CSV) read; a longer one is a reject, read past without being held.
MAX_ROW_BYTES = 64 * 1024 * 1024
# A chunk is cut early once its rows or its rejects hold this much, so memory stays bounded whatever the rows hold.
_CHUNK_BYTES = 256 * 1024 * 1024
_REJECT_BYTES = 64 * 1024 * 1024
# How much of a row too long to read a reject keeps, to show what it was.
_HEAD = 1000
# The deepest nesting of a value the models read (JSON lines), and of a record written to --rejects.
_NESTING = 100
# How much of a CSV file Python's csv module reads after a record pyarrow could not, before pyarrow reads on.
_STRETCH = 1024 * 1024

#: Input formats by file extension.
FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass
class Reject:
    """An input row that was not scored: where it is, why, and what it held."""

    line: int
    reason: str
    record: Any
    file: str | None = None  # when the input names several files

    @property
    def where(self) -> int | str:
        """The line number, or ``file:line`` when the input names several files (run summaries list these)."""
        return self.line if self.file is None else f"{self.file}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON line written to ``--rejects``, as plain JSON values (see :meth:`to_json`)."""
        where = {"file": _plain(self.file)} if self.file is not None else {}
        return {**where, "line": self.line, "reason": _plain(self.reason), "record": _plain(self.record)}

    def to_json(self) -> str:
        """The line written to ``--rejects``: always valid JSON in valid UTF-8. NaN and infinities become null (as
        JavaScript's ``JSON.stringify`` writes them), text that is not valid Unicode gets U+FFFD (the reason says what
        it held), values JSON has no type for (bytes, dates) their ``str()``, and nesting below 100 levels a note."""
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)


@dataclass
class Chunk:
    """Rows to score, as columns by field name, with their ids; and the rejects found among them."""

    columns: dict[str, Any]
    ids: list[str]
    rejects: list[Reject] = field(default_factory=list)
    position: int = 0  # input rows consumed once this chunk is done (the resume point)
    bytes_read: int = 0
    lines: list[int] = field(default_factory=list)  # each row's line number, as a reject would give it

    def __len__(self) -> int:
        return len(self.ids)


class Reader:
    """An input file opened for streaming. ``columns`` lists the fields the file offers; ``rows``, once the
    iteration is over, how many input rows (scored and rejected) the file held."""

    format: str
    path: Path
    size: int | None
    columns: list[str] | None
    skip: int
    rows: int = 0

    def __iter__(self) -> Iterator[Chunk]:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError


def open_input(
    path: str | os.PathLike[str],
    *,
    id_field: str,
    fields: list[str] | None = None,
    chunk_size: int = 10_000,
    skip: int = 0,
) -> Reader:
    """Open ``path`` for streaming; ``InputError`` (one clear line) when it cannot be read."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot read input {str(path)!r}: unknown extension {path.suffix!r}; "
            f"valid extensions are: {', '.join(sorted(FORMATS))}"
        )
    if not path.exists():
        raise InputError(f"cannot read input {str(path)!r}: no such file")
    if path.is_dir():
        raise InputError(f"cannot read input {str(path)!r}: it is a directory, not a file")
    if chunk_size < 1:
        raise InputError(f"invalid chunk size {chunk_size}: it must be at least 1")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read input {str(path)!r}: {exc.strerror}") from exc
    cls = {"csv": CsvReader, "jsonl": JsonLinesReader, "parquet": ParquetReader}[fmt]
    return cls(path, id_field=id_field, fields=fields, chunk_size=chunk_size, skip=skip)


def expand_inputs(spec: str | os.PathLike[str]) -> list[Path]:
    """The input files a path, a directory or a glob names (a directory's or glob's sorted by name); ``InputError``
    when a directory or glob names none."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FORMATS)
    elif any(char in text for char in "*?[") and not path.exists():
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    else:
        return [path]
    if not files:
        raise InputError(f"cannot read input {text!r}: no CSV, JSON lines or Parquet files there")
    return files


def open_inputs(
    spec: str | os.PathLike[str],
    *,
    id_field: str,
    fields: list[str] | None = None,
    chunk_size: int = 10_000,
    skip: int = 0,
) -> Reader:
    """``open_input`` for a file, a directory or a glob: several files are read in order as one input."""
    files = expand_inputs(spec)
    if len(files) == 1:
        return open_input(files[0], id_field=id_field, fields=fields, chunk_size=chunk_size, skip=skip)
    return SeveralFiles(files, id_field=id_field, fields=fields, chunk_size=chunk_size, skip=skip)


class SeveralFiles(Reader):
    """Files read one after another as one input: a chunk never spans two files, positions (the resume point)
    count across files, and a reject names its file beside its line number in that file."""

    format = "several"

    def __init__(
        self, files: list[Path], *, id_field: str, fields: list[str] | None, chunk_size: int, skip: int
    ) -> None:
        self.files = files
        self.path = files[0]  # the first; ``files`` lists them all
        self._options: dict[str, Any] = {"id_field": id_field, "fields": fields, "chunk_size": chunk_size}
        self.skip = skip
        self.size = 0
        for file in files:  # every file's problems (format, header, id field) before any work
            self.size += open_input(file, **self._options).size or 0
        self.columns = None

    def __iter__(self) -> Iterator[Chunk]:
        done_rows = done_bytes = 0
        for file in self.files:
            part = open_input(file, **self._options, skip=max(0, self.skip - done_rows))
            for chunk in part:
                chunk.position += done_rows
                chunk.bytes_read += done_bytes
                for reject in chunk.rejects:
                    reject.file = str(file)
                yield chunk
            done_rows += part.rows
            done_bytes += part.size or 0
        self.rows = done_rows


# -- text: bytes that are not UTF-8 carried through pyarrow as marks -------------------------------------------------
#
# pyarrow needs valid UTF-8, and Python's ``errors="replace"`` would make an id with a bad byte look like another id
# that holds U+FFFD. So bad bytes travel as marks: the noncharacter U+FDD0 followed by the byte as a character
# (U+0080-U+00FF), a U+FDD0 that was in the file doubled. ``_repaired`` reads them back: an id holding one is a reject
# naming its bytes, any other value is decoded with ``errors="replace"``. Files without bad bytes never pay for this.

_MARK = "\ufdd0"
_SURROGATES = re.compile("[\udc80-\udcff]")  # how errors="surrogateescape" decodes bad bytes
_LONE_SURROGATES = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")  # the only way JSON text spells a lone surrogate
_BOM = codecs.BOM_UTF8


def _mark_byte(match: re.Match[str]) -> str:
    return _MARK + chr(ord(match.group()) - 0xDC00)


def _marked(text: str) -> str:
    """Text decoded with ``surrogateescape`` as valid text: marks doubled, each bad byte as a mark and the byte."""
    if _MARK in text:
        text = text.replace(_MARK, _MARK + _MARK)
    return _SURROGATES.sub(_mark_byte, text)


def _decoded(data: bytes) -> str:
    """Bytes as (marked) text: see ``_marked``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _marked(data.decode("utf-8", "surrogateescape"))
    return text if text.isascii() or _MARK not in text else text.replace(_MARK, _MARK + _MARK)


def _unmarked(text: str) -> bytes:
    """The bytes a marked text was read from."""
    out = bytearray()
    start = 0
    while (at := text.find(_MARK, start)) >= 0:
        out += text[start:at].encode("utf-8")
        after = text[at + 1 : at + 2]
        out += _MARK.encode("utf-8") if after == _MARK else bytes([ord(after) & 0xFF]) if after else b""
        start = at + 2
    out += text[start:].encode("utf-8")
    return bytes(out)


def _shown(name: str) -> str:
    """A (marked) column name as text to show: bad bytes as U+FFFD."""
    return name if _MARK not in name else _unmarked(name).decode("utf-8", "replace")


def _repaired(batch: Any, id_field: str, *, marked: bool) -> tuple[Any, dict[int, bytes]]:
    """A record batch whose text is valid, and the rows whose id holds bytes that are not UTF-8 (with those bytes).

    ``marked``: the batch holds marks (CSV, see above); otherwise string columns are checked for invalid UTF-8
    (Parquet does not check what it stores). A column that is fine is kept as it is."""
    import pyarrow as pa
    import pyarrow.compute as pc

    bad_ids: dict[int, bytes] = {}
    arrays, changed = [], False
    for name, column in zip(batch.schema.names, batch.columns):
        raws: list[bytes | None] | None = None
        if marked and pa.types.is_string(column.type):
            hits = pc.match_substring(column, _MARK)
            if pc.any(hits).as_py():
                raws = [None if v is None else _unmarked(v) for v in column.to_pylist()]
        elif not marked and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid:
                binary = pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()
                raws = column.view(binary).to_pylist()
        if raws is None:
            arrays.append(column)
            continue
        values: list[str | None] = []
        for i, raw in enumerate(raws):
            if raw is None:
                values.append(None)
                continue
            try:
                values.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                values.append(raw.decode("utf-8", "replace"))
                if name == id_field:
                    bad_ids[i] = raw
        arrays.append(pa.array(values, column.type))
        changed = True
    names = [_shown(name) for name in batch.schema.names]
    if changed or names != batch.schema.names:
        batch = pa.RecordBatch.from_arrays(arrays, names=names)
    return batch, bad_ids


class _Utf8(io.RawIOBase):
    """A byte stream as valid UTF-8 for pyarrow, nothing lost: bytes that are not UTF-8 become marks (see above) and
    ``marked`` says some were written; a BOM is dropped; counts the bytes read from the file."""

    def __init__(self, raw: BinaryIO, *, start: bool = True) -> None:
        self._raw = raw
        # a BOM only at the start of the file: elsewhere U+FEFF is a character of a value
        self._decoder = codecs.getincrementaldecoder("utf-8-sig" if start else "utf-8")(errors="surrogateescape")
        self._ready = b""
        self._done = False
        self.bytes_read = 0
        self.marked = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = size if size and size > 0 else None
        # exactly as much as asked until the end: pyarrow takes each read as a block, and a row may only span two
        while not self._done and (want is None or len(self._ready) < want):
            data = self._raw.read(-1 if want is None else max(want - len(self._ready), 4))
            self.bytes_read += len(data)
            self._done = not data or want is None
            text = self._decoder.decode(data, final=self._done)
            try:
                encoded = text.encode("utf-8")
            except UnicodeEncodeError:  # surrogates: the bytes that were not UTF-8
                encoded, self.marked = _marked(text).encode("utf-8"), True
            else:
                if _MARK in text:
                    encoded, self.marked = _marked(text).encode("utf-8"), True
            self._ready = self._ready + encoded if self._ready else encoded
        # never more than asked: marks make the text longer than the bytes it came from
        if want is None or len(self._ready) <= want:
            out, self._ready = self._ready, b""
        else:
            out, self._ready = self._ready[:want], self._ready[want:]
        return out

    def close(self) -> None:
        self._raw.close()
        super().close()


# -- lines and records read in Python, in bounded memory -------------------------------------------------------------


class _Overlong(NamedTuple):
    """A line longer than the limit: its size and its first bytes (the rest was read past, never held)."""

    size: int
    head: bytes


def _lines(raw: BinaryIO, limit: int) -> Iterator[bytes | _Overlong]:
    """The lines of a byte stream with their ends (``\\n``, ``\\r\\n`` or ``\\r``: how Python's text files split
    lines); a line longer than ``limit`` bytes comes as an :class:`_Overlong`."""
    parts: list[bytes] = []  # the line so far
    size = 0
    head: bytes | None = None  # set once the line is over the limit: only its start is kept
    open_cr = False  # the line so far ends with \r, which the next read may continue as \r\n

    def take(part: bytes) -> None:
        nonlocal size, head, parts
        size += len(part)
        if head is None:
            parts.append(part)
            if size > limit:  # only the start is kept from here on
                head = b""
                for kept in parts:
                    head += kept[: _HEAD - len(head)]
                    if len(head) >= _HEAD:
                        break
                parts = []
        elif len(head) < _HEAD:
            head += part[: _HEAD - len(head)]

    def line() -> bytes | _Overlong:
        nonlocal size, head, parts, open_cr
        done: bytes | _Overlong = _Overlong(size, head) if head is not None else b"".join(parts)
        parts, size, head, open_cr = [], 0, None, False
        return done

    while piece := raw.readline(1 << 20):
        if not size and piece[-1:] == b"\n" and piece.find(b"\r", 0, len(piece) - 2) < 0:
            yield piece  # the common case: one whole line ended by \n or \r\n
            continue
        pieces = piece.splitlines(keepends=True)
        if open_cr:
            if pieces[0] == b"\n":
                take(pieces.pop(0))
            yield line()
        for index, part in enumerate(pieces):
            take(part)
            if part.endswith(b"\n") or (part.endswith(b"\r") and index < len(pieces) - 1):
                yield line()
            elif part.endswith(b"\r"):
                open_cr = True
    if size:
        yield line()


class _Cut(Exception):
    """A CSV record grew past the limit while Python's csv module was reading it."""


def _csv_records(
    path: Path, limit: int, offset: int = 0
) -> Generator[tuple[list[str] | None, list[str], int, str], None, None]:
    """Every CSV record of ``path`` from byte ``offset`` (0: the header first), read with Python's csv module:
    ``(fields, lines, size, problem)``.

    ``fields`` are (marked) text, or None when the record cannot be read (``problem`` says why: longer than ``limit``
    bytes, ``lines`` then hold its start, and the reading goes on at the next line); ``lines`` are the record as it
    was in the file; ``size`` counts its bytes and those of the blank lines before it, which are no records (as for
    pyarrow).
    """
    with open(path, "rb") as raw:
        raw.seek(offset)
        lines = _lines(raw, limit)
        held: list[str] = []  # the current record's lines
        state = {"size": 0, "held": 0, "first": offset == 0}

        def feed() -> Iterator[str]:
            for line in lines:
                if isinstance(line, _Overlong):
                    state["size"] += line.size
                    held.append(_decoded(line.head))
                    raise _Cut
                state["size"] += len(line)
                state["held"] += len(line)
                if state["first"]:
                    state["first"] = False
                    line = line.removeprefix(_BOM)
                text = _decoded(line)
                held.append(text)
                if state["held"] > limit:
                    raise _Cut
                yield text

        while True:
            reader = csv.reader(feed())
            try:
                while True:
                    previous = csv.field_size_limit(limit)  # the module's default (128 KiB) is less than a row
                    try:
                        fields: list[str] | None = next(reader)
                    finally:
                        csv.field_size_limit(previous)
                    record = held.copy()
                    held.clear()
                    state["held"] = 0
                    if fields == []:
                        continue  # a blank line: its bytes count with the next record
                    size, state["size"] = state["size"], 0
                    yield fields, record, size, ""
            except StopIteration:
                if state["size"]:
                    yield [], [], state["size"], ""  # blank lines at the end: only their bytes
                return
            except (_Cut, csv.Error) as exc:
                problem = str(exc) if isinstance(exc, csv.Error) else f"the record is longer than {limit:,} bytes"
                start = "".join(line[:_HEAD] for line in held[:_HEAD])[:_HEAD]
                held.clear()
                size, state["size"], state["held"] = state["size"], 0, 0
                yield None, [start], size, problem  # a new reader takes the next line


def _check_unique(path: Path, columns: list[str], names: list[str]) -> None:
    """``InputError`` when the header names a column the run reads more than once."""
    for name in dict.fromkeys(names):
        count = columns.count(name)
        if count > 1:
            places = ", ".join(str(i + 1) for i, c in enumerate(columns) if c == name)
            raise InputError(
                f"cannot read input {str(path)!r}: the header names column {name!r} {count} times (columns {places}); "
                "a column the run reads must have one name: rename or remove the others"
            )


class _Base(Reader):
    def __init__(self, path: Path, *, id_field: str, fields: list[str] | None, chunk_size: int, skip: int) -> None:
        self.path = path
        self.id_field = id_field
        self.fields = [f for f in (fields or []) if f != id_field]
        self.chunk_size = chunk_size
        self.skip = skip
        self.size = path.stat().st_size
        self.columns = None


class CsvReader(_Base):
    """CSV with a header line, every value read as text (conversion is the engine's job)."""

    format = "csv"

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        records = _csv_records(path, MAX_ROW_BYTES)
        try:
            header: list[str] | None = []
            while header == []:
                header, _, _, problem = next(records)
        except StopIteration:
            raise InputError(f"cannot read input {str(path)!r}: the file is empty (no header line)") from None
        finally:
            records.close()
        if header is None:
            raise InputError(f"cannot read input {str(path)!r}: bad header line: {problem}")
        self._names = header  # as pyarrow sees them (marked)
        self.columns = [_shown(name) for name in header]
        if self.id_field not in self.columns:
            raise UnknownIdField(
                f"id field {self.id_field!r} is not a column of {str(path)!r}; its columns are: " + _list(self.columns)
            )
        _check_unique(path, self.columns, [self.id_field, *self.fields])

    def __iter__(self) -> Iterator[Chunk]:
        builder = _ChunkBuilder(self, [name for name in self.fields if name in (self.columns or [])])
        offset, before = 0, 0  # where pyarrow starts (0: the header), and the line number of the record before it
        while True:
            stopped = yield from self._read_with_pyarrow(builder, offset, before)
            if stopped is None:
                break
            # pyarrow cannot read a record larger than its blocks: Python's csv module reads from where that segment
            # started, past the records pyarrow delivered and the large one, then pyarrow takes over again
            resumed = yield from self._read_in_python(builder, offset, before, stopped)
            if resumed is None:
                break
            offset, before = resumed
        yield from builder.last_chunk(builder.bytes_read)

    def _read_with_pyarrow(
        self, builder: _ChunkBuilder, offset: int, before: int
    ) -> Generator[Chunk, None, int | None]:
        """Records from byte ``offset`` (the header first at 0) until the end, or until pyarrow stops: then the line
        number of the last record it delivered, whose rejects and rows are in ``builder``."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        bad: dict[int, Reject] = {}
        shift = 0 if offset == 0 else before  # pyarrow numbers the records it reads from 1, the header included

        def on_invalid(row: Any) -> str:
            number = row.number + shift if row.number is not None else -1
            reason = f"cannot parse: {row.actual_columns} fields where the header has {row.expected_columns}"
            bad[number] = Reject(number, reason, _shown(row.text))
            return "skip"

        raw = open(self.path, "rb")  # noqa: SIM115 - closed with source, in the finally below
        raw.seek(offset)
        source = _Utf8(raw, start=offset == 0)
        number = 1 if offset == 0 else before  # the last record's line number; the header's is 1
        try:
            try:
                stream = pacsv.open_csv(
                    source,
                    read_options=pacsv.ReadOptions(
                        use_threads=False, block_size=_BLOCK, column_names=None if offset == 0 else self._names
                    ),
                    parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(
                        column_types={name: pa.string() for name in self._names},
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
            except OSError as exc:
                raise InputError(f"cannot read input {str(self.path)!r}: {exc}") from exc
            except pa.ArrowException:  # a first record larger than a block, among others
                return before
            if stream.schema.names != self._names:  # pyarrow read the header otherwise than Python's csv
                return before
            while True:
                try:
                    batch = stream.read_next_batch()
                except StopIteration:
                    break
                except OSError as exc:
                    raise InputError(f"cannot read input {str(self.path)!r}: {exc}") from exc
                except pa.ArrowException:  # a record larger than a block ("straddling object"), among others
                    return number  # bad lines found past it are found again by Python's csv module
                if bad:
                    numbers = []
                    for _ in range(batch.num_rows):
                        number += 1
                        while number in bad:
                            builder.add_reject(number - 1, bad.pop(number))
                            number += 1
                        numbers.append(number)
                else:
                    numbers = list(range(number + 1, number + 1 + batch.num_rows))
                    number += batch.num_rows
                batch, bad_ids = _repaired(batch, self.id_field, marked=True) if source.marked else (batch, {})
                builder.add_batch(batch, numbers, [n - 1 for n in numbers], offset + source.bytes_read, bad_ids)
                yield from builder.full_chunks()
            for line in sorted(bad):
                builder.add_reject(line - 1, bad[line])
            builder.bytes_read = offset + source.bytes_read
            return None
        finally:
            source.close()

    def _read_in_python(
        self, builder: _ChunkBuilder, offset: int, before: int, delivered: int
    ) -> Generator[Chunk, None, tuple[int, int] | None]:
        """Records from byte ``offset`` (the header first at 0; ``before``: the line number of the record before
        it) read with Python's csv module, which has no block size: past the ones up to line ``delivered``, then
        at least one more and ``_STRETCH`` bytes. Returns where pyarrow can read on (byte offset, line number of
        the record before it), or None at the end of the file."""
        import pyarrow as pa

        width = len(self._names)
        columns: list[list[str]] = [[] for _ in range(width)]
        numbers: list[int] = []
        shown = builder.bytes_read  # progress already shown: Python reads again from the segment's start
        held = read = stretch = 0

        def flush() -> Iterator[Chunk]:
            nonlocal columns, numbers, held
            if numbers:
                batch = pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in columns], names=self._names)
                batch, bad_ids = _repaired(batch, self.id_field, marked=True)
                builder.add_batch(batch, numbers, [n - 1 for n in numbers], max(offset + read, shown), bad_ids)
                columns, numbers, held = [[] for _ in range(width)], [], 0
            yield from builder.full_chunks()

        number = before
        records = _csv_records(self.path, MAX_ROW_BYTES, offset)
        try:
            for fields, lines, size, problem in records:
                read += size
                if fields == []:
                    continue  # blank lines at the end of the file
                number += 1
                if number <= delivered:
                    continue  # the header, and the records pyarrow delivered
                stretch += size
                if fields is None or len(fields) != width:
                    text = _shown("".join(lines).removesuffix("\n").removesuffix("\r"))
                    reason = f"cannot parse: {problem or f'{len(fields or [])} fields where the header has {width}'}"
                    builder.add_reject(number - 1, Reject(number, reason, text))
                else:
                    for column, value in zip(columns, fields):
                        column.append(value)
                    numbers.append(number)
                    held += size
                if stretch >= _STRETCH:
                    yield from flush()
                    return offset + read, number
                if len(numbers) >= 1000 or held >= 8 * 1024 * 1024 or len(builder.rejects) >= self.chunk_size:
                    yield from flush()
        finally:
            records.close()
        yield from flush()
        builder.bytes_read = max(offset + read, shown)
        return None


class JsonLinesReader(_Base):
    """One JSON object per line; blank lines are skipped."""

    format = "jsonl"

    def __iter__(self) -> Iterator[Chunk]:
        builder = _ChunkBuilder(self, self.fields)
        checked = [self.id_field, *self.fields]
        with open(self.path, "rb") as raw:
            read = 0
            records: list[dict[str, Any]] = []
            numbers: list[int] = []
            positions: list[int] = []
            held = 0
            position = 0

            def reject(reason: str, record: Any) -> None:
                nonlocal records, numbers, positions, held
                builder.add_records(records, numbers, positions, read, held)
                records, numbers, positions, held = [], [], [], 0
                builder.add_reject(position, Reject(line_number, reason, record))

            for line_number, line in enumerate(_lines(raw, MAX_ROW_BYTES), start=1):
                if isinstance(line, _Overlong):
                    read += line.size
                    position += 1
                    text = line.head.decode("utf-8", "replace")
                    reject(f"cannot parse: the line is longer than {MAX_ROW_BYTES:,} bytes", text)
                else:
                    read += len(line)
                    if line_number == 1:
                        line = line.removeprefix(_BOM)
                    try:
                        text, exact = line.decode("utf-8"), None
                    except UnicodeDecodeError:  # decoded twice: to read the record, and to see whether its id changed
                        text, exact = line.decode("utf-8", "replace"), line.decode("utf-8", "surrogateescape")
                    if not text.strip():
                        continue
                    position += 1
                    record, reason = _parse_json(text)
                    if reason is None and exact is not None:
                        reason = _id_bytes_problem(record, exact, self.id_field)
                    if reason is None and "\\u" in text and _SURROGATE_ESCAPE.search(text):
                        reason = record_text_problem(record, checked)
                    if reason is None and len(text) > 2 * _NESTING and text.count("[") + text.count("{") > _NESTING:
                        reason = _nesting_problem(record, checked)
                    if reason is not None:
                        reject(reason, text.rstrip("\r\n") if record is MISSING else record)
                    else:
                        records.append(record)
                        numbers.append(line_number)
                        positions.append(position)
                        held += len(line)
                if len(records) >= 1000 or len(builder.rejects) >= self.chunk_size:
                    builder.add_records(records, numbers, positions, read, held)
                    records, numbers, positions, held = [], [], [], 0
                    yield from builder.full_chunks()
            builder.add_records(records, numbers, positions, read, held)
            yield from builder.last_chunk(read)


def _parse_json(text: str) -> tuple[Any, str | None]:
    """A JSON line's object, or what keeps it from being one (the value is MISSING when the line does not parse)."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return MISSING, f"cannot parse: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return MISSING, "cannot parse: nested too deeply"
    except ValueError as exc:  # an integer with more digits than Python converts, among others
        return MISSING, f"cannot parse: {exc}"
    if not isinstance(record, dict):
        return record, f"not a JSON object: got {type(record).__name__}"
    return record, None


def _nesting_problem(record: dict[str, Any], names: list[str]) -> str | None:
    """What is wrong when a value the models read is nested deeper than ``_NESTING`` levels: deeper values make
    ``repr`` (error messages) and JSON encoding run out of stack, so such a row cannot be scored safely."""
    for name in names:
        stack = [(record.get(name), 1)]
        while stack:
            value, depth = stack.pop()
            if isinstance(value, (list, dict)):
                if depth > _NESTING:
                    return f"field {name!r} is nested more than {_NESTING} levels deep"
                stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return None


def _id_bytes_problem(record: dict[str, Any], exact: str, id_field: str) -> str | None:
    """For a line holding bytes that are not UTF-8: what is wrong when they are in its id (``exact``: the line
    decoded with ``surrogateescape``, so that its id still holds the bytes)."""
    parsed, _ = _parse_json(exact)  # parses as the line did: the bad bytes are inside strings, or it would not have
    value = parsed.get(id_field) if isinstance(parsed, dict) else None
    if isinstance(value, str) and value != record.get(id_field):
        raw = value.encode("utf-8", "surrogateescape")
        return f"field {id_field!r} holds bytes that are not valid UTF-8 ({show_value(raw)})"
    return None


class ParquetReader(_Base):
    """A Parquet file, read a row group at a time, a batch of at most ``chunk_size`` rows at a time."""

    format = "parquet"

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read input {str(path)!r}: not a readable Parquet file ({exc})") from exc
        self.columns = list(self._file.schema_arrow.names)
        if self.id_field not in self.columns:
            raise UnknownIdField(
                f"id field {self.id_field!r} is not a column of {str(path)!r}; its columns are: " + _list(self.columns)
            )
        _check_unique(path, self.columns, [self.id_field, *self.fields])

    def __iter__(self) -> Iterator[Chunk]:
        import pyarrow as pa

        builder = _ChunkBuilder(self, [name for name in self.fields if name in (self.columns or [])])
        number = 0
        metadata = self._file.metadata
        total = metadata.num_rows or 1
        for group in range(metadata.num_row_groups):
            end = number + metadata.row_group(group).num_rows
            batches: Iterator[Any] | None = None
            while True:
                try:
                    if batches is None:
                        batches = iter(self._file.iter_batches(batch_size=self.chunk_size, row_groups=[group]))
                    batch = next(batches)
                except StopIteration:
                    break
                except (pa.ArrowException, OSError) as exc:  # a damaged row group: its rows are rejects
                    reason = f"cannot read: row group {group + 1} of the file is damaged ({_first_line(exc)})"
                    for line in range(number + 1, end + 1):
                        builder.add_reject(line, Reject(line, reason, None))
                        if len(builder.rejects) >= self.chunk_size:
                            yield from builder.full_chunks()
                    break
                numbers = list(range(number + 1, number + 1 + batch.num_rows))
                number += batch.num_rows
                batch, bad_ids = _repaired(batch, self.id_field, marked=False)
                builder.add_batch(batch, numbers, numbers, int(self.size * number / total) if self.size else 0, bad_ids)
                yield from builder.full_chunks()
            number = end
        yield from builder.last_chunk(self.size or 0)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class _ChunkBuilder:
    """Collects rows and rejects in input order and cuts them into chunks of ``chunk_size`` rows.

    Every input row has a position (1-based, scored and rejected rows alike). A chunk's ``position`` is the
    resume point: every row at or before it is in this chunk or an earlier one, none after it. A chunk is cut
    sooner when its rows or its rejects hold a lot of data (``_CHUNK_BYTES``, ``_REJECT_BYTES``) or when
    ``chunk_size`` rejects wait, so memory stays bounded whatever the input holds.
    """

    def __init__(self, reader: _Base, fields: list[str]) -> None:
        self.reader = reader
        self.fields = fields
        self.pending: list[tuple[Any, int, int]] = []  # (arrow batch or record list, start, stop) pieces
        self.ids: list[str] = []
        self.row_positions: list[int] = []
        self.row_lines: list[int] = []
        self.rejects: list[tuple[int, Reject]] = []
        self.position = 0  # the last input position seen
        self.bytes_read = 0
        self.held = 0  # bytes the waiting rows hold, roughly
        self.reject_bytes = 0  # and the waiting rejects

    def add_reject(self, position: int, reject: Reject) -> None:
        self.position = max(self.position, position)
        if position > self.reader.skip:
            self.rejects.append((position, reject))
            self.reject_bytes += _weight(reject.record)

    def add_batch(
        self,
        batch: Any,
        numbers: list[int],
        positions: list[int],
        bytes_read: int,
        bad_ids: dict[int, bytes] | None = None,
    ) -> None:
        """Rows of an Arrow record batch, with their line numbers and input positions; ``bad_ids``: the rows (by
        index in the batch) whose id holds bytes that are not UTF-8, with those bytes."""
        import pyarrow as pa

        self.bytes_read = bytes_read
        if positions:
            self.position = max(self.position, positions[-1])
        start = 0
        while start < len(positions) and positions[start] <= self.reader.skip:
            start += 1
        if start >= batch.num_rows:
            return
        if start:
            batch = batch.slice(start)
            numbers, positions = numbers[start:], positions[start:]
        fast = None if bad_ids else _plain_ids(batch.column(self.reader.id_field))
        if fast is not None:
            self.ids.extend(fast)
            self.row_positions.extend(positions)
            self.row_lines.extend(numbers)
            self.pending.append((batch, 0, batch.num_rows))
            self.held += batch.nbytes
            return
        keep = []
        for i, value in enumerate(batch.column(self.reader.id_field).to_pylist()):
            raw = bad_ids.get(start + i) if bad_ids else None
            problem = None
            if raw is not None:
                problem = f"field {self.reader.id_field!r} holds bytes that are not valid UTF-8 ({show_value(raw)})"
            else:
                try:
                    text = normalize_id(value)
                except InvalidId as exc:
                    problem = _id_reject(self.reader.id_field, exc, "is empty")
            if problem is not None:
                reject = Reject(numbers[i], problem, _row(batch, i))
                self.rejects.append((positions[i], reject))
                self.reject_bytes += _weight(reject.record)
            else:
                keep.append(i)
                self.ids.append(text)
                self.row_positions.append(positions[i])
                self.row_lines.append(numbers[i])
        if len(keep) < batch.num_rows:
            batch = batch.take(pa.array(keep, type=pa.int64()))
        if batch.num_rows:
            self.pending.append((batch, 0, batch.num_rows))
            self.held += batch.nbytes

    def add_records(
        self, records: list[dict[str, Any]], numbers: list[int], positions: list[int], bytes_read: int, size: int = 0
    ) -> None:
        """Parsed JSON records, with their line numbers and input positions; ``size``: the bytes they came from."""
        self.bytes_read = bytes_read
        kept = []
        for record, number, position in zip(records, numbers, positions):
            self.position = max(self.position, position)
            if position <= self.reader.skip:
                continue
            try:
                text = normalize_id(record.get(self.reader.id_field))
            except InvalidId as exc:
                reason = _id_reject(self.reader.id_field, exc, "is missing or empty")
                self.rejects.append((position, Reject(number, reason, record)))
                continue
            kept.append(record)
            self.ids.append(text)
            self.row_positions.append(position)
            self.row_lines.append(number)
        if kept:
            self.pending.append((kept, 0, len(kept)))
            self.held += size

    def full_chunks(self) -> Iterator[Chunk]:
        size = self.reader.chunk_size
        while (
            len(self.ids) >= size
            or (self.ids and self.held >= _CHUNK_BYTES)
            or len(self.rejects) >= size
            or self.reject_bytes >= _REJECT_BYTES
        ):
            yield self._cut(min(len(self.ids), size))

    def last_chunk(self, bytes_read: int) -> Iterator[Chunk]:
        self.bytes_read = bytes_read
        yield from self.full_chunks()
        if self.ids or self.rejects:
            yield self._cut(len(self.ids))
        self.reader.rows = self.position

    def _cut(self, size: int) -> Chunk:
        pieces = []
        taken = 0
        while taken < size:
            data, start, stop = self.pending[0]
            take = min(size - taken, stop - start)
            pieces.append((data, start, start + take))
            taken += take
            if start + take == stop:
                self.pending.pop(0)
            else:
                self.pending[0] = (data, start + take, stop)
        waiting = len(self.ids)
        self.held = self.held * (waiting - size) // waiting if waiting else 0
        ids, self.ids = self.ids[:size], self.ids[size:]
        del self.row_positions[:size]
        lines, self.row_lines = self.row_lines[:size], self.row_lines[size:]
        position = self.row_positions[0] - 1 if self.row_positions else self.position
        rejects = [reject for at, reject in sorted(self.rejects, key=lambda item: item[0]) if at <= position]
        self.rejects = [(at, reject) for at, reject in self.rejects if at > position]
        self.reject_bytes = sum(_weight(reject.record) for _, reject in self.rejects)
        return Chunk(self._columns(pieces), ids, rejects, position, self.bytes_read, lines)

    def _columns(self, pieces: list[tuple[Any, int, int]]) -> dict[str, Any]:
        import pyarrow as pa

        columns: dict[str, Any] = {}
        for name in self.fields:
            parts: list[Any] = []
            for data, start, stop in pieces:
                if isinstance(data, list):
                    parts.extend(record.get(name, MISSING) for record in data[start:stop])
                elif name in data.schema.names:
                    parts.append(data.column(name).slice(start, stop - start))
            if parts and not isinstance(parts[0], pa.Array):
                columns[name] = parts
            elif parts:
                columns[name] = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
        return columns


def _plain_ids(column: Any) -> list[str] | None:
    """A text id column's ids when every one is plainly valid, checked in Arrow at once: what ``normalize_id`` gives
    each (stripped of ASCII whitespace, not empty, not too long, no NUL); None when some value needs it row by row
    (a missing value, a number, a refusal to report)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(column.type) or column.null_count:
        return None
    stripped = pc.utf8_trim(column, characters=_ID_WHITESPACE)
    lengths = pc.utf8_length(stripped)
    if len(stripped) and (pc.min(lengths).as_py() < 1 or pc.max(lengths).as_py() > MAX_ID_LENGTH):
        return None
    if pc.any(pc.match_substring(stripped, "\x00")).as_py():
        return None
    ids: list[str] = stripped.to_pylist()
    return ids


def _id_reject(id_field: str, exc: InvalidId, blank: str) -> str:
    """A reject's reason for a row whose id the id rule refused (``blank``: how this format's empty id reads)."""
    if exc.missing:
        return f"no id: field {id_field!r} {blank}"
    return f"bad id: field {id_field!r} {exc.reason}"


def _row(batch: Any, index: int) -> dict[str, Any]:
    """One row of a record batch as a dict, for a reject: a value that cannot be read is shown as text."""
    row: dict[str, Any] = {}
    for name, column in zip(batch.schema.names, batch.columns):
        cell = column.slice(index, 1)
        try:
            row[name] = cell.to_pylist()[0]
        except Exception:  # bytes that are not UTF-8 inside a nested value, a date out of Python's range, ...
            row[name] = cell.to_string()
    return row


def _weight(record: Any) -> int:
    """Roughly how many bytes a reject's record holds."""
    if isinstance(record, str):
        return len(record)
    if isinstance(record, Mapping):
        return sum(len(v) if isinstance(v, str) else 8 for v in record.values())
    return 8


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON values, always encodable: see :meth:`Reject.to_json`."""
    if isinstance(value, str):
        return value if value.isascii() else _LONE_SURROGATES.sub("\ufffd", value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, _numbers.Integral):
        return int(value)
    if isinstance(value, _numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, (Mapping, list, tuple)) and depth >= _NESTING:
        return f"(nested more than {_NESTING} levels)"
    if isinstance(value, Mapping):
        return {_plain(str(key)): _plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    if value is MISSING:
        return None
    return _plain(str(value))


def _list(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
