"""Prometheus /metrics (issues 5, 11, 14; SPEC S12.4, S14.3): a scrape parses with
prometheus_client's own parser; names in base units (energy in joules, 1 Wh = 3600 J),
``_total`` counters, an ``_info`` metric, power factor as a ratio; a fleet collector
labels every sample with its meter."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from minimeter.live.metrics import FleetCollector, SnapshotCollector, make_registry, metrics_text
from minimeter.live.runner import LiveMeter
from minimeter.live.web import create_app

from .test_live_support import QUANTA_PER_WH, constant_installation
from .registers_support import registers, without_beyond_kwh


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_scrape_parses_and_matches_the_meter():
    # 1800 W on L1 and 600 W on L2 for 30 min: 1200 Wh = 4 320 000 J.
    live = LiveMeter(constant_installation((1800.0, "L1"), (600.0, "L2")), speed=0)
    live.advance_to(1800.0)
    snap = live.publish()
    with TestClient(create_app(live)) as client:
        resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    s = _samples(resp.text)
    assert s[("minimeter_meter_info", (("elements", "2"), ("model", "7B-200A-LCD"), ("serial", "MM000001")))] == 1.0
    assert s[("minimeter_energy_joules_total", ())] == pytest.approx(1200.0 * 3600, abs=1e-3)
    assert s[("minimeter_energy_joules_total", ())] == snap.meter.register_quanta / QUANTA_PER_WH * 3600
    assert s[("minimeter_power_watts", (("element", "1"),))] == pytest.approx(1800.0, abs=1e-6)
    assert s[("minimeter_power_watts", (("element", "2"),))] == pytest.approx(600.0, abs=1e-6)
    assert s[("minimeter_net_power_watts", ())] == pytest.approx(2400.0, abs=1e-6)
    assert s[("minimeter_voltage_volts", (("element", "1"),))] == pytest.approx(120.0, abs=1e-9)
    assert s[("minimeter_current_amperes", (("element", "1"),))] == pytest.approx(15.0, abs=1e-9)
    assert s[("minimeter_power_factor_ratio", (("element", "1"),))] == pytest.approx(1.0, abs=1e-9)
    assert s[("minimeter_frequency_hertz", ())] == pytest.approx(60.0, abs=1e-9)
    assert s[("minimeter_led_on", (("led", "power"),))] == 1.0
    assert s[("minimeter_led_on", (("led", "reverse"),))] == 0.0
    assert s[("minimeter_output_closures_total", (("output", "10"),))] == pytest.approx(120, abs=1)
    assert s[("minimeter_events_total", (("kind", "reverse-power"),))] == 0
    names = {name for name, _ in s}
    assert not any("kilowatt" in n or "watt_hours" in n for n in names)           # no prefixed / non-base units
    assert all(not n.startswith("minimeter_energy") or n.endswith("_total") for n in names)
    assert all("model" not in dict(labels) for name, labels in s if name != "minimeter_meter_info")
    fams = _families(resp.text)
    assert fams["minimeter_energy_joules"].type == "counter" and fams["minimeter_power_factor_ratio"].type == "gauge"


def test_metrics_count_events():
    # 200 W on L1 and 1000 W on L2 with CT2 reversed: the reverse-power event is raised once;
    # the reverse energy is 800 W × 120 s = 26.67 Wh = 96 000 J.
    inst = constant_installation((200.0, "L1"), (1000.0, "L2")).with_fault("ct-reversed", ct="CT2")
    live = LiveMeter(inst, speed=0)
    live.advance_to(120.0)
    live.publish()
    with TestClient(create_app(live)) as client:
        s = _samples(client.get("/metrics").text)
    assert s[("minimeter_events_total", (("kind", "reverse-power"),))] == 1
    assert s[("minimeter_event_active", (("kind", "reverse-power"),))] == 1.0
    assert s[("minimeter_led_on", (("led", "reverse"),))] == 1.0
    assert s[("minimeter_reverse_energy_joules_total", ())] == pytest.approx(800 * 120, abs=1e-3)
    assert s[("minimeter_power_factor_ratio", (("element", "2"),))] == pytest.approx(-1.0, abs=1e-9)


def test_s12_4_beyond_kwh_metrics_when_measured():
    # Hand-set §12 quantities: Q1 600/−200 var, S 1700/750 VA, THD 3 % and 40 %;
    # registers: Q1..Q4 = 1000, 10, 0, 5.5 varh → ×3600 var·s; 2345.6 VAh; demand 1800 / max 2400 W.
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    live.advance_to(60.0)
    base = without_beyond_kwh(live.publish())
    snap = replace(base, reactive_power_var=(600.0, -200.0), apparent_power_va=(1700.0, 750.0),
                   displacement_pf=(0.93, 0.96), thd_v_percent=(3.0, 2.0), thd_i_percent=(40.0, 12.5),
                   registers=registers((1000.5, 300.0), (0.0, 12.25), (1000.0, 10.0, 0.0, 5.5), 2345.6,
                                       1800.0, 2400.0, 900.0))
    plain = SnapshotCollector()
    plain.update(base)
    assert not any("reactive" in n or "apparent" in n or "demand" in n
                   for n, _ in _samples(metrics_text(make_registry(plain)).decode()))
    collector = SnapshotCollector(serial="MM424242")
    collector.update(snap)
    text = metrics_text(make_registry(collector)).decode()
    s = _samples(text)
    assert s[("minimeter_reactive_power_volt_amperes_reactive", (("element", "2"),))] == -200.0
    assert s[("minimeter_apparent_power_volt_amperes", (("element", "1"),))] == 1700.0
    assert s[("minimeter_displacement_power_factor_ratio", (("element", "1"),))] == 0.93
    assert s[("minimeter_current_thd_ratio", (("element", "1"),))] == pytest.approx(0.40)
    assert s[("minimeter_voltage_thd_ratio", (("element", "2"),))] == pytest.approx(0.02)
    assert s[("minimeter_reactive_energy_var_seconds_total", (("quadrant", "1"),))] == 3_600_000.0
    assert s[("minimeter_reactive_energy_var_seconds_total", (("quadrant", "4"),))] == 19_800.0
    assert s[("minimeter_apparent_energy_volt_ampere_seconds_total", ())] == pytest.approx(2345.6 * 3600)
    assert s[("minimeter_element_energy_joules_total", (("direction", "import"), ("element", "1")))] == 3_601_800.0
    assert s[("minimeter_element_energy_joules_total", (("direction", "export"), ("element", "2")))] == 44_100.0
    assert (s[("minimeter_demand_watts", ())], s[("minimeter_max_demand_watts", ())]) == (1800.0, 2400.0)
    assert _families(text)["minimeter_reactive_energy_var_seconds"].type == "counter"


def test_no_line_gauges_before_the_first_measured_cycle():
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    collector = SnapshotCollector()
    collector.update(live.publish())                         # nothing fed yet
    names = {n for n, _ in _samples(metrics_text(make_registry(collector)).decode())}
    assert "minimeter_meter_info" in names and "minimeter_energy_joules_total" in names
    assert not names & {"minimeter_voltage_volts", "minimeter_power_watts", "minimeter_frequency_hertz",
                        "minimeter_power_factor_ratio"}


def test_s14_3_fleet_collector_labels_each_meter():
    # Three meters at 500, 1000 and 2000 W for 360 s: 50, 100 and 200 Wh = 180 000, 360 000, 720 000 J.
    fleet = FleetCollector()
    for name, watts in (("house-a", 500.0), ("house-b", 1000.0), ("house-c", 2000.0)):
        live = LiveMeter(constant_installation((watts, "L1")), speed=0)
        live.add_sink(fleet.sink(name, serial=f"SN-{name}"))
        live.advance_to(360.0)
        live.publish()
    s = _samples(metrics_text(make_registry(fleet)).decode())
    for name, joules in (("house-a", 180_000.0), ("house-b", 360_000.0), ("house-c", 720_000.0)):
        assert s[("minimeter_energy_joules_total", (("meter", name),))] == pytest.approx(joules, abs=1e-3)
        assert s[("minimeter_meter_info", (("elements", "2"), ("meter", name), ("model", "7B-200A-LCD"),
                                           ("serial", f"SN-{name}")))] == 1.0
    assert s[("minimeter_power_watts", (("element", "1"), ("meter", "house-b")))] == pytest.approx(1000.0)
    fleet.remove("house-b")
    s = _samples(metrics_text(make_registry(fleet)).decode())
    assert not any(dict(labels).get("meter") == "house-b" for _, labels in s)


def test_s12_4_live_meter_beyond_kwh_metrics_match_its_figures():
    # 1500 W on L1 and 700 W on L2 at PF 0.8 lagging for one hour: Q1 = 0.75 P = 1650 var,
    # S = P / 0.8 = 2750 VA; 1650 varh = 5 940 000 var·s in quadrant I, 2750 VAh = 9 900 000 VA·s.
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2"), pf=0.8), speed=0)
    collector = SnapshotCollector()
    live.add_sink(collector)
    live.advance_to(3600.0)
    live.publish()
    s = _samples(metrics_text(make_registry(collector)).decode())
    assert s[("minimeter_reactive_power_volt_amperes_reactive", (("element", "1"),))] == pytest.approx(1125.0)
    assert s[("minimeter_apparent_power_volt_amperes", (("element", "2"),))] == pytest.approx(875.0)
    assert s[("minimeter_power_factor_ratio", (("element", "1"),))] == pytest.approx(0.8)
    assert s[("minimeter_reactive_energy_var_seconds_total", (("quadrant", "1"),))] == pytest.approx(5_940_000.0, rel=1e-6)
    assert s[("minimeter_reactive_energy_var_seconds_total", (("quadrant", "3"),))] == 0.0
    assert s[("minimeter_apparent_energy_volt_ampere_seconds_total", ())] == pytest.approx(9_900_000.0, rel=1e-6)
