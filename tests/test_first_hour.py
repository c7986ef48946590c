"""Issue 14's first hour of a new user, command by command: what each command prints
now, checked against figures worked out by hand."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from minimeter.cli import main
from minimeter.sources.recordings import write_npz

KEATING = Path(__file__).resolve().parents[1] / "data" / "comtrade" / "keating_1999.CFG"     # in the project

V_RMS, I_RMS, PHI_RAD, H5, F_HZ, FS_HZ = 120.0, 10.0, 0.3, 0.3, 60.0, 4000.0


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, prog_name="minimeter")


def flat(text: str) -> str:
    """``text`` with rich's line wrapping undone (runs of white space as one space)."""
    return " ".join(text.split())


@pytest.fixture
def two_element_npz(tmp_path):
    """2 s of a 2-element 60 Hz recording: v = √2·120·cos ωt, i = √2·10·(cos(ωt − 0.3) +
    0.3·cos 5ωt) on each element (element 2 in antiphase, as L2 is): P = 1200·cos 0.3 W
    per element (the 5th harmonic current meets no 5th harmonic voltage)."""
    t = np.arange(int(2 * FS_HZ)) / FS_HZ
    w = 2 * math.pi * F_HZ
    v = math.sqrt(2) * V_RMS * np.cos(w * t)
    i = math.sqrt(2) * I_RMS * (np.cos(w * t - PHI_RAD) + H5 * np.cos(5 * w * t))
    path = tmp_path / "x.npz"
    write_npz(str(path), np.array([v, i, -v, -i]), FS_HZ, ["V1", "I1", "V2", "I2"], ["V", "A", "V", "A"])
    return path


def test_s4_7_a_one_second_run_is_scored_on_its_whole_cycles():
    """Item 1: 1500 W on L1 for 1 s at 7812.5 Hz. The voltage starts at its peak, so the
    whole cycles run from the first rising crossing, 3/4 cycle in (0.0125 s), for 59
    cycles: 1500 W × 59/60 s = 0.409722… Wh. The register's 1 s misses a fraction of a
    sample at the ends, which is more than 0.01 % of one second: not the verdict."""
    out = run("simulate", "--load", "1500@L1", "--duration", "1s", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    whole = data["whole_cycles"]
    assert whole["count"] == 59
    assert whole["start_s"] == pytest.approx(0.75 / 60, abs=1 / 7812.5)
    assert whole["analytic_wh"] == pytest.approx(1500 * 59 / 60 / 3600, rel=1e-9)
    assert whole["measured_wh"] == pytest.approx(1500 * 59 / 60 / 3600, rel=1e-6)
    assert data["passed"] is True
    text = run("simulate", "--load", "1500@L1", "--duration", "1s").output
    assert "S4.7 (±0.01 %, whole cycles)" in text and "PASS" in text and "FAIL" not in text


def test_s9_4_calibrate_then_meter_the_readmes_sequence(tmp_path, two_element_npz):
    """Item 2: the calibration `calibrate` writes by default fits the default meter (7B,
    2 elements); one that does not fit says which option makes it right."""
    cal = tmp_path / "cal.json"
    assert run("calibrate", "--seconds", "1", "--out", str(cal)).exit_code == 0
    out = run("meter", str(two_element_npz), "--calibration", str(cal), "--json")
    assert out.exit_code == 0, out.output
    # 2 × 1200·cos 0.3 W for the whole cycles of 2 s; the typical preset's correction is ≈1 %
    assert json.loads(out.output)["watt_hours"] == pytest.approx(2 * 1200 * math.cos(PHI_RAD) * 2 / 3600, rel=0.03)
    wrong = CliRunner().invoke(main, ["meter", str(two_element_npz), "--calibration", str(cal), "--model", "MO",
                                      "--map", "V1:I1"])
    assert wrong.exit_code == 2
    assert "calibrates 2 element(s); a MO meter has 1 — write one for it: minimeter calibrate --elements 1" \
        in wrong.output


def test_s12_4_analyze_prints_the_per_window_table_and_json(two_element_npz):
    """Item 3: 2 s at 60 Hz from the voltage's peak: 119 whole cycles (the first starts at
    the first rising crossing, 0.0125 s), so 9 windows of 12 cycles (0.2 s). Per element,
    by hand: P = 1200·cos 0.3 = 1146.4 W, Q1 = 1200·sin 0.3 = 354.6 var, Irms = 10·√1.09,
    S = 120·Irms, PF = P/S, displacement PF = cos 0.3, THD_I = 30 %, THD_V = 0."""
    data = json.loads(run("analyze", str(two_element_npz), "--json").output)
    assert data["window_cycles"] == 12
    windows = data["windows"]
    assert len(windows) == 9
    amps = I_RMS * math.sqrt(1 + H5 ** 2)
    for j, w in enumerate(windows):
        assert w["start_s"] == pytest.approx(0.0125 + 0.2 * j, abs=1 / FS_HZ)
        assert w["duration_s"] == pytest.approx(0.2, rel=1e-6)
        for n in (1, 2):
            assert w[f"v{n}_rms"] == pytest.approx(V_RMS, rel=1e-6)
            assert w[f"i{n}_rms"] == pytest.approx(amps, rel=1e-6)
            assert w[f"p{n}_w"] == pytest.approx(V_RMS * I_RMS * math.cos(PHI_RAD), rel=1e-6)
            assert w[f"q{n}_var"] == pytest.approx(V_RMS * I_RMS * math.sin(PHI_RAD), rel=1e-6)
            assert w[f"s{n}_va"] == pytest.approx(V_RMS * amps, rel=1e-6)
            assert w[f"pf{n}"] == pytest.approx(I_RMS * math.cos(PHI_RAD) / amps, rel=1e-6)
            assert w[f"dpf{n}"] == pytest.approx(math.cos(PHI_RAD), rel=1e-6)
            assert w[f"thd_i{n}_percent"] == pytest.approx(100 * H5, rel=1e-3)
            assert w[f"thd_v{n}_percent"] == pytest.approx(0.0, abs=1e-6)
            assert w[f"e{n}_wh"] == pytest.approx(V_RMS * I_RMS * math.cos(PHI_RAD) * 0.2 / 3600, rel=1e-6)
    text = run("analyze", str(two_element_npz)).output
    assert "Per 12-cycle window (IEC 61000-4-30, 9 windows" in text
    assert "1,146.4" in text and "354.6" in text


def test_s12_4_analyze_a_short_recording_prints_its_cycles():
    """Item 3 on the Keating record (5 cycles, 3 whole): the per-cycle table, a line per
    cycle and element, the partial edge cycles marked; the summary figures unchanged."""
    out = run("analyze", str(KEATING))
    assert out.exit_code == 0, out.output
    assert "Per cycle (partial: not bounded by two zero crossings)" in out.output
    assert "0.750316" in out.output and "0.917093" in out.output and "0.993634" in out.output
    assert "from 2015-11-18T05:33:03.765333" in out.output


def test_s9_2_bench_fails_with_status_1_and_says_where_it_is(tmp_path):
    """Item 4: failing rows → exit status 1 (as `check` and `diagnose`); off a terminal a
    line per point on stderr; a short run's wall time is not '0 s'; no plots said plainly."""
    out = run("bench", "--front-end", "typical", "--rows", "1", "--out", str(tmp_path / "typical"))
    assert out.exit_code == 1
    assert "bench [typical uncalibrated] 1/1 row 1 full load 100 A PF 1: FAIL" in out.stderr
    assert "1 of 1 point(s) failed" in out.stdout
    assert "no plots: they draw row 7's current sweep and rows 16–19, not selected" in flat(out.stdout)
    assert " 0 s " not in out.stdout
    ideal = run("bench", "--front-end", "ideal", "--rows", "1", "--out", str(tmp_path / "ideal"))
    assert ideal.exit_code == 0
    assert "1/1 row 1 full load 100 A PF 1: pass" in ideal.stderr


def test_s10_1_a_second_run_carries_on_the_meters_clock_and_calendar(tmp_path):
    """Items 5 and 7: two runs of an hour on one store. The final panel shows the meter's
    clock (1 h, then 2 h), closures this run and since new are both named, the outputs'
    state is a contact's; `export` dates every interval in ISO 8601 on one calendar: the
    start instant stored by the first run."""
    from minimeter.formats import parse_iso8601

    db = str(tmp_path / "m.sqlite3")
    args = ("run", "--db", db, "--hours", "1", "--speed", "0", "--port", "0", "--modbus-port", "0", "--no-panel")
    before = time.time()
    first = run(*args)
    after = time.time()
    second = run(*args)
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert "time 01:00:00" in first.output and "time 02:00:00" in second.output
    for out in (first, second):
        assert "closures this run output 10:" in flat(out.output) and "(since new 10:" in flat(out.output)
        assert "closures since new" in out.output and "contact " in out.output
    rows = list(csv.DictReader(io.StringIO(run("export", "--db", db).output)))
    assert [r["interval_start_s"] for r in rows[::2]] == ["0", "900", "1800", "2700", "3600", "4500", "5400", "6300"]
    epochs = {round(parse_iso8601(r["interval_start"]) - float(r["interval_start_s"]), 6) for r in rows}
    assert len(epochs) == 1 and before <= epochs.pop() <= after
    assert all(r["interval_start"].endswith("Z") and "T" in r["interval_start"] for r in rows)


def test_s15_1_usage_errors_are_two_lines_in_the_commands_terms():
    """Item 6: a usage error is what is wrong and where the help is; a power factor out
    of range is advised as the option is written (0.9lag), not as the Python API."""
    out = CliRunner().invoke(main, ["simulate", "--bogus"], prog_name="minimeter")
    assert out.exit_code == 2
    assert out.stderr.splitlines() == ["minimeter: error: No such option '--bogus'.",
                                       "  (minimeter simulate -h for the options)"]
    out = CliRunner().invoke(main, ["simulate", "--load", "1500@L1,pf=1.2lag"], prog_name="minimeter")
    assert out.exit_code == 2 and len(out.stderr.splitlines()) == 2
    assert "'1.2lag' is outside (0, 1] — a power factor such as 0.9, '0.9lag' or '0.8lead'" in out.stderr
    assert "leading=True" not in out.stderr


def test_s4_9_meter_prints_a_report_and_the_recordings_iso_start(two_element_npz):
    """Item 7: `meter` prints sentences, not a dict; `meter --json` gives the recording's
    start in ISO 8601 (COMTRADE's dd/mm/yyyy,hh:mm:ss.ffffff read as a date)."""
    out = run("meter", str(two_element_npz))
    assert out.exit_code == 0
    assert "closures: output 10 0, output 100 0, output 1000 0" in out.output and "{'" not in out.output
    data = json.loads(run("meter", str(KEATING), "--map", "U1:I1,U2:I2", "--json").output)
    assert data["recording"]["start_time"] == "2015-11-18T05:33:03.765333"


def test_s4_2_a_recording_above_the_meters_rating_is_metered_and_flagged():
    """The Keating record (~350 V a phase) on a 7B (102–138 V): the recording's own
    hysteresis (a share of its peak) is deeper than the meter takes, so the meter uses its
    deepest (½·√2·102 V = 72.1 V) and flags the over-voltage; never an error about an option
    the user did not give."""
    out = run("meter", str(KEATING), "--map", "U1:I1,U2:I2")
    assert out.exit_code == 0, out.output
    assert "over-voltage" in out.output and "hysteresis" not in out.output


def test_s11_3_diagnose_does_not_give_the_answer_first():
    """Item 8: the header names the file and the model, not the installation's own name;
    no split-phase neutral note on a single-element meter; a dead element's power is
    +0.0 W, never -0.0 W."""
    out = CliRunner().invoke(main, ["diagnose", "examples/fault-single-ct-reversed.toml"])
    assert out.output.splitlines()[0] == "Diagnosis: examples/fault-single-ct-reversed.toml — MO-100A-LCD"
    assert "single element, CT1 reversed" not in out.output
    assert "neutral" not in out.output
    out = CliRunner().invoke(main, ["diagnose", "examples/fault-ct-open.toml"])
    assert "-0.0 W" not in out.output and "P       +0.0 W" in out.output


@pytest.mark.parametrize("header,stamp", [
    ("4_Victoria_Keating.main_7650,4_Victoria_Keating.main_7650,1999", "18/11/2015,05:33:03.765333"),   # dd/mm/yyyy
    ("4_Victoria_Keating.main_7650,4_Victoria_Keating.main_7650", "11/18/15,05:33:03.765333"),          # 1991: mm/dd/yy
])
def test_s4_9_comtrade_start_times_read_as_iso_8601(tmp_path, header, stamp):
    """Item 7: COMTRADE's first-sample stamp, in either revision's order of day and month,
    is the same ISO 8601 date-time (the recorder's clock: no zone added)."""
    from minimeter.sources.recordings import open_recording

    lines = KEATING.read_text(encoding="latin-1").splitlines()
    lines[0], lines[lines.index("18/11/2015,05:33:03.765333")] = header, stamp
    if "1999" not in header:
        lines = lines[:lines.index("ASCII") + 1]                   # 1991: no time multiplier line
    cfg = tmp_path / "rec.cfg"
    cfg.write_text("\r\n".join(lines) + "\r\n", encoding="latin-1")
    (tmp_path / "rec.dat").write_bytes(KEATING.with_suffix(".DAT").read_bytes())
    assert open_recording(str(cfg)).info.start_time == "2015-11-18T05:33:03.765333"
