"""SPEC S15.1 (issue 9): fuzzing in the test suite, on a bounded budget — every reader
and the text formats, fed the mutated files of ``scripts/fuzz_targets/readers.py`` and
``formats.py`` (the long campaign is ``scripts/fuzz_campaign.py``). Every case returns or
raises the project's own one-line error; nothing else."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minimeter.errors import MinimeterError

_TARGETS = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_targets"
_BUDGET = settings(max_examples=150, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow])


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"fuzz_target_{name}", _TARGETS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_case(run_case, seed: int) -> None:
    try:
        run_case(np.random.default_rng(seed))
    except MinimeterError as exc:
        assert "\n" not in str(exc), str(exc)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@_BUDGET
@given(st.integers(0, 2 ** 63))
def test_s15_1_fuzz_every_reader_mutated_files(seed):
    _one_case(_target_readers().run_case, seed)


@_BUDGET
@given(st.integers(0, 2 ** 63))
def test_s15_1_fuzz_installation_files_and_texts(seed):
    _one_case(_target_formats().run_case, seed)


_CACHE: dict = {}


def _target(name: str):
    """The target module, loaded once (it writes its seed files once)."""
    if name not in _CACHE:
        _CACHE[name] = _load(name)
    return _CACHE[name]


def _target_readers():
    return _target("readers")


def _target_formats():
    return _target("formats")
