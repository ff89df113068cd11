"""Hot reload in-process: a new set swaps in only when it imports, plans, and no preflight refuses it."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlsm.service.settings import ServiceSettings

from .conftest import MODELS, in_process

pytestmark = pytest.mark.anyio


@pytest.mark.slow
async def test_a_good_reload_swaps_the_whole_set_and_models_shows_it(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path]
) -> None:
    async with in_process(settings()) as service:
        before = (await service.client.get("/v1/models")).json()["live"]
        model_file(MODELS.replace('VERSION = "1"', 'VERSION = "2"'))
        response = await service.client.post("/v1/admin/reload")
        assert response.status_code == 200
        body = response.json()
        assert body["previous"] == {"generation": 1, "source_hash": before["source_hash"]}
        assert body["live"]["generation"] == 2 and body["live"]["trigger"] == "api"
        assert body["live"]["source_hash"] != before["source_hash"]
        models = (await service.client.get("/v1/models")).json()
        assert models["live"]["generation"] == 2
        assert [m["key"] for m in models["live"]["models"]] == ["adder@2", "doubler@2", "summary@1"]
        assert models["last_reload"]["ok"] is True
        scored = (await service.client.post("/v1/score", json={"id": 1, "a": 1, "b": 2})).json()
        assert scored["results"]["adder"] == {"2": {"c": 3, "_status": "active"}}
        document = (await service.client.get("/openapi.json")).json()
        assert document["info"]["x-mlsm-model-set"]["models"][0] == "adder@2"
        run = service.runtime.store.get_run(service.runtime.run.id)
        assert run is not None and [s["generation"] for s in run.info["sets"]] == [1, 2]
        assert "mlsm_model_set_generation 2.0" in (await service.client.get("/metrics")).text


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def broken(:\n", "cannot load models from"),
        ("import nonexistent_module_xyz\n", "ModuleNotFoundError: No module named 'nonexistent_module_xyz'"),
        (
            textwrap.dedent(MODELS) + "\nduplicate = Model('adder', {'a': int}, VERSION, add)\n",
            "duplicate model 'adder@1' in one run",
        ),
        (  # adder is active and fails on its basic example (a=1)
            MODELS.replace('return {"c": data["a"] + data["b"]}', 'return {"c": 10 / (data["a"] - 1)}'),
            "adder@1: active model refused, its basic example fails (failed on its basic example and ",
        ),
    ],
    ids=["syntax-error", "import-error", "bad-model-set", "preflight-blocks"],
)
@pytest.mark.slow
async def test_a_bad_reload_is_refused_with_reasons_and_the_old_set_keeps_serving(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path], source: str, reason: str
) -> None:
    async with in_process(settings()) as service:
        model_file(source)
        response = await service.client.post("/v1/admin/reload")
        assert response.status_code == 409
        body = response.json()
        assert body["detail"].startswith("reload refused: ") and body["detail"].endswith("generation 1 keeps serving")
        assert any(reason in line for line in body["reasons"]), body["reasons"]
        assert body["live"]["generation"] == 1
        scored = await service.client.post("/v1/score", json={"id": 1, "a": 1, "b": 2})
        assert scored.json()["results"]["adder"]["1"]["c"] == 3
        models = (await service.client.get("/v1/models")).json()
        assert models["live"]["generation"] == 1 and models["last_reload"]["ok"] is False
        assert service.events("reload_refused")[0]["reasons"] == body["reasons"]
        assert 'mlsm_reloads_total{outcome="refused"} 1.0' in (await service.client.get("/metrics")).text


PARTNERS = MODELS.replace(
    'return {"c": data["a"] + data["b"]}',
    'return {"c": 10 // data["a"]}',  # adder (active) raises on a=0, not on its basic example (a=1)
)


@pytest.mark.slow
async def test_a_reload_to_a_model_failing_on_some_inputs_swaps_and_reports_it(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path]
) -> None:
    async with in_process(settings()) as service:
        before = (await service.client.get("/v1/models")).json()["live"]["models"][0]["preflight"]
        assert before == {
            "passed": True,
            "blocking": False,
            "examples": 100,
            "failing": 0,
            "first_failure": None,
            "check": None,
        }
        model_file(PARTNERS)
        response = await service.client.post("/v1/admin/reload")
        assert response.status_code == 200
        adder = response.json()["live"]["models"][0]
        assert adder["key"] == "adder@1" and adder["preflight"]["passed"] is False
        assert adder["preflight"]["blocking"] is False and adder["preflight"]["check"] == "raises"
        assert 0 < adder["preflight"]["failing"] < adder["preflight"]["examples"]
        assert adder["preflight"]["first_failure"].endswith('on input {"a": 0, "b": 0}')
        (warning,) = service.events("preflight_failed")
        assert warning["level"] == "warning" and warning["model"] == "adder@1" and warning["generation"] == 2
        scored = (await service.client.post("/v1/score", json={"id": 1, "a": 0, "b": 1})).json()["results"]
        assert "by zero" in scored["adder"]["1"]["_error"] and scored["doubler"]["1"]["d"] == 0
        metrics = (await service.client.get("/metrics")).text
        failing = adder["preflight"]["failing"]
        assert f'mlsm_model_preflight_failing_inputs{{model="adder@1"}} {failing:.1f}' in metrics
        assert 'mlsm_model_preflight_failing_inputs{model="doubler@1"} 0.0' in metrics


@pytest.mark.slow
async def test_strict_preflight_refuses_a_reload_on_any_failure(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path]
) -> None:
    async with in_process(settings(strict_preflight=True)) as service:
        model_file(MODELS.replace('return {"d": data["a"] * 2}', 'return {"d": 10 / data["a"]}'))  # a draft
        response = await service.client.post("/v1/admin/reload")
        assert response.status_code == 409
        (reason,) = response.json()["reasons"]
        assert reason.startswith("doubler@1: failed on ")
        assert " of 100 generated inputs (--strict-preflight refuses any failure); first: " in reason
        assert reason.endswith('on input {"a": 0}') and "division by zero" in reason
        assert (await service.client.get("/v1/models")).json()["live"]["generation"] == 1


@pytest.mark.slow
async def test_in_flight_requests_finish_on_the_set_they_started_with(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path]
) -> None:
    slow = """
        import threading
        from mlsm import Model

        VERSION = "1"
        GATE = threading.Event()

        def score(data, results):
            if data["a"] == 99:
                GATE.wait(10)
            return {"version": VERSION}

        MODELS = [Model("m", {"a": int}, VERSION, score)]
    """
    async with in_process(settings(models=str(model_file(slow)))) as service:
        old = service.runtime.live.current
        in_flight = asyncio.create_task(service.client.post("/v1/score", json={"id": "slow", "a": 99}))
        await asyncio.sleep(0.2)
        model_file(slow.replace('VERSION = "1"', 'VERSION = "2"'))
        reloaded = await service.client.post("/v1/admin/reload")
        assert reloaded.status_code == 200
        fresh = (await service.client.post("/v1/score", json={"id": "new", "a": 1})).json()
        assert fresh["results"]["m"] == {"2": {"version": "2", "_status": "draft"}}
        assert not in_flight.done()
        old.module.GATE.set()  # type: ignore[union-attr]
        finished = (await in_flight).json()
        assert finished["results"]["m"] == {"1": {"version": "1", "_status": "draft"}}


@pytest.mark.slow
async def test_helper_modules_beside_the_model_file_are_imported_afresh(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path], tmp_path: Path
) -> None:
    helper = tmp_path / "weights.py"
    helper.write_text("WEIGHT = 1\n")
    path = model_file(
        """
        from weights import WEIGHT
        from mlsm import Model

        MODELS = [Model("m", {"a": int}, "1", lambda data, results: {"s": data["a"] * WEIGHT})]
        """
    )
    async with in_process(settings(models=str(path))) as service:
        first = (await service.client.post("/v1/score", json={"id": 1, "a": 5})).json()
        assert first["results"]["m"]["1"]["s"] == 5
        hash_before = service.runtime.live.current.source_hash
        helper.write_text("WEIGHT = 3\n")
        assert (await service.client.post("/v1/admin/reload")).status_code == 200
        second = (await service.client.post("/v1/score", json={"id": 1, "a": 5})).json()
        assert second["results"]["m"]["1"]["s"] == 15
        assert service.runtime.live.current.source_hash != hash_before  # the helper is part of the source hash


@pytest.mark.slow
async def test_a_reload_that_hangs_is_refused_after_the_reload_timeout(
    settings: Callable[..., ServiceSettings], model_file: Callable[[str], Path], tmp_path: Path
) -> None:
    flag = tmp_path / "release"
    # long enough for the first, healthy load on a cold machine; the hanging reload runs into it
    async with in_process(settings(reload_timeout=8.0)) as service:
        model_file(
            f"""
            import os, time
            from mlsm import Model

            def hang(data, results):
                deadline = time.monotonic() + 30
                while not os.path.exists({str(flag)!r}) and time.monotonic() < deadline:
                    time.sleep(0.01)
                return {{}}

            MODELS = [Model("hang", {{"a": int}}, "1", hang)]
            """
        )
        try:
            response = await service.client.post("/v1/admin/reload")
            assert response.status_code == 409
            assert response.json()["reasons"] == [
                "loading the models did not finish within 8 s (an import or a preflight hangs)"
            ]
            assert (await service.client.get("/v1/models")).json()["live"]["generation"] == 1
        finally:
            flag.touch()
