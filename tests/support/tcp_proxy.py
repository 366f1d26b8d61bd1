"""A TCP proxy that can be cut and restored: the broker "unreachable" without losing it.

Tansu keeps topics in memory, so stopping it would lose everything. Instead the
broker advertises this proxy's address, every client goes through it, and
`cut()` closes every open connection and refuses new ones until `restore()`.
The proxy runs its own event loop in a thread, so it keeps working whatever the
test's loop (or a blocking call in it) is doing.
"""
from __future__ import annotations

import asyncio
import threading

from warden.embedded import free_port


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int, listen_port: int | None = None):
        self.target = (target_host, target_port)
        self.port = listen_port or free_port()
        self.connected = True
        self.refused = 0  # connections turned away while cut
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> CuttableProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            self._drop_all()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut(self) -> None:
        """Every connection dropped now, and every new one refused, until `restore()`."""
        def do() -> None:
            self.connected = False
            self._drop_all()
        self._loop.call_soon_threadsafe(do)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "connected", True)

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self.connected:
            self.refused += 1
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, upstream_writer))
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        self._writers.discard(client_writer)
        self._writers.discard(upstream_writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while self.connected:
                chunk = await reader.read(65536)
                if not chunk or not self.connected:
                    break
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
