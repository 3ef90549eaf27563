"""Everything a deployment configures, read from one environment and validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collab_server.errors import ConfigError
from collab_server.settings import Settings, load_from
from integrations.settings import NotificationSettings


@dataclass(frozen=True, slots=True)
class Config:
    server: Settings
    notifications: NotificationSettings


def load_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Both settings objects from `environ`; overrides go to whichever has the field.

    Raises ConfigError naming every variable to fix, of both.
    """
    server_fields = {k: v for k, v in overrides.items() if k in Settings.model_fields}
    other_fields = {k: v for k, v in overrides.items() if k not in server_fields}
    problems: list[str] = []
    loaded: list[Any] = []
    for cls, fields in ((Settings, server_fields), (NotificationSettings, other_fields)):
        try:
            loaded.append(load_from(cls, environ, fields))
        except ConfigError as exc:
            problems.append(str(exc).removeprefix("invalid configuration; set "))
    if problems:
        raise ConfigError("invalid configuration; set " + "; ".join(problems))
    return Config(*loaded)
