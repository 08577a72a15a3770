"""Notebook outputs as handed to a model: bounded, binary data summarized."""

from __future__ import annotations

import json
from typing import Any

_TEXT_MIME = ("text/", "application/json", "application/javascript", "image/svg+xml")


def _is_text(mime: str) -> bool:
    return mime.startswith(_TEXT_MIME) or mime.endswith("+json")


def _clip(text: str, budget: list[int]) -> tuple[str, bool]:
    if len(text) <= budget[0]:
        budget[0] -= len(text)
        return text, False
    kept = text[: max(budget[0], 0)]
    budget[0] = 0
    return kept, True


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def bound_outputs(outputs: list[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    """Outputs within `max_chars` of text in total; binary payloads become mime type and size."""
    budget = [max_chars]
    bounded = []
    for output in outputs:
        kind = output.get("output_type")
        item: dict[str, Any] = {"output_type": kind}
        if kind == "stream":
            item["name"] = output.get("name")
            item["text"], item["truncated"] = _clip(_as_text(output.get("text", "")), budget)
        elif kind == "error":
            item["ename"] = output.get("ename")
            item["evalue"], evalue_cut = _clip(str(output.get("evalue", "")), budget)
            traceback, cut = _clip("\n".join(output.get("traceback") or []), budget)
            item["traceback"] = traceback.split("\n") if traceback else []
            item["truncated"] = evalue_cut or cut
        elif kind in ("execute_result", "display_data"):
            if "execution_count" in output:
                item["execution_count"] = output.get("execution_count")
            data: dict[str, Any] = {}
            omitted: list[dict[str, Any]] = []
            truncated = False
            for mime, value in (output.get("data") or {}).items():
                text = _as_text(value)
                if _is_text(mime):
                    data[mime], cut = _clip(text, budget)
                    truncated = truncated or cut
                else:
                    omitted.append({"mime_type": mime, "size": len(text)})
            item["data"] = data
            if omitted:
                item["binary"] = omitted
            item["truncated"] = truncated
        else:
            item["note"] = "unrecognized output type"
        bounded.append(item)
    return bounded
