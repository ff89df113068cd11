"""Exporting current results from a store to JSON lines, CSV or Parquet, streaming, for the systems that read them.

JSON lines keep each current document as stored. CSV and Parquet are flat: the id, ``_current``, ``_timestamp``,
``_run``, then one column per model result key, named ``name@version.key`` (``_error`` included); a value that is
a list or an object is written as JSON text. The columns are found in a first pass over the store, so the second
pass can stream rows without holding the export in memory.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlsm.documents import encode, encode_value
from mlsm.errors import InputError
from mlsm.stores.base import Store, split_model

__all__ = ["EXPORT_FORMATS", "export_results"]

EXPORT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_META = ("_current", "_timestamp", "_run")


def _documents(store: Store, model: str | None) -> Iterator[dict[str, Any]]:
    """Current documents; with ``model``, each id's current result of that model alone."""
    if model is None:
        yield from store.current_documents()
        return
    name, version = split_model(model)
    for document in store.current_documents(model=model):
        versions = document["results"].get(name, {})
        slot = next(s for v, s in versions.items() if str(v) == version)
        yield {**document, "results": {name: {version: slot}}}


def _flat(document: dict[str, Any], id_field: str) -> dict[str, Any]:
    row = {id_field: document.get(id_field), **{key: document.get(key) for key in _META}}
    for name, versions in document.get("results", {}).items():
        for version, slot in versions.items():
            for key, value in slot.items():
                if isinstance(value, (dict, list)):
                    value = encode_value(value)
                row[f"{name}@{version}.{key}"] = value
    return row


def export_results(store: Store, output: str | Path, *, model: str | None = None) -> int:
    """Write the store's current results to ``output`` (format by extension), whole or not at all; returns the
    number of ids."""
    path = Path(output)
    fmt = EXPORT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot export to {str(path)!r}: unknown extension {path.suffix!r}; "
            f"valid extensions are: {', '.join(sorted(EXPORT_FORMATS))}"
        )
    if not path.parent.exists():
        raise InputError(f"cannot export to {str(path)!r}: directory {str(path.parent)!r} does not exist")
    if model is not None:
        split_model(model)
    # written whole or not at all: into a file beside it, renamed over ``output`` once complete, so that a store
    # going away mid-read leaves neither a truncated export nor a damaged earlier one
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        count = _export(store, partial, fmt, model)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def _export(store: Store, path: Path, fmt: str, model: str | None) -> int:
    if fmt == "jsonl":
        count = 0
        with open(path, "w", encoding="utf-8") as handle:
            for document in _documents(store, model):
                handle.write(encode(document) + "\n")
                count += 1
        return count
    columns, kinds, id_field = _scan(store, model)
    if fmt == "csv":
        return _write_csv(path, store, model, columns, id_field)
    return _write_parquet(path, store, model, columns, kinds, id_field)


def _scan(store: Store, model: str | None) -> tuple[list[str], dict[str, set[type]], str]:
    """First pass: every column and the Python types it holds."""
    columns: dict[str, None] = {}
    kinds: dict[str, set[type]] = {}
    id_field = store.id_field or "id"
    for document in _documents(store, model):
        for key, value in _flat(document, id_field).items():
            columns.setdefault(key, None)
            if value is not None:
                kinds.setdefault(key, set()).add(type(value))
    return list(columns), kinds, id_field


def _write_csv(path: Path, store: Store, model: str | None, columns: list[str], id_field: str) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or [id_field, *_META])
        writer.writeheader()
        for document in _documents(store, model):
            writer.writerow(_flat(document, id_field))
            count += 1
    return count


def _arrow_type(kinds: set[type]) -> Any:
    import pyarrow as pa

    if kinds <= {bool}:
        return pa.bool_()
    if kinds <= {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    return pa.string()


def _write_parquet(
    path: Path, store: Store, model: str | None, columns: list[str], kinds: dict[str, set[type]], id_field: str
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = columns or [id_field, *_META]
    schema = pa.schema([(name, _arrow_type(kinds.get(name, {str}))) for name in columns])
    strings = {name for name in columns if schema.field(name).type == pa.string()}
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        rows: list[dict[str, Any]] = []
        for document in _documents(store, model):
            row = _flat(document, id_field)
            for name in strings & row.keys():
                value = row[name]
                if value is not None and not isinstance(value, str):
                    row[name] = encode_value(value)  # a column of mixed types becomes text
            rows.append(row)
            if len(rows) == 10_000:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                count += len(rows)
                rows = []
        writer.write_table(pa.Table.from_pylist(rows, schema=schema))
        count += len(rows)
    return count
