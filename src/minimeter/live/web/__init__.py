"""The web front panel of a live meter: a Starlette (ASGI) app served by uvicorn.

The app is a sink of the live stream (:mod:`minimeter.live.stream`): :func:`create_app`
adds a :class:`PanelFeed` and the metrics' collector to the meter's sinks, and every
route serves the newest snapshot pushed to them; only the trainer's controls go the
other way, to the runner.

Routes
------
``GET /``                    the panel (static page: LCD, LEDs, outputs, power, chart,
                             event log, trainer controls)
``GET /api/state``           the newest :class:`~minimeter.live.stream.Snapshot` as JSON
``GET /api/stream``          server-sent events: each snapshot pushed (``data:``), at most ~10
                             a second, and every output edge (``event: edge``, the JSON of
                             :func:`~minimeter.lab.pulses.edge_record`, SPEC S13.1) from the
                             connection on (``event: edges-lost`` ``{"lost": n}`` if it fell
                             more than :data:`EDGES_KEPT` behind)
``GET /api/history``         power per element, once a simulated minute, last hours
``GET /api/events``          the recent event log, oldest first
``GET /api/faults``          the wiring faults that can be injected, each with its parameters
                             and a hint for each (:func:`fault_catalogue`)
``POST /api/loads``          add a load ``{"load": "1500@L1,pf=0.9lag"}``      (controls)
``DELETE /api/loads/{i}``    remove load number ``i``                          (controls)
``POST /api/faults``         inject ``{"kind": "ct-reversed", "params": {"ct": "CT2"}}`` or with
                             the params as typed, ``"params": "ct=CT2"`` (controls)
``DELETE /api/faults``       remove every injected fault                       (controls)
``GET /metrics``             Prometheus text format (:mod:`minimeter.live.metrics`)

Hostile clients (SPEC S15.3). The controls answer only
- the panel's own origin: an ``Origin`` header (every browser sends one with a POST or
  DELETE) must name the request's own ``Host``, and ``Sec-Fetch-Site: cross-site`` is
  refused (403) — no cross-site form post or fetch;
- on a loopback panel (no token), a loopback ``Host`` (``127.x``, ``localhost``, ``::1``):
  a page whose DNS name is rebound to 127.0.0.1 sends its own name and is refused (403);
- the token (``Authorization: Bearer …`` or ``X-Minimeter-Token``) when one is set —
  :func:`create_app` is given one whenever the server binds beyond loopback (401);
- ``Content-Type: application/json`` for a body (415), of at most
  :data:`MAX_BODY_BYTES` (413), a JSON object (400, however deeply nested);
- a change the live meter can carry: the runner refuses (400), before anything applies,
  loads and faults beyond its bounds (:func:`minimeter.live.runner.check_within_ratings`:
  4 × the CT's rating, 2 × the meter's highest supply voltage, harmonics to the 50th,
  64 loads, 16 faults) — no control can end or freeze the meter.
Nothing anywhere writes, presets or resets the register.

Mounted under a path prefix (one panel per meter at ``/meters/<id>/``), the page reaches
its assets and the API by relative URLs only; it must be opened with its trailing slash.
The event stream runs in a dedicated worker (``static/stream.js``): a page-level
never-ending request holds Chromium's virtual time (``chromium --headless
--virtual-time-budget=… --screenshot``) at zero for ever — a worker's requests do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import threading
from collections import deque
from pathlib import Path
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from minimeter.errors import MinimeterError
from minimeter.formats import iso8601, parse_fault, parse_load
from minimeter.lab.pulses import edge_record
from minimeter.meter import Event
from minimeter.sources.installation import FAULT_KINDS
from minimeter.sources.wiring import FAULT_PARAMETERS
from minimeter.live.metrics import CONTENT_TYPE, SnapshotCollector, make_registry, metrics_text
from minimeter.live.runner import LiveMeter
from minimeter.live.stream import Snapshot

STATIC = Path(__file__).parent / "static"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
STREAM_PERIOD_S = 0.1            # a stream sends at most one snapshot per this [s]
STREAM_KEEPALIVE_S = 15.0         # and otherwise wakes only when one is pushed, or after this [s]
MAX_BODY_BYTES = 4096             # a control's body: a load or fault is a few dozen bytes
EDGES_KEPT = 4096                 # output edges a stream may fall behind by (then the oldest are lost)

# What each fault parameter of :data:`~minimeter.sources.wiring.FAULT_PARAMETERS` means, its
# default (see apply_fault) and an example the panel offers as the input's placeholder.
PARAMETER_HINTS: dict[str, tuple[str, str]] = {
    "ct": ("the CT input: CT1 or CT2 (default CT1)", "CT2"),
    "conductor": ("the conductor the CT is moved onto: L1, L2 or N (default the other leg)", "L2"),
    "terminal": ("the voltage terminal left open: L1, L2 or N (default L1)", "L2"),
    "rating": ("the CT's rating (default 100A, or 200A on a 100 A meter)", "100A"),
    "amps": ("the current of an added resistive load [A] (default 125 % of the CT rating)", "250"),
    "connection": ("where that load is connected: L1, L2 or L1-L2 (default L1)", "L1-L2"),
    "volts": ("the service's L–N voltage [V] (default 100)", "100"),
    "hz": ("the line frequency [Hz] (default 45)", "45"),
}
assert {p for params in FAULT_PARAMETERS.values() for p in params} <= set(PARAMETER_HINTS)


def fault_catalogue() -> list[dict]:
    """The faults the panel offers, in :data:`FAULT_KINDS` order: ``{"kind", "example"
    (the parameters as typed, e.g. ``'ct=CT2'``), "parameters": [{"name", "hint"}]}``."""
    return [{"kind": kind,
             "example": " ".join(f"{p}={PARAMETER_HINTS[p][1]}" for p in FAULT_PARAMETERS[kind]),
             "parameters": [{"name": p, "hint": PARAMETER_HINTS[p][0]} for p in FAULT_PARAMETERS[kind]]}
            for kind in FAULT_KINDS]


class PanelFeed:
    """The web panel's sink: the newest snapshot pushed to it, and the streams waiting
    for the next one (woken on their own event loop: an idle panel polls nothing)."""

    def __init__(self) -> None:
        self.latest: Snapshot | None = None
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._edges: deque[tuple[int, dict]] = deque(maxlen=EDGES_KEPT)   # (number, edge JSON)
        self._edge_count = 0                                               # edges ever pushed
        self._edges_lock = threading.Lock()

    def update(self, snapshot: Snapshot) -> None:
        self.latest = snapshot
        if snapshot.transitions:
            with self._edges_lock:
                for edge in snapshot.transitions:
                    self._edge_count += 1
                    self._edges.append((self._edge_count, edge_record(edge, snapshot.start_epoch_s)))
        for loop, event in list(self._waiters):
            with contextlib.suppress(RuntimeError):          # a loop that has closed
                loop.call_soon_threadsafe(event.set)

    def edges_after(self, number: int | None) -> tuple[list[dict], int, int]:
        """The edges pushed after edge ``number`` (None: none — a new stream starts from
        now), the number of the newest, and how many of those were dropped already (a
        stream more than :data:`EDGES_KEPT` behind)."""
        with self._edges_lock:
            if number is None:
                return [], self._edge_count, 0
            edges = [e for n, e in self._edges if n > number]
            return edges, self._edge_count, self._edge_count - number - len(edges)

    @contextlib.contextmanager
    def waiter(self):
        """An asyncio.Event set at every snapshot pushed, while in the ``with``."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        self._waiters.add(entry)
        try:
            yield entry[1]
        finally:
            self._waiters.discard(entry)


def create_app(live: LiveMeter, *, token: str | None = None) -> Starlette:
    """The panel's ASGI app for ``live`` (added to its sinks); controls need ``token``
    when it is not None. ``app.state.feed`` is its :class:`PanelFeed`: a sink like any
    other (tests push the snapshots they make to it)."""
    feed, collector = PanelFeed(), SnapshotCollector()
    live.add_sink(feed)
    live.add_sink(collector)
    app = Starlette(routes=_ROUTES, lifespan=_lifespan)
    app.state.live = live
    app.state.feed = feed
    app.state.registry = make_registry(collector)
    app.state.token = token
    app.state.stopping = asyncio.Event()
    return app


@contextlib.contextmanager
def serving(app: Starlette, host: str = "127.0.0.1", port: int = 0):
    """Serve ``app`` (from :func:`create_app`) with uvicorn on a thread while in the
    ``with``; yields its base URL (``port`` 0: a free one). For tests, scripts and
    embedding (:class:`~minimeter.live.services.Services`, as ``minimeter run`` serves)."""
    from minimeter.live.services import Services  # noqa: PLC0415 - only when serving

    services = Services("minimeter-web")
    try:
        bound = services.start_web(app, host, port)
        yield f"http://{host}:{bound}"
    finally:
        services.stop()


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def _hostname(authority: str) -> str:
    """``'127.0.0.1:8000'`` → ``'127.0.0.1'``, ``'[::1]:8000'`` → ``'::1'``."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority


# --------------------------------------------------------------------------- helpers
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


def _latest(request: Request) -> Snapshot:
    return request.app.state.feed.latest


def _event_json(event: Event, start_epoch_s: float | None) -> dict:
    """One event (its kind an EventKind: a str enum, the same string as in the store);
    ``time`` ISO 8601 UTC when the meter's start instant is known, else None."""
    when = None if start_epoch_s is None else iso8601(start_epoch_s + event.time_s)
    return {"time": when, "time_s": event.time_s, "kind": event.kind, "active": event.active, "element": event.element,
            "value": event.value, "message": event.message}


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette):
    yield
    app.state.stopping.set()


# --------------------------------------------------------------------------- reading
async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def _state(request: Request) -> JSONResponse:
    data = _clean(_latest(request).as_dict())
    data["token_required"] = request.app.state.token is not None
    return _json(data)


async def _stream(request: Request) -> StreamingResponse:
    stopping: asyncio.Event = request.app.state.stopping

    feed: PanelFeed = request.app.state.feed

    async def events():
        sent, edge_number = None, None
        yield "retry: 1000\n\n"
        with feed.waiter() as pushed:
            while not stopping.is_set():
                pushed.clear()
                edges, edge_number, lost = feed.edges_after(edge_number)
                if lost:                                  # a reader must know it missed some
                    yield f"event: edges-lost\ndata: {json.dumps({'lost': lost})}\n\n"
                for edge in edges:
                    yield f"event: edge\ndata: {json.dumps(_clean(edge))}\n\n"
                snap = feed.latest
                if snap is not sent:
                    sent = snap
                    yield f"data: {json.dumps(_clean(snap.as_dict()))}\n\n"
                    await asyncio.sleep(STREAM_PERIOD_S)           # at most ~10 a second
                    continue
                if await request.is_disconnected():
                    break
                if await _first(pushed, stopping) is None:
                    yield ": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _first(pushed: asyncio.Event, stopping: asyncio.Event) -> asyncio.Event | None:
    """Wait for a snapshot pushed or the server stopping (whichever first), at most
    :data:`STREAM_KEEPALIVE_S`; None when neither came."""
    waits = {asyncio.ensure_future(pushed.wait()), asyncio.ensure_future(stopping.wait())}
    try:
        done, _ = await asyncio.wait(waits, timeout=STREAM_KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED)
    finally:                                     # also when the stream itself is cancelled
        for task in waits:
            task.cancel()
    return pushed if done else None


async def _history(request: Request) -> JSONResponse:
    return _json([{"time_s": t, "power_w": list(p)} for t, p in _latest(request).history])


async def _events(request: Request) -> JSONResponse:
    snap = _latest(request)
    return _json([_event_json(e, snap.start_epoch_s) for e in snap.recent_events])


async def _faults(request: Request) -> JSONResponse:
    return _json({"kinds": list(FAULT_KINDS), "faults": fault_catalogue(), "active": list(_latest(request).faults)})


async def _metrics(request: Request) -> Response:
    return Response(metrics_text(request.app.state.registry), media_type=CONTENT_TYPE)


# --------------------------------------------------------------------------- controls
def _authorised(request: Request) -> bool:
    token = request.app.state.token
    if token is None:
        return True
    given = request.headers.get("x-minimeter-token", "")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return hmac.compare_digest(given.encode(), token.encode())


def _foreign(request: Request) -> str | None:
    """Why a control request does not come from the panel's own origin, or None."""
    host = request.headers.get("host", "")
    if request.app.state.token is None and not is_loopback(_hostname(host)):
        return f"controls answer a loopback Host only, not {host[:80]!r} (DNS rebinding)"
    origin = request.headers.get("origin")
    if origin is not None and origin.partition("://")[2].rstrip("/").lower() != host.strip().lower():
        return f"controls answer the panel's own origin only, not {origin[:80]!r}"
    if request.headers.get("sec-fetch-site", "same-origin") == "cross-site":
        return "controls answer the panel's own origin only, not a cross-site request"
    return None


async def _body(request: Request) -> tuple[dict | None, JSONResponse | None]:
    """The control's JSON object, or the error answer (415, 413, 400)."""
    if request.method != "POST":
        return {}, None
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json":
        return None, _json({"error": "controls take Content-Type: application/json"}, 415)
    too_big = _json({"error": f"a control's body is at most {MAX_BODY_BYTES} bytes"}, 413)
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        return None, too_big
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            return None, too_big
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None, _json({"error": "the request body must be JSON"}, 400)
    if not isinstance(body, dict):
        return None, _json({"error": "the request body must be a JSON object"}, 400)
    return body, None


async def _control(request: Request, action: Callable[[LiveMeter, dict], None]) -> JSONResponse:
    """Check where the request comes from, the token and the body, make the change on the
    runner (it checks the change first, then it takes effect from the next line cycle
    fed), and answer with the loads and faults now set."""
    foreign = _foreign(request)
    if foreign is not None:
        return _json({"error": foreign}, 403)
    if not _authorised(request):
        return _json({"error": "this meter is served beyond localhost: controls need its token"}, 401)
    body, refusal = await _body(request)
    if refusal is not None:
        return refusal
    live: LiveMeter = request.app.state.live
    try:
        await run_in_threadpool(action, live, body)
    except (MinimeterError, TypeError, ValueError, ArithmeticError) as exc:
        return _json({"error": str(exc)[:500]}, 400)
    return _json({"ok": True, "loads": list(live.loads_text()), "faults": list(live.faults_text())})


def _add_load(live: LiveMeter, body: dict) -> None:

    text = body.get("load")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('give the load as {"load": "1500@L1,pf=0.9lag"}')
    live.add_load(parse_load(text.strip()))


def _inject_fault(live: LiveMeter, body: dict) -> None:
    """``params`` an object, or the text typed in the panel (read by :func:`parse_fault`)."""
    kind = body.get("kind")
    params = body.get("params") or {}
    if isinstance(kind, str) and isinstance(params, str):
        params = dict(parse_fault(f"{kind.strip()} {params}").params)
    if not isinstance(kind, str) or not isinstance(params, dict):
        raise ValueError('give the fault as {"kind": "ct-reversed", "params": {"ct": "CT2"}}')
    live.inject_fault(kind, **{str(k): v for k, v in params.items()})


async def _add_load_route(request: Request) -> JSONResponse:
    return await _control(request, _add_load)


async def _remove_load_route(request: Request) -> JSONResponse:
    index = int(request.path_params["index"])
    return await _control(request, lambda live, body: live.remove_load(index))


async def _inject_fault_route(request: Request) -> JSONResponse:
    return await _control(request, _inject_fault)


async def _clear_faults_route(request: Request) -> JSONResponse:
    return await _control(request, lambda live, body: live.clear_faults())


_ROUTES = [
    Route("/", _index),
    Route("/api/state", _state),
    Route("/api/stream", _stream),
    Route("/api/history", _history),
    Route("/api/events", _events),
    Route("/api/faults", _faults, methods=["GET"]),
    Route("/api/faults", _inject_fault_route, methods=["POST"]),
    Route("/api/faults", _clear_faults_route, methods=["DELETE"]),
    Route("/api/loads", _add_load_route, methods=["POST"]),
    Route("/api/loads/{index:int}", _remove_load_route, methods=["DELETE"]),
    Route("/metrics", _metrics),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
