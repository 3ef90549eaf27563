"""`build_app`: the one place that turns settings into stores, extensions and the web app."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pycrdt import Doc
from starlette.applications import Starlette

from collab_server.access import (
    AccessAuthenticator,
    AccessStore,
    CachedMembers,
    MembershipEnforcer,
)
from collab_server.api import CreationPolicy, api_routes
from collab_server.app import Service, create_app
from collab_server.audit import AuditRecorder
from collab_server.body_limit import BodyLimits
from collab_server.cluster import Bus
from collab_server.errors import ConfigError
from collab_server.event_socket import (
    EVENT_SOCKET_RATES,
    EventEndpoint,
    EventSocketLimits,
    LiveEvents,
)
from collab_server.events import BusSignal, EventHub, OwnUserTopic
from collab_server.identity import DEV_USER_PREFIX, Caller, Role
from collab_server.leadership import JobsLeader, JobsLock
from collab_server.replication import ClusterStore
from collab_server.settings import Settings
from collab_server.store import DocumentStore
from collab_server.web import WebConfig, web_routes
from integrations import iep_schema
from integrations.access import AccessDirectory
from integrations.acknowledgement import AcknowledgementService, AckPolicy
from integrations.calls.api import call_routes
from integrations.calls.rooms import CallRooms
from integrations.calls.service import CallService
from integrations.calls.signalling import SignallingEndpoint, SignallingLimits
from integrations.contracts import Clock, SystemClock
from integrations.history import HistoryReader
from integrations.invitations import SupabaseAccounts, invitation_routes
from integrations.listing import DocumentListing
from integrations.notifications import NotificationService, config_from_settings
from integrations.people import MayFillIn, PeopleNames, people_routes
from integrations.records_api import RecordsApi
from integrations.sessions.api import session_routes
from integrations.sessions.messages import CONFIRM_PAYLOAD, DECLINE_PAYLOAD
from integrations.sessions.policy import StudentAccess, StudentTopic, TherapistTopic
from integrations.sessions.service import SessionService, StudentReader, policy_from_settings
from integrations.sessions.student import StudentProfile, student_profile
from integrations.settings import NotificationSettings, load_notification_settings
from integrations.threads.api import UPLOAD_BODY_LIMITS, thread_routes
from integrations.threads.service import CHOICE_PAYLOAD, ThreadPolicy, ThreadService
from integrations.versions import SessionVersions, VersionService
from integrations.webhook import WEBHOOK_BODY_LIMITS
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


def build_app(
    settings: Settings,
    notifications: NotificationSettings | None = None,
    *,
    clock: Clock | None = None,
    timers: bool = True,
) -> Starlette:
    """The server for `settings`; parents' digests use `notifications` (default: channels off).

    `clock` and `timers=False` are for tests that drive time by hand: the outbox and the
    session jobs then run when the test calls them (`app.state.notifications.tick()`,
    `app.state.sessions.jobs.run_due()`).
    """
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
    clock = clock or SystemClock()
    notifications = notifications or load_notification_settings({})
    directory = AccessDirectory(access, people, notification_store, clock)
    service = NotificationService(
        config_from_settings(
            notifications,
            poll_interval_seconds=1.0 if timers else None,
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
    history = HistoryReader(records, store, names.display_name)
    records_api = RecordsApi(
        authenticator,
        access,
        records,
        versions,
        history,
        acknowledgements,
        audit,
    )
    live = live_events(
        settings, side_tables, authenticator, cluster.bus if cluster is not None else None
    )
    service.notifier.publish = live.hub.publish  # the bell in every open tab
    students = StudentAccess(access, development_mode=authenticator.development_mode)
    live.hub.register("student", StudentTopic(students))
    live.hub.register("therapist", TherapistTopic(students))
    app_ref: list[Starlette] = []
    read_student = student_reader(store, app_ref)
    sessions = SessionService(
        side_tables.sessions(),
        live.hub,
        students,
        read_student,
        directory=directory,
        clock=clock,
        policy=policy_from_settings(notifications),
        notifier=service.notifier,
        broadcaster=service.notifier.broadcaster,
        outbox_changed=service.wake,
        timers=timers,
    )
    thread_store = side_tables.threads()
    if service.whatsapp is not None:
        service.whatsapp.attachments = thread_store.media  # the team's files go as files
    threads = ThreadService(
        thread_store,
        live.hub,
        students,
        read_student,
        directory=directory,
        notifier=service.notifier,
        last_inbound=notification_store.last_inbound,
        enqueue=service.outbox.enqueue,
        outbox_changed=service.wake,
        clock=clock,
        policy=ThreadPolicy(notifications.public_url, notifications.whatsapp_message_template),
        fetch_media=service.media.fetch if service.media is not None else None,
    )
    calls = CallService(
        side_tables.calls(),
        students,
        threads,
        announce=live.hub.announce,
        pusher=lambda: service.notifier.pusher,
        ice=notifications.ice,
        clock=clock,
        timers=timers,
    )
    call_rooms = CallRooms(cluster.bus if cluster is not None else None)
    signalling = SignallingEndpoint(
        calls,
        call_rooms,
        authenticator,
        SignallingLimits(recheck_seconds=settings.membership_recheck_seconds),
    )
    if service.webhook is not None:
        service.webhook.add_button_handler(CONFIRM_PAYLOAD, sessions.answer)
        service.webhook.add_button_handler(DECLINE_PAYLOAD, sessions.answer)
        service.webhook.add_button_handler(CHOICE_PAYLOAD, threads.choose)
        service.webhook.set_text_handler(threads.incoming)
        service.webhook.set_media_handler(threads.incoming_media)
    creation = CreationPolicy.from_roles(
        settings.creator_roles,
        settings.document_prefix,
        development=authenticator.development_mode,
        first_content=iep_schema.seed,
    )
    listing = DocumentListing(access)
    service_key = settings.supabase_service_key
    invitations = (
        invitation_routes(
            authenticator,
            SupabaseAccounts(settings.supabase_url, service_key.get_secret_value()),
            people,
            creation.may_create,
        )
        if settings.supabase_url and service_key is not None
        else []
    )
    app = create_app(
        settings,
        store=store,
        body_limits=BodyLimits(by_path_prefix={**WEBHOOK_BODY_LIMITS, **UPLOAD_BODY_LIMITS}),
        extensions=[
            *([enforcer] if enforcer else []),
            audit,
            service.extension,
            SessionVersions(versions, names.display_name, session_ended=history.summarise),
            listing,
        ],
        authenticator=authenticator,
        extra_routes=[
            *web_routes(WebConfig.from_settings(settings)),
            *api_routes(
                authenticator,
                access,
                enforcer,
                audit,
                creation,
                names=names,
                fill_listings=listing.fill,
            ),
            *invitations,
            *people_routes(authenticator, people, service.send_test, owner_of_member(access)),
            *service.routes(),
            *records_api.routes(),
            *live.routes(),
            *session_routes(sessions, authenticator),
            *thread_routes(threads, authenticator, notification_store),
            *call_routes(calls, authenticator),
            *signalling.routes(),
        ],
        # In this order: the notification store opens the memory:// side tables.
        services=[*services, live, sessions, calls, call_rooms],
        ownership=ownership_for(store),
        bus=cluster.bus if cluster is not None else None,
        cluster_store=cluster.store if cluster is not None else None,
        upgrade=iep_schema.upgrade,
    )
    app_ref.append(app)
    app.state.notifications, app.state.sessions, app.state.events = service, sessions, live
    app.state.calls, app.state.call_rooms = calls, call_rooms
    app.state.jobs_leader = leader
    registry = app.state.collab.registry
    if registry.replication is not None:
        registry.replication.on_stored_through.append(service.stored_elsewhere)
    if enforcer is not None:
        enforcer.attach(registry)
    versions.attach(registry)
    listing.attach(registry)
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


def live_events(
    settings: Settings,
    side_tables: SideTables,
    authenticator: AccessAuthenticator,
    bus: Bus | None = None,
) -> LiveEvents:
    """`WS /events`: the hub over the database's event log, with the sync socket's limits;
    in cluster mode the log's growth is announced to every process over the bus."""
    events = side_tables.events()
    hub = EventHub(events, BusSignal(bus, events) if bus is not None else None)
    hub.register("user", OwnUserTopic())
    limits = EventSocketLimits(
        rates=dataclasses.replace(
            EVENT_SOCKET_RATES, max_connections_per_user=settings.max_connections_per_user
        ),
        recheck_seconds=settings.membership_recheck_seconds,
    )
    return LiveEvents(
        hub,
        EventEndpoint(hub, authenticator, limits),
        retention_seconds=settings.event_retention_days * 86400,
    )


_PROFILE_SECONDS = 5.0
_PROFILES = 1024


def student_reader(store: DocumentStore, app_ref: list[Starlette]) -> StudentReader:
    """A student's profile from their IEP: the live document, else the stored one.

    Remembered for a few seconds: a week view names many sessions of a few students.
    """
    cache: dict[str, tuple[float, StudentProfile | None]] = {}

    async def read(student_id: str) -> StudentProfile | None:
        now = time.monotonic()
        cached = cache.get(student_id)
        if cached is not None and now - cached[0] < _PROFILE_SECONDS:
            return cached[1]
        live = app_ref[0].state.collab.registry.get_live(student_id) if app_ref else None
        if live is not None:
            profile: StudentProfile | None = student_profile(live.doc)
        else:
            stored = await store.load(student_id)
            if stored.snapshot is None and not stored.tail:
                profile = None
            else:
                doc: Doc[Any] = Doc()
                if stored.snapshot:
                    doc.apply_update(stored.snapshot)
                for record in stored.tail:
                    doc.apply_update(record.update)
                profile = student_profile(doc)
        if len(cache) >= _PROFILES:
            cache.clear()
        cache[student_id] = (now, profile)
        return profile

    return read


def owner_of_member(access: AccessStore) -> MayFillIn:
    """Whether the caller owns an IEP the person is a member of."""

    async def may(caller: Caller, user_id: str) -> bool:
        found = await access.memberships_of([caller.user_id, user_id])
        owned = {m.document for m in found if m.user_id == caller.user_id and m.role is Role.OWNER}
        return any(m.document in owned for m in found if m.user_id == user_id)

    return may


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """None in development mode; PyJWT and cryptography (~9 MB) load only when needed."""
    if not settings.auth_configured:
        return None
    from collab_server.auth import verifier_from_settings

    return verifier_from_settings(settings)
