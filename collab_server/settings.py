"""One frozen Settings object built from the environment and validated at start.

pydantic-settings reads the environment: a field `x` is `COLLAB_X`, except the few names a
platform or Supabase fixes (`DATABASE_URL`, `SUPABASE_*`), given as aliases. A bad value fails
at start with a message naming the variable (`load_settings`). Integrations keep their own
settings classes and load them with the same `load_from`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from collab_server.errors import ConfigError

DEFAULT_SQLITE_URL = "sqlite:///data/collab.db"
ENV_PREFIX = "COLLAB_"


class EnvironmentSettings(BaseSettings):
    """Base of every settings class: `COLLAB_` prefix, frozen, read only through `load_from`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        frozen=True,
        extra="ignore",
        populate_by_name=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load_from` reads the environment it is given, so tests never leak os.environ.
        return (init_settings,)

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable that sets `field`."""
        info = cls.model_fields.get(field)
        if info is not None and isinstance(info.validation_alias, str):
            return info.validation_alias
        return ENV_PREFIX + field.upper()


class _MappingEnvironment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


S = TypeVar("S", bound=EnvironmentSettings)


def load_from(
    cls: type[S],
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> S:
    """Build `cls` from `environ` (default: the process environment) plus field overrides.

    Raises ConfigError whose message names each variable to fix.
    """
    source = _MappingEnvironment(cls, os.environ if environ is None else environ)
    try:
        return cls(**{**source(), **(overrides or {})})
    except ValidationError as exc:
        raise ConfigError("invalid configuration; set " + "; ".join(problems(cls, exc))) from None


def problems(cls: type[EnvironmentSettings], error: ValidationError) -> list[str]:
    found = []
    for item in error.errors():
        if not item["loc"]:  # a check across several variables names them itself
            found.append(str(item["msg"]).removeprefix("Value error, "))
            continue
        field = str(item["loc"][0])
        name = next(
            (n for n, f in cls.model_fields.items() if field in (n, f.validation_alias)), field
        )
        found.append(f"{cls.variable(name)}: {item['msg']}")
    return found


class Settings(EnvironmentSettings):
    database_url: str = Field(DEFAULT_SQLITE_URL, validation_alias="DATABASE_URL")
    db_schema: str = Field("collab", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Supabase's transaction-mode pooler (port 6543) cannot keep prepared statements.
    pg_statement_cache_size: int = Field(100, ge=0)
    pg_pool_max_size: int = Field(10, ge=1)
    unload_grace_seconds: float = Field(30.0, ge=0)
    compact_max_updates: int = Field(1000, ge=1)
    compact_max_bytes: int = Field(4 * 1024 * 1024, ge=1)
    # The log is the attributed history of the IEP; compaction only moves the load point.
    keep_history: bool = True
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    # Extra wait before a group commit, on top of the natural batching while one commit runs.
    group_commit_window_ms: float = Field(0.0, ge=0, le=1000)
    ping_interval_seconds: float = Field(15.0, gt=0)
    ping_timeout_seconds: float = Field(15.0, gt=0)
    send_backlog_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # Sync step 2 replies held at once across joiners (a join storm's memory), and how long
    # one slow reader's reply may hold its share (collab_server/join_budget.py).
    join_budget_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    join_patience_seconds: float = Field(30.0, gt=0)
    store_retry_max_seconds: float = Field(5.0, gt=0)
    # While the store fails, changes held in memory stop here: writers get 1013 beyond it.
    max_unstored_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # Read whole frames behind uvicorn's and websockets' parser (collab_server/wire.py). It
    # leans on their internals, so it can be turned off; CI runs the suite both ways.
    fast_receive: bool = True
    # Who may create IEPs besides admins: tokens whose `app_metadata.role` is one of these
    # (comma-separated). In development mode anyone may.
    creator_roles: str = "staff"
    # New IEPs are named `<prefix>/iep-<random>`: never from the student's name.
    document_prefix: str = Field("centre", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Time for a client to send a whole HTTP request (a half-sent one is closed after it).
    request_timeout_seconds: float = Field(10.0, gt=0, le=300)
    # When set, `/metrics` answers only `Authorization: Bearer <this>` (401 otherwise).
    metrics_token: SecretStr | None = None
    # Supabase sign-in. None of the three set: development mode (anonymous editors).
    supabase_url: str | None = Field(None, validation_alias="SUPABASE_URL")
    supabase_jwks_url: str | None = Field(None, validation_alias="SUPABASE_JWKS_URL")
    supabase_jwt_secret: SecretStr | None = Field(None, validation_alias="SUPABASE_JWT_SECRET")
    # Public by design (the browser needs it to sign in); the editor page receives it.
    supabase_anon_key: str | None = Field(None, validation_alias="SUPABASE_ANON_KEY")
    # The project's service key (Realtime broadcasts, Auth admin); never sent to a browser.
    supabase_service_key: SecretStr | None = Field(
        None, validation_alias="SUPABASE_SERVICE_ROLE_KEY"
    )
    jwt_audience: str = "authenticated"
    allow_anonymous: bool = False
    membership_recheck_seconds: float = Field(30.0, gt=0, le=60)
    rate_messages_per_second: float = Field(1000.0, gt=0)
    rate_message_burst: float = Field(2000.0, ge=1)
    rate_bytes_per_second: float = Field(4 * 1024 * 1024, gt=0)
    # At least one frame of the maximum size must fit (checked below).
    rate_byte_burst: float = Field(32 * 1024 * 1024, ge=1024)
    max_connections_per_user: int = Field(20, ge=1)
    # The live subscription log (`WS /events`): a client further behind reloads instead.
    event_retention_days: float = Field(30.0, gt=0)
    # Cluster mode: several processes on one Postgres, with Redis between them.
    redis_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://", "memory://")):
            raise ValueError(
                "must start with sqlite://, postgresql:// or postgres:// "
                "(e.g. sqlite:///data/collab.db)"
            )
        return value

    @field_validator("rate_byte_burst")
    @classmethod
    def _byte_burst_fits_a_frame(cls, value: float, info: ValidationInfo) -> float:
        max_frame = info.data.get("max_message_bytes", 0)
        if value < max_frame:
            raise ValueError(
                f"must be at least COLLAB_MAX_MESSAGE_BYTES ({max_frame}) "
                "or the largest allowed frame could never be sent"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_needs_postgres(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        database = str(info.data.get("database_url", ""))
        if not database.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "cluster mode needs a Postgres DATABASE_URL: SQLite and memory:// serve from "
                "one process only (unset COLLAB_REDIS_URL, or point DATABASE_URL at Postgres)"
            )
        return value

    @property
    def auth_configured(self) -> bool:
        """False: development mode, anonymous users may edit."""
        return bool(self.supabase_url or self.supabase_jwks_url or self.supabase_jwt_secret)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    def sqlite_path(self) -> Path:
        """`sqlite:///rel.db` is relative to the working directory, `sqlite:////abs.db` absolute."""
        return Path(self.database_url.removeprefix("sqlite://").removeprefix("/"))


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """The core's Settings from `environ` (default: the process environment) plus overrides."""
    return load_from(Settings, environ, overrides)
