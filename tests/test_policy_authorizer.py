"""The server-wide Authorizer: which path and action each kind of request needs, and RTC update dropping.

Handlers are real jupyter_server / jupyter_server_ydoc classes created without a
tornado connection; only the attributes the Authorizer reads are set.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from jupyter_server.auth.identity import User
from jupyter_server.services.contents.handlers import ContentsHandler
from jupyter_server.services.kernels.handlers import MainKernelHandler
from jupyter_server_ydoc import handlers as ydoc
from policy_fixtures import MODEL, principal

from jupyter_collab_mcp_secure.policy.authorizer import PolicyAuthorizer
from jupyter_collab_mcp_secure.policy.engine import PolicyEngine
from jupyter_collab_mcp_secure.policy.rooms import CONTENTS_EVENTS

POLICY = (
    "p, role:owner, **, admin, allow\n"
    "p, group:team, shared/**, write, allow\n"
    "p, group:team, , read, allow\n"
    "p, carol, **, read, allow\n"
    "p, runner, , execute, allow\n"
)
FILE_IDS = {"id-shared": "shared/a.ipynb", "id-private": "private/b.ipynb"}


class Trail:
    def __init__(self):
        self.records = []

    def policy_reload(self, **fields):
        pass

    def record(self, event):
        self.records.append(event)


@pytest.fixture
def trail():
    return Trail()


@pytest.fixture
def authorizer(tmp_path, trail):
    policy = tmp_path / "p.csv"
    policy.write_text(POLICY)
    root = tmp_path / "root"
    root.mkdir()
    engine = PolicyEngine(MODEL, policy, audit_trail=trail)
    people = {
        "erin": principal("erin", groups=("team",)),
        "carol": principal("carol"),
        "runner": principal("runner"),
        "me": principal("me", owner=True),
        "nobody": principal("nobody"),
    }
    return PolicyAuthorizer(
        engine=engine,
        identity_resolver=lambda handler, user: people.get(user.username),
        root=root.resolve(),
    )


def handler(cls, method="GET", path="/", args=(), kwargs=None, body=b""):
    instance = cls.__new__(cls)
    instance.request = SimpleNamespace(method=method, path=path, body=body)
    instance.path_args = list(args)
    instance.path_kwargs = kwargs or {}
    instance.application = SimpleNamespace(settings={"file_id_manager": SimpleNamespace(get_path=FILE_IDS.get)})
    return instance


async def allowed(authorizer, who, request, action, resource):
    return await authorizer.is_authorized(request, User(who), action, resource)


async def test_contents_per_path(authorizer):
    def contents(method, path, body=b""):
        return handler(ContentsHandler, method, kwargs={"path": path}, body=body)

    assert await allowed(authorizer, "erin", contents("GET", "/shared/a.ipynb"), "read", "contents")
    assert await allowed(authorizer, "erin", contents("PUT", "/shared/a.ipynb"), "write", "contents")
    assert await allowed(authorizer, "erin", contents("GET", ""), "read", "contents")  # the root listing
    assert not await allowed(authorizer, "erin", contents("GET", "/private/b.ipynb"), "read", "contents")
    assert not await allowed(
        authorizer,
        "erin",
        contents("GET", "/shared/../private/b.ipynb"),
        "read",
        "contents",
    )
    assert not await allowed(authorizer, "carol", contents("PUT", "/shared/a.ipynb"), "write", "contents")
    assert not await allowed(authorizer, "stranger", contents("GET", "/shared/a.ipynb"), "read", "contents")


async def test_copy_and_rename_check_the_second_path(authorizer):
    copy = handler(
        ContentsHandler,
        "POST",
        kwargs={"path": "/shared"},
        body=b'{"copy_from": "private/b.ipynb"}',
    )
    assert not await allowed(authorizer, "erin", copy, "write", "contents")
    rename = handler(
        ContentsHandler,
        "PATCH",
        kwargs={"path": "/shared/a.ipynb"},
        body=b'{"path": "private/a.ipynb"}',
    )
    assert not await allowed(authorizer, "erin", rename, "write", "contents")
    inside = handler(
        ContentsHandler,
        "PATCH",
        kwargs={"path": "/shared/a.ipynb"},
        body=b'{"path": "shared/c.ipynb"}',
    )
    assert await allowed(authorizer, "erin", inside, "write", "contents")


async def test_kernels_need_execute_on_the_root(authorizer):
    kernels = handler(MainKernelHandler, "POST")
    assert await allowed(authorizer, "runner", kernels, "write", "kernels")
    assert not await allowed(authorizer, "erin", kernels, "write", "kernels")
    assert not await allowed(authorizer, "carol", kernels, "read", "sessions")
    assert not await allowed(authorizer, "erin", kernels, "execute", "terminals")
    assert await allowed(authorizer, "me", kernels, "execute", "terminals")


async def test_room_websocket_needs_read_on_its_document(authorizer):
    def room(room_id):
        return handler(
            ydoc.YDocWebSocketHandler,
            path=f"/api/collaboration/room/{room_id}",
            args=[room_id],
        )

    assert await allowed(authorizer, "erin", room("json:notebook:id-shared"), "read", "contents")
    assert not await allowed(authorizer, "erin", room("json:notebook:id-private"), "read", "contents")
    assert not await allowed(authorizer, "erin", room("json:notebook:unknown"), "read", "contents")
    assert await allowed(authorizer, "erin", room("JupyterLab:globalAwareness"), "read", "contents")
    assert not await allowed(authorizer, "nobody", room("JupyterLab:globalAwareness"), "read", "contents")


async def test_forks_need_admin_and_sessions_read(authorizer):
    fork = handler(ydoc.DocForkHandler, "PUT", args=["json:notebook:id-shared"])
    assert not await allowed(authorizer, "erin", fork, "write", "contents")
    assert await allowed(authorizer, "me", fork, "write", "contents")
    session = handler(ydoc.DocSessionHandler, "PUT", args=["shared/a.ipynb"])
    assert await allowed(authorizer, "carol", session, "write", "contents")  # opening is reading


async def test_read_only_connection_keeps_awareness_and_loses_updates(authorizer, trail):
    room_id = "json:notebook:id-shared"
    delivered = []

    async def deliver(message):
        delivered.append(message)

    connection = handler(
        ydoc.YDocWebSocketHandler,
        path=f"/api/collaboration/room/{room_id}",
        args=[room_id],
    )
    connection.on_message = deliver
    assert await allowed(authorizer, "carol", connection, "read", "contents")
    awareness, sync_request, sync_reply, update = (
        b"\x01\x05abcde",
        b"\x00\x00\x01\x00",
        b"\x00\x01\x02xy",
        b"\x00\x02\x02xy",
    )
    for message in (awareness, sync_request, sync_reply, update, b"\x02\x04save"):
        await connection.on_message(message)
    assert delivered == [awareness, sync_request]
    assert trail.records[0]["event"] == "rtc_update_dropped"
    assert trail.records[0]["user"] == "carol" and trail.records[0]["paths"] == ["shared/a.ipynb"]

    writer = handler(
        ydoc.YDocWebSocketHandler,
        path=f"/api/collaboration/room/{room_id}",
        args=[room_id],
    )
    writer.on_message = deliver
    assert await allowed(authorizer, "erin", writer, "read", "contents")
    await writer.on_message(update)
    assert delivered[-1] == update


async def test_a_connection_is_re_decided_when_its_folder_moves(authorizer, trail):
    sent, closed = [], []

    async def send(message):
        sent.append(message)

    async def deliver(message):
        pass

    connection = handler(
        ydoc.YDocWebSocketHandler,
        path="/api/collaboration/room/json:notebook:id-shared",
        args=["json:notebook:id-shared"],
    )
    connection.on_message, connection.send = deliver, send
    connection.close = lambda code, reason: closed.append(code)
    assert await allowed(authorizer, "erin", connection, "read", "contents")
    await connection.send(b"\x00\x02\x02xy")
    rename = {"action": "rename", "source_path": "/other", "path": "/private"}
    await authorizer.rooms.on_contents_event(logger=None, schema_id=CONTENTS_EVENTS, data=rename)
    assert closed == []
    rename = {"action": "rename", "source_path": "/shared", "path": "/private/shared"}
    await authorizer.rooms.on_contents_event(logger=None, schema_id=CONTENTS_EVENTS, data=rename)
    assert closed == [4403]
    # Nothing more goes out to it, even if the room broadcasts before the close completes.
    await connection.send(b"\x00\x02\x02zz")
    assert sent == [b"\x00\x02\x02xy"]
    assert trail.records[-1]["event"] == "rtc_connection_closed"
    assert trail.records[-1]["paths"] == ["private/shared/a.ipynb"]
