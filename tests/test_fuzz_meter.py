"""SPEC S15.1 / S15.2 (issue 9): the Meter API fuzzed on a bounded budget with the
campaign's target ``scripts/fuzz_targets/meter.py`` (the long run is
``scripts/fuzz_campaign.py``): random keywords and hostile feeds, cycles and snapshots.
Every call returns or raises the project's one-line error; a refused call leaves the
meter exactly as it was, and the register never decreases (checked inside the target)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minimeter.errors import MinimeterError

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_targets" / "meter.py"
_SPEC = importlib.util.spec_from_file_location("fuzz_target_meter", _PATH)
_TARGET = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_TARGET)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 63))
def test_s15_1_s15_2_fuzzed_meter_calls_end_cleanly_and_failed_calls_change_nothing(seed):
    try:
        _TARGET.run_case(np.random.default_rng(seed))
    except MinimeterError as exc:
        assert "\n" not in str(exc), str(exc)
