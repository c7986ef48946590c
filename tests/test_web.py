"""The web panel's API (issue 5): state, stream, controls, tokens, and no way to write
the register."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from minimeter.live.runner import LiveMeter
from minimeter.live.web import create_app, is_loopback

from .test_live_support import QUANTA_PER_WH, constant_installation, lcd_from_quanta

PANEL = "http://127.0.0.1:8000"       # the panel's own loopback origin (S15.3)


@pytest.fixture
def live():
    meter = LiveMeter(constant_installation((200.0, "L1"), (1000.0, "L2")), speed=0)
    meter.advance_to(1860.0)                       # 1200 W × 31 min = 620 Wh
    meter.publish()
    return meter


def test_state_shows_register_lcd_and_leds(live):
    with TestClient(create_app(live), base_url=PANEL) as client:
        data = client.get("/api/state").json()
    quanta = int(data["register_quanta"])
    assert quanta / QUANTA_PER_WH == pytest.approx(620.0, abs=1e-6)
    assert data["lcd"] == lcd_from_quanta(quanta) == "000000.6"
    assert data["leds"]["power"] is True and data["leds"]["reverse"] is False
    assert data["power_w"] == pytest.approx([200.0, 1000.0])
    assert data["token_required"] is False
    assert [o["name"] for o in data["outputs"]] == ["10", "100", "1000"]


def test_page_and_static_files_are_served(live):
    with TestClient(create_app(live), base_url=PANEL) as client:
        page = client.get("/")
        assert page.status_code == 200 and 'id="lcd"' in page.text
        assert client.get("/static/panel.js").status_code == 200


def test_stream_sends_snapshots_as_server_sent_events(live):
    app = create_app(live)
    with TestClient(app, base_url=PANEL) as client:
        with client.stream("GET", "/api/stream") as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    break
            app.state.stopping.set()
    assert int(data["register_quanta"]) == live.meter.register_quanta


def test_controls_change_loads_and_faults(live):
    with TestClient(create_app(live), base_url=PANEL) as client:
        assert client.post("/api/faults", json={"kind": "ct-reversed", "params": {"ct": "CT2"}}).status_code == 200
        live.advance_to(1920.0)
        snap = live.publish()
        assert snap.meter.reverse_led and snap.faults == ("ct-reversed(ct=CT2)",)
        assert client.delete("/api/faults").status_code == 200
        assert client.post("/api/loads", json={"load": "3000@L1-L2"}).status_code == 200
        assert client.delete("/api/loads/0").status_code == 200
        live.advance_to(1980.0)
        assert live.publish().faults == ()
        assert live.loads_text() == ("1000 W on L2", "3000@L1-L2")


def test_bad_control_requests_get_one_clear_error(live):
    with TestClient(create_app(live), base_url=PANEL) as client:
        r = client.post("/api/loads", json={"load": "lots@L9"})
        assert r.status_code == 400 and "L9" in r.json()["error"]
        r = client.post("/api/faults", json={"kind": "gremlins"})
        assert r.status_code == 400 and "gremlins" in r.json()["error"]
        r = client.post("/api/faults", content=b"not json", headers={"content-type": "application/json"})
        assert r.status_code == 400


def test_controls_need_the_token_when_one_is_set(live):
    with TestClient(create_app(live, token="s3cret")) as client:
        assert client.get("/api/state").json()["token_required"] is True
        assert client.post("/api/loads", json={"load": "100@L1"}).status_code == 401
        assert client.post("/api/loads", json={"load": "100@L1"},
                           headers={"X-Minimeter-Token": "wrong"}).status_code == 401
        assert client.post("/api/loads", json={"load": "100@L1"},
                           headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/state").status_code == 200          # reading needs no token


def test_s5_2_no_interface_writes_or_resets_the_register(live):
    before = live.meter.register_quanta
    with TestClient(create_app(live), base_url=PANEL) as client:
        for method in ("post", "put", "patch", "delete"):
            for path in ("/api/state", "/api/register", "/api/reset", "/metrics"):
                resp = client.request(method.upper(), path, content=b'{"register_quanta": "0"}',
                                      headers={"content-type": "application/json"})
                assert resp.status_code in (404, 405)
    assert live.meter.register_quanta == before


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
