"""`build_app`: the one place that turns settings into stores, extensions and the web app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette

from collab_server.access import AccessAuthenticator, CachedMembers, MembershipEnforcer
from collab_server.api import api_routes
from collab_server.app import create_app
from collab_server.settings import Settings
from collab_server.web import WebConfig, web_routes
from integrations.access import AccessDirectory
from integrations.contracts import SystemClock
from integrations.notifications import NotificationService, config_from_settings
from integrations.people import PeopleNames, people_routes
from integrations.settings import NotificationSettings, load_notification_settings
from persistence import SideTables, access_store_for, ownership_for, store_from_settings

if TYPE_CHECKING:
    from collab_server.auth import TokenVerifier


def build_app(settings: Settings, notifications: NotificationSettings | None = None) -> Starlette:
    """The server for `settings`; parents' digests use `notifications` (default: channels off)."""
    store = store_from_settings(settings)
    side_tables = SideTables(store)
    people = side_tables.people()
    access = CachedMembers(access_store_for(store), settings.membership_recheck_seconds)
    authenticator = AccessAuthenticator(access, token_verifier(settings), PeopleNames(people))
    enforcer = (
        None
        if authenticator.development_mode
        else MembershipEnforcer(access, settings.membership_recheck_seconds)
    )
    notification_store = side_tables.notifications()
    clock = SystemClock()
    service = NotificationService(
        config_from_settings(
            notifications or load_notification_settings({}),
            supabase_url=settings.supabase_url,
            supabase_service_key=(
                settings.supabase_service_key.get_secret_value()
                if settings.supabase_service_key
                else None
            ),
        ),
        notification_store,
        AccessDirectory(access, people, notification_store, clock),
        store,
        authenticator,
        clock=clock,
    )
    app = create_app(
        settings,
        store=store,
        extensions=[*([enforcer] if enforcer else []), service.extension],
        authenticator=authenticator,
        extra_routes=[
            *web_routes(WebConfig.from_settings(settings)),
            *api_routes(authenticator, access, enforcer),
            *people_routes(authenticator, people),
            *service.routes(),
        ],
        services=[service],
        ownership=ownership_for(store),
    )
    if enforcer is not None:
        enforcer.attach(app.state.collab.registry)
    return app


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """None in development mode; PyJWT and cryptography (~9 MB) load only when needed."""
    if not settings.auth_configured:
        return None
    from collab_server.auth import verifier_from_settings

    return verifier_from_settings(settings)
