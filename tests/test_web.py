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


# --------------------------------------------------------------------------- issue 14, 11, 15 surfaces
def test_s13_1_the_event_stream_carries_output_edges(live):
    from dataclasses import replace
    from datetime import datetime, timezone

    from minimeter.meter.outputs import Transition

    app = create_app(live)
    edges = (Transition("10", True, 1860.25, "energy"), Transition("100", False, 1861.0, "power-loss"))
    start = 1_764_460_800.0                                   # 2025-11-30T00:00:00Z
    got = []
    with TestClient(app, base_url=PANEL) as client:
        with client.stream("GET", "/api/stream") as resp:
            lines = resp.iter_lines()
            for line in lines:
                if line.startswith("data: "):                 # connected: now the meter moves
                    app.state.feed.update(replace(live.publish(), transitions=edges, start_epoch_s=start))
                    break
            kind = None
            for line in lines:
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "edge":
                    got.append(json.loads(line[6:]))
                    if len(got) == 2:
                        break
                elif not line:
                    kind = None
            app.state.stopping.set()
    iso = lambda s: datetime.fromtimestamp(start + s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    assert got == [
        {"time": iso(1860.25), "time_s": 1860.25, "output": "10", "state": "ON", "cause": "energy"},
        {"time": iso(1861.0), "time_s": 1861.0, "output": "100", "state": "OFF", "cause": "power-loss"},
    ]
    assert got[0]["time"] == "2025-11-30T00:31:00.250000Z"


def test_issue14_fault_hints_follow_the_wiring_faults(live):
    from minimeter.formats import parse_fault
    from minimeter.sources.wiring import FAULT_KINDS, FAULT_PARAMETERS

    with TestClient(create_app(live), base_url=PANEL) as client:
        faults = client.get("/api/faults").json()["faults"]
    assert [f["kind"] for f in faults] == list(FAULT_KINDS)
    for f in faults:
        assert [p["name"] for p in f["parameters"]] == list(FAULT_PARAMETERS[f["kind"]])
        assert all(p["hint"] for p in f["parameters"])
        parsed = parse_fault(f"{f['kind']} {f['example']}")        # each example is valid as typed
        assert [name for name, _ in parsed.params] == sorted(FAULT_PARAMETERS[f["kind"]])


def test_issue14_fault_parameters_as_typed_in_the_panel(live):
    with TestClient(create_app(live), base_url=PANEL) as client:
        assert client.post("/api/faults", json={"kind": "ct-reversed", "params": "ct=CT2"}).status_code == 200
        assert live.faults_text() == ("ct-reversed(ct=CT2)",)
        r = client.post("/api/faults", json={"kind": "supply-voltage", "params": "volts"})
        assert r.status_code == 400 and "NAME=VALUE" in r.json()["error"]
        r = client.post("/api/faults", json={"kind": "ct-reversed", "params": "amps=3"})
        assert r.status_code == 400 and "amps" in r.json()["error"]
    assert live.faults_text() == ("ct-reversed(ct=CT2)",)               # the failed calls changed nothing


def test_issue14_the_panel_works_mounted_under_a_path_prefix(live):
    import re

    from starlette.applications import Starlette
    from starlette.routing import Mount

    from minimeter.live.web import STATIC

    fleet = Starlette(routes=[Mount("/meters/7", app=create_app(live))])
    with TestClient(fleet, base_url=PANEL) as client:
        page = client.get("/meters/7/")
        assert page.status_code == 200 and 'id="lcd"' in page.text
        for asset in ("panel.js", "panel.css", "stream.js"):
            assert client.get(f"/meters/7/static/{asset}").status_code == 200
        assert client.get("/meters/7/api/state").json()["register_quanta"] == str(live.meter.register_quanta)
        r = client.post("/meters/7/api/loads", json={"load": "100@L1"}, headers={"Origin": PANEL})
        assert r.status_code == 200 and r.json()["loads"][-1] == "100@L1"
    # no absolute URL in the page or its scripts: all resolve under the prefix
    for name in ("index.html", "panel.js", "stream.js"):
        text = (STATIC / name).read_text()
        assert not re.search(r"""(?:href|src)="/|fetch\(\s*["'`]/|Worker\(\s*["'`]/|EventSource\(\s*["'`]/""", text), name


def test_s12_4_state_carries_beyond_kwh_fields_as_none_until_measured(live):
    from dataclasses import replace

    from minimeter.meter.power import HarmonicTable

    app = create_app(live)
    unmeasured = dict(harmonics=None, registers=None, reactive_power_var=(), apparent_power_va=(),
                      displacement_pf=(), thd_v_percent=(), thd_i_percent=())
    with TestClient(app, base_url=PANEL) as client:
        app.state.feed.update(replace(live.publish(), **unmeasured))        # a snapshot without them
        data = client.get("/api/state").json()
        assert data["harmonics"] is None and data["registers"] is None
        assert data["reactive_power_var"] == [] and data["thd_i_percent"] == []
        table = HarmonicTable(orders=(1, 2), volts_rms=((120.0, 1.2),), amps_rms=((10.0, float("nan")),),
                              thd_v_percent=(1.0,), thd_i_percent=(float("nan"),))
        app.state.feed.update(replace(live.publish(), harmonics=table, thd_v_percent=(1.0, float("nan"))))
        data = client.get("/api/state").json()
    assert data["harmonics"]["volts_rms"] == [[120.0, 1.2]] and data["harmonics"]["amps_rms"] == [[10.0, None]]
    assert data["harmonics"]["thd_i_percent"] == [None] and data["thd_v_percent"] == [1.0, None]


def test_s13_1_a_stream_that_falls_behind_is_told_how_many_edges_it_lost(live):
    from dataclasses import replace

    from minimeter.live.web import EDGES_KEPT, PanelFeed
    from minimeter.meter.outputs import Transition

    feed = PanelFeed()
    feed.update(live.publish())
    _, first, lost = feed.edges_after(None)                 # a stream connects: edges from now on
    assert (first, lost) == (0, 0)
    edges = tuple(Transition("10", k % 2 == 0, 1860.0 + k, "energy") for k in range(EDGES_KEPT + 10))
    feed.update(replace(live.publish(), transitions=edges))
    got, newest, lost = feed.edges_after(first)
    assert (len(got), newest, lost) == (EDGES_KEPT, EDGES_KEPT + 10, 10)
    assert got[0]["time_s"] == 1870.0 and got[-1]["time_s"] == 1860.0 + EDGES_KEPT + 9


def test_issue14_events_carry_their_iso_8601_time(live):
    import re
    from datetime import datetime, timezone

    live.inject_fault("ct-reversed", ct="CT2")                  # net 200 − 1000 W: reverse power
    live.advance_to(1920.0)
    snap = live.publish()
    with TestClient(create_app(live), base_url=PANEL) as client:
        events = client.get("/api/events").json()
    reverse = [e for e in events if e["kind"] == "reverse-power"]
    assert reverse and snap.start_epoch_s is not None
    for e in reverse:                                            # UTC, 'Z', microseconds
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", e["time"]), e["time"]
        shown = datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
        expected = datetime.fromtimestamp(snap.start_epoch_s + e["time_s"], timezone.utc)
        assert abs((shown - expected).total_seconds()) <= 1e-6
