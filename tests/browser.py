"""A real headless Chromium for the tests, driven over the Chrome DevTools Protocol with no extra dependency.

``open_page(path_or_url)`` starts Debian's ``chromium`` (``scripts/ensure-chromium`` installs it) with a fresh
profile, opens the page and returns a ``Page``: what the page logged (console calls, uncaught exceptions, the
browser's own log), every network request it attempted and every one that failed, ``evaluate(js)`` and
``screenshot(path)``. The protocol runs over a websocket; the small client below speaks just enough of RFC 6455
for it. ``BrowserUnavailable`` means Chromium is not installed or would not start (tests skip on it);
``MLSM_TEST_CHROMIUM`` names another executable.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# The machine's closed network refuses connections, so everything Chromium would phone home for is switched off.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # needed as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
)
START_TIMEOUT = 30.0
CALL_TIMEOUT = 60.0


_UNDRAWN_JS = """(() => {
  const painted = (canvas) => {
    let ctx = null;
    try { ctx = canvas.getContext("2d"); } catch (e) { return true; }
    if (!ctx) return true;  // a WebGL canvas: its size is all that can be checked from here
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
    return false;
  };
  const drawn = (root) => {
    for (const el of root.querySelectorAll("svg, canvas")) {
      const box = el.getBoundingClientRect();
      if (box.width <= 0 || box.height <= 0) continue;
      const svg = el.tagName.toLowerCase() === "svg";
      if (svg ? el.querySelector("path, rect, circle, line, polyline, text") : painted(el)) return true;
    }
    for (const el of root.querySelectorAll("*")) if (el.shadowRoot && drawn(el.shadowRoot)) return true;
    return false;
  };
  const found = [...document.querySelectorAll(%s)];
  return [found.length, found.filter((el) => !drawn(el)).map((el, i) => el.id || "#" + i)];
})()"""


class BrowserUnavailable(Exception):
    """Chromium is not installed or could not be started."""


class BrowserError(Exception):
    """The browser answered a protocol call with an error, or stopped answering."""


def chromium_path() -> str | None:
    """The Chromium executable to use: ``$MLSM_TEST_CHROMIUM``, else ``chromium`` on PATH, else None."""
    explicit = os.environ.get("MLSM_TEST_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class _WebSocket:
    """A blocking websocket client: text frames out (masked, as RFC 6455 requires of clients), whole messages in."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlparse(url)
        self._sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        # No Origin header: Chromium only checks --remote-allow-origins for connections that send one.
        request = (
            f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise BrowserError(f"websocket handshake with {url} closed early")
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        self._buffer = bytearray(rest)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise BrowserError(f"websocket handshake with {url} refused: {status.decode(errors='replace')}")

    def settimeout(self, seconds: float) -> None:
        self._sock.settimeout(seconds)

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self._sock.recv(max(65536, n - len(self._buffer)))
            if not chunk:
                raise BrowserError("the browser closed the DevTools connection")
            self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header.append(0x80 | size)
        elif size < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", size)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(bytes(header) + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def receive(self) -> str:
        parts: list[bytes] = []
        while True:
            first, second = self._read(2)
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._read(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(size)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise BrowserError("the browser closed the DevTools connection")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x1, 0x2, 0x0):
                parts.append(payload)
                if first & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self._sock.close()


class _Connection:
    """One DevTools websocket: numbered calls answered in order, every event kept for the page to read."""

    def __init__(self, url: str) -> None:
        self._ws = _WebSocket(url, timeout=CALL_TIMEOUT)
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = CALL_TIMEOUT) -> Any:
        self._next_id += 1
        call_id = self._next_id
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline, f"an answer to {method}")
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError(f"no {waiting_for} from the browser in time")
        self._ws.settimeout(remaining)
        try:
            message = json.loads(self._ws.receive())
        except TimeoutError as exc:
            raise BrowserError(f"no {waiting_for} from the browser in time") from exc
        if "method" in message:
            self.events.append(message)
        return message

    def count(self, method: str) -> int:
        return sum(1 for e in self.events if e["method"] == method)

    def wait_event(self, method: str, seen: int, timeout: float = CALL_TIMEOUT) -> dict[str, Any]:
        """Read until more than ``seen`` events named ``method`` have arrived; returns the params of the next one."""
        deadline = time.monotonic() + timeout
        while self.count(method) <= seen:
            self._receive(deadline, f"{method} event")
        return [e for e in self.events if e["method"] == method][seen].get("params", {})

    def close(self) -> None:
        self._ws.close()


@dataclass
class ConsoleMessage:
    """Something the page or the browser logged: its source, level and text."""

    source: str  # "console", "exception" or "log"
    level: str
    text: str


@dataclass
class Page:
    """An open page in its own headless Chromium; ``close()`` (or leaving a ``with`` block) stops the browser."""

    url: str
    _process: subprocess.Popen[bytes]
    _profile: Path
    _browser: _Connection
    _page: _Connection
    width: int = 1280
    _closed: bool = field(default=False, repr=False)

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pump(self) -> None:
        """Take in events the browser has already sent (a cheap round trip)."""
        self._page.call("Runtime.evaluate", {"expression": "0"})

    @property
    def messages(self) -> list[ConsoleMessage]:
        """Every console call, uncaught exception and browser log entry so far, in order."""
        self._pump()
        found: list[ConsoleMessage] = []
        for event in self._page.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                found.append(ConsoleMessage("console", params.get("type", "log"), text))
            elif event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                text = details.get("exception", {}).get("description") or details.get("text", "")
                found.append(ConsoleMessage("exception", "error", text))
            elif event["method"] == "Log.entryAdded":
                entry = params.get("entry", {})
                found.append(ConsoleMessage("log", entry.get("level", "info"), entry.get("text", "")))
        return found

    @property
    def errors(self) -> list[ConsoleMessage]:
        """The messages at error level (console.error, uncaught exceptions, failed loads the browser logged)."""
        return [m for m in self.messages if m.level in ("error", "assert")]

    @property
    def requests(self) -> list[str]:
        """Every URL the page asked the network stack for, the page itself included (``data:`` URLs left out)."""
        self._pump()
        urls = [e["params"]["request"]["url"] for e in self._page.events if e["method"] == "Network.requestWillBeSent"]
        return [u for u in urls if not u.startswith("data:")]

    @property
    def failed_requests(self) -> list[str]:
        """The requests that failed, as ``URL: reason``."""
        self._pump()
        sent = {
            e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in self._page.events
            if e["method"] == "Network.requestWillBeSent"
        }
        return [
            f"{sent.get(e['params']['requestId'], '?')}: {e['params'].get('errorText', '')}"
            for e in self._page.events
            if e["method"] == "Network.loadingFailed"
        ]

    def evaluate(self, expression: str, timeout: float = CALL_TIMEOUT) -> Any:
        """The value of a JavaScript expression in the page (promises awaited); a thrown error raises BrowserError."""
        result = self._page.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = CALL_TIMEOUT) -> Any:
        """Evaluate ``expression`` until it is truthy, giving up after ``timeout`` seconds; returns its last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def undrawn(self, selector: str = "[data-chart]") -> tuple[int, list[str]]:
        """How many elements match ``selector``, and the ids (or positions) of those holding no drawn chart: an SVG
        with shapes in it, or a canvas with a painted pixel, of non-zero size (shadow roots searched too)."""
        total, missing = self.evaluate(_UNDRAWN_JS % json.dumps(selector))
        return int(total), list(missing)

    def drawn(self, timeout: float = 30.0, selector: str = "[data-chart]") -> tuple[int, list[str]]:
        """:meth:`undrawn`, asked again until every chart is drawn or ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while (undrawn := self.undrawn(selector))[1] and time.monotonic() < deadline:
            time.sleep(0.1)
        return undrawn

    def mouse_move(self, x: float, y: float) -> None:
        """Move the mouse to (x, y) in the window, as a hovering user would."""
        self._page.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def screenshot(self, path: Path | str, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole page, not just the window, unless ``full_page`` is False)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self._page.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": self.width, "height": size["height"], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self._page.call("Page.captureScreenshot", params)["data"]
        target = Path(path)
        target.write_bytes(base64.b64decode(data))
        return target

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._page.close()
            self._browser.call("Browser.close", timeout=10)
        except (BrowserError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._browser.close()
        _end_group(self._process)
        shutil.rmtree(self._profile, ignore_errors=True)


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """Kill what is left of the process group this browser started (renderer and GPU helpers)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _start_chromium(executable: str, profile: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start Chromium on a free debugging port; returns the process and its browser websocket URL."""
    log = open(profile / "chromium.log", "wb")  # noqa: SIM115 - kept open for the process's life
    try:
        process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so closing the page ends its helpers too
        )
    except OSError as exc:
        raise BrowserUnavailable(f"cannot start {executable}: {exc}") from exc
    finally:
        log.close()
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (profile / "chromium.log").read_text(errors="replace")[-2000:]
            raise BrowserUnavailable(f"{executable} exited with {process.returncode}: {tail}")
        lines = port_file.read_text().split() if port_file.exists() else []
        if len(lines) >= 2:
            return process, f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=10)
    raise BrowserUnavailable(f"{executable} did not open its DevTools port within {START_TIMEOUT:.0f} s")


def open_page(path_or_url: Path | str, width: int = 1280, height: int = 900, timeout: float = CALL_TIMEOUT) -> Page:
    """Start a fresh headless Chromium, load ``path_or_url`` (a file path or URL) and wait for its load event."""
    executable = chromium_path()
    if executable is None:
        raise BrowserUnavailable("chromium is not installed (scripts/ensure-chromium installs it)")
    text = str(path_or_url)
    url = text if text.startswith(("http:", "https:", "file:", "about:")) else Path(text).resolve().as_uri()
    profile = Path(tempfile.mkdtemp(prefix="mlsm-chromium-"))
    process, browser_url = _start_chromium(executable, profile)
    try:
        browser = _Connection(browser_url)
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        port = urlparse(browser_url).port
        page = _Connection(f"ws://127.0.0.1:{port}/devtools/page/{target}")
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        opened = Page(url, process, profile, browser, page, width=width)
        loads = page.count("Page.loadEventFired")
        navigation = page.call("Page.navigate", {"url": url})
        if navigation.get("errorText"):
            opened.close()
            raise BrowserError(f"cannot open {url}: {navigation['errorText']}")
        page.wait_event("Page.loadEventFired", loads, timeout=timeout)
        return opened
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        _end_group(process)
        shutil.rmtree(profile, ignore_errors=True)
        raise
