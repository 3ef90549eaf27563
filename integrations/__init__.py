"""Integrations attached to the core through `collab_server.hooks`: the IEP change observer,
parents' digests and their delivery channels (WhatsApp, email, in-app), and the WhatsApp
webhook. `NotificationService` assembles them; the composition root builds it from settings."""

from integrations.contracts import (
    Caller,
    CallerAuthenticator,
    Channel,
    NotificationStore,
    Person,
    RecipientDirectory,
)
from integrations.notifications import (
    DigestExtension,
    NotificationConfig,
    NotificationService,
    config_from_settings,
)

__all__ = [
    "Caller",
    "CallerAuthenticator",
    "Channel",
    "DigestExtension",
    "NotificationConfig",
    "NotificationService",
    "NotificationStore",
    "Person",
    "RecipientDirectory",
    "config_from_settings",
]
