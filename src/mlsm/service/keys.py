"""The service's keys: scoring keys guard ``/v1/...`` and the OpenAPI document, admin keys guard ``/v1/admin/...``.

A key file holds one key per line (blank lines and ``#`` comments ignored), so a key is rotated without downtime:
add the new key, reload (SIGHUP, or ``POST /v1/admin/reload``), move the clients, remove the old key, reload again.
Key files are read at start (a missing, unreadable or empty file is a setup error) and again on every reload; a file
that has become unreadable or empty by then keeps the keys it held, and the reload logs an error. Keys from
``MLSM_API_KEY`` / ``MLSM_ADMIN_KEY`` are read once. Every comparison is constant-time, against every key.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlsm.errors import ServiceError

__all__ = ["ADMIN", "SCORING", "KeyRing", "Scope", "parse_keys", "read_key_file", "read_keys"]


@dataclass(frozen=True)
class Scope:
    """What a kind of key guards: its name, its ``--...-key-file`` flag and its environment variable."""

    name: str
    flag: str
    env: str


SCORING = Scope("API", "--api-key-file", "MLSM_API_KEY")
ADMIN = Scope("admin", "--admin-key-file", "MLSM_ADMIN_KEY")


def parse_keys(text: str) -> tuple[str, ...]:
    """The keys of a key file's text: one per line, stripped, blank lines and ``#`` comment lines skipped."""
    keys = []
    for line in text.splitlines():
        key = line.strip()
        if key and not key.startswith("#"):
            keys.append(key)
    return tuple(keys)


def read_keys(
    scope: Scope, key_file: str | None, environ: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], str | None]:
    """The keys of ``scope`` and where they came from: ``key_file`` when given (it wins), else the scope's
    environment variable (one key). ``((), None)`` when neither is set; ``ServiceError`` naming the flag or variable
    when the file is missing, unreadable or holds no key, or the variable is empty."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        return read_key_file(scope, key_file), f"{scope.flag} {key_file}"
    value = env.get(scope.env)
    if value is None:
        return (), None
    key = value.strip()
    if not key:
        raise ServiceError(f"{scope.env} is set but empty: set a key, or unset it to run without one")
    return (key,), scope.env


def read_key_file(scope: Scope, key_file: str) -> tuple[str, ...]:
    """The keys in ``key_file``; ``ServiceError`` naming the flag and file when it cannot be read or holds none."""
    try:
        text = Path(key_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ServiceError(f"cannot read {scope.flag} {key_file!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceError(f"cannot read {scope.flag} {key_file!r}: {exc}") from exc
    keys = parse_keys(text)
    if not keys:
        raise ServiceError(f"{scope.flag} {key_file!r} is empty: put the key in it (one key per line)")
    return keys


class KeyRing:
    """The keys a service accepts now, per scope, and the files they are re-read from on reload."""

    def __init__(
        self,
        api: tuple[str, ...] = (),
        admin: tuple[str, ...] = (),
        *,
        api_file: str | None = None,
        admin_file: str | None = None,
    ) -> None:
        self._files = {SCORING.name: api_file, ADMIN.name: admin_file}
        self._keys = {SCORING.name: _encoded(api), ADMIN.name: _encoded(admin)}

    def has(self, scope: Scope) -> bool:
        """True when keys of ``scope`` are configured."""
        return bool(self._keys[scope.name])

    def matches(self, scope: Scope, token: bytes) -> bool:
        """True when ``token`` is one of ``scope``'s keys; compared with every key in constant time."""
        found = False
        for key in self._keys[scope.name]:
            found |= hmac.compare_digest(token, key)
        return found

    def reload(self) -> list[str]:
        """Read the key files again; returns one problem per file that could not be read (its keys are kept)."""
        problems = []
        for scope in (SCORING, ADMIN):
            key_file = self._files[scope.name]
            if key_file is None:
                continue
            try:
                self._keys[scope.name] = _encoded(read_key_file(scope, key_file))
            except ServiceError as exc:
                problems.append(f"{exc}; the {scope.name} keys read before are kept")
        return problems

    def counts(self) -> dict[str, int]:
        """How many keys each scope has (for logs; never the keys)."""
        return {name: len(keys) for name, keys in self._keys.items()}


def _encoded(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(key.encode("utf-8") for key in keys)
