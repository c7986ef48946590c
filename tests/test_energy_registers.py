"""SPEC S12.2: import/export, four-quadrant reactive, apparent and demand registers.

The expected energies are closed forms: a sinusoidal V∠0 and I∠θ held for T seconds
gives P = V·I·cos θ, Q₁ = −V·I·sin θ and S = V·I, so P·T, |Q₁|·T and S·T [·h/3600].
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from minimeter.drive import feed_source
from minimeter.errors import MinimeterError
from minimeter.meter import EventKind, Meter, MeterSnapshot
from minimeter.sources.service import Component, Profile, SyntheticSource

ROOT2 = math.sqrt(2.0)
F = 60.0
V, I = 120.0, 25.0
SEGMENT_S = 30.0
# current angle θ of each segment, and its quadrant (I: import lag, II: export lag, III: export lead, IV: import lead)
ANGLES_DEG = ((-30.0, 0), (150.0, 2), (-150.0, 1), (30.0, 3))


def _four_quadrant_source(sample_path: bool = True) -> tuple[SyntheticSource, list[float]]:
    """Segments change on a cycle's edge: on the sample path where cos(2πft) rises through
    zero (0.75 of a period), on the phasor path at whole periods from 0."""
    cross_s = 0.75 / F if sample_path else 0.0
    edges = [0.0] + [cross_s + SEGMENT_S * k for k in range(1, 4)]
    amps = []
    for k, (theta, _) in enumerate(ANGLES_DEG):
        on = Profile((edges[k], edges[k + 1]), (1.0, 0.0)) if k < 3 else Profile((edges[k],), (1.0,))
        amps.append(Component(I * ROOT2, 1, math.radians(theta), on))
    source = SyntheticSource(F, ((Component(V * ROOT2, 1, 0.0),),), (tuple(amps),))
    return source, edges + [4 * SEGMENT_S]


@pytest.mark.parametrize("sample_rate_hz", [6000.0, 4000.0, None])
def test_s12_2_four_quadrants_fill_each_register_with_its_closed_form(sample_rate_hz):
    source, edges = _four_quadrant_source(sample_rate_hz is not None)
    meter = Meter.for_model("MO", ct_rating="200A", quantities=True)
    for _ in feed_source(meter, source, edges[-1], sample_rate_hz=sample_rate_hz):
        pass
    regs = meter.registers
    expect_varh = [0.0] * 4
    expect_import = expect_export = 0.0
    for k, (theta, quadrant) in enumerate(ANGLES_DEG):
        hours = (edges[k + 1] - edges[k]) / 3600.0
        p = V * I * math.cos(math.radians(theta)) * hours
        expect_import += max(p, 0.0)
        expect_export += max(-p, 0.0)
        expect_varh[quadrant] += V * I * abs(math.sin(math.radians(theta))) * hours
    for got, want in zip(regs.varh, expect_varh):
        assert got == pytest.approx(want, rel=1e-4)
    assert regs.import_wh[0] == pytest.approx(expect_import, rel=1e-4)
    assert regs.export_wh[0] == pytest.approx(expect_export, rel=1e-4)
    assert regs.vah == pytest.approx(V * I * edges[-1] / 3600.0, rel=1e-4)
    assert meter.watt_hours == pytest.approx(expect_import, rel=1e-4)        # the forward register: unchanged meaning


def test_s12_2_registers_are_exact_integers_and_survive_a_snapshot():
    source, edges = _four_quadrant_source()
    meter = Meter.for_model("MO", ct_rating="200A", quantities=True)
    for _ in feed_source(meter, source, 20.0, sample_rate_hz=4000.0):
        pass
    snap = MeterSnapshot.from_dict(json.loads(json.dumps(meter.state().as_dict())))
    again = Meter.for_model("MO", ct_rating="200A", quantities=True)
    again.restore(snap)
    assert again.registers == meter.registers
    assert all(isinstance(q, int) for q in (*again.registers.varh_quanta, again.registers.vah_quanta))
    old = meter.state().as_dict()
    del old["quantities"]                                          # a snapshot from before S12 still loads
    plain = Meter.for_model("MO", ct_rating="200A", quantities=True)
    plain.restore(MeterSnapshot.from_dict(old))
    assert plain.registers.vah == 0.0 and plain.watt_hours == meter.watt_hours


def _demand_source() -> SyntheticSource:
    """Unity-PF load: 1 kW for the first 15-minute block, 3 kW from 900 s to 1350 s and
    then 2 kW to 2700 s; then 500 W."""
    watts = Profile((0.0, 900.0, 1350.0, 2700.0), (1000.0, 3000.0, 2000.0, 500.0))
    amps = Component(ROOT2 / V, 1, 0.0, watts)
    return SyntheticSource(F, ((Component(V * ROOT2, 1, 0.0),),), ((amps,),))


def test_s12_2_maximum_demand_is_the_peak_block_with_its_time():
    meter = Meter.for_model("MO", ct_rating="200A", quantities=True)
    for _ in feed_source(meter, _demand_source(), 3000.0):
        pass
    regs = meter.registers
    peak_wh = 3000.0 * 450 / 3600 + 2000.0 * 450 / 3600         # block 900–1800 s: 625 Wh in 15 min
    assert regs.max_demand_w == pytest.approx(peak_wh * 4, rel=1e-6)    # 2500 W
    assert regs.max_demand_time_s == 900.0
    assert regs.demand_w == pytest.approx(500.0 * 300 / 3600 * 4, rel=1e-6)   # 2700–3000 s of the open block
    event = meter.reset_max_demand()
    assert event.kind == EventKind.DEMAND_RESET and event.value == pytest.approx(2500.0, rel=1e-6)
    assert "reset by command" in event.message
    assert meter.registers.max_demand_w == 0.0 and meter.registers.max_demand_time_s is None
    assert meter.registers.vah == regs.vah                         # nothing else changes


def test_s12_2_demand_reset_needs_the_registers():
    with pytest.raises(MinimeterError, match="quantities=True"):
        Meter.for_model("MO").reset_max_demand()


def test_s12_4_live_snapshot_carries_the_quantities_and_the_store_keeps_the_registers(tmp_path):
    """A live 7B with 2400 W at PF 0.8 lagging on each leg (120 V): Q₁ = P·tan φ = 1800 var,
    S = 3000 VA per element; the registers persist and a restart continues them; a
    demand reset is an event in the store."""
    from tests.test_live_support import constant_installation
    from minimeter.live.runner import LiveMeter
    from minimeter.live.store import Store

    store = Store.open(tmp_path / "m.sqlite3")
    live = LiveMeter(constant_installation((2400.0, "L1"), (2400.0, "L2"), pf=0.8), store=store, speed=0)
    live.run(threading.Event(), hours=0.5)
    snap = live.publish()
    assert snap.reactive_power_var == pytest.approx((1800.0, 1800.0), rel=1e-9)
    assert snap.apparent_power_va == pytest.approx((3000.0, 3000.0), rel=1e-9)
    assert snap.displacement_pf == pytest.approx((0.8, 0.8), rel=1e-9)
    assert snap.thd_i_percent == pytest.approx((0.0, 0.0), abs=1e-9)
    assert snap.harmonics.amps_rms[0][0] == pytest.approx(25.0, rel=1e-9)          # 2400 W / (120 V · 0.8)
    regs = snap.registers
    assert regs.varh[0] == pytest.approx(2 * 1800.0 * 0.5, rel=1e-6)                # quadrant I, both legs
    assert regs.vah == pytest.approx(2 * 3000.0 * 0.5, rel=1e-6)
    assert regs.max_demand_w == pytest.approx(4800.0, rel=1e-6) and regs.max_demand_time_s == 0.0
    body = json.loads(json.dumps(snap.as_dict()))
    assert body["registers"]["varh"][0] == pytest.approx(1800.0, rel=1e-6)
    assert body["harmonics"]["orders"][:3] == [1, 2, 3] and body["reactive_power_var"][1] == pytest.approx(1800.0)
    event = live.reset_max_demand()
    store.close()

    again = Store.open(tmp_path / "m.sqlite3")
    second = LiveMeter(constant_installation((2400.0, "L1"), (2400.0, "L2"), pf=0.8), store=again, speed=0)
    assert second.meter.registers.vah_quanta == regs.vah_quanta                    # exact, through the store
    assert second.meter.registers.max_demand_w == 0.0                               # the reset was committed
    assert [ev.kind for ev in again.events() if ev.kind == EventKind.DEMAND_RESET] == [EventKind.DEMAND_RESET]
    assert event.value == pytest.approx(4800.0, rel=1e-6)
    again.close()


def test_s12_2_a_damaged_snapshot_of_the_registers_is_refused_and_changes_nothing():
    from minimeter.meter.snapshot import InvalidSnapshot

    source, edges = _four_quadrant_source()
    meter = Meter.for_model("MO", ct_rating="200A", quantities=True)
    for _ in feed_source(meter, source, 5.0, sample_rate_hz=4000.0):
        pass
    data = meter.state().as_dict()
    data["quantities"]["fields"]["registers"]["fields"]["vah_quanta"] = -5
    target = Meter.for_model("MO", ct_rating="200A", quantities=True)
    before = target.state()
    with pytest.raises(InvalidSnapshot, match="non-negative integers"):
        target.restore(MeterSnapshot.from_dict(data))
    assert target.state() == before


def test_s12_2_registers_and_windows_do_not_depend_on_the_chunking():
    source, _ = _four_quadrant_source()
    results = []
    for chunk in (97, 4096, 1 << 16):
        meter = Meter.for_model("MO", ct_rating="200A", quantities=True)
        windows = [u.quantities.windows.reactive_power_var for u, _ in
                   feed_source(meter, source, 3.0, sample_rate_hz=4000.0, chunk_frames=chunk)
                   if u.quantities is not None]
        results.append((meter.registers, np.concatenate(windows, axis=1)))
    for regs, q1 in results[1:]:
        assert regs == results[0][0]                                 # exact integers, bit for bit
        np.testing.assert_array_equal(q1, results[0][1])
