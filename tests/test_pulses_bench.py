"""SPEC S13.3: the pulse-reading bench — the meter's true edges through bounce, narrow
pulses at full load, reader restarts and missed edges, each reader's total against the
register, with hand-computed figures."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from minimeter.lab.pulse_bench import (
    READERS, STANDARD_IMPAIRMENTS, Impairment, advice_rows, bounced, run_bench, safe_filter_s, standard_runs,
    write_report,
)
from minimeter.lab.pulses import ReaderSettings
from minimeter.meter.outputs import Transition

FULL_LOAD_W = 2 * 440.0 * 138.0          # 7B with 400 A CTs: 110 % of 400 A at 138 V, two elements = 121 440 W


@pytest.fixture(scope="module")
def runs():
    return standard_runs()


@pytest.fixture(scope="module")
def scores(runs):
    return run_bench(runs)


def _diff(scores, case_part, reader, output):
    rows = [s for s in scores if case_part in s.case and s.reader == reader and s.output == output]
    assert len(rows) == 1, (case_part, reader, output)
    return rows[0]


def test_s13_3_full_load_pulse_width_is_148_ms():
    """Kh = 10 at 121 440 W: 5 Wh · 3600 / 121 440 W = 0.14822 s ON and as long OFF."""
    assert FULL_LOAD_W == 121_440.0
    assert safe_filter_s(10, FULL_LOAD_W) == pytest.approx(0.148221, abs=1e-6)
    assert [round(a["pulse_width_s"] * 1000, 1) for a in advice_rows()] == [148.2, 1482.2, 14822.1]


def test_s13_3_full_load_run_edges_are_148_ms_apart(runs):
    full = runs[1]
    assert full.register_end_wh == pytest.approx(FULL_LOAD_W * 61 / 3600, rel=1e-9)      # 2057.733 Wh
    ten = [e.time_s for e in full.edges if e.output == "10" and e.cause == "energy"]
    widths = [b - a for a, b in zip(ten, ten[1:])]
    assert min(widths) == pytest.approx(0.148221, abs=1e-6) and max(widths) == pytest.approx(0.148221, abs=1e-6)


def test_s13_3_200ms_filter_at_full_load_misses_every_kh10_pulse(scores):
    """61 s at 121 440 W: 2057.73 Wh, so floor(2057.73/10) = 205 pulses on Kh = 10, each
    148.2 ms < 200 ms: all 205 missed (the level left at the end is OFF, from 2055 Wh);
    Kh = 100 (1.48 s wide) 20 and Kh = 1000 (14.8 s) 2 are exact. 20 ms is exact on all."""
    for output, expected in (("10", 205), ("100", 20), ("1000", 2)):
        long = _diff(scores, "full load 121,440 W, 61 s — clean", "minimeter (200 ms filter)", output)
        short = _diff(scores, "full load 121,440 W, 61 s — clean", "minimeter (20 ms)", output)
        assert long.expected == short.expected == expected == math.floor(FULL_LOAD_W * 61 / 3600 / int(output))
        assert short.difference == 0
        assert long.difference == (-205 if output == "10" else 0)


def test_s13_3_5ms_bounce_with_20ms_filter_is_exact_and_naive_counts_the_chatter(runs, scores):
    """Each edge chatters 4 times over 5 ms (2 extra closures): the 20 ms reader is exact;
    the naive OFF→ON reader counts 2 more per edge, plus the restores that closed (full
    load: 1 + 2 × 412 edges = +825 on Kh = 10)."""
    for run in runs:
        for output in ("10", "100", "1000"):
            case = f"{run.name} — 5 ms contact bounce"
            assert _diff(scores, case, "minimeter (20 ms)", output).difference == 0
            mine = [e for e in run.edges if e.output == output]
            restores = sum(e.state and e.cause == "power-restore" for e in mine)
            # an edge less than 5 ms after the one before (a restore at a Kh/2 mark) cuts that one's chatter short
            close = sum(b.time_s - a.time_s < 0.005 for a, b in zip(mine, mine[1:]))
            naive = _diff(scores, case, "naive: every OFF→ON", output)
            assert naive.difference == restores + 2 * (len(mine) - close), (run.name, output, close)


def test_s13_3_restart_loses_the_edge_in_progress_only_for_a_naive_debounce(runs, scores):
    """Three restarts, each 5 ms after a Kh = 10 closure, 2 s down (no other edge of the
    household's output 10 in those seconds): the project's reader reads the level at boot
    and is exact; a fixed-200 ms reader loses the 3 closures it was still filtering; a
    count-since-boot reader keeps only what came after the last boot."""
    case = "household day, 10 power cycles — 3 reader restarts"
    clean = "household day, 10 power cycles — clean"
    assert _diff(scores, case, "minimeter (20 ms)", "10").difference == 0
    lost = (_diff(scores, clean, "naive: fixed 200 ms debounce", "10").difference
            - _diff(scores, case, "naive: fixed 200 ms debounce", "10").difference)
    assert lost == 3
    since_boot = _diff(scores, case, "naive: count since boot", "10")
    assert since_boot.counted < since_boot.expected / 2


def test_s13_3_missed_edges_are_recovered_by_the_project_reader(scores):
    for case in ("household day, 10 power cycles — 1 edge in 50 missed", "full load 121,440 W, 61 s — 1 edge in 50 missed"):
        for output in ("10", "100", "1000"):
            assert _diff(scores, case, "minimeter (20 ms)", output).difference == 0
        assert _diff(scores, case, "naive: every OFF→ON", "10").difference < 0


def test_s13_3_bounce_model_alternates_and_ends_in_the_edge_state():
    out = bounced([Transition("10", True, 1.0)], 0.005, 4)
    assert [(e.state, round(e.time_s, 6)) for e in out] == [(True, 1.0), (False, 1.00125), (True, 1.0025),
                                                            (False, 1.00375), (True, 1.005)]


def test_s13_3_report_has_the_table_the_plot_and_the_advice(scores, tmp_path):
    paths = write_report(scores, advice_rows(), tmp_path)
    text = paths["html"].read_text()
    assert "data:image/png;base64," in text and "<table>" in text
    assert "148.2" in text and "1,482.2" in text and "14,822.1" in text
    payload = json.loads(paths["json"].read_text())
    assert len(payload["scores"]) == 2 * len(STANDARD_IMPAIRMENTS) * len(READERS) * 3


def test_s13_3_pulse_bench_command(tmp_path):
    result = CliRunner().invoke(__import__("minimeter.cli", fromlist=["main"]).main,
                                ["pulse-bench", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (tmp_path / "index.html").exists()
    assert [round(a["pulse_width_s"], 4) for a in payload["advice"]] == [0.1482, 1.4822, 14.8221]
