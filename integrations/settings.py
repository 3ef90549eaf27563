"""Settings of the parents' digests and their channels, from the environment.

WhatsApp and SMTP keep the names Meta's and mail providers' guides use; the rest are
`COLLAB_` variables like the core's (see `collab_server.settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, SecretStr, model_validator

from collab_server.settings import EnvironmentSettings, load_from
from integrations.calls.ice import IceConfig

DEFAULT_WHATSAPP_API_URL = "https://graph.facebook.com/v21.0"
DEFAULT_SMS_API_URL = "https://api.twilio.com"
QUIET_HOURS_OFF = ("", "off", "none")


class NotificationSettings(EnvironmentSettings):
    whatsapp_api_url: str = Field(DEFAULT_WHATSAPP_API_URL, validation_alias="WHATSAPP_API_URL")
    whatsapp_access_token: SecretStr | None = Field(None, validation_alias="WHATSAPP_ACCESS_TOKEN")
    whatsapp_phone_number_id: str | None = Field(None, validation_alias="WHATSAPP_PHONE_NUMBER_ID")
    whatsapp_app_secret: SecretStr | None = Field(None, validation_alias="WHATSAPP_APP_SECRET")
    whatsapp_verify_token: SecretStr | None = Field(None, validation_alias="WHATSAPP_VERIFY_TOKEN")
    whatsapp_digest_template: str | None = Field(None, validation_alias="WHATSAPP_DIGEST_TEMPLATE")
    # Therapy sessions' approved templates (each with ar and en): all three, or none.
    whatsapp_reminder_template: str | None = Field(
        None, validation_alias="WHATSAPP_REMINDER_TEMPLATE"
    )
    whatsapp_session_moved_template: str | None = Field(
        None, validation_alias="WHATSAPP_SESSION_MOVED_TEMPLATE"
    )
    whatsapp_progress_template: str | None = Field(
        None, validation_alias="WHATSAPP_PROGRESS_TEMPLATE"
    )
    whatsapp_acknowledgement_template: str | None = Field(
        None, validation_alias="WHATSAPP_ACKNOWLEDGEMENT_TEMPLATE"
    )
    # A team member's message to a parent outside the 24-hour window (params: who, student,
    # link). Unset: such messages go by the parent's other channels.
    whatsapp_message_template: str | None = Field(
        None, validation_alias="WHATSAPP_MESSAGE_TEMPLATE"
    )
    whatsapp_rate_per_second: float = Field(80.0, gt=0)
    # SMS through Twilio's Messages API: all three, or none (SMS off).
    twilio_account_sid: str | None = Field(
        None, validation_alias="TWILIO_ACCOUNT_SID", pattern=r"^AC[0-9a-fA-F]{32}$"
    )
    twilio_auth_token: SecretStr | None = Field(None, validation_alias="TWILIO_AUTH_TOKEN")
    sms_from: str | None = Field(
        None, validation_alias="SMS_FROM", pattern=r"^(\+[1-9]\d{6,14}|MG[0-9a-fA-F]{32})$"
    )
    sms_api_url: str = Field(DEFAULT_SMS_API_URL, validation_alias="SMS_API_URL")
    # Web Push: the VAPID private key (raw 32 bytes or DER, base64url) and a contact, both or
    # neither; the push services endpoints may point at (SSRF guard), comma-separated.
    vapid_private_key: SecretStr | None = Field(None, validation_alias="VAPID_PRIVATE_KEY")
    vapid_subject: str | None = Field(
        None, validation_alias="VAPID_SUBJECT", pattern=r"^(mailto:\S+@\S+|https://\S+)$"
    )
    push_services: str = Field(
        "fcm.googleapis.com,updates.push.services.mozilla.com,*.notify.windows.com,"
        "web.push.apple.com"
    )
    # Voice calls: STUN and TURN servers the browsers may use, comma-separated; TURN needs the
    # secret it shares with us (coturn's `static-auth-secret`) to check the credentials we mint.
    stun_urls: str = Field("", pattern=r"^\s*(stuns?:[^,\s]+(\s*,\s*stuns?:[^,\s]+)*)?\s*$")
    turn_urls: str = Field("", pattern=r"^\s*(turns?:[^,\s]+(\s*,\s*turns?:[^,\s]+)*)?\s*$")
    turn_secret: SecretStr | None = None
    turn_ttl_seconds: int = Field(4 * 3600, ge=60, le=7 * 86400)
    ice_relay_only: bool = False
    smtp_url: SecretStr | None = Field(None, validation_alias="SMTP_URL")
    email_from: str | None = Field(None, validation_alias="EMAIL_FROM")
    public_url: str = "http://127.0.0.1:8000"
    digest_debounce_seconds: float = Field(600.0, ge=0)
    digest_max_wait_seconds: float = Field(3600.0, gt=0)
    # `off` disables quiet hours.
    # Parents' acknowledgements: a reminder after this long without an answer, at most so many.
    ack_reminder_after_seconds: float = Field(3 * 86400.0, gt=0)
    ack_max_reminders: int = Field(2, ge=0, le=10)
    quiet_hours: str = Field(
        "21:00-08:00", pattern=r"^(|off|none|\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*)$"
    )
    # Therapy sessions: the kinds a centre offers, reminder lead times (the shortest is sent
    # even in quiet hours), the wait before a day's progress update, and the lateness past
    # which a reminder is dropped.
    session_kinds: str = Field(
        "speech,occupational,behavioural,physical,psychological",
        pattern=r"^\s*[a-z][a-z0-9_-]{0,39}(\s*,\s*[a-z][a-z0-9_-]{0,39})*\s*$",
    )
    session_reminders: str = Field("24h,2h", pattern=r"^\s*\d{1,3}h(\s*,\s*\d{1,3}h)*\s*$")
    progress_update_delay_minutes: float = Field(30.0, ge=0)
    reminder_max_lateness_minutes: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _channels_complete(self) -> NotificationSettings:
        whatsapp = {
            "WHATSAPP_ACCESS_TOKEN": self.whatsapp_access_token,
            "WHATSAPP_PHONE_NUMBER_ID": self.whatsapp_phone_number_id,
            "WHATSAPP_APP_SECRET": self.whatsapp_app_secret,
            "WHATSAPP_VERIFY_TOKEN": self.whatsapp_verify_token,
            "WHATSAPP_DIGEST_TEMPLATE": self.whatsapp_digest_template,
            "WHATSAPP_ACKNOWLEDGEMENT_TEMPLATE": self.whatsapp_acknowledgement_template,
        }
        if any(whatsapp.values()):
            missing = [name for name, value in whatsapp.items() if not value]
            if missing:
                raise ValueError("WhatsApp is partly configured; also set " + ", ".join(missing))
        session_templates = {
            "WHATSAPP_REMINDER_TEMPLATE": self.whatsapp_reminder_template,
            "WHATSAPP_SESSION_MOVED_TEMPLATE": self.whatsapp_session_moved_template,
            "WHATSAPP_PROGRESS_TEMPLATE": self.whatsapp_progress_template,
        }
        if any(session_templates.values()):
            missing = [name for name, value in session_templates.items() if not value]
            if missing:
                raise ValueError(
                    "session templates are partly configured; also set " + ", ".join(missing)
                )
            if not self.whatsapp_configured:
                raise ValueError(
                    "session templates need WhatsApp: also set WHATSAPP_ACCESS_TOKEN and the rest"
                )
        sms = {
            "TWILIO_ACCOUNT_SID": self.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
            "SMS_FROM": self.sms_from,
        }
        if any(sms.values()):
            missing = [name for name, value in sms.items() if not value]
            if missing:
                raise ValueError("SMS is partly configured; also set " + ", ".join(missing))
        if (self.vapid_private_key is None) != (self.vapid_subject is None):
            raise ValueError("Web Push needs both VAPID_PRIVATE_KEY and VAPID_SUBJECT")
        if bool(self.turn_urls.strip()) != (self.turn_secret is not None):
            raise ValueError("TURN needs both COLLAB_TURN_URLS and COLLAB_TURN_SECRET")
        if self.ice_relay_only and self.turn_secret is None:
            raise ValueError("COLLAB_ICE_RELAY_ONLY needs a TURN server: set COLLAB_TURN_URLS")
        if self.smtp_url is not None:
            if not self.smtp_url.get_secret_value().startswith(("smtp://", "smtps://")):
                raise ValueError("SMTP_URL must look like smtp://user:pass@host:port")
            if not self.email_from:
                raise ValueError("SMTP_URL is set; also set EMAIL_FROM")
        return self

    @property
    def ice(self) -> IceConfig:
        def urls(value: str) -> tuple[str, ...]:
            return tuple(u.strip() for u in value.split(",") if u.strip())

        return IceConfig(
            urls(self.stun_urls),
            urls(self.turn_urls),
            self.turn_secret.get_secret_value() if self.turn_secret else "",
            self.turn_ttl_seconds,
            self.ice_relay_only,
        )

    @property
    def whatsapp_configured(self) -> bool:
        return self.whatsapp_access_token is not None

    @property
    def session_kind_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.strip() for k in self.session_kinds.split(",")))

    @property
    def reminder_lead_hours(self) -> tuple[int, ...]:
        """Lead times in hours, longest first."""
        hours = {int(h.strip().removesuffix("h")) for h in self.session_reminders.split(",")}
        return tuple(sorted(hours, reverse=True))

    @property
    def quiet_hours_spec(self) -> str:
        """The quiet hours, or "" when they are off."""
        return "" if self.quiet_hours.strip().lower() in QUIET_HOURS_OFF else self.quiet_hours


def load_notification_settings(
    environ: Mapping[str, str] | None = None, **overrides: Any
) -> NotificationSettings:
    return load_from(NotificationSettings, environ, overrides)
