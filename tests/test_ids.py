"""Record ids: one rule (``mlsm.ids.normalize_id``) on every path, so one lead has one history however it arrives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsm import InvalidId, open_store
from mlsm.ids import MAX_ID_LENGTH, normalize_id
from mlsm.readers import open_input
from mlsm.service.settings import ServiceSettings

from .conftest import CliResult
from .service.conftest import in_process

SCORE_A = """
    from mlsm import Model
    MODELS = [Model("m", {"a": int}, "1", lambda data, results: {"a": data["a"]}, status="active")]
"""


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (" 42 ", "42"),
        ("42\n", "42"),
        ("\t lead-7\r\n", "lead-7"),
        (42, "42"),
        (42.0, "42"),
        (-3.0, "-3"),
        (np.int64(42), "42"),
        (np.float64(42.0), "42"),
        ("042", "042"),  # text is a name, never read as a number
        ("42.0", "42.0"),
        ("\u00a042\u00a0", "\u00a042\u00a0"),  # only ASCII whitespace is stripped
        ("x" * MAX_ID_LENGTH, "x" * MAX_ID_LENGTH),
        (10**40, str(10**40)),
    ],
)
def test_usable_ids_become_one_text(value: Any, text: str) -> None:
    assert normalize_id(value) == text


@pytest.mark.parametrize(
    ("value", "reason", "missing"),
    [
        (None, "is missing", True),
        ("", "is empty", True),
        (" \n\t", "is empty", True),
        (float("nan"), "is not a finite number (nan)", True),
        (True, "is a boolean (True): an id is text or a whole number", False),
        (1.5, "is a number that is not whole (1.5): send it as text", False),
        (float("inf"), "is not a finite number (inf)", False),
        (json.loads("1e400"), "is not a finite number (inf)", False),
        (2.0**60, "is a float too large to be exact (1.152921504606847e+18): send it as text or as an integer", False),
        ({"a": 1}, "is an object: an id is text or a whole number", False),
        ([1], "is an array: an id is text or a whole number", False),
        ("x" * (MAX_ID_LENGTH + 1), f"is longer than {MAX_ID_LENGTH} characters (513)", False),
        pytest.param(10**5000, f"is longer than {MAX_ID_LENGTH} characters", False, id="int-of-5001-digits"),
        ("a\x00b", "holds a NUL character", False),
        ("a\udc00", "holds a lone surrogate (not valid Unicode text)", False),
    ],
)
def test_unusable_ids_are_refused_with_the_reason(value: Any, reason: str, missing: bool) -> None:
    with pytest.raises(InvalidId) as info:
        normalize_id(value)
    assert info.value.reason == reason and info.value.missing is missing
    assert str(info.value) == f"the id {reason}"


def test_readers_reject_unusable_ids_with_their_line_and_reason(tmp_path: Path) -> None:
    lines = ['{"id": 42.0, "a": 1}', '{"id": 1e400}', '{"id": 1.5}', '{"id": true}', '{"id": " "}', '{"id": "7\\n"}']
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    chunks = list(open_input(path, id_field="id", fields=["a"], chunk_size=100))
    assert [i for chunk in chunks for i in chunk.ids] == ["42", "7"]
    assert [(r.line, r.reason) for chunk in chunks for r in chunk.rejects] == [
        (2, "bad id: field 'id' is not a finite number (inf)"),  # never the id "inf"
        (3, "bad id: field 'id' is a number that is not whole (1.5): send it as text"),
        (4, "bad id: field 'id' is a boolean (True): an id is text or a whole number"),
        (5, "no id: field 'id' is missing or empty"),
    ]


def test_one_lead_has_one_history_through_batch_runs_and_the_service(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    """Lead 42 arrives as ' 42 ' in a CSV file, 42.0 in JSON lines, and 42, "42" and "42\\n" at the service."""
    models = write_models(SCORE_A)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    (tmp_path / "in.csv").write_text('id,a\n" 42 ",1\n')
    (tmp_path / "in.jsonl").write_text('{"id": 42.0, "a": 2}\n')
    for name in ("in.csv", "in.jsonl"):
        assert cli("run", models, name, "--id-field", "id", "--store", url).code == 0

    async def serve() -> list[Any]:
        settings = ServiceSettings(models=str(models), id_field="id", store=url)
        async with in_process(settings) as service:
            for a, id_value in enumerate([42, "42", "42\n"], start=3):
                response = await service.client.post("/v1/score", json={"id": id_value, "a": a})
                assert response.status_code == 200 and response.json()["id"] == "42"
            asked = await service.client.get("/v1/results/42%0A", params={"history": "true"})  # stripped on the way out
            too_long = await service.client.get("/v1/results/" + "x" * (MAX_ID_LENGTH + 1))
            refused = await service.client.post("/v1/score", json={"id": 1.5, "a": 1})
            return [asked.json(), too_long, refused]

    asked, too_long, refused = asyncio.run(serve())
    assert asked["id"] == "42" and [d["results"]["m"]["1"]["a"] for d in asked["documents"]] == [5, 4, 3, 2, 1]
    assert too_long.status_code == 422 and "longer than 512 characters" in too_long.json()["detail"]
    assert refused.status_code == 422
    assert (
        refused.json()["detail"]
        == "the record: 'id' (the id field) is a number that is not whole (1.5): send it as text"
    )
    with open_store(url) as store:
        assert len(store.history("42")) == 5 and {d["id"] for d in store.current_documents()} == {"42"}
    shown = cli("results", " 42\n", "--store", url, "--history")
    assert [json.loads(line)["results"]["m"]["1"]["a"] for line in shown.out.splitlines()] == [5, 4, 3, 2, 1]
    empty = cli("results", "  ", "--store", url)
    assert empty.code == 2 and empty.err.strip() == "mlsm: error: the id is empty"


def test_an_id_at_the_length_limit_is_stored_and_read_back_through_the_service(
    write_models: Callable[..., Path], tmp_path: Path
) -> None:
    models = write_models(SCORE_A)
    longest = "é" * MAX_ID_LENGTH

    async def serve() -> tuple[int, int, Any]:
        settings = ServiceSettings(models=str(models), id_field="id", store=f"sqlite:///{tmp_path / 'r.db'}")
        async with in_process(settings) as service:
            stored = await service.client.post("/v1/score", json={"id": longest, "a": 1})
            over = await service.client.post("/v1/score", json={"id": longest + "é", "a": 1})
            read = await service.client.get(f"/v1/results/{longest}")
            return stored.status_code, over.status_code, read.json()

    stored, over, read = asyncio.run(serve())
    assert (stored, over) == (200, 422) and read["id"] == longest
