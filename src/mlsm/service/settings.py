"""What ``mlsm serve`` is configured with: one settings object, checked once at the entry point.

Where a setting comes from, first found wins: the command line; for a project file (``mlsm.toml``), its
``[service]`` table (``id_field`` and ``store`` from its ``[defaults]``); then the defaults here. ``--allow-unreleased``
is only ever a flag: a deployment's files cannot switch the draft rule off. Keys are read by :mod:`mlsm.service.keys`.

Limits per client (each worker process applies them to its own connections): ``max_connections`` open connections
(at the cap a new connection closes the longest-idle one that has no request in flight, else it is answered 503
and closed), ``header_timeout`` for the request line and headers to arrive, ``max_header_bytes`` for their size
(431 beyond), ``body_timeout`` for the body once the headers are in, ``keep_alive_timeout`` between requests,
``max_body_bytes`` (413) and ``max_records`` records per request (413).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mlsm.errors import ProjectError, ServiceError

__all__ = ["LOOPBACK", "PROJECT_KEYS", "KiB", "MiB", "ServiceSettings", "parse_size", "project_service_options"]

#: Where the service listens when no API key is configured and no ``--host`` was given.
LOOPBACK = "127.0.0.1"

KiB = 1024
MiB = 1024 * 1024


@dataclass
class ServiceSettings:
    """Everything the service needs besides its process: models, id field, store, limits, batching, auth.

    ``host=None`` means "not given": loopback without an API key, every interface with one. Durations are in
    seconds. :meth:`check` raises :class:`~mlsm.errors.ServiceError` naming the first bad option.
    """

    models: str
    id_field: str
    store: str | None = None
    host: str | None = None
    port: int = 8000
    workers: int = 1
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # scoring keys (an admin key may score too)
    api_key_file: str | None = None  # where api_keys came from: re-read on every reload
    admin_keys: tuple[str, ...] = field(default=(), repr=False)  # none: /v1/admin/... answers loopback clients only
    admin_key_file: str | None = None
    max_body_bytes: int = 10 * MiB
    max_records: int = 10_000  # records per request: bounds what one request costs (the example: ~160 MiB at most)
    max_connections: int = 1000  # open connections per worker process
    max_header_bytes: int = 64 * KiB  # request line and headers
    header_timeout: float = 10.0  # from a connection's first byte (or its opening) to the end of the headers
    body_timeout: float = 60.0  # from the end of the headers to the end of the body
    keep_alive_timeout: float = 5.0  # an idle connection between two requests
    model_timeout: float = 5.0  # per model call; a batch model's call covers its whole group
    batch_max_size: int = 64  # records grouped into one engine call for batch=True models
    batch_max_wait_ms: float = 5.0  # longest a record waits for others while a group is being scored
    queue_size: int = 10_000  # result documents waiting for the store, at most
    queue_wait_ms: float = 250.0  # how long a request waits for room in a full queue before its 503
    write_max_documents: int = 1000  # documents per store transaction, at most
    store_retry: float = 5.0  # how long the writer retries an unavailable store before answering 503
    shutdown_timeout: float = 30.0  # SIGTERM: longest wait for in-flight requests before closing them
    reload_timeout: float = 120.0  # longest loading the models (import + preflight) may take, at start or reload
    scoring_threads: int = 4  # engine calls that may run at once (a hung model holds one)
    access_log: bool = True
    run_id: str | None = None
    allow_unreleased: bool = False  # --allow-unreleased: active models from unreleased code may serve (recorded)
    release_branches: tuple[str, ...] | None = None  # --release-branches; None: the project's [release], else defaults
    strict_preflight: bool = False  # refuse a set on any preflight failure, not only on the blocking ones

    def check(self) -> ServiceSettings:
        """Raise ``ServiceError`` naming the first option that is out of range; returns self."""
        if not self.id_field:
            raise ServiceError("--id-field must name the field that identifies a record")
        for keys, where in (
            (self.api_keys, "MLSM_API_KEY or --api-key-file"),
            (self.admin_keys, "MLSM_ADMIN_KEY or --admin-key-file"),
        ):
            if any(not isinstance(key, str) or not key.strip() for key in keys):
                raise ServiceError(f"a key is empty: put non-empty keys in {where}")
        for name in _RULES:
            value = getattr(self, name)
            expected = _problem(name, value)
            if expected is not None:
                raise ServiceError(f"invalid {_flag(name)} {value!r}: {expected}")
        return self

    @property
    def bind_host(self) -> str:
        """The address to listen on: ``host`` when given, else loopback without a key and all interfaces with one."""
        if self.host is not None:
            return self.host
        return LOOPBACK if not self.api_keys else "0.0.0.0"

    @property
    def loopback_only(self) -> bool:
        """True when the bind address only accepts connections from this machine."""
        host = self.bind_host
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def public(self) -> dict[str, Any]:
        """The settings without the keys (their counts instead), for logs and the run record."""
        secret = ("api_keys", "admin_keys")
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in secret}
        values.update({name: len(getattr(self, name)) for name in secret})
        return values


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_WHOLE = "expected a whole number of at least 1"
_RULES: dict[str, tuple[str, str]] = {  # setting: (kind, what a valid value is)
    "port": ("port", "expected 0-65535"),
    "host": ("host", "name an address such as 127.0.0.1 or 0.0.0.0"),
    "workers": ("whole", _WHOLE),
    "max_body_bytes": ("whole", _WHOLE),
    "max_records": ("whole", _WHOLE),
    "max_connections": ("whole", _WHOLE),
    "max_header_bytes": ("whole", _WHOLE),
    "batch_max_size": ("whole", _WHOLE),
    "queue_size": ("whole", _WHOLE),
    "write_max_documents": ("whole", _WHOLE),
    "scoring_threads": ("whole", _WHOLE),
    "model_timeout": ("positive", "expected a number of seconds above 0"),
    "queue_wait_ms": ("positive", "expected a number of milliseconds above 0"),
    "store_retry": ("positive", "expected a number of seconds above 0"),
    "shutdown_timeout": ("positive", "expected a number of seconds above 0"),
    "reload_timeout": ("positive", "expected a number of seconds above 0"),
    "header_timeout": ("positive", "expected a number of seconds above 0"),
    "body_timeout": ("positive", "expected a number of seconds above 0"),
    "keep_alive_timeout": ("positive", "expected a number of seconds above 0"),
    "batch_max_wait_ms": ("zero_or_more", "expected a number of milliseconds 0 or more"),
    "access_log": ("bool", "expected true or false"),
    "strict_preflight": ("bool", "expected true or false"),
}


def _problem(name: str, value: Any) -> str | None:
    """None when ``value`` is valid for setting ``name``, else what a valid value is."""
    kind, expected = _RULES[name]
    if kind == "host":
        ok = value is None or (isinstance(value, str) and bool(value.strip()))
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        ok = False
    elif kind == "port":
        ok = isinstance(value, int) and 0 <= value <= 65535
    elif kind == "whole":
        ok = isinstance(value, int) and value >= 1
    elif kind == "positive":
        ok = 0 < value < float("inf")
    else:
        ok = 0 <= value < float("inf")
    return None if ok else expected


#: The keys of a project's ``[service]`` table: the ``mlsm serve`` options, by their long names with underscores.
PROJECT_KEYS = (
    "host",
    "port",
    "workers",
    "api_key_file",
    "admin_key_file",
    "max_body",
    "max_records",
    "max_connections",
    "max_header",
    "header_timeout",
    "body_timeout",
    "keep_alive_timeout",
    "model_timeout",
    "batch_max_size",
    "batch_max_wait_ms",
    "queue_size",
    "queue_wait_ms",
    "shutdown_timeout",
    "reload_timeout",
    "access_log",
    "strict_preflight",
)
_SIZES = {"max_body": "max_body_bytes", "max_header": "max_header_bytes"}  # keys taking a size such as 64KiB
_NOT_IN_PROJECT = {
    "id_field": "set it in [defaults]",
    "store": "set it in [defaults]",
    "api_key": "never put the key in a project file: use api_key_file or MLSM_API_KEY",
    "admin_key": "never put the key in a project file: use admin_key_file or MLSM_ADMIN_KEY",
    "allow_unreleased": "it is a flag only (--allow-unreleased), so that no file can switch the draft rule off",
    "release_branches": "set branches in the [release] table",
}


def project_service_options(table: Mapping[str, Any], where: str, folder: Path) -> dict[str, Any]:
    """A project's ``[service]`` table as ``ServiceSettings`` keyword arguments, key files made absolute against
    ``folder`` (the project's folder). ``ProjectError`` naming the first bad key or value."""
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key in _NOT_IN_PROJECT:
            raise ProjectError(f"{where}: {key} cannot be set here: {_NOT_IN_PROJECT[key]}")
        if key not in PROJECT_KEYS:
            raise ProjectError(f"{where}: unknown key {key!r}; valid keys are: {', '.join(sorted(PROJECT_KEYS))}")
        if key in ("api_key_file", "admin_key_file"):
            if not isinstance(value, str) or not value.strip():
                raise ProjectError(f"{where}: {key} must be a path (a string), got {value!r}")
            options[key] = str(folder / os.path.expanduser(value))
            continue
        name = _SIZES.get(key, key)
        if name in _SIZES.values() and isinstance(value, str):
            try:
                value = parse_size(value)
            except ValueError as exc:
                raise ProjectError(f"{where}: {key} = {value!r}: {exc}") from None
        expected = _problem(name, value)
        if expected is not None:
            raise ProjectError(f"{where}: {key} = {value!r}: {expected}")
        options[name] = float(value) if _RULES[name][0] in ("positive", "zero_or_more") else value
    return options


_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_size(text: str) -> int:
    """A size such as ``10MiB``, ``512KiB`` or ``1000000`` in bytes; ``ValueError`` saying what was expected."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"expected a size such as 10MiB, 512KiB or 1000000, got {text!r}")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value < 1:
        raise ValueError(f"must be at least 1 byte, got {text!r}")
    return value
