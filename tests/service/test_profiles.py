"""The service records a drift profile of what it scored, in its run record, like a batch run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from mlsm.runs._profiles import RunProfile
from mlsm.service.settings import ServiceSettings
from mlsm.service.writer import PROFILE_RECORDS, RUN_SECONDS
from mlsm.stores import open_store

from .conftest import in_process

pytestmark = pytest.mark.anyio


@pytest.mark.slow
async def test_the_service_run_records_the_profile_of_every_stored_record(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings()) as service:
        records = [{"id": i, "a": i, "b": 1} for i in range(20)] + [{"id": "x", "a": "no", "b": -1}, {"id": "y"}]
        response = await service.client.post("/v1/score", json={"records": records})
        assert response.status_code == 200
        one = await service.client.post("/v1/score", json={"records": [{"id": "z", "a": 5, "b": 2}]})
        assert one.status_code == 200
        run = service.runtime.run.id
        url = service.runtime.store.url
    with open_store(url) as store:
        final = store.get_run(run)
        assert final is not None and final.status == "completed"
        profile = RunProfile.from_json(final.counts["profile"])
    assert profile.rows == 23
    a, b = profile.fields["a"], profile.fields["b"]
    assert (a.count, a.missing, a.invalid) == (21, 1, 1)
    assert (b.count, b.missing, b.invalid) == (21, 1, 1)  # -1 breaks ge=0
    assert profile.models["adder@1"].errors == 2 and profile.models["adder@1"].outputs["c"].count == 21
    assert profile.models["doubler@1"].outputs["d"].maximum == 38.0


@pytest.mark.slow
async def test_the_profile_reaches_the_run_record_while_serving_and_counts_every_record_at_shutdown(
    settings: Callable[..., ServiceSettings],
) -> None:
    # more records than are profiled together (PROFILE_RECORDS), sent one request at a time as clients do
    total = PROFILE_RECORDS + 44
    async with in_process(settings()) as service:
        for i in range(total):
            response = await service.client.post("/v1/score", json={"id": i, "a": i, "b": 1})
            assert response.status_code == 200
        run, url = service.runtime.run.id, service.runtime.store.url
        with open_store(url) as store:
            live = store.get_run(run)
        assert live is not None and live.status != "completed"
        assert RunProfile.from_json(live.counts["profile"]).rows >= 1  # the first commit's profile, written since

        def live_rows() -> int:
            with open_store(url, mode="read") as store:
                record = store.get_run(run)
            assert record is not None
            return RunProfile.from_json(record.counts["profile"]).rows

        # idle RUN_SECONDS: the live run record's profile holds every stored record, before any shutdown
        deadline = time.monotonic() + RUN_SECONDS + 10
        while live_rows() < total and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert live_rows() == total
    with open_store(url) as store:
        final = store.get_run(run)
    assert final is not None
    profile = RunProfile.from_json(final.counts["profile"])
    assert profile.rows == total and profile.fields["a"].count == total
    assert profile.models["doubler@1"].outputs["d"].maximum == 2.0 * (total - 1)


@pytest.mark.slow
async def test_the_run_record_is_saved_at_most_every_run_seconds_and_exactly_at_shutdown(
    settings: Callable[..., ServiceSettings],
) -> None:
    # the run record is the run's whole row (counts, profile, provenance): saved with every commit it made most of
    # the store's writes; now a commit saves it when RUN_SECONDS have passed since the last save
    async with in_process(settings()) as service:
        run, url = service.runtime.run.id, service.runtime.store.url

        async def stored_rows() -> int:
            with open_store(url, mode="read") as store:
                record = store.get_run(run)
            assert record is not None
            return record.rows

        assert (await service.client.post("/v1/score", json={"id": 0, "a": 0, "b": 1})).status_code == 200
        assert await stored_rows() == 1  # the first commit saves it
        started = time.monotonic()
        for i in range(1, 20):
            assert (await service.client.post("/v1/score", json={"id": i, "a": i, "b": 1})).status_code == 200
        lagging, took = await stored_rows(), time.monotonic() - started
        if took < RUN_SECONDS:  # (on a machine too loaded to send 19 requests in a second, every commit may save)
            assert lagging < 20
        # a service that goes idle brings its run record up to date RUN_SECONDS later, without another write
        deadline = time.monotonic() + RUN_SECONDS + 10
        while await stored_rows() < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await stored_rows() == 20 and time.monotonic() - started >= RUN_SECONDS
        assert (await service.client.post("/v1/score", json={"id": 20, "a": 1, "b": 1})).status_code == 200
    with open_store(url) as store:
        final = store.get_run(run)
    assert final is not None and final.status == "completed" and final.rows == 21
    assert final.counts["models"]["adder@1"] == {"ok": 21, "errors": 0}
