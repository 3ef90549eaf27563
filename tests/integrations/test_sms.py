"""SMS when WhatsApp cannot deliver: WhatsApp -> SMS -> email, each reason kept, Arabic kept
short in UCS-2 segments, against loopback Graph API, Twilio and SMTP servers."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from integrations.contracts import (
    Channel,
    Language,
    Message,
    MessageKind,
    OutboxEntry,
    OutboxState,
    Person,
)
from integrations.email import SmtpConfig
from integrations.notifications import NotificationService
from integrations.sms import SmsConfig, segments, sms_text
from tests.integrations.conftest import DOCUMENT, Harness
from tests.integrations.fakes import (
    TWILIO_SID,
    TWILIO_TOKEN,
    FakeTwilio,
    smtp_server,
    twilio_api,
)

LAYLA = Person(
    "p-sms-layla",
    "ليلى",
    Language.ARABIC,
    "Asia/Riyadh",
    phone="+966501110000",
    channels=frozenset({Channel.WHATSAPP, Channel.SMS}),
)
JOHN = Person(
    "p-sms-john",
    "John",
    Language.ENGLISH,
    "Europe/London",
    phone="+447700900123",
    email="john@example.test",
    channels=frozenset({Channel.WHATSAPP, Channel.SMS, Channel.EMAIL}),
)
ARABIC_DIGEST = (
    "تم تحديث الخطة التربوية لعمر: أضافت المعلمة هدى هدفاً جديداً في القراءة بطلاقة، "
    "وعدّلت خط الأساس إلى ٣٥ كلمة في الدقيقة، وأضافت ملاحظة عن التدريب في البيت كل مساء. "
    "افتح الخطة لترى التفاصيل كاملة."
)


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with twilio_api() as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[tuple[Any, str]]:
    with smtp_server() as running:
        yield running


@contextlib.asynccontextmanager
async def running(
    h: Harness, twilio: FakeTwilio, smtp_url: str | None = None
) -> AsyncIterator[NotificationService]:
    for person in (LAYLA, JOHN):
        h.directory.add(person, DOCUMENT, digest=True)
    config = dataclasses.replace(
        h.config(),
        sms=SmsConfig(twilio.url, TWILIO_SID, TWILIO_TOKEN, "+15005550006"),
        smtp=SmtpConfig.from_url(smtp_url, "IEP <iep@example.test>") if smtp_url else None,
    )
    async with h.process(config) as service:
        yield service


async def send(service: NotificationService, person: Person, text: str) -> OutboxEntry:
    now = service.clock.now()
    entry = OutboxEntry(
        f"sms-test:{person.user_id}",
        DOCUMENT,
        person.user_id,
        MessageKind.DIGEST,
        Message(
            person.language, "IEP updated", text, ("IEP", "updated", "link"), "https://x.test/d"
        ),
        person.delivery_channels(),
        next_attempt_at=now,
        created_at=now,
    )
    assert await service.outbox.enqueue(entry)
    for _ in range(3):  # a channel that failed hands over to the next on the next pass
        await service.tick()
    found = await service.store.entry(entry.key)
    assert found is not None
    return found


async def test_undeliverable_on_whatsapp_goes_by_sms_in_the_persons_language(
    backend_harness: Harness, twilio: FakeTwilio
) -> None:
    h = backend_harness
    async with running(h, twilio) as service:
        h.graph.fail_next(131026)  # the number has no WhatsApp
        entry = await send(service, LAYLA, ARABIC_DIGEST)
    assert entry.state is OutboxState.SENT and entry.channel is Channel.SMS
    assert entry.last_error is not None and entry.last_error.startswith("whatsapp: 131026")
    (sms,) = twilio.to(LAYLA.phone or "")
    assert sms["From"] == "+15005550006"
    # Too long for two Arabic segments: the subject and the link instead, never cut mid-link.
    assert segments(sms["Body"]) <= 2 and sms["Body"].endswith("https://x.test/d")


async def test_a_number_sms_refuses_falls_back_to_email_with_each_reason(
    backend_harness: Harness, twilio: FakeTwilio, smtp: tuple[Any, str]
) -> None:
    h = backend_harness
    inbox, smtp_url = smtp
    async with running(h, twilio, smtp_url) as service:
        h.graph.fail_next(131026)
        twilio.fail_next(21614)  # a landline
        entry = await send(service, JOHN, "Omar's IEP changed: a new reading goal.")
    assert entry.state is OutboxState.SENT and entry.channel is Channel.EMAIL
    assert entry.last_error is not None
    assert "whatsapp: 131026" in entry.last_error and "sms: 21614" in entry.last_error
    assert twilio.accepted == [] and len(inbox.messages) == 1


async def test_opted_out_of_whatsapp_but_not_sms_gets_an_sms_and_twilio_limits_are_retried(
    backend_harness: Harness, twilio: FakeTwilio
) -> None:
    h = backend_harness
    async with running(h, twilio) as service:
        h.directory.people[LAYLA.user_id] = dataclasses.replace(LAYLA, whatsapp_opted_out=True)
        twilio.fail_next(20429)  # Twilio's rate limit: the same channel later
        entry = await send(service, h.directory.people[LAYLA.user_id], "تم تحديث الخطة")
        assert entry.state is OutboxState.PENDING and entry.channel is Channel.SMS
        h.clock.advance(60)
        await service.tick()
    assert [m["Body"] for m in twilio.to(LAYLA.phone or "")] == ["تم تحديث الخطة"]
    assert h.graph.accepted == []


async def test_a_person_who_puts_sms_first_gets_sms_first(
    backend_harness: Harness, twilio: FakeTwilio
) -> None:
    h = backend_harness
    async with running(h, twilio) as service:
        sms_first = dataclasses.replace(LAYLA, channel_order=(Channel.SMS,))
        h.directory.people[LAYLA.user_id] = sms_first
        entry = await send(service, sms_first, "تم تحديث الخطة")
    assert entry.channel is Channel.SMS and entry.state is OutboxState.SENT
    assert entry.channels == (Channel.SMS, Channel.WHATSAPP)  # WhatsApp stays the fallback
    assert h.graph.accepted == []


def test_segments_follow_gsm_7_and_ucs_2() -> None:
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("a" * 306) == 2
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2  # extension characters count twice
    assert segments("م" * 70) == 1 and segments("م" * 71) == 2 and segments("م" * 134) == 2
    assert segments("Omar " + "م") == 1  # one Arabic letter makes it all UCS-2
    long = Message(Language.ARABIC, "تحديث", "م" * 500, link="https://x.test/d")
    assert sms_text(long) == "تحديث https://x.test/d"
    cut = sms_text(Message(Language.ARABIC, "ت" * 300, "م" * 500))
    assert segments(cut) == 2 and cut.endswith("…")
