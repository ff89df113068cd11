"""What ``mlsm serve`` is configured with: one settings object, checked once at the entry point."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ServiceError

__all__ = ["LOOPBACK", "ServiceSettings", "read_api_key"]

#: Where the service listens when no API key is configured and no ``--host`` was given.
LOOPBACK = "127.0.0.1"

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
    api_key: str | None = field(default=None, repr=False)
    max_body_bytes: int = 10 * MiB
    model_timeout: float = 5.0  # per model call; a batch model's call covers its whole group
    batch_max_size: int = 64  # records grouped into one engine call for batch=True models
    batch_max_wait_ms: float = 5.0  # longest a record waits for others while a group is being scored
    queue_size: int = 10_000  # result documents waiting for the store, at most
    queue_wait_ms: float = 250.0  # how long a request waits for room in a full queue before its 503
    write_batch: int = 1000  # documents per store transaction, at most
    store_retry: float = 5.0  # how long the writer retries an unavailable store before answering 503
    shutdown_timeout: float = 30.0  # SIGTERM: longest wait for in-flight requests before closing them
    reload_timeout: float = 120.0  # longest loading the models (import + preflight) may take, at start or reload
    scoring_threads: int = 4  # engine calls that may run at once (a hung model holds one)
    access_log: bool = True
    run_id: str | None = None

    def check(self) -> ServiceSettings:
        """Raise ``ServiceError`` naming the first option that is out of range; returns self."""
        if not self.id_field:
            raise ServiceError("--id-field must name the field that identifies a record")
        if not 0 <= self.port <= 65535:
            raise ServiceError(f"invalid --port {self.port}: expected 0-65535")
        if self.host is not None and not self.host.strip():
            raise ServiceError("invalid --host '': name an address such as 127.0.0.1 or 0.0.0.0")
        if self.api_key is not None and not self.api_key:
            raise ServiceError("the API key is empty: put a non-empty key in MLSM_API_KEY or --api-key-file")
        positive = ("workers", "max_body_bytes", "batch_max_size", "queue_size", "write_batch", "scoring_threads")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ServiceError(f"invalid {_flag(name)} {value!r}: expected a whole number of at least 1")
        durations = ("model_timeout", "queue_wait_ms", "store_retry", "shutdown_timeout", "reload_timeout")
        for name in (*durations, "batch_max_wait_ms"):
            value = getattr(self, name)
            zero_ok = name == "batch_max_wait_ms"
            if not isinstance(value, (int, float)) or value != value or value < 0 or (value == 0 and not zero_ok):
                unit = "milliseconds" if name.endswith("_ms") else "seconds"
                low = "0 or more" if zero_ok else "above 0"
                raise ServiceError(f"invalid {_flag(name)} {value!r}: expected a number of {unit} {low}")
        return self

    @property
    def bind_host(self) -> str:
        """The address to listen on: ``host`` when given, else loopback without a key and all interfaces with one."""
        if self.host is not None:
            return self.host
        return LOOPBACK if self.api_key is None else "0.0.0.0"

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
        """The settings without the API key, for logs and the run record."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}
        values["api_key"] = "set" if self.api_key else None
        return values


def read_api_key(key_file: str | None, environ: dict[str, str] | None = None) -> tuple[str | None, str | None]:
    """The API key and where it came from: ``--api-key-file`` when given (it wins), else ``MLSM_API_KEY``.

    The file's content is stripped of surrounding whitespace; a missing, unreadable or empty file is a
    ``ServiceError``. Returns ``(None, None)`` when no key is configured.
    """
    env = os.environ if environ is None else environ
    if key_file is not None:
        path = Path(key_file)
        try:
            key = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ServiceError(f"cannot read --api-key-file {key_file!r}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ServiceError(f"cannot read --api-key-file {key_file!r}: {exc}") from exc
        if not key:
            raise ServiceError(f"--api-key-file {key_file!r} is empty: put the key in it")
        return key, f"--api-key-file {key_file}"
    value = env.get("MLSM_API_KEY")
    if value is None:
        return None, None
    key = value.strip()
    if not key:
        raise ServiceError("MLSM_API_KEY is set but empty: set a key, or unset it to run without one")
    return key, "MLSM_API_KEY"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
