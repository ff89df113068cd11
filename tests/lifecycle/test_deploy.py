"""The CI templates of ``examples/deploy``: their steps run as commands against real temporary git repositories.

Jenkins and GitHub Actions cannot run here; both templates call ``mlsm-ci.sh``, which these tests run exactly as
CI would, with ``mlsm`` and ``git`` on PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import ROOT, CliResult, GitRepo, model_source

DEPLOY = ROOT / "examples" / "deploy"
SCRIPT = DEPLOY / "mlsm-ci.sh"


def ci(*args: str, cwd: Path, **env: str) -> CliResult:
    """Run ``mlsm-ci.sh ARGS`` as a CI job would: a fresh process with mlsm on PATH."""
    full = dict(os.environ)
    full.pop("MLSM_STORE", None)
    full["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full.get('PATH', '')}"
    full["MLSM_TEST_ARGS"] = "--examples 20"
    full.update(env)
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=300, check=False
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def model_repo(make_repo: Callable[..., GitRepo]) -> GitRepo:
    """A model repository released as v1.0 (score a * 2)."""
    repo = make_repo("lead-model", {"models.py": model_source("lead", "1.0", score="data['a'] * 2")})
    repo.git("tag", "v1.0")
    return repo


@pytest.fixture
def deployment(tmp_path: Path, make_repo: Callable[..., GitRepo], model_repo: GitRepo) -> Path:
    """The deployment repository (a bare 'server' copy) whose mlsm.toml pins lead-model to v1.0."""
    work = make_repo(
        "deploy-work",
        {
            "mlsm.toml": f"""
                [defaults]
                id_field = "lead"

                [[models]]
                name = "lead-model"
                git = "{model_repo.path}"
                tag = "v1.0"
            """,
        },
    )
    server = tmp_path / "deploy.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(work.path), str(server)], check=True)
    return server


@pytest.mark.slow
def test_the_test_step_writes_the_junit_report_and_fails_the_build_on_a_failing_model(model_repo: GitRepo) -> None:
    result = ci("test", cwd=model_repo.path)
    assert result.code == 0, result.out + result.err
    report = ET.parse(model_repo.path / "reports" / "mlsm-test.xml").getroot()
    assert [case.get("name") for case in report.iter("testcase")] == ["lead@1.0 preflight"]

    model_repo.write("models.py", model_source("lead", "1.1", score="1 / data['a']"))
    result = ci("test", cwd=model_repo.path)
    assert result.code == 1 and "ZeroDivisionError" in result.out
    failure = ET.parse(model_repo.path / "reports" / "mlsm-test.xml").getroot().find(".//failure")
    assert failure is not None and '{"a": 0}' in (failure.text or "")


def test_a_release_tag_is_pinned_in_the_deployment_after_testing_it(
    model_repo: GitRepo, deployment: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    model_repo.write("models.py", model_source("lead", "1.1", score="data['a'] * 3"))
    model_repo.commit("lead 1.1")
    model_repo.git("tag", "v1.1")
    env = {"MLSM_DEPLOY_REPO": str(deployment), "MLSM_SOURCE": "lead-model"}
    result = ci("release", "v1.1", cwd=model_repo.path, **env)
    assert result.code == 0, result.out + result.err
    assert "pinned lead-model to v1.1" in result.out
    assert (model_repo.path / "reports" / "deploy-test.xml").exists()

    # what the deployment now runs: a fresh clone of its repository
    subprocess.run(["git", "clone", "--quiet", str(deployment), str(tmp_path / "prod")], check=True)
    project = tmp_path / "prod" / "mlsm.toml"
    assert 'tag = "v1.1"' in project.read_text()
    log = subprocess.run(
        ["git", "log", "-1", "--format=%s"], cwd=tmp_path / "prod", capture_output=True, text=True, check=True
    )
    assert log.stdout.strip() == "Pin lead-model to v1.1"
    (tmp_path / "input.csv").write_text("lead,a\n1,5\n")
    assert cli("run", project, "input.csv").code == 0
    assert json.loads(cli("results", "1").out)["results"]["lead"]["1.1"]["score"] == 15

    again = ci("release", "v1.1", cwd=model_repo.path, **env)
    assert again.code == 0 and "already pins lead-model to v1.1" in again.out


def test_a_release_whose_deployment_test_fails_pushes_nothing(
    model_repo: GitRepo, deployment: Path, tmp_path: Path
) -> None:
    before = subprocess.run(["git", "rev-parse", "main"], cwd=deployment, capture_output=True, text=True).stdout
    model_repo.write("models.py", model_source("lead", "2.0", score="1 / data['a']"))
    model_repo.commit("lead 2.0")
    model_repo.git("tag", "v2.0")
    result = ci("release", "v2.0", cwd=model_repo.path, MLSM_DEPLOY_REPO=str(deployment), MLSM_SOURCE="lead-model")
    assert result.code == 1
    failure = ET.parse(model_repo.path / "reports" / "deploy-test.xml").getroot().find(".//failure")
    assert failure is not None and "ZeroDivisionError" in (failure.get("message") or "")
    after = subprocess.run(["git", "rev-parse", "main"], cwd=deployment, capture_output=True, text=True).stdout
    assert after == before


def test_a_release_of_a_tag_that_does_not_exist_is_refused(model_repo: GitRepo, deployment: Path) -> None:
    env = {"MLSM_DEPLOY_REPO": str(deployment), "MLSM_SOURCE": "lead-model"}
    result = ci("release", "v9.9", cwd=model_repo.path, **env)
    assert result.code == 2 and "has no tag 'v9.9'" in result.err


def test_missing_settings_are_named(model_repo: GitRepo) -> None:
    result = ci("release", "v1.0", cwd=model_repo.path, MLSM_DEPLOY_REPO="", MLSM_SOURCE="")
    assert result.code == 2 and "MLSM_DEPLOY_REPO is not set" in result.err
    assert ci("deploy", cwd=model_repo.path).code == 2


def test_the_templates_run_the_same_steps() -> None:
    jenkins = (DEPLOY / "Jenkinsfile").read_text()
    actions = (DEPLOY / "github-actions.yml").read_text()
    for template in (jenkins, actions):
        assert "ci/mlsm-ci.sh test models.py" in template
        assert "ci/mlsm-ci.sh release" in template
        assert "reports/" in template  # where mlsm-ci.sh writes the JUnit reports
        assert "MLSM_SOURCE" in template and "MLSM_DEPLOY_REPO" in template
    assert "junit testResults: 'reports/*.xml'" in jenkins
    assert "startsWith(github.ref, 'refs/tags/v')" in actions
    assert os.access(SCRIPT, os.X_OK)
    assert textwrap.dedent(actions) == actions  # YAML indentation starts at column 0
