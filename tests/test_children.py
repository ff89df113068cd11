"""Child processes die with their parent, however it dies: real processes, real SIGKILL.

The commands' own tests kill a real ``mlsm run --workers 2`` and ``mlsm serve --workers 2`` (``test_scale.py``,
``service/test_server.py``); these cover the cases they cannot reach: a parent that died before its child was
ready, the check that works where Linux's parent-death signal does not exist, and a child that ignores the signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .servers import kill_tree, process_tree, wait_for_exit

pytestmark = pytest.mark.slow

CHILD = """
    import signal, sys, time
    import mlsm._children as children

    if "--no-prctl" in sys.argv:  # as where there is no parent-death signal: the watching thread alone
        children._set_parent_death_signal = lambda signum: None
    signum = signal.SIGTERM if "--ignore-sigterm" in sys.argv else children.HARD
    children.die_with_parent(int(sys.argv[1]), signum, grace=1.0)
    if "--ignore-sigterm" in sys.argv:
        signal.signal(signal.SIGTERM, lambda *args: None)  # a handler that never ends the process
    print("ready", flush=True)
    time.sleep(120)
"""

# a parent that starts the child, says so, and waits to be killed
PARENT = """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, sys.argv[1], str(os.getpid()), *sys.argv[2:]], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"ready\\n"
    print(child.pid, flush=True)
    time.sleep(120)
"""


def test_a_child_whose_parent_is_gone_before_it_is_ready_exits_at_once(tmp_path: Path) -> None:
    child = tmp_path / "child.py"
    child.write_text(textwrap.dedent(CHILD))
    # the pid it is given is not its parent's (this process is): its parent died while it was starting
    done = subprocess.run([sys.executable, str(child), str(os.getpid() + 1)], capture_output=True, timeout=60)
    assert done.returncode != 0 and done.stdout == b""  # gone before doing anything


@pytest.mark.parametrize(
    "options",
    [[], ["--no-prctl"], ["--ignore-sigterm"], ["--no-prctl", "--ignore-sigterm"]],
    ids=["signal", "watching-thread", "ignored-signal", "watching-thread-ignored-signal"],
)
def test_a_child_ends_within_seconds_of_its_parents_sigkill(tmp_path: Path, options: list[str]) -> None:
    (tmp_path / "child.py").write_text(textwrap.dedent(CHILD))
    (tmp_path / "parent.py").write_text(textwrap.dedent(PARENT))
    command = [sys.executable, str(tmp_path / "parent.py"), str(tmp_path / "child.py"), *options]
    parent = subprocess.Popen(command, stdout=subprocess.PIPE)
    tree: dict[int, tuple[str, str]] = {}
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        tree = process_tree(parent.pid)
        assert list(tree) == [child]
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        assert wait_for_exit(tree, 5) == {}
    finally:
        parent.kill()
        kill_tree(tree)


# a parent that has a guardian end what it starts, then starts a process that leaves its tree (as a daemon does)
GUARDED = """
    import os, subprocess, sys, time
    from mlsm._children import end_with_this_process

    guardian = end_with_this_process("MLSM_TEST_GUARDED")
    os.environ.update(guardian.mark)
    daemon = "import os, time; os.fork() and os._exit(0); os.setsid(); print(os.getpid(), flush=True); time.sleep(120)"
    starter = subprocess.Popen([sys.executable, "-c", daemon], stdout=subprocess.PIPE)
    print(int(starter.stdout.readline()), flush=True)
    time.sleep(120)
"""


def test_what_a_guardian_watches_ends_with_the_process_that_started_it(tmp_path: Path) -> None:
    (tmp_path / "guarded.py").write_text(textwrap.dedent(GUARDED))
    parent = subprocess.Popen([sys.executable, str(tmp_path / "guarded.py")], stdout=subprocess.PIPE)
    tree: dict[int, tuple[str, str]] = {}
    try:
        assert parent.stdout is not None
        daemon = int(parent.stdout.readline())
        tree = {daemon: (_start_time(daemon), "daemon")}
        assert daemon not in process_tree(parent.pid)  # out of its parent's tree: only the mark leads to it
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        assert wait_for_exit(tree, 5) == {}
    finally:
        parent.kill()
        kill_tree(tree)


def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
