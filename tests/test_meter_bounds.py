"""SPEC §15 (S15.1, S15.2) and S8.2 on the Meter API: every keyword and feed argument has
a stated bound, checked once; beyond it a one-line error naming the input and the bound;
a call that fails changes nothing, and the next good input continues as if the bad one
never came. Energies are checked against hand figures (V · I · cos φ · t)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from minimeter import InvalidSamples, Meter, MinimeterError
from minimeter.errors import InvalidOption
from minimeter.meter import CycleBlock
from minimeter.meter.catalog import meter_spec
from minimeter.meter.register import MAX_CYCLE_WH, QUANTA_PER_WH, to_quanta
from minimeter.meter.snapshot import InvalidSnapshot

from .conftest import sine_frames

FS = 4000.0


def _state(meter: Meter) -> dict:
    """Everything the meter carries, as plain values (arrays included)."""
    return meter.state().as_dict()


def _cycles(energy_wh: float, *, elements: int = 1, duration_s: float = 1 / 60, volts: float = 120.0) -> CycleBlock:
    """One phasor-path cycle carrying ``energy_wh`` on element 1."""
    power = np.zeros((elements, 1))
    power[0, 0] = energy_wh * 3600.0 / duration_s
    return CycleBlock(np.zeros(1), np.full(1, duration_s), np.full(1, 60.0), np.zeros(1, bool), power,
                      power * duration_s / 3600.0, np.full((elements, 1), volts), np.full((elements, 1), 10.0))


# ----------------------------------------------------------------------------- S15.1 keywords
@pytest.mark.parametrize("keyword, value", [
    ("tracking_min_hz", -40.0), ("tracking_min_hz", 0.0), ("tracking_min_hz", math.inf),
    ("tracking_min_hz", math.nan), ("tracking_min_hz", 50.0), ("tracking_min_hz", "40"),
    ("full_scale_v", math.nan), ("full_scale_v", 0.0), ("full_scale_v", -300.0), ("full_scale_v", 1e9),
    ("full_scale_a", math.inf), ("full_scale_a", 0.0), ("full_scale_a", 1e9),
    ("hysteresis_v", -1.0), ("hysteresis_v", 100.0), ("hysteresis_v", True),
    ("register_wh", -1.0), ("register_wh", math.nan), ("register_wh", 1e13), ("register_wh", 10 ** 400),
    ("register_quanta", -1), ("register_quanta", 1.5), ("register_quanta", True),
    ("register_quanta", 10 ** 40),
    ("reverse_deadband_w", -1.0), ("reverse_deadband_w", math.inf),
    ("calibration", object()),
])
def test_s15_1_meter_keyword_beyond_its_bound_is_refused_by_name(keyword, value):
    with pytest.raises(InvalidOption, match=keyword):
        Meter.for_model("MO", **{keyword: value})


def test_s15_1_keywords_at_their_bounds_are_accepted():
    meter = Meter.for_model("MO", tracking_min_hz=45.0, hysteresis_v=0.0, register_quanta=0,
                            full_scale_v=Meter.for_model("MO").input_ceiling_v, reverse_deadband_w=0.0)
    assert meter.tracking_min_hz == 45.0
    assert Meter.for_model("MO", tracking_min_hz=1.0).tracking_min_hz == 1.0
    # the ceilings are 10 × the default full scale: 1.5 · 138 · √2 V and 2 · 220 · √2 A on 200 A
    assert meter.input_ceiling_v == pytest.approx(10 * 1.5 * 138 * math.sqrt(2))
    assert meter.input_ceiling_a == pytest.approx(10 * 2 * 220 * math.sqrt(2))


def test_s15_1_ct_ratio_is_bounded():
    with pytest.raises(InvalidOption, match="CT ratio"):
        Meter.for_model("MO", ct_rating="0.1A", ct_ratio="1e300:0.1")


# ----------------------------------------------------------------------------- S15.1/S15.2 feed
def _bad_feed(case: str, v: np.ndarray, a: np.ndarray):
    """(volts, amps, rate, keywords, message) for one bad chunk."""
    table = {
        "complex volts": (v.astype(complex) + 1j, a, FS, {}, "complex"),
        "complex amps": (v, a * (1 + 0j), FS, {}, "complex"),
        "object": (v.astype(object), a, FS, {}, "real samples"),
        "text": (v.astype(str), a, FS, {}, "real samples"),
        "overflow ×1e150": (v * 1e150, a * 1e150, FS, {}, "ceiling"),
        "amps beyond ceiling": (v, a * 1e3, FS, {}, r"amps\[0\].*ceiling"),
        "rate nan": (v, a, math.nan, {}, "sample_rate_hz"),
        "rate text": (v, a, "4000", {}, "sample_rate_hz"),
        "rate bool": (v, a, True, {}, "sample_rate_hz"),
        "rate 100 Hz": (v, a, 100.0, {}, "sample_rate_hz must be ≥ 500"),
        "rate 1e9": (v, a, 1e9, {}, "sample_rate_hz"),
        "amps_are": (v, a, FS, {"amps_are": "tertiary"}, "amps_are"),
        "secondary beyond ceiling": (v, a * 1e3, FS, {"amps_are": "secondary"}, r"amps \(secondary\).*ceiling"),
    }
    return table[case]


@pytest.mark.parametrize("case", [
    "complex volts", "complex amps", "object", "text", "overflow ×1e150", "amps beyond ceiling", "rate nan",
    "rate text", "rate bool", "rate 100 Hz", "rate 1e9", "amps_are", "secondary beyond ceiling",
])
def test_s15_2_bad_chunk_changes_nothing_and_the_stream_goes_on(case):
    """A bad chunk in the middle of a stream: refused with a message naming it, the meter
    exactly as before, and the whole stream (without the bad chunk) registers what a meter
    that never saw it registers — 120 V · 30 A · 10 s = 10 Wh by hand."""
    volts, amps = sine_frames(10.0, FS, amps_rms=(30.0,))
    half = volts.shape[1] // 2
    clean = Meter.for_model("MO")
    meter = Meter.for_model("MO")
    for m in (clean, meter):
        m.feed(volts[:, :half], amps[:, :half], FS)
    before = _state(meter)
    v, a, rate, kw, message = _bad_feed(case, volts[:, half:], amps[:, half:])
    with pytest.raises(InvalidSamples, match=message):
        meter.feed(v, a, rate, **kw)
    assert _state(meter) == before
    for m in (clean, meter):
        m.feed(volts[:, half:], amps[:, half:], FS)
        m.close()
    assert meter.register_quanta == clean.register_quanta
    assert meter.watt_hours == pytest.approx(120 * 30 * 10 / 3600, rel=1e-4)


def test_s15_2_overflowing_chunk_then_good_chunk_registers_exactly_the_good_ones_energy():
    """The issue's case: a ×1e150 chunk first, then 60 s of 120 V · 40 A at PF 0.8:
    the register holds 120 · 40 · 0.8 · 60 / 3600 = 64 Wh (S4.7: 0.01 %), the same quanta
    as a meter that never saw the bad chunk."""
    volts, amps = sine_frames(60.0, FS, amps_rms=(40.0,), angle_deg=(math.degrees(math.acos(0.8)),))
    meter, clean = Meter.for_model("MO"), Meter.for_model("MO")
    with pytest.raises(InvalidSamples, match="ceiling"):
        meter.feed(volts[:, :4000] * 1e150, amps[:, :4000] * 1e150, FS)
    for m in (meter, clean):
        m.feed(volts, amps, FS)
        m.close()
    assert meter.register_quanta == clean.register_quanta
    assert meter.watt_hours == pytest.approx(64.0, rel=1e-4)


def test_s15_2_a_failed_first_feed_does_not_fix_the_meters_mode():
    """A refused sample chunk leaves a fresh meter fresh: it may still be fed cycles."""
    meter = Meter.for_model("MO")
    with pytest.raises(InvalidSamples):
        meter.feed(np.full(100, np.nan), np.zeros(100), FS)
    meter.feed_cycles(_cycles(1.0))
    assert meter.register_quanta == 1 * QUANTA_PER_WH


class _Gain:
    """A calibration that multiplies the current by ``gain`` (a runaway calibration)."""

    def __init__(self, gain):
        self.gain = gain

    def initial_state(self, elements, sample_rate_hz):
        return None

    def apply(self, volts, amps, sample_rate_hz, state):
        return volts, amps * self.gain, state


def test_s15_1_a_calibration_driving_samples_beyond_the_ceiling_is_refused():
    """Issue 9: a calibration gain of 1e9 must not hang the meter: the calibrated
    current is beyond the input ceiling, named as such, and nothing moves."""
    volts, amps = sine_frames(1.0, FS)
    meter = Meter.for_model("MO", calibration=_Gain(1e9))
    before = _state(meter)
    with pytest.raises(InvalidSamples, match="calibrated amps"):
        meter.feed(volts, amps, FS)
    assert _state(meter) == before


# ----------------------------------------------------------------------------- phasor path
@pytest.mark.parametrize("field, value, message", [
    ("duration_s", np.zeros(1), "duration_s"),
    ("duration_s", np.full(1, 7200.0), "duration_s"),
    ("start_s", np.full(1, -1.0), "start_s"),
    ("volts_rms", np.full((1, 1), -1.0), "volts_rms"),
    ("volts_rms", np.full((1, 1), 1e6), "volts_rms"),
    ("amps_rms", np.full((1, 1), np.nan), "amps_rms"),
    ("power_w", np.full((1, 1), np.inf), "power_w"),
    ("power_w", np.full((1, 1), 1e300), "power_w"),
    ("frequency_hz", np.full(1, -60.0), "frequency_hz"),
    ("energy_wh", np.full((2, 1), 1.0), "energy_wh"),
    ("partial", np.zeros(1), "partial"),
    ("power_w", np.full((1, 1), 1 + 2j), "power_w"),
])
def test_s15_1_per_cycle_quantity_beyond_its_bound_is_refused_and_changes_nothing(field, value, message):
    meter = Meter.for_model("MO")
    meter.feed_cycles(_cycles(2.0))
    before = _state(meter)
    with pytest.raises(InvalidSamples, match=message):
        meter.feed_cycles(dataclasses.replace(_cycles(1.0), **{field: value}))
    assert _state(meter) == before
    meter.feed_cycles(_cycles(1.0))
    assert meter.register_quanta == 3 * QUANTA_PER_WH


def test_s15_1_feed_cycles_refuses_what_is_not_a_cycle_block():
    with pytest.raises(InvalidSamples, match="CycleBlock"):
        Meter.for_model("MO").feed_cycles({"power_w": [1.0]})


def test_s15_2_a_phasor_cycle_of_2_24_wh_is_refused_not_wrapped():
    """Issue 9: to_quanta wrapped int64 at 2²³ Wh and counted the cycle as reverse
    energy. A cycle of 2²⁴ Wh is beyond the stated bounds (its mean power 3.6 TW is
    beyond the input ceilings' product; 2²⁴ Wh is beyond the register's 2²² Wh per
    cycle): refused, register and reverse register untouched."""
    meter = Meter.for_model("MO")
    meter.feed_cycles(_cycles(5.0))
    before = _state(meter)
    with pytest.raises(InvalidSamples, match="power_w"):
        meter.feed_cycles(_cycles(float(2 ** 24)))
    with pytest.raises(InvalidSamples, match="net energy_wh .* int64"):
        meter.feed_cycles(_cycles(float(2 ** 24), duration_s=3600.0))
    assert _state(meter) == before
    assert meter.reverse_quanta == 0


def test_s4_6_to_quanta_is_exact_up_to_its_bound_and_refuses_beyond():
    top = MAX_CYCLE_WH
    assert to_quanta(np.array([top, -top])).tolist() == [int(top) * QUANTA_PER_WH, -int(top) * QUANTA_PER_WH]
    for bad in (2.0 ** 23, 2.0 ** 24, -2.0 ** 24, np.nan):
        with pytest.raises(InvalidSamples, match="per-cycle bound"):
            to_quanta(np.array([1.0, bad]))


def test_s15_2_largest_cycles_inside_the_bounds_register_exactly():
    """A cycle at the register's per-cycle bound on the phasor path (an hour at
    2²² Wh: 4.2 MW, inside a 400 A 7B's ceilings) registers exactly, twice in a row,
    without wrapping or touching the reverse register."""
    # no pulse outputs: 2²² Wh would be 840 000 transitions of output 10 per cycle (bounded, but not the point)
    spec_meter = Meter(dataclasses.replace(meter_spec("7B", ct_rating="400A"), outputs_wh=()))
    hour = 3600.0
    block = CycleBlock(np.array([0.0, hour]), np.full(2, hour), np.full(2, 60.0), np.zeros(2, bool),
                       np.full((2, 2), MAX_CYCLE_WH / 2), np.full((2, 2), MAX_CYCLE_WH / 2),
                       np.full((2, 2), 138.0), np.full((2, 2), 440.0))
    spec_meter.feed_cycles(block)
    assert spec_meter.register_quanta == 2 * (1 << 22) * QUANTA_PER_WH
    assert spec_meter.reverse_quanta == 0


# ----------------------------------------------------------------------------- restore
def test_s15_2_restore_of_a_malformed_snapshot_changes_nothing():
    volts, amps = sine_frames(2.0, FS)
    meter = Meter.for_model("MO")
    meter.feed(volts, amps, FS)
    good = meter.state()
    before = _state(meter)
    bad = [
        dataclasses.replace(good, active=(("no-such-event", None),)),
        dataclasses.replace(good, register_quanta=-1),
        dataclasses.replace(good, register_quanta=1.5),
        dataclasses.replace(good, closures=(("10", -3), ("100", 0), ("1000", 0))),
        dataclasses.replace(good, time_s=math.nan),
        dataclasses.replace(good, mode="phasors"),
        dataclasses.replace(good, judged_volts=(math.inf,)),
        dataclasses.replace(good, stream=dataclasses.replace(good.stream, elements=2)),
        dataclasses.replace(good, stream=dataclasses.replace(good.stream, sample_rate_hz=-1.0)),
        dataclasses.replace(good, stream=dataclasses.replace(good.stream, tail_volts=good.stream.tail_volts * np.nan)),
    ]
    for snapshot in bad:
        with pytest.raises(InvalidSnapshot):
            meter.restore(snapshot)
        assert _state(meter) == before
    with pytest.raises(MinimeterError):
        meter.restore("not a snapshot")


def test_s15_1_output_transitions_of_one_feed_are_bounded_by_the_ceilings():
    """Issue 9: one Transition object per output edge grew without bound with an absurd
    energy. The most one second can carry is the ceilings' product per element
    (2927.4 V × 6222.5 A = 18.2 MW on a 200 A MO): 60 cycles at 99.9 % of it give
    5054.9 Wh, so by hand ⌊5054.9 / 5⌋ = 1010 edges of output 10, 101 of output 100 and 10
    of output 1000 — and anything beyond the ceiling is refused before one object is made."""
    meter = Meter.for_model("MO", ct_rating="200A")
    watts = 0.999 * meter.input_ceiling_v * meter.input_ceiling_a
    m, period = 60, 1 / 60
    power = np.full((1, m), watts)
    block = CycleBlock(np.arange(m) * period, np.full(m, period), np.full(m, 60.0), np.zeros(m, bool),
                       power, power * period / 3600, np.full((1, m), 138.0), np.full((1, m), 6000.0))
    energy_wh = watts / 3600
    assert energy_wh == pytest.approx(5054.9, rel=1e-4)
    update = meter.feed_cycles(block)
    edges = {name: sum(1 for tr in update.transitions if tr.output == name and tr.cause == "energy")
             for name in ("10", "100", "1000")}
    assert edges == {"10": math.floor(energy_wh / 5), "100": math.floor(energy_wh / 50), "1000": math.floor(energy_wh / 500)}
    with pytest.raises(InvalidSamples, match="power_w"):
        meter.feed_cycles(dataclasses.replace(block, power_w=power * 1.01 / 0.999, energy_wh=power * 1.01 / 0.999 * period / 3600))
