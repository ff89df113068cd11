"""Real database servers for the tests: a throw-away PostgreSQL cluster and a MongoDB wire-protocol server.

PostgreSQL comes from the system's packages (``scripts/test`` installs them when missing); the cluster lives in a
temporary directory for one test session and is stopped afterwards. MongoDB cannot be installed here, so the
MongoDB tests talk over the wire to nx-27017 (MongoDB's protocol backed by SQLite), or to a real MongoDB when
``MLSM_TEST_MONGO_URL`` is set. ``MLSM_TEST_POSTGRES_URL`` likewise points the tests at an existing PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_USER, PG_PASSWORD = "mlsm", "mlsm-test-password"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bindir() -> Path | None:
    """Where the PostgreSQL server programs are (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresCluster:
    """A running throw-away cluster: ``url(database)`` connects as the password-protected ``mlsm`` role."""

    bindir: Path
    folder: Path
    port: int
    as_postgres: bool
    durable: bool = False

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "mlsm", password: str = PG_PASSWORD) -> str:
        return f"postgresql://{PG_USER}:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, check=check, timeout=120)

    def admin(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the cluster's Unix socket."""
        done = self._run(
            str(self.bindir / "psql"), "-h", str(self.folder), "-p", str(self.port), "-U", "postgres",
            "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql,
        )  # fmt: skip
        return done.stdout

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        if not self.durable:  # the tests kill clients, never the server's machine: no need to wait for the disk
            options += " -c fsync=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )

    def running(self) -> bool:
        return self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)


def start_postgres(durable: bool = False) -> PostgresCluster:
    """Create and start a cluster with a password-protected role ``mlsm`` owning database ``mlsm``."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: run scripts/test, which installs the system's postgresql")
    folder = Path(tempfile.mkdtemp(prefix="mlsm-pg-"))
    as_postgres = os.geteuid() == 0  # the server refuses to run as root
    if as_postgres:
        shutil.chown(folder, "postgres")
    cluster = PostgresCluster(bindir, folder, free_port(), as_postgres, durable)
    cluster._run(
        str(bindir / "initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth-local=trust",
        "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
    )  # fmt: skip
    cluster.start()
    cluster.admin(f"CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'")
    cluster.admin(f"CREATE DATABASE mlsm OWNER {PG_USER}")
    return cluster


def remove_postgres(cluster: PostgresCluster) -> None:
    cluster.stop("immediate")
    shutil.rmtree(cluster.folder, ignore_errors=True)


@dataclass
class MongoServer:
    url: str
    process: subprocess.Popen[bytes] | None


def start_mongo(folder: Path) -> MongoServer:
    """An nx-27017 server on a free loopback port, its data in ``folder``."""
    import pymongo

    exe = shutil.which("nx-27017", path=str(Path(sys.executable).parent)) or shutil.which("nx-27017")
    if exe is None:
        raise RuntimeError("nx-27017 is not installed: run scripts/test, which installs the dev extras")
    port = free_port()
    command = [exe, "--data-dir", str(folder), "--host", "127.0.0.1", "-p", str(port)]
    command += ["--log-file", str(folder / "nx.log"), "--pid-file", str(folder / "nx.pid")]
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
    url = f"mongodb://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            pymongo.MongoClient(url, serverSelectionTimeoutMS=500).admin.command("ping")
            return MongoServer(url, process)
        except pymongo.errors.PyMongoError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"the MongoDB wire-protocol server did not start: see {folder / 'server.log'}"
                ) from None
            time.sleep(0.2)


def stop_mongo(server: MongoServer) -> None:
    if server.process is not None:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()


@dataclass
class CuttingProxy:
    """A TCP relay to a server that goes away mid-answer: once ``limit`` bytes have come back from the server, every
    relayed connection is closed and nothing listens any more (a server that died, or a network that broke)."""

    host: str
    port: int
    limit: int
    received: int = 0
    listener: socket.socket = field(init=False)
    _open: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cut: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._cut.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection((self.host, self.port))
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_server: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_server:
                    with self._lock:
                        allowed = max(0, self.limit - self.received)
                        self.received += len(data)
                    if allowed < len(data):
                        target.sendall(data[:allowed])
                        self.cut()
                        return
                target.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        """Close every relayed connection and stop listening."""
        self._cut.set()
        self.listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


# -- processes a test started, and whatever they started -----------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a process, read from /proc; None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0], fields[19]


def process_tree(root: int) -> dict[int, tuple[str, str]]:
    """Every process below ``root`` (children, theirs, ...): pid -> (start time, command line)."""
    table = {int(name): stat for name in os.listdir("/proc") if name.isdigit() and (stat := _proc_stat(int(name)))}
    tree: dict[int, tuple[str, str]] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, started) in table.items():
            if ppid == parent and pid not in tree:
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    command = ""
                tree[pid] = (started, command.strip())
                frontier.append(pid)
    return tree


def still_running(tree: dict[int, tuple[str, str]]) -> dict[int, str]:
    """The processes of ``tree`` that still run (the same process: same pid and start time; zombies are done)."""
    left = {}
    for pid, (started, command) in tree.items():
        stat = _proc_stat(pid)
        if stat is not None and stat[1] != "Z" and stat[2] == started:
            left[pid] = command
    return left


def wait_for_exit(tree: dict[int, tuple[str, str]], seconds: float) -> dict[int, str]:
    """Wait up to ``seconds`` for every process of ``tree`` to end; those still running then."""
    deadline = time.monotonic() + seconds
    while (left := still_running(tree)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_tree(tree: dict[int, tuple[str, str]]) -> None:
    """SIGKILL whatever of ``tree`` still runs (a test's cleanup: nothing it started outlives it)."""
    for pid in still_running(tree):
        with contextlib.suppress(OSError):
            os.kill(pid, 9)


def processes_marked(name: str, value: str) -> dict[int, tuple[str, str]]:
    """Every process whose environment holds ``name=value`` (a mark a test gave what it started, which the
    processes those start inherit): pid -> (start time, command line), as :func:`process_tree` gives them."""
    mark = f"{name}={value}".encode()
    found: dict[int, tuple[str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        stat = _proc_stat(int(entry))
        if mark in environ and stat is not None:
            found[int(entry)] = (stat[2], command.strip())
    return found
