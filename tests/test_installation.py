"""SPEC §3.2 and §3.4: installations, their files, and every wiring fault with its real
electrical effect. Expected registrations are computed by hand in each docstring."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from minimeter.cli import main
from minimeter.formats.installation import load_installation, parse_installation
from minimeter.meter import Meter
from minimeter.sources.installation import CT, FAULT_KINDS, Installation, InvalidInstallation, default_installation
from minimeter.sources.service import Load, Service, evaluate, household_day
from minimeter.lab.simulation import simulate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SECONDS = 10.0
RATE_HZ = 4000.0


def run(inst: Installation, seconds: float = SECONDS, meter: Meter | None = None):
    """Simulate ``inst`` by samples; return (meter, result)."""
    meter = meter or Meter(inst.spec)
    result = simulate(meter, inst.source(), seconds, sample_rate_hz=RATE_HZ)
    return meter, result


def wh(watts: float, seconds: float = SECONDS) -> float:
    return watts * seconds / 3600.0


def split(*loads: Load, model: str = "7B") -> Installation:
    return Installation(model=model, service=Service("split", 120.0, 60.0), loads=tuple(loads))


L1_1200 = Load(1200.0, 1.0, connection="L1")
L2_600 = Load(600.0, 1.0, connection="L2")


# --------------------------------------------------------------------------- the interface
def test_s3_2_default_installation_is_the_household_on_a_7b_200a():
    inst = default_installation()
    service, loads = household_day()
    assert inst.spec.prefix == "7B" and inst.spec.ct_rating == "200A"
    assert inst.service == service and inst.loads == tuple(loads)
    assert inst.faults == () and inst.duration_s is None
    meter, source = Meter(inst.spec), inst.source()
    assert meter.spec.elements == 2 and source.elements == 2


def test_s3_4_fault_kinds_named_in_the_spec():
    assert set(FAULT_KINDS) == {
        "ct-reversed", "ct-wrong-phase", "l1-l2-swapped", "voltage-open", "neutral-missing", "ct-open",
        "ct-shorted", "ct-rating-mismatch", "over-current", "supply-voltage", "frequency",
    }


def test_s3_4_with_fault_returns_a_new_installation_and_without_faults_undoes_it():
    inst = default_installation()
    faulty = inst.with_fault("ct-reversed", ct="CT2")
    assert inst.faults == ()
    assert [f.kind for f in faulty.faults] == ["ct-reversed"]
    assert faulty.without_faults() == inst
    assert faulty.with_loads([L1_1200]).loads == (L1_1200,)
    assert faulty.with_loads([L1_1200]).faults == faulty.faults


@pytest.mark.parametrize("kind, params, needle", [
    ("no-such-fault", {}, "unknown"),
    ("ct-reversed", {"ct": "CT3"}, "CT3"),
    ("ct-reversed", {"colour": "red"}, "colour"),
    ("voltage-open", {"terminal": "L9"}, "L9"),
])
def test_s3_4_bad_fault_is_a_clear_error(kind, params, needle):
    with pytest.raises(InvalidInstallation, match=needle):
        default_installation().with_fault(kind, **params)


def test_s3_4_wrong_phase_needs_a_second_leg():
    inst = Installation(model="MO", service=Service("single"), loads=(L1_1200,))
    with pytest.raises(InvalidInstallation, match="no L2"):
        inst.with_fault("ct-wrong-phase")


# --------------------------------------------------------------------------- faults, by hand
def test_s3_2_correct_installation_registers_100_percent():
    """1200 W on L1, 600 W on L2, 2400 W across: 4200 W."""
    _, r = run(split(L1_1200, L2_600, Load(2400.0, connection="L1-L2")))
    assert r.registered_wh == pytest.approx(wh(4200.0), rel=1e-4)


def test_s3_4_ct2_reversed_on_balanced_240v_load_registers_zero():
    """2400 W across L1–L2: element 1 +1200 W, element 2 −1200 W, net 0 → 0 %;
    the reverse LED stays off (net power is not negative) — the FAQ's point."""
    meter, r = run(split(Load(2400.0, connection="L1-L2")).with_fault("ct-reversed", ct="CT2"))
    assert r.registered_wh == pytest.approx(0.0, abs=1e-6)
    assert meter.leds.reverse is False
    assert r.closures["10"] == 0


@pytest.mark.parametrize("p1, p2", [(1500.0, 500.0), (3000.0, 600.0)])
def test_s3_4_ct2_reversed_registers_p1_minus_p2_over_p1_plus_p2(p1, p2):
    """L1 load P1 and L2 load P2 (PF 1), CT2 reversed: registered P1 − P2,
    registration (P1 − P2) / (P1 + P2): 50 % and 66.7 %."""
    inst = split(Load(p1, connection="L1"), Load(p2, connection="L2")).with_fault("ct-reversed", ct="CT2")
    _, r = run(inst)
    assert r.registered_wh / wh(p1 + p2) == pytest.approx((p1 - p2) / (p1 + p2), rel=1e-4)


def test_s3_4_ct1_on_l2_split_phase_element_negative_registration_zero():
    """CT1 on L2's conductor, 1200 W on L1 and 600 W on L2: both CTs carry I_L2 = 5 A;
    element 1 = V_L1 · I_L2 = 120 · 5 · cos 180° = −600 W, element 2 = +600 W: 0 %."""
    inst = split(L1_1200, L2_600).with_fault("ct-wrong-phase", ct="CT1")
    _, r = run(inst)
    assert r.analytic_element_wh[0] == pytest.approx(wh(-600.0), rel=1e-9)
    assert r.analytic_element_wh[1] == pytest.approx(wh(600.0), rel=1e-9)
    assert r.registered_wh == pytest.approx(0.0, abs=1e-6)


def test_s3_4_ct1_on_l2_network_registration_by_hand():
    """120/208 V network: V_L2 lags V_L1 by 120°. CT1 on L2 carries I_L2 = 5 A at −120°:
    element 1 = 120 · 5 · cos 120° = −300 W; element 2 = +600 W; registered 300 W of
    1800 W = 16.7 %."""
    inst = Installation(service=Service("network"), loads=(L1_1200, L2_600)).with_fault("ct-wrong-phase", ct="CT1")
    _, r = run(inst)
    assert r.analytic_element_wh[0] == pytest.approx(wh(-300.0), rel=1e-9)
    assert r.registered_wh / wh(1800.0) == pytest.approx(300.0 / 1800.0, rel=1e-4)


def test_s3_4_l1_l2_swapped_both_negative_reverse_led_on():
    """Voltage terminals swapped, CTs right: element 1 = V_L2·I_L1 = −1200 W, element 2
    = −600 W; CT1 carries 10 A ≥ 1 A so the reverse LED lights; nothing registers; the
    reverse register holds 1800 W × T."""
    meter, r = run(split(L1_1200, L2_600).with_fault("l1-l2-swapped"))
    assert r.analytic_element_wh == pytest.approx([wh(-1200.0), wh(-600.0)], rel=1e-9)
    assert meter.leds.reverse is True
    assert "reverse-power" in {e.kind for e in r.events}
    assert r.registered_wh == 0.0
    assert meter.reverse_watt_hours == pytest.approx(wh(1800.0), rel=1e-3)


def test_s3_4_l1_l2_swapped_reverse_led_needs_one_amp():
    """The same swap with 96 W on L1 (0.8 A): every CT below 1 A, the LED keeps its
    last state — off from power-up."""
    meter, r = run(split(Load(96.0, connection="L1")).with_fault("l1-l2-swapped"))
    assert meter.leds.reverse is False
    assert r.registered_wh == 0.0


def test_s3_4_voltage_terminal_open_reads_zero_and_loses_its_element():
    """L2 terminal open: L2–N reads 0 V; element 2 registers nothing; 1200 of 1800 W."""
    inst = split(L1_1200, L2_600).with_fault("voltage-open", terminal="L2")
    t = np.arange(400) / RATE_HZ
    src = inst.source()
    assert np.all(evaluate(src.volts[1], t, 60.0) == 0.0)
    meter, r = run(inst)
    assert meter.powered and meter.leds.power
    assert r.registered_wh / wh(1800.0) == pytest.approx(1200.0 / 1800.0, rel=1e-4)
    assert any(e.kind == "under-voltage" and e.element == 2 for e in r.events)


def test_s3_4_neutral_missing_split_phase_changes_nothing():
    """Equal input impedances: the floating neutral sits at (V_L1 + V_L2)/2 = 0 on a
    split-phase service — each terminal still reads 120 V; registration 100 %."""
    _, r = run(split(L1_1200, L2_600).with_fault("neutral-missing"))
    assert r.registered_wh == pytest.approx(wh(1800.0), rel=1e-4)


def test_s3_4_neutral_missing_network_by_hand():
    """120/208 V: each terminal reads |V_L1 − V_L2| / 2 = 120·√3/2 = 103.92 V, opposite.
    V1' = 103.92 V ∠30°: element 1 = 103.92 · 10 · cos 30° = 900 W; V2' = 103.92 ∠−150°,
    I_L2 = 5 A ∠−120°: element 2 = 103.92 · 5 · cos 30° = 450 W. 1350 of 1800 W: 75 %."""
    inst = Installation(service=Service("network"), loads=(L1_1200, L2_600)).with_fault("neutral-missing")
    t = np.arange(4000) / RATE_HZ
    src = inst.source()
    v1 = evaluate(src.volts[0], t, 60.0)
    v2 = evaluate(src.volts[1], t, 60.0)
    assert np.sqrt(np.mean(v1 ** 2)) == pytest.approx(60 * math.sqrt(3), rel=1e-3)
    assert np.allclose(v1, -v2)
    _, r = run(inst)
    assert r.analytic_element_wh == pytest.approx([wh(900.0), wh(450.0)], rel=1e-9)
    assert r.registered_wh / wh(1800.0) == pytest.approx(0.75, rel=1e-4)


def test_s3_4_neutral_missing_single_element_is_unpowered_register_kept():
    """No return path: 0 V across the single element's supply; the meter is unpowered
    and keeps its 1000 Wh."""
    inst = Installation(model="MO", service=Service("single"), loads=(L1_1200,)).with_fault("neutral-missing")
    meter = Meter(inst.spec, register_wh=1000.0)
    meter, r = run(inst, meter=meter)
    assert meter.powered is False and meter.leds == meter.leds.__class__(False, False, False)
    assert meter.watt_hours == 1000.0


@pytest.mark.parametrize("kind", ["ct-open", "ct-shorted"])
def test_s3_4_ct_open_or_shorted_delivers_no_current(kind):
    """CT2 open or shorted: element 2 sees 0 A; 1200 of 1800 W registered."""
    inst = split(L1_1200, L2_600).with_fault(kind, ct="CT2")
    assert inst.source().amps[1] == ()
    _, r = run(inst)
    assert r.registered_wh / wh(1800.0) == pytest.approx(1200.0 / 1800.0, rel=1e-4)


def test_s3_4_ct_rating_mismatch_scales_by_meter_over_ct_rating():
    """A 100 A CT on CT1 of a 200 A meter: element 1 reads 200/100 = 2 × its current.
    Registered 2 · 1200 + 600 = 3000 W of 1800 W: 166.7 %."""
    inst = split(L1_1200, L2_600).with_fault("ct-rating-mismatch", ct="CT1", rating="100A")
    _, r = run(inst)
    assert r.registered_wh / wh(1800.0) == pytest.approx(3000.0 / 1800.0, rel=1e-4)


def test_s3_4_over_current_raises_the_event_and_keeps_registering():
    """A 250 A resistive load on L1 of a 200 A meter (maximum 220 A): over-current on
    element 1; registered 250 · 120 = 30 kW."""
    inst = split().with_fault("over-current", amps=250.0)
    _, r = run(inst, 2.0)
    assert any(e.kind == "over-current" and e.element == 1 and e.active for e in r.events)
    assert r.registered_wh == pytest.approx(wh(30000.0, 2.0), rel=1e-4)


def test_s3_4_supply_100v_meter_unpowered_register_kept():
    meter = Meter(split().spec, register_wh=1234.5)
    inst = split(L1_1200, L2_600).with_fault("supply-voltage", volts=100.0)
    meter, r = run(inst, meter=meter)
    assert meter.powered is False and meter.leds.power is False
    assert meter.watt_hours == 1234.5
    assert "power-loss" in {e.kind for e in r.events}


def test_s3_4_supply_150v_over_voltage_power_led_off_still_measuring():
    """Loads keep their stated watts (constant-power, a decision): 1800 W at 150 V."""
    meter, r = run(split(L1_1200, L2_600).with_fault("supply-voltage", volts=150.0))
    assert meter.powered is True and meter.leds.power is False
    assert {e.element for e in r.events if e.kind == "over-voltage" and e.active} == {1, 2}
    assert r.registered_wh == pytest.approx(wh(1800.0), rel=1e-4)


def test_s3_4_frequency_45hz_event_and_still_measuring():
    meter, r = run(split(L1_1200, L2_600).with_fault("frequency", hz=45.0))
    assert any(e.kind == "frequency" and e.active for e in r.events)
    assert r.registered_wh == pytest.approx(wh(1800.0), rel=1e-3)


def test_s3_2_one_ct_around_two_conductors_measures_their_signed_sum():
    """'Multiple load monitoring with a single meter': CT1 through L1 and, reversed, L2
    on a single-element meter: CT current I_L1 − I_L2; with V_L2 = −V_L1 the one element
    measures 3000 (240 V) + 800 (L1) + 500 (L2) = 4300 W."""
    inst = Installation(model="MO", service=Service("split"),
                        cts=(CT("CT1", (("L1", 1), ("L2", -1))),),
                        loads=(Load(3000.0, 0.97, connection="L1-L2"), Load(800.0), Load(500.0, 0.85, connection="L2")))
    _, r = run(inst)
    assert r.registered_wh == pytest.approx(wh(4300.0), rel=1e-4)


def test_s3_2_ct_on_the_neutral_measures_the_return_current():
    """A CT on N (arrow towards the source) carries the 120 V loads' currents: with
    1200 W on L1 only, N carries 10 A and element 1 sees the same power as on L1."""
    inst = Installation(model="MO", service=Service("single"), cts=(CT("CT1", (("N", 1),)),), loads=(L1_1200,))
    _, r = run(inst)
    assert r.registered_wh == pytest.approx(wh(1200.0), rel=1e-4)


# --------------------------------------------------------------------------- files
def test_s3_2_every_example_loads_and_simulates():
    for path in sorted(EXAMPLES.glob("*.toml")):
        inst = load_installation(path)
        assert inst.duration_s and inst.duration_s > 0, path
        assert inst.source().elements == inst.spec.elements


def test_s3_2_example_file_states_the_faulty_wiring():
    inst = load_installation(EXAMPLES / "fault-ct-reversed.toml")
    assert [ct.conductors for ct in inst.wiring().cts] == [(("L1", 1),), (("L2", -1),)]
    _, r = run(inst)
    # element 1: 1200 + 1200 (half the 240 V load), element 2: −(600 + 1200): 600 of 4200 W
    assert r.registered_wh / wh(4200.0) == pytest.approx(600.0 / 4200.0, rel=1e-4)


def test_s3_2_simulate_command_runs_an_installation_file():
    out = CliRunner().invoke(main, ["simulate", str(EXAMPLES / "correct-single.toml"), "--json"])
    assert out.exit_code == 0, out.output
    import json
    payload = json.loads(out.output)
    assert payload["duration_s"] == 60.0
    assert payload["registered_wh"] == pytest.approx(1900.0 * 60 / 3600, rel=1e-4)


BASE = """\
name = "t"
[meter]
model = "7B"

[service]
kind = "split"

[[load]]
watts = 100
connection = "L1"

[[load]]
watts = 200
power_factor = {pf}
connection = "L2"
"""


@pytest.mark.parametrize("text, needle", [
    (BASE.format(pf="1.5"), r"t\.toml:14: load\[2\]\.power_factor: 1\.5 is outside"),
    (BASE.format(pf='"lots"'), r"t\.toml:14: load\[2\]\.power_factor: 'lots' is not a power factor"),
    (BASE.format(pf="1") + "colour = 'red'\n", r"t\.toml:16: load\[2\]\.colour: unknown key"),
    (BASE.format(pf="1").replace('"7B"', '"X9"'), r"t\.toml:3: meter\.model: 'X9' is not a Mini Meter model"),
    (BASE.format(pf="1").replace('"split"', '"delta"'), r"t\.toml:6: service\.kind: 'delta' is not one of"),
    (BASE.format(pf="1").replace('connection = "L2"', 'connection = "L3"'), r"t\.toml:15: load\[2\]\.connection"),
    (BASE.format(pf="1") + "[[fault]]\nkind = 'ct-melted'\n", r"t\.toml:17: fault\[1\]\.kind: 'ct-melted'"),
    (BASE.format(pf="1") + "[[ct]]\nname = 'CT3'\n", r"t\.toml:17: ct\[1\]\.name: 7B has CT inputs CT1, CT2"),
    ("duration = 'forever'\n" + BASE.format(pf="1"), r"t\.toml:1: duration: 'forever' is not a duration"),
    ("[meter\nmodel = 1", r"not valid TOML"),
])
def test_s3_2_malformed_file_names_the_key_line_and_problem(text, needle):
    with pytest.raises(InvalidInstallation, match=needle):
        parse_installation(text, "t.toml")


def test_s3_2_malformed_file_is_one_line_and_exit_2_on_the_command_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.format(pf="1.5"), encoding="utf-8")
    for command in ("simulate", "check", "diagnose"):
        out = CliRunner().invoke(main, [command, str(bad)])
        assert out.exit_code == 2, (command, out.output)
        assert "Traceback" not in out.output
        assert "load[2].power_factor" in out.output


def test_s3_2_missing_file_is_a_clear_error(tmp_path):
    out = CliRunner().invoke(main, ["check", str(tmp_path / "nope.toml")])
    assert out.exit_code == 2 and "no such installation file" in out.output


def _expected_registration(path: Path) -> float:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect registration:"):
            return float(line.split(":", 1)[1].split()[0])
    raise AssertionError(f"{path} states no expected registration")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_s3_4_every_example_registers_its_hand_computed_percentage(path):
    """Registered energy over 10 s against the loads' stated watts (constant-power loads;
    a profile at its first value), as each example's comment computes by hand."""
    inst = load_installation(path)
    true_w = sum(load.profile.values[0] if load.profile is not None else load.watts for load in inst.wiring().loads)
    _, r = run(inst)
    assert 100 * r.registered_wh / wh(true_w) == pytest.approx(_expected_registration(path), abs=0.01)
