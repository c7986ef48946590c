"""SPEC S9.4 (issue 16 item 4): calibration that holds where it was not fitted — a CT
error model whose phase is an angle, a delay or ∝ 1/f; the level the tables are read at
follows the current within a cycle; the line frequency measured for the angle part;
calibration at two frequencies split into angle and delay; a CT type from several units."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter.lab.calibration import (Calibration, ElementCalibration, FrequencyState, average_calibrations,
                                       combine_frequencies, track_frequency)
from minimeter.sources.frontend import CtErrors, SlidingState, half_cycle_widths, preset, sliding_mean


def test_s9_4_ct_phase_laws_move_with_frequency_as_stated():
    """2° given at 60 Hz: an angle stays 2° at 50 Hz, a delay becomes 2·50/60°, an
    inductive lead 2·60/50°; the ratio error does not move."""
    base = dict(current_a=(10.0,), ratio_error_percent=(-1.0,), phase_displacement_deg=(2.0,))
    level = np.array([10.0])
    for law, expected in (("angle", 2.0), ("delay", 2.0 * 50 / 60), ("inductive", 2.0 * 60 / 50)):
        gain, phase = CtErrors(**base, phase_law=law).at(level, 50.0)
        assert gain[0] == pytest.approx(0.99, abs=1e-15)
        assert phase[0] == pytest.approx(expected, abs=1e-12)


def test_s9_4_ct_units_of_a_type_differ_within_the_spread_and_repeat():
    ct = preset("typical").ct
    a, b, again = ct.unit(1), ct.unit(2), ct.unit(1)
    assert a == again and a != b
    for unit in (a, b):
        assert np.all(np.abs(np.subtract(unit.ratio_error_percent, ct.ratio_error_percent)) <= 0.08 + 1e-12)
        assert np.all(np.abs(np.subtract(unit.phase_displacement_deg, ct.phase_displacement_deg)) <= 0.03 + 1e-12)


def test_s9_4_level_follows_a_step_within_half_a_cycle_and_any_chunking():
    """At 2400 Hz half a 60 Hz period is 20 samples: the boxcar of i² over it is the rms²
    of that half cycle exactly, so 20 samples after a step from 5 A to 150 A the level
    is 150 A (and 5 A before it)."""
    fs, f = 2400.0, 60.0
    t = np.arange(2400) / fs
    amps = math.sqrt(2) * np.where(t < 0.5, 5.0, 150.0) * np.cos(2 * np.pi * f * t - 0.3)
    widths = half_cycle_widths(fs, [f])
    assert widths == (20.0,)
    whole, _ = sliding_mean(amps[None] ** 2, widths, SlidingState.start(1, widths))
    level = np.sqrt(whole[0])
    step = int(0.5 * fs)
    assert np.allclose(level[100:step], 5.0, rtol=1e-12)
    assert np.allclose(level[step + 19:], 150.0, rtol=1e-12)
    assert level[step + 18] < 150.0
    two_stage = half_cycle_widths(fs, [60.0, 50.0])          # the calibration's cascade, fractional second width
    ref, _ = sliding_mean(amps[None] ** 2, two_stage, SlidingState.start(1, two_stage))
    for chunk in (1, 7, 333):
        state, pieces = SlidingState.start(1, two_stage), []
        for k in range(0, amps.size, chunk):
            y, state = sliding_mean(amps[None, k:k + chunk] ** 2, two_stage, state)
            pieces.append(y)
        assert np.allclose(np.concatenate(pieces, 1), ref, rtol=1e-12, atol=1e-9)
    assert np.allclose(np.sqrt(ref[0, step + 50:]), 150.0, rtol=1e-3)      # 2f nulled at 60 Hz by the first stage


@pytest.mark.parametrize("f", [50.0, 58.8, 61.2])
def test_s9_4_line_frequency_is_measured_from_the_voltage(f):
    fs = 2000.0
    t = np.arange(4000) / fs
    volts = 170.0 * np.sin(2 * np.pi * f * t + 0.4)[None]
    got, state = track_frequency(volts, fs, FrequencyState.start(1, 60.0))
    assert got[0, 0] == 60.0                                   # the fitted frequency until two crossings are seen
    assert got[0, -1] == pytest.approx(f, rel=2e-4)            # linear interpolation of the crossing, 2 kHz
    st, parts = FrequencyState.start(1, 60.0), []
    for k in range(0, 4000, 123):
        y, st = track_frequency(volts[:, k:k + 123], fs, st)
        parts.append(y)
    assert np.array_equal(np.concatenate(parts, 1), got)


def test_s9_4_two_frequencies_split_the_phase_into_angle_and_delay():
    """A CT leading 1.5° (an angle) behind a 50 µs skew (a delay): the phase to correct
    is 1.5° + 360·60·50e-6 = 2.58° at 60 Hz and 1.5° + 0.9° = 2.4° at 50 Hz. Fitted as
    delays at each frequency, combining gives back 1.5° and 50 µs."""
    def at(f):
        beta = 1.5 + 360 * f * 50e-6
        return Calibration((ElementCalibration(current_a=(10.0,), amps_gain=(1.01,),
                                               phase_delay_s=(beta / (360 * f),)),), frequency_hz=f)

    both = combine_frequencies([at(60.0), at(50.0)]).elements[0]
    assert both.phase_angle_deg[0] == pytest.approx(1.5, abs=1e-9)
    assert both.phase_delay_s[0] == pytest.approx(50e-6, abs=1e-14)
    assert both.amps_gain == (1.01,)


def test_s9_4_a_type_calibration_averages_units_at_the_first_units_currents():
    a = Calibration((ElementCalibration(current_a=(2.0, 200.0), amps_gain=(1.02, 1.00),
                                        phase_delay_s=(100e-6, 50e-6)),))
    b = Calibration((ElementCalibration(current_a=(2.0, 20.0, 200.0), amps_gain=(1.04, 1.03, 1.02),
                                        phase_delay_s=(120e-6, 90e-6, 70e-6)),))
    c = average_calibrations([a, b]).elements[0]
    assert c.current_a == (2.0, 200.0)
    assert c.amps_gain == pytest.approx((1.03, 1.01), abs=1e-12)
    assert c.phase_delay_s == pytest.approx((110e-6, 60e-6), abs=1e-15)


def test_s9_4_cli_calibrates_a_ct_type_at_two_frequencies(tmp_path):
    from click.testing import CliRunner

    from minimeter.cli import main
    from minimeter.lab.calibration import load_calibration

    out = tmp_path / "type.json"
    result = CliRunner().invoke(main, ["calibrate", "--front-end", "metering", "--frequency", "60", "--frequency", "50",
                                       "--ct-unit", "1", "--ct-unit", "2", "--seconds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    cal = load_calibration(out)
    assert any("units 1, 2" in n for n in cal.notes) and any("fitted at 60, 50 Hz" in n for n in cal.notes)
    c = cal.elements[0]
    # the metering CT's displacement is an angle (0.25° at 200 A) and it has no skew: the
    # split gives the angle and next to no delay
    assert c.phase_angle_deg[-1] == pytest.approx(0.25, abs=0.02)
    assert abs(c.phase_delay_s[-1]) < 1e-6
    clash = CliRunner().invoke(main, ["calibrate", "--phase-as", "angle", "--out", str(out)])
    assert clash.exit_code == 2 and "--phase-as applies to one --frequency" in clash.output
