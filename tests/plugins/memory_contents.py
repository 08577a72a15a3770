"""A ContentsManager that keeps every file in memory, standing in for a non-local one (S3, a database, a hub's).

It is a complete AsyncContentsManager: models as jupyter_server's file manager
makes them (text or base64 by UTF-8, notebooks validated and signed), hidden
names and `hide_globs` honoured in listings, checkpoints in memory. Nothing
reaches the server's root folder. `seed` fills it at start.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import posixpath
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import nbformat
from jupyter_server.services.contents.checkpoints import AsyncCheckpoints, AsyncGenericCheckpointsMixin
from jupyter_server.services.contents.manager import AsyncContentsManager
from tornado.web import HTTPError
from traitlets import Dict, default


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _norm(path: str) -> str:
    return path.strip("/")


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass
class _File:
    data: bytes
    created: datetime
    last_modified: datetime


class MemoryCheckpoints(AsyncGenericCheckpointsMixin, AsyncCheckpoints):
    """One checkpoint per file, as FileCheckpoints keeps, held in memory."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._saved: dict[str, tuple[dict[str, Any], datetime]] = {}

    def _checkpoint(self, path: str, model: dict[str, Any]) -> dict[str, Any]:
        stamp = _now()
        self._saved[_norm(path)] = (model, stamp)
        return {"id": "checkpoint", "last_modified": stamp}

    async def create_file_checkpoint(self, content: Any, format: str, path: str) -> dict[str, Any]:
        return self._checkpoint(path, {"type": "file", "content": content, "format": format})

    async def create_notebook_checkpoint(self, nb: Any, path: str) -> dict[str, Any]:
        return self._checkpoint(path, {"type": "notebook", "content": nb})

    def _get(self, checkpoint_id: str, path: str) -> dict[str, Any]:
        saved = self._saved.get(_norm(path)) if checkpoint_id == "checkpoint" else None
        if saved is None:
            raise HTTPError(404, f"no checkpoint {checkpoint_id} for {path}")
        return dict(saved[0])

    async def get_file_checkpoint(self, checkpoint_id: str, path: str) -> dict[str, Any]:
        return self._get(checkpoint_id, path)

    async def get_notebook_checkpoint(self, checkpoint_id: str, path: str) -> dict[str, Any]:
        return self._get(checkpoint_id, path)

    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        saved = self._saved.pop(_norm(old_path), None)
        if saved is not None:
            self._saved[_norm(new_path)] = saved

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        if self._saved.pop(_norm(path), None) is None:
            raise HTTPError(404, f"no checkpoint {checkpoint_id} for {path}")

    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        saved = self._saved.get(_norm(path))
        return [] if saved is None else [{"id": "checkpoint", "last_modified": saved[1]}]


class MemoryContentsManager(AsyncContentsManager):
    seed = Dict(
        help="Files to start with: path -> text (a string), notebook (a dict), or bytes ({'base64': '...'})."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._files: dict[str, _File] = {}
        self._dirs: set[str] = {""}
        for path, value in self.seed.items():
            if isinstance(value, dict) and "base64" in value:
                data = base64.b64decode(value["base64"])
            elif isinstance(value, dict):
                data = nbformat.writes(nbformat.from_dict(value)).encode()
            else:
                data = str(value).encode()
            self._store(_norm(path), data)

    @default("checkpoints_class")
    def _default_checkpoints_class(self) -> type:
        return MemoryCheckpoints

    def _make_parents(self, path: str) -> None:
        # Like an object store, folders exist as soon as something is kept below them.
        parent = posixpath.dirname(path)
        while parent not in self._dirs:
            self._dirs.add(parent)
            parent = posixpath.dirname(parent)

    def _store(self, path: str, data: bytes) -> _File:
        self._make_parents(path)
        existing = self._files.get(path)
        stored = _File(data, existing.created if existing else _now(), _now())
        self._files[path] = stored
        return stored

    async def dir_exists(self, path: str) -> bool:
        return _norm(path) in self._dirs

    async def file_exists(self, path: str) -> bool:
        return _norm(path) in self._files

    async def is_hidden(self, path: str) -> bool:
        return any(part.startswith(".") for part in _norm(path).split("/"))

    def _base(self, path: str, kind: str, created: datetime, modified: datetime, size: int | None) -> dict[str, Any]:
        return {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "type": kind,
            "created": created,
            "last_modified": modified,
            "content": None,
            "format": None,
            "mimetype": None,
            "size": size,
            "writable": True,
            "hash": None,
            "hash_algorithm": None,
        }

    async def get(
        self,
        path: str,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        require_hash: bool = False,
    ) -> dict[str, Any]:
        path = _norm(path)
        if not self.allow_hidden and await self.is_hidden(path):
            raise HTTPError(404, f"no file or directory at {path!r}")
        if path in self._dirs:
            if type not in (None, "directory"):
                raise HTTPError(400, f"{path!r} is a directory, not a {type}")
            return self._dir_model(path, content)
        stored = self._files.get(path)
        if stored is None:
            raise HTTPError(404, f"no file or directory at {path!r}")
        if type == "directory":
            raise HTTPError(400, f"{path!r} is not a directory")
        kind = type or ("notebook" if path.endswith(".ipynb") else "file")
        model = self._base(path, kind, stored.created, stored.last_modified, len(stored.data))
        if require_hash:
            model.update(hash=hashlib.sha256(stored.data).hexdigest(), hash_algorithm="sha256")
        if kind == "notebook":
            if content:
                nb = nbformat.reads(stored.data.decode(), as_version=4)
                self.mark_trusted_cells(nb, path)
                model.update(content=nb, format="json")
                self.validate_notebook_model(model)
            return model
        model["mimetype"] = mimetypes.guess_type(path)[0]
        if content:
            text = None if format == "base64" else _utf8(stored.data)
            if text is not None:
                model.update(content=text, format="text", mimetype=model["mimetype"] or "text/plain")
            elif format == "text":
                raise HTTPError(400, f"{path!r} is not UTF-8 encoded")
            else:
                model.update(
                    content=base64.b64encode(stored.data).decode("ascii"),
                    format="base64",
                    mimetype=model["mimetype"] or "application/octet-stream",
                )
        return model

    def _dir_model(self, path: str, content: bool) -> dict[str, Any]:
        model = self._base(path, "directory", _now(), _now(), None)
        if not content:
            return model
        prefix = f"{path}/" if path else ""
        listing = []
        for child in sorted({*self._dirs, *self._files} - {""}):
            if not child.startswith(prefix) or "/" in child[len(prefix) :]:
                continue
            name = child[len(prefix) :]
            if not self.should_list(name) or (not self.allow_hidden and name.startswith(".")):
                continue
            if child in self._dirs:
                listing.append(self._base(child, "directory", _now(), _now(), None))
            else:
                stored = self._files[child]
                kind = "notebook" if child.endswith(".ipynb") else "file"
                listing.append(self._base(child, kind, stored.created, stored.last_modified, len(stored.data)))
        model.update(content=listing, format="json")
        return model

    async def save(self, model: dict[str, Any], path: str) -> dict[str, Any]:
        path = _norm(path)
        if "type" not in model:
            raise HTTPError(400, "No file type provided")
        if model["type"] != "directory" and "content" not in model:
            raise HTTPError(400, "No file content provided")
        self.run_pre_save_hooks(model=model, path=path)
        if model["type"] == "directory":
            self._dirs.add(path)
        elif model["type"] == "notebook":
            nb = nbformat.from_dict(model["content"])
            self.check_and_sign(nb, path)
            self._store(path, nbformat.writes(nb).encode())
        elif model.get("format") == "base64":
            self._store(path, base64.b64decode(model["content"]))
        else:
            self._store(path, str(model["content"]).encode("utf-8"))
        self.emit(data={"action": "save", "path": path})
        return await self.get(path, content=False)

    async def delete_file(self, path: str) -> None:
        path = _norm(path)
        if path in self._files:
            del self._files[path]
        elif path in self._dirs:
            inside = f"{path}/"
            self._dirs = {d for d in self._dirs if d != path and not d.startswith(inside)}
            self._files = {f: v for f, v in self._files.items() if not f.startswith(inside)}
        else:
            raise HTTPError(404, f"no file or directory at {path!r}")

    async def rename_file(self, old_path: str, new_path: str) -> None:
        old_path, new_path = _norm(old_path), _norm(new_path)
        if new_path in self._files or new_path in self._dirs:
            raise HTTPError(409, f"{new_path!r} already exists")
        if old_path in self._files:
            self._make_parents(new_path)
            self._files[new_path] = self._files.pop(old_path)
            return
        if old_path not in self._dirs:
            raise HTTPError(404, f"no file or directory at {old_path!r}")
        inside = f"{old_path}/"

        def moved(item: str) -> str:
            return new_path + item[len(old_path) :] if item == old_path or item.startswith(inside) else item

        self._dirs = {moved(d) for d in self._dirs}
        self._files = {moved(f): v for f, v in self._files.items()}
