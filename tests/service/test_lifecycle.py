"""``mlsm serve`` honours the model lifecycle as ``mlsm run`` does: project files, the draft rule at start and on
every reload, and provenance in the service's run record. Real git repositories in temporary folders."""

from __future__ import annotations

import json
import signal
import socket
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlsm.service.settings import ServiceSettings
from mlsm.stores import open_store

from ..conftest import CliResult, GitRepo, model_source, run_mlsm
from .conftest import Server, in_process

pytestmark = pytest.mark.anyio


@pytest.fixture
def repo(make_repo: Callable[..., GitRepo]) -> GitRepo:
    """A model repository on main with one active model, ``lead@1.0`` (score = a * 2), committed."""
    return make_repo("lead-model", {"models.py": model_source("lead", "1.0")})


def run_info(service: Any) -> dict[str, Any]:
    run = service.runtime.store.get_run(service.runtime.run.id)
    assert run is not None
    info: dict[str, Any] = run.info
    return info


@pytest.mark.slow
async def test_every_stored_document_traces_to_the_code_of_its_model_set(
    settings: Callable[..., ServiceSettings], repo: GitRepo
) -> None:
    first_commit = repo.head()
    async with in_process(settings(models=str(repo.path / "models.py"), id_field="lead")) as service:
        before = (await service.client.post("/v1/score", json={"lead": "p-1", "a": 2})).json()
        assert before["results"]["lead"]["1.0"]["score"] == 4
        repo.write("models.py", model_source("lead", "1.0", score="data['a'] * 3"))
        second_commit = repo.commit("lead 1.0 scores a * 3")
        assert (await service.client.post("/v1/admin/reload")).status_code == 200
        after = (await service.client.post("/v1/score", json={"lead": "p-1", "a": 2})).json()
        assert after["results"]["lead"]["1.0"]["score"] == 6
        live = (await service.client.get("/v1/models")).json()["live"]
        assert live["models"][0]["git"] == {"commit": second_commit, "branch": "main", "tags": [], "dirty": False}
        info = run_info(service)
    assert before["_run"] == after["_run"] == service.runtime.run.id
    # the run says which code served: the live set's provenance, and every set it served with its own
    assert info["provenance"]["models"]["lead@1.0"]["git"]["commit"] == second_commit
    assert info["provenance"]["generation"] == 2
    assert info["provenance"]["draft_rule"]["overridden"] == []
    assert info["provenance"]["libraries"]["numpy"]  # the environment, as mlsm run records it
    sets = info["sets"]
    assert [s["generation"] for s in sets] == [1, 2]
    commits = [s["provenance"]["models"]["lead@1.0"]["git"]["commit"] for s in sets]
    assert commits == [first_commit, second_commit]
    digests = [s["provenance"]["models"]["lead@1.0"]["sha256"] for s in sets]
    assert digests[0] != digests[1]


@pytest.mark.parametrize(
    ("change", "problem"),
    [("dirty", "has uncommitted changes (branch 'main')"), ("develop", "comes from branch 'develop' of")],
)
@pytest.mark.slow
async def test_a_reload_of_unreleased_active_code_is_refused_and_the_old_set_serves(
    settings: Callable[..., ServiceSettings], repo: GitRepo, change: str, problem: str
) -> None:
    async with in_process(settings(models=str(repo.path / "models.py"), id_field="lead")) as service:
        if change == "develop":
            repo.git("checkout", "--quiet", "-b", "develop")
            repo.write("models.py", model_source("lead", "1.0", score="data['a'] * 3"))
            repo.commit("an experiment")
        else:
            repo.write("models.py", model_source("lead", "1.0", score="data['a'] * 3"))
        refused = await service.client.post("/v1/admin/reload")
        assert refused.status_code == 409
        (reason,) = refused.json()["reasons"]
        assert reason.startswith("model 'lead@1.0' is active but ") and problem in reason
        assert reason.endswith('set its status="draft", or pass --allow-unreleased')
        assert refused.json()["live"]["generation"] == 1
        scored = (await service.client.post("/v1/score", json={"lead": "p-1", "a": 2})).json()
        assert scored["results"]["lead"]["1.0"]["score"] == 4  # the released code keeps serving
        # a draft model from the same unreleased code may be reloaded
        repo.write("models.py", model_source("lead", "1.0", status="draft", score="data['a'] * 5"))
        assert (await service.client.post("/v1/admin/reload")).status_code == 200
        scored = (await service.client.post("/v1/score", json={"lead": "p-1", "a": 2})).json()
        assert scored["results"]["lead"]["1.0"] == {"score": 10, "_status": "draft"}


@pytest.mark.slow
async def test_allow_unreleased_lets_a_reload_through_and_the_run_records_it(
    settings: Callable[..., ServiceSettings], repo: GitRepo
) -> None:
    service_settings = settings(models=str(repo.path / "models.py"), id_field="lead", allow_unreleased=True)
    async with in_process(service_settings) as service:
        repo.write("models.py", model_source("lead", "1.0", score="data['a'] * 3"))
        assert (await service.client.post("/v1/admin/reload")).status_code == 200
        scored = (await service.client.post("/v1/score", json={"lead": "p-1", "a": 2})).json()
        assert scored["results"]["lead"]["1.0"] == {"score": 6, "_status": "active"}
        (warning,) = service.events("unreleased")
        info = run_info(service)
    overridden = [f"lead@1.0: {repo.path.resolve()} has uncommitted changes (branch 'main')"]
    assert warning["models"] == overridden and warning["generation"] == 2
    assert info["settings"]["allow_unreleased"] is True
    assert info["sets"][0]["provenance"]["draft_rule"]["overridden"] == []
    assert info["sets"][1]["provenance"]["draft_rule"] == {
        "policy": {"branches": ["main", "master", "release/*"], "tags": ["*"]},
        "allow_unreleased": True,
        "overridden": overridden,
    }
    assert info["provenance"]["models"]["lead@1.0"]["git"]["dirty"] is True


@pytest.mark.slow
async def test_release_branches_apply_to_reloads(settings: Callable[..., ServiceSettings], repo: GitRepo) -> None:
    repo.git("checkout", "--quiet", "-b", "prod")
    async with in_process(
        settings(models=str(repo.path / "models.py"), id_field="lead", release_branches=("prod",))
    ) as service:
        repo.write("models.py", model_source("lead", "1.0", score="data['a'] * 3"))
        repo.commit("on prod")
        assert (await service.client.post("/v1/admin/reload")).status_code == 200
        repo.git("checkout", "--quiet", "main")
        refused = await service.client.post("/v1/admin/reload")
        assert refused.status_code == 409
        assert "comes from branch 'main'" in refused.json()["reasons"][0]
        assert "(released code is on prod or a tagged commit)" in refused.json()["reasons"][0]


# -- projects ------------------------------------------------------------------------------------------------------

PROJECT = """
    [defaults]
    id_field = "lead"

    [service]
    batch_max_size = 8

    [[models]]
    path = "rules.py"

    [[models]]
    module = "deploy_scoring.extra"

    [[models]]
    name = "lead-gbm"
    git = "../lead-gbm"
    tag = "v1.0"
"""


@pytest.fixture
def deploy(tmp_path: Path, make_repo: Callable[..., GitRepo]) -> Path:
    """A deployment: a local file, a module of the project's folder, and a git source pinned to v1.0."""
    gbm = make_repo("lead-gbm", {"models.py": model_source("gbm", "1.0", score="data['a'] * 2")})
    gbm.git("tag", "v1.0")
    gbm.write("models.py", model_source("gbm", "1.1", score="data['a'] * 3"))
    gbm.commit("gbm 1.1")
    gbm.git("tag", "v1.1")
    folder = tmp_path / "deploy"
    (folder / "deploy_scoring").mkdir(parents=True)
    (folder / "rules.py").write_text(textwrap.dedent(model_source("rules", "1", score="1")))
    (folder / "deploy_scoring" / "__init__.py").write_text("")
    (folder / "deploy_scoring" / "extra.py").write_text(textwrap.dedent(model_source("extra", "1", score="10")))
    (folder / "mlsm.toml").write_text(textwrap.dedent(PROJECT))
    return folder / "mlsm.toml"


@pytest.mark.slow
async def test_a_reload_reads_the_project_again_and_imports_every_source_afresh(
    settings: Callable[..., ServiceSettings], deploy: Path
) -> None:
    folder = deploy.parent
    async with in_process(settings(models=str(deploy), id_field="lead")) as service:
        first = (await service.client.post("/v1/score", json={"lead": "p-1", "a": 2})).json()["results"]
        assert (first["rules"]["1"]["score"], first["extra"]["1"]["score"], first["gbm"]["1.0"]["score"]) == (1, 10, 4)
        # the pin changes (a roll forward), the file and the module of the project's folder change
        deploy.write_text(deploy.read_text().replace('tag = "v1.0"', 'tag = "v1.1"'))
        (folder / "rules.py").write_text(textwrap.dedent(model_source("rules", "1", score="100 + 1")))
        (folder / "deploy_scoring" / "extra.py").write_text(
            textwrap.dedent(model_source("extra", "1", score="1000 + 10"))
        )
        reloaded = await service.client.post("/v1/admin/reload")
        assert reloaded.status_code == 200, reloaded.text
        assert [m["key"] for m in reloaded.json()["live"]["models"]] == ["rules@1", "extra@1", "gbm@1.1"]
        assert reloaded.json()["live"]["models"][2]["origin"].startswith("git ../lead-gbm @ v1.1 (")
        second = (await service.client.post("/v1/score", json={"lead": "p-1", "a": 2})).json()["results"]
        assert (second["rules"]["1"]["score"], second["extra"]["1"]["score"], second["gbm"]["1.1"]["score"]) == (
            101,
            1010,
            6,
        )
        info = run_info(service)
    origin = info["provenance"]["models"]["gbm@1.1"]["origin"]
    assert (origin["tag"], origin["name"]) == ("v1.1", "lead-gbm")
    assert info["sets"][0]["provenance"]["models"]["gbm@1.0"]["origin"]["tag"] == "v1.0"


@pytest.mark.slow
async def test_settings_a_reload_cannot_apply_are_named_in_its_answer(
    settings: Callable[..., ServiceSettings], deploy: Path
) -> None:
    async with in_process(settings(models=str(deploy), id_field="lead")) as service:
        deploy.write_text(deploy.read_text().replace("batch_max_size = 8", "batch_max_size = 16"))
        reloaded = await service.client.post("/v1/admin/reload")
        assert reloaded.status_code == 200
        assert reloaded.json()["notes"] == [
            "[service] batch_max_size changed in the project file: it takes effect when mlsm serve restarts"
        ]
        assert service.events("restart_needed")[0]["message"] == reloaded.json()["notes"][0]


def test_strict_preflight_in_the_projects_service_table_refuses_any_failure(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    draft = model_source("ratio", "1", status="draft", score="1 / data['a']")  # fails on a=0: would serve
    (tmp_path / "models.py").write_text(textwrap.dedent(draft))
    project = tmp_path / "mlsm.toml"
    project.write_text(
        '[[models]]\npath = "models.py"\n\n[defaults]\nid_field = "id"\n\n[service]\nstrict_preflight = true\n'
    )
    result = cli("serve", project)
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if not line.startswith("{")]
    assert len(lines) == 1 and lines[0].startswith("mlsm: error: 1 of 1 models failed their preflight: ratio@1: ")
    assert "(--strict-preflight refuses any failure)" in lines[0]


@pytest.mark.slow
async def test_a_dotted_module_is_imported_afresh_on_reload(
    settings: Callable[..., ServiceSettings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "acme_reload_scoring"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "weights.py").write_text("WEIGHT = 2\n")
    (package / "models.py").write_text(
        "from mlsm import Model\nfrom acme_reload_scoring.weights import WEIGHT\n"
        "m = Model('m', {'a': int}, '1', lambda data, results: {'s': data['a'] * WEIGHT})\n"
    )
    monkeypatch.syspath_prepend(str(package.parent))
    async with in_process(settings(models="acme_reload_scoring.models")) as service:
        assert (await service.client.post("/v1/score", json={"id": 1, "a": 5})).json()["results"]["m"]["1"]["s"] == 10
        (package / "weights.py").write_text("WEIGHT = 300  # a pip upgrade\n")  # not the same size: no stale .pyc
        assert (await service.client.post("/v1/admin/reload")).status_code == 200
        assert (await service.client.post("/v1/score", json={"id": 1, "a": 5})).json()["results"]["m"]["1"]["s"] == 1500


# -- real processes ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_unreleased_active_model_is_refused_before_the_port_is_bound(repo: GitRepo, tmp_path: Path) -> None:
    repo.git("checkout", "--quiet", "-b", "develop")
    with socket.socket() as taken:  # were the port bound first, the error would be "cannot listen"
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_mlsm(
            "serve", repo.path / "models.py", "--id-field", "lead", "--port", port, cwd=tmp_path, timeout=60
        )
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("mlsm: error: model 'lead@1.0' is active but comes from branch 'develop' of ")
    assert lines[0].endswith('set its status="draft", or pass --allow-unreleased')
    assert not (tmp_path / "mlsm.db").exists()  # nothing registered in the store either


@pytest.mark.slow
def test_a_project_gives_serve_its_defaults_and_flags_win(
    deploy: Path, serve: Callable[..., Server], tmp_path: Path
) -> None:
    deploy.write_text(
        deploy.read_text()
        .replace('id_field = "lead"', 'id_field = "lead"\nstore = "sqlite:///project-results.db"')
        .replace("batch_max_size = 8", "batch_max_size = 8\nmodel_timeout = 2\naccess_log = false")
    )
    server = serve(deploy, "--model-timeout", "3")  # no --id-field, no --store: the project's
    response = httpx.post(server.url + "/v1/score", json={"lead": "p-7", "a": 1})
    assert response.status_code == 200
    assert response.json()["results"]["gbm"]["1.0"]["score"] == 2
    assert server.events("request") == []  # access_log = false
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    with open_store(f"sqlite:///{tmp_path / 'project-results.db'}") as store:
        (run,) = store.list_runs()
        assert store.current("p-7") == response.json()
    assert run.info["id_field"] == "lead" and run.info["source"] == str(deploy)
    chosen = {key: run.info["settings"][key] for key in ("batch_max_size", "model_timeout", "access_log")}
    assert chosen == {"batch_max_size": 8, "model_timeout": 3.0, "access_log": False}
    assert json.dumps(run.info["provenance"]["models"]["gbm@1.0"]["origin"]).count("v1.0") == 1


@pytest.mark.slow
def test_allow_unreleased_serves_and_says_so(repo: GitRepo, serve: Callable[..., Server]) -> None:
    repo.git("checkout", "--quiet", "-b", "develop")
    server = serve(repo.path / "models.py", "--id-field", "lead", "--allow-unreleased", "--store", "sqlite:///r.db")
    (warning,) = server.events("unreleased")
    assert warning["level"] == "warning"
    assert warning["message"].startswith("--allow-unreleased: running active models from unreleased code: lead@1.0")
    assert httpx.post(server.url + "/v1/score", json={"lead": 1, "a": 1}).json()["results"]["lead"]["1.0"] == {
        "score": 2,
        "_status": "active",
    }
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0


async def test_the_services_run_record_and_log_hold_no_store_password(
    settings: Callable[..., ServiceSettings], postgres_url: str
) -> None:
    password = httpx.URL(postgres_url).password
    assert password
    async with in_process(settings(store=postgres_url)) as service:
        assert (await service.client.post("/v1/score", json={"id": "p-1", "a": 2, "b": 1})).status_code == 200
        run_id = service.runtime.run.id
        log = service.log.getvalue()
    with open_store(postgres_url, mode="read") as store:
        stored = store.get_run(run_id)
    assert stored is not None and stored.info["store"].startswith("postgresql://mlsm:***@127.0.0.1:")
    assert password not in json.dumps(stored.to_dict()) and password not in log
