"""`build_app`: the one place that turns settings into stores, extensions and the web app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.applications import Starlette

from collab_server.access import AccessAuthenticator, CachedMembers, MembershipEnforcer
from collab_server.api import api_routes
from collab_server.app import Service, create_app
from collab_server.audit import AuditRecorder
from collab_server.cluster import Bus
from collab_server.errors import ConfigError
from collab_server.identity import DEV_USER_PREFIX
from collab_server.leadership import JobsLeader, JobsLock
from collab_server.replication import ClusterStore
from collab_server.settings import Settings
from collab_server.store import DocumentStore
from collab_server.web import WebConfig, web_routes
from integrations.access import AccessDirectory
from integrations.acknowledgement import AcknowledgementService, AckPolicy
from integrations.contracts import SystemClock
from integrations.history import HistoryReader
from integrations.notifications import NotificationService, config_from_settings
from integrations.people import PeopleNames, people_routes
from integrations.records_api import RecordsApi
from integrations.settings import NotificationSettings, load_notification_settings
from integrations.versions import SessionVersions, VersionService
from persistence import (
    SideTables,
    access_store_for,
    cluster_store_for,
    jobs_lock_for,
    ownership_for,
    store_from_settings,
)

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
    notifications = notifications or load_notification_settings({})
    directory = AccessDirectory(access, people, notification_store, clock)
    service = NotificationService(
        config_from_settings(
            notifications,
            supabase_url=settings.supabase_url,
            supabase_service_key=(
                settings.supabase_service_key.get_secret_value()
                if settings.supabase_service_key
                else None
            ),
        ),
        notification_store,
        directory,
        store,
        authenticator,
        clock=clock,
    )
    # The IEP as a record: versions, history, acknowledgements and the audit trail.
    records = side_tables.records()
    audit = AuditRecorder(records)
    names = RecordNames(PeopleNames(people))
    versions = VersionService(records)
    acknowledgements = AcknowledgementService(
        records,
        directory,
        enqueue=service.outbox.enqueue,
        outbox_entry=notification_store.entry,
        wake_outbox=service.wake,
        notifier=service.notifier,
        audit=audit,
        clock=clock,
        policy=AckPolicy(
            public_url=notifications.public_url,
            remind_after_seconds=notifications.ack_reminder_after_seconds,
            max_reminders=notifications.ack_max_reminders,
        ),
    )
    cluster = cluster_parts(settings, store)
    services: list[Service] = [service, acknowledgements]
    leader = None
    if cluster is not None:
        # Jobs run on the holder of the jobs lock; the others only serve sockets and the API.
        service.jobs_led_elsewhere = True
        acknowledgements.run_loop = False
        leader = JobsLeader(cluster.jobs_lock, [service, acknowledgements])
        services.append(leader)
    records_api = RecordsApi(
        authenticator,
        access,
        records,
        versions,
        HistoryReader(records, store, names.display_name),
        acknowledgements,
        audit,
    )
    app = create_app(
        settings,
        store=store,
        extensions=[
            *([enforcer] if enforcer else []),
            audit,
            service.extension,
            SessionVersions(versions, names.display_name),
        ],
        authenticator=authenticator,
        extra_routes=[
            *web_routes(WebConfig.from_settings(settings)),
            *api_routes(authenticator, access, enforcer, audit),
            *people_routes(authenticator, people),
            *service.routes(),
            *records_api.routes(),
        ],
        services=services,
        ownership=ownership_for(store),
        bus=cluster.bus if cluster is not None else None,
        cluster_store=cluster.store if cluster is not None else None,
    )
    app.state.jobs_leader = leader
    registry = app.state.collab.registry
    if registry.replication is not None:
        registry.replication.on_stored_through.append(service.stored_elsewhere)
    if enforcer is not None:
        enforcer.attach(registry)
    versions.attach(registry)
    return app


@dataclass(frozen=True, slots=True)
class ClusterParts:
    bus: Bus
    store: ClusterStore
    jobs_lock: JobsLock


def cluster_parts(settings: Settings, store: DocumentStore) -> ClusterParts | None:
    """Cluster mode's bus, replica reads and jobs lock, when COLLAB_REDIS_URL is set (the
    settings refuse it without Postgres); redis loads only then."""
    if settings.redis_url is None:
        return None
    from cluster import RedisBus

    cluster_store = cluster_store_for(store)
    jobs_lock = jobs_lock_for(store)
    if cluster_store is None or jobs_lock is None:
        raise ConfigError("COLLAB_REDIS_URL: cluster mode needs a Postgres DATABASE_URL")
    bus = RedisBus(settings.redis_url, bus_namespace(settings))
    return ClusterParts(bus, cluster_store, jobs_lock)


def bus_namespace(settings: Settings) -> str:
    """Channels and keys of one deployment: its database and schema (one Redis may serve
    several deployments, and the tests)."""
    database = urlsplit(settings.database_url).path.lstrip("/") or "postgres"
    return f"collab:{database}:{settings.db_schema}"


class RecordNames:
    """Names shown in history and versions: the people records, else the name a development
    user typed."""

    def __init__(self, people: PeopleNames) -> None:
        self.people = people

    async def display_name(self, user_id: str) -> str | None:
        known = await self.people.display_name(user_id)
        if known:
            return known
        if user_id.startswith(DEV_USER_PREFIX):
            return user_id.removeprefix(DEV_USER_PREFIX)
        return None


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """None in development mode; PyJWT and cryptography (~9 MB) load only when needed."""
    if not settings.auth_configured:
        return None
    from collab_server.auth import verifier_from_settings

    return verifier_from_settings(settings)
