"""Archives (issue 13, SPEC S14.2): `minimeter analyze 'folder/*.npz' --out summary.parquet`
runs one task per file on the local Dask cluster — one row per file and element, each
good file's figures those of `analyze` run on it alone, a malformed file's error in its
row without stopping the others."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from click.testing import CliRunner

from minimeter.cli import main
from minimeter.sources.recordings import write_npz

from .conftest import sine_frames

RATE_HZ = 4000.0
# (file, V rms, I rms, angle [deg]) per element: two dual-element files and one single
GOOD = {"a.npz": ((120.0, 10.0, 0.0), (120.0, 5.0, 30.0)),
        "b.npz": ((118.0, 20.0, 60.0), (121.0, 1.0, 0.0)),
        "c.npz": ((240.0, 7.5, 0.0),)}


def _write(folder) -> None:
    for name, elements in GOOD.items():
        volts, amps = sine_frames(0.5, RATE_HZ, volts_rms=[e[0] for e in elements],
                                  amps_rms=[e[1] for e in elements], angle_deg=[e[2] for e in elements],
                                  volt_angle_deg=[0.0, 180.0][:len(elements)])   # split phase: cut on L1–L2
        frames = [row for k in range(len(elements)) for row in (volts[k], amps[k])]
        names = [n for k in range(len(elements)) for n in (f"V{k + 1}", f"I{k + 1}")]
        write_npz(folder / name, frames, RATE_HZ, names, ["V", "A"] * len(elements))
    (folder / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip archive")


def test_s14_2_archive_summary_equals_analyze_alone_and_reports_the_bad_file(tmp_path):
    _write(tmp_path)
    out = tmp_path / "summary.parquet"
    runner = CliRunner()
    result = runner.invoke(main, ["analyze", str(tmp_path / "*.npz"), "--out", str(out), "--workers", "2"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "4 file(s), 5 element row(s)" in result.output and "1 file(s) failed" in result.output
    rows = pd.read_parquet(out)
    bad = rows[rows.file.str.endswith("bad.npz")]
    assert len(bad) == 1 and "bad.npz" in bad.error.iloc[0] and math.isnan(bad.energy_wh.iloc[0])
    for name, elements in GOOD.items():
        alone = runner.invoke(main, ["analyze", str(tmp_path / name), "--json"], catch_exceptions=False)
        assert alone.exit_code == 0, alone.output
        expected = json.loads(alone.output)["elements"]
        mine = rows[rows.file == str(tmp_path / name)].sort_values("element")
        assert mine.error.isna().all() and len(mine) == len(elements)
        for got, want, (v, i, phi) in zip(mine.itertuples(), expected, elements):
            assert (got.energy_wh, got.energy_all_wh, got.power_w) == \
                (want["energy_wh"], want["energy_all_wh"], want["power_w"])
            # and the power is V·I·cos φ (closed form) within S4.7's 0.01 %
            assert got.power_w == pytest.approx(v * i * math.cos(math.radians(phi)), rel=1e-4)


def test_s14_2_archive_pattern_with_no_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "*.cfg"), "--workers", "1"])
    assert result.exit_code == 2 and "no file matches" in result.output
