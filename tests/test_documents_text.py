"""Character positions over UTF-8 shared text, and minimal edits (no server needed)."""

from __future__ import annotations

import asyncio
import random

import pytest
from pycrdt import Doc, Text

from jupyter_collab_mcp_secure.gateway.errors import ToolFailure
from jupyter_collab_mcp_secure.rtc.diff import change_counts, edits_to, minimal_edits
from jupyter_collab_mcp_secure.rtc.text import (
    Edit,
    apply_edits,
    byte_offset,
    checked_length,
    checked_position,
)

MIXED = "naïve 😀 e\u0301 漢字テスト 👩‍👩‍👧 end"


def shared_text(content: str) -> tuple[Doc, Text]:
    doc = Doc()
    text = doc.get("source", type=Text)
    text += content
    return doc, text


def test_byte_offsets_follow_code_points() -> None:
    assert byte_offset("😀a", 1) == 4
    assert byte_offset("e\u0301x", 2) == 3  # a combining mark is a code point of its own
    assert byte_offset("漢字", 1) == 3
    assert byte_offset(MIXED, len(MIXED)) == len(MIXED.encode())


@pytest.mark.parametrize("position", range(len(MIXED) + 1))
def test_insert_at_every_character_position(position: int) -> None:
    doc, text = shared_text(MIXED)
    with doc.transaction():
        apply_edits(text, MIXED, [Edit(position, position, "|")])
    assert str(text) == MIXED[:position] + "|" + MIXED[position:]


def test_replacements_around_emoji_cjk_and_combining_marks() -> None:
    doc, text = shared_text(MIXED)
    emoji = MIXED.index("😀")
    cjk = MIXED.index("漢")
    edits = [Edit(emoji, emoji + 1, "🙂"), Edit(cjk, cjk + 2, "中文"), Edit(0, 5, "NAIVE")]
    with doc.transaction():
        apply_edits(text, MIXED, edits)
    assert str(text) == "NAIVE" + MIXED[5:emoji] + "🙂" + MIXED[emoji + 1 : cjk] + "中文" + MIXED[cjk + 2 :]


def test_out_of_range_positions_and_lengths_are_refused() -> None:
    with pytest.raises(ToolFailure) as failure:
        checked_position("abc", 4)
    assert failure.value.code == "invalid_argument"
    with pytest.raises(ToolFailure):
        checked_position("abc", -2)
    with pytest.raises(ToolFailure):
        checked_position("abc", -1, allow_append=False)
    assert checked_position("😀😀", -1) == 2
    with pytest.raises(ToolFailure):
        checked_length("😀😀", 1, 2)
    with pytest.raises(ToolFailure):
        checked_length("abc", 0, -1)
    assert checked_length("😀😀", 1, 1) == 1


def _random_text(rng: random.Random, size: int) -> str:
    alphabet = "ab \n😀漢e\u0301"
    return "".join(rng.choice(alphabet) for _ in range(size))


@pytest.mark.parametrize("seed", range(40))
def test_minimal_edits_turn_old_into_new(seed: int) -> None:
    rng = random.Random(seed)
    old = _random_text(rng, rng.randint(0, 200))
    new = list(old)
    for _ in range(rng.randint(0, 5)):
        at = rng.randint(0, len(new))
        new[at : at + rng.randint(0, 4)] = _random_text(rng, rng.randint(0, 6))
    new_text = "".join(new)
    doc, text = shared_text(old)
    with doc.transaction():
        apply_edits(text, old, minimal_edits(old, new_text))
    assert str(text) == new_text


def test_minimal_edits_touch_only_what_differs() -> None:
    old = "".join(f"line {i}\n" for i in range(1000))
    new = old.replace("line 10\n", "line ten\n").replace("line 900\n", "line 九百\n")
    edits = minimal_edits(old, new)
    assert len(edits) == 2
    assert sum(edit.end - edit.start for edit in edits) <= 6
    assert change_counts(old, new) == (sum(len(edit.text) for edit in edits), sum(e.end - e.start for e in edits))
    assert minimal_edits(old, old) == []


def test_a_concurrent_edit_elsewhere_survives_a_whole_content_update() -> None:
    """The agent replaces the content; a person types elsewhere at the same time; both survive."""
    base = "".join(f"paragraph {i}\n" for i in range(50))
    server, server_text = shared_text(base)
    person = Doc()
    person.apply_update(server.get_update())
    person_text = person.get("source", type=Text)

    agent_content = base.replace("paragraph 3\n", "paragraph three, rewritten\n")
    with server.transaction():
        apply_edits(server_text, base, minimal_edits(base, agent_content))
    tail = byte_offset(base, base.index("paragraph 40"))
    person_text.insert(tail, "person 😀 was here ")

    server_state, person_state = server.get_state(), person.get_state()
    server.apply_update(person.get_update(server_state))
    person.apply_update(server.get_update(person_state))
    merged = str(server_text)
    assert merged == str(person_text)
    assert "paragraph three, rewritten" in merged
    assert "person 😀 was here paragraph 40" in merged


def test_an_alignment_over_budget_becomes_one_exact_replace() -> None:
    """A shuffled text would cost a quadratic alignment: past the work budget the middle is replaced at once."""
    lines = [f"row {i} {'x' * 20}\n" for i in range(20_000)]
    shuffled = lines[:]
    random.Random(7).shuffle(shuffled)
    old, new = "head\n" + "".join(lines), "head\n" + "".join(shuffled)
    edits = minimal_edits(old, new)
    assert len(edits) == 1
    assert edits[0].start >= len("head\n")
    assert old[: edits[0].start] + edits[0].text + old[edits[0].end :] == new


@pytest.mark.parametrize("budget", [0, 3, 50])
def test_any_budget_gives_exact_edits(budget: int) -> None:
    rng = random.Random(budget)
    for _ in range(50):
        old = "".join(rng.choice("ab\n") for _ in range(rng.randint(0, 40)))
        new = "".join(rng.choice("ab\n") for _ in range(rng.randint(0, 40)))
        result, position = [], 0
        for edit in minimal_edits(old, new, budget):
            assert edit.start >= position
            result += [old[position : edit.start], edit.text]
            position = edit.end
        assert "".join(result) + old[position:] == new


async def test_large_texts_are_diffed_while_the_event_loop_serves_others() -> None:
    turns = 0
    stop = asyncio.Event()

    async def other_calls() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_calls())
    await asyncio.sleep(0)
    served_before = turns
    rng = random.Random(3)
    old = "".join(rng.choice(["a\n", "b\n", "c\n"]) for _ in range(50_000))
    new = "".join(rng.choice(["a\n", "b\n", "c\n"]) for _ in range(50_000))
    current, edits = await edits_to(lambda: old, new)
    stop.set()
    await ticker
    assert turns > served_before
    assert current == old
    assert len(edits) == 1 and old[: edits[0].start] + edits[0].text + old[edits[0].end :] == new
