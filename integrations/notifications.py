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
from collab_server.identity import CallerAuthenticator
from collab_server.store import UpdateRecord
from integrations.contracts import (
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
from integrations.settings import NotificationSettings
from integrations.webhook import WhatsAppWebhook
from integrations.whatsapp import WhatsAppConfig, WhatsAppSender

log = structlog.get_logger("collab.integrations")

# How far a document's saved digest watermark may trail the changes recorded in this process.
_WATERMARK_LAG = 500

HISTORY_LIMIT = 1_000_000
OUTBOX_CONCURRENCY = 16  # sends in flight at once (see OutboxPolicy.concurrency)


@dataclass(frozen=True, slots=True)
class _CatchUp:
    """At start or on load: record log entries after the watermark, up to `through_seq`."""

    document: str
    through_seq: int
    seen: int  # highest seq whose change hook ran in this process before the load


@dataclass(frozen=True, slots=True)
class _SaveWatermark:
    """On unload: persist how far the document's changes were seen, queued after them."""

    document: str
    seen: int


class DigestExtension(Extension):
    """Watches each live document and hands attributed, durable changes to the scheduler.

    Recording (directory look-ups, a window write) runs on the extension's own queue, so the
    core's hook runner, shared by every document, never waits on the notification database.
    A per-document watermark (the highest log seq recorded) is saved with the windows, and
    for changes that concern no one at least every _WATERMARK_LAG entries and at unload; at
    start and on load, entries after it, committed before a crash while their change hook was
    still queued, are replayed into windows, so a parent never misses them (docs/decisions.md).
    """

    name = "digests"
    priority = 200

    def __init__(self, scheduler: DigestScheduler) -> None:
        self.scheduler = scheduler
        self._watches: dict[str, list[DocumentWatch]] = {}
        self._queue: asyncio.Queue[ChangeSet | _CatchUp | _SaveWatermark] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._seen: dict[str, int] = {}  # highest seq whose on_change ran, set before queueing
        self._recorded: dict[str, int] = {}  # watermark: every change up to it is in a window
        self._saved: dict[str, int] = {}  # the watermark as last written
        self._closed = False

    async def on_load(self, payload: LoadPayload) -> None:
        watches = [w for w in self._watches.get(payload.document, []) if not w.drained]
        watches.append(DocumentWatch(payload.document, payload.doc, payload.applying_update))
        self._watches[payload.document] = watches
        self.catch_up(payload.document, payload.last_seq)

    def catch_up(self, document: str, through_seq: int) -> None:
        """Record log entries of `document` after its watermark, up to `through_seq`."""
        self._enqueue(_CatchUp(document, through_seq, self._seen.get(document, 0)))

    async def on_change(self, payload: ChangePayload) -> None:
        change = None
        for watch in self._watches.get(payload.document, []):
            if watch.drained:
                continue
            change = watch.take(payload.update)
            break
        self._seen[payload.document] = max(self._seen.get(payload.document, 0), payload.seq)
        if change is None:
            return
        self._enqueue(dataclasses.replace(change, seq=payload.seq, at=payload.at))

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
        self._enqueue(_SaveWatermark(payload.document, self._seen.get(payload.document, 0)))

    def _enqueue(self, item: ChangeSet | _CatchUp | _SaveWatermark) -> None:
        self._queue.put_nowait(item)
        if self._worker is None and not self._closed:
            self._worker = asyncio.create_task(self._record_changes(), name="digest-record")

    async def _record_changes(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _CatchUp):
                    await self._catch_up(item)
                elif isinstance(item, _SaveWatermark):
                    await self._save_watermark(item)
                else:
                    await self._record(item)
            except Exception:
                seq = item.seq if isinstance(item, ChangeSet) else None
                log.exception("digest_record_failed", document=item.document, seq=seq)
            finally:
                self._queue.task_done()

    async def _record(self, change: ChangeSet) -> None:
        document = change.document
        if change.seq <= self._recorded.get(document, 0):
            return  # already in a window (replayed at load)
        if await self.scheduler.record(change):  # saved the watermark with the windows
            self._saved[document] = max(self._saved.get(document, 0), change.seq)
        self._recorded[document] = change.seq
        # A change for no one writes nothing: the transaction cost 120 µs of CPU per keystroke
        # (SQLite), four times the edit's own. So the saved watermark may trail, by fewer
        # than _WATERMARK_LAG entries, which a restart replays for whoever then gets digests
        # of the document.
        if change.seq - self._saved.get(document, 0) >= _WATERMARK_LAG:
            await self._write_watermark(document, change.seq)

    async def _catch_up(self, item: _CatchUp) -> None:
        document = item.document
        saved = self._saved.get(document)
        if saved is None:
            saved = await self.scheduler.store.watermark(document)
            if saved is not None:
                self._saved[document] = saved
        if saved is None:
            # First load since digests kept a watermark: no change hook of it was lost.
            mark = item.through_seq
        else:
            # Seqs seen in this process had their chance at a window: not replayed again.
            mark = max(saved, self._recorded.get(document, 0), item.seen)
        if mark < item.through_seq:
            changes = await self.scheduler.catch_up(document, mark, item.through_seq)
            for change in changes:
                await self.scheduler.record(change)
            log.info(
                "digest_changes_caught_up",
                document=document,
                after_seq=mark,
                through_seq=item.through_seq,
                changes=len(changes),
            )
        self._recorded[document] = max(self._recorded.get(document, 0), item.through_seq)
        if saved != self._recorded[document]:
            await self._write_watermark(document, self._recorded[document])

    async def _save_watermark(self, item: _SaveWatermark) -> None:
        # Changes without a ChangeSet (server changes, other roots) move it too, so the next
        # load does not replay them; changes seen up to `item.seen` were queued before it.
        document = item.document
        mark = max(self._recorded.get(document, 0), item.seen)
        if mark > self._saved.get(document, 0):
            await self._write_watermark(document, mark)
        if document not in self._watches:
            self._seen.pop(document, None)
            self._recorded.pop(document, None)
            self._saved.pop(document, None)

    async def _write_watermark(self, document: str, mark: int) -> None:
        await self.scheduler.store.save_windows(document, mark, [])
        self._recorded[document] = max(self._recorded.get(document, 0), mark)
        self._saved[document] = max(self._saved.get(document, 0), mark)

    async def idle(self) -> None:
        """Return once everything queued so far (changes, catch-ups) is recorded."""
        if self._worker is not None:
            await self._queue.join()

    async def aclose(self, drain_seconds: float = 5.0) -> None:
        """Record what is queued (bounded), save each live document's watermark, then stop."""
        self._closed = True  # a late unload starts no worker: the next load catches up
        if self._worker is None:
            return
        for document in list(self._watches):
            self._queue.put_nowait(_SaveWatermark(document, self._seen.get(document, 0)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None


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
        # A crash can leave stored changes whose change hook never ran. Their document's next
        # load would record them, but a parent should not wait for someone to reopen it.
        # Queued before any document can load, so a load's own catch-up comes after.
        for document, through_seq in await self.store.documents_behind_watermark():
            self.extension.catch_up(document, through_seq)
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
        )
    smtp_url = secret(settings.smtp_url)
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
        supabase_url=supabase_url,
        supabase_service_key=supabase_service_key,
        poll_interval_seconds=poll_interval_seconds,
    )
