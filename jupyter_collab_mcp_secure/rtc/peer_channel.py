"""An in-process collaborator: pycrdt-websocket's channel protocol over a queue.

The room serves it exactly as it serves a browser's websocket, so the agent
gets its own awareness client id and its state reaches every peer. The room
does not push awareness to late joiners, so the channel watches the awareness
traffic it receives and reports clients it has not seen yet (not the server's
other agent peers: they need no re-broadcast, and reacting to each other made
every agent join cost a message from every agent already there). Updates under
its own client id are reported too: someone else may be posing as the agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pycrdt import Decoder, YMessageType, read_message

log = logging.getLogger(__name__)


class PeerChannel:
    def __init__(
        self,
        room_id: str,
        own_client_id: int,
        on_newcomer: Callable[[], None],
        *,
        is_own: Callable[[int], bool] = lambda client_id: False,
        on_own: Callable[[int, str], None] = lambda clock, state: None,
    ) -> None:
        self.path = room_id  # pycrdt-websocket names the room by the channel's path
        self.own_client_id = own_client_id
        self.on_newcomer = on_newcomer
        self.is_own = is_own
        self.on_own = on_own
        self._outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._seen: set[int] = set()
        self.closed = False

    def __aiter__(self) -> PeerChannel:
        return self

    async def __anext__(self) -> bytes:
        message = await self._outgoing.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def recv(self) -> bytes:
        return await self.__anext__()

    async def send(self, message: bytes) -> None:
        """What the room sends this peer; only awareness matters (document updates are the room's own)."""
        if not message or message[0] != YMessageType.AWARENESS:
            return
        try:
            newcomer = self._note_clients(read_message(message[1:]))
        except Exception:
            log.debug("ignored a malformed awareness message in room %s", self.path, exc_info=True)
            return
        if newcomer:
            self.on_newcomer()

    def _note_clients(self, update: bytes) -> bool:
        decoder = Decoder(update)
        newcomer = False
        for _ in range(decoder.read_var_uint()):
            client_id = decoder.read_var_uint()
            clock = decoder.read_var_uint()
            state = decoder.read_var_string()
            if client_id == self.own_client_id:
                self.on_own(clock, state)
                continue
            if self.is_own(client_id):
                continue
            if not state or state == "null":
                self._seen.discard(client_id)
            elif client_id not in self._seen:
                self._seen.add(client_id)
                newcomer = True
        return newcomer

    def say(self, message: bytes) -> None:
        if not self.closed:
            self._outgoing.put_nowait(message)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._outgoing.put_nowait(None)
