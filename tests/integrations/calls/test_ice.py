"""The ICE servers a call's browsers get, and settings that cannot work refused at start."""

from __future__ import annotations

import pytest

from collab_server.settings import ConfigError
from integrations.calls.ice import ice_servers
from integrations.settings import load_notification_settings


def test_each_person_gets_turn_credentials_that_expire_after_the_configured_time() -> None:
    settings = load_notification_settings(
        {
            "COLLAB_STUN_URLS": "stun:stun.centre.example:3478",
            "COLLAB_TURN_URLS": "turn:turn.centre.example:3478?transport=udp, "
            "turns:turn.centre.example:5349",
            "COLLAB_TURN_SECRET": "s3cret",
            "COLLAB_TURN_TTL_SECONDS": "3600",
        }
    )
    stun, turn = ice_servers(settings.ice, "parent-1", 1_000_000.0)
    assert stun == {"urls": ["stun:stun.centre.example:3478"]}
    assert turn["urls"] == [
        "turn:turn.centre.example:3478?transport=udp",
        "turns:turn.centre.example:5349",
    ]
    assert turn["username"] == "1003600:parent-1"
    other_person = ice_servers(settings.ice, "parent-2", 1_000_000.0)[1]
    assert other_person["credential"] != turn["credential"]
    assert settings.ice.transport_policy == "all"
    assert ice_servers(load_notification_settings({}).ice, "parent-1", 0) == []


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"COLLAB_TURN_URLS": "turn:turn.centre.example"}, "COLLAB_TURN_SECRET"),
        ({"COLLAB_TURN_SECRET": "s3cret"}, "COLLAB_TURN_URLS"),
        ({"COLLAB_ICE_RELAY_ONLY": "true"}, "COLLAB_TURN_URLS"),
        ({"COLLAB_STUN_URLS": "https://stun.centre.example"}, "STUN_URLS"),
    ],
)
def test_call_settings_that_cannot_work_fail_at_start_naming_the_variable(
    environment: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_notification_settings(environment)
