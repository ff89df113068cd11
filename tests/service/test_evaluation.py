"""Outcomes posted to the service (``POST /v1/outcomes``) and its report (``GET /report``): the rules of
``mlsm outcomes load``, the error contract of ``/v1/score``, the keys, and the page in a real headless Chromium."""

from __future__ import annotations

import asyncio
import json
import math
import random
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlsm.service.settings import ServiceSettings
from mlsm.stores import open_store

from ..browser import BrowserUnavailable, open_page
from .conftest import Server, in_process

pytestmark = pytest.mark.slow

# a champion that listens to noise and a challenger that mostly does not: the challenger ranks better
LEAD_MODELS = """
    import math
    from mlsm import Model

    def champion(data, results):
        return {"score": 1 / (1 + math.exp(-(data["signal"] + 2.0 * data["noise"])))}

    def challenger(data, results):
        return {"score": 1 / (1 + math.exp(-(data["signal"] + 0.2 * data["noise"])))}

    MODELS = [
        Model("lead", {"signal": float, "noise": float}, "1", champion, status="active"),
        Model("lead", {"signal": float, "noise": float}, "2", challenger, status="draft"),
    ]
"""


def leads(n: int = 400, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records to score and their outcomes (which follow the signal)."""
    rng = random.Random(seed)
    records, outcomes = [], []
    for i in range(n):
        signal_, noise = rng.gauss(0, 1), rng.gauss(0, 1)
        records.append({"id": f"L{i}", "signal": signal_, "noise": noise})
        outcomes.append({"id": f"L{i}", "outcome": int(rng.random() < 1 / (1 + math.exp(-2 * signal_)))})
    return records, outcomes


JSON = {"content-type": "application/json"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.anyio
async def test_posted_outcomes_follow_the_load_rules_and_are_stored_once_answered(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings()) as service:
        client, store = service.client, service.runtime.store
        before = time.time()
        response = await client.post(
            "/v1/outcomes",
            json={
                "outcomes": [
                    {"id": " 7 ", "outcome": "Yes"},
                    {"id": 8.0, "outcome": 0, "at": "2024-05-01T09:30:00"},
                    {"id": "9", "outcome": True, "at": 1714555800},
                    {"id": "10", "outcome": "FALSE", "at": "2024-05-01T11:30:00+02:00"},
                ]
            },
        )
        after = time.time()
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["stored"] == 4
        assert [(o["id"], o["outcome"]) for o in body["outcomes"]] == [("7", 1), ("8", 0), ("9", 1), ("10", 0)]
        assert before <= body["outcomes"][0]["at"] <= after  # no "at": the time of the request
        assert [o["at"] for o in body["outcomes"][1:]] == [1714555800.0] * 3  # no zone is UTC
        stored = {o.id: o for o in store.outcomes()}
        assert {i: (o.outcome, o.source, o.label) for i, o in stored.items()} == {
            "7": (1, "service", "Yes"),
            "8": (0, "service", "0"),
            "9": (1, "service", "true"),
            "10": (0, "service", "FALSE"),
        }

        # one outcome alone; the same id again replaces its outcome and keeps the old one as history
        single = await client.post("/v1/outcomes", json={"id": 9, "outcome": "no", "at": "2024-06-01"})
        assert single.status_code == 200 and single.json()["stored"] == 1
        assert [(o.outcome, o.at) for o in store.outcome_history("9")] == [(0, 1717200000.0), (1, 1714555800.0)]

        # labels meaning 1: any other value is 0
        labelled = await client.post(
            "/v1/outcomes",
            json={"outcomes": [{"id": "a", "outcome": " Won "}, {"id": "b", "outcome": "lost"}], "positive": ["won"]},
        )
        assert [o["outcome"] for o in labelled.json()["outcomes"]] == [1, 0]
        assert "mlsm_outcomes_stored_total 7.0" in (await client.get("/metrics")).text


BAD_OUTCOMES: list[tuple[Any, int, str]] = [
    (
        {"outcomes": [{"id": 1, "outcome": 1}, {"id": 2, "outcome": "maybe"}]},
        422,
        "outcomes[1]: bad outcome: field 'outcome' is 'maybe', not 0/1, true/false or yes/no",
    ),
    ({"outcomes": [{"id": 1, "outcome": 1}, {"outcome": 1}]}, 422, "outcomes[1] has no 'id' (the id field)"),
    ({"outcomes": [{"id": " ", "outcome": 1}]}, 422, "outcomes[0] has an empty 'id' (the id field)"),
    ({"outcomes": [{"id": 1}]}, 422, "outcomes[0]: no outcome: field 'outcome' is missing or empty"),
    (
        {"outcomes": [{"id": 1, "outcome": 1, "at": "yesterday"}]},
        422,
        "outcomes[0]: bad decision time: field 'at' is 'yesterday', not ISO 8601",
    ),
    ({"outcomes": [{"id": 1, "outcome": 1, "at": None}]}, 422, "outcomes[0]: no decision time: field 'at' is missing"),
    (
        {"outcomes": [{"id": 1, "outcome": 1, "when": "2024-05-01"}]},
        422,
        "outcomes[0]: unknown field 'when'; an outcome has 'id' (the id field), 'outcome' and optionally 'at'",
    ),
    ({"id": 1, "outcome": 2}, 422, "the outcome: bad outcome: field 'outcome' is 2"),
    ({"outcomes": [{"id": "\udc00", "outcome": 1}]}, 422, "outcomes[0]: field 'id' holds text that is not valid"),
    ({"outcomes": []}, 422, '"outcomes" is empty'),
    ({"outcomes": {"id": 1}}, 422, '"outcomes" must be a list of JSON objects, got an object'),
    ({"outcomes": [3]}, 422, "outcomes[0] must be a JSON object (one outcome), got a number (3)"),
    ({"outcomes": [{"id": 1, "outcome": 1}], "positive": "won"}, 422, '"positive" must be a non-empty list'),
    ({"outcomes": [{"id": 1, "outcome": 1}], "extra": 1}, 422, "unknown key 'extra' beside \"outcomes\""),
    ([{"id": 1, "outcome": 1}], 422, 'expected a JSON object (one outcome) or {"outcomes": [...]}, got an array'),
    ({"outcomes": [{"id": i, "outcome": 1} for i in range(3)]}, 413, "3 outcomes is over the limit of 2"),
]


@pytest.mark.anyio
async def test_a_bad_item_refuses_the_request_naming_it_and_nothing_is_stored(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings(max_records=2)) as service:
        client = service.client
        for body, status, detail in BAD_OUTCOMES:
            # json.dumps escapes a lone surrogate as JSON may ("\\udc00"); httpx's json= cannot encode it
            response = await client.post("/v1/outcomes", content=json.dumps(body), headers=JSON)
            assert (response.status_code, response.json()["detail"][: len(detail)]) == (status, detail), body
            assert response.json()["request_id"]
        malformed = await client.post("/v1/outcomes", content=b'{"id": 1,', headers=JSON)
        assert malformed.status_code == 400 and malformed.json()["detail"].startswith("malformed JSON")
        csv = await client.post("/v1/outcomes", content=b"id,outcome\n1,1\n", headers={"content-type": "text/csv"})
        assert csv.status_code == 415
        assert list(service.runtime.store.outcomes()) == []


@pytest.mark.anyio
async def test_outcomes_and_the_report_need_the_scoring_key_as_v1_does(
    settings: Callable[..., ServiceSettings],
) -> None:
    outcome = {"id": 1, "outcome": 1}
    async with in_process(settings(api_keys=("score-1",), admin_keys=("admin-1",)), peer="203.0.113.7") as service:
        client = service.client
        assert (await client.post("/v1/outcomes", json=outcome)).status_code == 401
        assert (await client.post("/v1/outcomes", json=outcome, headers=bearer("nope"))).status_code == 401
        missing = await client.get("/report")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert (await client.get("/report", headers=bearer("nope"))).status_code == 401
        assert (await client.post("/v1/outcomes", json=outcome, headers=bearer("score-1"))).status_code == 200
        assert (await client.get("/report", headers=bearer("score-1"))).status_code == 200
        assert (await client.get("/report", headers=bearer("admin-1"))).status_code == 200
        document = (await client.get("/openapi.json", headers=bearer("score-1"))).json()
        assert document["paths"]["/v1/outcomes"]["post"]["security"] == [{"bearer": []}]
        assert document["paths"]["/report"]["get"]["security"] == [{"bearer": []}]
        body = document["paths"]["/v1/outcomes"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"oneOf": [{"$ref": "#/components/schemas/Outcome"}, {"$ref": "#/components/schemas/Outcomes"}]}
    # without a key: loopback pages only, as for /v1 (a page elsewhere cannot post outcomes or read the report)
    async with in_process(settings(), base_url="http://evil.example") as service:
        assert (await service.client.post("/v1/outcomes", json=outcome)).status_code == 403
        assert (await service.client.get("/report")).status_code == 403
    async with in_process(settings()) as service:
        foreign = {"Origin": "http://evil.example"}
        assert (await service.client.post("/v1/outcomes", json=outcome, headers=foreign)).status_code == 403
        assert (await service.client.get("/report", headers=foreign)).status_code == 403
        assert len(list(service.runtime.store.outcomes())) == 1  # the one posted with the key, above


@pytest.mark.anyio
async def test_the_report_shows_the_verdict_once_outcomes_follow_scored_leads(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path]
) -> None:
    records, outcomes = leads()
    async with in_process(settings(models=str(model_file(LEAD_MODELS)))) as service:
        client = service.client
        assert (await client.post("/v1/score", json={"records": records})).status_code == 200
        before = await client.get("/report")
        assert before.status_code == 200 and before.headers["content-type"] == "text/html; charset=utf-8"
        assert "ranks better" not in before.text and "lead@2" in before.text  # runs and score distributions only

        assert (await client.post("/v1/outcomes", json={"outcomes": outcomes})).status_code == 200
        page = await client.get("/report")
        assert page.status_code == 200
        assert "lead@2 ranks better than lead@1" in page.text and "on 400 leads" in page.text
        with open_store(service.runtime.store.url, mode="read") as store:
            from mlsm.evaluation.evaluate import evaluate_joined
            from mlsm.evaluation.join import join_outcomes

            (pair,) = evaluate_joined(join_outcomes(store)).comparisons
        assert pair.to_dict()["verdict"].split(": ")[0] in page.text  # the page says what mlsm evaluate says

        # the join options: decisions of today are too young for 30 days; bad options are 422 naming them
        young = await client.get("/report", params={"mature_days": 30})
        assert young.status_code == 200 and "All 400 outcomes were left out" in young.text
        assert "ranks better" not in young.text
        only = await client.get("/report", params={"model": ["lead@1"], "as_of": "latest"})
        assert only.status_code == 200 and "ranks better" not in only.text
        # the drift table of two runs, as mlsm report --reference --current draws it (here the run against itself);
        # the service's run record takes its profile at most PROFILE_SECONDS late, with a later write
        run = service.runtime.run.id
        deadline = time.monotonic() + 30
        while True:
            with open_store(service.runtime.store.url, mode="read") as store:
                stored = store.get_run(run)
            if stored is not None and "profile" in stored.counts:
                break
            assert time.monotonic() < deadline, "the service's run record never got its drift profile"
            await asyncio.sleep(0.5)
            assert (await client.post("/v1/score", json=records[0])).status_code == 200
        drift = await client.get("/report", params={"reference": run, "current": run})
        assert drift.status_code == 200 and "Stable" in drift.text and "No drift computed" not in drift.text
        assert "No drift computed" in page.text
        for params, detail in [
            ({"reference": run}, "give both query parameters 'reference' and 'current'"),
            ({"reference": "nope", "current": run}, "no run 'nope' in the store"),
            ({"as_of": "never"}, "invalid query parameter 'as_of' = 'never'"),
            ({"mature_days": -1}, "invalid query parameter 'mature_days' = '-1'"),
            ({"since": "last week"}, "invalid query parameter 'since' = 'last week': bad decision time"),
            ({"model": "lead"}, "invalid query parameter 'model' = 'lead': invalid model 'lead'"),
        ]:
            refused = await client.get("/report", params=params)
            assert (refused.status_code, refused.json()["detail"][: len(detail)]) == (422, detail)


def test_a_real_server_serves_the_report_and_it_renders_in_chromium(
    tmp_path: Path, serve: Callable[..., Server]
) -> None:
    models = tmp_path / "models.py"
    models.write_text(textwrap.dedent(LEAD_MODELS))
    server = serve(models, "--id-field", "id", "--store", "sqlite:///r.db")
    records, outcomes = leads(300)
    with server.client() as client:
        assert client.post("/v1/score", json={"records": records}).status_code == 200
        assert client.post("/v1/outcomes", json={"outcomes": outcomes}).status_code == 200
        response = client.get("/report")
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    assert "lead@2 ranks better than lead@1" in response.text
    try:
        page = open_page(server.url + "/report")
    except BrowserUnavailable as exc:
        pytest.skip(f"headless Chromium is not available ({exc}); scripts/ensure-chromium installs it")
    try:
        total, missing = page.drawn()
        assert total >= 8 and missing == []
        assert page.errors == [] and page.failed_requests == []
        # the page asks for nothing more (the browser asks for a favicon over http: 204, nothing logged)
        assert [url for url in page.requests if url != server.url + "/favicon.ico"] == [page.url]
        assert page.screenshot(tmp_path / "report.png").stat().st_size > 50_000
    finally:
        page.close()
    assert [e["path"] for e in server.events("request") if e["path"] == "/report"] == ["/report", "/report"]
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    with open_store(f"sqlite:///{tmp_path / 'r.db'}", mode="read") as store:
        assert sum(1 for _ in store.outcomes()) == 300
