"""Hostile and broken requests in-process: each costs only its own request, and every answer is the service's own
JSON error body with a request id."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from mlsm.service.settings import ServiceSettings

from .conftest import in_process

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}

TEXT_MODELS = """
    import pandas as pd
    from mlsm import Model

    def lengths(frame):
        return pd.DataFrame({"n": frame["s"].str.len()})

    def upper(data, results):
        return {"up": data["s"].upper()}

    MODELS = [
        Model("lengths", {"s": str}, "1", lengths, batch=True, status="active"),
        Model("upper", {"s": str}, "1", upper),
    ]
"""


def error_body(response: object) -> dict[str, object]:
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"detail", "request_id"} and body["request_id"], body
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"id": 1, "s": "\\udc00"}',
            "the record: field 's' holds text that is not valid Unicode (lone surrogate \\udc00)",
        ),
        (b'{"id": "\\ud800x", "s": "ok"}', "the record: field 'id' holds text that is not valid Unicode"),
        (
            b'{"id": 1, "s": "ok", "meta": {"tags": ["x", "\\udfff"]}}',
            "the record: field 'meta' holds text that is not",
        ),
        (
            b'{"id": 1, "s": "ok", "\\udc00": 1}',
            "the record: the field name '\\udc00' is text that is not valid Unicode",
        ),
        (
            b'{"records": [{"id": 1, "s": "ok"}, {"id": 2, "s": "\xed\xb0\x80"}]}',  # a surrogate sent as raw bytes
            "records[1]: field 's' holds text that is not valid Unicode",
        ),
    ],
    ids=["value", "id", "nested", "key", "raw-bytes"],
)
@pytest.mark.slow
async def test_a_lone_surrogate_is_refused_naming_the_field_and_its_neighbours_are_scored(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path], body: bytes, message: str
) -> None:
    models = model_file(TEXT_MODELS)
    async with in_process(settings(models=str(models), batch_max_wait_ms=50)) as service:
        honest = [service.client.post("/v1/score", json={"id": f"h{i}", "s": "fine"}) for i in range(8)]
        bad = service.client.post("/v1/score", content=body, headers=JSON)
        *answers, refused = await asyncio.gather(*honest, bad)
        assert refused.status_code == 422
        assert str(error_body(refused)["detail"]).startswith(message)
        assert [r.status_code for r in answers] == [200] * 8
        for i, answer in enumerate(answers):
            assert answer.json()["results"]["lengths"]["1"]["n"] == 4
            assert (await service.client.get(f"/v1/results/h{i}")).json() == answer.json()
        stored = {document["id"] for document in service.runtime.store.current_documents()}
        assert stored == {f"h{i}" for i in range(8)}


BAD_OUTPUT_MODELS = """
    from mlsm import Model

    def echo(data, results):
        # a buggy model: text it cannot know is broken (a lone surrogate) for one input
        return {"label": "\\udc00" if data["s"] == "evil" else data["s"]}

    MODELS = [Model("echo", {"s": str}, "1", echo, status="active")]
"""


async def test_documents_the_store_refuses_fail_only_their_own_request_in_a_group_commit(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path], tmp_path: Path
) -> None:
    models = model_file(BAD_OUTPUT_MODELS)
    db = tmp_path / "results.db"
    async with in_process(settings(models=str(models), store=f"sqlite:///{db}", store_retry=30)) as service:
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # the writer waits: every request below queues for one write

        async def queued(depth: int) -> None:
            while service.runtime.writer.depth < depth:
                await asyncio.sleep(0.01)

        first = asyncio.ensure_future(service.client.post("/v1/score", json={"id": "first", "s": "x"}))
        await asyncio.wait_for(queued(1), 30)
        rest = [service.client.post("/v1/score", json={"id": f"h{i}", "s": f"ok-{i}"}) for i in range(6)]
        rest.insert(3, service.client.post("/v1/score", json={"id": "bad", "s": "evil"}))
        pending = [asyncio.ensure_future(request) for request in rest]
        await asyncio.wait_for(queued(8), 30)
        lock.execute("ROLLBACK")
        lock.close()
        answers = await asyncio.gather(first, *pending)
        by_id = {json.loads(r.request.content)["id"]: r for r in answers}
        refused = by_id.pop("bad")
        assert refused.status_code == 422
        assert "retry-after" not in refused.headers  # retrying will not help
        detail = str(error_body(refused)["detail"])
        assert detail.startswith("the store refused the results (retrying will not help): ")
        assert "surrogates not allowed" in detail
        assert {key: r.status_code for key, r in by_id.items()} == dict.fromkeys(by_id, 200)
        stored = {document["id"] for document in service.runtime.store.current_documents()}
        assert stored == set(by_id)
        metrics = (await service.client.get("/metrics")).text
        assert 'mlsm_results_not_stored_total{reason="refused"} 1.0' in metrics


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON; charset=UTF-8", 200),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/json; charset=latin-1", 415),
        ("application/jsonp", 415),
        (None, 415),
    ],
)
@pytest.mark.slow
async def test_only_json_bodies_are_taken(
    settings: Callable[..., ServiceSettings], content_type: str | None, status: int
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with in_process(settings()) as service:
        scored = await service.client.post("/v1/score", content=b'{"id": 1, "a": 1, "b": 1}', headers=headers)
        reload = await service.client.post("/v1/admin/reload", content=b"{}", headers=headers)
        assert (scored.status_code, reload.status_code) == (status, 200 if status == 200 else 415)
        if status == 415:
            for response in (scored, reload):
                assert str(error_body(response)["detail"]).startswith(
                    "the body must be JSON: send 'Content-Type: application/json'"
                )
            assert list(service.runtime.store.current_documents()) == []
        # a POST without a body declares nothing
        assert (await service.client.post("/v1/admin/reload")).status_code == 200


async def test_more_records_than_the_limit_are_refused_before_scoring(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings(max_records=5)) as service:
        records = [{"id": i, "a": i, "b": 1} for i in range(6)]
        refused = await service.client.post("/v1/score", json={"records": records})
        assert refused.status_code == 413
        assert error_body(refused)["detail"] == (
            "6 records is over the limit of 5 a request: send them in several requests"
        )
        assert (await service.client.post("/v1/score", json={"records": records[:5]})).status_code == 200
        assert len(list(service.runtime.store.current_documents())) == 5


@pytest.mark.slow
async def test_bad_parameters_and_unknown_paths_get_the_services_error_body(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings()) as service:
        bad = await service.client.get("/v1/results/1", params={"history": "zzz"}, headers={"x-request-id": "q-1"})
        assert bad.status_code == 422
        assert bad.json() == {
            "detail": "invalid query parameter 'history' = 'zzz': input should be a valid boolean, unable to interpret "
            "input; use true or false",
            "request_id": "q-1",
        }
        unknown = await service.client.get("/v2/nothing")
        assert unknown.status_code == 404 and str(error_body(unknown)["detail"]).startswith("no endpoint '/v2/nothing'")
        method = await service.client.get("/v1/score")
        assert method.status_code == 405 and error_body(method)["detail"] == "GET is not allowed on /v1/score"
        assert method.headers["allow"] == "POST"


@pytest.mark.slow
async def test_a_500_is_the_services_error_body_and_one_json_log_line(
    settings: Callable[..., ServiceSettings], tmp_path: Path
) -> None:
    db = tmp_path / "results.db"
    async with in_process(settings(store=f"sqlite:///{db}")) as service:
        assert (await service.client.post("/v1/score", json={"id": 1, "a": 1, "b": 1})).status_code == 200
        with sqlite3.connect(db) as broken:  # the store's tables are gone under the service
            tables = [row[0] for row in broken.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                broken.execute(f'DROP TABLE "{table}"')
        failed = await service.client.get("/v1/results/1", headers={"x-request-id": "boom-1"})
        assert failed.status_code == 500
        assert error_body(failed)["request_id"] == "boom-1"
        assert str(failed.json()["detail"]).startswith("internal error: ")
        lines = service.log.getvalue().splitlines()
        events = [json.loads(line) for line in lines]  # every line is one JSON object
        errors = [e for e in events if e["event"] == "error"]
        assert len(errors) == 1 and errors[0]["request_id"] == "boom-1"
        assert "Traceback (most recent call last)" in errors[0]["traceback"]
        assert [e["status"] for e in events if e["event"] == "request"][-1] == 500
