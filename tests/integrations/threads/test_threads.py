"""A student's thread: the team writes, each parent gets it on their channel, a parent's
WhatsApp reply lands in the right child's thread, live for everyone in the page."""

from __future__ import annotations

import json
from typing import Any

import websockets

from integrations.threads.records import MAX_POSTS, POSTS_WINDOW_SECONDS
from tests.integrations.sessions.conftest import OMAR, SARA, Centre, next_message

LAYLA, JOHN, MONA = "+966501234567", "+447911123456", "+971501234567"


def text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body}}


async def thread(centre: Centre, user: str, student: str = OMAR) -> Any:
    answer = await centre.call(user, "GET", f"/api/students/{student}/thread")
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_team_writes_parents_get_it_and_a_whatsapp_reply_comes_back_live(
    centre: Centre,
) -> None:
    async with websockets.connect(centre.events_url("t-ali")) as team_page:
        await team_page.send(json.dumps({"type": "subscribe", "topics": [f"student:{OMAR}"]}))
        await next_message(team_page, "subscribed")
        posted = await centre.call(
            "t-huda", "POST", f"/api/students/{OMAR}/thread", {"body": "Omar read 40 words today"}
        )
        assert posted.status_code == 201, posted.text
        live = await next_message(team_page, "event")
        assert (
            live["kind"] == "thread.message" and live["data"]["body"] == "Omar read 40 words today"
        )
        assert live["data"]["author_name"] == "Ms. Huda" and not live["data"]["from_family"]

        # Neither parent wrote in the last 24 hours: the approved template, in their language.
        await centre.notifications.tick()
        (to_layla,) = centre.graph.to(LAYLA)
        assert to_layla.body["type"] == "template"
        template = to_layla.body["template"]
        assert (template["name"], template["language"]["code"]) == ("thread_message", "ar")
        params = [p["text"] for p in template["components"][0]["parameters"]]
        assert params[:2] == ["Ms. Huda", "Omar"] and params[2].endswith("#messages")
        assert centre.graph.to(JOHN)[0].body["template"]["language"]["code"] == "en"

        # Layla answers on WhatsApp: it is in Omar's thread, live, and the team is told.
        await centre.incoming(LAYLA, "wamid.layla1", text("شكراً، سنتدرب في البيت"))
        reply = await next_message(team_page, "event")
        assert reply["data"]["body"] == "شكراً، سنتدرب في البيت"
        assert reply["data"]["from_family"] and reply["data"]["channel"] == "whatsapp"
        told = (await centre.call("t-ali", "GET", "/api/notifications")).json()["notifications"]
        assert any(n["kind"] == "thread_message" and n["title"] == "ليلى" for n in told)
        # Meta delivers the same message again: it is in the thread once.
        await centre.incoming(LAYLA, "wamid.layla1", text("شكراً، سنتدرب في البيت"))

    # Inside her 24-hour window now: the next message reaches Layla as plain text.
    await centre.call("t-ali", "POST", f"/api/students/{OMAR}/thread", {"body": "ممتاز!"})
    centre.clock.advance(6)  # one message per number per 6 s
    await centre.notifications.tick()
    latest = centre.graph.to(LAYLA)[-1].body
    assert latest["type"] == "text" and "ممتاز!" in latest["text"]["body"]
    assert centre.graph.to(JOHN)[-1].body["type"] == "template"

    shown = await thread(centre, "p-layla")
    assert [m["body"] for m in shown["messages"]] == [
        "ممتاز!",
        "شكراً، سنتدرب في البيت",
        "Omar read 40 words today",
    ]
    deliveries = {d["recipient_id"]: d for d in shown["messages"][0]["deliveries"]}
    assert deliveries["p-layla"]["channel"] == "whatsapp"
    assert deliveries["p-layla"]["state"] == "sent"


async def test_a_parent_of_two_children_says_which_child_and_it_is_remembered(
    centre: Centre,
) -> None:
    added = await centre.call(
        "admin", "PUT", f"/api/documents/{SARA}/members/p-layla", {"role": "viewer"}
    )
    assert added.status_code == 201
    await centre.incoming(LAYLA, "wamid.l1", text("هل هناك جلسة غداً؟"))
    await centre.notifications.tick()
    question = centre.graph.to(LAYLA)[-1].body
    assert question["type"] == "interactive" and question["interactive"]["type"] == "list"
    rows = question["interactive"]["action"]["sections"][0]["rows"]
    assert sorted(r["title"] for r in rows) == ["Omar", "سارة"]
    assert (await thread(centre, "t-huda", SARA))["messages"] == []
    assert (await thread(centre, "t-huda", OMAR))["messages"] == []
    # A photo before she answers: asked once, both wait for the answer, the photo kept.
    timetable = b"\xff\xd8\xff\xe0 timetable"
    centre.graph.media["2001"] = ("image/jpeg", timetable)
    await centre.incoming(
        LAYLA, "wamid.l1b", {"type": "image", "image": {"id": "2001", "caption": "في أي ساعة؟"}}
    )
    centre.clock.advance(6)
    await centre.notifications.tick()
    assert len(centre.graph.to(LAYLA)) == 1

    sara = next(r["id"] for r in rows if r["title"] == "سارة")
    await centre.incoming(
        LAYLA,
        "wamid.l2",
        {
            "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {"id": sara, "title": "سارة"}},
        },
    )
    held = (await thread(centre, "t-huda", SARA))["messages"]
    assert [m["body"] for m in held] == ["في أي ساعة؟", "هل هناك جلسة غداً؟"]
    photo = await centre.call(
        "t-huda", "GET", f"/api/students/{SARA}/thread/media/{held[0]['attachment']['id']}"
    )
    assert photo.status_code == 200 and photo.content == timetable
    # The answer holds for the conversation: the next message goes straight to Sara's thread.
    await centre.incoming(LAYLA, "wamid.l3", text("شكراً"))
    bodies = [m["body"] for m in (await thread(centre, "t-huda", SARA))["messages"]]
    assert bodies == ["شكراً", "في أي ساعة؟", "هل هناك جلسة غداً؟"]
    assert (await thread(centre, "t-huda", OMAR))["messages"] == []


async def test_only_the_family_and_team_read_a_thread_and_bad_messages_are_named(
    centre: Centre,
) -> None:
    refused = await centre.call("p-john", "GET", f"/api/students/{SARA}/thread")
    assert refused.status_code == 403
    refused = await centre.call("p-john", "POST", f"/api/students/{SARA}/thread", {"body": "hi"})
    assert refused.status_code == 403
    for body in ({}, {"body": "  "}, {"body": "x" * 4001}, {"body": "hi\u0007"}):
        bad = await centre.call("t-huda", "POST", f"/api/students/{OMAR}/thread", body)
        assert bad.status_code == 422, body
        assert "body" in bad.json()["problems"]
    # A parent writes from the page: the team is told, no message goes back to the family.
    written = await centre.call(
        "p-john", "POST", f"/api/students/{OMAR}/thread", {"body": "Omar was tired today"}
    )
    assert written.status_code == 201 and written.json()["from_family"]
    await centre.notifications.tick()
    assert centre.graph.accepted == []
    # Read markers move forward only, and everyone sees them.
    message_id = written.json()["id"]
    marked = await centre.call(
        "t-huda", "POST", f"/api/students/{OMAR}/thread/read", {"through": message_id}
    )
    assert marked.status_code == 204
    await centre.call("t-huda", "POST", f"/api/students/{OMAR}/thread/read", {"through": 1})
    assert (await thread(centre, "p-john"))["reads"] == {"t-huda": message_id}
    # Nor past the newest message: what is written next is still unread.
    ahead = {"through": 10**9}
    await centre.call("p-john", "POST", f"/api/students/{OMAR}/thread/read", ahead)
    assert (await thread(centre, "p-john"))["reads"]["p-john"] == message_id


async def test_the_bell_counts_live_and_reading_in_one_tab_clears_it_in_the_others(
    centre: Centre,
) -> None:
    async with (
        websockets.connect(centre.events_url("t-ali")) as first_tab,
        websockets.connect(centre.events_url("t-ali")) as second_tab,
    ):
        for tab in (first_tab, second_tab):
            await tab.send(json.dumps({"type": "subscribe", "topics": ["user:t-ali"]}))
            await next_message(tab, "subscribed")
        await centre.incoming(LAYLA, "wamid.bell1", text("متى الجلسة القادمة؟"))
        for tab in (first_tab, second_tab):
            rung = await next_message(tab, "event")
            assert rung["kind"] == "notification" and rung["data"]["kind"] == "thread_message"
            assert rung["data"]["body"] == "متى الجلسة القادمة؟"
        bell = (await centre.call("t-ali", "GET", "/api/notifications/bell")).json()
        assert bell["unread"] == 1 and bell["recent"][0]["title"] == "ليلى"

        newest = bell["recent"][0]["id"]
        read = await centre.call("t-ali", "POST", "/api/notifications/read", {"through": newest})
        assert read.status_code == 204
        cleared = await next_message(second_tab, "event")
        assert (cleared["kind"], cleared["data"]["through"]) == ("notifications.read", newest)
        assert (await centre.call("t-ali", "GET", "/api/notifications/bell")).json()["unread"] == 0
        # Someone else's bell is theirs: Huda still has hers unread.
        assert (await centre.call("t-huda", "GET", "/api/notifications/bell")).json()["unread"] == 1
    bad = await centre.call("t-ali", "POST", "/api/notifications/read", {"through": "all"})
    assert bad.status_code == 422


async def test_a_parents_photo_voice_note_and_pdf_are_kept_for_the_family_and_team_only(
    centre: Centre,
) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
    voice = b"OggS" + bytes(1000)
    centre.graph.media.update(
        {
            "1001": ("image/jpeg", jpeg),
            "1002": ("audio/ogg; codecs=opus", voice),
            "1003": ("application/pdf", b"%PDF-1.4 homework"),
            "1004": ("application/x-msdownload", b"MZ not for us"),
        }
    )
    await centre.incoming(
        LAYLA, "wamid.m1", {"type": "image", "image": {"id": "1001", "caption": "واجب اليوم"}}
    )
    await centre.incoming(LAYLA, "wamid.m2", {"type": "audio", "audio": {"id": "1002"}})
    await centre.incoming(
        LAYLA, "wamid.m3", {"type": "document", "document": {"id": "1003", "filename": "hw.pdf"}}
    )
    await centre.incoming(LAYLA, "wamid.m4", {"type": "document", "document": {"id": "1004"}})
    messages = (await thread(centre, "t-huda"))["messages"]
    refused, pdf, audio, photo = messages
    assert photo["body"] == "واجب اليوم" and photo["attachment"]["mime"] == "image/jpeg"
    assert audio["attachment"]["mime"] == "audio/ogg"
    assert pdf["attachment"]["mime"] == "application/pdf"
    assert refused["attachment"] is None and "not kept" in refused["body"]

    base = f"/api/students/{OMAR}/thread/media"
    got = await centre.call("p-john", "GET", f"{base}/{photo['attachment']['id']}")
    assert got.status_code == 200 and got.content == jpeg
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    file = await centre.call("t-ali", "GET", f"{base}/{pdf['attachment']['id']}")
    assert file.headers["content-disposition"].startswith("attachment")
    # Another family's parent: not theirs to read, under either child's name.
    assert (
        await centre.call("p-mona", "GET", f"{base}/{photo['attachment']['id']}")
    ).status_code == 403
    elsewhere = f"/api/students/{SARA}/thread/media/{photo['attachment']['id']}"
    assert (await centre.call("p-mona", "GET", elsewhere)).status_code == 404


async def test_the_team_attaches_a_file_the_family_reads_it_and_nobody_else_can_reuse_it(
    centre: Centre,
) -> None:
    pdf = b"%PDF-1.4 home programme"
    assert centre.client is not None
    upload = "/api/uploads/thread-media?student=" + OMAR
    huda = {"authorization": f"Bearer {centre.token('t-huda')}"}
    sent = await centre.client.post(
        upload, content=pdf, headers={**huda, "content-type": "application/pdf"}
    )
    assert sent.status_code == 201, sent.text
    file_id = sent.json()["id"]
    wrong = await centre.client.post(
        upload, content=b"MZ", headers={**huda, "content-type": "application/x-msdownload"}
    )
    assert wrong.status_code == 422 and "file" in wrong.json()["problems"]
    # Only its uploader may attach it, once.
    stolen = await centre.call(
        "t-ali", "POST", f"/api/students/{OMAR}/thread", {"body": "", "attachment": file_id}
    )
    assert stolen.status_code == 422 and "attachment" in stolen.json()["problems"]
    posted = await centre.call(
        "t-huda",
        "POST",
        f"/api/students/{OMAR}/thread",
        {"body": "The home programme", "attachment": file_id},
    )
    assert posted.status_code == 201, posted.text
    again = await centre.call(
        "t-huda", "POST", f"/api/students/{OMAR}/thread", {"body": "", "attachment": file_id}
    )
    assert again.status_code == 422
    got = await centre.call("p-layla", "GET", f"/api/students/{OMAR}/thread/media/{file_id}")
    assert got.content == pdf and got.headers["content-type"] == "application/pdf"
    # Files picked and never sent do not pile up: a person's newest five are kept.
    picked = []
    for n in range(7):
        answer = await centre.client.post(
            upload, content=pdf + bytes([n]), headers={**huda, "content-type": "application/pdf"}
        )
        picked.append(answer.json()["id"])
    oldest = await centre.call(
        "t-huda", "POST", f"/api/students/{OMAR}/thread", {"body": "", "attachment": picked[0]}
    )
    assert oldest.status_code == 422  # forgotten
    newest = await centre.call(
        "t-huda", "POST", f"/api/students/{OMAR}/thread", {"body": "", "attachment": picked[-1]}
    )
    assert newest.status_code == 201
    # The sent file stays, whatever is picked later.
    again_got = await centre.call("p-layla", "GET", f"/api/students/{OMAR}/thread/media/{file_id}")
    assert again_got.status_code == 200
    # The parent is told on WhatsApp with the link to it.
    await centre.notifications.tick()
    template = centre.graph.to(LAYLA)[-1].body["template"]
    assert template["components"][0]["parameters"][2]["text"].endswith("#messages")


async def test_inside_her_window_a_parent_gets_the_photo_and_pdf_themselves_on_whatsapp(
    centre: Centre,
) -> None:
    assert centre.client is not None
    huda = {"authorization": f"Bearer {centre.token('t-huda')}"}

    async def attach(mime: str, data: bytes, body: str) -> None:
        kept = await centre.client.post(  # type: ignore[union-attr]
            "/api/uploads/thread-media?student=" + OMAR,
            content=data,
            headers={**huda, "content-type": mime},
        )
        assert kept.status_code == 201, kept.text
        posted = await centre.call(
            "t-huda",
            "POST",
            f"/api/students/{OMAR}/thread",
            {"body": body, "attachment": kept.json()["id"]},
        )
        assert posted.status_code == 201, posted.text
        centre.clock.advance(6)  # one message per number per 6 s
        await centre.notifications.tick()

    await centre.incoming(LAYLA, "wamid.layla-window", text("هل من واجب اليوم؟"))
    photo = b"\xff\xd8\xff\xe0 worksheet"
    await attach("image/jpeg", photo, "ورقة العمل")
    sent = centre.graph.to(LAYLA)[-1].body
    assert sent["type"] == "image" and "ورقة العمل" in sent["image"]["caption"]
    assert centre.graph.uploaded[sent["image"]["id"]][:2] == ("image/jpeg", photo)
    # John has not written: he is told with the template and its link, as before.
    assert centre.graph.to(JOHN)[-1].body["type"] == "template"

    pdf = b"%PDF-1.4 the home programme"
    await attach("application/pdf", pdf, "The home programme")
    sent = centre.graph.to(LAYLA)[-1].body
    assert sent["type"] == "document" and sent["document"]["filename"].endswith(".pdf")
    assert centre.graph.uploaded[sent["document"]["id"]][1] == pdf

    # WhatsApp refuses the file: the text still reaches her, with the link to the file.
    centre.graph.upload_script.append(131053)
    await attach("image/png", b"\x89PNG drawing", "رسم عمر")
    sent = centre.graph.to(LAYLA)[-1].body
    assert sent["type"] == "text" and "رسم عمر" in sent["text"]["body"]
    assert sent["text"]["body"].endswith("#messages")

    # A voice recording is not a WhatsApp file form we send: text and link.
    await attach("audio/ogg", b"OggS voice", "")
    assert centre.graph.to(LAYLA)[-1].body["type"] == "text"


async def test_a_flood_from_one_person_stops_at_the_quota_and_nobody_else_is_held_back(
    centre: Centre,
) -> None:
    thread_of = f"/api/students/{OMAR}/thread"
    for n in range(MAX_POSTS):
        sent = await centre.call("t-huda", "POST", thread_of, {"body": f"note {n}"})
        assert sent.status_code == 201, sent.text
    refused = await centre.call("t-huda", "POST", thread_of, {"body": "one more"})
    assert refused.status_code == 429 and "wait" in refused.json()["error"]
    # Her quota counts every thread; her colleague writes as usual.
    elsewhere = await centre.call("t-huda", "POST", f"/api/students/{SARA}/thread", {"body": "x"})
    assert elsewhere.status_code == 429
    assert (await centre.call("t-ali", "POST", thread_of, {"body": "ok"})).status_code == 201
    bodies = [m["body"] for m in (await thread(centre, "p-layla"))["messages"]]
    assert "one more" not in bodies and bodies[0] == "ok"
    centre.clock.advance(POSTS_WINDOW_SECONDS + 1)
    assert (await centre.call("t-huda", "POST", thread_of, {"body": "later"})).status_code == 201


async def test_a_bell_marker_never_runs_ahead_of_the_notifications(centre: Centre) -> None:
    ahead = await centre.call("t-ali", "POST", "/api/notifications/read", {"through": 10**9})
    assert ahead.status_code == 204
    await centre.incoming(LAYLA, "wamid.ahead1", text("سؤال"))
    assert (await centre.call("t-ali", "GET", "/api/notifications/bell")).json()["unread"] == 1
