"""Child processes die with their parent: a child mlsm starts never outlives the process that started it.

However the parent ends (``kill -9`` included), its children exit within a few seconds: on Linux the kernel sends
them a signal when the parent dies (``PR_SET_PDEATHSIG``); everywhere, and as a backstop, a daemon thread of the
child checks every second that its parent is still the one that started it. A child calls :func:`die_with_parent`
first thing, with the parent's pid passed from the parent (asking ``getppid()`` in the child would already be too
late if the parent died while the child started).

The kernel's signal is tied to the parent *thread* that started the child: mlsm starts its children from the main
thread, which lives as long as the process.

Processes another program starts for mlsm (a local Ray, whose processes start more of their own) cannot run that
code: :func:`end_with_this_process` has a guardian, a small process of its own, end them once this process is gone
(it knows them by a mark they inherit in their environment and by the process tree it notes). Run as a script,
this module is that guardian (standard library only, so it starts fast and small).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

__all__ = ["HARD", "Guardian", "die_with_parent", "end_with_this_process"]

#: The signal that ends a child with nothing to save (SIGKILL where there is one).
HARD = getattr(signal, "SIGKILL", signal.SIGTERM)

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_POLL_SECONDS = 1.0


def die_with_parent(parent: int, signum: int = HARD, *, grace: float = 0.0) -> None:
    """End this process with ``signum`` when process ``parent`` (the pid its parent passed down) is gone.

    A child that drains on ``signum`` (``SIGTERM``) gets ``grace`` seconds to do so before it is ended hard.
    """
    if sys.platform.startswith("linux"):
        _set_parent_death_signal(signum)
    if os.getppid() != parent:  # the parent died before the kernel was told: nothing here to save yet
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, signum, grace), name="mlsm-parent-watch", daemon=True).start()


def _set_parent_death_signal(signum: int) -> None:
    with contextlib.suppress(OSError, AttributeError):  # no prctl to call: the watching thread still does the job
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _watch(parent: int, signum: int, grace: float) -> None:
    while os.getppid() == parent:
        time.sleep(_POLL_SECONDS)
    deadline = time.monotonic() + grace
    while True:
        os.kill(os.getpid(), signum)  # again each second: a signal that came before its handler was set is lost
        if time.monotonic() >= deadline:
            os._exit(1)  # still here: a handler that does not end the process
        time.sleep(_POLL_SECONDS)


# -- processes started by others ----------------------------------------------------------------------------------


class Guardian:
    """A guardian process that ends what this process started (see :func:`end_with_this_process`) once this one is
    gone; ``close()`` when those ended normally."""

    def __init__(self, process: subprocess.Popen[bytes] | None = None, mark: dict[str, str] | None = None) -> None:
        self._process = process
        #: The variable to put in the environment of the processes to guard (empty: nothing is guarded).
        self.mark = mark or {}

    def close(self) -> None:
        """End the guardian (it ends whatever of its processes is still there, as it would after a crash)."""
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()  # type: ignore[union-attr]
            self._process.wait(30)
            self._process = None


def end_with_this_process(name: str) -> Guardian:
    """A guardian that ends, with SIGKILL, the processes this one is about to start (and theirs) once this process
    is gone, however it ended; it waits on a pipe only this process holds. The caller puts ``guardian.mark`` (the
    variable ``name``, a fresh value) in its environment while it starts them, so they inherit it. Linux only
    (``/proc``): elsewhere nothing is guarded."""
    if not os.path.isdir("/proc"):
        return Guardian()
    mark = {name: uuid.uuid4().hex}
    environment = {key: value for key, value in os.environ.items() if key != name}  # the guardian is not marked
    # a session of its own: a terminal's Ctrl-C or a kill of this process group does not end the guardian first
    guardian = subprocess.Popen(
        [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()), f"{name}={mark[name]}"],
        stdin=subprocess.PIPE,
        env=environment,
        start_new_session=True,
    )
    return Guardian(guardian, mark)


def _table() -> dict[int, tuple[int, str]]:
    """Every live process: pid -> (parent pid, start time)."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{name}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
                if fields[0] != b"Z":
                    table[int(name)] = (int(fields[1]), fields[19].decode())
    return table


def _marked(pid: int, mark: bytes) -> bool:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as handle:
        return mark in handle.read().split(b"\0")
    return False


def _guard(guarded: int, mark: str) -> None:
    """The guardian of process ``guarded``: until the pipe from it closes, note every second the processes below it
    that are marked or below a noted one; then end every process noted (the same pid and start time) or marked,
    again until none is left (one may have been starting another).

    Both, because neither suffices: a process that renames itself (``setproctitle``, as Ray's agents do) may write
    over its environment as ``/proc`` shows it, so only the tree finds it; a process orphaned by its parent's death
    leaves the tree, so only the notes or the mark find it.
    """
    import select

    own, token = os.getpid(), mark.encode()
    ours: dict[int, str] = {}
    seen: dict[int, str] = {}
    watching = os.getppid() == guarded  # if not, it is gone already: only the mark tells its processes
    while not (select.select([0], [], [], 1.0)[0] and not os.read(0, 4096)):
        if not watching:
            continue
        table = _table()
        frontier = [guarded]
        while frontier:
            parent = frontier.pop()
            for pid, (ppid, started) in table.items():
                if ppid != parent or pid == own:
                    continue
                if seen.get(pid) != started:
                    seen[pid] = started
                    if ours.get(parent) == table.get(parent, (0, ""))[1] or _marked(pid, token):
                        ours[pid] = started
                frontier.append(pid)
    for _ in range(10):
        table = _table()
        targets = [p for p, (_, t) in table.items() if p != own and (ours.get(p) == t or _marked(p, token))]
        if not targets:
            return
        for pid in targets:
            with contextlib.suppress(OSError):
                os.kill(pid, HARD)
        time.sleep(0.2)


if __name__ == "__main__":
    _guard(int(sys.argv[1]), sys.argv[2])
