"""SPEC S4.2: any split of a stream into chunks gives the same register, transitions,
LED changes and events as feeding it whole (property test)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minimeter import Meter

from .conftest import feed_in_chunks, sine_frames

FS = 2000.0
# 30 s at 2 kHz, a 7B with a 3 kW leg, a reversed 0.5 A leg and noise: transitions on
# every output, partial cycles at both ends.
_V, _A = sine_frames(30.0, FS, volts_rms=(121.0, 119.0), amps_rms=(25.0, 0.5), angle_deg=(25.0, 180.0),
                     volt_angle_deg=(13.0, 193.0), frequency_hz=59.7)
_RNG = np.random.default_rng(11)
_V = _V + _RNG.normal(0, 0.5, _V.shape)
_A = _A + _RNG.normal(0, 0.02, _A.shape)


def _whole():
    meter = Meter.for_model("7B")
    result = feed_in_chunks(meter, _V, _A, FS, [])
    return meter, result


_REFERENCE = _whole()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=40))
def test_s4_2_any_chunking_gives_identical_register_and_transitions(sizes):
    ref_meter, (ref_tr, ref_led, ref_ev) = _REFERENCE
    meter = Meter.for_model("7B")
    tr, led, ev = feed_in_chunks(meter, _V, _A, FS, sizes)
    assert meter.register_quanta == ref_meter.register_quanta
    assert meter.reverse_watt_hours == ref_meter.reverse_watt_hours
    assert [(t.output, t.state, t.cause) for t in tr] == [(t.output, t.state, t.cause) for t in ref_tr]
    assert np.allclose([t.time_s for t in tr], [t.time_s for t in ref_tr], rtol=0, atol=1e-6)
    assert [(c.led, c.state) for c in led] == [(c.led, c.state) for c in ref_led]
    assert np.allclose([c.time_s for c in led], [c.time_s for c in ref_led], rtol=0, atol=1e-6)
    assert [(e.kind, e.active, e.element) for e in ev] == [(e.kind, e.active, e.element) for e in ref_ev]


def test_s4_2_reference_run_is_not_trivial():
    meter, (tr, _, _) = _REFERENCE
    # P1 = 121·25·cos 25° = 2741.6 W over 30 s ≈ 22.85 Wh: two closures of output 10
    assert abs(meter.watt_hours - 121 * 25 * np.cos(np.radians(25)) * 30 / 3600 + 119 * 0.5 * 30 / 3600) < 0.05
    assert meter.closures("10") == 2
    assert len(tr) >= 5
