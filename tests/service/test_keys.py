"""Scoped keys: scoring keys cannot administer, admin endpoints without an admin key answer loopback clients only,
key files hold several keys and are re-read on reload, and requests let in without a key must come from this
machine's own pages (Host and Origin)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mlsm.service.settings import ServiceSettings

from .conftest import MODELS, Server, in_process, wait_until

RECORD = {"id": 1, "a": 1, "b": 1}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_scoring_key_cannot_reload_and_an_admin_key_can(settings: Callable[..., ServiceSettings]) -> None:
    async with in_process(settings(api_keys=("score-1",), admin_keys=("admin-1",)), peer="203.0.113.7") as service:
        client = service.client
        assert (await client.post("/v1/score", json=RECORD, headers=bearer("score-1"))).status_code == 200
        refused = await client.post("/v1/admin/reload", headers=bearer("score-1"))
        assert refused.status_code == 403
        assert refused.json()["detail"] == "this key may score but not administer: /v1/admin/... needs an admin key"
        assert refused.json()["request_id"]
        missing = await client.post("/v1/admin/reload")
        assert (missing.status_code, missing.json()["detail"]) == (
            401,
            "missing admin key: send the header 'Authorization: Bearer <key>'",
        )
        wrong = await client.post("/v1/admin/reload", headers=bearer("admin-2"))
        assert (wrong.status_code, wrong.json()["detail"]) == (401, "invalid admin key")
        assert (await client.post("/v1/admin/reload", headers=bearer("admin-1"))).status_code == 200
        # an admin key may score too
        assert (await client.post("/v1/score", json=RECORD, headers=bearer("admin-1"))).status_code == 200
        assert service.runtime.live.current.generation == 2


@pytest.mark.anyio
@pytest.mark.slow
async def test_without_an_admin_key_admin_endpoints_answer_loopback_clients_only(
    settings: Callable[..., ServiceSettings],
) -> None:
    async with in_process(settings(api_keys=("score-1",)), peer="203.0.113.7") as remote:
        refused = await remote.client.post("/v1/admin/reload", headers=bearer("score-1"))
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("no admin key is configured (--admin-key-file or MLSM_ADMIN_KEY)")
        assert (await remote.client.post("/v1/score", json=RECORD, headers=bearer("score-1"))).status_code == 200
    async with in_process(settings(api_keys=("score-1",)), peer="127.0.0.1") as local:
        assert (await local.client.post("/v1/admin/reload")).status_code == 401  # the scoring key is still needed
        assert (await local.client.post("/v1/admin/reload", headers=bearer("score-1"))).status_code == 200
    async with in_process(settings(), peer="::1") as keyless:
        assert (await keyless.client.post("/v1/admin/reload")).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("base_url", "origin", "refused"),
    [
        ("http://localhost:8000", None, None),
        ("http://127.0.0.9:8000", "http://localhost:3000", None),
        ("http://[::1]:8000", "http://[::1]:8000", None),
        ("http://attacker.example:8000", None, "Host 'attacker.example:8000' is not this machine"),
        ("http://localhost:8000", "https://evil.example", "Origin 'https://evil.example' is not this machine"),
        ("http://localhost:8000", "null", "Origin 'null' is not this machine"),
        ("http://10.0.0.5:8000", None, "Host '10.0.0.5:8000' is not this machine"),
    ],
)
@pytest.mark.slow
async def test_without_a_key_only_requests_naming_this_machine_are_served(
    settings: Callable[..., ServiceSettings], base_url: str, origin: str | None, refused: str | None
) -> None:
    headers = {"Origin": origin} if origin else {}
    async with in_process(settings(), base_url=base_url) as service:
        scored = await service.client.post("/v1/score", json=RECORD, headers=headers)
        reload = await service.client.post("/v1/admin/reload", headers=headers)
        read = await service.client.get("/v1/results/1", headers=headers)
        health = await service.client.get("/healthz", headers=headers)
        assert health.status_code == 200  # probes name the pod's address
        if refused is None:
            assert (scored.status_code, reload.status_code, read.status_code) == (200, 200, 200)
        else:
            for response in (scored, reload, read):
                assert response.status_code == 403
                assert response.json()["detail"].startswith(refused)
            assert list(service.runtime.store.current_documents()) == []
    # with a key, the browser's headers do not matter: a page cannot send the key
    async with in_process(settings(api_keys=("k",)), base_url="http://attacker.example") as keyed:
        assert (await keyed.client.post("/v1/score", json=RECORD, headers=bearer("k"))).status_code == 200


# -- rotation on a real server ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_key_files_are_re_read_on_sighup_and_a_broken_file_keeps_the_old_keys(
    tmp_path: Path, serve: Callable[..., Server], model_file: Callable[[str], Path], workers: int
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# scoring keys\nold-key\n")
    admin = tmp_path / "admin.txt"
    admin.write_text("admin-old\n")
    server = serve(
        model_file(MODELS),
        "--id-field",
        "id",
        "--store",
        "sqlite:///r.db",
        "--api-key-file",
        keys,
        "--admin-key-file",
        admin,
        "--workers",
        str(workers),
    )
    listening = server.events("listening")[0]
    assert listening["auth"] is True and listening["admin_auth"] is True

    def statuses(key: str, path: str = "/v1/models") -> set[int]:
        # several requests, each on a new connection: with --workers 2 both workers answer some
        return {httpx.get(server.url + path, headers=bearer(key)).status_code for _ in range(8)}

    assert statuses("old-key") == {200} and statuses("new-key") == {401}
    keys.write_text("new-key\n\n# old-key stays until every client has moved\nold-key\n")
    server.signal(signal.SIGHUP)
    wait_until(lambda: len(server.events("keys_reloaded")) >= workers, 60, "every worker re-reading its keys")
    assert statuses("old-key") == {200} and statuses("new-key") == {200}

    keys.write_text("new-key\n")  # the move is done
    admin.write_text("admin-new\n")
    server.signal(signal.SIGHUP)
    wait_until(lambda: len(server.events("keys_reloaded")) >= 2 * workers, 60, "the second re-read")
    assert statuses("old-key") == {401} and statuses("new-key") == {200}
    assert statuses("new-key", "/v1/admin/nothing") == {403}  # a scoring key on an admin path
    assert httpx.post(server.url + "/v1/admin/reload", headers=bearer("admin-new")).status_code == 200

    keys.write_text("# emptied by mistake\n")
    server.signal(signal.SIGHUP)
    wait_until(lambda: len(server.events("keys_not_reloaded")) >= workers, 60, "the refused re-read")
    problem = server.events("keys_not_reloaded")[0]
    assert problem["level"] == "error"
    assert "is empty" in problem["message"] and "the API keys read before are kept" in problem["message"]
    assert statuses("new-key") == {200}
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0
