"""The running service, apart from HTTP: live models, grouping, the writer, the store, its run, metrics.

:meth:`ServiceRuntime.open` does everything that can fail at setup (load the models, apply the draft rule,
preflight them, open the store, register the service's run) before anything listens, so ``mlsm serve`` can exit 2
with one line. The run record says which code served: ``info["provenance"]`` is the live set's (as
:func:`~mlsm.lifecycle.release.release_gate` gives it, updated on every successful reload) and ``info["sets"]``
lists every set the run served, each with its own provenance, so a stored document's ``_run`` leads to its code.
:meth:`start` and :meth:`stop` are the ASGI lifespan: ``stop`` runs after the server has stopped accepting and
its in-flight requests have answered, drains the writer, and marks the run completed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from mlsm._version import __version__
from mlsm.documents import Documents
from mlsm.lifecycle.release import unreleased_warning
from mlsm.runs._chunks import documents_from_results
from mlsm.runs._profiles import Sample
from mlsm.runs._run_record import complete_run, new_run_id, start_run
from mlsm.service.grouping import Grouper
from mlsm.service.keys import KeyRing
from mlsm.service.logs import EventLog
from mlsm.service.metrics import ServiceMetrics
from mlsm.service.modelset import LiveModels, ServingSet, load_serving_set_within, settings_changes
from mlsm.service.settings import ServiceSettings
from mlsm.service.writer import ResultWriter
from mlsm.stores import RunRecord, Store, open_store
from mlsm.stores.base import hide_password
from mlsm.stores.outcomes import Outcome

__all__ = ["ServiceRuntime", "load_first_set", "new_service_run_id", "record_set", "service_run_info", "set_info"]


#: Requests of up to this many records have their documents built on the event loop.
_INLINE_RECORDS = 16


def new_service_run_id() -> str:
    """A run id that says it is the service's, e.g. ``serve-20261126-040512-3f2a``."""
    return "serve-" + new_run_id()


class ServiceRuntime:
    """One service process's parts and their lifecycle; the HTTP app (:mod:`mlsm.service.app`) calls into it."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        first: ServingSet,
        store: Store,
        run: RunRecord,
        owns_run: bool,
        metrics: ServiceMetrics,
        log: EventLog,
        on_progress: Callable[[RunRecord], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.run = run
        self.owns_run = owns_run
        self.metrics = metrics
        self.log = log
        self.keys = KeyRing(
            settings.api_keys, settings.admin_keys, api_file=settings.api_key_file, admin_file=settings.admin_key_file
        )
        self.live = LiveModels(first, settings=settings, on_call=metrics.on_model_call)
        metrics.set_preflight(first.preflight)
        self.grouper = Grouper(
            max_size=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
            threads=settings.scoring_threads,
            on_group=metrics.on_group,
        )
        self.writer = ResultWriter(
            store,
            run=run,
            owns_run=owns_run,
            capacity=settings.queue_size,
            wait_ms=settings.queue_wait_ms,
            max_documents=settings.write_max_documents,
            retry_seconds=settings.store_retry,
            on_write=metrics.on_write,
            on_failure=metrics.on_write_failure,
            on_progress=on_progress,
        )
        self.stopping = False
        self.started = False
        self.on_reloaded: list[Any] = []  # callables told (previous, new) after a successful reload

    @classmethod
    def open(
        cls,
        settings: ServiceSettings,
        *,
        log: EventLog | None = None,
        run_id: str | None = None,
        owns_run: bool = True,
        first: ServingSet | None = None,
        metrics: ServiceMetrics | None = None,
        on_progress: Callable[[RunRecord], None] | None = None,
    ) -> ServiceRuntime:
        """Load the models (unless ``first`` was loaded already, with ``metrics``' model call hook), open the store
        and register the run (unless ``owns_run`` is False: a worker of several writes under its supervisor's run
        ``run_id``, its own progress counted from zero and told to ``on_progress``, see :class:`ResultWriter`).
        Raises ``MlsmError`` on setup problems.
        """
        settings.check()
        log = log if log is not None else EventLog(access=settings.access_log)
        metrics = metrics if metrics is not None else ServiceMetrics()
        if first is None:
            first = load_first_set(settings, log, on_call=metrics.on_model_call)
        try:
            store = open_store(settings.store)
        except BaseException:
            first.close()
            raise
        try:
            run_id = run_id or settings.run_id or new_service_run_id()
            if owns_run:
                run = start_run(store, run_id, service_run_info(settings, first, store))
            else:  # this worker's share only: the supervisor adds up the workers' shares in the stored run
                run = RunRecord.new(run_id, {})
        except BaseException:
            store.close()
            first.close()
            raise
        return cls(
            settings,
            first=first,
            store=store,
            run=run,
            owns_run=owns_run,
            metrics=metrics,
            log=log,
            on_progress=on_progress,
        )

    # -- lifespan ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer (the ASGI lifespan's startup)."""
        await self.writer.start()
        self.started = True

    async def stop(self) -> None:
        """Write everything queued, mark the run completed and close the store (the lifespan's shutdown)."""
        self.stopping = True
        await self.writer.close()
        self.grouper.close()
        self.metrics.flush()  # with several workers, the counts of this one stay in its files for the others' scrapes
        if self.owns_run:
            try:
                complete_run(self.store, self.run)
            except Exception as exc:
                self.log.event("run_not_saved", "error", run=self.run.id, error=str(exc))
        self.store.close()
        self.live.current.close()
        self.log.event("stopped", run=self.run.id, stored=self.run.rows)

    # -- scoring -----------------------------------------------------------------------------------------------

    async def score(self, records: list[dict[str, Any]], ids: list[str]) -> Documents:
        """Score ``records`` on the live set, store them, and return their documents once committed.

        Raises ``ResultNotStored`` (``QueueFull``, ``ResultRefused``) when the results could not be stored.
        """
        model_set = self.live.current  # held until this request answers, whatever reloads meanwhile
        results, conversions, offset = await self.grouper.score(model_set, records)
        # counting and building the documents of a large request take a while: not on the event loop; a few
        # records cost less than the hand-off to a thread and back
        if len(ids) <= _INLINE_RECORDS:
            batch = self._batch(ids, results)
        else:
            batch = await asyncio.get_running_loop().run_in_executor(None, self._batch, ids, results)
        sample = Sample(model_set.engine, records, results, conversions, offset)  # for the drift profile
        await self.writer.submit(batch, sample)
        return batch

    async def store_outcomes(self, outcomes: list[Outcome]) -> None:
        """Store ``outcomes`` (one transaction, on the writer's thread) and return once committed; raises
        ``ResultNotStored`` (``ResultRefused``) as :meth:`score` does."""
        await self.writer.write_outcomes(outcomes)
        self.metrics.outcomes.inc(len(outcomes))

    def _batch(self, ids: list[str], results: list[dict[str, Any]]) -> Documents:
        self.metrics.count_results(results)
        return documents_from_results(self.settings.id_field, ids, results, run_id=self.run.id)

    async def reload(self, trigger: str) -> tuple[ServingSet, ServingSet]:
        """Read the key files again, reload the models (see :class:`LiveModels`), count and log the outcome, and
        record the new set and its provenance in the run. Raises ``ReloadError`` when the reload was refused.
        """
        from mlsm.errors import ReloadError

        self._reload_keys(trigger)
        started = time.perf_counter()
        try:
            previous, fresh = await self.live.reload(trigger)
        except ReloadError as exc:
            self.metrics.reloads.labels("refused").inc()
            live = self.live.current
            self.log.event(
                "reload_refused", "error", trigger=trigger, live=live.generation, reasons=exc.reasons, message=str(exc)
            )
            raise
        self.metrics.reloads.labels("ok").inc()
        self.metrics.set_preflight(fresh.preflight)
        self.log.event(
            "reloaded",
            trigger=trigger,
            generation=fresh.generation,
            source_hash=fresh.source_hash,
            models=[m.key for m in fresh.engine.all_models],
            seconds=round(time.perf_counter() - started, 3),
        )
        _log_overrides(self.log, fresh)
        _log_preflight(self.log, fresh)
        for note in settings_changes(previous, fresh):
            self.log.event("restart_needed", "warning", message=note)
        if self.owns_run:
            self.run.info = record_set(self.run.info, fresh)  # replaced whole: the writer thread may be encoding it
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.store.save_run, self.run)
            except Exception as exc:
                self.log.event("run_not_saved", "error", run=self.run.id, error=str(exc))
        for callback in self.on_reloaded:
            callback(previous, fresh)
        return previous, fresh

    def _reload_keys(self, trigger: str) -> None:
        if self.settings.api_key_file is None and self.settings.admin_key_file is None:
            return
        problems = self.keys.reload()
        for problem in problems:
            self.log.event("keys_not_reloaded", "error", trigger=trigger, message=problem)
        self.log.event("keys_reloaded", trigger=trigger, keys=self.keys.counts())

    async def store_ready(self, timeout: float = 2.0) -> str | None:
        """None when the store answers a read within ``timeout`` seconds, else why not."""
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, self.store.get_run, self.run.id), timeout)
        except TimeoutError:
            return f"store did not answer within {timeout:g} s"
        except Exception as exc:
            return f"store unavailable: {exc}"
        return None


def load_first_set(settings: ServiceSettings, log: EventLog, *, on_call: Any = None) -> ServingSet:
    """The set a service starts with (generation 1), loaded within the reload time limit; ``ReloadError`` (one
    line: a load failure, the draft rule, a preflight that refuses a model) when it cannot serve."""
    first = load_serving_set_within(settings.reload_timeout, settings, generation=1, trigger="startup", on_call=on_call)
    _log_overrides(log, first)
    _log_preflight(log, first)
    return first


def _log_overrides(log: EventLog, model_set: ServingSet) -> None:
    warning = unreleased_warning(model_set.provenance)
    if warning:
        overridden = model_set.provenance["draft_rule"]["overridden"]
        log.event("unreleased", "warning", generation=model_set.generation, message=warning, models=overridden)


def _log_preflight(log: EventLog, model_set: ServingSet) -> None:
    """One warning per model that serves although its preflight failed (the failures that do not block it)."""
    for key, report in model_set.preflight.items():
        if report.passed:
            continue
        failure = report.failures[0]
        first = failure.describe()
        first = first if len(first) <= 300 else first[:297] + "..."
        log.event(
            "preflight_failed",
            "warning",
            generation=model_set.generation,
            model=key,
            status=report.status,
            examples=report.examples,
            failing=report.failing,
            check=failure.check,
            message=f"{key} ({report.status}) serves although its preflight {report.outcome}: such records get "
            f"_error in its slot; first: {first}",
        )


def set_info(model_set: ServingSet) -> dict[str, Any]:
    """A model set as the service's run record keeps it: which set, when, and the code of its models."""
    provenance = model_set.provenance
    return {
        "generation": model_set.generation,
        "source_hash": model_set.source_hash,
        "models": [model.key for model in model_set.engine.all_models],
        "loaded_at": model_set.loaded_at,
        "trigger": model_set.trigger,
        "pid": os.getpid(),
        # the environment (versions) is the process's and stays in info["provenance"]; the models' code is per set
        "provenance": {key: provenance[key] for key in ("models", "draft_rule") if key in provenance},
    }


def record_set(info: dict[str, Any], entry: dict[str, Any] | ServingSet) -> dict[str, Any]:
    """A run's ``info`` with one more model set served: appended to ``sets``, and its provenance becoming
    ``info["provenance"]`` (environment kept). A new dict; ``info`` is not changed."""
    if isinstance(entry, ServingSet):
        environment = {k: v for k, v in entry.provenance.items() if k not in ("models", "draft_rule")}
        entry = set_info(entry)
    else:
        environment = {}
    current = {**info.get("provenance", {}), **environment, **entry["provenance"], "generation": entry["generation"]}
    return {**info, "provenance": current, "sets": [*info.get("sets", []), entry]}


def service_run_info(settings: ServiceSettings, first: ServingSet, store: Store) -> dict[str, Any]:
    """What the service's run record says about it: kind, source, store, id field, models, settings, provenance."""
    info = {
        "kind": "service",
        "mlsm": __version__,
        "source": settings.models,
        "store": hide_password(store.url),
        "id_field": settings.id_field,
        "models": [model.key for model in first.engine.all_models],
        "source_hash": first.source_hash,
        "pid": os.getpid(),
        "settings": settings.public(),
    }
    return record_set(info, first)
