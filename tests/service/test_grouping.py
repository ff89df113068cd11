"""Grouping concurrent records for batch models: groups follow the concurrency, never mix model sets."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from mlsm.service.grouping import Grouper
from mlsm.service.modelset import ServingSet, load_serving_set
from mlsm.service.settings import ServiceSettings

pytestmark = pytest.mark.anyio

BATCH_MODELS = """
    import pandas as pd
    from mlsm import Field, Model

    VERSION = "{version}"

    def frame_model(frame):
        return pd.DataFrame({{"twice": frame["a"] * 2}})

    MODELS = [Model("vec", {{"a": Field(int)}}, VERSION, frame_model, batch=True)]
"""


def model_set(folder: Path, version: str) -> ServingSet:
    path = folder / f"models_{version}.py"
    path.write_text(textwrap.dedent(BATCH_MODELS.format(version=version)))
    settings = ServiceSettings(str(path), "id", model_timeout=60)
    return load_serving_set(settings, generation=int(version), trigger="test")


@pytest.mark.slow
async def test_clients_in_step_are_scored_one_group_per_round(tmp_path: Path) -> None:
    models = model_set(tmp_path, "1")
    sizes: list[int] = []
    grouper = Grouper(max_size=64, max_wait_ms=200, threads=2, on_group=lambda n, seconds: sizes.append(n))

    async def client(i: int) -> list[int]:
        answers = []
        for round_ in range(3):
            results = (await grouper.score(models, [{"a": 10 * i + round_}])).results
            answers.append(results[0]["vec"]["1"]["twice"])
        return answers

    answers = await asyncio.gather(*(client(i) for i in range(8)))
    assert answers == [[2 * (10 * i + r) for r in range(3)] for i in range(8)]
    # the first record finds the service idle and goes alone; then the clients travel in groups (exact sizes
    # depend on how the threads are scheduled on a busy machine: [1, 8, 8, 7] when nothing else runs)
    assert sizes[0] == 1 and sum(sizes) == 24
    assert max(sizes) == 8, f"the 8 clients were never scored together: {sizes}"
    assert len(sizes) <= 12, f"clients in step were barely grouped: {sizes}"
    grouper.close()


async def test_one_client_at_a_time_is_never_grouped(tmp_path: Path) -> None:
    models = model_set(tmp_path, "1")
    sizes: list[int] = []
    grouper = Grouper(max_size=64, max_wait_ms=50, threads=2, on_group=lambda n, seconds: sizes.append(n))
    for i in range(5):
        assert (await grouper.score(models, [{"a": i}])).results[0]["vec"]["1"]["twice"] == 2 * i
    assert sizes == [1, 1, 1, 1, 1]
    grouper.close()


@pytest.mark.slow
async def test_groups_never_exceed_the_maximum_nor_mix_model_sets(tmp_path: Path) -> None:
    old, new = model_set(tmp_path, "1"), model_set(tmp_path, "2")
    sizes: list[int] = []
    grouper = Grouper(max_size=4, max_wait_ms=20, threads=2, on_group=lambda n, seconds: sizes.append(n))
    calls = [grouper.score(old if i % 2 else new, [{"a": i}]) for i in range(20)]
    results = await asyncio.gather(*calls)
    for i, (result, _, _) in enumerate(results):
        assert list(result[0]["vec"]) == (["1"] if i % 2 else ["2"])
        assert result[0]["vec"]["1" if i % 2 else "2"]["twice"] == 2 * i
    assert sum(sizes) == 20 and max(sizes) <= 4
    grouper.close()
