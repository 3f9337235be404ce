"""Run an aiohttp application on its own event loop in a background thread.

The adapter's Kafka loop is blocking (confluent-kafka), so the HTTP side gets a thread of
its own rather than the other way round; the simulated agencies reuse the same helper.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable

from aiohttp import web

from arrears.errors import ArrearsError

log = logging.getLogger(__name__)


class BackgroundServer:
    """An aiohttp app served from a daemon thread; ``port=0`` picks a free port."""

    def __init__(
        self, app_factory: Callable[[], web.Application], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._factory = app_factory
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104 - a client address
        return f"http://{host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("server not started")
        return self._loop

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._thread = threading.Thread(target=self._run, name=f"http-{self.port}", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise ArrearsError(f"HTTP server on {self.host}:{self.port} did not start within {timeout:.0f}s")
        if self._error is not None:
            raise ArrearsError(
                f"cannot serve HTTP on {self.host}:{self.port}: {self._error}"
            ) from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(self._cleanup())
        loop.close()

    async def _serve(self) -> None:
        # Bind the socket ourselves so that port 0 tells us which port it got.
        sock = socket.create_server((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        # In-flight requests get a moment to finish on stop; a stuck one must not hold it up.
        self._runner = web.AppRunner(
            self._factory(), access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
