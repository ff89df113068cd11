"""The public API: ``mlsm.__all__`` is complete and every name in it is importable and documented."""

from __future__ import annotations

import inspect

import mlsm


def test_all_lists_every_public_name_and_only_those() -> None:
    public = {
        name
        for name, value in vars(mlsm).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(mlsm.__all__) - {"__version__"}


def test_every_exported_class_and_function_has_a_docstring() -> None:
    for name in mlsm.__all__:
        value = getattr(mlsm, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name


def test_errors_share_one_base() -> None:
    for name in mlsm.__all__:
        value = getattr(mlsm, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, mlsm.MlsmError), name
