"""Calibration (SPEC S9.1): the meter's hook is pure and chunk-invariant; the makers'
sequence recovers the typical front end's errors as the preset's tables give them by
hand; the file round-trips; the meter loads it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from minimeter import Meter
from minimeter.lab.calibration import Calibration, ElementCalibration, calibrate, load_calibration
from minimeter.cli import main
from minimeter.sources.frontend import HALF_TAPS, InvalidFrontEnd, preset


def _sines(seconds, fs, v_rms, i_rms, lag_deg, f=60.0, elements=1):
    t = np.arange(int(seconds * fs)) / fs
    v = math.sqrt(2) * v_rms * np.cos(2 * np.pi * f * t)
    i = math.sqrt(2) * i_rms * np.cos(2 * np.pi * f * t - math.radians(lag_deg))
    return np.repeat(v[None], elements, 0), np.repeat(i[None], elements, 0)


CAL = Calibration((
    ElementCalibration(offset_v=0.3, offset_a=0.1, volts_gain=0.99, current_a=(2.0, 20.0, 200.0),
                       amps_gain=(1.03, 1.02, 1.01), phase_delay_s=(190e-6, 130e-6, 95e-6)),
    ElementCalibration(offset_v=-0.2, offset_a=0.0, volts_gain=1.01, current_a=(2.0, 200.0),
                       amps_gain=(1.0, 1.0), phase_delay_s=(-50e-6, -20e-6)),
))


def test_s9_1_calibration_hook_is_pure_and_chunk_invariant():
    fs = 2000.0
    v, a = _sines(3.0, fs, 120, 37, 25, elements=2)
    a[:, 2000:] *= 0.1                       # the current steps down: the tables are read at another level
    v0, a0 = v.copy(), a.copy()
    state = CAL.initial_state(2, fs)
    whole_v, whole_a, end = CAL.apply(v, a, fs, state)
    assert np.array_equal(v, v0) and np.array_equal(a, a0)           # inputs untouched
    again_v, again_a, _ = CAL.apply(v, a, fs, state)                 # the state was not mutated
    assert np.array_equal(again_v, whole_v) and np.array_equal(again_a, whole_a)
    for chunk in (1, 17, 400, 4999):
        st = CAL.initial_state(2, fs)
        pieces = []
        for k in range(0, v.shape[1], chunk):
            pv, pa, st = CAL.apply(v[:, k:k + chunk], a[:, k:k + chunk], fs, st)
            pieces.append((pv, pa))
        assert np.allclose(np.concatenate([p[0] for p in pieces], 1), whole_v, rtol=0, atol=1e-9)
        assert np.allclose(np.concatenate([p[1] for p in pieces], 1), whole_a, rtol=0, atol=1e-9)


def test_s9_1_correction_by_hand_keeps_amplitude():
    """Element 1 at 20 A: v' = (v − 0.3)·0.99 delayed HALF_TAPS; i' = (i − 0.1)·1.02
    delayed HALF_TAPS + 130 µs·fs — a pure delay, the amplitude kept."""
    fs = 2000.0
    t = np.arange(8000) / fs
    w = 2 * np.pi * 60
    v = 0.3 + 170 * np.cos(w * t)
    i = 0.1 + 20 * math.sqrt(2) * np.cos(w * t - 0.4)
    cal = Calibration((CAL.elements[0],))
    vo, ao, _ = cal.apply(v[None], i[None], fs, cal.initial_state(1, fs))
    sl = slice(1000, None)      # after the first level block
    assert np.allclose(vo[0, sl], 0.99 * 170 * np.cos(w * (t[sl] - HALF_TAPS / fs)), atol=1e-6)
    expected_i = 1.02 * 20 * math.sqrt(2) * np.cos(w * (t[sl] - HALF_TAPS / fs - 130e-6) - 0.4)
    assert np.allclose(ao[0, sl], expected_i, atol=2e-3 * 20)


def test_s9_1_calibrate_recovers_the_typical_front_ends_errors():
    """By hand from the preset: voltage gain 1/1.008; at 200 A the CT reads −1.0 % and
    leads 1.0°, the 50 µs skew adds 1.08°; at 2 A −3.0 % and 3.0° + 1.08°."""
    cal = calibrate(preset("typical"), 1, seconds=5.0)
    c = cal.elements[0]
    skew_deg = 360 * 60 * 50e-6
    assert c.volts_gain == pytest.approx(1 / 1.008, abs=2e-4)
    assert c.current_a[0] == 2.0 and c.current_a[-1] == 200.0
    assert c.amps_gain[-1] == pytest.approx(1 / 0.99, abs=5e-4)
    assert c.phase_delay_s[-1] * 360 * 60 == pytest.approx(1.0 + skew_deg, abs=0.01)
    assert c.amps_gain[0] == pytest.approx(1 / 0.97, abs=3e-3)      # 2 A is 9 LSB of a 12-bit ADC
    assert c.phase_delay_s[0] * 360 * 60 == pytest.approx(3.0 + skew_deg, abs=0.05)
    lsb_a = 2 * 2 * 220 * math.sqrt(2) / 4096
    assert c.offset_a == pytest.approx(3 * lsb_a, abs=0.02)


def test_s9_1_calibration_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "cal.json"
    CAL.save(path)
    back = load_calibration(path)
    assert back.elements[0].phase_delay_s == pytest.approx(CAL.elements[0].phase_delay_s)
    assert back.elements[1].volts_gain == CAL.elements[1].volts_gain
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(InvalidFrontEnd, match="bad.json: not a calibration file"):
        load_calibration(tmp_path / "bad.json")
    data = json.loads(path.read_text())
    data["elements"][0]["amps_gain"] = [1.0]
    (tmp_path / "short.json").write_text(json.dumps(data))
    with pytest.raises(InvalidFrontEnd, match="equal, non-zero lengths"):
        load_calibration(tmp_path / "short.json")
    with pytest.raises(InvalidFrontEnd, match="for 2 element"):
        Meter.for_model("MO", calibration=CAL).feed(*_sines(0.1, 2000.0, 120, 5, 0), 2000.0)


def test_s9_1_cli_calibrate_writes_a_file_the_meter_loads(tmp_path):
    out = tmp_path / "cal.json"
    result = CliRunner().invoke(main, ["calibrate", "--front-end", "typical", "--elements", "1", "--seconds", "2",
                                       "--out", str(out)])                    # for the MO (the default is 2: a 7B)
    assert result.exit_code == 0, result.output
    cal = load_calibration(out)
    assert len(cal.elements) == 1 and len(cal.elements[0].current_a) == 7
    meter = Meter.for_model("MO", calibration=cal)
    v, a = _sines(2.0, 2000.0, 120, 50, 0)
    meter.feed(v, a, 2000.0)
    assert meter.watt_hours > 0
