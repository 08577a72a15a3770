"""The reviewer's report: one self-contained HTML page (no scripts, no network) from `report_data`.

Every value that came from a caller (user names, client names, paths, reasons) goes
through `_text`: HTML-escaped, with control and format characters (bidi overrides,
zero-width) shown as escapes, so a name cannot inject markup or disguise a row. The
page's Content-Security-Policy refuses scripts and every fetch, in case anything
slipped through.
"""

from __future__ import annotations

import html
import unicodedata
from datetime import datetime, timezone
from typing import Any

from ..timestamps import rfc3339
from .report_data import Bucket, Execution, Figures, ReportData, agent_label

# A large trail stays readable; `audit query` lists everything.
MAX_ROWS = 500
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;
vertical-align:top;unicode-bidi:isolate}th{background:#f3f3f3}td.n{text-align:right}
.ok{color:#176f2c;font-weight:bold}.broken{color:#b00020;font-weight:bold}.note{color:#666}
.verification{padding:.5em 1em;border:2px solid}.verification.intact{border-color:#176f2c}
.verification.tampered{border-color:#b00020}code{font-size:12px}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; base-uri 'none'"


def visible(value: str) -> str:
    return "".join(f"\\u{ord(char):04x}" if unicodedata.category(char) in _UNPRINTABLE else char for char in value)


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return html.escape(visible(str(value)), quote=True)


def _table(table_id: str, header: list[str], rows: list[list[str]], numeric: frozenset[int] = frozenset()) -> str:
    """Cells in `rows` are already escaped HTML."""
    if not rows:
        return f'<p class="note" id="{table_id}">None.</p>'
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows[:MAX_ROWS]
    )
    more = f'<p class="note">{len(rows) - MAX_ROWS} more not shown.</p>' if len(rows) > MAX_ROWS else ""
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}'


def render(data: ReportData, generated: datetime | None = None) -> str:
    generated = generated or datetime.now(timezone.utc)
    sections = [
        _verification(data),
        _period(data, generated),
        "<h2>Per principal</h2>",
        _figures("principals", "principal (user)", data.principals),
        "<h2>Per agent</h2>",
        '<p class="note">Verified agent ids from credentials; names a client gave itself are marked self-declared.</p>',
        _figures("agents", "agent", data.agents),
        "<h2>Timeline of calls and denials</h2>",
        _chart(data.timeline),
        "<h2>Denials and failures</h2>",
        _failures(data),
        "<h2>Authentication failures</h2>",
        _auth_failures(data),
        "<h2>Refusals outside the MCP tools</h2>",
        '<p class="note">Jupyter REST requests and RTC document updates or connections the policy refused.</p>',
        _other_refusals(data),
        "<h2>Executions</h2>",
        _executions(data.executions),
        "<h2>Policy reloads</h2>",
        _reloads(data.reloads),
    ]
    if data.suppressed:
        rows = [[_text(key), _text(reason), str(n)] for (key, reason), n in sorted(data.suppressed.items())]
        sections += [
            "<h2>Refusals counted, not written one by one</h2>",
            _table("suppressed", ["principal or @address", "reason", "refusals"], rows, frozenset({2})),
        ]
    if data.skipped_lines:
        sections += ["<h2>Lines skipped</h2>", _table("skipped", ["line"], [[_text(s)] for s in data.skipped_lines])]
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        "<title>Audit report</title>"
        f"<style>{_STYLE}</style></head><body><h1>Audit report</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def _verification(data: ReportData) -> str:
    files = ", ".join(_text(name) for name in data.files)
    if data.broken:
        verdict = (
            f'<p class=broken id="verdict">BROKEN: {_text(str(data.broken))}</p>'
            "<p>The records after this point cannot be trusted: this report still lists them.</p>"
        )
    else:
        verdict = '<p class=ok id="verdict">OK: every chain is intact.</p>'
    rows = [
        [_text(c.server), str(c.records), f"<code>{_text(c.head)}</code>", f"<code>{_text(c.chain_start)}</code>"]
        for c in data.chains
    ]
    chains = _table("chains", ["server", "records verified", "chain head", "chain starts after"], rows, frozenset({1}))
    state = "tampered" if data.broken else "intact"
    return (
        f'<div class="verification {state}"><h2>Verification</h2><p>Files: {files}</p>{verdict}{chains}'
        '<p class="note">Compare each chain head with the one the server logged '
        "(<code>audit verify --expect-head</code>) to catch records removed from the end.</p></div>"
    )


def _period(data: ReportData, generated: datetime) -> str:
    def when(moment: datetime | None, fallback: str) -> str:
        return _text(rfc3339(moment)) if moment else fallback

    return (
        '<h2>Period</h2><p id="period">'
        f"From <b>{when(data.since, 'the start of the trail')}</b> to <b>{when(data.until, 'its end')}</b>; "
        f"records found from {when(data.first, '-')} to {when(data.last, '-')}. "
        f"Generated {when(generated, '-')}.</p>"
    )


def _figures(table_id: str, title: str, figures: dict[str, Figures]) -> str:
    rows = [
        [
            _text(name),
            *(str(n) for n in (f.calls, f.denied, f.rate_limited, f.errors, f.writes, f.executions)),
            f"{len(f.documents)}: {_text(sorted(f.documents))}",
        ]
        for name, f in sorted(figures.items())
    ]
    header = [title, "calls", "denials", "rate limited", "errors", "writes", "executions", "documents touched"]
    return _table(table_id, header, rows, frozenset(range(1, 7)))


def _chart(buckets: list[Bucket]) -> str:
    if not buckets:
        return '<p class="note">No calls in the period.</p>'
    width, height, top, bottom = 900, 200, 20, 40
    peak = max(max(b.calls for b in buckets), 1)
    step = width / len(buckets)
    scale = (height - top - bottom) / peak
    base = height - bottom
    bars = []
    for i, bucket in enumerate(buckets):
        x = i * step
        label = rfc3339(bucket.start)
        bars.append(
            f'<g class="bucket" data-start="{label}" data-calls="{bucket.calls}" data-denials="{bucket.denials}">'
            f"<title>{label}: {bucket.calls} calls, {bucket.denials} denials</title>"
            f'<rect x="{x + 1:.1f}" y="{base - bucket.calls * scale:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{bucket.calls * scale:.1f}" fill="#4a78b5"/>'
            f'<rect x="{x + 1:.1f}" y="{base - bucket.denials * scale:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{bucket.denials * scale:.1f}" fill="#c62828"/></g>'
        )
    first, last = (rfc3339(moment) for moment in (buckets[0].start, buckets[-1].end))
    return (
        f'<svg id="timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="calls and denials over time">'
        f'<line x1="0" y1="{base}" x2="{width}" y2="{base}" stroke="#888"/>'
        f'<text x="0" y="{top - 6}" font-size="11">{peak} calls</text>'
        f'<text x="0" y="{height - 22}" font-size="11">{first}</text>'
        f'<text x="{width}" y="{height - 22}" font-size="11" text-anchor="end">{last}</text>'
        f'<text x="{width / 2:.0f}" y="{height - 6}" font-size="11" text-anchor="middle">'
        '<tspan fill="#4a78b5">&#9632; calls</tspan> <tspan fill="#c62828">&#9632; denials</tspan>'
        f"</text>{''.join(bars)}</svg>"
    )


def _failures(data: ReportData) -> str:
    rows = [
        [_text(r.get(k)) for k in ("ts", "server", "user")]
        + [_text(agent_label(r))]
        + [_text(r.get(k)) for k in ("tool", "action", "paths", "outcome", "error_code", "request_id")]
        for r in data.failures
    ]
    header = ["time", "server", "user", "agent", "tool", "action", "paths", "outcome", "error", "request id"]
    return _table("failures", header, rows)


def _auth_failures(data: ReportData) -> str:
    rows = [[_text(r.get(k)) for k in ("ts", "server", "remote_ip", "auth", "reason")] for r in data.auth_failures]
    return _table("auth-failures", ["time", "server", "remote address", "method", "reason"], rows)


def _other_refusals(data: ReportData) -> str:
    rows = [
        [_text(r.get(k)) for k in ("ts", "server", "user")]
        + [_text(agent_label(r))]
        + [_text(r.get(k)) for k in ("event", "resource", "action", "paths", "dropped")]
        for r in data.other_refusals
    ]
    header = ["time", "server", "user", "agent", "event", "resource", "action", "paths", "updates dropped"]
    return _table("other-refusals", header, rows)


def _executions(executions: list[Execution]) -> str:
    rows = []
    for run in executions:
        first, start, end = run.first, run.start, run.end
        if end is None:
            status = "<span class=broken>unfinished (no end record)</span>"
        else:
            status = _text(end.get("outcome") if end.get("event") == "tool_call" else f"finished ({end.get('event')})")
        rows.append(
            [
                _text(start.get("ts")) if start else '<span class="note">not recorded</span>',
                _text(end.get("ts")) if end else "-",
                status,
                *(_text(first.get(k)) for k in ("server", "user")),
                _text(agent_label(first)),
                *(_text(first.get(k)) for k in ("tool", "paths", "request_id")),
            ]
        )
    header = ["started", "ended", "outcome", "server", "user", "agent", "tool", "paths", "request id"]
    return _table("executions", header, rows)


def _reloads(reloads: list[dict[str, Any]]) -> str:
    rows = [
        [
            _text(r.get("ts")),
            _text(r.get("server")),
            _text(r.get("outcome")),
            f"<code>{_text(r.get('policy_sha256'))}</code>",
            _text(r.get("source")),
            _text(r.get("reason")),
        ]
        for r in reloads
    ]
    return _table("reloads", ["time", "server", "outcome", "policy sha256", "source", "reason"], rows)
