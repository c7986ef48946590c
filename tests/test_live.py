"""The live meter (issue 5): commits at each Kh = 10 closure (S10.1), restarts from the
store (S5.2, S10.1), live load and fault changes on the same meter, LEDs in simulated time."""

from __future__ import annotations

import threading

import pytest

from minimeter.errors import MinimeterError
from minimeter.sources.installation import default_installation
from minimeter.live.runner import ControlError, LiveMeter
from minimeter.sources.service import Load
from minimeter.live.store import Store

from .test_live_support import QUANTA_PER_WH, constant_installation


class _RecordingStore(Store):
    """A real store that also remembers every committed register [Wh]."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.committed: list[float] = []

    def commit(self, stored, **kw):
        super().commit(stored, **kw)
        self.committed.append(stored.meter.register_quanta / QUANTA_PER_WH)


def test_s10_1_commits_at_each_kh10_closure_and_opening(tmp_path):
    # 4800 W for 30 minutes = 2400 Wh: 240 Kh = 10 pulses, 480 changes of the output, so at
    # least 480 commits and never more than 5 Wh (+ one line cycle: 4800 W / 60 Hz / 3600 h
    # = 0.022 Wh) unstored: a crash loses less than one pulse's energy (S10.1).
    store = _RecordingStore.open(tmp_path / "m.sqlite3")
    live = LiveMeter(constant_installation((2400.0, "L1"), (2400.0, "L2")), store=store, speed=0)
    live.run(threading.Event(), hours=0.5)
    steps = [b - a for a, b in zip([0.0] + store.committed, store.committed)]
    assert store.committed[-1] == pytest.approx(2400.0, abs=1e-6)
    assert len(store.committed) >= 480
    assert max(steps) <= 5.0 + 4800 / 60 / 3600 + 1e-9 < 10.0
    assert min(steps) >= 0.0                                    # S5.2: never backwards


def test_s15_3_commits_are_bounded_in_rate_beyond_the_rating(tmp_path):
    # 4 × the 200 A rating on both CTs: 800 A × 120 V × 2 = 192 kW, 0.889 Wh a 60 Hz cycle,
    # a Kh = 10 edge every 5.6 cycles; commits stay ≥ 6 cycles apart, so over one simulated
    # minute (3 600 cycles) at most 600 + 2 commits, each step at most 6 cycles' energy
    # (5.33 Wh), and the register is exact: 192 kW × 1/60 h = 3 200 Wh.
    store = _RecordingStore.open(tmp_path / "m.sqlite3")
    live = LiveMeter(constant_installation((96_000.0, "L1"), (96_000.0, "L2")), store=store, speed=0)
    live.run(threading.Event(), hours=1 / 60)
    steps = [b - a for a, b in zip([0.0] + store.committed, store.committed)]
    per_cycle_wh = 192_000 / 60 / 3600
    assert store.committed[-1] == pytest.approx(3_200.0, abs=1e-6)
    assert len(store.committed) <= 3_600 // 6 + 2
    assert max(steps) <= 6 * per_cycle_wh + 1e-9
    assert min(steps) >= 0.0


def test_s10_1_restart_continues_register_outputs_and_clock(tmp_path):
    # 1200 W on L1: 20 min → 400 Wh; restart from the store; 0.53 h more → 636 Wh: 1036 Wh.
    path = tmp_path / "m.sqlite3"
    inst = constant_installation((1200.0, "L1"))
    first_store = Store.open(path)
    first = LiveMeter(inst, store=first_store, speed=0)
    first.run(threading.Event(), hours=1 / 3)
    first_store.close()
    assert first.meter.watt_hours == pytest.approx(400.0, abs=1e-6)
    second = LiveMeter(inst, store=Store.open(path), speed=0)
    assert second.meter.register_quanta == first.meter.register_quanta
    assert second.time_s == pytest.approx(1200.0)
    second.run(threading.Event(), hours=0.53)
    assert second.meter.watt_hours == pytest.approx(1036.0, abs=1e-6)
    # lifetime closures continue: floor(1036 / 10) = 103, floor(1036 / 100) = 10, floor(1036 / 1000) = 1
    assert {n: second.meter.closures(n) for n in ("10", "100", "1000")} == {"10": 103, "100": 10, "1000": 1}
    # S6.1 output states follow the register: 1036 mod 10 = 6 ≥ 5 → OFF; mod 100 = 36 < 50 → ON
    assert not second.meter.output_on("10")
    assert second.meter.output_on("100") and second.meter.output_on("1000")


def test_s7_2_load_led_changes_every_90_s_at_200_w():
    # SPEC S7.2's worked example: at a constant 200 W the load LED is on 1.5 min, off 1.5 min.
    live = LiveMeter(constant_installation((200.0, "L1")), speed=0)
    live.advance_to(600.0)
    load = [(c.state, c.time_s) for c in live.publish().led_changes if c.led == "load"]
    assert [s for s, _ in load] == [True, False, True, False, True, False, True]
    assert [t for _, t in load] == pytest.approx([0.0, 90.0, 180.0, 270.0, 360.0, 450.0, 540.0], abs=1e-6)


def test_live_fault_switch_feeds_the_same_meter_from_now_on():
    # 200 W on L1 and 1000 W on L2 for 10 min: 1200 W × 1/6 h = 200 Wh.
    # Then CT2 reversed: net 200 − 1000 = −800 W → nothing registers, the reverse LED
    # lights (CT2 carries 1000/120 = 8.3 A ≥ 1 A) and 800 W × 1/6 h = 133.3 Wh go to
    # the reverse register. Clearing the fault brings registration back.
    live = LiveMeter(constant_installation((200.0, "L1"), (1000.0, "L2")), speed=0)
    meter = live.meter
    live.advance_to(600.0)
    assert meter.watt_hours == pytest.approx(200.0, abs=1e-6)
    live.inject_fault("ct-reversed", ct="CT2")
    live.advance_to(1200.0)
    snap = live.publish()
    assert live.meter is meter
    assert meter.watt_hours == pytest.approx(200.0, abs=1e-6)
    assert snap.meter.reverse_led and snap.faults == ("ct-reversed(ct=CT2)",)
    assert snap.reverse_watt_hours == pytest.approx(800 / 6, abs=1e-6)
    assert ("reverse-power", None) in snap.active_events
    live.clear_faults()
    live.advance_to(1800.0)
    assert meter.watt_hours == pytest.approx(400.0, abs=1e-6)
    assert live.analytic()[1] == pytest.approx(400.0, abs=1e-6)


def test_live_loads_added_and_removed():
    live = LiveMeter(constant_installation((600.0, "L1")), speed=0)
    live.advance_to(600.0)                                   # 600 W × 1/6 h = 100 Wh
    live.add_load(Load(3000.0, 1.0, connection="L1-L2", name="range"))
    live.advance_to(1200.0)                                  # 3600 W × 1/6 h = 600 Wh
    live.remove_load(0)
    live.advance_to(1800.0)                                  # 3000 W × 1/6 h = 500 Wh
    assert live.meter.watt_hours == pytest.approx(1200.0, abs=1e-6)
    assert live.loads_text() == ("range",)
    with pytest.raises(ControlError):
        live.remove_load(5)
    with pytest.raises(MinimeterError):
        live.inject_fault("no-such-fault")


def test_household_day_repeats_each_simulated_day():
    # Two days of the built-in household register exactly twice one day.
    day = LiveMeter(default_installation(), speed=0)
    day.advance_to(86400.0)
    e1 = day.meter.register_quanta
    day.advance_to(2 * 86400.0)
    assert day.meter.register_quanta == pytest.approx(2 * e1, rel=1e-12)
    per, delivered = day.analytic()
    assert delivered == pytest.approx(2 * e1 / QUANTA_PER_WH, rel=1e-9)


def test_speed_must_be_finite_and_not_negative():
    with pytest.raises(MinimeterError, match="speed"):
        LiveMeter(constant_installation((100.0, "L1")), speed=-1)


@pytest.mark.parametrize("args, message", [
    (["--speed", "-1"], "--speed"),
    (["--mqtt", "http://broker", "--port", "0", "--modbus-port", "0"], "mqtt://"),
    (["--port", "18123", "--modbus-port", "18123"], "different ports"),
    (["--fault", "gremlins"], "gremlins"),
    (["--load", "lots@L9"], "L9"),
])
def test_run_bad_options_are_one_line_errors(args, message):
    from click.testing import CliRunner

    from minimeter.cli import main

    result = CliRunner().invoke(main, ["run", "--no-store", "--no-panel", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_s10_1_stopped_and_restarted_meter_equals_an_uninterrupted_one(tmp_path):
    # The household day with CT2 reversed: net power swings forward and reverse, so both
    # registers grow, the reverse LED and the reverse-power condition come and go. One
    # meter runs 5 h straight; another, with a store, stops at 0.95 h (reverse-power
    # active, reverse LED lit) and a new process restarts it from the store. Everything
    # the meter holds is the same to the last quantum.
    inst = default_installation().with_fault("ct-reversed", ct="CT2")
    stop_s, end_s = 0.95 * 3600 + 0.123, 5 * 3600.0
    twin = LiveMeter(inst, speed=0)
    twin.run(threading.Event(), until_s=end_s)
    path = tmp_path / "m.sqlite3"
    first_store = Store.open(path)
    first = LiveMeter(inst, store=first_store, speed=0)
    first.run(threading.Event(), until_s=stop_s)
    first_store.close()
    assert first.meter.active_conditions == {("reverse-power", None)} and first.meter.leds.reverse
    second_store = Store.open(path)
    second = LiveMeter(inst, store=second_store, speed=0)
    assert second.meter.state() == first.meter.state()
    second.run(threading.Event(), until_s=end_s)
    a, b = twin.meter, second.meter
    assert b.register_quanta == a.register_quanta > 0
    assert b.reverse_quanta == a.reverse_quanta > 0
    assert {n: b.closures(n) for n in b.output_names} == {n: a.closures(n) for n in a.output_names}
    assert b.leds == a.leds and b.active_conditions == a.active_conditions
    assert b.state() == a.state()
    assert second.time_s == twin.time_s == end_s
    # the event log across the restart is the twin's
    second_store.close()
    logged = [(e.time_s, e.kind, e.active, e.element) for e in Store.open(path).events()]
    assert logged == [(e.time_s, e.kind, e.active, e.element) for e in twin.publish().recent_events]
    assert len(logged) >= 4
