"""Prometheus /metrics (issue 5): a scrape parses with prometheus_client's own parser and
carries the register, power, LED states and event counters."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from minimeter.live.runner import LiveMeter
from minimeter.live.web import create_app

from .test_live_support import QUANTA_PER_WH, constant_installation


def _samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_scrape_parses_and_matches_the_meter():
    # 1800 W on L1 and 600 W on L2 for 30 min: 1200 Wh; then CT2 reversed for 1 min:
    # net 1800 − 600 = 1200 W still forward, no reverse event; LEDs: power on.
    live = LiveMeter(constant_installation((1800.0, "L1"), (600.0, "L2")), speed=0)
    live.advance_to(1800.0)
    snap = live.publish()
    with TestClient(create_app(live)) as client:
        resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    s = _samples(resp.text)
    assert s[("minimeter_energy_watt_hours_total", (("model", "7B-200A-LCD"),))] == pytest.approx(1200.0, abs=1e-6)
    assert s[("minimeter_energy_watt_hours_total", (("model", "7B-200A-LCD"),))] == snap.meter.register_quanta / QUANTA_PER_WH
    assert s[("minimeter_power_watts", (("element", "1"),))] == pytest.approx(1800.0, abs=1e-6)
    assert s[("minimeter_power_watts", (("element", "2"),))] == pytest.approx(600.0, abs=1e-6)
    assert s[("minimeter_net_power_watts", ())] == pytest.approx(2400.0, abs=1e-6)
    assert s[("minimeter_voltage_volts", (("element", "1"),))] == pytest.approx(120.0, abs=1e-9)
    assert s[("minimeter_current_amperes", (("element", "1"),))] == pytest.approx(15.0, abs=1e-9)
    assert s[("minimeter_led_on", (("led", "power"),))] == 1.0
    assert s[("minimeter_led_on", (("led", "reverse"),))] == 0.0
    assert s[("minimeter_output_closures_total", (("output", "10"),))] == pytest.approx(120, abs=1)
    assert s[("minimeter_events_total", (("kind", "reverse-power"),))] == 0
    assert s[("minimeter_lcd_kilowatt_hours", (("model", "7B-200A-LCD"),))] == pytest.approx(1.2, abs=0.1)


def test_metrics_count_events():
    # 200 W on L1 and 1000 W on L2 with CT2 reversed: the reverse-power event is raised once.
    inst = constant_installation((200.0, "L1"), (1000.0, "L2")).with_fault("ct-reversed", ct="CT2")
    live = LiveMeter(inst, speed=0)
    live.advance_to(120.0)
    live.publish()
    with TestClient(create_app(live)) as client:
        s = _samples(client.get("/metrics").text)
    assert s[("minimeter_events_total", (("kind", "reverse-power"),))] == 1
    assert s[("minimeter_event_active", (("kind", "reverse-power"),))] == 1.0
    assert s[("minimeter_led_on", (("led", "reverse"),))] == 1.0
    assert s[("minimeter_reverse_energy_watt_hours_total", (("model", "7B-200A-LCD"),))] == pytest.approx(
        800 * 120 / 3600, abs=1e-6)
