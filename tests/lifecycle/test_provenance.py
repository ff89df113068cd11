"""Provenance on every run, and the draft rule: active models only from released code. Real git repositories."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from pathlib import Path

import numpy
import pytest

from mlsm import UnreleasedModelError, open_store
from mlsm.lifecycle.project import load_model_set
from mlsm.lifecycle.provenance import collect_provenance
from mlsm.lifecycle.release import ReleasePolicy, release_gate

from ..conftest import CliResult, GitRepo, model_source, run_mlsm

INPUT = "lead,a\n1,2\n2,3\n"


@pytest.fixture
def repo(make_repo: Callable[..., GitRepo]) -> GitRepo:
    """A model repository on main with one active model, committed."""
    return make_repo("lead-model", {"models.py": model_source("lead", "1.0"), "README.md": "a model\n"})


def run(cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path, *extra: str) -> CliResult:
    data = tmp_path / "input.csv"
    data.write_text(INPUT)
    return cli("run", repo.path / "models.py", data, "--id-field", "lead", "--store", "sqlite:///runs.db", *extra)


def only_run(tmp_path: Path) -> dict:
    with open_store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        (record,) = store.list_runs()
        return json.loads(json.dumps(record.to_dict()))  # exactly what `mlsm runs` prints as a JSON line


def test_a_run_records_the_code_that_produced_its_results(
    cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path
) -> None:
    result = run(cli, repo, tmp_path)
    assert result.code == 0, result.err
    record = only_run(tmp_path)
    provenance = record["info"]["provenance"]
    entry = provenance["models"]["lead@1.0"]
    source = repo.path / "models.py"
    assert entry["source"] == str(source.resolve())
    assert entry["sha256"] == "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
    assert entry["git"]["commit"] == repo.head()
    assert entry["git"]["branch"] == "main" and entry["git"]["dirty"] is False and entry["tracked"] is True
    assert entry["status"] == "active"
    assert provenance["mlsm"] == "0.1.0"
    assert provenance["python"] == platform.python_version()
    assert provenance["libraries"]["numpy"] == numpy.__version__
    assert provenance["draft_rule"] == {
        "policy": {"branches": ["main", "master", "release/*"], "tags": ["*"]},
        "allow_unreleased": False,
        "overridden": [],
    }
    # every stored document traces back to this run, and so to the commit
    document = json.loads(cli("results", "1", "--store", "sqlite:///runs.db").out)
    assert document["_run"] == record["id"]


def test_a_model_outside_git_has_a_hash_and_no_git(tmp_path: Path) -> None:
    path = tmp_path / "plain" / "models.py"
    path.parent.mkdir()
    path.write_text("from mlsm import Model\nm = Model('m', {}, '1', lambda data, results: {}, status='active')\n")
    model_set = load_model_set(str(path))
    provenance = release_gate(model_set)
    assert provenance["models"]["m@1"]["git"] is None
    assert provenance["models"]["m@1"]["sha256"].startswith("sha256:")


def test_the_source_is_the_file_that_defines_the_function(make_repo: Callable[..., GitRepo]) -> None:
    repo = make_repo(
        "helpers",
        {
            "helper_scoring.py": "def score(data, results):\n    return {'s': 1}\n",
            "models.py": "from mlsm import Model\nfrom helper_scoring import score\nm = Model('m', {}, '1', score)\n"
            "n = Model('n', {}, '1', len)\n",
        },
    )
    entries = collect_provenance(load_model_set(str(repo.path / "models.py")).models)["models"]
    assert entries["m@1"]["source"] == str((repo.path / "helper_scoring.py").resolve())
    assert entries["n@1"]["source"] is None  # a builtin, loaded without a file to fall back on
    model_set = load_model_set(str(repo.path / "models.py"))
    with_files = collect_provenance(model_set.models, default_files=model_set.files())["models"]
    assert with_files["n@1"]["source"] == str((repo.path / "models.py").resolve())


# -- the draft rule ------------------------------------------------------------------------------------------------


def assert_refused(result: CliResult, *parts: str) -> None:
    assert result.code == 2, (result.out, result.err)
    (line,) = result.err.strip().splitlines()
    assert line.startswith("mlsm: error: model 'lead@1.0' is active but ")
    for part in parts:
        assert part in line, line
    assert 'set its status="draft", or pass --allow-unreleased' in line
    assert result.out == ""


def test_an_active_model_from_a_development_branch_is_refused(
    cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path
) -> None:
    repo.git("checkout", "--quiet", "-b", "develop")
    result = run(cli, repo, tmp_path)
    assert_refused(result, "comes from branch 'develop' of", "(released code is on main, master, release/*, or a")
    assert "merge it into a release branch or tag it" in result.err
    assert not (tmp_path / "runs.db").exists()  # refused before any work


def test_a_draft_model_from_a_development_branch_runs(
    cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path
) -> None:
    repo.git("checkout", "--quiet", "-b", "develop")
    repo.write("models.py", model_source("lead", "1.0", status="draft"))
    repo.commit("draft")
    assert run(cli, repo, tmp_path).code == 0


def test_allow_unreleased_overrides_the_rule_and_the_run_records_it(
    cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path
) -> None:
    repo.git("checkout", "--quiet", "-b", "develop")
    result = run(cli, repo, tmp_path, "--allow-unreleased")
    assert result.code == 0, result.err
    assert "warning: --allow-unreleased: running active models from unreleased code: lead@1.0:" in result.err
    rule = only_run(tmp_path)["info"]["provenance"]["draft_rule"]
    assert rule["allow_unreleased"] is True
    assert rule["overridden"] == [f"lead@1.0: comes from branch 'develop' of {repo.path.resolve()}"]


def test_uncommitted_changes_on_main_are_refused(cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path) -> None:
    repo.write("models.py", model_source("lead", "1.0", score="data['a'] * 3"))
    assert_refused(run(cli, repo, tmp_path), "has uncommitted changes (branch 'main')", "commit or discard them")


def test_an_untracked_model_file_is_refused(cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path) -> None:
    repo.git("rm", "--quiet", "--cached", "models.py")
    repo.git("commit", "--quiet", "-m", "stop tracking models.py")  # the file stays in the tree, untracked
    assert_refused(run(cli, repo, tmp_path), "is not committed (branch 'main'")


def test_an_untracked_artifact_beside_the_model_does_not_make_the_tree_dirty(
    cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path
) -> None:
    repo.write("artifacts/model.joblib", "binary")
    assert run(cli, repo, tmp_path).code == 0


@pytest.mark.parametrize("branch", ["release/2026-06", "master"])
def test_release_branches_are_released(
    cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path, branch: str
) -> None:
    repo.git("checkout", "--quiet", "-b", branch)
    assert run(cli, repo, tmp_path).code == 0


def test_a_tagged_commit_on_any_branch_is_released(
    cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path
) -> None:
    repo.git("checkout", "--quiet", "-b", "develop")
    repo.git("tag", "v1.0")
    assert run(cli, repo, tmp_path).code == 0


def test_a_detached_head_is_released_when_a_release_branch_contains_it(
    cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path
) -> None:
    on_main = repo.head()
    repo.git("checkout", "--quiet", "-b", "develop")
    repo.write("models.py", model_source("lead", "1.0", score="1"))
    on_develop = repo.commit("experiment")
    repo.git("checkout", "--quiet", "--detach", on_main)
    assert run(cli, repo, tmp_path).code == 0
    repo.git("checkout", "--quiet", "--detach", on_develop)
    assert_refused(
        run(cli, repo, tmp_path), f"comes from commit {on_develop[:12]} of", "neither tagged nor on a release"
    )


def test_the_release_branches_are_configurable(cli: Callable[..., CliResult], repo: GitRepo, tmp_path: Path) -> None:
    repo.git("checkout", "--quiet", "-b", "prod")
    assert run(cli, repo, tmp_path).code == 2
    assert run(cli, repo, tmp_path, "--release-branches", "prod,hotfix/*").code == 0
    repo.git("checkout", "--quiet", "main")
    result = run(cli, repo, tmp_path, "--release-branches", "prod")
    assert_refused(result, "comes from branch 'main'", "(released code is on prod or a tagged commit)")


def test_release_gate_is_the_one_call_a_service_makes(repo: GitRepo) -> None:
    model_set = load_model_set(str(repo.path / "models.py"))
    assert release_gate(model_set)["models"]["lead@1.0"]["git"]["branch"] == "main"
    repo.git("checkout", "--quiet", "-b", "feature/x")
    with pytest.raises(UnreleasedModelError, match=r"model 'lead@1\.0' is active but comes from branch 'feature/x'"):
        release_gate(model_set)
    policy = ReleasePolicy.from_patterns(branches=["feature/*"])
    assert release_gate(model_set, policy=policy)["draft_rule"]["overridden"] == []
    allowed = release_gate(model_set, allow_unreleased=True)
    assert allowed["draft_rule"]["overridden"] == [f"lead@1.0: comes from branch 'feature/x' of {repo.path.resolve()}"]


def test_refusals_from_a_real_process_are_one_line_without_traceback(repo: GitRepo, tmp_path: Path) -> None:
    repo.git("checkout", "--quiet", "-b", "develop")
    (tmp_path / "input.csv").write_text(INPUT)
    result = run_mlsm("run", repo.path / "models.py", "input.csv", "--id-field", "lead", cwd=tmp_path)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "'develop'" in result.err and "Traceback" not in result.err


def test_models_shows_the_git_state_of_each_model(cli: Callable[..., CliResult], repo: GitRepo) -> None:
    line = cli("models", repo.path / "models.py").out.splitlines()[1]
    assert f"[main {repo.head()[:7]}]" in line
    repo.git("checkout", "--quiet", "-b", "develop")
    repo.write("models.py", model_source("lead", "1.0", score="0"))
    assert "[develop " in cli("models", repo.path / "models.py").out
    assert " dirty]" in cli("models", repo.path / "models.py").out


# -- the code that runs is the code recorded ---------------------------------------------------------------------

ONE_MODEL = "from mlsm import Model\nm = Model('m', {}, '1', lambda data, results: {'v': VALUE}, status='active')\n"


def test_provenance_records_the_bytes_the_import_ran_even_if_the_file_changes_meanwhile(tmp_path: Path) -> None:
    """A models file edited while it is imported: the recorded hash is that of the code that runs, not the edit."""
    path = tmp_path / "models.py"
    rewrite = "import pathlib\npathlib.Path(__file__).write_text('VALUE = 2\\n' + MODEL)\n"
    path.write_text(f"MODEL = {ONE_MODEL!r}\n" + rewrite + "VALUE = 1\nexec(MODEL)\n")
    ran = path.read_bytes()
    model_set = load_model_set(str(path))
    assert model_set.models[0].fcn({}, {}) == {"v": 1} and path.read_bytes() != ran  # edited during its import
    assert release_gate(model_set)["models"]["m@1"]["sha256"] == "sha256:" + hashlib.sha256(ran).hexdigest()


def test_a_process_that_loads_other_code_than_the_run_recorded_refuses_to_score(tmp_path: Path) -> None:
    from mlsm import Engine, ModelCodeChanged
    from mlsm.runs._processes import EngineSource

    path = tmp_path / "models.py"
    path.write_text("VALUE = 1\n" + ONE_MODEL)
    model_set = load_model_set(str(path))
    source = EngineSource.of_run(str(path), Engine(model_set.models), release_gate(model_set))
    assert source.build().score({})["m"]["1"]["v"] == 1  # the same code: it scores
    path.write_text("VALUE = 2\n" + ONE_MODEL)  # edited after the run recorded its code
    with pytest.raises(ModelCodeChanged) as info:
        source.build("a Ray actor")
    message = str(info.value)
    assert message.startswith("a Ray actor loaded other code for model 'm@1' than this run recorded")
    assert str(path.resolve()) in message and "\n" not in message
