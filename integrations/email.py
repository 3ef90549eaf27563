"""Email delivery over SMTP (aiosmtplib). `SMTP_URL`: smtp://[user:pass@]host:port, or smtps://."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
import structlog

from integrations.contracts import Channel, OutboxEntry, OutcomeKind, Person, SendOutcome

log = structlog.get_logger("collab.integrations.email")

SMTP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    sender: str

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("expected smtp://[user:pass@]host:port or smtps://…")
        use_tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if use_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            sender=sender,
        )


class EmailSender:
    channel = Channel.EMAIL

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, entry: OutboxEntry, person: Person) -> SendOutcome:
        if not person.email:
            return SendOutcome(OutcomeKind.FAILED, error="no email address")
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = person.email
        message["Subject"] = entry.message.subject
        message["Message-ID"] = f"<{_message_id(entry.key)}@iep-collab>"
        message.set_content(entry.message.text)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.config.host,
                port=self.config.port,
                username=self.config.username,
                password=self.config.password,
                use_tls=self.config.use_tls,
                start_tls=False if not self.config.use_tls else None,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return SendOutcome(OutcomeKind.FAILED, error=f"recipient refused: {exc.recipients}")
        except aiosmtplib.SMTPResponseException as exc:
            kind = OutcomeKind.RETRY if 400 <= exc.code < 500 else OutcomeKind.FAILED
            return SendOutcome(kind, error=f"smtp {exc.code}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendOutcome(OutcomeKind.RETRY, error=f"smtp: {type(exc).__name__}")
        log.info("email_sent", recipient=person.user_id)
        return SendOutcome(OutcomeKind.SENT)

    async def aclose(self) -> None:
        return None


def _message_id(key: str) -> str:
    # A stable Message-ID lets receiving servers drop a duplicate of the same digest.
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in key)[:200]
