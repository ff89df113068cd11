"""Running the service: the socket, uvicorn, signals, and with ``--workers N`` a supervisor of N processes.

One process (the default): setup (load the models and apply the draft rule, preflight them, bind, open the store,
register the run) and then uvicorn. The models are loaded before the port is bound: a refused model exits 2 without
ever listening. SIGTERM or SIGINT: uvicorn stops accepting, lets in-flight requests answer (up to
``shutdown_timeout``), then the lifespan drains the writer and marks the run completed; exit status 0. SIGHUP:
reload the models safely (see :mod:`mlsm.service.modelset`).

Several processes: the supervisor does the same setup once (so a broken model file or store exits 2 before any
worker starts), then starts N workers that share the listening socket, each with its own models, grouping and
writer, all writing under the supervisor's run. SIGTERM/SIGINT go to every worker, which drain as above; SIGHUP is
forwarded to every worker. ``POST /v1/admin/reload`` reaches one worker: when its reload succeeds it tells the
supervisor, which sends SIGHUP to the others. A worker that dies is restarted (with a growing delay while it keeps
failing). The supervisor alone writes the run record: each worker tells it every set it loads (at start and on
each reload), and the supervisor records each new code in the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsm.errors import MlsmError, ServiceError
from mlsm.service.logs import EventLog, capture_server_logs
from mlsm.service.settings import ServiceSettings
from mlsm.stores.base import hide_password

if TYPE_CHECKING:
    from mlsm.stores import RunRecord

__all__ = ["bind_socket", "serve"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free port); ``ServiceError`` when that fails."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServiceError(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    settings: ServiceSettings,
    *,
    key_source: str | None = None,
    admin_key_source: str | None = None,
    log: EventLog | None = None,
) -> int:
    """Run ``mlsm serve`` until SIGTERM/SIGINT; returns the exit status. Setup problems raise ``MlsmError``.
    ``key_source`` and ``admin_key_source`` say where the keys came from (for the ``listening`` line)."""
    from mlsm.service.metrics import ServiceMetrics
    from mlsm.service.runtime import load_first_set

    settings.check()
    log = log if log is not None else EventLog(access=settings.access_log)
    # the models first: a model refused by the draft rule (or a failed preflight) exits before the port is bound
    metrics = ServiceMetrics() if settings.workers == 1 else None
    first = load_first_set(settings, log, on_call=metrics.on_model_call if metrics is not None else None)
    try:
        sock = bind_socket(settings.bind_host, settings.port)
    except BaseException:
        first.close()
        raise
    try:
        sources = (key_source, admin_key_source)
        if metrics is None:
            return _supervise(settings, sock, first, sources, log)
        return _serve_one(settings, sock, first, metrics, sources, log)
    finally:
        sock.close()


def _announce(
    settings: ServiceSettings, sock: socket.socket, sources: tuple[str | None, str | None], log: EventLog, **extra: Any
) -> None:
    if isinstance(extra.get("store"), str):
        extra["store"] = hide_password(extra["store"])
    host, port = sock.getsockname()[:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    key_source, admin_key_source = sources
    if not settings.api_keys:
        if settings.host is None:
            auth = (
                f"no API key configured (MLSM_API_KEY or --api-key-file): listening on loopback {host} only; "
                "give --host to listen elsewhere"
            )
        elif settings.loopback_only:
            auth = f"no API key configured: listening on loopback {host} only"
        else:
            auth = (
                f"WARNING: no API key configured and --host {settings.host}: anyone who can reach {url} can score "
                "(with a loopback Host header: requests naming another host or origin are refused)"
            )
    else:
        auth = f"API key from {key_source or 'settings'}: /v1/... needs 'Authorization: Bearer <key>'"
    if settings.admin_keys:
        auth += f"; admin key from {admin_key_source or 'settings'}: /v1/admin/... needs it"
    else:
        auth += "; no admin key (MLSM_ADMIN_KEY or --admin-key-file): /v1/admin/... answers loopback clients only"
    log.event(
        "listening",
        message=f"mlsm serve: {settings.models} on {url}; {auth}",
        url=url,
        host=host,
        port=port,
        auth=bool(settings.api_keys),
        admin_auth=bool(settings.admin_keys),
        workers=settings.workers,
        pid=os.getpid(),
        **extra,
    )


_TERMINATED_EARLY: list[int] = []  # a SIGTERM came before the worker served (in case its SystemExit was swallowed)


def _exit_before_serving(signum: int, frame: Any) -> None:
    _TERMINATED_EARLY.append(signum)
    raise SystemExit(0)  # at exit, the queue's feeder thread finishes what it is writing and lets the pipe go


def _quiet_exit_signals() -> None:
    # uvicorn re-raises SIGTERM/SIGINT once its graceful shutdown is done; with these no-op handlers that re-raise
    # ends nothing, so the process exits 0 after the drain instead of dying of the signal
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    signal.signal(signal.SIGINT, lambda signum, frame: None)


def _uvicorn_server(app: Any, settings: ServiceSettings, runtime: Any) -> Any:
    import uvicorn

    from mlsm.service.connections import ConnectionLimits, guarded_protocol

    limits = ConnectionLimits.from_settings(settings)
    if limits.max_connections < settings.max_connections:
        runtime.log.event(
            "connections_capped",
            "warning",
            message=f"the open-file limit allows {limits.max_connections} connections, below --max-connections "
            f"{settings.max_connections}: raise it (ulimit -n) to allow more",
            max_connections=limits.max_connections,
        )
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        log_config=None,  # uvicorn's own lines go through the service's JSON log (capture_server_logs)
        access_log=False,  # the service logs each request itself, as JSON with its request id
        server_header=False,
        http=guarded_protocol(limits, runtime.metrics.on_connection_closed, runtime.metrics.on_connection_open),
        ws="none",
        timeout_graceful_shutdown=int(settings.shutdown_timeout) or 1,
    )
    capture_server_logs(runtime.log)
    return uvicorn.Server(config)


def _freeze_heap(runtime: Any) -> None:
    """Move everything loaded so far (modules, models, pipelines) out of the garbage collector's sight.

    A full collection scans every tracked object: with scikit-learn and pandas loaded that is ~80 ms with the GIL
    held, the service's worst latency. ``gc.freeze()`` exempts the startup heap (reference counting still frees
    what it can). After a reload, once the previous set's in-flight requests are done, the heap is collected and
    frozen again so that the replaced set is freed.
    """
    gc.collect()
    gc.freeze()

    def refreeze() -> None:
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def after_reload(previous: Any, fresh: Any) -> None:
        delay = max(10.0, 2 * runtime.settings.model_timeout)
        asyncio.get_running_loop().call_later(delay, refreeze)

    runtime.on_reloaded.append(after_reload)


def _serve_one(
    settings: ServiceSettings, sock: socket.socket, first: Any, metrics: Any, sources: Any, log: EventLog
) -> int:
    from mlsm.service.app import create_app
    from mlsm.service.runtime import ServiceRuntime

    runtime = ServiceRuntime.open(settings, log=log, first=first, metrics=metrics)
    _freeze_heap(runtime)
    app = create_app(runtime, handle_sighup=True)
    server = _uvicorn_server(app, settings, runtime)
    _quiet_exit_signals()
    _announce(settings, sock, sources, log, run=runtime.run.id, generation=1, store=runtime.store.url)
    server.run(sockets=[sock])
    return 0 if server.started else 1


# -- several worker processes --------------------------------------------------------------------------------------


def _worker_main(
    settings: ServiceSettings, run_id: str, sock: socket.socket, events: Any, index: int, supervisor: int
) -> None:
    """A worker process: its own runtime under the supervisor's run, serving the shared socket."""
    from mlsm._children import die_with_parent

    # first: nothing supervises or reloads a worker whose supervisor died, so it drains (SIGTERM) and exits
    die_with_parent(supervisor, signal.SIGTERM, grace=settings.shutdown_timeout + 5)
    # SIGTERM before it serves (the supervisor stopping while this one loads): exit, not die where the signal falls.
    # Dying while the queue's feeder thread writes a report to the shared pipe would keep the pipe's lock held for
    # good, and every other worker would hang at its exit waiting for it (seen: killed after 60 s, shares lost).
    signal.signal(signal.SIGTERM, _exit_before_serving)
    from mlsm.service.app import create_app
    from mlsm.service.runtime import ServiceRuntime, set_info

    log = EventLog(access=settings.access_log)
    pid = os.getpid()

    def progress(run: RunRecord) -> None:  # on the writer's thread; the supervisor adds up the workers' shares
        events.put(("progress", pid, "", {"rows": run.rows, "chunks": run.chunks, "counts": run.counts}))

    try:
        runtime = ServiceRuntime.open(settings, log=log, run_id=run_id, owns_run=False, on_progress=progress)
    except MlsmError as exc:
        log.event("worker_setup_failed", "error", worker=index, pid=os.getpid(), message=str(exc))
        sys.exit(2)
    # the supervisor records the code of every set a worker serves, and has the others reload after an API reload
    events.put(("loaded", os.getpid(), "startup", set_info(runtime.live.current)))

    def reloaded(previous: Any, fresh: Any) -> None:
        events.put(("loaded", os.getpid(), fresh.trigger, set_info(fresh)))

    runtime.on_reloaded.append(reloaded)
    _freeze_heap(runtime)
    server = _uvicorn_server(create_app(runtime, handle_sighup=True), settings, runtime)
    _quiet_exit_signals()
    if _TERMINATED_EARLY:  # a model's code caught the SystemExit while loading: stop all the same
        sys.exit(0)
    log.event("worker_started", worker=index, pid=os.getpid())
    server.run(sockets=[sock])
    sys.exit(0 if server.started else 1)


def _supervise(settings: ServiceSettings, sock: socket.socket, first: Any, sources: Any, log: EventLog) -> int:
    """The supervisor of ``settings.workers`` processes: register the run, start the workers, then until SIGTERM or
    SIGINT record the sets they load, forward reloads and restart the dead; then stop them and complete the run."""
    run = _SupervisedRun.start(settings, first, log)
    _remove_stale_metrics()
    metrics_dir = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the workers: one set of metrics for all
    signals = _SupervisorSignals()
    workers = _Workers(settings, run.id, sock, log)
    _announce(settings, sock, sources, log, run=run.id, store=settings.store)
    try:
        while not signals.stopping:
            event = workers.next_event(timeout=0.2)
            if event is not None:
                _on_worker_event(event, run, workers)
            run.save_progress()
            if signals.hangup():
                log.event("reload_requested", trigger="SIGHUP", workers=len(workers.processes))
                workers.signal(signal.SIGHUP)
            if not signals.stopping:
                workers.restart_dead()
    finally:
        log.event("stopping", workers=len(workers.processes))
        workers.stop(settings.shutdown_timeout + 30)
        for kind, sender, _, entry in workers.last_events():  # sets loaded, and the final shares, before the stop
            if kind == "loaded":
                run.record(entry)
            elif kind == "progress":
                run.progress(sender, entry)
        run.complete()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        log.event("stopped", run=run.id)
    return 0


_METRICS_PREFIX = "mlsm-metrics-"  # + the supervisor's pid + "-" + random: the workers' shared metrics files


def _remove_stale_metrics() -> None:
    """Remove the metrics folders of supervisors that died without removing theirs (SIGKILL, a crash): folders of
    this user whose supervisor's pid no longer runs."""
    folder = Path(tempfile.gettempdir())
    for path in folder.glob(f"{_METRICS_PREFIX}*-*"):
        pid = path.name[len(_METRICS_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not path.is_dir() or path.stat().st_uid != os.getuid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # it runs (as another user): its folder stays
            pass


def _on_worker_event(event: tuple[str, int, str, Any], run: _SupervisedRun, workers: _Workers) -> None:
    """A worker loaded a set (at start, or on a reload by ``trigger``): record its code; after a reload through the
    API, have the other workers reload too."""
    kind, sender, trigger, entry = event
    if kind == "progress":
        run.progress(sender, entry)
        return
    if kind != "loaded":
        return
    run.record(entry)
    if trigger == "api":
        workers.signal(signal.SIGHUP, skip=sender)


class _SupervisedRun:
    """The run record of a service with several workers: the supervisor alone writes it, opening the store for each
    write (it serves no request, so it holds no connection).

    Its progress (documents stored, per-model counts, the drift profile) is the sum of the workers' shares: each
    worker process reports its own share since it started, whole, about every ``RUN_SECONDS`` and when it stops
    (:meth:`progress`); the sum is saved at most every ``RUN_SECONDS`` (:meth:`save_progress`) and exactly at
    :meth:`complete`. A worker that dies leaves its last report (up to ``RUN_SECONDS`` short of what it stored);
    the one restarted in its place reports from zero.
    """

    def __init__(self, run: RunRecord, store_url: str | None, log: EventLog) -> None:
        self.run = run
        self.store_url = store_url
        self.log = log
        self._shares: dict[int, dict[str, Any]] = {}  # each worker process's last report, by pid
        self._unsaved = False
        self._saved = time.monotonic()

    @classmethod
    def start(cls, settings: ServiceSettings, first: Any, log: EventLog) -> _SupervisedRun:
        """Register the run with ``first``, the set loaded by the setup, which is closed then: workers load their
        own."""
        from mlsm.runs._run_record import start_run
        from mlsm.service.runtime import new_service_run_id, service_run_info
        from mlsm.stores import open_store

        try:
            store = open_store(settings.store)
            try:
                run_id = settings.run_id or new_service_run_id()
                run = start_run(store, run_id, service_run_info(settings, first, store))
            finally:
                store.close()
        finally:
            first.close()
        return cls(run, settings.store, log)

    @property
    def id(self) -> str:
        return self.run.id

    def record(self, entry: dict[str, Any]) -> None:
        """Add a set a worker loaded, unless it has the code of the latest (another worker on that code did)."""
        from mlsm.service.runtime import record_set
        from mlsm.stores import open_store

        latest = self.run.info["sets"][-1]
        if (entry["source_hash"], entry["provenance"]) == (latest["source_hash"], latest["provenance"]):
            return
        self.run.info = record_set(self.run.info, entry)
        try:
            with open_store(self.store_url) as store:
                store.save_run(self.run)
        except MlsmError as exc:
            self.log.event("run_not_saved", "error", run=self.run.id, error=str(exc))

    def progress(self, pid: int, share: dict[str, Any]) -> None:
        """Worker ``pid``'s report of its share so far (``rows``, ``chunks``, ``counts``), replacing its last."""
        self._shares[pid] = share
        self._unsaved = True

    def save_progress(self) -> None:
        """Save the workers' shares added up, when one has changed and ``RUN_SECONDS`` have passed since the last
        save."""
        from mlsm.service.writer import RUN_SECONDS
        from mlsm.stores import open_store

        if not self._unsaved or time.monotonic() - self._saved < RUN_SECONDS:
            return
        self._add_up()
        try:
            with open_store(self.store_url) as store:
                store.save_run(self.run)
        except MlsmError as exc:
            self.log.event("run_not_saved", "error", run=self.run.id, error=str(exc))

    def _add_up(self) -> None:
        from mlsm.runs._counts import Counts

        total = Counts()
        for share in self._shares.values():
            total.add(Counts.from_dict(share["counts"]))
        self.run.rows = sum(share["rows"] for share in self._shares.values())
        self.run.chunks = sum(share["chunks"] for share in self._shares.values())
        self.run.counts = total.to_dict()
        self._unsaved = False
        self._saved = time.monotonic()

    def complete(self) -> None:
        """Mark the run completed, with the workers' last reports added up (a store unavailable now leaves it as
        it was)."""
        from mlsm.runs._run_record import complete_run
        from mlsm.stores import open_store

        if self._unsaved:
            self._add_up()
        with contextlib.suppress(MlsmError), open_store(self.store_url) as store:
            complete_run(store, self.run)


class _SupervisorSignals:
    """SIGTERM/SIGINT (stop) and SIGHUP (reload every worker), noted by the handlers for the supervisor's loop."""

    def __init__(self) -> None:
        self.stops: list[int] = []
        self.hangups: list[int] = []
        signal.signal(signal.SIGTERM, lambda signum, frame: self.stops.append(signum))
        signal.signal(signal.SIGINT, lambda signum, frame: self.stops.append(signum))
        signal.signal(signal.SIGHUP, lambda signum, frame: self.hangups.append(signum))

    @property
    def stopping(self) -> bool:
        return bool(self.stops)

    def hangup(self) -> bool:
        """True once per burst of SIGHUPs received since the last call."""
        received = bool(self.hangups)
        self.hangups.clear()
        return received


class _Workers:
    """The worker processes by index, the queue they report on, and their restarts: a worker that dies is
    restarted after a delay doubling with each death (0.5 s, 1 s, ... at most 60 s)."""

    def __init__(self, settings: ServiceSettings, run_id: str, sock: socket.socket, log: EventLog) -> None:
        import multiprocessing

        self.settings, self.run_id, self.sock, self.log = settings, run_id, sock, log
        self.context = multiprocessing.get_context("spawn")
        self.events: Any = self.context.Queue()
        self._read_while_stopping: list[tuple[str, int, str, Any]] = []
        self.processes = {index: self._start(index) for index in range(settings.workers)}
        self.deaths = dict.fromkeys(self.processes, 0)
        self.restart_at: dict[int, float] = {}

    def _start(self, index: int) -> Any:
        process = self.context.Process(
            target=_worker_main,
            args=(self.settings, self.run_id, self.sock, self.events, index, os.getpid()),
            name=f"mlsm-worker-{index}",
        )
        process.start()
        return process

    def next_event(self, timeout: float) -> tuple[str, int, str, Any] | None:
        """The next report of a worker, ``(kind, pid, trigger, entry)``, or None after ``timeout`` seconds."""
        import queue

        try:
            event: tuple[str, int, str, Any] = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        return event

    def last_events(self) -> list[tuple[str, int, str, Any]]:
        """The reports still queued (once the workers have stopped), those read while they stopped first."""
        events, self._read_while_stopping = self._read_while_stopping + self._queued(), []
        return events

    def _queued(self) -> list[tuple[str, int, str, Any]]:
        import queue

        events = []
        while True:
            try:
                events.append(self.events.get_nowait())
            except (queue.Empty, OSError, ValueError):
                return events

    def signal(self, signum: int, skip: int | None = None) -> None:
        _signal_workers(self.processes, signum, skip=skip)

    def restart_dead(self) -> None:
        """Log each worker found dead and schedule its restart; restart those whose delay is over."""
        for index, process in list(self.processes.items()):
            if process.is_alive():
                continue
            if index not in self.restart_at:
                self.deaths[index] += 1
                delay = min(60.0, 0.5 * 2 ** (self.deaths[index] - 1))
                self.restart_at[index] = time.monotonic() + delay
                self.log.event(
                    "worker_died", "error", worker=index, pid=process.pid, exitcode=process.exitcode, restart_in=delay
                )
                _mark_dead(process.pid)
            elif time.monotonic() >= self.restart_at[index]:
                del self.restart_at[index]
                self.processes[index] = self._start(index)

    def stop(self, timeout: float) -> None:
        """SIGTERM to every worker (each drains), then wait up to ``timeout`` seconds in all; kill the late."""
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            # a worker exits only once its last reports (its final counts and profile, tens of kB) are in the pipe:
            # read them meanwhile, or a full pipe holds it until it is killed, its last share lost
            while process.is_alive() and time.monotonic() < deadline:
                process.join(min(0.05, max(0.0, deadline - time.monotonic())))
                self._read_while_stopping.extend(self._queued())
            if process.is_alive():
                self.log.event("worker_killed", "error", pid=process.pid, message="did not stop in time")
                process.kill()
                process.join()


def _signal_workers(workers: dict[int, Any], signum: int, skip: int | None = None) -> None:
    for process in workers.values():
        if process.pid != skip and process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signum)


def _mark_dead(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(Exception):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
