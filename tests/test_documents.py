"""Result documents have one JSON encoding: the same document gives the same bytes on every path that prints it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

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
