"""Parents' digests, assembled: the feed that reads the stored log, the scheduler, the outbox,
the channels, the webhook and the notification API, with one background loop.

`NotificationService` is built by the composition root from settings and a store; it is
started after the document store is open and closed before it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import structlog
from pydantic import SecretStr
from starlette.routing import BaseRoute

from collab_server.identity import CallerAuthenticator
from collab_server.store import DocumentStore
from integrations.contracts import (
    Channel,
    ChannelSender,
    Clock,
    Language,
    Message,
    MessageKind,
    NotificationStore,
    OutboxEntry,
    Person,
    RecipientDirectory,
    SystemClock,
)
from integrations.digest import DigestPolicy, DigestScheduler, QuietHours
from integrations.digest_feed import DigestFeed
from integrations.email import EmailSender, SmtpConfig
from integrations.inapp import InAppNotifier, SupabaseBroadcaster, notification_routes
from integrations.media import MediaFetcher
from integrations.outbox import Outbox, OutboxPolicy
from integrations.people import TestRefused
from integrations.push import DEFAULT_PUSH_SERVICES, PushConfig, WebPusher, push_routes
from integrations.settings import NotificationSettings
from integrations.sms import SmsConfig, SmsSender
from integrations.webhook import WhatsAppWebhook
from integrations.whatsapp import WhatsAppConfig, WhatsAppSender

log = structlog.get_logger("collab.integrations")

OUTBOX_CONCURRENCY = 16  # sends in flight at once (see OutboxPolicy.concurrency)


@dataclass(frozen=True, slots=True)
class NotificationConfig:
    digest: DigestPolicy = field(default_factory=DigestPolicy)
    outbox: OutboxPolicy = field(default_factory=OutboxPolicy)
    whatsapp: WhatsAppConfig | None = None
    whatsapp_app_secret: str | None = None
    whatsapp_verify_token: str | None = None
    smtp: SmtpConfig | None = None
    sms: SmsConfig | None = None
    push: PushConfig | None = None
    push_services: tuple[str, ...] = DEFAULT_PUSH_SERVICES
    supabase_url: str | None = None
    supabase_service_key: str | None = None
    poll_interval_seconds: float | None = 1.0  # None: the caller drives `tick()`
    feed_delay_seconds: float = 1.0  # how long stored changes gather before being recorded


TEST_MESSAGES = {
    Language.ENGLISH: (
        "Test message",
        "This is a test from the IEP centre: your messages will arrive here.",
    ),
    Language.ARABIC: ("رسالة تجريبية", "هذه رسالة تجريبية من المركز: ستصلك الرسائل هنا."),
}


class NotificationService:
    def __init__(
        self,
        config: NotificationConfig,
        store: NotificationStore,
        directory: RecipientDirectory,
        documents: DocumentStore,
        authenticator: CallerAuthenticator,
        *,
        clock: Clock | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        on_alert: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock or SystemClock()
        self.authenticator = authenticator

        self.scheduler = DigestScheduler(store, directory, config.digest, self.clock)
        self.extension = DigestFeed(
            self.scheduler, documents, delay_seconds=config.feed_delay_seconds
        )
        broadcaster = None
        if config.supabase_url and config.supabase_service_key:
            broadcaster = SupabaseBroadcaster(
                config.supabase_url, config.supabase_service_key, transport=http_transport
            )
        self.notifier = InAppNotifier(store, self.clock, broadcaster)
        if config.push is not None:
            self.notifier.pusher = WebPusher(config.push, store, transport=http_transport)
        senders: dict[Channel, ChannelSender] = {Channel.IN_APP: self.notifier}
        self.media: MediaFetcher | None = None  # files parents send (threads keep them)
        self.whatsapp: WhatsAppSender | None = None
        if config.whatsapp is not None:
            self.whatsapp = WhatsAppSender(
                config.whatsapp, store, self.clock, transport=http_transport
            )
            senders[Channel.WHATSAPP] = self.whatsapp
            self.media = MediaFetcher(config.whatsapp, transport=http_transport)
        if config.smtp is not None:
            senders[Channel.EMAIL] = EmailSender(config.smtp)
        if config.sms is not None:
            senders[Channel.SMS] = SmsSender(config.sms, transport=http_transport)
        self.senders = senders
        self.outbox = Outbox(
            store, directory, senders, self.clock, policy=config.outbox, on_alert=on_alert
        )
        self.webhook: WhatsAppWebhook | None = None
        if config.whatsapp_app_secret and config.whatsapp_verify_token:
            self.webhook = WhatsAppWebhook(
                store,
                directory,
                self.notifier,
                enqueue=self.outbox.enqueue,
                clock=self.clock,
                app_secret=config.whatsapp_app_secret,
                verify_token=config.whatsapp_verify_token,
                on_outbox_change=self.wake,
            )
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        # Cluster mode: a `JobsLeader` starts and stops the jobs on one process at a time.
        self.jobs_led_elsewhere = False

    def routes(self) -> list[BaseRoute]:
        routes = notification_routes(self.store, self.authenticator, self.notifier)
        routes.extend(
            push_routes(self.authenticator, self.store, self.config.push, self.config.push_services)
        )
        if self.webhook is not None:
            routes.extend(self.webhook.routes())
        return routes

    async def send_test(self, person: Person, channel: Channel) -> str:
        """Queue "this is a test" to `person` on `channel` alone (at most one a minute)."""
        if channel not in self.senders:
            raise TestRefused(f"{channel.value} is not configured on this server")
        if channel not in person.delivery_channels() and channel is not Channel.IN_APP:
            raise TestRefused(f"{channel.value} needs an address and to be switched on first")
        now = self.clock.now()
        title, text = TEST_MESSAGES[person.language]
        link = self.config.digest.public_url
        entry = OutboxEntry(
            key=f"test:{person.user_id}:{channel.value}:{int(now // 60)}",
            document="",
            recipient_id=person.user_id,
            kind=MessageKind.TEST,
            message=Message(person.language, title, text, (title, text, link), link),
            channels=(channel,),
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        await self.outbox.enqueue(entry)
        self.wake()
        return entry.key

    async def start(self) -> None:
        await self.store.open()
        if self.jobs_led_elsewhere:
            self.extension.active = False
            return
        await self.start_jobs()

    async def start_jobs(self) -> None:
        """Digests, the outbox and incoming webhooks' processing, on this process."""
        self.extension.active = True
        await self.scheduler.restore()
        # A crash can leave stored entries the feed had not recorded yet.
        for document, through_seq in await self.store.documents_behind_watermark():
            self.extension.notify(document, through_seq)
        if self.webhook is not None:
            await self.webhook.process_pending()
        if self.config.poll_interval_seconds is not None:
            self._loop_task = asyncio.create_task(self._loop(), name="notifications")
        log.info("notifications_started", channels=sorted(c.value for c in self.senders))

    async def stop_jobs(self) -> None:
        """Another process leads the jobs now (cluster mode): stop recording and sending."""
        self.extension.active = False
        await self._stop_loop()
        self.scheduler.forget()

    async def _stop_loop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None

    def stored_elsewhere(self, document: str, through_seq: int) -> None:
        """Another process stored entries of `document` (cluster mode)."""
        if self.extension.active:
            self.extension.notify(document, through_seq)

    def wake(self) -> None:
        self._wake.set()

    async def tick(self) -> int:
        """Close due digest windows, then attempt every due message; returns messages sent."""
        await self.scheduler.flush_due()
        return await self.outbox.run_due()

    async def _loop(self) -> None:
        interval = self.config.poll_interval_seconds or 1.0
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("notifications_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()

    async def aclose(self) -> None:
        await self.extension.aclose()  # before the store closes: queued changes get windows
        await self._stop_loop()
        if self.webhook is not None:
            await self.webhook.aclose()
        for sender in self.senders.values():
            await sender.aclose()
        if self.media is not None:
            await self.media.aclose()
        await self.store.aclose()


def config_from_settings(
    settings: NotificationSettings,
    *,
    supabase_url: str | None = None,
    supabase_service_key: str | None = None,
    poll_interval_seconds: float | None = 1.0,
) -> NotificationConfig:
    """NotificationSettings -> NotificationConfig; channels without configuration stay off.

    The Supabase project (its URL and service key) is the core's configuration: in-app
    notifications are also broadcast on its Realtime when both are given.
    """

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    whatsapp = None
    if settings.whatsapp_access_token is not None:
        whatsapp = WhatsAppConfig(
            api_url=settings.whatsapp_api_url,
            access_token=settings.whatsapp_access_token.get_secret_value(),
            phone_number_id=settings.whatsapp_phone_number_id or "",
            digest_template=settings.whatsapp_digest_template or "",
            acknowledgement_template=settings.whatsapp_acknowledgement_template or "",
        )
    smtp_url = secret(settings.smtp_url)
    sms = None
    if settings.twilio_account_sid is not None:
        sms = SmsConfig(
            api_url=settings.sms_api_url,
            account_sid=settings.twilio_account_sid,
            auth_token=secret(settings.twilio_auth_token) or "",
            sender=settings.sms_from or "",
        )
    push = None
    if settings.vapid_private_key is not None and settings.vapid_subject is not None:
        push = PushConfig(settings.vapid_private_key.get_secret_value(), settings.vapid_subject)
    return NotificationConfig(
        digest=DigestPolicy(
            debounce_seconds=settings.digest_debounce_seconds,
            max_wait_seconds=settings.digest_max_wait_seconds,
            quiet_hours=QuietHours.parse(settings.quiet_hours_spec),
            public_url=settings.public_url,
        ),
        outbox=OutboxPolicy(
            rate_per_second=settings.whatsapp_rate_per_second, concurrency=OUTBOX_CONCURRENCY
        ),
        whatsapp=whatsapp,
        whatsapp_app_secret=secret(settings.whatsapp_app_secret),
        whatsapp_verify_token=secret(settings.whatsapp_verify_token),
        smtp=SmtpConfig.from_url(smtp_url, settings.email_from or "") if smtp_url else None,
        sms=sms,
        push=push,
        push_services=tuple(
            service.strip() for service in settings.push_services.split(",") if service.strip()
        ),
        supabase_url=supabase_url,
        supabase_service_key=supabase_service_key,
        poll_interval_seconds=poll_interval_seconds,
    )
