"""The `minimeter` command: models (S2.4), simulate, demo — run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from minimeter.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_s2_4_models_lists_every_prefix():
    out = run("models")
    assert out.exit_code == 0
    for prefix in ("MO", "MK", "6S", "6F", "7B", "5B"):
        assert prefix in out.output


def test_s2_4_one_model_in_full():
    out = run("models", "7B", "--json")
    facts = json.loads(out.output)
    assert facts["elements"] == 2 and facts["CT inputs"] == "CT1, CT2"


def test_s2_4_unknown_model_is_one_clear_line_and_status_2():
    proc = subprocess.run([sys.executable, "-m", "minimeter.cli.__main__", "models", "X9"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "minimeter: error: 'X9' is not a Mini Meter model — known prefixes: MO, MK, 6S, 6F, 7B, 5B"
    assert "Traceback" not in proc.stderr


def test_s2_4_impossible_option_from_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "minimeter.cli.__main__", "simulate", "--model", "MO",
                           "--ct", "0.1A", "--duration", "1s"], capture_output=True, text=True)
    assert proc.returncode == 2 and "needs the CT ratio" in proc.stderr


def test_simulate_json_registers_the_hand_figure():
    """1500 W at PF 0.5 lag on L1 + 4800 W across L1–L2 for 60 s: 6300 W → 105 Wh;
    10 closures of output 10, one of output 100, none of output 1000."""
    out = run("simulate", "--load", "1500@L1,pf=0.5lag", "--load", "4800@L1-L2,h5=0.3",
              "--duration", "60s", "--sample-rate", "4000", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["registered_wh"] == pytest.approx(105.0, rel=1e-4)
    assert data["closures"] == {"10": 10, "100": 1, "1000": 0}
    assert data["lcd"] == "000000.1"
    assert data["passed"] is True


def test_simulate_phasor_path_for_a_day_with_a_counter():
    out = run("simulate", "--model", "MO", "--register", "counter1000", "--service", "single",
              "--load", "2010@L1", "--duration", "24h", "--phasor", "--json")
    data = json.loads(out.output)
    assert data["registered_wh"] == pytest.approx(48_240.0, rel=1e-9)     # 2010 W × 24 h
    assert data["counter"] == 48


@pytest.mark.parametrize("args,message", [
    (["--load", "lots@L1"], "not a number of watts"),
    (["--load", "100@L7"], "connection 'L7'"),
    (["--load", "100@L1,pf=2"], "power factor"),
    (["--duration", "soon"], "not a duration"),
])
def test_simulate_bad_arguments_say_what_is_wrong(args, message):
    out = CliRunner().invoke(main, ["simulate", *args])
    assert out.exit_code == 2
    assert message in out.output


def test_demo_runs_a_day_and_ends_with_the_summary():
    out = run("demo", "--wall-seconds", "0", "--hours", "24")
    assert out.exit_code == 0, out.output
    assert "The day: 15.450 kWh" in out.output        # household_day: 15.45 kWh by its loads
    assert "PASS" in out.output
