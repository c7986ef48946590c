"""Meter.state() / Meter.restore(): a meter restored from a snapshot continues bit for
bit (issue 8; SPEC S5.2, S10.1). Every comparison is against a meter that ran the same
stream uninterrupted, and the energies against hand figures."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from minimeter import EventKind, Meter, MeterSnapshot
from minimeter.drive import feed_cycles, feed_samples
from minimeter.meter import CycleBlock
from minimeter.meter.register import QUANTA_PER_WH
from minimeter.meter.snapshot import InvalidSnapshot
from minimeter.sources.service import Load, Service, ideal_source

F_HZ = 60.0
CYCLES_PER_HOUR = int(3600 * F_HZ)


def _blocks(net_w_per_element: tuple[float, float], hours: float, volts: float, start_cycle: int,
            per_block: int = 36_000) -> list[CycleBlock]:
    """Hand-made phasor-path cycles: two elements at ``volts`` with the given powers [W]."""
    total = int(round(hours * CYCLES_PER_HOUR))
    out = []
    for lo in range(0, total, per_block):
        m = min(per_block, total - lo)
        k = np.arange(start_cycle + lo, start_cycle + lo + m)
        start = k / F_HZ
        duration = np.full(m, 1 / F_HZ)
        power = np.array([[net_w_per_element[0]] * m, [net_w_per_element[1]] * m])
        amps = np.abs(power) / max(volts, 1e-9) if volts > 0 else np.zeros_like(power)
        out.append(CycleBlock(start, duration, np.full(m, F_HZ), np.zeros(m, bool), power,
                              power * duration / 3600.0, np.full((2, m), volts), amps))
    return out


def _script() -> list[CycleBlock]:
    """1 h at −10 kW net (10 kWh reverse), 10 min without supply, 1 h at +4.5 kW, then
    30 min at +3.234 kW."""
    blocks = _blocks((-6000.0, -4000.0), 1.0, 120.0, 0)
    c = CYCLES_PER_HOUR
    blocks += _blocks((0.0, 0.0), 1 / 6, 0.0, c)
    c += CYCLES_PER_HOUR // 6
    blocks += _blocks((3000.0, 1500.0), 1.0, 120.0, c)
    c += CYCLES_PER_HOUR
    blocks += _blocks((2000.0, 1234.0), 0.5, 120.0, c)
    return blocks


def _collect(meter: Meter, blocks, close: bool):
    transitions, changes, events = [], [], []
    for update in feed_cycles(meter, blocks, close=close):
        transitions += update.transitions
        changes += update.led_changes
        events += update.events
    return transitions, changes, events


def _outcome(meter: Meter):
    snap = meter.state()
    return (snap.register_quanta, snap.reverse_quanta, snap.closures, snap.outputs_on,
            (snap.power_led, snap.load_led, snap.reverse_led), snap.active, snap.time_s)


@pytest.mark.parametrize("cut", [1, 3, 8])
def test_s5_2_restore_continues_bit_for_bit_with_10_kwh_reverse(cut):
    blocks = _script()
    whole = Meter.for_model("7B", ct_rating="200A")
    expected = _collect(whole, blocks, close=True)

    first = Meter.for_model("7B", ct_rating="200A")
    got_a = _collect(first, blocks[:cut], close=False)
    snap = first.state()
    # through JSON, as a store would keep it
    text = json.dumps(snap.as_dict())
    restored = Meter.for_model("7B", ct_rating="200A")
    restored.restore(MeterSnapshot.from_dict(json.loads(text)))
    got_b = _collect(restored, blocks[cut:], close=True)

    assert tuple(a + b for a, b in zip(got_a, got_b)) == tuple(expected)
    assert _outcome(restored) == _outcome(whole)
    # hand figures: 10 kWh reverse; 4.5 kWh + 1.617 kWh forward; closures floor(6117 / Kh)
    assert Fraction(restored.reverse_quanta, QUANTA_PER_WH) == pytest.approx(10_000, abs=1e-6)
    assert Fraction(restored.register_quanta, QUANTA_PER_WH) == pytest.approx(6_117, abs=1e-6)
    assert restored.closures("10") == 611 and restored.closures("100") == 61 and restored.closures("1000") == 6
    kinds = {(ev.kind, ev.active) for ev in expected[2]}
    assert (EventKind.REVERSE_POWER, True) in kinds and (EventKind.POWER_LOSS, True) in kinds


def test_s5_2_snapshot_mid_reverse_keeps_active_conditions_and_leds():
    blocks = _script()
    meter = Meter.for_model("7B", ct_rating="200A")
    _collect(meter, blocks[:2], close=False)          # inside the −10 kW hour
    snap = meter.state()
    assert (EventKind.REVERSE_POWER, None) in snap.active
    assert snap.reverse_led and snap.power_led
    again = Meter.for_model("7B", ct_rating="200A")
    again.restore(MeterSnapshot.from_dict(json.loads(json.dumps(snap.as_dict()))))
    assert again.state() == snap
    assert again.active_conditions == frozenset({(EventKind.REVERSE_POWER, None)})


def test_s4_2_restore_mid_stream_on_the_sample_path_keeps_the_open_cycle():
    service = Service("split", volts=120.0, frequency_hz=F_HZ)
    loads = (Load(1800.0, 0.8, connection="L1"), Load(600.0, 1.0, connection="L2"))
    source = ideal_source(service, loads, elements=2)
    fs = 7812.5
    chunks = [(f.volts, f.amps) for f in source.frames(20.0, fs, 10_007)]   # chunks end mid-cycle

    def run(meter, part, close):
        out = []
        for update in feed_samples(meter, part, fs, close=close):
            out += [(t.output, t.state, t.time_s, t.cause) for t in update.transitions]
        return out

    whole = Meter.for_model("7B", ct_rating="200A")
    expected = run(whole, chunks, True)
    first = Meter.for_model("7B", ct_rating="200A")
    got = run(first, chunks[:7], False)
    snap = first.state()
    assert snap.stream is not None                    # an open line cycle travels with it
    restored = Meter.for_model("7B", ct_rating="200A")
    restored.restore(MeterSnapshot.from_dict(json.loads(json.dumps(snap.as_dict()))))
    got += run(restored, chunks[7:], True)
    assert got == expected
    assert restored.register_quanta == whole.register_quanta
    # 2400 W for 20 s = 13.333 Wh (rectangle rule on whole cycles, within S4.7's 0.01 %)
    assert restored.watt_hours == pytest.approx(2400 * 20 / 3600, rel=1e-4)


def test_s8_2_restore_refuses_a_snapshot_of_another_model_or_a_malformed_one():
    snap = Meter.for_model("7B", ct_rating="200A").state()
    with pytest.raises(InvalidSnapshot, match="7B"):
        Meter.for_model("MO", ct_rating="200A").restore(snap)
    with pytest.raises(InvalidSnapshot, match="not a meter snapshot"):
        MeterSnapshot.from_dict({"register_quanta": 5})
    data = snap.as_dict()
    data["register_quanta"] = "lots"
    with pytest.raises(InvalidSnapshot, match="integers"):
        MeterSnapshot.from_dict(data)
