"""Service settings and the API key: checked once, with messages naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsm import ProjectError, ServiceError
from mlsm.service.settings import ServiceSettings, project_service_options, read_api_key


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port": 70000}, "invalid --port 70000: expected 0-65535"),
        ({"workers": 0}, "invalid --workers 0: expected a whole number of at least 1"),
        ({"model_timeout": 0}, "invalid --model-timeout 0: expected a number of seconds above 0"),
        ({"batch_max_wait_ms": -1}, "invalid --batch-max-wait-ms -1: expected a number of milliseconds 0 or more"),
        ({"queue_size": 0}, "invalid --queue-size 0"),
        ({"api_key": ""}, "the API key is empty"),
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
    assert ServiceSettings("m.py", "id", api_key="k").bind_host == "0.0.0.0"
    assert ServiceSettings("m.py", "id", host="10.1.2.3").bind_host == "10.1.2.3"
    assert not ServiceSettings("m.py", "id", host="10.1.2.3").loopback_only
    assert "sekrit-9" not in repr(ServiceSettings("m.py", "id", api_key="sekrit-9"))  # never printed
    assert ServiceSettings("m.py", "id", api_key="k").public()["api_key"] == "set"


def test_the_key_file_wins_over_the_environment_and_is_stripped(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("\n  from-file \n")
    assert read_api_key(str(key_file), {"MLSM_API_KEY": "from-env"}) == ("from-file", f"--api-key-file {key_file}")
    assert read_api_key(None, {"MLSM_API_KEY": " from-env "}) == ("from-env", "MLSM_API_KEY")
    assert read_api_key(None, {}) == (None, None)
    with pytest.raises(ServiceError, match="MLSM_API_KEY is set but empty"):
        read_api_key(None, {"MLSM_API_KEY": "  "})
    key_file.write_text("\n")
    with pytest.raises(ServiceError, match="is empty: put the key in it"):
        read_api_key(str(key_file), {})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"prot": 80}, "mlsm.toml: [service]: unknown key 'prot'; valid keys are: access_log, api_key_file, "),
        ({"port": 70000}, "mlsm.toml: [service]: port = 70000: expected 0-65535"),
        ({"port": "8000"}, "mlsm.toml: [service]: port = '8000': expected 0-65535"),
        ({"model_timeout": 0}, "mlsm.toml: [service]: model_timeout = 0: expected a number of seconds above 0"),
        ({"access_log": "no"}, "mlsm.toml: [service]: access_log = 'no': expected true or false"),
        ({"strict_preflight": 1}, "mlsm.toml: [service]: strict_preflight = 1: expected true or false"),
        ({"max_body": "lots"}, "mlsm.toml: [service]: max_body = 'lots': expected a size such as 10MiB"),
        ({"allow_unreleased": True}, "mlsm.toml: [service]: allow_unreleased cannot be set here: it is a flag only"),
        ({"api_key": "s3cret"}, "mlsm.toml: [service]: api_key cannot be set here: never put the key in a project"),
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
        "strict_preflight": True,
    }
    options = project_service_options(table, "mlsm.toml: [service]", tmp_path)
    assert options == {
        "max_body_bytes": 1024 * 1024,
        "model_timeout": 2.0,
        "batch_max_wait_ms": 0.0,
        "api_key_file": str(tmp_path / "secrets" / "key"),
        "strict_preflight": True,
    }
    ServiceSettings("m.py", "id", **{k: v for k, v in options.items() if k != "api_key_file"}).check()
