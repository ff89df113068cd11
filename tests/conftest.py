"""Shared fixtures: model files written to disk, inputs, stores, and running the real ``mlsm`` command."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlsm.cli import main

from . import servers

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lead_scoring"
# the public lead data: $MLSM_REAL_DATA, or the team's shared folder beside the checkout
REAL_DATA = Path(os.environ.get("MLSM_REAL_DATA") or ROOT.parent / "shared" / "data" / "x_education_leads.csv")


# -- the fast lane: `scripts/test -m "not slow"` ------------------------------------------------------------------

#: Fixtures that start a real server or process: a test using one is slow.
SERVER_FIXTURES = frozenset({"postgres_cluster", "postgres_url", "mongo_server", "mongo_url", "serve", "ray_available"})
#: Parametrized backends that are real servers (the stores' conformance suite, resume, store commands).
SERVER_PARAMS = frozenset({"postgres", "mongo"})
#: What a test's own code calls when it starts a real process.
PROCESS_CALLS = ("run_mlsm(", "subprocess.", "Popen(", "open_page(", "multiprocessing", "workers=", "--workers")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that starts real processes or servers, unless it is marked already: by the
    fixtures it uses, the backends it is parametrized with, or the calls in its own code."""
    for item in items:
        if item.get_closest_marker("slow") is not None:
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = {value for value in callspec.params.values() if isinstance(value, str)} if callspec else set()
        try:
            source = inspect.getsource(item.obj) if isinstance(item, pytest.Function) else ""
        except (OSError, TypeError):
            source = ""
        if fixtures & SERVER_FIXTURES or params & SERVER_PARAMS or any(call in source for call in PROCESS_CALLS):
            item.add_marker(pytest.mark.slow)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., CliResult]:
    """Run ``mlsm ARGS`` in this process (working directory: tmp_path); returns exit code and output."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLSM_STORE", raising=False)

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_mlsm(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    """Run the real ``mlsm`` command in a subprocess."""
    full_env = dict(os.environ)
    full_env.pop("MLSM_STORE", None)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "mlsm", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def write_models(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a model file (dedented source) into tmp_path; returns its path."""

    def write(source: str, name: str = "models.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write CSV text (dedented) into tmp_path; returns its path."""

    def write(text: str, name: str = "input.csv") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


SIMPLE_MODELS = """
    from mlsm import Field, Model, SummaryModel

    def add(data, results):
        return {"c": data["a"] + data["b"]}

    def ratio(data, results):
        return {"r": data["a"] / data["b"]}

    def best(data, results):
        ok = [slot for versions in results.values() for slot in versions.values() if "_error" not in slot]
        return {"n_ok": len(ok)}

    adder = Model("adder", {"a": int, "b": int}, "1", add, status="active")
    divider = Model("divider", {"a": int, "b": Field(int)}, "1", ratio)
    NEEDS = [{"name": "adder", "version": "1"}, {"name": "divider", "version": "1"}]
    summary = SummaryModel("summary", NEEDS, "1", best)
"""


@pytest.fixture
def simple_models(write_models: Callable[[str, str], Path]) -> Path:
    """Two models (one divides, so b=0 errors) and a summary counting ok results."""
    return write_models(SIMPLE_MODELS)


@pytest.fixture(scope="session")
def example_artifacts() -> Path:
    """The lead-scoring example's models, trained once per test session when needed."""
    from mlsm.demo import ensure_artifacts

    ensure_artifacts(EXAMPLE)
    return EXAMPLE / "artifacts"


@pytest.fixture
def real_data() -> Path:
    """The public lead data set; the test is skipped where it is absent."""
    if not REAL_DATA.exists():
        pytest.skip(f"real lead data not present at {REAL_DATA}")
    return REAL_DATA


# -- real database servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB server URL (no database): ``MLSM_TEST_MONGO_URL`` when set, else an nx-27017 wire-protocol
    server (MongoDB's protocol, backed by SQLite) started for this session on a free loopback port."""
    configured = os.environ.get("MLSM_TEST_MONGO_URL")
    if configured:
        yield configured.rstrip("/")
        return
    try:
        server = servers.start_mongo(tmp_path_factory.mktemp("mongo"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.url
    servers.stop_mongo(server)


@pytest.fixture
def mongo_url(mongo_server: str) -> str:
    """A MongoDB URL naming a database of this test's own."""
    return f"{mongo_server}/mlsm_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[servers.PostgresCluster | None]:
    """A throw-away PostgreSQL cluster for this session (None when ``MLSM_TEST_POSTGRES_URL`` names a server)."""
    if os.environ.get("MLSM_TEST_POSTGRES_URL"):
        yield None
        return
    try:
        cluster = servers.start_postgres()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        pytest.fail(f"cannot start PostgreSQL for the tests: {exc} {detail}")
    yield cluster
    servers.remove_postgres(cluster)


@pytest.fixture
def postgres_url(postgres_cluster: servers.PostgresCluster | None) -> str:
    """A PostgreSQL URL whose tables land in a schema of this test's own."""
    import psycopg

    base = os.environ.get("MLSM_TEST_POSTGRES_URL") or postgres_cluster.url()  # type: ignore[union-attr]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


# -- real git repositories ---------------------------------------------------------------------------------------


class GitRepo:
    """A real git repository in a temporary folder, driven by the real ``git`` command."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str) -> str:
        """Run ``git ARGS`` in the repository (with a fixed identity); its output, stripped."""
        command = ["git", "-c", "user.name=Data Scientist", "-c", "user.email=ds@example.com", *args]
        proc = subprocess.run(command, cwd=self.path, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def write(self, name: str, text: str) -> Path:
        """Write a file (dedented) into the working tree; its path."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def commit(self, message: str = "change") -> str:
        """Stage everything and commit; the new commit's hash."""
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., GitRepo]:
    """Create a git repository under tmp_path (branch ``main``), optionally with files committed."""

    def make(name: str = "repo", files: dict[str, str] | None = None) -> GitRepo:
        repo = GitRepo(tmp_path / name)
        repo.path.mkdir(parents=True)
        repo.git("init", "--quiet", "-b", "main")
        if files:
            for file, text in files.items():
                repo.write(file, text)
            repo.commit("first")
        return repo

    return make


def model_source(name: str, version: str, status: str = "active", score: str = "data['a'] * 2") -> str:
    """A one-model file: ``name@version`` reading int field ``a`` and returning ``{'score': <score>}``."""
    return f"""
    from mlsm import Model

    def fcn(data, results):
        return {{"score": {score}}}

    MODELS = [Model({name!r}, {{"a": int}}, {version!r}, fcn, status={status!r})]
    """
