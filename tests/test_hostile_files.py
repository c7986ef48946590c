"""SPEC S15.1 (issue 9): every reader and every file format turns malformed or hostile
input into the project's one-line error naming the file and the problem — the cases a
42,000-case mutation run found giving raw tracebacks, each written here by hand."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minimeter.errors import InvalidLoad, MinimeterError
from minimeter.formats import parse_profile_load
from minimeter.formats.installation import load_installation, parse_installation
from minimeter.formats.reference_run import InvalidReferenceRun, load_reference_run
from minimeter.sources.recordings import CsvReader, InvalidRecording, WavWriter, open_recording, read, write_csv, write_npz
from minimeter.sources.wiring import InvalidInstallation

FS = 1920.0


def _frames(n: int = 96) -> np.ndarray:
    t = np.arange(n) / FS
    return np.vstack((170 * np.sin(2 * np.pi * 60 * t), 14 * np.sin(2 * np.pi * 60 * t - 0.5)))


def _refused(path: Path, error=InvalidRecording, needle: str = "") -> str:
    """Reading ``path`` whole raises ``error`` with one line naming the file."""
    with pytest.raises(error) as caught:
        read(path)
    message = str(caught.value)
    assert "\n" not in message and path.name in message and needle in message, message
    return message


def _npy(array_bytes: bytes, header: str) -> bytes:
    head = header.encode("latin-1")
    pad = 64 - (10 + len(head) + 1) % 64
    head = head + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head + array_bytes


def _zip(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy_of(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


# --------------------------------------------------------------------------- NPZ
def test_s15_1_npz_object_channel_names_are_never_unpickled(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, frames=_frames(), sample_rate_hz=FS, channel_names=np.array(["V1", 2], dtype=object))
    _refused(path, needle="channel_names")


def test_s15_1_npz_scalar_channel_names(tmp_path):
    path = tmp_path / "scalar.npz"
    np.savez(path, frames=_frames(), sample_rate_hz=FS, channel_names=np.array("V1"))
    _refused(path, needle="1-D array")


def test_s15_1_npz_member_without_npy_suffix(tmp_path):
    path = _zip(tmp_path / "odd.npz", {"frames.npy": _npy_of(_frames()), "sample_rate_hz": _npy_of(np.float64(FS))})
    _refused(path, needle="'sample_rate_hz' is not a .npy array")


def test_s15_1_npz_not_a_zip_and_a_corrupt_deflate_stream(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really")
    _refused(junk)
    path = tmp_path / "z.npz"
    np.savez_compressed(path, frames=_frames(4096), sample_rate_hz=FS)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)            # the deflate stream of 'frames' damaged
    path.write_bytes(bytes(data))
    _refused(path)


def test_s15_1_npz_header_claiming_more_samples_than_it_holds(tmp_path):
    frames = _frames(100)
    data = frames.astype("<f8").tobytes()
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 200), }"
    path = _zip(tmp_path / "short.npz", {"frames.npy": _npy(data, header), "sample_rate_hz.npy": _npy_of(np.float64(FS))})
    message = _refused(path, needle="(2, 200)")
    assert "3,200 bytes" in message and "1,600 bytes" in message   # 2·200·8 promised, 2·100·8 held


def test_s15_1_npz_rate_outside_its_bounds(tmp_path):
    for rate in (0.0, -1.0, np.inf, 2e9):
        path = tmp_path / "rate.npz"
        write_npz(path, _frames(), rate, ["V1", "I1"])
        _refused(path, needle="sample rate")


# --------------------------------------------------------------------------- CSV
def test_s15_1_csv_one_non_utf8_byte(tmp_path):
    path = tmp_path / "ff.csv"
    write_csv(path, _frames(), FS, ["V1", "I1"])
    data = bytearray(path.read_bytes())
    data[40] = 0xFF
    path.write_bytes(bytes(data))
    _refused(path, needle="not UTF-8 text (byte 0xff at offset 40)")


def test_s15_1_csv_a_field_of_140_000_digits(tmp_path):
    """(The csv module refused such a field with a raw _csv.Error; a number that long is
    beyond any float, and is named as such.)"""
    path = tmp_path / "long.csv"
    path.write_text("time_s,V1,I1\n0,1,2\n0.001,1," + "9" * 140_000 + "\n0.002,1,2\n")
    _refused(path, needle="line 3, column 'I1': not a finite number")


# --------------------------------------------------------------------------- WAV
def test_s15_1_wav_deeply_nested_sidecar(tmp_path):
    path = tmp_path / "deep.wav"
    with WavWriter(path, int(FS), [400.0, 40.0], ["V1", "I1"], ["V", "A"]) as w:
        w.write(_frames())
    Path(str(path) + ".json").write_text('{"channels": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InvalidRecording, match=r"deep\.wav\.json: not a channel description \(nested too deeply\)"):
        read(path)


def test_s15_1_wav_sidecar_scales_bounded(tmp_path):
    path = tmp_path / "s.wav"
    with WavWriter(path, int(FS), [400.0, 40.0], ["V1", "I1"], ["V", "A"]) as w:
        w.write(_frames())
    for scale in ("0", "1e300", "NaN"):
        Path(str(path) + ".json").write_text(
            '{"channels": [{"name": "V1", "scale": %s}, {"name": "I1", "scale": 1}]}' % scale)
        _refused(path, needle="scale")


# --------------------------------------------------------------------------- COMTRADE
def _binary_rate0_comtrade(folder: Path, dat: bytes) -> Path:
    cfg = folder / "r.cfg"
    cfg.write_text("st,dev,1999\n2,2A,0D\n1,V1,A,,V,1,0,0,-32767,32767,1,1,P\n2,I1,A,,A,1,0,0,-32767,32767,1,1,P\n"
                   "60\n1\n0,0\n01/01/2020,00:00:00.000000\n01/01/2020,00:00:00.000000\nBINARY\n1\n")
    (folder / "r.dat").write_bytes(dat)
    return cfg


@pytest.mark.parametrize("dat", [b"", b"\x1a"], ids=["empty", "eof-byte-only"])
def test_s15_1_comtrade_empty_binary_dat_with_sample_rate_0(tmp_path, dat):
    cfg = _binary_rate0_comtrade(tmp_path, dat)
    with pytest.raises(InvalidRecording, match=r"r\.cfg: the sample rate is 0 \(timestamps only\) and the DAT holds 0"):
        read(cfg)


@pytest.mark.parametrize("field,value,needle", [
    (5, "nan", "multiplier a 'nan' is outside"), (1, "99999999", "analog channel count"),
])
def test_s15_1_comtrade_cfg_numbers_bounded(tmp_path, field, value, needle):
    cfg = _binary_rate0_comtrade(tmp_path, b"")
    lines = cfg.read_text().splitlines()
    target = 2 if field == 5 else 1
    parts = lines[target].split(",")
    parts[field] = value + ("A" if field == 1 else "")
    lines[target] = ",".join(parts)
    cfg.write_text("\n".join(lines) + "\n")
    _refused(cfg, needle=needle)


# --------------------------------------------------------------------------- device files and sizes
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_s15_1_device_files_are_refused_not_read_forever(tmp_path):
    with pytest.raises(InvalidRecording, match="/dev/zero: not a regular file"):
        CsvReader("/dev/zero")
    toml = tmp_path / "i.toml"
    toml.write_text('[[load]]\nprofile = "/dev/zero"\n')
    with pytest.raises(InvalidInstallation, match=r"load\[1\]\.profile: .*/dev/zero: not a regular file"):
        load_installation(toml)
    with pytest.raises(InvalidInstallation, match="/dev/zero: not a regular file"):
        load_installation("/dev/zero")
    with pytest.raises(InvalidLoad, match="profile '/dev/zero': not a regular file"):
        parse_profile_load("/dev/zero@L1")


def test_s15_1_a_profile_over_16_mib_is_refused(tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "wb") as fh:
        fh.truncate((16 << 20) + 1)                 # sparse: no disk used
    with pytest.raises(InvalidLoad, match=r"16,777,217 bytes is over the limit of 16,777,216"):
        parse_profile_load(f"{big}@L1")


def test_s15_1_profile_values_bounded(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("time_s,watts\n0,100\n60,5e6\n")
    with pytest.raises(InvalidLoad, match=r"p\.csv:3: 60 s, 5e\+06 W is outside"):
        parse_profile_load(f"{path}@L1")


# --------------------------------------------------------------------------- installation and reference-run bounds
@pytest.mark.parametrize("text,needle", [
    ("[service]\nphase_deg = 400\n", "service.phase_deg: 400 is outside -360 … 360"),
    ("[[load]]\nwatts = 100\nharmonics = [{ order = 2.5, magnitude = 0.1 }]\n",
     "load[1].harmonics[1].order: expected a whole number, got 2.5"),
    ('duration = "4000d"\n[[load]]\nwatts = 100\n', "duration: 3.456e+08 s is over the limit"),
    ("[[load]]\nwatts = 2e6\n", "load[1].watts: 2000000.0 is outside -1e+06 … 1e+06"),
    ("[[load]]\namps = 1e5\n", "load[1].amps: 100000.0 is outside 0 … 10000"),
    ('name = "' + "x" * 5000 + '"\n[[load]]\nwatts = 1\n', "name: 5,000 characters — at most 4,096"),
    ("[[ct]]\nconductors = ['L1', 'L1', 'L1', 'L1']\n[[load]]\nwatts = 1\n", "ct[1].conductors: expected an array of 1 to"),
])
def test_s15_1_installation_fields_bounded(text, needle):
    with pytest.raises(InvalidInstallation) as caught:
        parse_installation(text, "bounds.toml")
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_s15_1_an_installation_file_over_1_mib_is_refused(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_text("# padding\n" * 110_000)
    with pytest.raises(InvalidInstallation, match=r"huge\.toml: 1,100,000 bytes is over the limit of 1,048,576"):
        load_installation(path)


def test_s15_1_reference_run_true_values_bounded(tmp_path):
    write_csv(tmp_path / "a.csv", _frames(), FS, ["V", "I"])
    path = tmp_path / "run.toml"
    path.write_text('format = "minimeter-reference-run"\n[[step]]\nrecording = "a.csv"\nvolts_rms = 1e7\n'
                    'amps_rms = 10\npower_factor = 1\n')
    with pytest.raises(InvalidReferenceRun, match=r"step\[1\]\.volts_rms: 10000000\.0: at most 64 values, each in \(0, 1e\+06\]"):
        load_reference_run(path)


def test_s15_1_every_refusal_is_a_minimeter_error():
    """The errors above are all the project's own (one handler in the CLI, exit status 2)."""
    for error in (InvalidRecording, InvalidInstallation, InvalidLoad, InvalidReferenceRun):
        assert issubclass(error, MinimeterError)


# --------------------------------------------------------------------------- found by the long campaign
def test_s15_1_a_wav_header_claiming_a_huge_fmt_chunk_allocates_nothing(tmp_path):
    """A 'fmt ' chunk declaring 3.5 GB: refused before any read of that size (under a
    memory limit the read itself was a MemoryError)."""
    path = tmp_path / "huge-fmt.wav"
    body = b"WAVE" + b"fmt " + struct.pack("<I", 3_514_309_052) + bytes(16)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    _refused(path, needle="a 'fmt ' chunk of 3,514,309,052 bytes — at most 65,536")


def test_s15_1_an_npz_with_an_encrypted_member(tmp_path):
    path = tmp_path / "enc.npz"
    np.savez(path, frames=_frames(), sample_rate_hz=FS)
    data = bytearray(path.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):     # local and central headers
        at = data.find(signature)
        while at >= 0:
            data[at + flag_at] |= 0x1
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    _refused(path, needle="an encrypted member")


def test_s15_1_a_name_from_the_file_with_a_newline_stays_on_one_line(tmp_path):
    """A mutated member name ('sample_rat\\n_hz') is quoted escaped: the error is one line."""
    path = tmp_path / "r.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, value in (("V1", np.zeros(4)), ("I1", np.zeros(4)), ("sample_rat\n_hz", np.array(2000.0))):
            buf = io.BytesIO()
            np.save(buf, value)
            zf.writestr(name + ".npy", buf.getvalue())
    with pytest.raises(InvalidRecording) as err:
        open_recording(path)
    assert "\n" not in str(err.value) and "sample_rat\\n_hz" in str(err.value)
