"""Loading a models source again reads its code as it is now: files, helper modules and dotted modules."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mlsm.lifecycle.loader import load_models

MODEL = (
    "from mlsm import Model\n"
    "from weights_for_loader_test import W\n"
    "m = Model('m', {{}}, '1', lambda data, results: {{'s': {score} * W}})\n"
)


def rewrite_in_the_same_second(path: Path, text: str) -> None:
    """Change a file without changing its size or its modification time (seconds): what a quick edit, a
    checkout or a deploy tool can do, and all that Python's bytecode cache checks."""
    stat = path.stat()
    assert len(text.encode()) == stat.st_size
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def score(path: Path | str) -> object:
    (model,) = load_models(str(path)).models
    return model.fcn({}, {})["s"]


@pytest.fixture(autouse=True)
def bytecode_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python's default: imported modules' bytecode is cached in __pycache__ (this suite may run without it)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)


def test_a_file_and_its_helper_rewritten_in_the_same_second_are_read_again(tmp_path: Path) -> None:
    models, helper = tmp_path / "models.py", tmp_path / "weights_for_loader_test.py"
    models.write_text(MODEL.format(score=1))
    helper.write_text("W = 10\n")
    assert score(models) == 10
    rewrite_in_the_same_second(models, MODEL.format(score=2))
    assert score(models) == 20
    rewrite_in_the_same_second(helper, "W = 30\n")
    assert score(models) == 60


def test_a_dotted_module_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "loader_test_scoring"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(MODEL.format(score=1).replace("weights_for_loader_test", ".weights"))
    (package / "weights.py").write_text("W = 10\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert score("loader_test_scoring.models") == 10
    rewrite_in_the_same_second(package / "weights.py", "W = 30\n")
    assert score("loader_test_scoring.models") == 30
