"""SPEC S15.3 (issue 9): the web controls fuzzed in the test suite on a bounded budget —
``scripts/fuzz_targets/web.py`` sends one random hostile request through the panel's app
and feeds the meter on; every case is answered below 500 and the meter keeps running
with its register going forward (the long campaign is ``scripts/fuzz_campaign.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minimeter.errors import MinimeterError

_TARGET = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_targets" / "web.py"
_CACHE: dict = {}


def _web():
    if "web" not in _CACHE:
        spec = importlib.util.spec_from_file_location("fuzz_target_web", _TARGET)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _CACHE["web"] = module
    return _CACHE["web"]


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 63))
def test_s15_3_fuzz_web_controls_never_5xx_never_stop_the_meter(seed):
    try:
        _web().run_case(np.random.default_rng(seed))
    except MinimeterError as exc:                      # a clean refusal (4xx)
        assert "\n" not in str(exc), str(exc)
