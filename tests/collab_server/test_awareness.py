"""Presence as an attacker would use it: states JavaScript cannot read, floods of client IDs,
and taking over another person's presence. Each is refused without harming anyone else."""

from __future__ import annotations

import pytest
from pycrdt import Text

from collab_server.document import MAX_AWARENESS_CLIENTS_PER_CONNECTION
from collab_server.protocol import MAX_AWARENESS_DEPTH, MAX_AWARENESS_STATE_CHARS, CloseCode
from tests.support.servers import InProcessServer
from tests.support.yclient import YClient, connect

HUDA = '{"user":{"name":"Ms. Huda"}}'


def as_user(server: InProcessServer, room: str, name: str) -> str:
    """Development mode knows people by the name the page sends."""
    return f"{server.ws(room)}?name={name}"


async def presence_settles(watcher: YClient, client_id: int, state: str) -> None:
    await watcher.wait_for(lambda: watcher.awareness.get(client_id) == state)


@pytest.mark.parametrize(
    "state",
    [
        '{"user":{"name":"x"},"cursor":NaN}',
        '{"zoom":Infinity}',
        '{"zoom":-Infinity}',
        '{"user":{"name":"\\ud800"}}',  # a lone surrogate, as an escape
        "[" * (MAX_AWARENESS_DEPTH + 1) + "]" * (MAX_AWARENESS_DEPTH + 1),
        '{"a":' * (MAX_AWARENESS_DEPTH + 1) + "1" + "}" * (MAX_AWARENESS_DEPTH + 1),
        '{"padding":"' + "x" * MAX_AWARENESS_STATE_CHARS + '"}',
    ],
    ids=["nan", "infinity", "minus-infinity", "surrogate", "deep-list", "deep-map", "huge"],
)
async def test_a_state_javascript_cannot_read_is_refused_and_never_reaches_joiners(
    server: InProcessServer, state: str
) -> None:
    room = "iep/awareness-unreadable"
    async with connect(server.ws(room)) as watcher:
        async with connect(server.ws(room)) as liar:
            await liar.set_awareness(7, 1, state)
            assert await liar.closed() == CloseCode.INVALID_PAYLOAD
        async with connect(server.ws(room)) as joiner:
            await joiner.set_awareness(8, 1, HUDA)
            await presence_settles(joiner, 8, HUDA)
            await presence_settles(watcher, 8, HUDA)
            assert 7 not in joiner.awareness and 7 not in watcher.awareness


async def test_one_connection_cannot_claim_many_client_ids(server: InProcessServer) -> None:
    room = "iep/awareness-flood"
    async with connect(server.ws(room)) as watcher:
        async with connect(server.ws(room)) as flooder:
            for client_id in range(1, MAX_AWARENESS_CLIENTS_PER_CONNECTION + 2):
                await flooder.set_awareness(client_id, 1, HUDA)
            assert await flooder.closed() == CloseCode.POLICY_VIOLATION
        # Its departure took every ID it held; none stays behind as a ghost.
        async with connect(server.ws(room)) as joiner:
            await joiner.set_awareness(100, 1, HUDA)
            await presence_settles(joiner, 100, HUDA)
            await watcher.wait_for(lambda: set(watcher.awareness) == {100})
            assert set(joiner.awareness) == {100}


async def test_nobody_can_replace_or_remove_another_persons_presence(
    server: InProcessServer,
) -> None:
    room = "iep/awareness-takeover"
    async with connect(server.ws(room)) as watcher, connect(as_user(server, room, "Huda")) as huda:
        await huda.set_awareness(4242, 1, HUDA)
        await presence_settles(watcher, 4242, HUDA)
        async with connect(as_user(server, room, "Mallory")) as mallory:
            await mallory.set_awareness(4242, 9, '{"user":{"name":"Mallory"}}')
            await mallory.set_awareness(4242, 10, "null")
            # Mallory's own presence still works: once it arrives, her earlier frames are done.
            await mallory.set_awareness(5, 1, '{"user":{"name":"Mallory"}}')
            await presence_settles(watcher, 5, '{"user":{"name":"Mallory"}}')
            assert watcher.awareness[4242] == HUDA
        huda.doc.get("notes", type=Text).insert(0, "still editing")
        await huda.set_awareness(4242, 2, '{"user":{"name":"Ms. Huda","typing":true}}')
        await presence_settles(watcher, 4242, '{"user":{"name":"Ms. Huda","typing":true}}')


async def test_a_person_reconnecting_reclaims_their_own_presence(server: InProcessServer) -> None:
    room = "iep/awareness-reclaim"
    async with connect(server.ws(room)) as watcher, connect(as_user(server, room, "Huda")) as old:
        await old.set_awareness(4242, 1, HUDA)
        await old.set_awareness(77, 1, HUDA)  # a second tab's presence, on the old socket only
        await presence_settles(watcher, 77, HUDA)
        # A new socket of the same person, before the server noticed the old one die.
        async with connect(as_user(server, room, "Huda")) as new:
            moved = '{"user":{"name":"Ms. Huda","cursor":3}}'
            await new.set_awareness(4242, 2, moved)
            await presence_settles(watcher, 4242, moved)
            await old.ws.close()
            # The old socket's departure removes what it still held, and only that.
            await watcher.wait_for(lambda: 77 not in watcher.awareness)
            assert watcher.awareness[4242] == moved
