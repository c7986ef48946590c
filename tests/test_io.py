"""Readers (issue 4; SPEC S4.1 inputs, S8 bad input): COMTRADE on the real Keating
recording, CSV, WAV, NPZ; chunked reading equals whole reading; malformed files give a
clear error naming the file and the problem."""

from __future__ import annotations

import json
import math
import shutil
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from minimeter import Meter
from minimeter.cli import main
from minimeter.drive import feed_samples, measure_samples
from minimeter.lab.analysis import analyze, cycle_rows, map_recording
from minimeter.sources.recordings import (ChannelMap, ComtradeReader, InvalidRecording, WavWriter, open_recording, read,
                          write_csv, write_npz)

KEATING = Path(__file__).resolve().parents[1] / "data" / "comtrade" / "keating_1999.CFG"     # the project's copy
README_WH = (0.750316, 0.917093, 0.993634)      # data/README.md: sum(v·i)/fs over all 2048 samples


def _hand_parse_keating():
    """The recording parsed by hand with plain NumPy: scale factors from the CFG's own
    channel lines, samples from the DAT (empty timestamp column, trailing 0x1A)."""
    lines = KEATING.read_text().splitlines()
    analog = [ln.split(",") for ln in lines[2:10]]
    a = np.array([float(f[5]) for f in analog])
    b = np.array([float(f[6]) for f in analog])
    fs = float(lines[12].split(",")[0])
    raw = KEATING.with_suffix(".DAT").read_bytes().replace(b"\x1a", b"").decode()
    rows = [ln.split(",") for ln in raw.splitlines() if ln.strip()]
    counts = np.array([[float(x) for x in r[2:10]] for r in rows])
    values = counts * a + b                         # (n, 8): I1..I4, U1..U4
    return values, fs


def _integral(p: np.ndarray, x0: float, x1: float) -> float:
    """∫ over [x0, x1] (in samples) of the piecewise-constant p (sample k covers [k, k+1))."""
    k0, k1 = int(np.floor(x0)), int(np.floor(x1))
    total = p[k0:k1].sum() - p[k0] * (x0 - k0)
    if k1 < p.size:
        total += p[k1] * (x1 - k1)
    return float(total)


def test_s4_1_comtrade_keating_reads_the_files_own_scale_factors():
    frames, info = read(KEATING)
    assert info.format == "comtrade"
    assert info.frame_count == 2048 and frames.shape == (8, 2048)
    assert info.sample_rate_hz == pytest.approx(30707.244140625)
    assert info.channel_names[:4] == ("I1", "I2", "I3", "I4")
    # the README's independent figures: per phase, sum(v·i)/fs over all samples [Wh]
    for k, wh in enumerate(README_WH):
        assert np.sum(frames[4 + k] * frames[k]) / info.sample_rate_hz / 3600 == pytest.approx(wh, abs=1e-6)
    assert any("0x1A" in n for n in info.notes) and any("negative" in n for n in info.notes)


def test_s4_2_analyze_keating_whole_cycles_match_a_hand_calculation():
    values, fs = _hand_parse_keating()
    rows = []
    summary = analyze(open_recording(KEATING), ChannelMap.parse("U1:I1,U2:I2,U3:I3"),
                      on_block=lambda b: rows.extend(cycle_rows(b, len(rows), None)))
    whole = [r for r in rows if not r["partial"]]
    assert summary.whole_cycles == len(whole) == 3          # 4 cycles recorded, cut mid-cycle: 3 whole
    x0 = whole[0]["start_s"] * fs
    x1 = (whole[-1]["start_s"] + whole[-1]["duration_s"]) * fs
    # the same whole cycles found by hand: positive-going zero crossings of U1
    u1 = values[:, 4]
    k = np.flatnonzero((u1[:-1] < 0) & (u1[1:] >= 0)) + 1
    crossings = (k - 1) + u1[k - 1] / (u1[k - 1] - u1[k])
    assert abs(x0 - crossings[0]) <= 1.0 and abs(x1 - crossings[-1]) <= 1.0
    total_hand = 0.0
    for ph in range(3):
        p = values[:, 4 + ph] * values[:, ph]                # v·i per sample [W]
        hand_wh = _integral(p, x0, x1) / fs / 3600
        mean_w = hand_wh * 3600 / ((x1 - x0) / fs)
        assert summary.elements[ph].energy_wh == pytest.approx(hand_wh, rel=1e-4)
        assert summary.elements[ph].power_w == pytest.approx(mean_w, rel=1e-4)
        total_hand += hand_wh
    assert summary.total_energy_wh == pytest.approx(total_hand, rel=1e-4)     # within 0.01 %
    # every sample, partial cycles included: the README's figures
    for ph, wh in enumerate(README_WH):
        assert summary.elements[ph].energy_all_wh == pytest.approx(wh, abs=2e-6)
    assert summary.frequency_hz == pytest.approx(60.0, abs=0.1)
    assert 340 < summary.elements[0].volts_rms < 360                 # 347/600 V service


def test_s4_2_cli_analyze_keating_prints_per_phase_power(tmp_path):
    out = tmp_path / "cycles.csv"
    result = CliRunner().invoke(main, ["analyze", str(KEATING), "--cycles-out", str(out)])
    assert result.exit_code == 0, result.output
    assert "U1:I1,U2:I2,U3:I3" in result.output          # the neutral pair U4/I4 left out
    summary = analyze(open_recording(KEATING))
    for e in summary.elements:                            # per-phase P printed
        assert f"{e.power_w:,.3f}" in result.output
        assert 35e3 < e.power_w < 60e3
    assert "total" in result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("cycle,start_s,duration_s,partial,frequency_hz,p1_w")
    assert len(lines) == 1 + 5
    js = CliRunner().invoke(main, ["analyze", str(KEATING), "--json", "--map", "U1:I1,U2:I2,U3:I3"])
    data = json.loads(js.output)
    assert [round(e["energy_all_wh"], 6) for e in data["elements"]] == list(README_WH)


@pytest.mark.parametrize("chunk", [1, 7, 500, 2047, 4096])
def test_s4_2_comtrade_chunks_equal_whole(chunk):
    reader = ComtradeReader(KEATING)
    whole, _ = reader.read()
    joined = np.concatenate(list(reader.chunks(chunk)), axis=1)
    assert np.array_equal(whole, joined)


@pytest.mark.parametrize("chunk", [3, 64, 1000])
def test_s4_2_analysis_is_the_same_whatever_the_chunking(chunk):
    cmap = ChannelMap.parse("U1:I1,U2:I2,U3:I3")
    whole = analyze(open_recording(KEATING), cmap, chunk_frames=1 << 16)
    parts = analyze(open_recording(KEATING), cmap, chunk_frames=chunk)
    assert parts.whole_cycles == whole.whole_cycles and parts.cycles == whole.cycles
    for a, b in zip(parts.elements, whole.elements):
        assert a.energy_wh == pytest.approx(b.energy_wh, rel=1e-12)
        assert a.energy_all_wh == pytest.approx(b.energy_all_wh, rel=1e-12)


def _write_binary_comtrade(path: Path, counts: np.ndarray, a, b, fs: float, fmt="BINARY", eof=True) -> None:
    n_a, n = counts.shape
    cfg = ["station,dev,1999", f"{n_a},{n_a}A,0D"]
    for k in range(n_a):
        unit = "V" if k % 2 == 0 else "A"
        cfg.append(f"{k + 1},ch{k + 1},,,{unit},{a[k]},{b[k]},0,-32767,32767,1,1,P")
    cfg += ["60", "1", f"{fs},{n}", "01/01/2020,00:00:00.000000", "01/01/2020,00:00:00.000000", fmt, "1"]
    path.write_text("\r\n".join(cfg) + "\r\n")
    dtype = {"BINARY": "<i2", "BINARY32": "<i4", "FLOAT32": "<f4"}[fmt]
    rec = np.zeros(n, dtype=[("n", "<u4"), ("t", "<u4"), ("a", dtype, (n_a,))])
    rec["n"] = np.arange(1, n + 1)
    rec["t"] = np.round(np.arange(n) / fs * 1e6)            # rounded timestamps
    rec["a"] = counts.T
    path.with_suffix(".DAT").write_bytes(rec.tobytes() + (b"\x1a" if eof else b""))


@pytest.mark.parametrize("fmt", ["BINARY", "BINARY32", "FLOAT32"])
def test_s4_1_binary_comtrade_negative_scale_and_eof_byte(tmp_path, fmt):
    rng = np.random.default_rng(3)
    counts = rng.integers(-3000, 3000, size=(2, 1000))
    a, b = (-0.05, 0.002), (1.5, -0.25)
    _write_binary_comtrade(tmp_path / "rec.cfg", counts, a, b, 4000.0, fmt)
    frames, info = read(tmp_path / "rec.cfg")
    assert info.frame_count == 1000 and info.sample_rate_hz == 4000.0
    assert np.allclose(frames[0], -0.05 * counts[0] + 1.5)
    assert np.allclose(frames[1], 0.002 * counts[1] - 0.25)
    reader = open_recording(tmp_path / "rec.cfg")
    assert np.array_equal(np.concatenate(list(reader.chunks(33)), axis=1), frames)


def test_s4_1_csv_columns_named_by_the_user_and_chunks(tmp_path):
    fs = 3000.0
    t = np.arange(600) / fs
    v = 170 * np.cos(2 * np.pi * 60 * t)
    i = 14 * np.cos(2 * np.pi * 60 * t - 0.5)
    write_csv(tmp_path / "r.csv", np.vstack((i, v, v * 0)), fs, ["amps", "volts", "spare"])
    frames, info = read(tmp_path / "r.csv", columns=["volts", "amps"])
    assert info.channel_names == ("volts", "amps")
    assert info.sample_rate_hz == pytest.approx(fs, rel=1e-9)
    assert np.allclose(frames, np.vstack((v, i)), atol=1e-6)
    chunks = list(open_recording(tmp_path / "r.csv", columns=["volts", "amps"]).chunks(77))
    assert np.array_equal(np.concatenate(chunks, axis=1), frames)


def test_s4_1_npz_and_wav_round_trip(tmp_path):
    fs = 4000
    t = np.arange(4000) / fs
    frames = np.vstack((300 * np.sin(2 * np.pi * 60 * t), 50 * np.sin(2 * np.pi * 60 * t - 1.0)))
    write_npz(tmp_path / "r.npz", frames, fs, ["V1", "I1"])
    got, info = read(tmp_path / "r.npz")
    assert info.channel_names == ("V1", "I1") and np.array_equal(got, frames)
    assert np.array_equal(np.concatenate(list(open_recording(tmp_path / "r.npz").chunks(999)), axis=1), frames)
    with WavWriter(tmp_path / "r.wav", fs, scales=(400.0, 100.0), names=("V1", "I1"), units=("V", "A")) as w:
        w.write(frames[:, :1500])
        w.write(frames[:, 1500:])
    got, info = read(tmp_path / "r.wav")
    assert info.channel_names == ("V1", "I1") and info.sample_rate_hz == fs
    # 16-bit: within half a count of each channel's full scale
    assert np.abs(got[0] - frames[0]).max() <= 400.0 / 32768 * 0.51
    assert np.abs(got[1] - frames[1]).max() <= 100.0 / 32768 * 0.51
    assert np.array_equal(np.concatenate(list(open_recording(tmp_path / "r.wav").chunks(1234)), axis=1), got)


def test_s4_1_wav_streams_with_flat_memory(tmp_path):
    """A 48 MB WAV streamed in 64 k-frame chunks: the peak of Python/NumPy allocations
    stays a few chunks' worth (the 2 GB figure is benchmarks/reader_memory.py)."""
    fs, n_ch = 48000, 4
    path = tmp_path / "big.wav"
    block = np.random.default_rng(0).normal(0, 0.2, (n_ch, 1 << 18))
    with WavWriter(path, fs, scales=(1.0,) * n_ch) as w:
        for _ in range(24):
            w.write(block)
    assert path.stat().st_size > 45e6
    reader = open_recording(path)
    tracemalloc.start()
    total = 0.0
    for chunk in reader.chunks(1 << 16):
        total += float(chunk[0].sum())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 12e6          # one chunk is 2 MB as float64


# ----------------------------------------------------------------------- malformed files
def _copy_keating(tmp_path: Path) -> Path:
    for suffix in (".CFG", ".DAT"):
        shutil.copy(KEATING.with_suffix(suffix), tmp_path / ("k" + suffix))
    return tmp_path / "k.CFG"


def test_s8_truncated_dat_names_file_and_problem(tmp_path):
    cfg = _copy_keating(tmp_path)
    dat = cfg.with_suffix(".DAT")
    lines = dat.read_text(encoding="latin-1").splitlines()
    dat.write_text("\n".join(lines[:1500]) + "\n")
    with pytest.raises(InvalidRecording, match=r"k\.DAT.*truncated.*2048.*1500"):
        open_recording(cfg)
    # a record cut in the middle of a line
    dat.write_text("\n".join(lines[:1500]) + "\n" + lines[1500][:9])
    with pytest.raises(InvalidRecording, match=r"k\.DAT: line 1501 has \d+ fields"):
        open_recording(cfg).read()


def test_s8_truncated_binary_dat(tmp_path):
    _write_binary_comtrade(tmp_path / "b.cfg", np.zeros((2, 100), int), (1, 1), (0, 0), 2000.0, eof=False)
    dat = tmp_path / "b.DAT"
    dat.write_bytes(dat.read_bytes()[:-5])
    with pytest.raises(InvalidRecording, match=r"b\.DAT: truncated"):
        open_recording(tmp_path / "b.cfg")


def test_s8_wrong_channel_count_in_cfg(tmp_path):
    cfg = _copy_keating(tmp_path)
    text = cfg.read_text().replace("8,8A,0D", "9,9A,0D", 1)
    cfg.write_text(text)
    with pytest.raises(InvalidRecording, match=r"k\.CFG: line 11: wrong channel count"):
        open_recording(cfg)
    cfg.write_text(text.replace("9,9A,0D", "8,7A,0D", 1))
    with pytest.raises(InvalidRecording, match=r"k\.CFG: line 2: wrong channel count"):
        open_recording(cfg)
    # a CFG listing fewer analog channels than the DAT holds
    lines = KEATING.read_text().splitlines()
    cfg.write_text("\n".join([lines[0], "7,7A,0D"] + lines[2:9] + lines[10:]) + "\n")
    with pytest.raises(InvalidRecording, match=r"k\.DAT: line 1 has 10 fields; the CFG describes 2 \+ 7"):
        open_recording(cfg)


def test_s8_non_numeric_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("time_s,V,I\n0,1,2\n0.001,1,2\n0.002,oops,2\n")
    with pytest.raises(InvalidRecording, match=r"bad\.csv: line 4, column 'V': 'oops' is not a number"):
        open_recording(path).read()


def test_s8_wav_with_the_wrong_channel_count(tmp_path):
    with WavWriter(tmp_path / "w.wav", 8000, scales=(400.0, 100.0)) as w:
        w.write(np.zeros((2, 100)))
    (tmp_path / "w.wav.json").write_text(json.dumps({"channels": [
        {"name": "V1", "unit": "V", "scale": 400}, {"name": "I1", "unit": "A", "scale": 100},
        {"name": "V2", "unit": "V", "scale": 400}]}))
    with pytest.raises(InvalidRecording, match=r"w\.wav: wrong channel count — the WAV has 2 channels.*has 3 names"):
        open_recording(tmp_path / "w.wav")
    # a WAV whose data chunk is cut short
    raw = (tmp_path / "w.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[:-40])
    with pytest.raises(InvalidRecording, match=r"cut\.wav: truncated"):
        open_recording(tmp_path / "cut.wav")


def test_s8_cli_bad_file_is_one_line_and_status_2(tmp_path):
    cfg = _copy_keating(tmp_path)
    cfg.write_text(cfg.read_text().replace("8,8A,0D", "9,9A,0D", 1))
    result = CliRunner().invoke(main, ["analyze", str(cfg)])
    assert result.exit_code == 2
    assert "wrong channel count" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "nope.wav")])
    assert result.exit_code == 2 and "no such file" in result.output
    result = CliRunner().invoke(main, ["analyze", str(KEATING), "--map", "U1:X9"])
    assert result.exit_code == 2 and "no channel 'X9'" in result.output


def test_s4_1_channel_map_ratios_and_meter_command():
    cmap = ChannelMap.parse("U1:I1:pt=2:ct=10,-U2:I2")
    frames = np.arange(16, dtype=float).reshape(8, 2)
    _, info = read(KEATING)
    volts, amps = cmap.resolve(info).split(frames)
    assert np.array_equal(volts, np.array([[8.0, 9.0], [-10.0, -11.0]]) * np.array([[2.0], [1.0]]))
    assert np.array_equal(amps, np.array([[0.0, 10.0], [2.0, 3.0]]))
    result = CliRunner().invoke(main, ["meter", str(KEATING), "--model", "6S", "--map", "U1:I1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # every sample registered (delivered energy), phase 1 alone: the README's figure
    assert data["watt_hours"] == pytest.approx(README_WH[0], abs=2e-6)
    assert any(ev["kind"] == "over-voltage" for ev in data["events"])      # 347 V on a 120 V meter


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 900), min_size=1, max_size=6))
def test_s4_2_property_any_chunk_sizes_read_the_same(sizes):
    """Chunks of varying size (the reader's chunks re-cut into pieces of ``sizes``,
    cycling) through the analysis's metrology give the whole reading's energies."""
    frames, info = read(KEATING)
    resolved = ChannelMap.parse("U1:I1,U2:I2,U3:I3").resolve(info)
    volts, amps = resolved.split(frames)

    def pieces():
        k, j = 0, 0
        while k < volts.shape[1]:
            n = sizes[j % len(sizes)]
            yield volts[:, k:k + n], amps[:, k:k + n]
            k, j = k + n, j + 1

    energy = sum(block.energy_wh.sum(axis=1) for block in measure_samples(pieces(), info.sample_rate_hz,
                                                                           hysteresis_v=50.0))
    assert energy == pytest.approx(np.array(README_WH), abs=2e-6)


def _network_recording(path: Path, fs: float = 4000.0, seconds: float = 0.5) -> None:
    """A 120/208 V network seen by a dual-element meter: V2 lags V1 by 120°, so L1–L2
    (√3 · 120 V at +30°) crosses zero 1/12 of a cycle before L1–N does."""
    t = np.arange(int(seconds * fs)) / fs
    w = 2 * np.pi * 60.0
    v1 = 120 * math.sqrt(2) * np.cos(w * t)
    v2 = 120 * math.sqrt(2) * np.cos(w * t - 2 * np.pi / 3)
    i1 = 20 * math.sqrt(2) * np.cos(w * t - 0.3)
    i2 = 8 * math.sqrt(2) * np.cos(w * t - 2 * np.pi / 3 - 0.2)
    write_npz(path, np.vstack((v1, i1, v2, i2)), fs, ["V1", "I1", "V2", "I2"], ["V", "A", "V", "A"])


def test_s4_2_analyze_and_meter_cut_a_two_element_recording_into_the_same_cycles(tmp_path):
    """Both cut on L1–L2 = √3·120·√2·cos(ωt + 30°): its positive-going zero crossings are at
    ωt = −120° (mod 360°), t = 1/90 s + k/60 s — not L1–N's 1/80 s + k/60 s."""
    path = tmp_path / "network.npz"
    _network_recording(path)
    analysed = []
    analyze(open_recording(path), on_block=analysed.append)
    mapped = map_recording(open_recording(path))
    meter = Meter.for_model("7B", hysteresis_v=mapped.hysteresis_v)
    metered = [u.cycles for u in feed_samples(meter, mapped.chunks(), mapped.sample_rate_hz)]
    starts_a = np.concatenate([b.start_s for b in analysed])
    starts_m = np.concatenate([b.start_s for b in metered if b.count])
    assert starts_a.size == starts_m.size == 31          # 30 crossings in 0.5 s: 29 whole cycles, 2 partial
    assert np.array_equal(starts_a, starts_m)
    whole = np.concatenate([b.start_s[~b.partial] for b in analysed])
    assert whole.size == 29 and whole == pytest.approx(1 / 90 + np.arange(whole.size) / 60, abs=1e-7)
    out = CliRunner().invoke(main, ["analyze", str(path)])
    assert out.exit_code == 0 and "cut on L1–L2" in out.output


def _ascii_comtrade(folder: Path, header: str, rate_line: str, tail: list[str], rows: list[str]) -> Path:
    cfg = folder / "a.cfg"
    lines = [header, "2,2A,0D", "1,V1,A,,kV,0.01,0,0,-99999,99999,1,1,P", "2,I1,A,,A,-0.5,1,0,-99999,99999,1,1,P",
             "60", "1", rate_line, "01/01/2020,00:00:00.000000", "01/01/2020,00:00:00.000000", "ASCII", *tail]
    cfg.write_text("\n".join(lines) + "\n")
    (folder / "a.dat").write_text("\n".join(rows) + "\n")
    return cfg


@pytest.mark.parametrize("revision", ["1991", "1999", "2013"])
def test_s4_1_comtrade_revisions_and_rounded_timestamps(tmp_path, revision):
    """1991: no revision year, no timemult line; 2013: time code lines after timemult.
    With a CFG rate of 0 the rate comes from the timestamps over the whole file
    (rounded to whole µs in the file: 1/3000 s steps are 333 or 334 µs)."""
    fs = 3000.0
    n = 301
    t_us = np.round(np.arange(n) / fs * 1e6).astype(int)
    rows = [f"{k + 1},{t_us[k]},{k},{-k}" for k in range(n)]
    header = {"1991": "st,dev", "1999": "st,dev,1999", "2013": "st,dev,2013"}[revision]
    tail = {"1991": [], "1999": ["1"], "2013": ["1", "+0h00,+0h00", "0,0"]}[revision]
    cfg = _ascii_comtrade(tmp_path, header, f"0,{n}", tail, rows)
    frames, info = read(cfg)
    assert info.sample_rate_hz == pytest.approx(fs, rel=1e-6)     # not 1e6/333 or 1e6/334
    # V1 is in kV in the CFG: 0.01 kV per count = 10 V per count (S4.9: SI out)
    assert np.allclose(frames[0], 10.0 * np.arange(n)) and np.allclose(frames[1], -0.5 * -np.arange(n) + 1)
    assert any("timestamps" in note for note in info.notes)


def test_s4_1_wav_24_bit_and_float(tmp_path):
    """Hand-built RIFF files: 24-bit PCM counts and 32-bit floats, per-channel scale."""
    counts = np.array([[0, 1 << 22, -(1 << 23), (1 << 23) - 1], [5, -5, 100, -100]])     # (2 channels, 4 frames)
    interleaved = counts.T.reshape(-1)
    data = b"".join(int(c & 0xFFFFFF).to_bytes(3, "little") for c in interleaved)
    fmt = struct.pack("<HHIIHH", 1, 2, 8000, 8000 * 6, 6, 24)
    (tmp_path / "p24.wav").write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
                                       + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    frames, info = read(tmp_path / "p24.wav", scales=[400.0, 50.0], names=["V", "I"])
    assert np.allclose(frames, counts / 2 ** 23 * np.array([[400.0], [50.0]]))
    floats = np.array([[0.5, -0.25], [0.125, 1.0]], dtype="<f4")       # (frames, channels)
    data = floats.tobytes()
    fmt = struct.pack("<HHIIHH", 3, 2, 8000, 8000 * 8, 8, 32)
    (tmp_path / "f.wav").write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
                                     + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    frames, _ = read(tmp_path / "f.wav", scales=[2.0, 10.0])
    assert np.allclose(frames, floats.T * np.array([[2.0], [10.0]]))


def test_s4_1_cli_meter_on_a_wav_with_a_calibration(tmp_path):
    """A 120 V, 30 A PF 1 recording (2 s, 16-bit WAV with a sidecar) metered through an
    identity calibration file: the register holds Σv·i/fs of every sample but the last
    HALF_TAPS, which are still in the correction filter when the stream ends (its group
    delay), to 16-bit precision."""
    from minimeter.lab.calibration import Calibration

    fs = 8000
    t = np.arange(2 * fs) / fs
    w = 2 * np.pi * 60 * t
    frames = np.vstack((120 * math.sqrt(2) * np.cos(w), 30 * math.sqrt(2) * np.cos(w)))
    with WavWriter(tmp_path / "m.wav", fs, scales=(400.0, 100.0), names=("V1", "I1"), units=("V", "A")) as wr:
        wr.write(frames)
    Calibration.identity(1).save(tmp_path / "cal.json")
    result = CliRunner().invoke(main, ["meter", str(tmp_path / "m.wav"), "--model", "MO", "--calibration",
                                       str(tmp_path / "cal.json"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    from minimeter.sources.frontend import HALF_TAPS

    held = slice(None, frames.shape[1] - HALF_TAPS)
    expected_wh = float(np.sum(frames[0, held] * frames[1, held])) / fs / 3600
    assert expected_wh == pytest.approx(2.0 * (1 - 2 * HALF_TAPS / frames.shape[1]), rel=1e-4)   # peaks at the end
    assert data["watt_hours"] == pytest.approx(expected_wh, rel=1e-4)
    assert data["channel_map"] == "V1:I1"


def test_s4_1_keating_agrees_with_the_comtrade_package():
    """An independent reader (PyPI ``comtrade``, test-only) gives the same values."""
    comtrade = pytest.importorskip("comtrade")
    rec = comtrade.load(str(KEATING), str(KEATING.with_suffix(".DAT")))
    other = np.array(rec.analog)
    frames, info = read(KEATING)
    assert rec.cfg.sample_rates[0][0] == pytest.approx(info.sample_rate_hz)
    assert other.shape == frames.shape
    assert np.allclose(frames, other, rtol=1e-6, atol=1e-4)
