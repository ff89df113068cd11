"""Child processes die with their parent: a child mlsm starts never outlives the process that started it.

However the parent ends (``kill -9`` included), its children exit within a few seconds: on Linux the kernel sends
them a signal when the parent dies (``PR_SET_PDEATHSIG``); everywhere, and as a backstop, a daemon thread of the
child checks every second that its parent is still the one that started it. A child calls :func:`die_with_parent`
first thing, with the parent's pid passed from the parent (asking ``getppid()`` in the child would already be too
late if the parent died while the child started).

The kernel's signal is tied to the parent *thread* that started the child: mlsm starts its children from the main
thread, which lives as long as the process.

Processes another program starts for mlsm (a local Ray) cannot run that code: :func:`end_with_this_process` hands
them to a guardian, a small process of its own that ends them once this process is gone. Run as a script, this
module is that guardian (standard library only, so it starts fast and small).
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

__all__ = ["HARD", "Guardian", "descendants", "die_with_parent", "end_with_this_process"]

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


def descendants(pid: int | None = None) -> dict[int, str]:
    """The processes below ``pid`` (default: this one), children and theirs, each with its start time (to tell it
    from a later process given the same pid); empty where there is no ``/proc``."""
    root = os.getpid() if pid is None else pid
    table: dict[int, tuple[int, str]] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit() and (entry := _stat(int(name))) is not None:
                table[int(name)] = entry
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, started) in table.items():
            if ppid == parent and child not in found:
                found[child] = started
                frontier.append(child)
    return found


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process; None when it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else (int(fields[1]), fields[19])


class Guardian:
    """A guardian process ending some processes once this one is gone; ``close()`` when they ended normally."""

    def __init__(self, process: subprocess.Popen[bytes] | None) -> None:
        self._process = process

    def close(self) -> None:
        """End the guardian (it ends whatever of its processes is still there, as it would after a crash)."""
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()  # type: ignore[union-attr]
            self._process.wait(30)
            self._process = None


def end_with_this_process(processes: dict[int, str]) -> Guardian:
    """Have ``processes`` (pid: start time, from :func:`descendants`) ended with SIGKILL once this process is gone,
    however it ended: a guardian process waits on a pipe only this process holds."""
    if not processes:
        return Guardian(None)
    targets = [f"{pid}:{started}" for pid, started in processes.items()]
    # a session of its own: a terminal's Ctrl-C or a kill of this process group does not end the guardian first
    guardian = subprocess.Popen(
        [sys.executable, "-I", "-S", os.path.abspath(__file__), *targets], stdin=subprocess.PIPE, start_new_session=True
    )
    return Guardian(guardian)


def _guard(targets: list[str]) -> None:
    """The guardian: wait until the pipe from the guarded process closes, then end every target still there."""
    while sys.stdin.buffer.read(4096):
        pass
    for target in targets:
        pid, started = target.split(":")
        entry = _stat(int(pid))
        if entry is not None and entry[1] == started:
            with contextlib.suppress(OSError):
                os.kill(int(pid), HARD)


if __name__ == "__main__":
    _guard(sys.argv[1:])
