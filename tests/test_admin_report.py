"""`jupyter collab-mcp audit report`: a trail from real calls, rendered in real headless Chromium."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import subprocess
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import httpx
import jwt
import pytest
from harness import audit_records, call, call_error, mcp_client, start_server

from jupyter_collab_mcp_secure.audit.report_data import parse_when
from jupyter_collab_mcp_secure.cli.main import main

AUDIENCE = "jupyter-mcp"
ISSUER = "https://issuer.example"
SECRET = b"0123456789abcdef0123456789abcdef"
POLICY = "p, role:owner, **, admin, allow\ng, carol, group:reviewers\np, group:reviewers, **, read, allow\n"
NEW_POLICY = POLICY + "g, dave, group:reviewers\n"
# A client names itself: the report must show this as text, never run it.
HOSTILE_CLIENT = "<script>document.title='pwned'</script>"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def jwt_for(user: str) -> str:
    now = int(datetime.now(timezone.utc).timestamp())
    claims = {"sub": user, "aud": AUDIENCE, "iss": ISSUER, "exp": now + 300, "iat": now, "azp": "review-bot"}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, out.getvalue()


class Page(HTMLParser):
    """What a reader sees: tables by id (cell texts), timeline buckets, element counts, texts by id."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.buckets: list[dict[str, str]] = []
        self.tags: dict[str, int] = {}
        self.texts: dict[str, str] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._open_ids: list[tuple[str, str]] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "table":
            self._table = attributes.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "g" and "data-calls" in attributes:
            self.buckets.append(attributes)
        if "id" in attributes and tag in ("p", "title"):
            self._open_ids.append((tag, attributes["id"]))
            self.texts[attributes["id"]] = ""
        elif tag == "title" and "<title>" not in self.texts:  # the page's, not the chart's tooltips
            self._open_ids.append((tag, "<title>"))
            self.texts.setdefault("<title>", "")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for _, ident in self._open_ids:
            self.texts[ident] += data

    def rows(self, table: str) -> dict[str, dict[str, str]]:
        header, *body = self.tables[table]
        return {row[0]: dict(zip(header, row)) for row in body}


@pytest.fixture(scope="module")
async def trail(tmp_path_factory):
    from conftest import populate

    workdir = tmp_path_factory.mktemp("report")
    (workdir / "secret").write_bytes(SECRET)
    policy = workdir / "policy.csv"
    policy.write_text(POLICY)
    populate(workdir / "root")
    server = start_server(
        workdir,
        config={
            "CollabMCP": {
                "jwt_secret_file": str(workdir / "secret"),
                "jwt_algorithms": ["HS256"],
                "jwt_audience": AUDIENCE,
                "jwt_issuer": ISSUER,
                "policy_file": str(policy),
            }
        },
    )
    try:
        nb = "notebooks/demo.ipynb"
        async with mcp_client(server, client_name=HOSTILE_CLIENT) as owner:
            cell = (await call(owner, "get_notebook", path=nb))["cells"][0]["id"]
            await call(owner, "update_notebook_cell", path=nb, cell_id=cell, content="x = 22")
            await call(owner, "execute_notebook_cell", path=nb, cell_id=cell)
            await call(owner, "insert_text", path="notes.txt", text="hello ", position=0)
        async with mcp_client(server, jwt_for("carol")) as carol:
            await call(carol, "get_notebook", path=nb)
            assert (await call_error(carol, "update_notebook_cell", path=nb, cell_id=cell, content="0"))[
                "code"
            ] == "forbidden"
            assert (await call_error(carol, "execute_notebook_cell", path=nb, cell_id=cell))["code"] == "forbidden"
        policy.write_text(NEW_POLICY)
        refused = httpx.post(server.mcp_url, headers={"Authorization": "Bearer not-a-token"}, json={}, timeout=30)
        assert refused.status_code == 401
        new_sha = hashlib.sha256(NEW_POLICY.encode()).hexdigest()
        assert await audit_records(server, lambda r: r.get("policy_sha256") == new_sha, 1, timeout=30)
        assert await audit_records(server, lambda r: r["event"] == "auth_failure", 1)
        assert len(await audit_records(server, lambda r: r["event"] == "tool_call", 7)) == 7
        yield server, new_sha
    finally:
        server.stop()


@pytest.fixture(scope="module")
def rendered(trail, tmp_path_factory):
    server, new_sha = trail
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is needed: scripts/run-tests.sh installs Debian's chromium"
    out = tmp_path_factory.mktemp("rendered")
    log = str(server.audit_log)
    code, _ = cli("audit", "report", log, "--since", "7d", "-o", str(out / "report.html"))
    assert code == 0
    browser = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={out / 'profile'}", "--dump-dom", (out / "report.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert browser.returncode == 0, browser.stderr[-3000:]
    summary = json.loads(cli("audit", "summary", log, "--json")[1])
    verify_out = cli("audit", "verify", log)[1]
    records = [json.loads(line) for line in server.audit_log.read_text().splitlines()]
    return {
        "source": (out / "report.html").read_text(),
        "page": Page(browser.stdout),
        "summary": summary,
        "heads": [line.split(": ", 1)[1] for line in verify_out.splitlines() if line.startswith("chain head: ")],
        "new_sha": new_sha,
        "first_ts": next(r["ts"] for r in records if r["event"] not in ("audit_start", "audit_gap")),
        "mode": (out / "report.html").stat().st_mode & 0o777,
    }


def per_user(summary: dict) -> dict[str, dict]:
    """`audit summary --json`, summed over servers when it reports them apart."""
    parts = summary["servers"].values() if "servers" in summary else [summary]
    users: dict[str, dict] = {}
    for part in parts:
        for user, entry in part["users"].items():
            mine = users.setdefault(user, {"calls": 0, "denied": 0, "wrote": 0, "executed": 0, "rate_limited": 0})
            for key in ("calls", "denied", "rate_limited"):
                mine[key] += entry[key]
        for columns in part["paths"].values():
            for column in ("wrote", "executed"):
                for user, count in columns[column].items():
                    users[user][column] += count
    return users


def test_the_chain_verification_opens_the_page(rendered):
    page = rendered["page"]
    assert page.texts["verdict"].startswith("OK")
    chains = page.tables["chains"]
    assert [row[2] for row in chains[1:]] == rendered["heads"]
    # It is the first thing on the page: the verification table comes before every other table.
    assert next(iter(page.tables)) == "chains"
    assert f"records found from {rendered['first_ts']} to " in page.texts["period"]


def test_per_principal_figures_match_audit_summary(rendered):
    rows = rendered["page"].rows("principals")
    summary = per_user(rendered["summary"])
    assert set(rows) == set(summary) == {"owner", "carol"}
    for user, expected in summary.items():
        row = rows[user]
        assert int(row["calls"]) == expected["calls"]
        assert int(row["denials"]) == expected["denied"]
        assert int(row["rate limited"]) == expected["rate_limited"]
        assert int(row["writes"]) == expected["wrote"]
        assert int(row["executions"]) == expected["executed"]
    assert (rows["owner"]["calls"], rows["owner"]["writes"], rows["owner"]["executions"]) == ("4", "2", "1")
    assert rows["owner"]["documents touched"] == "2: notebooks/demo.ipynb, notes.txt"
    assert (rows["carol"]["calls"], rows["carol"]["denials"]) == ("3", "2")


def test_per_agent_figures_and_a_hostile_client_name_is_text(rendered):
    page = rendered["page"]
    agents = page.rows("agents")
    assert agents[f"{HOSTILE_CLIENT} (self-declared)"]["calls"] == "4"
    assert agents["review-bot"]["calls"] == "3"
    # Shown as text; no script element exists and none ran.
    assert page.tags.get("script", 0) == 0
    assert page.texts["<title>"] == "Audit report"
    assert HOSTILE_CLIENT not in rendered["source"]
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in rendered["source"]


def test_the_timeline_counts_every_call_and_denial(rendered):
    buckets = rendered["page"].buckets
    assert buckets and page_totals(buckets) == (7, 2)


def page_totals(buckets):
    return sum(int(b["data-calls"]) for b in buckets), sum(int(b["data-denials"]) for b in buckets)


def test_denials_executions_reloads_and_auth_failures_are_listed(rendered):
    page = rendered["page"]
    header, *failures = page.tables["failures"]
    assert sorted(dict(zip(header, row))["tool"] for row in failures) == [
        "execute_notebook_cell",
        "update_notebook_cell",
    ]
    assert all(dict(zip(header, row))["user"] == "carol" for row in failures)
    header, *executions = page.tables["executions"]
    (run,) = [dict(zip(header, row)) for row in executions]
    assert run["user"] == "owner" and run["outcome"] == "ok" and run["ended"] != "-"
    assert run["paths"] == "notebooks/demo.ipynb"
    header, *reloads = page.tables["reloads"]
    assert rendered["new_sha"] in [dict(zip(header, row))["policy sha256"] for row in reloads]
    assert len(page.tables["auth-failures"]) == 2


def test_self_contained_and_private(rendered):
    source = rendered["source"]
    for fetching in ("<script", "<link", "src=", "href=", "url(", "@import", "http://", "https://www"):
        assert fetching not in source
    assert "default-src 'none'" in source
    assert rendered["mode"] == 0o600


def test_a_tampered_trail_is_reported_broken_at_the_top(trail, tmp_path):
    server, _ = trail
    lines = server.audit_log.read_text().splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if '"user":"carol"' in line)
    lines[target] = lines[target].replace('"user":"carol"', '"user":"carel"')
    tampered = tmp_path / "audit.jsonl"
    tampered.write_text("".join(lines))
    code, source = cli("audit", "report", str(tampered))
    assert code == 1
    page = Page(source)
    assert page.texts["verdict"].startswith(f"BROKEN: {tampered} line {target + 1}: ")
    assert next(iter(page.tables)) == "chains"


def test_the_period_filters_every_section(trail):
    server, _ = trail
    code, source = cli("audit", "report", str(server.audit_log), "--since", "2999-01-01")
    assert code == 0
    page = Page(source)
    assert "principals" not in page.tables and "failures" not in page.tables and not page.buckets
    assert "2999-01-01T00:00:00Z" in page.texts["period"]


def test_relative_times():
    now = datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)
    assert parse_when("7d", now) == datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_when("90m", now) == datetime(2026, 3, 8, 10, 30, tzinfo=timezone.utc)
    assert parse_when("2026-03-01", now) == datetime(2026, 3, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        parse_when("7 days", now)


def test_unreadable_files_exit_2(tmp_path):
    assert cli("audit", "report", str(Path(tmp_path / "missing.jsonl")))[0] == 2


def test_every_caller_field_is_text(tmp_path):
    hostile = {
        "event": "tool_call",
        "ts": "2026-03-01T10:00:00Z",
        "user": "mallory\u202egnp.exe",
        "declared_client": '"><img src=x onerror=alert(1)>',
        "tool": "update_document",
        "action": "write",
        "paths": ["a/</td><script>alert(2)</script>.txt"],
        "decision": "deny",
        "outcome": "denied",
        "error_code": "forbidden",
        "request_id": "r1",
    }
    trail = tmp_path / "audit.jsonl"
    trail.write_text(json.dumps(hostile) + "\n" + json.dumps({**hostile, "paths": "not a list"}) + "\n")
    code, source = cli("audit", "report", str(trail))
    assert code == 1  # not a chain: said at the top, the records are still shown
    page = Page(source)
    assert page.tags.get("script", 0) == page.tags.get("img", 0) == 0
    assert "<script>" not in source and "<img" not in source and "\u202e" not in source
    assert page.rows("principals")["mallory\\u202egnp.exe"]["denials"] == "2"
    assert page.tables["failures"][1][6] == "a/</td><script>alert(2)</script>.txt"
    assert page.rows("agents")['"><img src=x onerror=alert(1)> (self-declared)']["calls"] == "2"


def test_refusals_outside_the_tools_are_listed_apart(tmp_path):
    base = {"ts": "2026-03-01T10:00:00Z", "user": "carol", "auth": "jupyter", "decision": "deny", "outcome": "denied"}
    trail = tmp_path / "audit.jsonl"
    records = [
        {**base, "event": "request_denied", "resource": "contents", "action": "write", "paths": ["a.ipynb"]},
        {**base, "event": "rtc_update_dropped", "action": "write", "paths": ["b.ipynb"], "dropped": 3},
    ]
    trail.write_text("".join(json.dumps(r) + "\n" for r in records))
    page = Page(cli("audit", "report", str(trail))[1])
    header, *rows = page.tables["other-refusals"]
    shown = [dict(zip(header, row)) for row in rows]
    assert [(r["event"], r["paths"], r["updates dropped"]) for r in shown] == [
        ("request_denied", "a.ipynb", "-"),
        ("rtc_update_dropped", "b.ipynb", "3"),
    ]
    # Not tool calls: the per-principal figures stay those of `audit summary`.
    assert "principals" not in page.tables
