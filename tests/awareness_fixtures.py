"""Helpers for the awareness and resumability tests: JupyterLab's global awareness peer, JWT principals, raw SSE."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import websockets
from harness import AwarenessPeer, JupyterServer
from pycrdt import Awareness, YMessageType

GLOBAL_ROOM = "JupyterLab:globalAwareness"
AUDIENCE = "collab-mcp-tests"
SECRET = "awareness-tests-shared-secret-0123456789"
LEGACY_VERSION = "2025-11-25"


def user_state(username: str, display_name: str, **extra: Any) -> dict[str, Any]:
    """The awareness fields JupyterLab sets for a person."""
    initials = "".join(part[:1] for part in display_name.split())[:2].upper()
    return {
        "user": {
            "username": username,
            "name": display_name,
            "display_name": display_name,
            "initials": initials,
            "color": "var(--jp-collaborator-color1)",
            "avatar_url": None,
        },
        **extra,
    }


class GlobalAwarenessPeer(AwarenessPeer):
    """A JupyterLab tab's connection to the global awareness room (the Collaborators panel's source)."""

    def __init__(self, websocket: Any) -> None:
        super().__init__(websocket)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def join(cls, server: JupyterServer) -> AsyncIterator[GlobalAwarenessPeer]:
        url = f"{server.ws_url}api/collaboration/room/{GLOBAL_ROOM}"
        async with websockets.connect(url, additional_headers=server.headers(), max_size=None) as websocket:
            peer = cls(websocket)
            peer._task = asyncio.create_task(peer._receive())
            try:
                yield peer
            finally:
                peer._task.cancel()

    async def _receive(self) -> None:
        async for message in self.websocket:
            message = bytes(message)
            if message[0] == YMessageType.AWARENESS:
                self.receive_awareness(message)


def agent_states(awareness: Awareness) -> dict[int, dict[str, Any]]:
    """Awareness states of agents, by client id."""
    return {
        client_id: state
        for client_id, state in awareness.states.items()
        if isinstance(state, dict) and isinstance(state.get("user"), dict) and state["user"].get("is_agent")
    }


def agent_named(awareness: Awareness, fragment: str) -> dict[str, Any] | None:
    for state in agent_states(awareness).values():
        if fragment in state["user"]["display_name"]:
            return state
    return None


def jwt_config(workdir: Path, policy_lines: list[str], **collab: Any) -> dict[str, Any]:
    """Server config accepting HS256 JWTs for this test's principals, with its own policy."""
    workdir.mkdir(parents=True, exist_ok=True)
    secret_file = workdir / "jwt.secret"
    secret_file.write_text(SECRET)
    policy_file = workdir / "policy.csv"
    policy_file.write_text("\n".join(["p, role:owner, **, admin, allow", *policy_lines]) + "\n")
    return {
        "CollabMCP": {
            "jwt_secret_file": str(secret_file),
            "jwt_audience": AUDIENCE,
            "jwt_algorithms": ["HS256"],
            "policy_file": str(policy_file),
            **collab,
        }
    }


def token_for(user: str, agent: str) -> str:
    claims = {"sub": user, "aud": AUDIENCE, "exp": int(time.time()) + 3600, "azp": agent}
    return jwt.encode(claims, SECRET, algorithm="HS256")


# --- raw StreamableHTTP (initialize-handshake era), for cutting streams by hand ----------------


def sse_events(text: str) -> list[dict[str, str]]:
    events, current = [], {}
    for line in text.splitlines():
        if not line:
            if current:
                events.append(current)
            current = {}
            continue
        field, _, value = line.partition(":")
        current[field] = value.removeprefix(" ")
    if current:
        events.append(current)
    return events


class RawSession:
    """One MCP session driven with plain httpx, so a test can drop a stream mid-call."""

    def __init__(self, server: JupyterServer, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.server = server
        self.http = http
        self.token = token or server.token
        self.session_id: str | None = None
        self._ids = iter(range(1, 1_000_000))

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": LEGACY_VERSION,
            **extra,
        }
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        return headers

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}

    async def open(self) -> None:
        body = self.request(
            "initialize",
            {
                "protocolVersion": LEGACY_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "raw-resumer", "version": "1"},
            },
        )
        response = await self.http.post(self.server.mcp_url, json=body, headers=self.headers())
        response.raise_for_status()
        self.session_id = response.headers["mcp-session-id"]
        notified = await self.http.post(
            self.server.mcp_url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=self.headers(),
        )
        assert notified.status_code == 202, notified.text

    async def call_and_cut(self, tool: str, arguments: dict[str, Any]) -> tuple[int, str]:
        """Start a tools/call, read only the priming event's id, then drop the connection."""
        body = self.request("tools/call", {"name": tool, "arguments": arguments})
        async with self.http.stream("POST", self.server.mcp_url, json=body, headers=self.headers()) as response:
            assert response.status_code == 200
            buffer = ""
            async for chunk in response.aiter_text():
                buffer += chunk.replace("\r\n", "\n")
                ids = [event["id"] for event in sse_events(buffer) if event.get("id")]
                if ids and "\n\n" in buffer:
                    return body["id"], ids[0]
        raise AssertionError("the stream ended before its priming event")

    async def resume(self, last_event_id: str) -> list[dict[str, Any]]:
        """GET with Last-Event-ID; the JSON-RPC messages replayed (the stream ends after a response)."""
        headers = self.headers(**{"Last-Event-ID": last_event_id})
        messages: list[dict[str, Any]] = []
        async with self.http.stream("GET", self.server.mcp_url, headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            buffer = ""
            async for chunk in response.aiter_text():
                buffer += chunk.replace("\r\n", "\n")
                complete, _, buffer = buffer.rpartition("\n\n")
                for event in sse_events(complete):
                    if event.get("data"):
                        message = json.loads(event["data"])
                        messages.append(message)
                        if "result" in message or "error" in message:
                            return messages
        return messages
