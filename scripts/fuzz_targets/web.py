"""Fuzz target (issue 9, SPEC S15.3): one random, hostile request to the live meter's web
panel, in process (Starlette's TestClient), then a quarter of a simulated second fed.

``run_case(rng)`` starts from the base installation (two constant loads on a 7B), sends
one request — a control or a read, with random method, path, Content-Type, Origin, Host,
token and body (loads and faults with numbers from 1e-300 to 1e300, NaN, odd types,
unknown names, raw bytes, non-UTF-8, deep nesting, oversized bodies) — and then feeds the
meter. A 4xx answer is a clean refusal (:class:`Refused`, a MinimeterError); a 5xx
answer, a meter that cannot feed on, a clock that did not move or a register that went
backwards raises :class:`Finding` (anything but a MinimeterError is a finding).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from minimeter.errors import MinimeterError
from minimeter.live.runner import LiveMeter
from minimeter.live.web import MAX_BODY_BYTES, create_app
from minimeter.sources.installation import FAULT_KINDS, default_installation
from minimeter.sources.service import Load

PANEL_HOST = "127.0.0.1:8000"
FEED_S = 0.25                          # simulated seconds fed after each request


class Refused(MinimeterError):
    """The panel refused the request with a 4xx answer (the expected outcome of most)."""


class Finding(AssertionError):
    """A 5xx answer, or a meter that stopped, froze or went backwards."""


class _Rig:
    """One live meter and its panel, kept across cases (each starts from the base)."""

    def __init__(self) -> None:
        from starlette.testclient import TestClient  # noqa: PLC0415

        self.base = default_installation().with_loads(
            (Load(200.0, connection="L1", name="200 W on L1"), Load(1000.0, connection="L2", name="1000 W on L2")))
        self.live = LiveMeter(self.base, speed=0)
        self.client = TestClient(create_app(self.live), base_url=f"http://{PANEL_HOST}",
                                 raise_server_exceptions=False)
        self.client.__enter__()


_RIG: _Rig | None = None


def _rig() -> _Rig:
    global _RIG
    if _RIG is None:
        _RIG = _Rig()
    return _RIG


# --------------------------------------------------------------------------- random parts
_NUMBERS = ["0", "-0", "1", "-1", "1e-300", "1e300", "-1e300", "1e12", "1e6", "95700", "96001", "nan", "inf",
            "-inf", "1e400", "0x10", "1_000", "", " ", "١٢٣", "1e-5"]
_ODD: list[Any] = [None, True, False, 0, -1, 1e308, -1e308, 5e-324, 10 ** 400, 2 ** 63, "", "x", [], {}, [1, 2],
                   {"a": 1}, "\x00", "é" * 40, "L1", "CT2", "200A", "0.001A", "1e6", "nan"]


def _pick(rng: np.random.Generator, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def _number(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice([-1, 1]) * 10 ** rng.uniform(-6, 14):.6g}"
    return _pick(rng, _NUMBERS)


def _load_text(rng: np.random.Generator) -> str:
    parts = [_number(rng) + _pick(rng, ["", "W", "w", "kW"])]
    if rng.random() < 0.8:
        parts[0] += "@" + _pick(rng, ["L1", "L2", "L1-L2", "l1", "N", "L3", "", "L1-L2-L1"])
    for _ in range(int(rng.integers(0, 4))):
        if rng.random() < 0.5:
            parts.append(f"pf={_pick(rng, ['0.9', '0.5lag', '0.8lead', '0', '1.5', 'nan', '-1', '1e-300', 'x'])}")
        else:
            order = _pick(rng, ["2", "3", "50", "51", "1", "0", "999999999999", "-3", "x"])
            parts.append(f"h{order}={_number(rng)}" + ("@" + _number(rng) if rng.random() < 0.3 else ""))
    return ",".join(parts)


def _fault_body(rng: np.random.Generator) -> Any:
    kind = _pick(rng, list(FAULT_KINDS) + ["gremlins", "", None, 3])
    names = ["ct", "conductor", "terminal", "rating", "amps", "connection", "volts", "hz", "bogus", ""]
    params: dict[str, Any] = {}
    for _ in range(int(rng.integers(0, 4))):
        roll, text = rng.random(), _number(rng)
        if roll < 0.3:
            value: Any = text
        elif roll < 0.6 and _safe_float(text):
            value = float(text)
        else:
            value = _pick(rng, _ODD)
        params[_pick(rng, names)] = value
    body: dict[str, Any] = {"kind": kind}
    if rng.random() < 0.9:
        body["params"] = params if rng.random() < 0.9 else _pick(rng, _ODD)
    return body


def _safe_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _body(rng: np.random.Generator, path: str) -> bytes | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.10:
        return bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8))
    if roll < 0.13:
        depth = int(_pick(rng, [10, 500, 1500, 2100, 100_000]))
        return b'{"load": ' + b"[" * depth + b"]" * depth + b"}"
    if roll < 0.16:
        return json.dumps({"load": "100@L1", "pad": "x" * int(rng.integers(MAX_BODY_BYTES - 40, 4 * MAX_BODY_BYTES))}).encode()
    if roll < 0.19:
        return _pick(rng, [b"[]", b"null", b"1", b'"x"', b"{", b'{"load": 1}', b'{"load": null}', b"\xff\xfe{}"])
    if "fault" in path:
        data = _fault_body(rng)
    else:
        data = {"load": _load_text(rng) if rng.random() < 0.9 else _pick(rng, _ODD)}
    return json.dumps(data, allow_nan=True).encode()


def _headers(rng: np.random.Generator) -> dict[str, str]:
    headers: dict[str, str] = {}
    content_type = _pick(rng, ["application/json"] * 6 + ["application/json; charset=utf-8", "text/plain",
                                                            "application/x-www-form-urlencoded", "multipart/form-data",
                                                            "", "APPLICATION/JSON", "application/jsonx"])
    if content_type:
        headers["Content-Type"] = content_type
    if rng.random() < 0.4:
        headers["Origin"] = _pick(rng, [f"http://{PANEL_HOST}", "http://evil.example", "null", "", "http://127.0.0.1",
                                         f"https://{PANEL_HOST}", "garbage", "http://localhost:8000"])
    if rng.random() < 0.2:
        headers["Host"] = _pick(rng, ["evil.example:8000", "localhost:8000", "[::1]:8000", "", "127.0.0.2",
                                       "a" * 300, "127.0.0.1:8000:9"])
    if rng.random() < 0.1:
        headers["Sec-Fetch-Site"] = _pick(rng, ["cross-site", "same-origin", "none", "same-site"])
    if rng.random() < 0.1:
        headers[_pick(rng, ["Authorization", "X-Minimeter-Token"])] = _pick(rng, ["Bearer x", "", "x" * 500, "Bearer"])
    return headers


def _request(rng: np.random.Generator) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.40:
        return "POST", "/api/loads"
    if roll < 0.75:
        return "POST", "/api/faults"
    if roll < 0.85:
        index = _pick(rng, ["0", "1", "2", "63", "64", "99999999999999999999", "-1", "x"])
        return "DELETE", f"/api/loads/{index}"
    if roll < 0.90:
        return "DELETE", "/api/faults"
    return _pick(rng, ["GET", "PUT", "PATCH", "POST", "DELETE"]), _pick(
        rng, ["/api/state", "/api/history", "/api/events", "/api/faults", "/metrics", "/api/register", "/"])


# --------------------------------------------------------------------------- the case
def run_case(rng: np.random.Generator) -> None:
    """One hostile request, then a quarter of a simulated second fed (see the module)."""
    rig = _rig()
    live = rig.live
    live.set_installation(rig.base, faults=[])
    method, path = _request(rng)
    body = _body(rng, path)
    answer = rig.client.request(method, path, content=body, headers=_headers(rng))
    if answer.status_code >= 500:
        raise Finding(f"{method} {path} → HTTP {answer.status_code}: {answer.text[:200]}")
    t0, q0 = live.time_s, live.meter.register_quanta
    try:
        live.advance_to(t0 + FEED_S)
    except MinimeterError as exc:
        raise Finding(f"after {method} {path} {body[:120] if body else b''!r} the meter stopped: {exc}") from None
    if not live.time_s > t0 or live.meter.register_quanta < q0:
        raise Finding(f"after {method} {path} the clock or the register did not move forward")
    if answer.status_code >= 400:
        raise Refused(f"HTTP {answer.status_code}")
