"""Result documents have one JSON encoding: the same document gives the same bytes on every path that prints it."""

from __future__ import annotations

import asyncio
import datetime
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlsm.documents import decode, encode
from mlsm.service.settings import ServiceSettings

from .conftest import CliResult
from .service.conftest import in_process

MODELS = """
    from mlsm import Model

    def describe(data, results):
        return {"name": data["name"], "ratio": data["a"] / 3, "tags": ["é", "ü"], "nested": {"k": [1, 2.5]}}

    MODELS = [
        Model("describe", {"name": str, "a": int}, "1", describe, status="active"),
        Model("needs_z", {"z": int}, "1", lambda data, results: {}),  # no record has z: an error slot
    ]
"""


@pytest.mark.slow
def test_the_same_document_has_the_same_bytes_on_every_path(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    models = write_models(MODELS)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    (tmp_path / "in.csv").write_text("id,name,a\nlead-1,Zoë Ω,7\n")
    assert cli("run", models, "in.csv", "--id-field", "id", "--store", url, "--output", "run.jsonl").code == 0
    (written,) = (tmp_path / "run.jsonl").read_bytes().splitlines()
    assert cli("export", "--store", url, "--output", "export.jsonl").code == 0
    (exported,) = (tmp_path / "export.jsonl").read_bytes().splitlines()
    results = cli("results", "lead-1", "--store", url)
    (printed,) = results.out.encode("utf-8").splitlines()

    async def served() -> tuple[bytes, bytes, bytes, bytes]:
        settings = ServiceSettings(models=str(models), id_field="id", store=url)
        async with in_process(settings) as service:
            read = await service.client.get("/v1/results/lead-1")
            answered = await service.client.post("/v1/score", json={"id": "x", "name": "Ünïcode", "a": 2})
            current = await service.client.get("/v1/results/x")
            history = await service.client.get("/v1/results/x", params={"history": "true"})
            return read.content, answered.content, current.content, history.content

    read, answered, current, history = asyncio.run(served())
    assert written == exported == printed == read
    assert answered == current and history == b'{"id":"x","documents":[' + current + b"]}"
    assert written == encode(decode(written)).encode("utf-8")  # compact, UTF-8 as is, keys in stored order
    assert "Zoë Ω".encode() in written


def _slot_document(**values: object) -> dict[str, object]:
    return {"id": "a", "_current": 0, "_timestamp": 1, "results": {"m": {"1": {**values, "_status": "active"}}}}


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, datetime.datetime(2026, 1, 1), datetime.date(2026, 1, 1), object()]
)
def test_a_value_json_cannot_hold_becomes_an_error_slot_not_a_null(value: object) -> None:
    # the engine checks every model's output; a summary model that changes another's slot afterwards can still
    # put such a value there: that slot (only) is stored as an error, never as null or as some text of the value
    document = _slot_document(score=value, other=1)
    document["results"]["ok"] = {"1": {"score": 0.5, "_status": "active"}}  # type: ignore[index]
    stored = decode(encode(document))
    slot = stored["results"]["m"]["1"]
    assert slot["_error"].startswith("bad output: ") and slot["_status"] == "active" and "score" not in slot
    assert stored["results"]["ok"] == {"1": {"score": 0.5, "_status": "active"}}


@pytest.mark.parametrize(
    "value",
    [None, 2**70, -(2**63) - 1, "\ud800 lone", np.float64(0.25), np.int64(3), True, "é\u2028\x00", 1e-05, -0.0],
)
def test_values_json_can_hold_are_kept_as_the_standard_library_reads_them(value: object) -> None:
    text = encode(_slot_document(score=value))
    assert json.loads(text)["results"]["m"]["1"]["score"] == json.loads(json.dumps(value, default=float))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_any_json_document_round_trips_to_what_the_standard_library_writes(slot: dict[str, object]) -> None:
    document = _slot_document(**slot)
    text = encode(document)
    assert json.loads(text) == json.loads(json.dumps(document, ensure_ascii=False))
    assert "\n" not in text and encode(decode(text)) == text  # one line; the same text when read back and written
