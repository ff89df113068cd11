"""The HTTP API in-process (``httpx.ASGITransport``): scoring, storing, the error contract, results, models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mlsm.service.settings import ServiceSettings

from ..conftest import CliResult
from .conftest import in_process

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}


@pytest.mark.slow
async def test_a_record_is_scored_stored_and_readable_by_its_id(settings: Callable[..., ServiceSettings]) -> None:
    async with in_process(settings()) as service:
        response = await service.client.post("/v1/score", json={"id": "lead-1", "a": 2, "b": 3, "extra": "ignored"})
        assert response.status_code == 200
        document = response.json()
        run = service.runtime.run.id
        assert document["id"] == "lead-1"
        assert document["_run"] == run and run.startswith("serve-")
        assert document["results"] == {
            "adder": {"1": {"c": 5, "_status": "active"}},
            "doubler": {"1": {"d": 4, "_status": "draft"}},
            "summary": {"1": {"ok": 2, "_status": "draft"}},
        }
        stored = await service.client.get("/v1/results/lead-1")
        assert stored.status_code == 200
        assert stored.json() == document
        assert response.headers["content-type"] == "application/json"
        registered = service.runtime.store.get_run(run)
        assert registered is not None and registered.info["kind"] == "service"
        assert registered.info["models"] == ["adder@1", "doubler@1", "summary@1"]
    finished = service.runtime.store  # closed now; reopen to see the final run record
    from mlsm.stores import open_store

    with open_store(finished.url) as store:
        final = store.get_run(run)
        assert final is not None and final.status == "completed" and final.rows == 1
        assert final.counts["models"]["adder@1"] == {"ok": 1, "errors": 0}


@pytest.mark.slow
async def test_records_are_answered_in_order_and_history_is_kept(settings: Callable[..., ServiceSettings]) -> None:
    async with in_process(settings()) as service:
        records = [{"id": i, "a": i, "b": 1} for i in range(5)] + [{"id": 0, "a": 10, "b": 0}]
        response = await service.client.post("/v1/score", json={"records": records})
        assert response.status_code == 200
        results = response.json()["results"]
        assert [d["id"] for d in results] == ["0", "1", "2", "3", "4", "0"]  # ids are stored as text, like batch runs
        assert [d["results"]["adder"]["1"]["c"] for d in results] == [1, 2, 3, 4, 5, 10]
        history = (await service.client.get("/v1/results/0", params={"history": "true"})).json()["documents"]
        assert [d["results"]["adder"]["1"]["c"] for d in history] == [10, 1]
        assert [d["_current"] for d in history] == [0, 1]


@pytest.mark.slow
async def test_a_missing_field_errors_only_the_models_that_need_it(settings: Callable[..., ServiceSettings]) -> None:
    async with in_process(settings()) as service:
        response = await service.client.post("/v1/score", json={"id": "x", "a": 4})
        assert response.status_code == 200
        results = response.json()["results"]
        assert results["adder"]["1"] == {
            "_error": "Expected 'data' input 'b' not found",  # as the original package wrote it
            "_errors": [{"field": "b", "problem": "missing (required)"}],
            "_status": "active",
        }
        assert results["doubler"]["1"] == {"d": 8, "_status": "draft"}
        assert results["summary"]["1"]["ok"] == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"id": 1, "a": ', 400, "malformed JSON: Expecting value: line 1 column 16"),
        (b"", 400, "malformed JSON: the body is empty"),
        (b'{"id": 1, "a": NaN}', 400, "malformed JSON: NaN is not valid JSON"),
        (b"\xff\xfe{", 400, "malformed JSON"),
        (b"[1, 2]", 422, 'expected a JSON object (one record) or {"records": [...]}, got an array'),
        (b'"lead"', 422, 'expected a JSON object (one record) or {"records": [...]}, got a string'),
        (b'{"records": 5}', 422, '"records" must be a list of JSON objects, got a number (5)'),
        (b'{"records": []}', 422, '"records" is empty'),
        (b'{"records": [{"id": 1}, 7]}', 422, "records[1] must be a JSON object (one record), got a number (7)"),
        (b'{"a": 1, "b": 2}', 422, "the record has no 'id' (the id field)"),
        (b'{"records": [{"id": 1}, {"a": 1}]}', 422, "records[1] has no 'id' (the id field)"),
        (b'{"id": {"x": 1}}', 422, "the record: 'id' (the id field) is an object: an id is text or a whole number"),
        (b'{"id": "  "}', 422, "the record has an empty 'id'"),
    ],
)
@pytest.mark.slow
async def test_bad_bodies_get_a_clear_status_and_message_and_nothing_is_stored(
    settings: Callable[..., ServiceSettings], body: bytes, status: int, message: str
) -> None:
    async with in_process(settings()) as service:
        response = await service.client.post("/v1/score", content=body, headers={"x-request-id": "req-42", **JSON})
        assert response.status_code == status
        assert response.json()["detail"].startswith(message)
        assert response.json()["request_id"] == "req-42"
        assert list(service.runtime.store.current_documents()) == []


@pytest.mark.slow
async def test_a_body_over_the_limit_is_refused_without_reading_the_rest(
    settings: Callable[..., ServiceSettings],
) -> None:
    read: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(50):
            read.append(i)
            yield b" " * 1024

    async with in_process(settings(max_body_bytes=4096)) as service:
        declared = await service.client.post(
            "/v1/score", content=b" " * 5000, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413
        assert declared.json()["detail"] == "body of 5000 bytes is over the limit of 4096 bytes"
        streamed = await service.client.post("/v1/score", content=chunks(), headers=JSON)  # chunked: no Content-Length
        assert streamed.status_code == 413
        assert streamed.json()["detail"] == "body is over the limit of 4096 bytes"
        assert len(read) <= 6  # stopped at the limit, not 50 chunks
        small = await service.client.post("/v1/score", json={"id": 1, "a": 1, "b": 1})
        assert small.status_code == 200


@pytest.mark.slow
async def test_a_hanging_model_is_cut_off_and_the_request_still_answers(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path]
) -> None:
    path = model_file(
        """
        import threading
        from mlsm import Model

        RELEASE = threading.Event()

        def hang(data, results):
            if data["a"] == 13:
                RELEASE.wait(30)
            return {"a": data["a"]}

        def fine(data, results):
            return {"ok": True}

        MODELS = [Model("hang", {"a": int}, "1", hang), Model("fine", {"a": int}, "1", fine)]
        """
    )
    async with in_process(settings(models=str(path), model_timeout=0.3)) as service:
        try:
            response = await service.client.post("/v1/score", json={"id": 1, "a": 13})
            assert response.status_code == 200
            results = response.json()["results"]
            assert results["hang"]["1"]["_error"] == "timed out: no answer within 0.3 s (call abandoned)"
            assert results["fine"]["1"] == {"ok": True, "_status": "draft"}
            other = await service.client.post("/v1/score", json={"id": 2, "a": 2})
            assert other.json()["results"]["hang"]["1"] == {"a": 2, "_status": "draft"}
            metrics = (await service.client.get("/metrics")).text
            assert 'mlsm_model_stuck_calls{model="hang@1"} 1.0' in metrics
            assert 'mlsm_model_errors_total{model="hang@1"} 1.0' in metrics
        finally:
            service.runtime.live.current.module.RELEASE.set()  # type: ignore[union-attr]


@pytest.mark.slow
async def test_unknown_ids_are_404_and_models_describe_the_live_set(settings: Callable[..., ServiceSettings]) -> None:
    async with in_process(settings()) as service:
        missing = await service.client.get("/v1/results/nobody")
        assert missing.status_code == 404
        assert missing.json()["detail"] == "no results for id 'nobody'"
        live = (await service.client.get("/v1/models")).json()["live"]
        assert live["generation"] == 1 and live["trigger"] == "startup"
        assert live["source_hash"].startswith("sha256:")
        adder = live["models"][0]
        assert adder["key"] == "adder@1" and adder["status"] == "active" and adder["timeout"] == 5.0
        assert adder["fields"] == {
            "a": {"type": "int", "required": True},
            "b": {"type": "int", "required": True, "ge": 0},
        }
        assert live["models"][2]["needs"] == ["adder@1", "doubler@1"]


@pytest.mark.slow
async def test_request_ids_are_echoed_or_made_and_every_request_is_logged(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings()) as service:
        given = await service.client.get("/healthz", headers={"x-request-id": "abc-123"})
        assert given.headers["x-request-id"] == "abc-123"
        made = await service.client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
        assert made.headers["x-request-id"] != "bad id with spaces" and len(made.headers["x-request-id"]) == 16
        await service.client.post("/v1/score", content=b"{", headers=JSON)
        logged = service.events("request")
        assert [(e["path"], e["status"]) for e in logged] == [("/healthz", 200), ("/healthz", 200), ("/v1/score", 400)]
        assert logged[0]["request_id"] == "abc-123" and logged[0]["ms"] >= 0


@pytest.mark.slow
async def test_metrics_count_requests_by_endpoint_and_status_and_results_by_model(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings()) as service:
        await service.client.post("/v1/score", json={"records": [{"id": 1, "a": 1, "b": 1}, {"id": 2, "a": 1}]})
        await service.client.post("/v1/score", content=b"nope", headers=JSON)
        await service.client.get("/v1/results/1")
        text = (await service.client.get("/metrics")).text
        assert 'mlsm_http_requests_total{endpoint="/v1/score",method="POST",status="200"} 1.0' in text
        assert 'mlsm_http_requests_total{endpoint="/v1/score",method="POST",status="400"} 1.0' in text
        assert 'mlsm_http_requests_total{endpoint="/v1/results/{id}",method="GET",status="200"} 1.0' in text
        assert 'mlsm_model_results_total{model="adder@1"} 2.0' in text
        assert 'mlsm_model_errors_total{model="adder@1"} 1.0' in text
        assert 'mlsm_model_call_duration_seconds_count{model="doubler@1"} 2.0' in text
        assert "mlsm_results_stored_total 2.0" in text
        assert "mlsm_model_set_generation 1.0" in text
        assert 'mlsm_http_request_duration_seconds_count{endpoint="/v1/score",method="POST",status="200"} 1.0' in text


@pytest.mark.slow
async def test_health_and_readiness(settings: Callable[..., ServiceSettings]) -> None:
    async with in_process(settings()) as service:
        assert (await service.client.get("/healthz")).json() == {"status": "ok"}
        ready = await service.client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "generation": 1}
        service.runtime.store.close()  # the store goes away: not ready, with the reason
        unready = await service.client.get("/readyz")
        assert unready.status_code == 503
        assert unready.json()["reasons"][0].startswith("store unavailable")


@pytest.mark.slow
async def test_the_openapi_document_describes_each_models_input_fields(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings()) as service:
        document = (await service.client.get("/openapi.json")).json()
        record = document["components"]["schemas"]["Record"]
        assert record["required"] == ["id"]
        assert record["properties"]["b"]["type"] == "integer" and record["properties"]["b"]["minimum"] == 0
        assert record["properties"]["a"]["x-mlsm-models"] == ["adder@1", "doubler@1"]
        assert record["properties"]["a"]["description"].startswith("Read by adder@1 (required), doubler@1 (required).")
        body = document["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"oneOf": [{"$ref": "#/components/schemas/Record"}, {"$ref": "#/components/schemas/Records"}]}
        assert set(document["paths"]["/v1/score"]["post"]["responses"]) == {"200", "400", "413", "415", "422", "503"}
        result = document["components"]["schemas"]["ResultDocument"]["properties"]["results"]["properties"]
        assert set(result) == {"adder", "doubler", "summary"}
        assert document["info"]["x-mlsm-model-set"]["generation"] == 1


@pytest.mark.slow
async def test_concurrent_records_for_batch_models_are_scored_in_groups(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path]
) -> None:
    path = model_file(
        """
        import time
        import pandas as pd
        from mlsm import Field, Model

        SIZES = []

        def vectorized(frame):
            SIZES.append(len(frame))
            time.sleep(0.02)  # a model call costs the same for one row as for many
            return pd.DataFrame({"twice": frame["a"] * 2})

        def rule(data, results):
            return {"plus": data["a"] + 1}

        MODELS = [Model("vec", {"a": Field(int)}, "1", vectorized, batch=True), Model("rule", {"a": int}, "1", rule)]
        """
    )
    async with in_process(settings(models=str(path), batch_max_size=8, batch_max_wait_ms=50)) as service:
        sizes: list[int] = service.runtime.live.current.module.SIZES  # type: ignore[union-attr]
        sizes.clear()  # preflight calls
        responses = await asyncio.gather(*(service.client.post("/v1/score", json={"id": i, "a": i}) for i in range(20)))
        for i, response in enumerate(responses):
            assert response.status_code == 200
            results = response.json()["results"]
            assert results["vec"]["1"]["twice"] == 2 * i and results["rule"]["1"]["plus"] == i + 1
        assert sum(sizes) == 20
        assert max(sizes) > 1 and max(sizes) <= 8  # grouped, never past the maximum
        assert len(sizes) < 20
        text = (await service.client.get("/metrics")).text
        assert "mlsm_scoring_group_records_count" in text


@pytest.mark.slow
async def test_api_key_guards_v1_and_the_openapi_document_but_not_health(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings(api_keys=("s3cret-key",))) as service:
        client = service.client
        missing = await client.post("/v1/score", json={"id": 1, "a": 1, "b": 1})
        assert missing.status_code == 401
        assert missing.json()["detail"] == "missing API key: send the header 'Authorization: Bearer <key>'"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.get("/v1/models", headers={"Authorization": "Bearer s3cret-kez"})
        assert (wrong.status_code, wrong.json()["detail"]) == (401, "invalid API key")
        basic = await client.get("/v1/models", headers={"Authorization": "Basic s3cret-key"})
        assert (basic.status_code, basic.json()["detail"]) == (401, "the Authorization header must be 'Bearer <key>'")
        assert (await client.get("/openapi.json")).status_code == 401
        good = {"Authorization": "Bearer s3cret-key"}
        assert (await client.post("/v1/score", json={"id": 1, "a": 1, "b": 1}, headers=good)).status_code == 200
        assert (await client.get("/v1/results/1", headers=good)).status_code == 200
        document = (await client.get("/openapi.json", headers=good)).json()
        assert document["paths"]["/v1/score"]["post"]["security"] == [{"bearer": []}]
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200, path
        assert list(service.runtime.store.current_documents()) != []
        text = (await client.get("/metrics")).text
        assert 'mlsm_http_requests_total{endpoint="/v1/score",method="POST",status="401"} 1.0' in text


@pytest.mark.slow
async def test_ids_with_slashes_are_found(settings: Callable[..., ServiceSettings]) -> None:
    async with in_process(settings()) as service:
        assert (await service.client.post("/v1/score", json={"id": "crm/2024/7", "a": 1, "b": 1})).status_code == 200
        found = await service.client.get("/v1/results/crm/2024/7")
        assert found.status_code == 200 and found.json()["id"] == "crm/2024/7"


async def test_the_service_stores_in_mongodb_in_the_seed_layout(
    settings: Callable[..., ServiceSettings], mongo_url: str
) -> None:
    async with in_process(settings(store=mongo_url)) as service:
        scored = (await service.client.post("/v1/score", json={"id": "m-1", "a": 2, "b": 2})).json()
        again = (await service.client.post("/v1/score", json={"id": "m-1", "a": 3, "b": 3})).json()
        assert (await service.client.get("/v1/results/m-1")).json() == again
        history = (await service.client.get("/v1/results/m-1", params={"history": "true"})).json()["documents"]
        assert [d["results"]["adder"]["1"]["c"] for d in history] == [6, 4]
        assert history[1]["_run"] == scored["_run"] and history[1]["_current"] == 1


@pytest.mark.slow
async def test_the_models_table_v1_models_and_openapi_describe_fields_and_batch_models_alike(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path], cli: Callable[..., CliResult]
) -> None:
    """One description of a field and one answer to "is this a batch model", whichever view shows them."""
    path = model_file(
        """
        import pandas as pd
        from mlsm import Field, Model, SummaryModel

        FIELDS = {"n": Field(int, default=0), "m": Field(float, nullable=True), "k": Field(str, choices=["a", "b"])}
        frame = Model("frame", FIELDS, "1", lambda f: pd.DataFrame({"s": [1] * len(f)}), batch=True)
        summary = SummaryModel("best", [{"name": "frame", "version": "1"}], "1", lambda data, results: {})
        summary.batch = True  # set by hand: a summary model still runs per record
        """
    )
    rows = {line.split()[0]: line for line in cli("models", path).out.splitlines()[1:]}
    assert rows["frame"].split()[4] == "yes" and rows["best"].split()[4] == "no"
    assert "n: int?, m: float?, k: str in [a, b]" in rows["frame"]
    async with in_process(settings(models=str(path))) as service:
        live = (await service.client.get("/v1/models")).json()["live"]
        document = (await service.client.get("/openapi.json")).json()
    frame, best = live["models"]
    assert (frame["batch"], best["batch"]) == (True, False)
    assert frame["fields"] == {
        "n": {"type": "int", "required": False, "default": 0},
        "m": {"type": "float", "required": False, "nullable": True},
        "k": {"type": "str", "required": True, "choices": ["a", "b"]},
    }
    record = document["components"]["schemas"]["Record"]["properties"]
    assert record["n"]["type"] == ["integer", "null"] and record["n"]["description"].startswith(
        "Read by frame@1 (optional)."
    )
    assert record["k"]["type"] == "string" and record["k"]["description"] == "Read by frame@1 (required)."
    assert record["k"]["x-mlsm-required-by"] == ["frame@1"] and record["n"]["x-mlsm-required-by"] == []
