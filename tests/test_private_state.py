"""The extension's state (history store, attribution database) is private: 0600 files in a 0700 folder."""

from __future__ import annotations

import stat
from pathlib import Path

from jupyter_collab_mcp_secure.identity.principal import Principal
from jupyter_collab_mcp_secure.rtc.attribution import AttributionLog
from jupyter_collab_mcp_secure.rtc.ystore import CollabYStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_attribution_database_and_its_wal_are_private(tmp_path):
    database = tmp_path / "state" / "attribution.sqlite"
    log = AttributionLog(database)
    await log.record(file_id="f1", started=1.0, principal=Principal(user="alice", auth="jwt", realm="r"), tool="t")
    await log.close()
    assert mode(database.parent) == 0o700
    files = [p for p in database.parent.iterdir() if p.name.startswith("attribution.sqlite")]
    assert files and all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}


def test_history_store_is_private_and_an_old_world_readable_one_is_tightened(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    database = state / "ystore.sqlite"
    database.write_bytes(b"")
    database.chmod(0o644)
    store_class = type("Bound", (CollabYStore,), {"location": str(database)})
    assert store_class(path=".file:x.y").db_path == str(database)
    assert mode(database) == 0o600 and mode(state) == 0o700


def test_a_shared_folder_is_never_tightened(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    store_class = type("Bound", (CollabYStore,), {"location": str(shared / "ystore.sqlite")})
    store_class(path=".file:x.y").db_path  # noqa: B018
    assert mode(shared) == 0o1777 and mode(shared / "ystore.sqlite") == 0o600
