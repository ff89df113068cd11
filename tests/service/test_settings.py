"""Service settings and the API key: checked once, with messages naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsm import ProjectError, ServiceError
from mlsm.cli import main
from mlsm.service.keys import ADMIN, SCORING, read_keys
from mlsm.service.settings import OPTIONS, PROJECT_KEYS, ServiceSettings, project_service_options


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port": 70000}, "invalid --port 70000: expected 0-65535"),
        ({"workers": 0}, "invalid --workers 0: expected a whole number of at least 1"),
        ({"model_timeout": 0}, "invalid --model-timeout 0: expected a number of seconds above 0"),
        ({"batch_max_wait_ms": -1}, "invalid --batch-max-wait-ms -1: expected a number of milliseconds 0 or more"),
        ({"queue_size": 0}, "invalid --queue-size 0"),
        ({"api_keys": ("",)}, "a key is empty: put non-empty keys in MLSM_API_KEY or --api-key-file"),
        ({"max_records": 0}, "invalid --max-records 0: expected a whole number of at least 1"),
        ({"max_connections": 0}, "invalid --max-connections 0: expected a whole number of at least 1"),
        ({"header_timeout": 0}, "invalid --header-timeout 0: expected a number of seconds above 0"),
        ({"id_field": ""}, "--id-field must name the field"),
    ],
)
def test_bad_settings_name_the_option_and_value(overrides: dict[str, object], message: str) -> None:
    settings = ServiceSettings(**{"models": "m.py", "id_field": "id", **overrides})  # type: ignore[arg-type]
    with pytest.raises(ServiceError, match="^" + message.replace("-", r"\-")):
        settings.check()


def test_without_a_key_the_default_address_is_loopback_and_with_one_every_interface() -> None:
    assert ServiceSettings("m.py", "id").bind_host == "127.0.0.1"
    assert ServiceSettings("m.py", "id").loopback_only
    assert ServiceSettings("m.py", "id", api_keys=("k",)).bind_host == "0.0.0.0"
    assert ServiceSettings("m.py", "id", host="10.1.2.3").bind_host == "10.1.2.3"
    assert not ServiceSettings("m.py", "id", host="10.1.2.3").loopback_only
    secret = ServiceSettings("m.py", "id", api_keys=("sekrit-9",), admin_keys=("adm-1", "adm-2"))
    assert "sekrit-9" not in repr(secret) and "adm-1" not in repr(secret)  # never printed
    assert "sekrit-9" not in str(secret.public()) and "adm-1" not in str(secret.public())
    assert (secret.public()["api_keys"], secret.public()["admin_keys"]) == (1, 2)


def test_the_key_file_wins_over_the_environment_and_is_stripped(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("\n  from-file \n")
    assert read_keys(SCORING, str(key_file), {"MLSM_API_KEY": "from-env"}) == (
        ("from-file",),
        f"--api-key-file {key_file}",
    )
    assert read_keys(SCORING, None, {"MLSM_API_KEY": " from-env "}) == (("from-env",), "MLSM_API_KEY")
    assert read_keys(ADMIN, None, {"MLSM_ADMIN_KEY": "adm"}) == (("adm",), "MLSM_ADMIN_KEY")
    assert read_keys(SCORING, None, {}) == ((), None)
    with pytest.raises(ServiceError, match="MLSM_API_KEY is set but empty"):
        read_keys(SCORING, None, {"MLSM_API_KEY": "  "})
    key_file.write_text("\n# only a comment\n")
    with pytest.raises(ServiceError, match="is empty: put the key in it"):
        read_keys(SCORING, str(key_file), {})
    with pytest.raises(ServiceError, match=r"cannot read --admin-key-file .*: no such file"):
        read_keys(ADMIN, str(tmp_path / "missing"), {})


def test_a_key_file_holds_several_keys_one_a_line_with_comments(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# rotation: new key first\n  new-key-2  \n\n# old, remove after the move\nold-key-1\n")
    assert read_keys(SCORING, str(key_file), {})[0] == ("new-key-2", "old-key-1")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"prot": 80},
            "mlsm.toml: [service]: unknown key 'prot'; valid keys are: access_log, admin_key_file, api_key_file, ",
        ),
        ({"port": 70000}, "mlsm.toml: [service]: port = 70000: expected 0-65535"),
        ({"port": "8000"}, "mlsm.toml: [service]: port = '8000': expected 0-65535"),
        ({"model_timeout": 0}, "mlsm.toml: [service]: model_timeout = 0: expected a number of seconds above 0"),
        ({"access_log": "no"}, "mlsm.toml: [service]: access_log = 'no': expected true or false"),
        ({"strict_preflight": 1}, "mlsm.toml: [service]: strict_preflight = 1: expected true or false"),
        ({"max_body": "lots"}, "mlsm.toml: [service]: max_body = 'lots': expected a size such as 10MiB"),
        ({"allow_unreleased": True}, "mlsm.toml: [service]: allow_unreleased cannot be set here: it is a flag only"),
        ({"api_key": "s3cret"}, "mlsm.toml: [service]: api_key cannot be set here: never put the key in a project"),
        ({"admin_key": "s3cret"}, "mlsm.toml: [service]: admin_key cannot be set here: never put the key in a proj"),
        ({"max_header": "huge"}, "mlsm.toml: [service]: max_header = 'huge': expected a size such as 10MiB"),
        ({"max_records": 0}, "mlsm.toml: [service]: max_records = 0: expected a whole number of at least 1"),
        ({"id_field": "lead"}, "mlsm.toml: [service]: id_field cannot be set here: set it in [defaults]"),
    ],
)
def test_a_bad_service_table_names_the_key_and_value(table: dict[str, object], message: str) -> None:
    with pytest.raises(ProjectError) as caught:
        project_service_options(table, "mlsm.toml: [service]", Path("/deploy"))
    assert str(caught.value).startswith(message)


def test_the_service_table_converts_sizes_numbers_and_paths(tmp_path: Path) -> None:
    table = {
        "max_body": "1MiB",
        "model_timeout": 2,
        "batch_max_wait_ms": 0,
        "api_key_file": "secrets/key",
        "admin_key_file": "secrets/admin",
        "max_header": "16KiB",
        "max_records": 500,
        "max_connections": 50,
        "header_timeout": 3,
        "body_timeout": 20,
        "keep_alive_timeout": 2,
        "strict_preflight": True,
    }
    options = project_service_options(table, "mlsm.toml: [service]", tmp_path)
    assert options == {
        "max_body_bytes": 1024 * 1024,
        "model_timeout": 2.0,
        "batch_max_wait_ms": 0.0,
        "api_key_file": str(tmp_path / "secrets" / "key"),
        "admin_key_file": str(tmp_path / "secrets" / "admin"),
        "max_header_bytes": 16 * 1024,
        "max_records": 500,
        "max_connections": 50,
        "header_timeout": 3.0,
        "body_timeout": 20.0,
        "keep_alive_timeout": 2.0,
        "strict_preflight": True,
    }
    ServiceSettings("m.py", "id", **options).check()


def test_serve_help_lists_every_flag_and_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in OPTIONS:
        if option.flag is not None:
            assert option.flag in text
    assert "--no-access-log" in text and "--max-body SIZE" in text
    assert "(default 10MiB)" in text and "(default 8000)" in text and "(default 64KiB)" in text


@pytest.mark.parametrize(
    ("flag", "key", "value", "expected"),
    [
        ("--port", "port", 70000, "expected 0-65535"),
        ("--workers", "workers", 0, "expected a whole number of at least 1"),
        ("--model-timeout", "model_timeout", 0, "expected a number of seconds above 0"),
        ("--batch-max-wait-ms", "batch_max_wait_ms", -1, "expected a number of milliseconds 0 or more"),
        ("--max-body", "max_body", "lots", "expected a size such as 10MiB"),
    ],
)
def test_a_bad_value_is_explained_in_the_same_words_as_flag_as_key_and_as_setting(
    flag: str, key: str, value: object, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "m.py", "--id-field", "id", flag, str(value)])
    assert f"argument {flag}: invalid value {str(value)!r}: {expected}" in capsys.readouterr().err
    with pytest.raises(ProjectError, match=f": {key} = {value!r}: {expected}"):
        project_service_options({key: value}, "mlsm.toml: [service]", Path("/deploy"))
    name = next(option.name for option in OPTIONS if option.key == key)
    if not isinstance(value, str):
        with pytest.raises(ServiceError, match=f"^invalid {flag} {value!r}: {expected}"):
            ServiceSettings("m.py", "id", **{name: value}).check()  # type: ignore[arg-type]


def test_every_service_key_has_a_flag_and_every_refused_key_says_why() -> None:
    for option in OPTIONS:
        if option.project is True:
            assert option.key in PROJECT_KEYS and option.flag is not None
        elif isinstance(option.project, str):
            with pytest.raises(ProjectError, match=f"{option.key} cannot be set here: "):
                project_service_options({option.key: "x"}, "mlsm.toml: [service]", Path("/deploy"))
