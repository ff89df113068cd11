"""Service fixtures: the app in-process through ``httpx.ASGITransport`` (lifespan included), and real ``mlsm serve``
processes on a free loopback port (``--port 0``; the port is read from the process's ``listening`` log line)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlsm.service.app import create_app
from mlsm.service.logs import EventLog
from mlsm.service.runtime import ServiceRuntime
from mlsm.service.settings import ServiceSettings

# plain models: 'adder' needs a and b, 'doubler' needs a only, 'summary' counts ok results
MODELS = """
    from mlsm import Field, Model, SummaryModel

    VERSION = "1"

    def add(data, results):
        return {"c": data["a"] + data["b"]}

    def double(data, results):
        return {"d": data["a"] * 2}

    def count_ok(data, results):
        return {"ok": sum(1 for versions in results.values() for s in versions.values() if "_error" not in s)}

    adder = Model("adder", {"a": int, "b": Field(int, ge=0)}, VERSION, add, status="active")
    doubler = Model("doubler", {"a": Field(int)}, VERSION, double)
    summary = SummaryModel(
        "summary", [{"name": "adder", "version": VERSION}, {"name": "doubler", "version": VERSION}], "1", count_ok
    )
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def model_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write (or rewrite) ``tmp_path/models.py`` from dedented source; returns its path."""

    def write(source: str = MODELS) -> Path:
        path = tmp_path / "models.py"
        path.write_text(textwrap.dedent(source))
        return path

    return write


@dataclass
class InProcess:
    """A service running in this process: an HTTP client for it, its runtime and its log."""

    client: httpx.AsyncClient
    runtime: ServiceRuntime
    log: io.StringIO

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in map(json.loads, self.log.getvalue().splitlines()) if e["event"] == name]


@asynccontextmanager
async def in_process(
    settings: ServiceSettings, *, peer: str = "127.0.0.1", base_url: str = "http://localhost"
) -> AsyncIterator[InProcess]:
    """Open the runtime, run the app's lifespan, and yield a client talking to it through ASGITransport (from the
    address ``peer``, naming the host of ``base_url``)."""
    log = io.StringIO()
    runtime = ServiceRuntime.open(settings, log=EventLog(log))
    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield InProcess(client, runtime, log)


@pytest.fixture
def settings(tmp_path: Path, model_file: Callable[[str], Path]) -> Callable[..., ServiceSettings]:
    """Settings for the default model file and a SQLite store in tmp_path; keyword arguments override."""

    def make(**overrides: Any) -> ServiceSettings:
        if "models" not in overrides:
            overrides["models"] = str(model_file(MODELS))
        values: dict[str, Any] = {"id_field": "id", "store": f"sqlite:///{tmp_path / 'results.db'}", **overrides}
        return ServiceSettings(**values)

    return make


# -- real processes ------------------------------------------------------------------------------------------------


@dataclass
class Server:
    """A real ``mlsm serve`` process."""

    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if name is None or event.get("event") == name:
                    events.append(event)
        return events

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30, **kwargs)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)


def wait_until(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``mlsm serve ARGS --port 0`` (working directory tmp_path); waits until /readyz answers 200.

    Every process started is ended when the test ends (SIGKILL if it is still running).
    """
    started: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: bool = True, headers: Any = None) -> Server:
        log_path = tmp_path / f"serve-{len(started)}.log"
        full_env = {k: v for k, v in os.environ.items() if k not in ("MLSM_STORE", "MLSM_API_KEY")}
        full_env.update(env or {})
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "mlsm", "serve", *map(str, args), "--port", "0"],
                cwd=tmp_path,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, log_path, headers=dict(headers or {}))
        started.append(server)
        if not ready:
            return server

        def listening() -> Any:
            if process.poll() is not None:
                pytest.fail(f"mlsm serve exited with {process.returncode}: {log_path.read_text()}")
            found = server.events("listening")
            return found[0] if found else None

        server.url = wait_until(listening, 60, "the listening line")["url"]

        def is_ready() -> bool:
            try:
                return httpx.get(server.url + "/readyz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(is_ready, 60, "/readyz")
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(10)
