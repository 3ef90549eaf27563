"""Parents' digests, assembled: the change observer extension, the scheduler, the outbox, the
channels, the webhook and the notification API, with one background loop.

`NotificationService` is built by the composition root from settings and a store; it is
started after the document store is open and closed before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import structlog
from pydantic import SecretStr
from starlette.routing import BaseRoute

from collab_server.hooks import ChangePayload, Extension, LoadPayload, UnloadPayload
from collab_server.settings import Settings
from collab_server.store import UpdateRecord
from integrations.contracts import (
    CallerAuthenticator,
    Channel,
    ChannelSender,
    Clock,
    NotificationStore,
    RecipientDirectory,
    SystemClock,
)
from integrations.digest import DigestPolicy, DigestScheduler, HistoryReader, QuietHours
from integrations.email import EmailSender, SmtpConfig
from integrations.iep import ChangeSet, DocumentWatch
from integrations.inapp import InAppNotifier, SupabaseBroadcaster, notification_routes
from integrations.outbox import Outbox, OutboxPolicy
from integrations.webhook import WhatsAppWebhook
from integrations.whatsapp import WhatsAppConfig, WhatsAppSender

log = structlog.get_logger("collab.integrations")

HISTORY_LIMIT = 1_000_000


class DigestExtension(Extension):
    """Watches each live document and hands attributed, durable changes to the scheduler.

    Recording (directory look-ups, a window write) runs on the extension's own queue, so the
    core's hook runner, shared by every document, never waits on the notification database.
    """

    name = "digests"
    priority = 200

    def __init__(self, scheduler: DigestScheduler) -> None:
        self.scheduler = scheduler
        self._watches: dict[str, list[DocumentWatch]] = {}
        self._queue: asyncio.Queue[ChangeSet] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def on_load(self, payload: LoadPayload) -> None:
        watches = [w for w in self._watches.get(payload.document, []) if not w.drained]
        watches.append(DocumentWatch(payload.document, payload.doc))
        self._watches[payload.document] = watches

    async def on_change(self, payload: ChangePayload) -> None:
        change = None
        for watch in self._watches.get(payload.document, []):
            if watch.drained:
                continue
            change = watch.take(payload.update)
            break
        if change is None:
            return
        self._queue.put_nowait(dataclasses.replace(change, seq=payload.seq, at=payload.at))
        if self._worker is None:
            self._worker = asyncio.create_task(self._record_changes(), name="digest-record")

    async def _record_changes(self) -> None:
        while True:
            change = await self._queue.get()
            try:
                await self.scheduler.record(change)
            except Exception:
                log.exception("digest_record_failed", document=change.document, seq=change.seq)
            finally:
                self._queue.task_done()

    async def aclose(self, drain_seconds: float = 5.0) -> None:
        """Record what is queued (bounded), then stop."""
        if self._worker is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None

    async def on_unload(self, payload: UnloadPayload) -> None:
        for watch in self._watches.get(payload.document, []):
            if watch.doc is payload.doc:
                watch.close()
        remaining = [
            w for w in self._watches.get(payload.document, []) if not (w.closed and w.drained)
        ]
        if remaining:
            self._watches[payload.document] = remaining
        else:
            self._watches.pop(payload.document, None)


@dataclass(frozen=True, slots=True)
class NotificationConfig:
    digest: DigestPolicy = field(default_factory=DigestPolicy)
    outbox: OutboxPolicy = field(default_factory=OutboxPolicy)
    whatsapp: WhatsAppConfig | None = None
    whatsapp_app_secret: str | None = None
    whatsapp_verify_token: str | None = None
    smtp: SmtpConfig | None = None
    supabase_url: str | None = None
    supabase_service_key: str | None = None
    poll_interval_seconds: float | None = 1.0  # None: the caller drives `tick()`


class NotificationService:
    def __init__(
        self,
        config: NotificationConfig,
        store: NotificationStore,
        directory: RecipientDirectory,
        history: Callable[[str, int, int], Awaitable[Sequence[UpdateRecord]]],
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

        async def read_history(document: str, after_seq: int) -> Sequence[UpdateRecord]:
            return await history(document, after_seq, HISTORY_LIMIT)

        reader: HistoryReader = read_history
        self.scheduler = DigestScheduler(store, directory, reader, config.digest, self.clock)
        self.extension = DigestExtension(self.scheduler)
        broadcaster = None
        if config.supabase_url and config.supabase_service_key:
            broadcaster = SupabaseBroadcaster(
                config.supabase_url, config.supabase_service_key, transport=http_transport
            )
        self.notifier = InAppNotifier(store, self.clock, broadcaster)
        senders: dict[Channel, ChannelSender] = {Channel.IN_APP: self.notifier}
        if config.whatsapp is not None:
            senders[Channel.WHATSAPP] = WhatsAppSender(
                config.whatsapp, store, self.clock, transport=http_transport
            )
        if config.smtp is not None:
            senders[Channel.EMAIL] = EmailSender(config.smtp)
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

    def routes(self) -> list[BaseRoute]:
        routes = notification_routes(self.store, self.authenticator)
        if self.webhook is not None:
            routes.extend(self.webhook.routes())
        return routes

    async def start(self) -> None:
        await self.store.open()
        await self.scheduler.restore()
        if self.webhook is not None:
            await self.webhook.process_pending()
        if self.config.poll_interval_seconds is not None:
            self._loop_task = asyncio.create_task(self._loop(), name="notifications")
        log.info("notifications_started", channels=sorted(c.value for c in self.senders))

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
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self.webhook is not None:
            await self.webhook.aclose()
        for sender in self.senders.values():
            await sender.aclose()
        await self.store.aclose()


def config_from_settings(
    settings: Settings, *, poll_interval_seconds: float | None = 1.0
) -> NotificationConfig:
    """Settings -> NotificationConfig; channels without configuration stay off."""

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    whatsapp = None
    if settings.whatsapp_configured and settings.whatsapp_access_token is not None:
        whatsapp = WhatsAppConfig(
            api_url=settings.whatsapp_api_url,
            access_token=settings.whatsapp_access_token.get_secret_value(),
            phone_number_id=settings.whatsapp_phone_number_id or "",
            digest_template=settings.whatsapp_digest_template or "",
        )
    smtp_url = secret(settings.smtp_url)
    return NotificationConfig(
        digest=DigestPolicy(
            debounce_seconds=settings.digest_debounce_seconds,
            max_wait_seconds=settings.digest_max_wait_seconds,
            quiet_hours=QuietHours.parse(settings.quiet_hours),
            public_url=settings.public_url,
        ),
        outbox=OutboxPolicy(rate_per_second=settings.whatsapp_rate_per_second),
        whatsapp=whatsapp,
        whatsapp_app_secret=secret(settings.whatsapp_app_secret),
        whatsapp_verify_token=secret(settings.whatsapp_verify_token),
        smtp=SmtpConfig.from_url(smtp_url, settings.email_from or "") if smtp_url else None,
        supabase_url=settings.supabase_url,
        supabase_service_key=secret(settings.supabase_service_key),
        poll_interval_seconds=poll_interval_seconds,
    )
