"""The y-websocket protocol end to end against the running app (Python clients)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from pycrdt import Array, Doc, Map, Text
from pydantic import SecretStr

from collab_server.app import create_app
from collab_server.protocol import CloseCode, MessageType, SyncStep
from collab_server.settings import Settings
from persistence import store_from_settings
from tests.collab_server.conftest import ServerFactory
from tests.support.frames import sync_frame
from tests.support.servers import InProcessServer, serve_in_process
from tests.support.yclient import connect


def notes(doc: Doc) -> Text:
    return doc.get("notes", type=Text)


async def test_concurrent_editors_converge(server: InProcessServer) -> None:
    url = server.ws("iep/converge")
    async with connect(url) as a, connect(url) as b, connect(url) as c:
        for i, client in enumerate((a, b, c)):
            for j in range(20):
                notes(client.doc).insert(0, f"{i}{j};")
        expected = 3 * 20
        # Each client waits on what only its own incoming frames can change.
        for client in (a, b, c):
            await client.wait_for(
                lambda client=client: str(notes(client.doc)).count(";") == expected
            )
        assert str(notes(a.doc)) == str(notes(b.doc)) == str(notes(c.doc))


async def test_sync_works_through_asgi_messages_alone(store_settings: Settings) -> None:
    # Under another ASGI server (no direct receive) every frame comes through `receive`.
    app = create_app(store_settings, store=store_from_settings(store_settings))
    async with serve_in_process(app, ws_protocol="websockets-sansio") as server:
        url = server.ws("iep/asgi")
        async with connect(url) as a, connect(url) as b:
            notes(a.doc).insert(0, "from a;")
            notes(b.doc).insert(0, "from b;")
            for client in (a, b):
                await client.wait_for(lambda client=client: str(notes(client.doc)).count(";") == 2)
            await a.send_raw("text is not the protocol")
            assert await a.closed() == CloseCode.UNSUPPORTED_DATA
            notes(b.doc).insert(0, "still here;")
            async with connect(url) as late:
                assert str(notes(late.doc)).count(";") == 3


async def test_late_joiner_and_restart_get_the_full_document(
    start_server: ServerFactory,
) -> None:
    async with start_server() as server, connect(server.ws("iep/late")) as writer:
        goals = writer.doc.get("goals", type=Array)
        goals.append(Map({"id": "g1", "title": "Reading fluency"}))
        notes(writer.doc).insert(0, "hello")
        async with connect(server.ws("iep/late")) as late:
            await late.wait_for(lambda: str(notes(late.doc)) == "hello")
            assert late.doc.get("goals", type=Array)[0]["title"] == "Reading fluency"
    async with start_server() as restarted, connect(restarted.ws("iep/late")) as fresh:
        assert str(notes(fresh.doc)) == "hello"


async def test_offline_edits_merge_on_reconnect(server: InProcessServer) -> None:
    url = server.ws("iep/offline")
    offline = Doc()
    async with connect(url, offline) as first:
        notes(first.doc).insert(0, "base ")
        await asyncio.sleep(0)
    async with connect(url) as other:
        await other.wait_for(lambda: str(notes(other.doc)) == "base ")
        notes(offline).insert(5, "offline")  # made while disconnected
        notes(other.doc).insert(0, ">")
        async with connect(url, offline) as back:
            await back.wait_for(lambda: str(notes(back.doc)) == ">base offline")
            await other.wait_for(lambda: str(notes(other.doc)) == ">base offline")


async def test_deletions_are_stored_and_a_reconnect_resending_them_adds_nothing(
    start_server: ServerFactory,
) -> None:
    name = "iep/deletions"
    async with start_server() as server:
        registry = server.app.state.collab.registry
        async with connect(server.ws(name)) as writer, connect(server.ws(name)) as reader:
            notes(writer.doc).insert(0, "hello world")
            await reader.wait_for(lambda: str(notes(reader.doc)) == "hello world")
            del notes(writer.doc)[0:6]  # an update made of deletions alone
            await reader.wait_for(lambda: str(notes(reader.doc)) == "world")
        live = registry.get_live(name)
        assert live is not None and live.last_seq == 2
        # A client that already has everything answers the server's step 1 with its whole
        # delete set: known deletions are neither stored nor relayed as a change.
        known = Doc()
        known.apply_update(live.doc.get_update())
        async with connect(server.ws(name), known) as back, connect(server.ws(name)) as peer:
            notes(back.doc).insert(5, "!")
            await peer.wait_for(lambda: str(notes(peer.doc)) == "world!")
        assert live.last_seq == 3
    async with start_server() as restarted, connect(restarted.ws(name)) as fresh:
        assert str(notes(fresh.doc)) == "world!"


async def test_joiner_sees_presence_and_it_leaves_when_the_socket_closes(
    server: InProcessServer,
) -> None:
    url = server.ws("iep/presence")
    async with connect(url) as watcher:
        async with connect(url) as therapist:
            await therapist.set_awareness(4242, 1, '{"user":{"name":"Ms. Huda"}}')
            await watcher.wait_for(lambda: 4242 in watcher.awareness)
            # The sender hears its own state echoed (y-websocket needs traffic to stay up).
            await therapist.wait_for(lambda: 4242 in therapist.awareness)
            async with connect(url) as joiner:
                await joiner.wait_for(lambda: 4242 in joiner.awareness)
        loop = asyncio.get_running_loop()
        left = loop.time()
        await watcher.wait_for(lambda: 4242 not in watcher.awareness, timeout=1.0)
        assert loop.time() - left < 1.0


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00\x02\xff", CloseCode.INVALID_PAYLOAD),  # truncated varint
        (sync_frame(SyncStep.UPDATE, b"\x01\x02garbage"), CloseCode.INVALID_PAYLOAD),
        (sync_frame(SyncStep.UPDATE, b""), CloseCode.INVALID_PAYLOAD),  # an empty update
        (sync_frame(SyncStep.STEP2, b"\x00\x05\x01"), CloseCode.INVALID_PAYLOAD),  # bad deletes
        (b"\x07", CloseCode.INVALID_PAYLOAD),  # unknown message type
        (bytes([MessageType.AWARENESS, 3, 1, 1, 9]), CloseCode.INVALID_PAYLOAD),
        ("text frame", CloseCode.UNSUPPORTED_DATA),
    ],
)
async def test_malformed_frame_closes_only_that_connection(
    server: InProcessServer, frame: bytes | str, code: CloseCode
) -> None:
    url = server.ws("iep/malformed")
    async with connect(url) as good:
        notes(good.doc).insert(0, "kept")
        async with connect(url) as bad:
            await bad.send_raw(frame)
            assert await bad.closed() == code
        notes(good.doc).insert(4, "!")
        async with connect(url) as check:
            await check.wait_for(lambda: str(notes(check.doc)) == "kept!")


async def test_an_update_sent_in_fragments_is_applied_once_whole(server: InProcessServer) -> None:
    url = server.ws("iep/fragments")
    source = Doc()
    notes(source).insert(0, "in three fragments")
    frame = sync_frame(SyncStep.UPDATE, source.get_update())
    async with connect(url) as writer, connect(url) as reader:
        await writer.ws.send([frame[:2], frame[2:7], frame[7:]])  # a fragmented message
        await reader.wait_for(lambda: str(notes(reader.doc)) == "in three fragments")


async def test_frame_over_the_limit_is_refused_with_1009(start_server: ServerFactory) -> None:
    async with start_server(max_message_bytes=2048) as server, connect(server.ws("big")) as c:
        await c.send_raw(sync_frame(SyncStep.UPDATE, b"\x00" * 4096))
        assert await c.closed() == CloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize(
    "name",
    [
        *("", ".hidden", "a/../b", "x" * 256, "bad name", "semi;colon", "ümlaut"),
        # One IEP, one name: each of these would otherwise open a document beside centre/a/b.
        *("centre//a/b", "centre/a/./b", "centre/a/b/", "centre/a/b/."),
    ],
)
async def test_bad_document_names_are_refused_at_upgrade(
    server: InProcessServer, name: str
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(server.ws(name)):
            pass
    assert refused.value.response.status_code == 400


async def test_a_development_name_with_control_characters_is_refused(
    server: InProcessServer,
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(server.ws("iep/named") + "?name=Huda%00%1b[2J"):
            pass
    assert refused.value.response.status_code == 400
    async with connect(server.ws("iep/named") + "?name=هدى") as fine:
        assert fine.synced.is_set()


async def test_good_names_with_allowed_punctuation_connect(server: InProcessServer) -> None:
    async with connect(server.ws("centre:a/student_1/iep-2026.v2")) as client:
        assert client.synced.is_set()


async def test_health_readiness_and_metrics(server: InProcessServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        async with connect(server.ws("metrics-doc")) as client:
            notes(client.doc).insert(0, "x")
            async with connect(server.ws("metrics-doc")) as other:
                await other.wait_for(lambda: str(notes(other.doc)) == "x")
            text = (await http.get("/metrics")).text
        assert "collab_connections 1.0" in text
        assert "collab_documents_loaded 1.0" in text
        assert "collab_updates_in_total 1.0" in text
        assert "collab_group_commit_batch_size_count" in text


async def test_metrics_can_be_kept_to_those_who_hold_the_token(
    start_server: ServerFactory,
) -> None:
    token = SecretStr("s3cret-scrape-token")
    async with (
        start_server(metrics_token=token) as server,
        httpx.AsyncClient(base_url=server.http) as http,
    ):
        anyone = await http.get("/metrics")
        guessed = await http.get("/metrics", headers={"authorization": "Bearer guess"})
        scraper = await http.get(
            "/metrics", headers={"authorization": "Bearer s3cret-scrape-token"}
        )
    assert anyone.status_code == guessed.status_code == 401
    assert scraper.status_code == 200 and "collab_" in scraper.text


async def test_idle_document_is_unloaded_and_reloads(start_server: ServerFactory) -> None:
    async with start_server(unload_grace_seconds=0.05) as server:
        registry = server.app.state.collab.registry
        async with connect(server.ws("idle")) as client:
            notes(client.doc).insert(0, "persisted")
            await asyncio.wait_for(
                _until(
                    lambda: (
                        registry.get_live("idle") is not None
                        and registry.get_live("idle").durable_seq == 1
                    )
                ),
                5,
            )
        await asyncio.wait_for(_until(lambda: registry.get_live("idle") is None), 5)
        async with connect(server.ws("idle")) as again:
            assert str(notes(again.doc)) == "persisted"


async def test_compaction_folds_the_log_and_keeps_every_edit(start_server: ServerFactory) -> None:
    async with start_server(compact_max_updates=10) as server:
        collab = server.app.state.collab
        async with connect(server.ws("compact")) as client:
            for i in range(35):
                notes(client.doc).insert(len(str(notes(client.doc))), f"{i},")
            async with connect(server.ws("compact")) as reader:
                await reader.wait_for(lambda: str(notes(reader.doc)).count(",") == 35)
            live = collab.registry.get_live("compact")
            await asyncio.wait_for(
                _until(lambda: not live.compacting and live.log_counter.updates < 10), 5
            )
        stored = await collab.store.load("compact")
        assert stored.snapshot_seq >= 35 - 10
        assert len(stored.tail) < 10
    async with start_server() as again, connect(again.ws("compact")) as check:
        assert str(notes(check.doc)) == "".join(f"{i}," for i in range(35))


async def _until(predicate: object) -> None:
    assert callable(predicate)
    while not predicate():
        await asyncio.sleep(0.01)
