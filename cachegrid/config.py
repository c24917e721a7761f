"""CacheGrid's settings: one class, three sources, one order.

Every setting is a field of ``Settings`` with a default and a description.
Values come from, highest first:

1. explicit arguments (the command line: ``load_settings(**overrides)``);
2. environment variables ``CACHEGRID_<NAME>`` (``CACHEGRID_MAX_SIZE=20000``);
3. the ``[cachegrid]`` table of a TOML file: ``--config PATH``, else
   ``$CACHEGRID_CONFIG``, else ``etc/cachegrid.toml`` if it exists;
4. the defaults below.

The prefix and the TOML table derive from one name (``NAME``). A bad value
anywhere stops start-up with a ``ConfigError`` whose message is one line
naming the setting, its environment variable and where the value came from.
Unknown TOML keys are errors; unknown ``CACHEGRID_*`` variables are ignored
(the CLI has its own, such as ``CACHEGRID_URL``).
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .engine import (
    DEFAULT_CLEANUP_INTERVAL,
    DEFAULT_LFU_DECAY_TIME,
    DEFAULT_MAX_KEY_LENGTH,
    DEFAULT_MAX_LEASE_TIME,
    DEFAULT_MAX_LEASES,
    DEFAULT_MAX_SIZE,
    DEFAULT_MAX_VALUE_SIZE,
    DEFAULT_POLICY,
    DEFAULT_SCAN_COUNT,
    POLICIES,
)
from .engine.pattern_delete import DEFAULT_MAX_RUNNING as DEFAULT_MAX_DELETE_JOBS
from .engine.tags import DEFAULT_MAX_TAG_LENGTH, DEFAULT_MAX_TAGS, DEFAULT_MAX_TAGS_PER_ENTRY, MAX_TAGS_PER_ENTRY

NAME = "cachegrid"
ENV_PREFIX = f"{NAME.upper()}_"
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
DEFAULT_CONFIG_FILE = Path("etc") / f"{NAME}.toml"
DEFAULT_NODE_ID = "<host>:<port>"  # replaced by the two settings' values (default_node_id)
MiB = 1024 * 1024
MAX_SNAPSHOT_INTERVAL = 7 * 24 * 3600  # a week
# The worker gives its heap's free memory back this often, when there was work
# (daemon/heap.py): as soon as jemalloc's default decay does for Redis (10 s),
# for a few milliseconds of trimming per interval at most.
DEFAULT_MEMORY_TRIM_INTERVAL = 10.0
MIN_MEMORY_TRIM_INTERVAL = 0.1
MAX_MEMORY_TRIM_INTERVAL = 86_400  # a day; longer is as good as never (0)

LogLevel = Literal["debug", "info", "warning", "error", "critical"]

# The TOML file of the settings being loaded (set by load_settings only).
_toml_file: ContextVar[Path | None] = ContextVar("_toml_file", default=None)


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line for the user."""


class Settings(BaseSettings):
    """Every setting of CacheGrid (see the module docstring for the sources)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
    )

    # -- node and network --------------------------------------------------------
    node_id: str = Field(
        default=DEFAULT_NODE_ID,
        min_length=1,
        description="Name of this node in /health, /stats and its snapshot file's name; default <host>:<port> "
        "(the machine's name for a wildcard host such as 0.0.0.0): unique per node on one machine.",
    )
    host: str = Field(default="127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port to listen on.")
    log_level: LogLevel = Field(default="info", description="debug, info, warning, error or critical.")
    access_log: bool = Field(
        default=False, description="One log line per request on stderr (off by default, as in Redis and memcached)."
    )

    # -- the server process -------------------------------------------------------
    worker: Literal["auto", "meinheld", "gthread"] = Field(
        default="auto",
        description="gunicorn worker kind: auto (CacheGrid's meinheld build where installed, else gthread), "
        "meinheld, or gthread.",
    )
    threads: int = Field(default=4, ge=1, le=256, description="Threads of the gthread worker.")
    timeout: int = Field(
        default=30, gt=0, description="Seconds a busy worker may go silent before gunicorn restarts it."
    )
    graceful_timeout: int = Field(
        default=30, gt=0, description="Seconds given to requests in flight when the server stops."
    )
    keepalive: int = Field(default=5, ge=0, description="Seconds an idle keep-alive connection stays open.")
    header_timeout: float = Field(
        default=10,
        gt=0,
        le=3600,
        description="Seconds a client has to send a request's headers under gthread (then 408).",
    )
    body_timeout: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        validate_default=True,
        description="Seconds a request body may go without a byte before the worker answers 408, under "
        "either worker (default: header_timeout).",
    )

    @field_validator("body_timeout", mode="after")
    @classmethod
    def _body_timeout_defaults_to_header_timeout(cls, value: float | None, info: ValidationInfo) -> float | None:
        # Beside its field, not with the validators below: one setting, one place.
        return info.data.get("header_timeout") if value is None else value

    # -- the cache ---------------------------------------------------------------
    eviction_policy: str = Field(
        default=DEFAULT_POLICY, description=f"Which entry goes when the cache is full: {', '.join(POLICIES)}."
    )
    max_size: int = Field(default=DEFAULT_MAX_SIZE, ge=1, description="Maximum number of cache items.")
    max_memory_mb: float = Field(
        default=512, gt=0, description="Maximum memory for keys, values and their bookkeeping, in MiB."
    )
    lfu_decay_time: float = Field(
        default=DEFAULT_LFU_DECAY_TIME,
        ge=0,
        le=10**9,
        description="Seconds after which lfu halves every use count, as Redis' lfu-decay-time (0: never).",
    )
    cleanup_interval: float = Field(
        default=DEFAULT_CLEANUP_INTERVAL, gt=0, description="Seconds between two sweeps of expired entries."
    )
    memory_trim_interval: float = Field(
        default=DEFAULT_MEMORY_TRIM_INTERVAL,
        ge=0,
        le=MAX_MEMORY_TRIM_INTERVAL,
        description="Seconds between two looks at whether to give the heap's free memory back to the OS "
        "(glibc's malloc_trim, only after work); 0: never.",
    )

    # -- limits on requests ------------------------------------------------------
    max_key_length: int = Field(default=DEFAULT_MAX_KEY_LENGTH, ge=1, description="Longest key, in UTF-8 bytes.")
    max_value_size: int = Field(
        default=DEFAULT_MAX_VALUE_SIZE,
        ge=1,
        description="Largest value, in bytes of its stored JSON encoding (of a binary value: its bytes).",
    )
    max_body_size: int = Field(default=16 * MiB, ge=1024, description="Largest request body, in bytes.")

    # -- compression (docs/compression.md) -----------------------------------------
    compress_threshold: int = Field(
        default=1024,
        ge=0,
        le=2**31,
        description="Values of at least this many bytes are held gzip-compressed when that saves enough "
        "(and a batch get's answer this large is compressed for a client that accepts gzip); 0: never.",
    )
    compress_min_saving: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="Share of a value's size compression must save for the value to be held compressed "
        "(0.2: at least 20%).",
    )
    inflated_cache_size: int = Field(
        default=4 * MiB,
        ge=0,
        description="Bytes of the values held compressed kept inflated for the reads without Accept-Encoding: "
        "gzip, the most recently read first (memory outside max_memory_mb); 0: inflate every such read.",
    )
    max_batch_size: int = Field(default=1000, ge=1, description="Most keys or items in one batch request.")
    max_keys_limit: int = Field(default=10_000, ge=1, description="Largest page size of /admin/keys.")
    keys_scan_count: int = Field(
        default=DEFAULT_SCAN_COUNT,
        ge=1,
        le=1_000_000,
        description="Most keys one /admin/keys request examines (a page may hold fewer than its limit).",
    )

    # -- tags and delete by pattern (docs/tags.md) --------------------------------
    max_tags_per_entry: int = Field(
        default=DEFAULT_MAX_TAGS_PER_ENTRY,
        ge=1,
        le=MAX_TAGS_PER_ENTRY,
        description="Most tags on one entry.",
    )
    max_tag_length: int = Field(default=DEFAULT_MAX_TAG_LENGTH, ge=1, le=255, description="Longest tag, in bytes.")
    max_tags: int = Field(default=DEFAULT_MAX_TAGS, ge=1, description="Most distinct tags in use at once.")
    max_delete_jobs: int = Field(
        default=DEFAULT_MAX_DELETE_JOBS,
        ge=1,
        le=64,
        description="Delete-by-pattern jobs that may run at once.",
    )

    # -- leases and locks (docs/stampedes.md) ---------------------------------------
    max_leases: int = Field(
        default=DEFAULT_MAX_LEASES,
        ge=1,
        le=10_000_000,
        description="Most leases and locks held at once (a further one is refused with 507 too_many_leases).",
    )
    max_lease_time: float = Field(
        default=DEFAULT_MAX_LEASE_TIME,
        gt=0,
        le=86_400,
        description="Longest lease or lock a request may ask for, in seconds (400 invalid_lease past it).",
    )
    max_stale_time: float = Field(
        default=7 * 86_400,
        gt=0,
        le=10**9,
        description="Longest stale window a PUT may ask for (?stale=), in seconds (400 invalid_stale past it).",
    )
    stale_grace: float = Field(
        default=30,
        gt=0,
        le=10**9,
        description="Seconds a key marked stale stays when it had no stale window of its own (memcached's md I T).",
    )

    # -- the change stream, GET /events (docs/events.md) -----------------------------
    events_ring_size: int = Field(
        default=10_000,
        ge=0,
        le=10_000_000,
        description="Recent events kept for a stream to resume from (Last-Event-ID); 0: no resuming.",
    )
    events_heartbeat: float = Field(
        default=5,
        ge=1,
        le=300,
        description="Seconds between heartbeat comments on an idle event stream.",
    )
    events_max_subscribers: int = Field(
        default=256,
        ge=0,
        le=100_000,
        description="Most event streams open at once (503 past it; under gthread also at most threads - 1).",
    )
    events_queue_size: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Events a stream may fall behind by before it gets a reset and is disconnected.",
    )

    # -- snapshots (docs/snapshots.md) --------------------------------------------
    snapshot_path: Path | None = Field(
        default=None,
        description="File the cache is saved to and loaded from at start (warm restarts); empty: no snapshots. "
        "Unset, `cachegrid serve` keeps them in $STATE_DIRECTORY/<node_id>.snap under systemd, else "
        "$XDG_STATE_HOME/cachegrid/<node_id>.snap (~/.local/state when unset).",
    )
    snapshot_interval: float = Field(
        default=300,
        ge=0,
        le=MAX_SNAPSHOT_INTERVAL,
        description="Seconds between background snapshots when snapshot_path is set; 0: only at shutdown.",
    )
    snapshot_on_shutdown: bool = Field(
        default=True,
        description="Write a snapshot when the worker stops (when snapshot_path is set).",
    )

    # -- security and the built-in load test ------------------------------------
    auth_token: SecretStr | None = Field(
        default=None,
        description="When set, every API endpoint but /health needs 'Authorization: Bearer <token>' "
        "(the pages /dashboard and /docs load without it, and ask for it).",
    )
    acl_file: Path | None = Field(
        default=None,
        description="TOML file of scoped tokens ([[tokens]]: name, sha256, prefixes, permissions; docs/acl.md), "
        "re-read when it changes; with auth_token too, both apply. Empty: none.",
    )
    loadtest_enabled: bool = Field(default=True, description="Whether POST /test/load may run.")
    loadtest_max_operations: int = Field(
        default=5_000,
        ge=1,
        description="Most operations one POST /test/load may run (400 past it). It runs inside the request, "
        "about 2 microseconds an operation, while every other client of a single-threaded server waits.",
    )

    @model_validator(mode="after")
    def _node_id_of_host_and_port(self) -> Settings:
        if "node_id" not in self.model_fields_set:
            # Not by assignment: the default stays a default (not "set").
            self.__dict__["node_id"] = default_node_id(self.host, self.port)
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("eviction_policy", mode="before")
    @classmethod
    def _known_policy(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in POLICIES:
            return value.lower()
        raise ValueError(f"unknown eviction policy {value!r}; known: {', '.join(POLICIES)}")

    @field_validator("snapshot_path", "acl_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("snapshot_path", mode="after")
    @classmethod
    def _usable_snapshot_path(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if value.is_dir():
            raise ValueError(
                f"{str(value)!r} is a directory; give the snapshot's file name, e.g. {str(value / 'cachegrid.snap')!r}"
            )
        if not value.parent.is_dir():
            raise ValueError(f"the directory {str(value.parent)!r} does not exist (it is not created for you)")
        return value

    @field_validator("snapshot_interval", mode="after")
    @classmethod
    def _sensible_interval(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError("must be 0 (only at shutdown) or at least 1 second: each snapshot forks the worker")
        return value

    @field_validator("memory_trim_interval", mode="after")
    @classmethod
    def _sensible_trim_interval(cls, value: float) -> float:
        if 0 < value < MIN_MEMORY_TRIM_INTERVAL:
            raise ValueError(f"must be 0 (never) or at least {MIN_MEMORY_TRIM_INTERVAL:g} seconds")
        return value

    @field_validator("auth_token", mode="after")
    @classmethod
    def _empty_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @property
    def max_memory_bytes(self) -> int:
        return int(self.max_memory_mb * MiB)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        toml_file = _toml_file.get()
        if toml_file is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=toml_file, toml_table_header=(NAME,)),)
        return sources


def env_var(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The TOML file to read: the explicit one (which must exist), else
    ``$CACHEGRID_CONFIG`` (which must exist), else etc/cachegrid.toml if present."""
    for given, origin in ((explicit, "--config"), (os.environ.get(CONFIG_ENV) or None, CONFIG_ENV)):
        if given is not None:
            path = Path(given)
            if not path.is_file():
                raise ConfigError(f"config file {str(path)!r} (from {origin}) does not exist or is not a file")
            return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def read_table(path: Path) -> dict[str, Any]:
    """The [cachegrid] table, checking the file holds nothing else."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {str(path)!r}: {error}") from None
    others = [key for key in document if key != NAME]
    if others:
        raise ConfigError(
            f"config file {str(path)!r}: unknown top-level key {others[0]!r}; settings go in the [{NAME}] table"
        )
    table = document.get(NAME, {})
    if not isinstance(table, dict):
        raise ConfigError(f"config file {str(path)!r}: {NAME} must be a table")
    return table


def setting_sources(path: Path | None, table: dict[str, Any], overrides: dict[str, Any]) -> dict[str, str]:
    """Where each setting's value comes from: argument, environment, file or default."""
    sources = {}
    for field in Settings.model_fields:
        if field in overrides:
            sources[field] = "command line"
        elif env_var(field) in os.environ:
            sources[field] = f"environment {env_var(field)}"
        elif field in table:
            sources[field] = f"config file {path}"
        else:
            sources[field] = "default"
    return sources


# -- defaults that depend on the node --------------------------------------------------
# Kept here, apart from the fields, so that each stays a short rule.


def default_node_id(host: str, port: int) -> str:
    """``host:port``, unique per node on one machine; the machine's name for
    a wildcard host (0.0.0.0, ::), which would name no one machine."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def snapshots_by_default(settings: Settings) -> bool:
    """Whether ``snapshot_path`` was left unset (not even set empty, which turns snapshots off)."""
    return "snapshot_path" not in settings.model_fields_set


def default_snapshot_path(node_id: str, environ: Mapping[str, str] = os.environ) -> Path:
    """Where ``cachegrid serve`` keeps snapshots when ``snapshot_path`` is
    unset: ``$STATE_DIRECTORY/<node_id>.snap`` under systemd (the first
    directory it lists), else ``$XDG_STATE_HOME/cachegrid/<node_id>.snap``,
    ``~/.local/state`` when that is unset or not absolute (the XDG rule)."""
    name = "".join("_" if character in ("/", "\\", "\0") else character for character in node_id) + ".snap"
    state_directory = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state_directory:
        return Path(state_directory) / name
    xdg = environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "cachegrid" / name


def load_settings(config: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Settings from every source; ``overrides`` (None values are ignored)
    win over everything. Raises ConfigError with a one-line message."""
    overrides = {name: value for name, value in overrides.items() if value is not None}
    path = config_file(config)
    table = read_table(path) if path is not None else {}
    token = _toml_file.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe(error, setting_sources(path, table, overrides))) from None
    finally:
        _toml_file.reset(token)


def describe(error: ValidationError, sources: dict[str, str]) -> str:
    """One line for the first problem of a ValidationError."""
    problem = error.errors()[0]
    field = str(problem["loc"][0]) if problem["loc"] else "?"
    if problem["type"] == "extra_forbidden":
        return f"unknown setting {field!r} in the config file (known: {', '.join(Settings.model_fields)})"
    message = problem["msg"].removeprefix("Value error, ")
    shown = "" if field == "auth_token" else f" = {problem.get('input')!r}"
    return f"invalid setting {field}{shown} (from {sources.get(field, 'default')}): {message}"
