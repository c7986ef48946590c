"""The web front panel of a live meter: a Starlette (ASGI) app served by uvicorn.

Routes
------
``GET /``                    the panel (static page: LCD, LEDs, outputs, power, chart,
                             event log, trainer controls)
``GET /api/state``           the latest :class:`~minimeter.live.Snapshot` as JSON
``GET /api/stream``          server-sent events: one snapshot per update (~10 Hz)
``GET /api/history``         power per element, once a simulated minute, last hours
``GET /api/events``          the event log (latest first is the page's business)
``GET /api/faults``          the wiring faults that can be injected
``POST /api/loads``          add a load ``{"load": "1500@L1,pf=0.9lag"}``      (controls)
``DELETE /api/loads/{i}``    remove load number ``i``                          (controls)
``POST /api/faults``         inject ``{"kind": "ct-reversed", "params": {"ct": "CT2"}}`` (controls)
``DELETE /api/faults``       remove every injected fault                       (controls)
``GET /metrics``             Prometheus text format (:mod:`minimeter.live.metrics`)

Controls need the token (``Authorization: Bearer …`` or ``X-Minimeter-Token``) when
one is set — :func:`create_app` is given one whenever the server binds an address other
than loopback. Nothing anywhere writes, presets or resets the register.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
from pathlib import Path
from typing import Any

import click
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from minimeter.errors import MinimeterError
from minimeter.live.runner import LiveMeter, fault_kinds
from minimeter.live.metrics import CONTENT_TYPE, make_registry, metrics_text

STATIC = Path(__file__).parent / "static"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
STREAM_PERIOD_S = 0.1


def _clean(value: Any) -> Any:
    """JSON without NaN (browsers' JSON.parse refuses it)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _json(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(_clean(data), status_code=status_code)


def create_app(live: LiveMeter, *, token: str | None = None) -> Starlette:
    """The panel's ASGI app for ``live``; controls need ``token`` when it is not None."""
    registry = make_registry(lambda: live.latest)
    stopping = asyncio.Event()

    def authorised(request: Request) -> bool:
        if token is None:
            return True
        given = request.headers.get("x-minimeter-token", "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), token.encode())

    async def control(request: Request, action) -> JSONResponse:
        if not authorised(request):
            return _json({"error": "this meter is served beyond localhost: controls need its token"}, 401)
        try:
            body = await request.json() if request.method == "POST" else {}
        except json.JSONDecodeError:
            return _json({"error": "the request body must be JSON"}, 400)
        if not isinstance(body, dict):
            return _json({"error": "the request body must be a JSON object"}, 400)
        try:
            action(body)
        except (MinimeterError, click.BadParameter, TypeError, ValueError) as exc:
            message = exc.format_message() if isinstance(exc, click.BadParameter) else str(exc)
            return _json({"error": message}, 400)
        return _json({"ok": True, "loads": list(live.loads_text()), "faults": list(live.latest.faults)})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> JSONResponse:
        data = live.latest.as_dict()
        data["token_required"] = token is not None
        return _json(data)

    async def stream(request: Request) -> StreamingResponse:
        async def events():
            seq = -1
            yield "retry: 1000\n\n"
            while not stopping.is_set():
                snap = live.latest
                if snap.seq != seq:
                    seq = snap.seq
                    yield f"data: {json.dumps(_clean(snap.as_dict()))}\n\n"
                if await request.is_disconnected():
                    break
                try:
                    await asyncio.wait_for(stopping.wait(), STREAM_PERIOD_S)
                except asyncio.TimeoutError:
                    pass

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def history(request: Request) -> JSONResponse:
        return _json([{"time_s": t, "power_w": list(p)} for t, p in live.history()])

    async def events_log(request: Request) -> JSONResponse:
        return _json([{"time_s": e.time_s, "kind": e.kind, "active": e.active, "element": e.element,
                       "value": e.value, "message": e.message} for e in live.events()])

    async def faults(request: Request) -> JSONResponse:
        return _json({"kinds": list(fault_kinds()), "active": list(live.latest.faults)})

    async def add_load(request: Request) -> JSONResponse:
        from minimeter.cli._args import parse_load  # noqa: PLC0415

        def act(body):
            text = body.get("load")
            if not isinstance(text, str) or not text.strip():
                raise ValueError('give the load as {"load": "1500@L1,pf=0.9lag"}')
            live.add_load(parse_load(text.strip()))
            live.publish()
        return await control(request, act)

    async def remove_load(request: Request) -> JSONResponse:
        def act(body):
            live.remove_load(int(request.path_params["index"]))
            live.publish()
        return await control(request, act)

    async def inject_fault(request: Request) -> JSONResponse:
        def act(body):
            kind = body.get("kind")
            params = body.get("params") or {}
            if not isinstance(kind, str) or not isinstance(params, dict):
                raise ValueError('give the fault as {"kind": "ct-reversed", "params": {"ct": "CT2"}}')
            live.inject_fault(kind, **{str(k): v for k, v in params.items()})
            live.publish()
        return await control(request, act)

    async def clear_faults(request: Request) -> JSONResponse:
        def act(body):
            live.clear_faults()
            live.publish()
        return await control(request, act)

    async def metrics(request: Request) -> Response:
        return Response(metrics_text(registry), media_type=CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        stopping.set()

    routes = [
        Route("/", index),
        Route("/api/state", state),
        Route("/api/stream", stream),
        Route("/api/history", history),
        Route("/api/events", events_log),
        Route("/api/faults", faults, methods=["GET"]),
        Route("/api/faults", inject_fault, methods=["POST"]),
        Route("/api/faults", clear_faults, methods=["DELETE"]),
        Route("/api/loads", add_load, methods=["POST"]),
        Route("/api/loads/{index:int}", remove_load, methods=["DELETE"]),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.stopping = stopping
    return app


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")
