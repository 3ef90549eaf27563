""" "Send me a test message" from a person's settings: on the one channel asked, in their
language, once a minute at most; refused clearly when the channel cannot reach them."""

from __future__ import annotations

from tests.integrations.sessions.conftest import OMAR, SARA, Centre, centre

__all__ = ["centre"]

LAYLA = "+966501234567"


async def test_a_test_message_goes_on_the_channel_asked_and_refusals_are_said(
    centre: Centre,
) -> None:
    sent = await centre.call("p-layla", "POST", "/api/people/p-layla/test", {"channel": "whatsapp"})
    assert sent.status_code == 202, sent.text
    again = await centre.call(
        "p-layla", "POST", "/api/people/p-layla/test", {"channel": "whatsapp"}
    )
    assert again.json()["key"] == sent.json()["key"]  # a second click the same minute: one message
    await centre.notifications.tick()
    (message,) = centre.graph.to(LAYLA)
    params = [p["text"] for p in message.body["template"]["components"][0]["parameters"]]
    assert params[0] == "رسالة تجريبية"  # Layla reads Arabic

    in_app = await centre.call("p-layla", "POST", "/api/people/p-layla/test", {"channel": "in_app"})
    assert in_app.status_code == 202
    await centre.notifications.tick()
    bell = (await centre.call("p-layla", "GET", "/api/notifications/bell")).json()
    assert bell["recent"][0]["title"] == "رسالة تجريبية"

    for body, status in (
        ({"channel": "sms"}, 409),  # SMS is not configured on this server
        ({"channel": "email"}, 409),  # nor is email
        ({"channel": "pager"}, 422),
        ({}, 422),
    ):
        refused = await centre.call("p-layla", "POST", "/api/people/p-layla/test", body)
        assert refused.status_code == status, body
    other = await centre.call("p-john", "POST", "/api/people/p-layla/test", {"channel": "in_app"})
    assert other.status_code == 403


async def test_an_owner_fills_in_a_parent_without_an_account_but_never_over_their_own(
    centre: Centre,
) -> None:
    joined = await centre.call(
        "admin", "PUT", f"/api/documents/{OMAR}/members/p-new", {"role": "viewer"}
    )
    assert joined.status_code == 201
    record = {"name": "أم عمر", "language": "ar", "phone": "+966555000111"}
    assert (await centre.call("t-huda", "GET", "/api/people/p-new")).status_code == 404
    filled = await centre.call("t-huda", "PUT", "/api/people/p-new", record)
    assert filled.status_code == 200, filled.text
    # Once kept, it is the parent's: the owner may not change it or read it.
    again = await centre.call("t-huda", "PUT", "/api/people/p-new", {**record, "phone": None})
    assert again.status_code == 403
    assert (await centre.call("t-huda", "GET", "/api/people/p-layla")).status_code == 403
    # An editor is not an owner, and an owner of another child's IEP has no say.
    assert (await centre.call("t-ali", "PUT", "/api/people/p-other", record)).status_code == 403
    await centre.call(
        "admin", "PUT", f"/api/documents/{SARA}/members/p-sara-dad", {"role": "viewer"}
    )
    assert (await centre.call("t-ali", "PUT", "/api/people/p-sara-dad", record)).status_code == 403
    answer = await centre.call("p-new", "GET", "/api/people/p-new")
    assert answer.json()["name"] == "أم عمر"
