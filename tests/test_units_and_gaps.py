"""SPEC S4.9 (issue 16, item 1): channel units applied in every reader — a kV COMTRADE
record gives volts and watts in SI — and the standard's missing-sample markers (99999
in an ASCII DAT, 0x8000 in a BINARY one) read as flagged gaps, never as samples, with
no energy invented over them. Every record is written here, its figures computed by
hand from the counts written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from minimeter import Meter
from minimeter.drive import feed_samples, recording_chunks
from minimeter.lab.analysis import analyze, map_recording
from minimeter.meter import EventKind
from minimeter.sources.recordings import ChannelMap, ComtradeReader, WavWriter, open_recording, read, write_csv, write_npz

FS = 1920.0                   # [Hz] 32 samples per 60 Hz cycle
N = 1920                      # one second


def _cfg(folder: Path, fmt: str, units=("kV", "A"), a=(0.001, 0.01), revision="1999") -> Path:
    cfg = folder / "r.cfg"
    cfg.write_text("\n".join([
        f"st,dev,{revision}", "2,2A,0D",
        f"1,V1,A,,{units[0]},{a[0]},0,0,-99999,99999,1,1,P", f"2,I1,A,,{units[1]},{a[1]},0,0,-99999,99999,1,1,P",
        "60", "1", f"{FS:g},{N}", "01/01/2020,00:00:00.000000", "01/01/2020,00:00:00.000000", fmt, "1"]) + "\n")
    return cfg


def _ascii_dat(folder: Path, counts: np.ndarray, missing: dict[int, list[int]] = {}) -> None:
    lines = []
    for k in range(counts.shape[1]):
        values = [("99999" if k in missing.get(ch, []) else str(int(counts[ch, k]))) for ch in range(2)]
        lines.append(f"{k + 1},{int(k * 1e6 / FS)},{values[0]},{values[1]}")
    (folder / "r.dat").write_text("\n".join(lines) + "\n")


def _binary_dat(folder: Path, counts: np.ndarray) -> None:
    rec = np.zeros(counts.shape[1], dtype=[("n", "<u4"), ("t", "<u4"), ("a", "<i2", (2,))])
    rec["n"] = np.arange(1, counts.shape[1] + 1)
    rec["t"] = (np.arange(counts.shape[1]) * 1e6 / FS).astype(int)
    rec["a"] = counts.T
    (folder / "r.dat").write_bytes(rec.tobytes())


def _counts(v_rms: float, i_rms: float, a: tuple[float, float], phi: float = 0.3) -> np.ndarray:
    w_t = 2 * np.pi * 60 * np.arange(N) / FS
    return np.vstack((np.round(v_rms * math.sqrt(2) * np.sin(w_t) / a[0]),
                      np.round(i_rms * math.sqrt(2) * np.sin(w_t - phi) / a[1])))


# --------------------------------------------------------------------------- units
def test_s4_9_a_kv_comtrade_record_gives_volts_and_watts_in_si(tmp_path):
    """4.137 kV rms (counts of 1 V: multiplier 0.001 kV), 1530 A rms at 0.3 rad: the
    truth is 4 137 V and 4137 · 1530 · cos 0.3 = 6.05 MW — not 4.137 'V' and 6 kW."""
    counts = _counts(4137.0, 1530.0, (1.0, 0.01))            # volts counts of 1 V = 0.001 kV
    _ascii_dat(tmp_path, counts)
    cfg = _cfg(tmp_path, "ASCII")
    frames, info = read(cfg)
    assert info.channel_units == ("V", "A") and info.file_units == ("kV", "A")
    assert np.array_equal(frames[0], counts[0] * 1.0)        # 0.001 kV per count = 1 V per count, exactly
    assert np.allclose(frames[1], counts[1] * 0.01, rtol=0, atol=1e-12)
    summary = analyze(ComtradeReader(cfg))
    v_rms = math.sqrt(np.mean(counts[0] ** 2))                # the counts' own rms [V] (whole cycles: all 60)
    i_rms = math.sqrt(np.mean((counts[1] * 0.01) ** 2))
    p_w = float(np.mean(counts[0] * counts[1] * 0.01))
    element = summary.elements[0]
    assert element.volts_rms == pytest.approx(v_rms, rel=1e-9) and element.volts_rms == pytest.approx(4137.0, rel=1e-4)
    assert element.amps_rms == pytest.approx(i_rms, rel=1e-9)
    assert element.power_w == pytest.approx(p_w, rel=1e-9)
    assert element.power_w == pytest.approx(4137.0 * 1530.0 * math.cos(0.3), rel=1e-4)   # 6.05 MW


@pytest.mark.parametrize("unit,factor", [("V", 1.0), ("kV", 1e3), ("mV", 1e-3), ("A", 1.0), ("kA", 1e3), ("mA", 1e-3)])
def test_s4_9_units_in_csv_npz_and_wav_metadata(tmp_path, unit, factor):
    frames = np.vstack((np.linspace(-1, 1, 64), np.linspace(1, -1, 64)))
    write_csv(tmp_path / "r.csv", frames, FS, [f"X1 [{unit}]", "X2 (A)"])
    write_npz(tmp_path / "r.npz", frames, FS, ["X1", "X2"], [unit, "A"])
    with WavWriter(tmp_path / "r.wav", int(FS), [2.0, 2.0], ["X1", "X2"], [unit, "A"]) as w:
        w.write(frames)
    for name, tolerance in (("r.csv", 1e-9), ("r.npz", 0.0), ("r.wav", 2.0 / 32768)):
        out, info = read(tmp_path / name)
        assert info.channel_units == (unit.upper()[-1], "A") and info.file_units[0] == unit
        assert np.allclose(out[0], frames[0] * factor, rtol=0, atol=tolerance * factor + 1e-15), name
        assert np.allclose(out[1], frames[1], rtol=0, atol=tolerance + 1e-15), name


def test_s4_9_the_maps_ratios_apply_on_top_of_the_units(tmp_path):
    """A CT secondary recorded in mA with ct=2000: amps = 2000 × (mA / 1000)."""
    frames = np.vstack((np.full(8, 120.0), np.full(8, 250.0)))
    write_npz(tmp_path / "r.npz", frames, FS, ["V", "I"], ["V", "mA"])
    reader = open_recording(tmp_path / "r.npz")
    volts, amps = ChannelMap.parse("V:I:ct=2000").resolve(reader.info).split(reader.read()[0])
    assert np.allclose(amps, 500.0) and np.allclose(volts, 120.0)


# --------------------------------------------------------------------------- gaps
def _flagged(path: Path, chunk_frames: int, channel_map: str = "1:2") -> list[tuple[int, int]]:
    """The gaps the stream flags, as [start, stop) frames: each 'missing-samples' event
    raised at a gap's first frame paired with the one cleared after its last."""
    reader = open_recording(path)
    resolved = ChannelMap.parse(channel_map).resolve(reader.info)
    events = [e for chunk in recording_chunks(reader, resolved, chunk_frames) for e in getattr(chunk, "events", ())]
    raised = [round(e.time_s * FS) for e in events if e.active]
    cleared = [round(e.time_s * FS) for e in events if not e.active]
    assert all(e.kind == EventKind.MISSING_SAMPLES and "not measured" in e.message for e in events)
    assert len(raised) == len(cleared)
    return list(zip(raised, cleared))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of the True runs of ``mask``, by a plain loop."""
    runs, start = [], None
    for k, m in enumerate(list(mask) + [False]):
        if m and start is None:
            start = k
        if not m and start is not None:
            runs.append((start, k))
            start = None
    return runs


@pytest.mark.parametrize("chunk_frames", [1, 3, 7, 64, 10_000])
def test_s4_9_gaps_are_flagged_whatever_the_chunking(tmp_path, chunk_frames):
    """NaN (a missing sample) at the start, across chunk edges, alone, and at the end."""
    frames = np.ones((2, 200))
    for ch, span in ((0, slice(0, 2)), (1, slice(20, 27)), (0, slice(26, 30)), (1, slice(99, 100)), (0, slice(190, 200))):
        frames[ch, span] = np.nan
    write_npz(tmp_path / "g.npz", frames, FS, ["V", "I"])
    expected = _runs(np.isnan(frames).any(axis=0))
    assert expected == [(0, 2), (20, 30), (99, 100), (190, 200)]
    assert _flagged(tmp_path / "g.npz", chunk_frames) == expected


def _check_gapped(cfg: Path, counts: np.ndarray, a: tuple[float, float], missing_frames: dict[int, list[int]],
                  gaps: tuple, volts_per_unit: float) -> None:
    frames, info = read(cfg)
    for chunk_frames in (7, 4096):
        assert _flagged(cfg, chunk_frames) == list(gaps)
    for ch in range(2):
        marked = np.zeros(N, bool)
        marked[missing_frames.get(ch, [])] = True
        assert np.all(np.isnan(frames[ch, marked]))                       # never a sample
        assert np.array_equal(frames[ch, ~marked], counts[ch, ~marked] * a[ch] * (volts_per_unit if ch == 0 else 1.0))
    # no energy over a gap: the rectangle-rule energy of every sample equals the sum over
    # the frames outside the gaps, computed here from the counts
    summary = analyze(ComtradeReader(cfg))
    outside = np.ones(N, bool)
    for start, stop in gaps:
        outside[start:stop] = False
    volts, amps = counts[0] * a[0] * volts_per_unit, counts[1] * a[1]
    assert summary.elements[0].energy_all_wh == pytest.approx(float(np.sum((volts * amps)[outside])) / FS / 3600,
                                                              rel=1e-12)
    # the meter is told: a flagged event per gap, raised at its first frame and cleared after its last
    reader = ComtradeReader(cfg)
    mapped = map_recording(reader)
    meter = Meter.for_model("MO", ct_rating="200A", hysteresis_v=mapped.hysteresis_v)
    events = [e for u in feed_samples(meter, mapped.chunks(), FS) for e in u.events
              if e.kind == EventKind.MISSING_SAMPLES]
    expected = [(start / FS, True) for start, _ in gaps] + [(stop / FS, False) for _, stop in gaps]
    assert sorted((e.time_s, e.active) for e in events) == sorted(expected)
    assert all("not measured" in e.message for e in events)


def test_s4_9_missing_samples_in_an_ascii_dat_are_flagged_gaps(tmp_path):
    a = (0.001, 0.01)
    counts = _counts(0.120, 20.0, a)                         # 0.120 kV rms: 120 V
    missing = {0: [100], 1: [700, 701, 702], 2: []}
    _ascii_dat(tmp_path, counts, missing)
    _check_gapped(_cfg(tmp_path, "ASCII", a=a), counts, a, missing, ((100, 101), (700, 703)), 1000.0)


def test_s4_9_missing_samples_in_a_binary_dat_are_flagged_gaps(tmp_path):
    a = (0.01, 0.001)                                        # 10 mV and 1 mA per count
    counts = _counts(120.0, 20.0, a)
    missing = {0: [5, 6], 1: [6, 1500]}
    for ch, frames in missing.items():
        counts[ch, frames] = -0x8000
    _binary_dat(tmp_path, counts.astype("<i2"))
    _check_gapped(_cfg(tmp_path, "BINARY", ("V", "A"), a), counts, a, missing, ((5, 7), (1500, 1501)), 1.0)


def test_s4_9_a_1991_file_has_no_marker(tmp_path):
    """C37.111-1991 defines no marker: 99999 there is a value like any other."""
    a = (0.001, 0.01)
    counts = _counts(120.0, 20.0, a)
    _ascii_dat(tmp_path, counts, {0: [3]})
    cfg = _cfg(tmp_path, "ASCII", a=a)
    cfg.write_text(cfg.read_text().replace("st,dev,1999", "st,dev").replace("ASCII\n1\n", "ASCII\n"))
    frames, info = read(cfg)
    assert _flagged(cfg, 4096) == [] and frames[0, 3] == pytest.approx(99999 * 0.001 * 1000)


# --------------------------------------------------------------------------- COMTRADE 2013 single file
_VALUE_TYPE = {"ASCII": None, "BINARY": "<i2", "BINARY32": "<i4", "FLOAT32": "<f4"}
_MARKER = {"ASCII": 99999, "BINARY": -0x8000, "BINARY32": -0x80000000, "FLOAT32": np.nan}


def _cff(folder: Path, fmt: str, counts: np.ndarray, a: tuple[float, float]) -> Path:
    """A 2013 .cff: CFG, INF, HDR and DAT sections (the DAT's header gives its bytes)."""
    cfg = "\n".join([
        "st,dev,2013", "2,2A,0D", f"1,V1,A,,V,{a[0]},0,0,-99999,99999,1,1,P", f"2,I1,A,,mA,{a[1]},0,0,-99999,99999,1,1,P",
        "60", "1", f"{FS:g},{counts.shape[1]}", "01/01/2020,00:00:00.000000", "01/01/2020,00:00:00.000000", fmt, "1",
        "+0h00,+0h00", "0,0"]) + "\n"
    n = counts.shape[1]
    if fmt == "ASCII":
        data = "".join(f"{k + 1},{int(k * 1e6 / FS)},{int(counts[0, k])},{int(counts[1, k])}\n" for k in range(n)).encode()
        head = "DAT ASCII"
    else:
        rec = np.zeros(n, dtype=[("n", "<u4"), ("t", "<u4"), ("a", _VALUE_TYPE[fmt], (2,))])
        rec["n"], rec["t"], rec["a"] = np.arange(1, n + 1), (np.arange(n) * 1e6 / FS).astype(int), counts.T
        data = rec.tobytes()
        head = f"DAT {fmt}: {len(data)}"
    path = folder / f"r-{fmt.lower()}.cff"
    path.write_bytes(b"--- file type: CFG ---\n" + cfg.encode() + b"--- file type: INF ---\n[Public Record]\n"
                     b"--- file type: HDR ---\nwritten by the test\n" + f"--- file type: {head} ---\n".encode() + data)
    return path


@pytest.mark.parametrize("fmt", ["ASCII", "FLOAT32", "BINARY", "BINARY32"])
def test_s4_9_a_cff_reads_and_streams_with_its_gaps_flagged(tmp_path, fmt):
    a = (0.01, 1.0)                                          # 10 mV per count; the current in mA, 1 mA per count
    counts = _counts(120.0, 20_000.0, a)                     # 120 V; 20 A rms = 20,000 mA in whole mA
    missing = {0: [50, 51], 1: [51, 900]}
    marked = counts.copy()
    for ch, frames in missing.items():
        marked[ch, frames] = _MARKER[fmt]
    path = _cff(tmp_path, fmt, marked, a)
    frames, info = read(path)
    assert info.format == "comtrade" and info.frame_count == N and info.sample_rate_hz == FS
    assert _flagged(path, 100) == [(50, 52), (900, 901)]
    assert info.channel_units == ("V", "A") and info.file_units == ("V", "mA")
    for ch, to_si in ((0, 1.0), (1, 1e-3)):                  # V as written; mA → A
        gap = np.zeros(N, bool)
        gap[missing[ch]] = True
        assert np.all(np.isnan(frames[ch, gap]))
        assert np.array_equal(frames[ch, ~gap], counts[ch, ~gap] * a[ch] * to_si)
    pieces = np.concatenate(list(ComtradeReader(path).chunks(7)), axis=1)
    assert np.array_equal(pieces, frames, equal_nan=True)


@pytest.mark.parametrize("fmt", ["ASCII", "FLOAT32"])
def test_s4_9_a_cff_agrees_with_the_comtrade_package(tmp_path, fmt):
    comtrade = pytest.importorskip("comtrade")
    counts = _counts(120.0, 20_000.0, (0.01, 1.0))[:, :192]  # the package reads a .cff byte by byte: keep it short
    path = _cff(tmp_path, fmt, counts, (0.01, 1.0))
    frames, _ = read(path)
    record = comtrade.load(str(path))
    # the package returns single precision and keeps the file's mA
    assert np.allclose(frames[0], record.analog[0], rtol=1e-6, atol=0)
    assert np.allclose(frames[1], np.asarray(record.analog[1]) * 1e-3, rtol=1e-6, atol=0)


def test_s4_9_cli_analyze_and_meter_report_si_and_the_gaps(tmp_path):
    """`analyze --json` of a kV record prints volts and watts in SI; `meter --json` lists
    the gap's 'missing-samples' events with their times."""
    import json

    from click.testing import CliRunner

    from minimeter.cli import main

    a = (0.001, 0.01)
    counts = _counts(0.120, 20.0, a)                          # 0.120 kV rms in the file: 120 V
    _ascii_dat(tmp_path, counts, {1: [960, 961]})
    cfg = _cfg(tmp_path, "ASCII", a=a)
    result = CliRunner().invoke(main, ["analyze", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["recording"]["channel_units"] == ["V", "A"] and summary["recording"]["file_units"] == ["kV", "A"]
    element = summary["elements"][0]
    assert element["volts_rms"] == pytest.approx(120.0, rel=1e-2)
    assert element["power_w"] == pytest.approx(120.0 * 20.0 * math.cos(0.3), rel=1e-2)   # 2.29 kW, not 2.29 W
    result = CliRunner().invoke(main, ["meter", str(cfg), "--model", "MO", "--json"])
    assert result.exit_code == 0, result.output
    gaps = [(e["time_s"], e["active"]) for e in json.loads(result.output)["events"] if e["kind"] == "missing-samples"]
    assert gaps == [(pytest.approx(960 / FS), True), (pytest.approx(962 / FS), False)]
