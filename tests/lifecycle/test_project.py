"""Projects (``mlsm.toml``): model sources from paths, modules and pinned git repositories, defaults, pins."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlsm import ModelLoadError, ProjectError, open_store
from mlsm.lifecycle.project import load_model_set

from ..conftest import CliResult, GitRepo, model_source, run_mlsm


@pytest.fixture
def gbm(make_repo: Callable[..., GitRepo]) -> GitRepo:
    """A model repository with releases v1.0 and v1.1 on main, and an unreleased experiment on develop."""
    repo = make_repo("lead-gbm", {"models.py": model_source("gbm", "1.0", score="data['a'] * 2")})
    repo.git("tag", "v1.0")
    repo.write("models.py", model_source("gbm", "1.1", score="data['a'] * 3"))
    repo.commit("gbm 1.1")
    repo.git("tag", "v1.1")
    repo.git("checkout", "--quiet", "-b", "develop")
    repo.write("models.py", model_source("gbm", "1.2", score="data['a'] * 4"))
    repo.commit("experiment")
    repo.git("checkout", "--quiet", "main")
    return repo


PROJECT = """
    # the deployment of the lead scores
    [defaults]
    id_field = "lead"
    store = "sqlite:///results.db"
    chunk_size = 500

    [service]
    port = 8123

    [[models]]
    path = "rules.py"

    [[models]]
    module = "deploy_scoring.extra"

    [[models]]
    name = "lead-gbm"   # what `mlsm pin` calls it
    git = "../lead-gbm"
    tag = "v1.0"        # the release in production
"""


@pytest.fixture
def deploy(tmp_path: Path, gbm: GitRepo) -> Path:
    """A deployment folder with mlsm.toml: a local file, a module, and lead-gbm pinned to v1.0."""
    folder = tmp_path / "deploy"
    (folder / "deploy_scoring").mkdir(parents=True)
    (folder / "rules.py").write_text(textwrap.dedent(model_source("rules", "1", score="1.0")))
    (folder / "deploy_scoring" / "__init__.py").write_text("")
    (folder / "deploy_scoring" / "extra.py").write_text(textwrap.dedent(model_source("extra", "1", score="0.5")))
    (folder / "mlsm.toml").write_text(textwrap.dedent(PROJECT))
    (tmp_path / "input.csv").write_text("lead,a\n1,2\n2,5\n")
    return folder / "mlsm.toml"


def test_a_project_loads_every_source_and_its_defaults(deploy: Path, gbm: GitRepo) -> None:
    model_set = load_model_set(str(deploy))
    assert [model.key for model in model_set.models] == ["rules@1", "extra@1", "gbm@1.0"]
    assert model_set.settings.id_field == "lead" and model_set.settings.chunk_size == 500
    assert model_set.settings.store == "sqlite:///results.db" and model_set.settings.service == {"port": 8123}
    git_source = model_set.sources[2]
    assert git_source.commit == gbm.git("rev-parse", "v1.0")
    assert git_source.label == f"git ../lead-gbm @ v1.0 ({git_source.commit[:7]})"
    assert git_source.path is not None and git_source.path.is_relative_to(deploy.parent / ".mlsm" / "sources")


def test_models_shows_where_each_model_came_from(cli: Callable[..., CliResult], deploy: Path, gbm: GitRepo) -> None:
    result = cli("models", deploy)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[1].split()[:6] == ["rules", "1", "active", "model", "no", "rules.py"]
    assert lines[2].split()[:7] == ["extra", "1", "active", "model", "no", "module", "deploy_scoring.extra"]
    short = gbm.git("rev-parse", "--short=7", "v1.0")
    assert f"gbm    1.0      active  model  no     git ../lead-gbm @ v1.0 ({short})" in lines[3]


def test_run_takes_its_defaults_from_the_project_and_records_the_pin(
    cli: Callable[..., CliResult], deploy: Path, gbm: GitRepo, tmp_path: Path
) -> None:
    result = cli("run", deploy, "input.csv")
    assert result.code == 0, result.err
    document = json.loads(cli("results", "2", "--store", "sqlite:///results.db").out)
    assert document["results"]["gbm"]["1.0"]["score"] == 10
    with open_store(f"sqlite:///{tmp_path / 'results.db'}") as store:
        (run,) = store.list_runs()
    entry = run.info["provenance"]["models"]["gbm@1.0"]
    assert entry["origin"] == {
        "kind": "git",
        "spec": "../lead-gbm",
        "name": "lead-gbm",
        "tag": "v1.0",
        "commit": gbm.git("rev-parse", "v1.0"),
        "file": "models.py",
    }
    assert entry["git"]["tags"] == ["v1.0"] and entry["git"]["branch"] is None  # a pinned, detached checkout
    assert run.info["id_field"] == "lead"


def test_rolling_back_is_changing_the_pin_and_needs_no_network(
    cli: Callable[..., CliResult], deploy: Path, gbm: GitRepo, tmp_path: Path
) -> None:
    assert cli("run", deploy, "input.csv").code == 0
    result = cli("pin", deploy, "lead-gbm", "--tag", "v1.1")
    assert result.code == 0, result.err
    assert "pinned lead-gbm to v1.1" in result.out and "(was tag v1.0)" in result.out
    assert cli("run", deploy, "input.csv").code == 0
    assert json.loads(cli("results", "2", "--store", "sqlite:///results.db").out)["results"]["gbm"] == {
        "1.1": {"score": 15, "_status": "active"}
    }
    shutil.move(gbm.path, tmp_path / "gone")  # the repository is unreachable from now on
    assert cli("pin", deploy, "lead-gbm", "--tag", "v1.0").code == 0
    assert cli("run", deploy, "input.csv").code == 0
    history = [
        json.loads(line)
        for line in cli("results", "2", "--store", "sqlite:///results.db", "--history").out.splitlines()
    ]
    assert [list(doc["results"]["gbm"]) for doc in history] == [["1.0"], ["1.1"], ["1.0"]]


def test_pin_rewrites_only_the_pin_line(cli: Callable[..., CliResult], deploy: Path, gbm: GitRepo) -> None:
    before = deploy.read_text()
    commit = gbm.git("rev-parse", "v1.1")
    assert cli("pin", deploy, "lead-gbm", "--commit", commit).code == 0
    after = deploy.read_text()
    assert after == before.replace('tag = "v1.0"        # the release in production', f'commit = "{commit}"')
    assert load_model_set(str(deploy)).sources[2].commit == commit


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tag", "v9"], "has no tag 'v9'; its newest tags are: v1."),
        (["--tag", "develop"], "'develop' is a branch, and a branch is not a pin"),
        (["--commit", "develop"], "commit 'develop' is not a commit hash"),
        (["--commit", "abcdef1234"], "has no commit 'abcdef1234'"),
    ],
)
def test_a_bad_pin_is_refused_and_the_file_is_unchanged(
    cli: Callable[..., CliResult], deploy: Path, gbm: GitRepo, args: list[str], message: str
) -> None:
    before = deploy.read_text()
    result = cli("pin", deploy, "lead-gbm", *args)
    assert result.code == 2 and message in result.err, result.err
    assert deploy.read_text() == before
    assert not [p.name for p in deploy.parent.iterdir() if p.name.startswith(".") and p.name != ".mlsm"]  # no scratch


def test_pinning_an_unknown_source_names_the_known_ones(cli: Callable[..., CliResult], deploy: Path) -> None:
    result = cli("pin", deploy, "gbm", "--tag", "v1.1")
    assert result.code == 2 and "no git source named 'gbm'; its git sources are: 'lead-gbm'" in result.err


def test_a_pinned_commit_that_is_not_released_cannot_run_active_models(
    cli: Callable[..., CliResult], deploy: Path, gbm: GitRepo
) -> None:
    experiment = gbm.git("rev-parse", "develop")
    deploy.write_text(deploy.read_text().replace('tag = "v1.0"', f'commit = "{experiment[:10]}"'))
    result = cli("run", deploy, "input.csv")
    assert result.code == 2
    assert f"model 'gbm@1.2' is active but comes from commit {experiment[:12]} of" in result.err
    assert "neither tagged nor on a release branch" in result.err and "pin a released tag or commit" in result.err
    released = gbm.git("rev-parse", "v1.1")
    deploy.write_text(deploy.read_text().replace(f'commit = "{experiment[:10]}"', f'commit = "{released}"'))
    assert cli("run", deploy, "input.csv").code == 0  # an untagged commit on main would do as well


def test_test_accepts_the_project(cli: Callable[..., CliResult], deploy: Path) -> None:
    result = cli("test", deploy, "--examples", "20")
    assert result.code == 0, result.out
    assert "3 of 3 models passed" in result.out


def test_helper_modules_of_two_repositories_do_not_mix(
    cli: Callable[..., CliResult], make_repo: Callable[..., GitRepo], tmp_path: Path
) -> None:
    for name, value in (("one", 1), ("two", 2)):
        repo = make_repo(
            name,
            {
                "features.py": f"CONSTANT = {value}\n",
                "models.py": "from features import CONSTANT\nfrom mlsm import Model\n"
                f"m = Model({name!r}, {{}}, '1', lambda data, results: {{'c': CONSTANT}}, status='active')\n",
            },
        )
        repo.git("tag", "v1")
    (tmp_path / "mlsm.toml").write_text('[[models]]\ngit = "one"\ntag = "v1"\n\n[[models]]\ngit = "two"\ntag = "v1"\n')
    (tmp_path / "input.csv").write_text("lead\n1\n")
    assert cli("run", "mlsm.toml", "input.csv", "--id-field", "lead").code == 0
    results = json.loads(cli("results", "1").out)["results"]
    assert (results["one"]["1"]["c"], results["two"]["1"]["c"]) == (1, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[models]]\npaht = 'x.py'\n",
            "unknown key 'paht'; valid keys are: commit, file, git, module, name, path, tag",
        ),
        ("[[models]]\npath = 'a.py'\nmodule = 'b'\n", "give exactly one of path, module or git, got path, module"),
        ("[[models]]\ngit = 'x'\n", "pinned by exactly one of tag"),
        ("[[models]]\npath = 'rules.py'\ntag = 'v1'\n", "tag only apply to git sources"),
        ("[defaults]\nchunk_size = 'big'\n[[models]]\npath = 'rules.py'\n", "chunk_size must be a int, got 'big'"),
        ("[release]\nbranches = 'main'\n[[models]]\npath = 'rules.py'\n", "branches must be a list of strings"),
        ("[defaults]\nid = 'x'\n[[models]]\npath = 'rules.py'\n", "unknown key 'id'; valid keys are: chunk_size"),
        ("models = 3\n", "no model sources"),
        ("[[models]\n", "invalid TOML"),
        ("[[models]]\ngit = '/no/such/repo'\ntag = 'v1'\n", "cannot fetch git source /no/such/repo:"),
        ("[[models]]\ngit = 'http://127.0.0.1:9/x.git'\ntag = 'v1'\n", "cannot fetch git source http://127.0.0.1:9"),
        ("[[models]]\ngit = '../lead-gbm'\ntag = 'v1.0'\nfile = 'nope.py'\n", "has no file 'nope.py'"),
        ("[[models]]\npath = 'rules.py'\n[[models]]\npath = 'rules.py'\n", "model 'rules@1' comes from both"),
        ("[[models]]\npath = 'rules.py'\n[[models]]\npath = 'm.py'\n", "entry 2: cannot load models from '"),
    ],
)
def test_a_bad_project_is_one_clear_line(deploy: Path, tmp_path: Path, text: str, message: str, gbm: GitRepo) -> None:
    deploy.write_text(text)
    result = run_mlsm("models", deploy, cwd=tmp_path)
    assert result.code == 2, result.out
    (line,) = result.err.strip().splitlines()
    assert message in line, line


def test_a_project_source_that_does_not_import_says_which_release(
    deploy: Path, gbm: GitRepo, make_repo: Callable[..., GitRepo]
) -> None:
    gbm.write("models.py", "raise RuntimeError('artifact missing')\n")
    gbm.commit("broken")
    gbm.git("tag", "v2.0")
    deploy.write_text(deploy.read_text().replace("v1.0", "v2.0"))
    with pytest.raises(ModelLoadError, match=r"\.\./lead-gbm at v2\.0: cannot load models from .*artifact missing"):
        load_model_set(str(deploy))


def test_a_missing_project_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no such file"):
        load_model_set(str(tmp_path / "mlsm.toml"))


def test_a_git_source_may_be_any_url_git_can_reach(deploy: Path, gbm: GitRepo) -> None:
    deploy.write_text(f'[[models]]\ngit = "file://{gbm.path}"\ntag = "v1.1"\n')
    (source,) = load_model_set(str(deploy)).sources
    assert [model.key for model in source.models] == ["gbm@1.1"]
    assert source.name == "lead-gbm" and source.commit == gbm.git("rev-parse", "v1.1")
