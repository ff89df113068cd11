"""The service's background writer: result documents go to the store in batches, and a request is answered only
once its documents are committed.

Requests put their documents in a bounded queue (counted in documents, including those being written) and wait
for the commit; the writer takes everything queued, up to ``max_documents`` documents, and writes it in one store
transaction (group commit), so the store sees few large writes under load. When the queue is full a request waits
up to ``wait_ms`` for room, then gets :class:`~mlsm.errors.QueueFull` (503). An unavailable store is retried for
``retry_seconds``; after that the waiting requests get :class:`~mlsm.errors.ResultNotStored` (503). A store that
refuses a group for good (any other error: a document it cannot hold) is given each request's batch alone, so only
the requests whose documents it refuses fail, with :class:`~mlsm.errors.ResultRefused` (422). So a 200 always
means stored. :meth:`ResultWriter.close` writes whatever is queued before it returns (SIGTERM's drain).

Outcomes (``POST /v1/outcomes``) are written by :meth:`ResultWriter.write_outcomes` on the same thread, between
groups: the store object is shared, and one thread at a time keeps each write's transaction its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlsm._retry import retry_async
from mlsm.documents import Documents
from mlsm.errors import MlsmError, QueueFull, ResultNotStored, ResultRefused, StoreUnavailable
from mlsm.runs._counts import Counts
from mlsm.runs._profiles import Sample, profile_steps
from mlsm.stores.base import RunRecord, Store
from mlsm.stores.outcomes import Outcome

__all__ = ["FOLD_STEP_SECONDS", "PROFILE_RECORDS", "PROFILE_SECONDS", "RUN_SECONDS", "ResultWriter"]

#: How often (seconds) the service's run record gets the drift profile again; in between it keeps the last one.
PROFILE_SECONDS = 5.0
#: How often (seconds) the run record is saved with a commit: it is the run's whole row (counts, drift profile and
#: provenance, ~20 KB for the example against ~0.5 KB for a document), so saving it with every commit made nearly
#: all of the store's writes and WAL checkpoints. A commit after a new profile encoding saves it too; close() and
#: the run's completion save the exact final counts.
RUN_SECONDS = 1.0
#: Stored records whose drift profile is computed together, after their commit: a profile costs about 0.5 ms per
#: call plus 2.5 µs per record scored in a group (whose converted columns it reads) or 11 µs per record scored alone
#: (converted again), so profiling each group commit alone (one record at concurrency 1) cost more than scoring it.
PROFILE_RECORDS = 256
#: The pause between two steps of a fold on the event loop (a step is one field's or one model's profile, ~0.1 ms):
#: about the time a group of requests takes to answer at concurrency 16, so that each group waits for a step or two,
#: never for a whole fold (measured in-process at concurrency 16: p99 10.6 against 12.8 ms folding at once on a
#: thread, the same req/s).
FOLD_STEP_SECONDS = 0.003


class ResultWriter:
    """Writes batches of result documents to ``store`` from a bounded queue, oldest first.

    With ``run`` and ``owns_run``, the run's progress (documents stored, writes, per-model ok/error counts and the
    drift profile) is committed with a write at most every ``RUN_SECONDS`` (a batch run commits it with every
    chunk: it resumes from it; the service does not), and exactly when the run completes. With ``on_progress``
    instead (a worker of several, whose supervisor owns the run), the same progress is counted from zero in ``run``
    and ``on_progress(run)`` is told it at most every ``RUN_SECONDS`` and once more, exactly, at :meth:`close`.
    ``on_write(documents, seconds)`` and ``on_failure()`` feed the metrics.
    """

    def __init__(
        self,
        store: Store,
        *,
        run: RunRecord,
        owns_run: bool,
        capacity: int,
        wait_ms: float,
        max_documents: int,
        retry_seconds: float,
        on_write: Callable[[int, float], None] | None = None,
        on_failure: Callable[[], None] | None = None,
        on_progress: Callable[[RunRecord], None] | None = None,
    ) -> None:
        self.store = store
        self.run = run
        self.owns_run = owns_run
        self._on_progress = on_progress
        self._counting = owns_run or on_progress is not None
        self.capacity = capacity
        self.wait = wait_ms / 1000.0
        self.max_documents = max_documents
        self.retry_seconds = retry_seconds
        self._on_write = on_write
        self._on_failure = on_failure
        self._counts = Counts.from_dict(run.counts)
        # drift profile: kept apart from the counts, and encoded into the run at most every PROFILE_SECONDS
        self._profile, self._counts.profile = self._counts.profile, None
        self._profile_json: tuple[float, dict[str, Any]] | None = None
        self._run_saved: float | None = None  # time.monotonic() of the last commit that saved the run record
        self._progress_unsaved = False  # a write was counted since the run record was last brought up to date
        # samples of committed batches not yet in the profile; folded in on the event loop in steps, after commits
        self._unprofiled: list[Sample] = []
        self._unprofiled_records = 0
        self._profile_lock = threading.Lock()
        self._folding: asyncio.Future[None] | None = None
        self._items: deque[tuple[Documents, asyncio.Future[None], Sample | None]] = deque()
        self._queued = 0  # documents accepted and not yet committed (waiting or being written)
        self._cond: asyncio.Condition | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._side: set[asyncio.Future[float]] = set()  # outcome writes in flight, waited for by close()
        # one thread: the store sees one write at a time, in queue order
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mlsm-writer")

    @property
    def depth(self) -> int:
        """Documents accepted and not yet committed."""
        return self._queued

    async def start(self) -> None:
        """Start the writer task on the running loop."""
        self._cond = asyncio.Condition()
        self._task = asyncio.create_task(self._run(), name="mlsm-writer")

    async def submit(self, batch: Documents, sample: Sample | None = None) -> None:
        """Queue ``batch`` and return once it is committed; ``QueueFull`` or ``ResultNotStored`` otherwise.
        ``sample``: the engine, records and results behind ``batch``, profiled with others after the commit."""
        cond = self._cond
        if cond is None or self._closing:
            raise ResultNotStored("the service is shutting down: result not stored")
        size = len(batch)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        async with cond:
            # a batch larger than the whole queue still goes in alone, when the queue is empty
            def room() -> bool:
                return self._queued == 0 or self._queued + size <= self.capacity

            if not room():
                try:
                    await asyncio.wait_for(cond.wait_for(room), self.wait)
                except TimeoutError:
                    raise QueueFull(
                        f"result queue full ({self._queued} of {self.capacity} documents waiting for the store "
                        f"after {self.wait * 1000:g} ms): result not stored, retry later"
                    ) from None
            self._items.append((batch, future, sample))
            self._queued += size
            cond.notify_all()
        await future

    async def write_outcomes(self, outcomes: list[Outcome]) -> None:
        """Store ``outcomes`` in one transaction on the writer's thread and return once committed; an unavailable
        store is retried as for results, then ``ResultNotStored``; a refusal for good ``ResultRefused``."""
        if self._cond is None or self._closing:
            raise ResultNotStored("the service is shutting down: outcomes not stored")
        write = asyncio.ensure_future(self._on_thread("outcomes", self.store.write_outcomes, outcomes))
        self._side.add(write)
        write.add_done_callback(self._side.discard)
        await asyncio.shield(write)  # a client gone does not cut the write: close() still waits for it

    async def close(self) -> None:
        """Write everything queued, then stop (requests submitted from now on get ``ResultNotStored``)."""
        self._closing = True
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()
        if self._task is not None:
            await self._task
        if self._side:
            await asyncio.wait(set(self._side))
        self._thread.shutdown(wait=True)
        if self._folding is not None:
            await self._folding
        self._fold(encode=False)
        if self._counting and self._profile is not None:  # drift profile: the final one, whatever was encoded last
            self.run.counts = {**self.run.counts, "profile": self._profile.to_json()}
        if self._on_progress is not None:
            self._on_progress(self.run)

    async def _run(self) -> None:
        cond = self._cond
        assert cond is not None
        while True:
            async with cond:
                if self._progress_unsaved:
                    try:  # idle this long: the run record is brought up to date (close() saves it exactly anyway)
                        await asyncio.wait_for(cond.wait_for(lambda: bool(self._items) or self._closing), RUN_SECONDS)
                    except TimeoutError:
                        pass
                else:
                    await cond.wait_for(lambda: bool(self._items) or self._closing)
                if self._closing and not self._items:
                    return
                idle = not self._items
                if not idle:
                    taken = [self._items.popleft()]
                    size = len(taken[0][0])
                    while self._items and size + len(self._items[0][0]) <= self.max_documents:
                        item = self._items.popleft()
                        taken.append(item)
                        size += len(item[0])
            if idle:
                await self._save_progress()
                continue
            batch = Documents.merge([b for b, _, _ in taken])
            try:
                await self._write(batch, [s for _, _, s in taken])
            except ResultRefused as exc:
                if len(taken) == 1:
                    self._fail(taken, exc)
                else:  # one request's documents may be the cause: the others must not fail with it
                    for item in taken:
                        try:
                            await self._write(item[0], [item[2]])
                        except Exception as alone:
                            self._fail([item], alone)
                        else:
                            self._settle([item])
            except Exception as exc:
                self._fail(taken, exc)
            else:
                self._settle(taken)
            async with cond:
                self._queued -= size
                cond.notify_all()
            if self._folding is None and self._fold_due():
                self._folding = self._fold_on_loop()
                self._folding.add_done_callback(self._folded)

    def _settle(self, taken: list[tuple[Documents, asyncio.Future[None], Sample | None]]) -> None:
        for _, future, _ in taken:
            if not future.done():
                future.set_result(None)

    def _fail(self, taken: list[tuple[Documents, asyncio.Future[None], Sample | None]], exc: BaseException) -> None:
        if self._on_failure is not None:
            self._on_failure()
        failure = exc if isinstance(exc, ResultNotStored) else ResultNotStored(f"result not stored: {exc}")
        for _, future, _ in taken:
            if not future.done():
                future.set_exception(failure)

    async def _write(self, batch: Documents, samples: list[Sample | None] | None = None) -> None:
        """Write ``batch``, retrying an unavailable store; ``ResultNotStored`` when it stays unavailable,
        ``ResultRefused`` when the store refuses the batch for good."""
        seconds = await self._on_thread("results", self._write_now, batch, samples or [])
        if self._on_write is not None:
            self._on_write(len(batch), seconds)

    async def _on_thread(self, what: str, call: Callable[..., None], *args: Any) -> float:
        """Run ``call(*args)`` on the writer's thread, retrying while the store is unavailable; its seconds.
        ``ResultNotStored`` when it stays unavailable, ``ResultRefused`` for any other error (``what`` names what
        was not stored)."""
        loop = asyncio.get_running_loop()

        async def attempt() -> float:
            started = time.perf_counter()
            await loop.run_in_executor(self._thread, call, *args)
            return time.perf_counter() - started

        try:
            return await retry_async(attempt, seconds=self.retry_seconds, first=0.05, longest=1.0)
        except StoreUnavailable as exc:
            raise ResultNotStored(f"store unavailable for {self.retry_seconds:g} s, {what} not stored: {exc}") from exc
        except Exception as exc:  # an error of the driver that the store did not translate is as permanent
            raise ResultRefused(f"the store refused the {what} (retrying will not help): {_reason(exc)}") from exc

    def _write_now(self, batch: Documents, samples: list[Sample | None]) -> None:
        if not self._counting:
            self.store.write(batch)
            return
        run = self.run
        before = (run.rows, run.chunks, run.counts)
        counts = Counts.from_dict(self._counts.to_dict())
        documents = batch.documents
        counts.read += len(documents)
        counts.add_results([document["results"] for document in documents])
        with self._profile_lock:
            encoded = self._profile_json
        run.rows += len(batch)
        run.chunks += 1
        run.counts = counts.to_dict()
        if encoded is not None:
            run.counts["profile"] = encoded[1]
        now = time.monotonic()
        saved = self._run_saved
        save = saved is None or now - saved >= RUN_SECONDS or (encoded is not None and encoded[0] > saved)
        try:
            self.store.write(batch, run if save and self.owns_run else None)
        except BaseException:
            run.rows, run.chunks, run.counts = before
            raise
        if save:
            self._run_saved = now
            if self._on_progress is not None:
                self._on_progress(run)
        self._progress_unsaved = True  # the counts or the profile (folded later) are ahead of what was saved
        self._counts = counts
        added = [sample for sample in samples if sample is not None]
        with self._profile_lock:
            self._unprofiled.extend(added)
            self._unprofiled_records += sum(len(sample.records) for sample in added)

    async def _save_progress(self) -> None:
        """Save the run's progress (or tell it to ``on_progress``) as it is now, its drift profile with every
        committed record; after ``RUN_SECONDS`` without a write, so that an idle service's run record is exact."""
        if self._folding is not None:  # one fold at a time: two would each merge into the same old profile
            await asyncio.wait({self._folding})
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._save_progress_now)
        except Exception:  # the store is away: the next idle second, a write or close() saves it
            pass

    def _save_progress_now(self) -> None:
        self._progress_unsaved = False
        self._fold(encode=False)
        with self._profile_lock:
            profile = self._profile
        run = self.run
        counts = dict(run.counts)
        if profile is not None:
            counts["profile"] = profile.to_json()
            with self._profile_lock:
                self._profile_json = (time.monotonic(), counts["profile"])
        run.counts = counts
        try:
            if self.owns_run:
                self.store.save_run(run)
        except BaseException:
            self._progress_unsaved = True
            raise
        self._run_saved = time.monotonic()
        if self._on_progress is not None:
            self._on_progress(run)

    def _fold_due(self) -> bool:
        """True when the committed samples should join the profile: ``PROFILE_RECORDS`` of them are waiting, or
        the run record's profile is older than ``PROFILE_SECONDS`` (or there is none yet)."""
        with self._profile_lock:
            if not self._unprofiled:
                return False
            encoded = self._profile_json
            return (
                self._unprofiled_records >= PROFILE_RECORDS
                or encoded is None
                or time.monotonic() - encoded[0] >= PROFILE_SECONDS
            )

    def _fold_on_loop(self) -> asyncio.Future[None]:
        """:meth:`_fold` on the event loop, a field's work at a time between other callbacks (requests keep being
        answered meanwhile): on a thread, the fold held the GIL for milliseconds at once and stalled the requests
        of that moment (the slowest percent at concurrency 16). Done when the future is."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        steps = self._fold_steps()

        def step() -> None:
            try:
                next(steps)
            except StopIteration:
                done.set_result(None)
            except Exception as exc:
                done.set_exception(exc)
            else:
                loop.call_later(FOLD_STEP_SECONDS, step)

        loop.call_soon(step)
        return done

    def _fold(self, encode: bool = True) -> None:
        """Add the committed samples to the run's drift profile and, with ``encode``, encode it for the run record
        when ``PROFILE_SECONDS`` have passed since it last was (the next write stores it: the run record's profile
        lags by about that)."""
        for _ in self._fold_steps(encode):
            pass

    def _fold_steps(self, encode: bool = True) -> Generator[None, None, None]:
        """:meth:`_fold` in steps (see :func:`profile_steps`)."""
        with self._profile_lock:
            samples, self._unprofiled, self._unprofiled_records = self._unprofiled, [], 0
            profile = self._profile
        added = yield from profile_steps(samples)
        yield
        if added is not None:
            profile = added if profile is None else profile.merge(added)
        with self._profile_lock:
            self._profile = profile
            encoded = self._profile_json
            if encode and profile is not None and (encoded is None or time.monotonic() - encoded[0] >= PROFILE_SECONDS):
                self._profile_json = (time.monotonic(), profile.to_json())

    def _folded(self, done: asyncio.Future[None]) -> None:
        self._folding = None
        if not done.cancelled():
            done.exception()  # a drift profile that cannot be computed never fails a request: its samples are left out


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, MlsmError) else f"{type(exc).__name__}: {exc}"
