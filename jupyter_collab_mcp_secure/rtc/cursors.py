"""Cursor positions: Yjs relative positions <-> 0-based line and column (and cell id in notebooks).

The contract counts characters as Unicode code points. Yjs (JupyterLab) and
pycrdt's sticky indexes count UTF-16 code units, so every position is
converted at this boundary and nowhere else.

A relative position names the character it sticks to by its item id, or a
whole text by its type id (or root name) at the start or end of that text.
JupyterLab writes `{"type", "tname", "item", "assoc"}` with explicit nulls and
reads them back the same way (a missing key is not null to Yjs), so positions
written here always carry all four keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pycrdt import Assoc, Decoder, Doc, StickyIndex, Text

POSITION_KEYS = ("type", "tname", "item", "assoc")


@dataclass(frozen=True)
class TextPoint:
    """A resolved position: which text (cell id for notebooks) and where in it."""

    cell_id: str | None
    line: int
    column: int

    def as_dict(self) -> dict[str, Any]:
        point: dict[str, Any] = {"line": self.line, "column": self.column}
        if self.cell_id is not None:
            point["cell_id"] = self.cell_id
        return point


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def to_utf16(text: str, offset: int) -> int:
    return utf16_length(text[:offset])


def from_utf16(text: str, units: int) -> int:
    # A unit count inside a surrogate pair lands on the character that starts there.
    return len(text.encode("utf-16-le")[: units * 2].decode("utf-16-le", errors="ignore"))


def line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start


def offset_of(text: str, line: int, column: int) -> int:
    """The character offset of (line, column); ValueError names what is out of range."""
    if line < 0 or column < 0:
        raise ValueError("line and column are 0-based and cannot be negative")
    lines = text.split("\n")
    if line >= len(lines):
        raise ValueError(f"line {line} is past the last line ({len(lines) - 1})")
    if column > len(lines[line]):
        raise ValueError(f"column {column} is past the end of line {line} ({len(lines[line])} characters)")
    return sum(len(previous) + 1 for previous in lines[:line]) + column


def relative_position(ytext: Text, offset: int) -> dict[str, Any]:
    """The Yjs relative position of character `offset` in `ytext`, as JupyterLab stores it."""
    source = str(ytext)
    units = to_utf16(source, max(0, min(offset, len(source))))
    # After the last character there is nothing to stick to on the right (pycrdt panics):
    # stick to the left neighbour, or to the text itself when it is empty.
    assoc = Assoc.AFTER if units < utf16_length(source) else Assoc.BEFORE
    raw = ytext.sticky_index(units, assoc).to_json()
    return {"type": raw.get("type"), "tname": raw.get("tname"), "item": raw.get("item"), "assoc": int(assoc)}


def _state_vector(doc: Doc) -> dict[int, int]:
    decoder = Decoder(doc.get_state())
    return {decoder.read_var_uint(): decoder.read_var_uint() for _ in range(decoder.read_var_uint())}


def _clean_id(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict) or set(value) != {"client", "clock"}:
        return None
    client, clock = value["client"], value["clock"]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (client, clock)):
        return None
    return {"client": client, "clock": clock}


def clean_position(position: Any) -> dict[str, Any] | None:
    """A relative position from a peer's awareness state (untrusted), or None when malformed."""
    if not isinstance(position, dict) or not set(position) <= set(POSITION_KEYS):
        return None
    assoc = position.get("assoc", 0)
    if assoc is None:
        assoc = 0
    if not isinstance(assoc, int) or isinstance(assoc, bool):
        return None
    named = {key: position.get(key) for key in ("type", "tname", "item") if position.get(key) is not None}
    if len(named) != 1:
        return None
    ((key, value),) = named.items()
    if key == "tname":
        if not isinstance(value, str):
            return None
        return {"tname": value, "assoc": assoc}
    clean = _clean_id(value)
    return None if clean is None else {key: clean, "assoc": assoc}


class PositionResolver:
    """Resolves relative positions against one document's texts (built once per read).

    `texts` pairs each text with its cell id (None for a plain text document).
    """

    def __init__(self, doc: Doc, texts: list[tuple[str | None, Text]]) -> None:
        self.doc = doc
        self.known = _state_vector(doc)
        self.texts = [(cell_id, ytext, str(ytext)) for cell_id, ytext in texts]
        self.by_scope: dict[str, tuple[str | None, Text, str]] = {}
        # Anchors usually equal heads, and several peers often share a spot: resolve each once.
        self._resolved: dict[str, TextPoint | None] = {}
        for entry in self.texts:
            scope = entry[1].sticky_index(0, Assoc.BEFORE).to_json()
            self.by_scope[_scope_key(scope)] = entry

    def _known(self, ident: dict[str, int]) -> bool:
        return ident["clock"] < self.known.get(ident["client"], 0)

    def resolve(self, position: Any) -> TextPoint | None:
        clean = clean_position(position)
        if clean is None:
            return None
        key = json.dumps(clean, sort_keys=True)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(clean)
        return self._resolved[key]

    def _resolve(self, clean: dict[str, Any]) -> TextPoint | None:
        assoc = clean["assoc"]
        if "item" not in clean:
            if "type" in clean and not self._known(clean["type"]):
                return None
            entry = self.by_scope.get(_scope_key(clean))
            if entry is None:
                return None
            cell_id, _, source = entry
            return _point(cell_id, source, utf16_length(source) if assoc >= 0 else 0)
        if not self._known(clean["item"]):
            return None
        units = self._offset_of_item(clean)
        if units is None:
            return None
        wanted = Assoc.AFTER if assoc >= 0 else Assoc.BEFORE
        for cell_id, ytext, source in self.texts:
            length = utf16_length(source)
            fits = units < length if wanted == Assoc.AFTER else 1 <= units <= length
            if fits and ytext.sticky_index(units, wanted).to_json().get("item") == clean["item"]:
                return _point(cell_id, source, units)
        return None

    def _offset_of_item(self, clean: dict[str, Any]) -> int | None:
        try:
            sticky = StickyIndex.from_json(clean)
            with self.doc.transaction() as txn:
                return sticky.get_index(txn)
        except BaseException as error:
            # pycrdt reports positions it cannot place (e.g. collected items) as a Rust panic.
            if type(error).__name__ != "PanicException":
                raise
            return None


def _scope_key(scope: dict[str, Any]) -> str:
    if scope.get("tname") is not None:
        return f"name:{scope['tname']}"
    ident = scope.get("type") or {}
    return f"type:{ident.get('client')}:{ident.get('clock')}"


def _point(cell_id: str | None, source: str, units: int) -> TextPoint:
    line, column = line_column(source, from_utf16(source, units))
    return TextPoint(cell_id, line, column)
