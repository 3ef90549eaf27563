"""The durable outbox: every message is written to the database before any send.

Delivery states (`OutboxState`): PENDING -> SENDING -> SENT, or FAILED once no channel is left.
An entry is claimed (SENDING, with a lease) before the network call, so a restart finds it:
an expired lease is sent again unless a WhatsApp status webhook (which echoes the entry's key
as `biz_opaque_callback_data`) has already confirmed it. Pacing: one WhatsApp message per
number per 6 s (Meta's pair limit, a slot taken in the store, so it holds for every process
and over restarts) and a global token bucket (default 80/s; in cluster mode only the jobs leader
sends). Outcomes:

    SENT           done
    RETRY          same channel, exponential backoff with jitter, up to `max_attempts`
    WINDOW_CLOSED  same channel, now as the approved template
    FAILED         next enabled channel (FAILED when none is left), reason kept
    HALT           WhatsApp stops for every entry, in the store (every process, and after a
                   restart, until an admin lifts it), with an alert; this one falls back
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import structlog

from integrations.contracts import (
    Channel,
    ChannelSender,
    Clock,
    MessageKind,
    NotificationStore,
    NumberBusy,
    OutboxEntry,
    OutboxState,
    OutcomeKind,
    Pace,
    Person,
    RecipientDirectory,
    SendOutcome,
)

log = structlog.get_logger("collab.integrations.outbox")


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    pair_interval_seconds: float = 6.0
    sms_interval_seconds: float = 1.0  # one SMS per number per second at most
    rate_per_second: float = 80.0
    max_attempts: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 900.0
    sending_lease_seconds: float = 120.0
    batch: int = 200
    # Entries attempted at once: pacing is decided before each send, so it holds either way;
    # a burst (10,000 reminders due together) needs the overlap of network and database waits.
    concurrency: int = 1


class Outbox:
    def __init__(
        self,
        store: NotificationStore,
        directory: RecipientDirectory,
        senders: Mapping[Channel, ChannelSender],
        clock: Clock,
        *,
        policy: OutboxPolicy | None = None,
        rng: random.Random | None = None,
        on_alert: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.senders = dict(senders)
        self.clock = clock
        self.policy = policy or OutboxPolicy()
        self.rng = rng or random.Random()
        self.on_alert = on_alert
        self.whatsapp_halted: str | None = None  # read from the store at each pass
        self._tokens = self.policy.rate_per_second
        self._tokens_at = clock.now()

    async def enqueue(self, entry: OutboxEntry) -> bool:
        return await self.store.enqueue(entry)

    async def run_due(self) -> int:
        """Attempt every due entry once; returns how many were sent."""
        halt = await self.store.whatsapp_halt()
        self.whatsapp_halted = halt[0] if halt is not None else None
        due = await self.store.due(self.clock.now(), self.policy.batch)
        if self.policy.concurrency <= 1:
            return sum([await self._attempt(entry) for entry in due])
        gate = asyncio.Semaphore(self.policy.concurrency)

        async def attempt(entry: OutboxEntry) -> bool:
            async with gate:
                return await self._attempt(entry)

        return sum(await asyncio.gather(*(attempt(entry) for entry in due)))

    def _take_token(self, now: float) -> bool:
        rate = self.policy.rate_per_second
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    async def _attempt(self, entry: OutboxEntry) -> bool:
        now = self.clock.now()
        if entry.state is OutboxState.SENDING:
            log.warning("outbox_lease_expired", key=entry.key, attempts=entry.attempts)
        person = await self.directory.person(entry.recipient_id)
        channel = entry.channel
        if person is None or channel is None:
            await self._finish_failed(entry, "recipient or channel unknown", now)
            return False
        skip = self._skip_reason(entry, person, channel)
        if skip is not None:
            # Nothing was sent: the next channel may go at once (at most one per channel).
            following = await self._fall_back(entry, skip, now)
            return await self._attempt(following) if following is not None else False
        sender = self.senders[channel]
        pace = None
        if channel is Channel.WHATSAPP:
            if not self._take_token(now):
                retry_at = now + 1 / self.policy.rate_per_second
                await self.store.update(replace(entry, next_attempt_at=retry_at))
                return False
            pace = Pace(f"whatsapp:{person.phone}", now, self.policy.pair_interval_seconds)
        elif channel is Channel.SMS:
            pace = Pace(f"sms:{person.phone}", now, self.policy.sms_interval_seconds)
        claimed = replace(
            entry,
            state=OutboxState.SENDING,
            attempts=entry.attempts + 1,
            next_attempt_at=now + self.policy.sending_lease_seconds,
            updated_at=now,
        )
        try:
            # The number's slot is taken in the claim's own transaction: only with the claim.
            if not await self.store.claim(entry, claimed, pace):
                log.info("outbox_claimed_elsewhere", key=entry.key)
                return False
        except NumberBusy as busy:
            await self.store.update(replace(entry, next_attempt_at=busy.free_at))
            return False
        try:
            outcome = await sender.send(claimed, person)
        except Exception as exc:  # a sender bug must not stall the outbox
            log.exception("outbox_sender_crashed", channel=channel.value, key=entry.key)
            outcome = SendOutcome(OutcomeKind.RETRY, error=f"sender error: {type(exc).__name__}")
        return await self._settle(claimed, outcome)

    def _skip_reason(self, entry: OutboxEntry, person: Person, channel: Channel) -> str | None:
        if channel not in self.senders:
            return f"{channel.value} is not configured"
        if channel is Channel.SMS and not person.phone:
            return "no phone number"
        if channel is Channel.WHATSAPP:
            if self.whatsapp_halted is not None:
                return f"whatsapp halted ({self.whatsapp_halted})"
            if not person.phone:
                return "no phone number"
            if entry.kind is not MessageKind.CONFIRMATION and person.whatsapp_opted_out:
                return "opted out of whatsapp"
        return None

    async def _settle(self, entry: OutboxEntry, outcome: SendOutcome) -> bool:
        now = self.clock.now()
        log.info(
            "outbox_attempt",
            key=entry.key,
            channel=entry.channel.value if entry.channel else None,
            attempt=entry.attempts,
            outcome=outcome.kind.value,
            error=outcome.error,
        )
        if outcome.kind is OutcomeKind.SENT:
            current = await self.store.entry(entry.key)
            delivery = current.delivery_status if current else None
            await self.store.update(
                replace(
                    entry,
                    state=OutboxState.SENT,
                    provider_message_id=outcome.provider_message_id,
                    delivery_status=delivery,
                    next_attempt_at=0.0,
                    updated_at=now,
                )
            )
            return True
        if outcome.kind is OutcomeKind.WINDOW_CLOSED and not entry.use_template:
            await self.store.update(
                replace(
                    entry,
                    state=OutboxState.PENDING,
                    use_template=True,
                    next_attempt_at=now,
                    last_error=outcome.error,
                    updated_at=now,
                )
            )
            return False
        if outcome.kind is OutcomeKind.RETRY and entry.attempts < self.policy.max_attempts:
            delay = min(
                self.policy.backoff_max_seconds,
                self.policy.backoff_base_seconds * 2 ** (entry.attempts - 1),
            )
            delay = max(delay * (0.5 + self.rng.random() / 2), outcome.retry_after or 0.0)
            await self.store.update(
                replace(
                    entry,
                    state=OutboxState.PENDING,
                    next_attempt_at=now + delay,
                    last_error=outcome.error,
                    updated_at=now,
                )
            )
            return False
        if outcome.kind is OutcomeKind.HALT:
            self.whatsapp_halted = outcome.error or "halted"
            await self.store.halt_whatsapp(self.whatsapp_halted, now)
            log.critical("whatsapp_halted", error=outcome.error)
            if self.on_alert is not None:
                self.on_alert(f"WhatsApp sending stopped: {outcome.error}")
        await self._fall_back(entry, outcome.error or outcome.kind.value, now)
        return False

    async def _fall_back(self, entry: OutboxEntry, reason: str, now: float) -> OutboxEntry | None:
        """Move to the next channel; None when none is left (the entry is FAILED)."""
        failed_channel = entry.channel.value if entry.channel else "?"
        remaining = entry.channels[1:]
        error = f"{failed_channel}: {reason}"
        if entry.last_error and entry.last_error.startswith(tuple(f"{c.value}:" for c in Channel)):
            error = f"{entry.last_error}; {error}"  # keep why the earlier channels failed
        if entry.kind is MessageKind.CONFIRMATION or not remaining:
            await self._finish_failed(entry, error, now)
            return None
        log.info("outbox_fallback", key=entry.key, failed=failed_channel, to=remaining[0].value)
        following = replace(
            entry,
            channels=remaining,
            state=OutboxState.PENDING,
            use_template=False,
            next_attempt_at=now,
            last_error=error,
            updated_at=now,
        )
        await self.store.update(following)
        return following

    async def _finish_failed(self, entry: OutboxEntry, reason: str, now: float) -> None:
        await self.store.update(
            replace(
                entry,
                state=OutboxState.FAILED,
                next_attempt_at=0.0,
                last_error=reason,
                updated_at=now,
            )
        )
        log.warning("outbox_failed", key=entry.key, reason=reason)
