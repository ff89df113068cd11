"""The service records a drift profile of what it scored, in its run record, like a batch run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlsm.runs._profiles import RunProfile
from mlsm.service.settings import ServiceSettings
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
