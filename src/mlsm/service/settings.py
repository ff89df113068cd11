"""What ``mlsm serve`` is configured with: one settings object whose fields are its options, checked once.

Each option is declared once, as a field of :class:`ServiceSettings`: its default, its rule (what a valid value is,
and how a flag's text or a project's TOML value becomes one), its help, whether it has a flag, and whether a
project's ``[service]`` table may set it (or why not). :data:`OPTIONS` reads them back; from them come the
``mlsm serve`` arguments (:func:`add_arguments`), the ``[service]`` keys (:func:`project_service_options`) and the one
check (:meth:`ServiceSettings.check`), so every error about a value says what a valid one is in the same words.

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

import argparse
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from mlsm.errors import ProjectError, ServiceError
from mlsm.stores.base import hide_password

__all__ = [
    "LOOPBACK",
    "OPTIONS",
    "PROJECT_KEYS",
    "KiB",
    "MiB",
    "Option",
    "Rule",
    "ServiceSettings",
    "add_arguments",
    "given_options",
    "is_loopback",
    "parse_size",
    "project_service_options",
]

#: Where the service listens when no API key is configured and no ``--host`` was given.
LOOPBACK = "127.0.0.1"

KiB = 1024
MiB = 1024 * 1024

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


# -- rules: what a valid value of each kind is -----------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Rule:
    """One kind of option: what a valid value is (``expected``: the wording of every error about one), how a flag's
    text (``parse``) and a ``[service]`` value (``toml``) become a value, the flag's metavar and how help shows the
    default. ``parse`` and ``toml`` may raise ``ValueError``; ``valid`` has the last word."""

    expected: str
    valid: Callable[[Any], bool]
    parse: Callable[[str], Any] = str
    toml: Callable[[Any], Any] = _same
    metavar: str | None = None
    show: Callable[[Any], str] = str


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seconds(value: Any) -> Any:
    return float(value) if _number(value) else value  # TOML integers are seconds too


def _size(value: Any) -> Any:
    return parse_size(value) if isinstance(value, str) else value  # TOML: bytes or a string such as "64KiB"


def _show_size(size: int) -> str:
    for unit, scale in (("MiB", MiB), ("KiB", KiB)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def _show_number(value: float) -> str:
    return f"{value:g}"


def _some_text(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(value.strip()))


def _patterns(text: str) -> tuple[str, ...] | None:
    from mlsm.lifecycle.release import parse_patterns  # here: every mlsm command builds the serve parser

    return parse_patterns(text) or None  # an empty --release-branches is not given: the project's apply


_PORT = Rule("expected 0-65535", lambda value: _integer(value) and 0 <= value <= 65535, parse=int, metavar="PORT")
_HOST = Rule("name an address such as 127.0.0.1 or 0.0.0.0", _some_text, metavar="HOST")
_WHOLE = Rule("expected a whole number of at least 1", lambda v: _integer(v) and v >= 1, parse=int, metavar="N")
_SIZE = Rule(
    "expected a size such as 10MiB, 512KiB or 1000000 (at least 1 byte)",
    _WHOLE.valid,
    parse=parse_size,
    toml=_size,
    metavar="SIZE",
    show=_show_size,
)
_SECONDS = Rule(
    "expected a number of seconds above 0",
    lambda value: _number(value) and 0 < value < float("inf"),
    parse=float,
    toml=_seconds,
    metavar="S",
    show=_show_number,
)
_MILLISECONDS = Rule(
    "expected a number of milliseconds above 0",
    _SECONDS.valid,
    parse=float,
    toml=_seconds,
    metavar="MS",
    show=_show_number,
)
_MILLISECONDS_OR_0 = Rule(
    "expected a number of milliseconds 0 or more",
    lambda value: _number(value) and 0 <= value < float("inf"),
    parse=float,
    toml=_seconds,
    metavar="MS",
    show=_show_number,
)
_SWITCH = Rule("expected true or false", lambda value: isinstance(value, bool))
_PATH = Rule("expected a path (a string)", _some_text, metavar="PATH")
_PATTERNS = Rule(
    "expected comma-separated patterns",
    lambda value: value is None or (isinstance(value, tuple) and all(isinstance(item, str) for item in value)),
    parse=_patterns,
    metavar="PATTERNS",
)


@dataclass(frozen=True)
class _Declared:
    rule: Rule | None
    help: str
    key: str | None
    metavar: str | None
    flag: bool
    project: bool | str


_DECLARED = "mlsm.option"


def _option(
    rule: Rule | None,
    help: str,
    *,
    key: str | None = None,
    metavar: str | None = None,
    flag: bool = True,
    project: bool | str = True,
) -> dict[str, _Declared]:
    """A field's metadata declaring it an option (see :class:`Option` for the arguments)."""
    return {_DECLARED: _Declared(rule, help, key, metavar, flag, project)}


# -- the options ------------------------------------------------------------------------------------------------

_DEFAULTS = "set it in [defaults]"
_NEVER_KEYS = "never put the key in a project file: use {} or {}"


@dataclass
class ServiceSettings:
    """Everything the service needs besides its process: models, id field, store, limits, batching, auth.

    ``host=None`` means "not given": loopback without an API key, every interface with one. Durations are in
    seconds. :meth:`check` raises :class:`~mlsm.errors.ServiceError` naming the first bad option.
    """

    models: str
    id_field: str = field(
        metadata=_option(
            None,
            "the field that identifies a record (default: the project's id_field)",
            metavar="NAME",
            project=_DEFAULTS,
        )
    )
    store: str | None = field(
        default=None,
        metadata=_option(
            None,
            "where results go: sqlite:///file.db, postgresql://..., mongodb://host/db (default: the project's store, "
            "else $MLSM_STORE, else sqlite:///mlsm.db)",
            metavar="URL",
            project=_DEFAULTS,
        ),
    )
    host: str | None = field(
        default=None,
        metadata=_option(_HOST, "address to listen on (default: 127.0.0.1 without an API key, 0.0.0.0 with one)"),
    )
    port: int = field(default=8000, metadata=_option(_PORT, "TCP port; 0 picks a free one"))
    workers: int = field(default=1, metadata=_option(_WHOLE, "worker processes"))
    api_key_file: str | None = field(  # where api_keys came from: re-read on every reload
        default=None,
        metadata=_option(
            _PATH, "file of scoring keys, one per line, re-read on reload (else $MLSM_API_KEY; none: no auth)"
        ),
    )
    admin_key_file: str | None = field(
        default=None,
        metadata=_option(
            _PATH,
            "file of admin keys for /v1/admin/..., re-read on reload (else $MLSM_ADMIN_KEY; none: loopback only)",
        ),
    )
    max_body_bytes: int = field(
        default=10 * MiB, metadata=_option(_SIZE, "largest request body, e.g. 10MiB, 512KiB, 1000000", key="max_body")
    )
    max_records: int = field(  # bounds what one request costs (the example: ~160 MiB at most)
        default=10_000, metadata=_option(_WHOLE, "records per request at most")
    )
    max_connections: int = field(
        default=1000,
        metadata=_option(_WHOLE, "open connections per worker; at the cap the longest-idle one is closed, else 503"),
    )
    max_header_bytes: int = field(
        default=64 * KiB, metadata=_option(_SIZE, "largest request line + headers", key="max_header")
    )
    header_timeout: float = field(  # from a connection's first byte (or its opening) to the end of the headers
        default=10.0, metadata=_option(_SECONDS, "time for a request's headers to arrive")
    )
    body_timeout: float = field(  # from the end of the headers to the end of the body
        default=60.0, metadata=_option(_SECONDS, "time for a request's body to arrive")
    )
    keep_alive_timeout: float = field(default=5.0, metadata=_option(_SECONDS, "close idle connections after S"))
    model_timeout: float = field(  # a batch model's call covers its whole group
        default=5.0, metadata=_option(_SECONDS, "cut off a model call after S seconds")
    )
    batch_max_size: int = field(  # for batch=True models
        default=64, metadata=_option(_WHOLE, "records per grouped call")
    )
    batch_max_wait_ms: float = field(
        default=5.0,
        metadata=_option(_MILLISECONDS_OR_0, "longest a record waits to be grouped while a group is scored"),
    )
    queue_size: int = field(default=10_000, metadata=_option(_WHOLE, "result documents queued at most"))
    queue_wait_ms: float = field(
        default=250.0,
        metadata=_option(_MILLISECONDS, "how long a request waits for room in a full queue before 503"),
    )
    shutdown_timeout: float = field(  # then the in-flight requests are closed
        default=30.0, metadata=_option(_SECONDS, "SIGTERM: wait for in-flight requests")
    )
    reload_timeout: float = field(
        default=120.0,
        metadata=_option(_SECONDS, "longest loading the models (import + preflight) may take, at start or reload"),
    )
    allow_unreleased: bool = field(  # the models it let through are recorded
        default=False,
        metadata=_option(
            _SWITCH,
            "serve and reload active models from unreleased code (a non-release branch, a dirty tree); recorded in "
            "the run",
            project="it is a flag only (--allow-unreleased), so that no file can switch the draft rule off",
        ),
    )
    release_branches: tuple[str, ...] | None = field(  # None: the project's [release], else the defaults
        default=None,
        metadata=_option(
            _PATTERNS,
            "comma-separated release branch patterns (default: the project's, else main,master,release/*)",
            project="set branches in the [release] table",
        ),
    )
    run_id: str | None = field(
        default=None,
        metadata=_option(
            None,
            "name the service's run (default: serve-<time>-<random>)",
            metavar="NAME",
            project="each start of the service is a run of its own: give --run-id",
        ),
    )
    access_log: bool = field(default=True, metadata=_option(_SWITCH, "no log line per request"))
    strict_preflight: bool = field(
        default=False,
        metadata=_option(
            _SWITCH,
            "refuse the models (at start and on reload) when any model fails any preflight check, drafts included "
            "(default: only an active model failing its basic example or every input, or unstorable on most)",
        ),
    )
    # read from the key files or the environment (mlsm.service.keys), never from flags or a project file
    api_keys: tuple[str, ...] = field(
        default=(),
        repr=False,
        metadata=_option(
            None,
            "scoring keys (an admin key may score too)",
            key="api_key",
            flag=False,
            project=_NEVER_KEYS.format("api_key_file", "MLSM_API_KEY"),
        ),
    )
    admin_keys: tuple[str, ...] = field(
        default=(),
        repr=False,
        metadata=_option(
            None,
            "admin keys; none: /v1/admin/... answers loopback clients only",
            key="admin_key",
            flag=False,
            project=_NEVER_KEYS.format("admin_key_file", "MLSM_ADMIN_KEY"),
        ),
    )
    # tuning without a flag or a [service] key
    write_max_documents: int = field(
        default=1000, metadata=_option(_WHOLE, "documents per store transaction, at most", flag=False, project=False)
    )
    store_retry: float = field(
        default=5.0,
        metadata=_option(
            _SECONDS, "how long the writer retries an unavailable store before answering 503", flag=False, project=False
        ),
    )
    scoring_threads: int = field(
        default=4,
        metadata=_option(
            _WHOLE, "engine calls that may run at once (a hung model holds one)", flag=False, project=False
        ),
    )

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
        for option in OPTIONS:
            value = getattr(self, option.name)
            if not option.valid(value):
                raise ServiceError(f"invalid {option.label} {value!r}: {option.expected}")
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
        return is_loopback(self.bind_host)

    def public(self) -> dict[str, Any]:
        """The settings without the keys (their counts instead) or the store's password, for logs and the run
        record."""
        secret = ("api_keys", "admin_keys")
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in secret}
        values.update({name: len(getattr(self, name)) for name in secret})
        if isinstance(values.get("store"), str):
            values["store"] = hide_password(values["store"])
        return values


@dataclass(frozen=True)
class Option:
    """One option of :class:`ServiceSettings`, as its field declares it.

    ``name`` is the field; ``key`` its name in a project's ``[service]`` table, ``flag`` its ``mlsm serve`` flag
    (None: it has none); ``project`` is True when the ``[service]`` table may set it, a string saying why not when
    it may not, False when the table does not know it. ``rule`` None: any text, unchecked.
    """

    name: str
    key: str
    flag: str | None
    rule: Rule | None
    default: Any
    help: str
    metavar: str | None
    project: bool | str

    @classmethod
    def of(cls, declared: Field[Any]) -> Option:
        """The option a ``ServiceSettings`` field declares."""
        spec: _Declared = declared.metadata[_DECLARED]
        key = spec.key or declared.name
        default = None if declared.default is MISSING else declared.default
        flag = None
        if spec.flag:
            flag = "--" + ("no-" if spec.rule is _SWITCH and default else "") + key.replace("_", "-")
        metavar = spec.metavar or (spec.rule.metavar if spec.rule else None)
        return cls(declared.name, key, flag, spec.rule, default, spec.help, metavar, spec.project)

    @property
    def label(self) -> str:
        """How errors name the option: its flag when it takes a value, else its key."""
        return self.flag if self.flag is not None and self.rule is not _SWITCH else self.key

    @property
    def expected(self) -> str:
        """What a valid value is, in the words of every error about one."""
        return self.rule.expected if self.rule is not None else "expected text"

    def valid(self, value: Any) -> bool:
        """True when ``value`` is valid for this option."""
        return self.rule is None or self.rule.valid(value)

    def from_text(self, text: str) -> Any:
        """A flag's text as this option's value; ``ValueError`` saying what a valid value is."""
        return self._read(self.rule.parse if self.rule is not None else str, text)

    def from_toml(self, value: Any) -> Any:
        """A ``[service]`` table's value as this option's value; ``ValueError`` saying what a valid value is."""
        return self._read(self.rule.toml if self.rule is not None else _same, value)

    def _read(self, read: Callable[[Any], Any], given: Any) -> Any:
        try:
            value = read(given)
        except (TypeError, ValueError):
            raise ValueError(self.expected) from None
        if not self.valid(value):
            raise ValueError(self.expected)
        return value

    @property
    def help_text(self) -> str:
        """The flag's help, with the default when there is one to show."""
        if self.default is None or self.rule is None or self.rule is _SWITCH:
            return self.help
        return f"{self.help} (default {self.rule.show(self.default)})"


#: Every option of ``mlsm serve``, in the order ``mlsm serve --help`` lists them.
OPTIONS: tuple[Option, ...] = tuple(Option.of(f) for f in fields(ServiceSettings) if _DECLARED in f.metadata)

#: The keys of a project's ``[service]`` table: the ``mlsm serve`` options, by their long names with underscores.
PROJECT_KEYS: tuple[str, ...] = tuple(option.key for option in OPTIONS if option.project is True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every option that has a flag to ``parser`` (``mlsm serve``'s), each with the field's name as its ``dest``
    and None as its default, so that :func:`given_options` tells the flags given from the others."""
    for option in OPTIONS:
        if option.flag is None:
            continue
        if option.rule is _SWITCH:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action="store_const",
                const=not option.default,
                default=None,
                help=option.help_text,
            )
        else:
            parser.add_argument(
                option.flag,
                dest=option.name,
                type=_flag_reader(option),
                default=None,
                metavar=option.metavar,
                help=option.help_text,
            )


def _flag_reader(option: Option) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        try:
            return option.from_text(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: {exc}") from None

    return read


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options given as flags in ``args`` (parsed by a parser :func:`add_arguments` set up), by field name."""
    values = {option.name: getattr(args, option.name, None) for option in OPTIONS if option.flag is not None}
    return {name: value for name, value in values.items() if value is not None}


def project_service_options(table: Mapping[str, Any], where: str, folder: Path) -> dict[str, Any]:
    """A project's ``[service]`` table as ``ServiceSettings`` keyword arguments, key files made absolute against
    ``folder`` (the project's folder). ``ProjectError`` naming the first bad key or value."""
    by_key = {option.key: option for option in OPTIONS}
    options: dict[str, Any] = {}
    for key, given in table.items():
        option = by_key.get(key)
        if option is not None and isinstance(option.project, str):
            raise ProjectError(f"{where}: {key} cannot be set here: {option.project}")
        if option is None or option.project is not True:
            raise ProjectError(f"{where}: unknown key {key!r}; valid keys are: {', '.join(sorted(PROJECT_KEYS))}")
        try:
            value = option.from_toml(given)
        except ValueError as exc:
            raise ProjectError(f"{where}: {key} = {given!r}: {exc}") from None
        if option.rule is _PATH:
            value = str(folder / os.path.expanduser(value))
        options[option.name] = value
    return options


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): the bind address and, in the service, a
    request's client, ``Host`` and ``Origin``."""
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
