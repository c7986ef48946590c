"""SPEC S15.1 (issue 9) for calibration and reference-run files: every malformed or
hostile file is one clean InvalidFrontEnd / InvalidReferenceRun naming the file, the
field and the bound; calibration values are bounded physically (docs/bench.md)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minimeter import Meter
from minimeter.errors import MinimeterError
from minimeter.lab.calibration import Calibration, ElementCalibration, load_calibration
from minimeter.sources.frontend import InvalidFrontEnd

GOOD = Calibration((ElementCalibration(offset_v=0.3, offset_a=0.05, volts_gain=0.99, current_a=(2.0, 200.0),
                                       amps_gain=(1.03, 1.01), phase_delay_s=(1.9e-4, 9.6e-5)),), ("ok",))


def _write(tmp_path: Path, doc) -> Path:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(doc))
    return path


def _doc(**element_changes):
    doc = GOOD.as_dict()
    doc["elements"][0].update(element_changes)
    return doc


def test_s15_1_calibration_round_trips(tmp_path):
    path = tmp_path / "cal.json"
    GOOD.save(path)
    back = load_calibration(path)
    assert back.notes == GOOD.notes and back.frequency_hz == 60.0
    assert back.elements[0].amps_gain == GOOD.elements[0].amps_gain
    assert np.allclose(back.elements[0].phase_delay_s, GOOD.elements[0].phase_delay_s, rtol=1e-12, atol=0)


def test_s15_1_notes_not_a_list_is_a_clean_error(tmp_path):
    doc = GOOD.as_dict()
    doc["notes"] = 0
    with pytest.raises(InvalidFrontEnd, match="notes must be a list"):
        load_calibration(_write(tmp_path, doc))


@pytest.mark.parametrize("field, value, bound", [
    ("volts_gain", 1e9, r"\[0.5, 2\]"),
    ("amps_gain", [1.0, 1e9], r"\[0.5, 2\]"),
    ("amps_gain", [1.0, 0.0], r"\[0.5, 2\]"),
    ("offset_v", -301.0, r"\[-300, 300\]"),
    ("offset_a", 1e5, r"\[-10000, 10000\]"),
    ("phase_delay_us", [0.0, 1001.0], r"\[-0.001, 0.001\]"),
    ("phase_angle_deg", [0.0, 20.5], r"\[-20, 20\]"),
    ("current_a", [2.0, 1e6], r"\[0, 100000\]"),
])
def test_s15_1_calibration_values_beyond_their_physical_bounds_are_refused(tmp_path, field, value, bound):
    with pytest.raises(InvalidFrontEnd, match=bound) as caught:
        load_calibration(_write(tmp_path, _doc(**{field: value})))
    message = str(caught.value)
    assert "\n" not in message and "elements[0]" in message and "cal.json" in message


@pytest.mark.parametrize("text", [b"", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b'{"format": 3}',
                                  b'{"format": "minimeter-calibration", "elements": {}}',
                                  b'{"format": "minimeter-calibration", "elements": [[]]}',
                                  b'{"format": "minimeter-calibration", "version": 99, "elements": []}',
                                  b'{"format": "minimeter-calibration", "elements": [{"offset_v": "1"}]}',
                                  b'{"format": "minimeter-calibration", "frequency_hz": 0, "elements": [{}]}',
                                  b'{"format": "minimeter-calibration", "elements": [{"offset_v": 1e999}]}'])
def test_s15_1_malformed_calibration_files_give_one_line_errors(tmp_path, text):
    path = tmp_path / "cal.json"
    path.write_bytes(text)
    with pytest.raises(InvalidFrontEnd) as caught:
        load_calibration(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_s15_1_a_gain_of_1e9_never_reaches_the_meter():
    """Built in code rather than read, the bound holds too: no meter is made with it."""
    with pytest.raises(InvalidFrontEnd, match="volts_gain"):
        ElementCalibration(volts_gain=1e9)


def test_s15_1_a_phase_correction_beyond_the_filters_reach_is_refused_at_start():
    """200 µs is 0.4 samples at 2 kHz but 9.6 samples at 48 kHz: beyond the correction
    filter's ±4 samples (it would extrapolate), so the meter refuses it at start."""
    cal = Calibration((ElementCalibration(phase_delay_s=(200e-6,)),))
    Meter.for_model("MO", ct_rating="200A", calibration=cal)             # fine at the default 2 kHz use
    with pytest.raises(InvalidFrontEnd, match=r"beyond the correction filter's reach at 48000 Hz"):
        cal.initial_state(1, 48000.0)


def _fuzz_target():
    path = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_targets" / "calibration.py"
    spec = importlib.util.spec_from_file_location("fuzz_calibration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_s15_1_fuzzed_calibration_and_reference_run_files_end_cleanly(seed):
    """The campaign's target (scripts/fuzz_targets/calibration.py), a bounded budget:
    every mutated file loads or raises the project's own error."""
    try:
        _fuzz_target().run_case(np.random.default_rng(seed))
    except MinimeterError:
        pass
