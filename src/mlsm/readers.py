"""Streaming readers for CSV, JSON lines and Parquet: chunks of columns, plus rejects, in bounded memory.

``open_input(path, id_field=..., chunk_size=...)`` picks the format by extension and yields :class:`Chunk`s of at
most ``chunk_size`` rows. A line that cannot be parsed (a CSV row with more or fewer fields than the header,
a JSON line that is not an object) and a row without an id are not scored: they become :class:`Reject`s with
their line number and reason, and the reading goes on.

Line numbers count the header as line 1 (CSV) or the first line as line 1 (JSON lines); for Parquet they are row
numbers from 1. In a CSV file with blank lines or line breaks inside quoted values, a line number counts records,
not physical lines.

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
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InputError, InvalidId, UnknownIdField
from .fields import MISSING
from .ids import normalize_id

__all__ = [
    "FORMATS",
    "Chunk",
    "Reader",
    "Reject",
    "SeveralFiles",
    "expand_inputs",
    "open_input",
    "open_inputs",
]

# CSV block size: pyarrow reads a few dozen blocks ahead, so this bounds a run's input buffering (~10 MB).
_BLOCK = 256 * 1024

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
        """The JSON line written to ``--rejects``."""
        where = {"file": self.file} if self.file is not None else {}
        return {**where, "line": self.line, "reason": self.reason, "record": self.record}


@dataclass
class Chunk:
    """Rows to score, as columns by field name, with their ids; and the rejects found among them."""

    columns: dict[str, Any]
    ids: list[str]
    rejects: list[Reject] = field(default_factory=list)
    position: int = 0  # input rows consumed once this chunk is done (the resume point)
    bytes_read: int = 0

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


class _Utf8(io.RawIOBase):
    """A byte stream re-encoded as valid UTF-8 (bad bytes become U+FFFD, a BOM is dropped); counts bytes read."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size and size > 0 else -1)
        self.bytes_read += len(data)
        return self._decoder.decode(data, final=not data).encode("utf-8")

    def close(self) -> None:
        self._raw.close()
        super().close()


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
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            try:
                header = next(csv.reader(handle))
            except StopIteration:
                raise InputError(f"cannot read input {str(path)!r}: the file is empty (no header line)") from None
            except csv.Error as exc:
                raise InputError(f"cannot read input {str(path)!r}: bad header line: {exc}") from exc
        self.columns = header
        if self.id_field not in header:
            raise UnknownIdField(
                f"id field {self.id_field!r} is not a column of {str(path)!r}; its columns are: " + _list(header)
            )

    def __iter__(self) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        bad: dict[int, Reject] = {}

        def on_invalid(row: Any) -> str:
            number = row.number if row.number is not None else -1
            reason = f"cannot parse: {row.actual_columns} fields where the header has {row.expected_columns}"
            bad[number] = Reject(number, reason, row.text)
            return "skip"

        source = _Utf8(open(self.path, "rb"))  # noqa: SIM115 - closed in the finally below
        try:
            stream = pacsv.open_csv(
                source,
                read_options=pacsv.ReadOptions(use_threads=False, block_size=_BLOCK),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in self.columns or []},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            source.close()
            raise InputError(f"cannot read input {str(self.path)!r}: {exc}") from exc
        wanted = [name for name in self.fields if name in (self.columns or [])]
        builder = _ChunkBuilder(self, wanted)
        number = 1  # the header's line number; rows take the numbers after it that are not bad lines
        try:
            while True:
                try:
                    batch = stream.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise InputError(f"cannot read input {str(self.path)!r}: {exc}") from exc
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
                builder.add_batch(batch, numbers, [n - 1 for n in numbers], source.bytes_read)
                yield from builder.full_chunks()
            for line in sorted(bad):
                builder.add_reject(line - 1, bad[line])
            yield from builder.last_chunk(source.bytes_read)
        finally:
            source.close()


class JsonLinesReader(_Base):
    """One JSON object per line; blank lines are skipped."""

    format = "jsonl"

    def __iter__(self) -> Iterator[Chunk]:
        builder = _ChunkBuilder(self, self.fields)
        with open(self.path, encoding="utf-8-sig", errors="replace", newline="") as text:
            read = 0  # characters, as bytes for progress: exact for ASCII, close enough otherwise
            records: list[dict[str, Any]] = []
            numbers: list[int] = []
            positions: list[int] = []
            position = 0
            for line_number, line in enumerate(text, start=1):
                read += len(line)
                if not line.strip():
                    continue
                position += 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    reason = f"cannot parse: {exc.msg} (column {exc.colno})"
                    builder.add_records(records, numbers, positions, read)
                    records, numbers, positions = [], [], []
                    builder.add_reject(position, Reject(line_number, reason, line.rstrip("\r\n")))
                    continue
                if not isinstance(record, dict):
                    builder.add_records(records, numbers, positions, read)
                    records, numbers, positions = [], [], []
                    reason = f"not a JSON object: got {type(record).__name__}"
                    builder.add_reject(position, Reject(line_number, reason, record))
                    continue
                records.append(record)
                numbers.append(line_number)
                positions.append(position)
                if len(records) >= 1000:
                    builder.add_records(records, numbers, positions, read)
                    records, numbers, positions = [], [], []
                    yield from builder.full_chunks()
            builder.add_records(records, numbers, positions, read)
            yield from builder.last_chunk(read)


class ParquetReader(_Base):
    """A Parquet file, read a row group at a time with only the columns the models need."""

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

    def __iter__(self) -> Iterator[Chunk]:
        builder = _ChunkBuilder(self, [name for name in self.fields if name in (self.columns or [])])
        number = 0
        total = self._file.metadata.num_rows or 1
        for batch in self._file.iter_batches(batch_size=self.chunk_size):
            numbers = list(range(number + 1, number + 1 + batch.num_rows))
            number += batch.num_rows
            builder.add_batch(batch, numbers, numbers, int(self.size * number / total) if self.size else 0)
            yield from builder.full_chunks()
        yield from builder.last_chunk(self.size or 0)


class _ChunkBuilder:
    """Collects rows and rejects in input order and cuts them into chunks of ``chunk_size`` rows.

    Every input row has a position (1-based, scored and rejected rows alike). A chunk's ``position`` is the
    resume point: every row at or before it is in this chunk or an earlier one, none after it.
    """

    def __init__(self, reader: _Base, fields: list[str]) -> None:
        self.reader = reader
        self.fields = fields
        self.pending: list[tuple[Any, int, int]] = []  # (arrow batch or record list, start, stop) pieces
        self.ids: list[str] = []
        self.row_positions: list[int] = []
        self.rejects: list[tuple[int, Reject]] = []
        self.position = 0  # the last input position seen
        self.bytes_read = 0

    def add_reject(self, position: int, reject: Reject) -> None:
        self.position = max(self.position, position)
        if position > self.reader.skip:
            self.rejects.append((position, reject))

    def add_batch(self, batch: Any, numbers: list[int], positions: list[int], bytes_read: int) -> None:
        """Rows of an Arrow record batch, with their line numbers and input positions."""
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
        keep = []
        for i, value in enumerate(batch.column(self.reader.id_field).to_pylist()):
            try:
                text = normalize_id(value)
            except InvalidId as exc:
                record = batch.slice(i, 1).to_pylist()[0]
                reject = Reject(numbers[i], _id_reject(self.reader.id_field, exc, "is empty"), record)
                self.rejects.append((positions[i], reject))
            else:
                keep.append(i)
                self.ids.append(text)
                self.row_positions.append(positions[i])
        if len(keep) < batch.num_rows:
            batch = batch.take(pa.array(keep, type=pa.int64()))
        if batch.num_rows:
            self.pending.append((batch, 0, batch.num_rows))

    def add_records(
        self, records: list[dict[str, Any]], numbers: list[int], positions: list[int], bytes_read: int
    ) -> None:
        """Parsed JSON records, with their line numbers and input positions."""
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
        if kept:
            self.pending.append((kept, 0, len(kept)))

    def full_chunks(self) -> Iterator[Chunk]:
        while len(self.ids) >= self.reader.chunk_size:
            yield self._cut(self.reader.chunk_size)

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
        ids, self.ids = self.ids[:size], self.ids[size:]
        del self.row_positions[:size]
        position = self.row_positions[0] - 1 if self.row_positions else self.position
        rejects = [reject for at, reject in sorted(self.rejects, key=lambda item: item[0]) if at <= position]
        self.rejects = [(at, reject) for at, reject in self.rejects if at > position]
        return Chunk(self._columns(pieces), ids, rejects, position, self.bytes_read)

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


def _id_reject(id_field: str, exc: InvalidId, blank: str) -> str:
    """A reject's reason for a row whose id the id rule refused (``blank``: how this format's empty id reads)."""
    if exc.missing:
        return f"no id: field {id_field!r} {blank}"
    return f"bad id: field {id_field!r} {exc.reason}"


def _list(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
