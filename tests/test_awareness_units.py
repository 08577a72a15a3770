"""Awareness building blocks without a server: cursor conversion, the activity feed, agent identity, the peer channel."""

from __future__ import annotations

import json

import pytest
from pycrdt import Array, Assoc, Awareness, Doc, Map, Text, create_awareness_message

from jupyter_collab_mcp_secure.identity.principal import Principal
from jupyter_collab_mcp_secure.rtc.activity import ActivityEntry, ActivityFeed
from jupyter_collab_mcp_secure.rtc.agent_identity import AgentIdentity
from jupyter_collab_mcp_secure.rtc.cursors import (
    PositionResolver,
    clean_position,
    line_column,
    offset_of,
    relative_position,
)
from jupyter_collab_mcp_secure.rtc.peer_channel import PeerChannel

SOURCES = ["x = 1\nprint(x)", "", "héllo 😀 wörld\nsecond\n"]


def notebook_doc() -> tuple[Doc, list[tuple[str, Text]]]:
    doc = Doc()
    cells = doc.get("cells", type=Array)
    for number, source in enumerate(SOURCES):
        cells.append(Map({"id": f"cell-{number}", "source": Text(source)}))
    return doc, [(cell["id"], cell["source"]) for cell in cells]


def test_every_position_round_trips_through_relative_positions_in_notebook_cells():
    doc, texts = notebook_doc()
    resolver = PositionResolver(doc, texts)
    for cell_id, ytext in texts:
        source = str(ytext)
        for offset in range(len(source) + 1):
            position = relative_position(ytext, offset)
            assert set(position) == {"type", "tname", "item", "assoc"}, "Yjs reads missing keys as non-null"
            point = resolver.resolve(position)
            assert point is not None
            assert (point.cell_id, point.line, point.column) == (cell_id, *line_column(source, offset))


def test_end_of_text_and_empty_text_positions_stick_to_the_text_itself():
    doc, texts = notebook_doc()
    empty = texts[1][1]
    at_empty = relative_position(empty, 0)
    assert at_empty["item"] is None and at_empty["type"] is not None
    last = texts[0][1]
    at_end = relative_position(last, len(str(last)))
    assert at_end["item"] is not None and at_end["assoc"] == int(Assoc.BEFORE)
    resolver = PositionResolver(doc, texts)
    # JupyterLab (Yjs, assoc 0) writes the end of a text as the text's own id with no item.
    yjs_end = {"type": at_empty["type"], "tname": None, "item": None, "assoc": 0}
    assert resolver.resolve(yjs_end).as_dict() == {"line": 0, "column": 0, "cell_id": "cell-1"}
    whole = texts[0][1].sticky_index(0, Assoc.BEFORE).to_json()
    yjs_end_of_first = {"type": whole["type"], "tname": None, "item": None, "assoc": 0}
    assert resolver.resolve(yjs_end_of_first).as_dict() == {"line": 1, "column": 8, "cell_id": "cell-0"}


def test_text_document_positions_count_code_points_not_utf16_units():
    doc = Doc()
    source = doc.get("source", type=Text)
    source += "a😀b\nc"
    resolver = PositionResolver(doc, [(None, source)])
    point = resolver.resolve(relative_position(source, 2))  # just after the emoji
    assert point.as_dict() == {"line": 0, "column": 2}
    end = resolver.resolve({"type": None, "tname": "source", "item": None, "assoc": 0})
    assert end.as_dict() == {"line": 1, "column": 1}


@pytest.mark.parametrize(
    "position",
    [
        None,
        "x",
        {"foo": 1},
        {"item": {"client": -1, "clock": 0}, "assoc": 0},
        {"item": {"client": 1, "clock": 0}, "type": {"client": 1, "clock": 0}, "assoc": 0},
        {"item": {"client": 123456789, "clock": 0}, "tname": None, "type": None, "assoc": 0},
        {"item": {"client": True, "clock": 0}, "assoc": 0},
        {"tname": "nope", "assoc": 0},
    ],
)
def test_malformed_or_unknown_positions_resolve_to_nothing(position):
    doc, texts = notebook_doc()
    assert PositionResolver(doc, texts).resolve(position) is None


def test_position_from_another_document_is_not_placed_in_this_one():
    doc, texts = notebook_doc()
    _, other_texts = notebook_doc()
    foreign = relative_position(other_texts[0][1], 3)
    assert PositionResolver(doc, texts).resolve(foreign) is None


def test_clean_position_accepts_yjs_json_with_explicit_nulls():
    assert clean_position({"type": None, "tname": None, "item": {"client": 5, "clock": 2}, "assoc": 0}) == {
        "item": {"client": 5, "clock": 2},
        "assoc": 0,
    }


def test_line_column_offsets():
    assert offset_of("ab\ncd", 1, 2) == 5
    assert offset_of("", 0, 0) == 0
    assert offset_of("ab\n", 1, 0) == 3
    for line, column in [(2, 0), (0, 3), (-1, 0)]:
        with pytest.raises(ValueError):
            offset_of("ab\ncd", line, column)


def entry(path: str | None, user: str = "u", kind: str = "edit") -> ActivityEntry:
    return ActivityEntry(
        activity_type=kind, user_id=user, display_name=user, is_agent=False, source="mcp", document_path=path
    )


def test_activity_feed_is_bounded_per_document_and_overall():
    feed = ActivityFeed(max_total=10, max_per_document=3)
    for _ in range(6):
        feed.add(entry("busy.ipynb"))
    feed.add(entry("quiet.txt"))
    everything = lambda path: True
    assert len(feed.recent(100, everything, "busy.ipynb")) == 3
    assert len(feed.recent(100, everything, "quiet.txt")) == 1
    assert len(feed) == 4
    for number in range(20):
        feed.add(entry(f"doc{number}.txt"))
    assert len(feed) == 10
    newest = feed.recent(100, everything)
    assert [e.document_path for e in newest[:2]] == ["doc19.txt", "doc18.txt"]
    assert feed.recent(100, everything, "quiet.txt") == []


def test_activity_feed_filters_by_read_permission():
    feed = ActivityFeed()
    feed.add(entry("secret/plan.txt", user="bob"))
    feed.add(entry("shared/notes.txt", user="bob"))
    feed.add(entry(None, user="bob", kind="broadcast"))
    readable = lambda path: path.startswith("shared/")
    shown = feed.recent(10, readable)
    assert [e.document_path for e in shown] == [None, "shared/notes.txt"]
    assert feed.recent(10, readable, "secret/plan.txt") == []
    assert feed.last_activity_of("bob", lambda path: False) == shown[0].time


def test_agent_identity_is_distinct_from_the_person_and_labelled():
    alice_claude = Principal(user="alice", auth="jwt", realm="iss", agent="claude-code", display_name="Alice")
    identity = AgentIdentity.of(alice_claude)
    assert identity.username != "alice"
    assert identity.label == "claude-code for Alice"
    assert identity.initials == "CA"
    user = identity.user_field()
    assert user["is_agent"] and user["agent_for"] == "alice" and user["display_name"] == identity.label
    assert user["name"] == "claude-code"
    other = AgentIdentity.of(Principal(user="bob", auth="jwt", realm="iss", agent="claude-code"))
    assert other.key != identity.key and other.username != identity.username


def test_agent_cursor_name_fits_jupyterlab_chip():
    declared = Principal(user="alice", auth="jupyter", realm="jupyter", declared_client="  My Very Long\nClient Name ")
    identity = AgentIdentity.of(declared)
    assert identity.short_name == "My Very Long Client…" and len(identity.short_name) == 20
    assert identity.user_field()["name"] == identity.short_name


async def test_peer_channel_reports_newcomers_once_and_ignores_itself():
    newcomers = []
    channel = PeerChannel("room", own_client_id=1, on_newcomer=lambda: newcomers.append(1))
    remote = Awareness(Doc())
    remote.set_local_state({"user": {"username": "bob"}})
    message = create_awareness_message(remote.encode_awareness_update([remote.client_id]))
    await channel.send(message)
    await channel.send(message)
    assert len(newcomers) == 1
    remote.set_local_state(None)
    await channel.send(create_awareness_message(remote.encode_awareness_update([remote.client_id])))
    remote.set_local_state({"user": {"username": "bob"}})
    await channel.send(create_awareness_message(remote.encode_awareness_update([remote.client_id])))
    assert len(newcomers) == 2
    await channel.send(b"\x00\x00garbage")  # a sync message: not awareness, ignored
    await channel.send(b"\x01\xff")  # truncated awareness: ignored, never raises
    channel.say(b"hello")
    channel.close()
    assert [message async for message in channel] == [b"hello"]


def test_relative_position_json_is_what_jupyterlab_stores():
    doc = Doc()
    source = doc.get("source", type=Text)
    source += "abc"
    position = relative_position(source, 1)
    json.dumps(position)
    assert position["item"]["clock"] == 1 and position["type"] is None and position["tname"] is None
