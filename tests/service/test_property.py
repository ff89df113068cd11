"""Random bytes and random JSON into the service: the invariants of issue 11 hold for any body.

Every answer is either a stored result (each document of a 200 is the current document of its id) or the service's
JSON error body with a request id and a 4xx status; an honest request sent beside each hostile one is answered 200
and stored; the service stays up. Many examples in-process, and a smaller run against a real ``mlsm serve``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mlsm.service.settings import ServiceSettings
from mlsm.stores import Store, open_store

from .conftest import MODELS, InProcess, Server, in_process

T = TypeVar("T")

CONTENT_TYPES = st.sampled_from(  # JSON most of the time, so that most bodies reach the parser
    [
        *["application/json"] * 6,
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/json; charset=utf-16",
        None,
    ]
)
TEXT = st.text(max_size=12) | st.sampled_from(["\udc00", "a\ud800b", "", " ", "1", "42.0", "x" * 300])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)
RECORDS = st.fixed_dictionaries(
    {"id": st.integers(-5, 10**20) | TEXT | JSON_VALUES},
    optional={"a": st.integers(-5, 5) | JSON_VALUES, "b": st.integers(-5, 5) | JSON_VALUES, "z": JSON_VALUES},
)
SHAPES = RECORDS | st.fixed_dictionaries({"records": st.lists(RECORDS | JSON_VALUES, max_size=5)}) | JSON_VALUES


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A request body (random bytes, or random JSON with or without a record's shape) and its content type."""
    kind = draw(st.sampled_from(["bytes", "json", "json"]))
    if kind == "bytes":
        body = draw(st.binary(max_size=300))
    else:
        text = json.dumps(draw(SHAPES), ensure_ascii=draw(st.booleans()))
        body = text.encode("utf-8", "surrogatepass")  # lone surrogates sent raw, as a broken client would
        if draw(st.booleans()):
            cut = draw(st.integers(0, len(body)))
            body = body[:cut] + draw(st.binary(max_size=8)) + body[cut:]
    return body, draw(CONTENT_TYPES)


def check(response: httpx.Response, store: Store) -> None:
    """The invariants for one answer: a stored result, or the service's error body with a request id."""
    body = response.json()  # every answer is JSON
    event(f"status {response.status_code}")  # shown by --hypothesis-show-statistics
    if response.status_code == 200:
        documents = body["results"] if set(body) == {"results"} else [body]
        assert documents, body
        last = {document["id"]: document for document in documents}
        for key, document in last.items():
            assert store.current(key) == document, key  # acknowledged means stored
        return
    assert 400 <= response.status_code < 500, (response.status_code, body)
    assert set(body) == {"detail", "request_id"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]


@contextmanager
def service_on_a_thread(settings: ServiceSettings) -> Iterator[tuple[InProcess, Callable[[Coroutine[Any, Any, T]], T]]]:
    """An in-process service on its own event loop thread (shared by every example), and a way to run on it."""
    loop = asyncio.new_event_loop()
    ready: list[InProcess] = []
    stop = asyncio.Event()
    started = threading.Event()

    async def main() -> None:
        async with in_process(settings) as service:
            ready.append(service)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(120), "the service did not start"

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(60)

    try:
        yield ready[0], run
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()


@pytest.mark.slow
def test_random_bodies_in_process_cost_only_their_own_request(settings: Callable[..., ServiceSettings]) -> None:
    honest_ids = count()
    with service_on_a_thread(settings()) as (service, run):
        store = service.runtime.store

        @settings_for(examples=150)
        @given(bodies())
        def one(example: tuple[bytes, str | None]) -> None:
            body, content_type = example
            headers = {"content-type": content_type} if content_type else {}
            key = f"honest-{next(honest_ids)}"

            async def both() -> tuple[httpx.Response, httpx.Response]:
                hostile = service.client.post("/v1/score", content=body, headers=headers)
                honest = service.client.post("/v1/score", json={"id": key, "a": 1, "b": 2})
                return await asyncio.gather(hostile, honest)

            hostile, honest = run(both())
            check(hostile, store)
            assert honest.status_code == 200, honest.text
            assert store.current(key) == honest.json()

        one()
        assert run(service.client.get("/healthz")).status_code == 200


@pytest.mark.slow
def test_random_bodies_against_a_real_server(
    tmp_path: Path, serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    server = serve(model_file(MODELS), "--id-field", "id", "--store", "sqlite:///results.db")
    honest_ids = count()
    with open_store(f"sqlite:///{tmp_path / 'results.db'}") as store, httpx.Client(base_url=server.url) as http:

        @settings_for(examples=40)
        @given(bodies())
        def one(example: tuple[bytes, str | None]) -> None:
            body, content_type = example
            headers = {"content-type": content_type} if content_type else {}
            check(http.post("/v1/score", content=body, headers=headers), store)
            key = f"honest-{next(honest_ids)}"
            honest = http.post("/v1/score", json={"id": key, "a": 1, "b": 2})
            assert honest.status_code == 200, honest.text
            assert store.current(key) == honest.json()

        one()
    assert server.process.poll() is None
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert not [e for e in server.events() if e.get("level") == "error"]


def settings_for(*, examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Hypothesis settings for a service shared by every example (no deadline: a busy machine is slow)."""
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
