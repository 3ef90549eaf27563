"""One frozen Settings object built from the environment and validated at start.

Every variable has a name users can set; a bad value fails at start with a message that
names the variable (see `load_settings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from collab_server.errors import ConfigError

DEFAULT_SQLITE_URL = "sqlite:///data/collab.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    database_url: str = Field(
        DEFAULT_SQLITE_URL, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    db_schema: str = Field(
        "collab",
        validation_alias=AliasChoices("COLLAB_DB_SCHEMA", "db_schema"),
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
    )
    # Supabase's transaction-mode pooler (port 6543) cannot keep prepared statements.
    pg_statement_cache_size: int = Field(
        100,
        ge=0,
        validation_alias=AliasChoices("COLLAB_PG_STATEMENT_CACHE_SIZE", "pg_statement_cache_size"),
    )
    pg_pool_max_size: int = Field(
        10, ge=1, validation_alias=AliasChoices("COLLAB_PG_POOL_MAX_SIZE", "pg_pool_max_size")
    )
    unload_grace_seconds: float = Field(
        30.0,
        ge=0,
        validation_alias=AliasChoices("COLLAB_UNLOAD_GRACE_SECONDS", "unload_grace_seconds"),
    )
    compact_max_updates: int = Field(
        1000,
        ge=1,
        validation_alias=AliasChoices("COLLAB_COMPACT_MAX_UPDATES", "compact_max_updates"),
    )
    compact_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1,
        validation_alias=AliasChoices("COLLAB_COMPACT_MAX_BYTES", "compact_max_bytes"),
    )
    # The log is the attributed history of the IEP; compaction only moves the load point.
    keep_history: bool = Field(
        True, validation_alias=AliasChoices("COLLAB_KEEP_HISTORY", "keep_history")
    )
    max_message_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("COLLAB_MAX_MESSAGE_BYTES", "max_message_bytes"),
    )
    # Extra wait before a group commit, on top of the natural batching while one commit runs.
    group_commit_window_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        validation_alias=AliasChoices("COLLAB_GROUP_COMMIT_WINDOW_MS", "group_commit_window_ms"),
    )
    ping_interval_seconds: float = Field(
        15.0,
        gt=0,
        validation_alias=AliasChoices("COLLAB_PING_INTERVAL_SECONDS", "ping_interval_seconds"),
    )
    ping_timeout_seconds: float = Field(
        15.0,
        gt=0,
        validation_alias=AliasChoices("COLLAB_PING_TIMEOUT_SECONDS", "ping_timeout_seconds"),
    )
    send_backlog_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("COLLAB_SEND_BACKLOG_BYTES", "send_backlog_bytes"),
    )
    store_retry_max_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=AliasChoices("COLLAB_STORE_RETRY_MAX_SECONDS", "store_retry_max_seconds"),
    )
    # Supabase sign-in. None of the three set: development mode (anonymous editors).
    supabase_url: str | None = Field(
        None, validation_alias=AliasChoices("SUPABASE_URL", "supabase_url")
    )
    supabase_jwks_url: str | None = Field(
        None, validation_alias=AliasChoices("SUPABASE_JWKS_URL", "supabase_jwks_url")
    )
    supabase_jwt_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SUPABASE_JWT_SECRET", "supabase_jwt_secret")
    )
    # Public by design (the browser needs it to sign in); the editor page receives it.
    supabase_anon_key: str | None = Field(
        None, validation_alias=AliasChoices("SUPABASE_ANON_KEY", "supabase_anon_key")
    )
    jwt_audience: str = Field(
        "authenticated", validation_alias=AliasChoices("COLLAB_JWT_AUDIENCE", "jwt_audience")
    )
    allow_anonymous: bool = Field(
        False, validation_alias=AliasChoices("COLLAB_ALLOW_ANONYMOUS", "allow_anonymous")
    )
    membership_recheck_seconds: float = Field(
        30.0,
        gt=0,
        le=60,
        validation_alias=AliasChoices(
            "COLLAB_MEMBERSHIP_RECHECK_SECONDS", "membership_recheck_seconds"
        ),
    )
    rate_messages_per_second: float = Field(
        1000.0,
        gt=0,
        validation_alias=AliasChoices(
            "COLLAB_RATE_MESSAGES_PER_SECOND", "rate_messages_per_second"
        ),
    )
    rate_message_burst: float = Field(
        2000.0,
        ge=1,
        validation_alias=AliasChoices("COLLAB_RATE_MESSAGE_BURST", "rate_message_burst"),
    )
    rate_bytes_per_second: float = Field(
        4 * 1024 * 1024,
        gt=0,
        validation_alias=AliasChoices("COLLAB_RATE_BYTES_PER_SECOND", "rate_bytes_per_second"),
    )
    # At least one frame of the maximum size must fit (checked below).
    rate_byte_burst: float = Field(
        32 * 1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("COLLAB_RATE_BYTE_BURST", "rate_byte_burst"),
    )
    max_connections_per_user: int = Field(
        20,
        ge=1,
        validation_alias=AliasChoices(
            "COLLAB_MAX_CONNECTIONS_PER_USER", "max_connections_per_user"
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias=AliasChoices("COLLAB_LOG_LEVEL", "log_level")
    )
    log_format: Literal["json", "console"] = Field(
        "json", validation_alias=AliasChoices("COLLAB_LOG_FORMAT", "log_format")
    )

    # -- parents' digests and their channels (integrations/) --------------------------------
    whatsapp_api_url: str = Field(
        "https://graph.facebook.com/v21.0",
        validation_alias=AliasChoices("WHATSAPP_API_URL", "whatsapp_api_url"),
    )
    whatsapp_access_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WHATSAPP_ACCESS_TOKEN", "whatsapp_access_token")
    )
    whatsapp_phone_number_id: str | None = Field(
        None,
        validation_alias=AliasChoices("WHATSAPP_PHONE_NUMBER_ID", "whatsapp_phone_number_id"),
    )
    whatsapp_app_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WHATSAPP_APP_SECRET", "whatsapp_app_secret")
    )
    whatsapp_verify_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WHATSAPP_VERIFY_TOKEN", "whatsapp_verify_token")
    )
    whatsapp_digest_template: str | None = Field(
        None,
        validation_alias=AliasChoices("WHATSAPP_DIGEST_TEMPLATE", "whatsapp_digest_template"),
    )
    whatsapp_rate_per_second: float = Field(
        80.0,
        gt=0,
        validation_alias=AliasChoices(
            "COLLAB_WHATSAPP_RATE_PER_SECOND", "whatsapp_rate_per_second"
        ),
    )
    smtp_url: SecretStr | None = Field(None, validation_alias=AliasChoices("SMTP_URL", "smtp_url"))
    email_from: str | None = Field(None, validation_alias=AliasChoices("EMAIL_FROM", "email_from"))
    supabase_service_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SUPABASE_SERVICE_ROLE_KEY", "supabase_service_key"),
    )
    public_url: str = Field(
        "http://127.0.0.1:8000", validation_alias=AliasChoices("COLLAB_PUBLIC_URL", "public_url")
    )
    digest_debounce_seconds: float = Field(
        600.0,
        ge=0,
        validation_alias=AliasChoices("COLLAB_DIGEST_DEBOUNCE_SECONDS", "digest_debounce_seconds"),
    )
    digest_max_wait_seconds: float = Field(
        3600.0,
        gt=0,
        validation_alias=AliasChoices("COLLAB_DIGEST_MAX_WAIT_SECONDS", "digest_max_wait_seconds"),
    )
    # Empty disables quiet hours (so an empty value is kept, see EMPTY_IS_A_VALUE).
    quiet_hours: str = Field(
        "21:00-08:00",
        pattern=r"^(|\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*)$",
        validation_alias=AliasChoices("COLLAB_QUIET_HOURS", "quiet_hours"),
    )

    @model_validator(mode="after")
    def _channels_complete(self) -> Settings:
        whatsapp = {
            "WHATSAPP_ACCESS_TOKEN": self.whatsapp_access_token,
            "WHATSAPP_PHONE_NUMBER_ID": self.whatsapp_phone_number_id,
            "WHATSAPP_APP_SECRET": self.whatsapp_app_secret,
            "WHATSAPP_VERIFY_TOKEN": self.whatsapp_verify_token,
            "WHATSAPP_DIGEST_TEMPLATE": self.whatsapp_digest_template,
        }
        if any(whatsapp.values()):
            missing = [name for name, value in whatsapp.items() if not value]
            if missing:
                raise ValueError("WhatsApp is partly configured; also set " + ", ".join(missing))
        if self.smtp_url is not None:
            if not self.smtp_url.get_secret_value().startswith(("smtp://", "smtps://")):
                raise ValueError("SMTP_URL must look like smtp://user:pass@host:port")
            if not self.email_from:
                raise ValueError("SMTP_URL is set; also set EMAIL_FROM")
        return self

    @property
    def whatsapp_configured(self) -> bool:
        return self.whatsapp_access_token is not None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load_settings` passes the environment in explicitly, so tests never leak os.environ.
        return (init_settings,)

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


ENV_NAMES: dict[str, str] = {
    name: str(field.validation_alias.choices[0])  # type: ignore[union-attr]
    for name, field in Settings.model_fields.items()
}


# Variables where an empty value means something (COLLAB_QUIET_HOURS= disables quiet hours).
EMPTY_IS_A_VALUE = frozenset({"COLLAB_QUIET_HOURS"})


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build Settings from `environ` (default: the process environment) plus overrides.

    Raises ConfigError whose message names each variable to fix.
    """
    source = os.environ if environ is None else environ
    known = set(ENV_NAMES.values())
    values: dict[str, object] = {
        k: v for k, v in source.items() if k in known and (v != "" or k in EMPTY_IS_A_VALUE)
    }
    values.update(overrides)
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            variable = ENV_NAMES.get(field, field)
            if not error["loc"]:  # a check across several variables names them itself
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            problems.append(f"{variable}: {error['msg']}")
        raise ConfigError("invalid configuration; set " + "; ".join(problems)) from None
