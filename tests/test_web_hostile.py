"""SPEC S15.3: the live meter's controls against hostile clients — no cross-site form
post, no DNS rebinding, bounded bodies, bounded loads and faults (4 × the CT's rating,
2 × the meter's highest supply voltage, harmonics to the 50th) refused with 400 before
anything applies, and the meter keeps running and registering exactly its loads."""

from __future__ import annotations

import json
import threading
import time

import pytest
from starlette.testclient import TestClient

from minimeter.live.runner import LiveMeter
from minimeter.live.web import MAX_BODY_BYTES, create_app

from .test_live_support import QUANTA_PER_WH, constant_installation
from .test_web import PANEL, live  # noqa: F401 - the fixture: 200 W on L1, 1000 W on L2, 620 Wh registered


@pytest.fixture
def client(live):
    with TestClient(create_app(live), base_url=PANEL) as c:
        yield c


def _unchanged(live: LiveMeter) -> None:
    """The loads are the fixture's, and the next 30 min register exactly 1200 W's 600 Wh."""
    assert live.loads_text() == ("200 W on L1", "1000 W on L2") and live.faults_text() == ()
    live.advance_to(1860.0 + 1800.0)
    assert live.meter.register_quanta / QUANTA_PER_WH == pytest.approx(620.0 + 600.0, abs=1e-6)


def test_s15_3_a_cross_origin_form_post_is_refused_and_changes_nothing(live, client):
    form = client.post("/api/loads", content=b"load=5000%40L1",
                       headers={"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 403
    text_plain = client.post("/api/loads", content=b'{"load": "5000@L1"}',
                             headers={"Origin": "https://evil.example", "Content-Type": "text/plain"})
    assert text_plain.status_code == 403
    cross_site = client.post("/api/loads", json={"load": "5000@L1"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    assert client.delete("/api/loads/0", headers={"Origin": "null"}).status_code == 403
    _unchanged(live)


def test_s15_3_a_same_origin_form_post_is_refused_415(live, client):
    r = client.post("/api/loads", content=b"load=5000%40L1",
                    headers={"Origin": PANEL, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    _unchanged(live)


def test_s15_3_dns_rebinding_is_refused(live, client):
    # a page on evil.example whose name now resolves to 127.0.0.1: same-origin to the
    # browser, but its Host is not loopback
    r = client.post("/api/loads", json={"load": "5000@L1"},
                    headers={"Host": "evil.example:8000", "Origin": "http://evil.example:8000"})
    assert r.status_code == 403 and "DNS rebinding" in r.json()["error"]
    _unchanged(live)


def test_s15_3_the_panel_own_origin_is_accepted(live, client):
    r = client.post("/api/loads", json={"load": "600@L1"}, headers={"Origin": PANEL})
    assert r.status_code == 200 and r.json()["loads"][-1] == "600@L1"


def test_s15_3_an_oversized_body_is_413(live, client):
    padded = json.dumps({"load": "100@L1", "pad": "x" * MAX_BODY_BYTES}).encode()
    assert client.post("/api/loads", content=padded, headers={"Content-Type": "application/json"}).status_code == 413

    def chunks():                                # no Content-Length: counted as it streams
        for _ in range(64):
            yield b" " * 1024
    streamed = client.post("/api/loads", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    deep = b"[" * 100_000 + b"]" * 100_000       # too big before it is too deep
    assert client.post("/api/loads", content=deep, headers={"Content-Type": "application/json"}).status_code == 413
    _unchanged(live)


def test_s15_3_a_deeply_nested_body_within_the_bound_is_400(live, client):
    deep = b'{"load": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    assert len(deep) <= MAX_BODY_BYTES
    r = client.post("/api/loads", content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    _unchanged(live)


@pytest.mark.parametrize("load", [
    "1e300@L1", "1e12@L1", "-1e12@L2", "1e6@L1",
    "97000@L1",                  # (97 000 + 200) W / 120 V = 810 A on CT1: beyond 4 × 200 A
    "190500@L1-L2",              # 190 500 W / 240 V = 793.75 A, in phase with L2's 8.33 A on CT2: 802.1 A
    "100@L1,h51=0.1",            # above the 50th harmonic
    "1000@L1,h3=1e300",
])
def test_s15_3_out_of_bound_loads_are_400_and_change_nothing(live, client, load):
    r = client.post("/api/loads", json={"load": load})
    assert r.status_code == 400, r.text
    _unchanged(live)


def test_s15_3_a_load_at_the_bound_is_accepted():
    # 4 × 200 A on CT1 at 120 V: 96 000 W in all; 95 800 W beside the 200 W load
    inst = constant_installation((200.0, "L1"))
    live = LiveMeter(inst, speed=0)
    with TestClient(create_app(live), base_url=PANEL) as client:
        assert client.post("/api/loads", json={"load": "95700@L1"}).status_code == 200
        assert client.post("/api/loads", json={"load": "200@L1"}).status_code == 400


@pytest.mark.parametrize("kind, params", [
    ("over-current", {"amps": 1e6}),
    ("over-current", {"amps": 801}),             # beyond 4 × 200 A
    ("ct-rating-mismatch", {"rating": "0.001A"}),  # the meter would read 200 000× the current
    ("supply-voltage", {"volts": 300}),          # beyond 2 × 138 V
    ("frequency", {"hz": 1000}),
    ("over-current", {"amps": [1, 2]}),
    ("over-current", {"amps": "1e400"}),
])
def test_s15_3_out_of_bound_faults_are_400_and_change_nothing(live, client, kind, params):
    r = client.post("/api/faults", json={"kind": kind, "params": params})
    assert r.status_code == 400, r.text
    _unchanged(live)


def test_s15_3_loads_and_faults_are_bounded_in_number(live, client):
    for _ in range(62):
        assert client.post("/api/loads", json={"load": "1@L1"}).status_code == 200
    assert client.post("/api/loads", json={"load": "1@L1"}).status_code == 400     # a 65th
    for _ in range(16):
        assert client.post("/api/faults", json={"kind": "ct-reversed"}).status_code == 200
    assert client.post("/api/faults", json={"kind": "ct-reversed"}).status_code == 400


def test_s15_3_hostile_controls_do_not_stop_a_running_meter():
    live = LiveMeter(constant_installation((1200.0, "L1")), speed=3600)
    stop = threading.Event()
    runner = threading.Thread(target=live.run, args=(stop,), daemon=True)
    runner.start()
    try:
        with TestClient(create_app(live), base_url=PANEL) as client:
            for body in ({"load": "1e300@L1"}, {"load": "1e12@L1"}, {"load": "nan@L1"}, {"load": "inf@L2"}):
                assert client.post("/api/loads", json=body).status_code == 400
            assert client.post("/api/faults", json={"kind": "over-current", "params": {"amps": 1e6}}).status_code == 400
            t0 = live.time_s
            deadline = time.monotonic() + 10
            while live.time_s < t0 + 60.0:                 # a simulated minute goes by
                assert runner.is_alive() and time.monotonic() < deadline
                time.sleep(0.02)
    finally:
        stop.set()
        runner.join(timeout=10)
    assert not runner.is_alive()
    # only the 1200 W load ever registered: 1200 W × the simulated time it ran
    assert live.meter.watt_hours == pytest.approx(1200.0 * live.time_s / 3600.0, abs=0.01)
