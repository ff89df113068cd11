"""Limits per client against a real ``mlsm serve`` over real sockets: idle and busy connections beyond the cap,
slow and huge headers, slow bodies, and one hostile client beside honest ones."""

from __future__ import annotations

import asyncio
import json
import re
import select
import signal
import socket
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mlsm.stores import open_store

from .conftest import MODELS, Server, wait_until
from .test_hostile import TEXT_MODELS

pytestmark = pytest.mark.slow


def address(server: Server) -> tuple[str, int]:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


def closed_by(server: Server, reason: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    match = re.search(rf'^mlsm_connections_closed_total{{reason="{reason}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def rss_kib(server: Server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


@contextmanager
def sockets(server: Server, count: int) -> Iterator[list[socket.socket]]:
    opened = [socket.create_connection(address(server), timeout=30) for _ in range(count)]
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def answer(sock: socket.socket) -> tuple[int | None, bytes]:
    """The status and body of the response on ``sock`` (None when it was closed without one)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    if not data:
        return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_idle_sockets_beyond_the_cap_do_not_lock_out_a_new_client(
    serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    server = serve(model_file(MODELS), "--id-field", "id", "--store", "sqlite:///r.db", "--max-connections", "20")
    with sockets(server, 60) as idle:
        # each connection past the cap closed the longest-idle one: a new client gets in
        response = httpx.post(server.url + "/v1/score", json={"id": 1, "a": 1, "b": 1})
        assert response.status_code == 200
        assert closed_by(server, "idle_closed") >= 40
        statuses = [answer(sock)[0] for sock in idle[:40]]
        assert statuses == [None] * 40  # closed quietly: they never sent a byte


def test_busy_connections_at_the_cap_get_a_quick_503_and_the_service_recovers(
    serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    server = serve(
        model_file(MODELS),
        "--id-field",
        "id",
        "--store",
        "sqlite:///r.db",
        "--max-connections",
        "10",
        "--body-timeout",
        "60",
    )
    head = (
        b"POST /v1/score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with sockets(server, 10) as busy:
        for sock in busy:
            sock.sendall(head)  # the body never comes: each holds a request in flight
        with socket.create_connection(address(server), timeout=30) as late:
            status, body = answer(late)
        assert status == 503
        assert json.loads(body)["detail"].startswith("too many connections (10 open, each busy)")
        assert json.loads(body)["request_id"]
    response = httpx.post(server.url + "/v1/score", json={"id": 1, "a": 1, "b": 1})
    assert response.status_code == 200
    assert closed_by(server, "max_connections") >= 1


def test_a_slow_header_sender_is_cut_off(serve: Callable[..., Server], model_file: Callable[[str], Path]) -> None:
    server = serve(model_file(MODELS), "--id-field", "id", "--store", "sqlite:///r.db", "--header-timeout", "1")
    with socket.create_connection(address(server), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        cut = False
        for i in range(300):  # a header line every 0.1 s: 30 s, far past the 1 s limit
            if select.select([sock], [], [], 0.1)[0]:
                break  # the server answered (or closed)
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
        status, body = answer(sock)
    assert cut or status == 408
    if status == 408:
        assert json.loads(body)["detail"] == "the request's headers did not arrive within 1 s"
    assert closed_by(server, "header_timeout") == 1
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_a_slow_body_is_cut_off(serve: Callable[..., Server], model_file: Callable[[str], Path]) -> None:
    server = serve(model_file(MODELS), "--id-field", "id", "--store", "sqlite:///r.db", "--body-timeout", "1")
    head = (
        b"POST /v1/score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with socket.create_connection(address(server), timeout=30) as sock:
        sock.sendall(head + b'{"id": 1, ')
        status, body = answer(sock)
    assert status == 408
    assert json.loads(body)["detail"] == "the request's body did not arrive within 1 s"
    assert closed_by(server, "body_timeout") == 1
    scored = [e["status"] for e in server.events("request") if e["path"] == "/v1/score"]
    assert scored == [499]  # the client went away: not an error of the service
    assert not server.events("error")
    with open_store(f"sqlite:///{server.log_path.parent / 'r.db'}") as store:
        assert list(store.current_documents()) == []


def test_a_huge_header_gets_431_without_the_process_growing_by_its_size(
    serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    server = serve(model_file(MODELS), "--id-field", "id", "--store", "sqlite:///r.db")
    before = rss_kib(server)
    line = b"X-Huge: " + b"a" * (1024 * 1024)
    for _ in range(3):
        with socket.create_connection(address(server), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            try:
                for _ in range(100):  # 100 MiB, if the server kept reading
                    sock.sendall(line)
            except (BrokenPipeError, ConnectionResetError):
                pass
            status, body = answer(sock)
        assert status in (431, None)  # the answer may be lost in the reset of the unread data
        if status == 431:
            assert json.loads(body)["detail"] == "the request line and headers are over the limit of 65536 bytes"
    grown = rss_kib(server) - before
    assert grown < 20 * 1024, f"the process grew by {grown} KiB"
    assert closed_by(server, "header_too_large") == 3
    assert httpx.get(server.url + "/healthz").status_code == 200


HONEST_CLIENTS = 12


def test_one_hostile_client_costs_only_its_own_requests(
    tmp_path: Path, serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    models = model_file(TEXT_MODELS)
    server = serve(models, "--id-field", "id", "--store", "sqlite:///results.db", "--batch-max-wait-ms", "20")
    hostile_bodies = [
        b'{"id": "h-1", "s": "\\udc00"}',
        b'{"id": "\\udc00", "s": "x"}',
        b'{"records": [{"id": "h-2", "s": "fine"}, {"id": "h-3", "s": "\\ud800"}]}',
        b'{"id": "h-4", "s": "x", "\\udfff": 1}',
        b"\xff\xfe not json",
    ]

    async def honest(http: httpx.AsyncClient, client: int) -> dict[str, object]:
        answered = {}
        for i in range(25):
            key = f"c{client}-{i}"
            response = await http.post("/v1/score", json={"id": key, "s": "x" * (i % 7)})
            assert response.status_code == 200, response.text
            answered[key] = response.json()
        return answered

    async def hostile(http: httpx.AsyncClient, stop: asyncio.Event) -> list[int]:
        statuses = []
        while not stop.is_set():
            for body in hostile_bodies:
                response = await http.post("/v1/score", content=body, headers={"content-type": "application/json"})
                statuses.append(response.status_code)
        return statuses

    async def main() -> tuple[list[dict[str, object]], list[int]]:
        limits = httpx.Limits(max_connections=HONEST_CLIENTS + 1)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
            stop = asyncio.Event()
            bad = asyncio.ensure_future(hostile(http, stop))
            answers = await asyncio.gather(*(honest(http, c) for c in range(HONEST_CLIENTS)))
            stop.set()
            return answers, await bad

    answers, statuses = asyncio.run(main())
    assert len(statuses) >= len(hostile_bodies)
    assert set(statuses) <= {400, 422}, statuses
    with open_store(f"sqlite:///{tmp_path / 'results.db'}") as store:
        for answered in answers:
            for key, document in answered.items():
                assert store.current(key) == document
        hostile_ids = {"h-1", "h-2", "h-3", "h-4"}
        assert not hostile_ids & {d["id"] for d in store.current_documents()}
    assert server.process.poll() is None


def test_a_500_of_a_real_server_is_one_json_log_line(
    tmp_path: Path, serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    server = serve(model_file(MODELS), "--id-field", "id", "--store", "sqlite:///results.db")
    assert httpx.post(server.url + "/v1/score", json={"id": 1, "a": 1, "b": 1}).status_code == 200
    with sqlite3.connect(tmp_path / "results.db") as broken:  # the store's tables are gone under the service
        for (table,) in list(broken.execute("SELECT name FROM sqlite_master WHERE type = 'table'")):
            broken.execute(f'DROP TABLE "{table}"')
    failed = httpx.get(server.url + "/v1/results/1", headers={"x-request-id": "boom-2"})
    assert failed.status_code == 500
    assert failed.json()["request_id"] == "boom-2"
    server.signal(signal.SIGTERM)
    server.wait(60)
    lines = server.log_path.read_text().splitlines()
    assert all(line.startswith("{") for line in lines), [line for line in lines if not line.startswith("{")][:5]
    errors = [event for event in map(json.loads, lines) if event["event"] == "error"]
    assert len(errors) == 1 and "Traceback" in errors[0]["traceback"]


def open_connections(server: Server) -> float:
    """The gauge, read on a connection of its own (which it counts)."""
    text = httpx.get(server.url + "/metrics").text
    match = re.search(r"^mlsm_connections_open (\S+)$", text, re.MULTILINE)
    assert match is not None, text
    return float(match.group(1))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_open_connections_gauge_counts_connections_as_they_come_and_go(
    serve: Callable[..., Server], model_file: Callable[[str], Path], workers: str
) -> None:
    server = serve(model_file(MODELS), "--id-field", "id", "--store", "sqlite:///r.db", "--workers", workers)
    wait_until(lambda: open_connections(server) == 1, 10, "only the scrape's own connection")
    with sockets(server, 5) as idle:
        wait_until(lambda: open_connections(server) == 6, 10, "five idle connections and the scrape")
        body = json.dumps({"id": "c-1", "a": 1, "b": 2}).encode()
        head = "POST /v1/score HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: "
        idle[0].sendall(f"{head}{len(body)}\r\n\r\n".encode() + body)
        assert idle[0].recv(65536).startswith(b"HTTP/1.1 200 ")
        assert open_connections(server) == 6  # a connection that has been used stays counted while open
    wait_until(lambda: open_connections(server) == 1, 10, "the closed ones gone")
