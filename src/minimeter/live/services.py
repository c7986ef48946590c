"""The asyncio side of a running meter or fleet: the web app and the Modbus servers on an
event loop of their own thread, while the meter (or the fleet's loop) keeps the main one.
``minimeter run`` and ``minimeter fleet serve`` both start their servers here."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from email.utils import formatdate
from typing import Any, Iterable

from minimeter.errors import MinimeterError

START_TIMEOUT_S = 10.0


def quiet_server(server_class):
    """uvicorn's Server, its main loop asleep until told to stop, not waking ten times a
    second: an idle panel costs nothing worth measuring (issue 12). uvicorn's loop wakes
    only to refresh the Date header of its responses; the server runs without it
    (``date_header=False``) and :func:`dated` stamps each response as it is sent."""

    class QuietServer(server_class):
        _wake: asyncio.Future | None = None

        async def main_loop(self) -> None:
            loop = asyncio.get_running_loop()
            while not await self.on_tick(0):
                self._wake = loop.create_future()
                await self._wake

        def wake(self) -> None:
            """(on its loop) Look at ``should_exit`` now."""
            if self._wake is not None and not self._wake.done():
                self._wake.set_result(None)

    return QuietServer


def dated(app):
    """The ASGI ``app`` with a Date header (RFC 9110 §6.6.1) on every HTTP response, the
    time it is sent."""

    async def stamped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_dated(message):
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"date"]
                message = {**message, "headers": [*headers, (b"date", formatdate(usegmt=True).encode())]}
            await send(message)

        return await app(scope, receive, send_dated)

    return stamped


class Services:
    """One event loop on its own thread serving a web app and any Modbus servers."""

    def __init__(self, name: str = "minimeter-services") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()
        self.web: Any = None
        self.web_app: Any = None
        self.modbus: list = []
        self._futures: list = []

    def start_web(self, app, host: str, port: int, *, lifespan: str = "on", what: str = "the web panel",
                  error: type[MinimeterError] = MinimeterError) -> int:
        """Serve ``app``; returns the port bound (``port`` 0: a free one). ``error`` with
        ``what`` if it does not start within 10 s."""
        import uvicorn  # noqa: PLC0415 - only when serving

        config = uvicorn.Config(dated(app), host=host, port=port, log_level="warning", lifespan=lifespan,
                                timeout_graceful_shutdown=1, access_log=False, date_header=False)
        self.web = quiet_server(uvicorn.Server)(config)
        self.web_app = app
        self._futures.append(asyncio.run_coroutine_threadsafe(self.web.serve(), self.loop))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.web.started:
            if self._futures[-1].done() or time.monotonic() > deadline:
                raise error(f"{what} could not start on {host}:{port} — choose another --port")
            time.sleep(0.02)
        return self.web.servers[0].sockets[0].getsockname()[1]

    def start_modbus(self, server, *, error: type[MinimeterError] = MinimeterError) -> None:
        """Serve a :class:`~minimeter.live.modbus.SunSpecServer`; ``error`` if it does not start."""
        self.modbus.append(server)
        self._futures.append(asyncio.run_coroutine_threadsafe(server.serve(), self.loop))
        if not server.wait_ready(START_TIMEOUT_S):
            raise error(f"Modbus could not start on {server.host}:{server.port} — choose another --modbus-port")

    def stop(self, apps: Iterable[Any] | None = None) -> None:
        """Stop every server (best effort) and the loop. ``apps``: the web apps whose event
        streams to end (their ``state.stopping``; default: the app served)."""
        if self.web is not None:
            for app in (apps if apps is not None else (self.web_app,)):
                self.loop.call_soon_threadsafe(app.state.stopping.set)
            self.web.should_exit = True
            self.loop.call_soon_threadsafe(self.web.wake)
        stopping = [asyncio.run_coroutine_threadsafe(server.stop(), self.loop) for server in self.modbus]
        for fut in stopping + self._futures:
            with contextlib.suppress(Exception):          # a server that failed has said so already
                fut.result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
