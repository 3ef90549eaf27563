"""Digest rendering (CLDR plurals, direction isolates, template flattening), quiet hours and
channel configuration from the environment."""

from __future__ import annotations

import datetime as dt

import pytest

from collab_server.errors import ConfigError
from integrations.contracts import Language
from integrations.digest import Digest, QuietHours, SectionDigest, flatten, plural, render
from integrations.iep import Section
from integrations.notifications import config_from_settings
from integrations.settings import load_notification_settings


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "لا عناصر"),
        (1, "عنصر واحد"),
        (2, "عنصران"),
        (3, "3 عناصر"),
        (11, "11 عنصرًا"),
        (100, "100 عنصر"),
        (103, "103 عناصر"),
    ],
)
def test_arabic_counts_use_all_six_cldr_plural_forms(n: int, expected: str) -> None:
    assert plural(Language.ARABIC, "items", n) == expected


def test_english_counts() -> None:
    assert plural(Language.ENGLISH, "items", 1) == "1 item"
    assert plural(Language.ENGLISH, "items", 2) == "2 items"


def digest() -> Digest:
    goals = SectionDigest(added={"g1": "Reading fluency", "g2": "Math facts"}, editors=["Ms. Huda"])
    goals.edited = {"g3": "الحساب"}
    return Digest("doc", "خطة سارة", {Section.GOALS: goals})


def test_arabic_digest_isolates_latin_names_and_links_the_document() -> None:
    message = render(digest(), Language.ARABIC, "https://iep.example.test/?doc=doc")
    assert message is not None
    goals_line = "\u200fالأهداف: أُضيف عنصران (\u2068Reading fluency\u2069، \u2068Math facts\u2069)"
    assert goals_line in message.text
    assert "بواسطة \u2068Ms. Huda\u2069" in message.text
    assert message.text.endswith("للاطلاع: https://iep.example.test/?doc=doc")


def test_template_parameters_have_no_newlines_tabs_or_long_space_runs() -> None:
    message = render(digest(), Language.ENGLISH, "https://x.test/")
    assert message is not None
    for param in message.template_params:
        assert "\n" not in param and "\t" not in param and "     " not in param
    assert flatten("a\n\tb      c") == "a b c"


def test_quiet_hours_span_midnight_in_the_persons_time_zone() -> None:
    quiet = QuietHours.parse("21:00-08:00")
    assert quiet is not None
    riyadh_2130 = dt.datetime(2026, 11, 25, 18, 30, tzinfo=dt.UTC).timestamp()
    released = dt.datetime.fromtimestamp(quiet.release(riyadh_2130, "Asia/Riyadh"), dt.UTC)
    assert released == dt.datetime(2026, 11, 26, 5, 0, tzinfo=dt.UTC)  # 08:00 in Riyadh
    assert quiet.release(riyadh_2130, "Europe/London") == riyadh_2130  # 18:30 in London
    assert QuietHours.parse("") is None
    with pytest.raises(ValueError, match="HH:MM"):
        QuietHours.parse("9pm-8am")


def test_partial_whatsapp_configuration_names_what_is_missing() -> None:
    with pytest.raises(ConfigError) as error:
        load_notification_settings({"WHATSAPP_ACCESS_TOKEN": "t", "WHATSAPP_PHONE_NUMBER_ID": "1"})
    message = str(error.value)
    for name in (
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
        "WHATSAPP_DIGEST_TEMPLATE",
        "WHATSAPP_ACKNOWLEDGEMENT_TEMPLATE",
    ):
        assert name in message
    assert "WHATSAPP_PHONE_NUMBER_ID," not in message
    with pytest.raises(ConfigError, match="EMAIL_FROM"):
        load_notification_settings({"SMTP_URL": "smtp://mail.test:25"})


def test_settings_become_channels_and_quiet_hours_off_disables_them() -> None:
    settings = load_notification_settings(
        {
            "WHATSAPP_ACCESS_TOKEN": "t",
            "WHATSAPP_PHONE_NUMBER_ID": "1",
            "WHATSAPP_APP_SECRET": "s",
            "WHATSAPP_VERIFY_TOKEN": "v",
            "WHATSAPP_DIGEST_TEMPLATE": "iep_digest",
            "WHATSAPP_ACKNOWLEDGEMENT_TEMPLATE": "iep_acknowledgement",
            "SMTP_URL": "smtp://user:p%40ss@mail.test:2525",
            "EMAIL_FROM": "iep@example.test",
            "COLLAB_QUIET_HOURS": "off",
            "COLLAB_DIGEST_DEBOUNCE_SECONDS": "60",
        }
    )
    config = config_from_settings(settings)
    assert config.whatsapp is not None
    assert config.whatsapp.api_url == "https://graph.facebook.com/v21.0"
    assert config.whatsapp.acknowledgement_template == "iep_acknowledgement"
    assert config.smtp is not None and config.smtp.password == "p@ss"
    assert config.smtp.port == 2525
    assert config.digest.quiet_hours is None and config.digest.debounce_seconds == 60
