"""Fuzz target (issue 9, SPEC S15.1): mutated recordings through every reader.

Seed files — valid recordings of every format the readers take (COMTRADE ASCII, BINARY,
BINARY32, FLOAT32 and the 2013 single-file ``.cff``; CSV; WAV 16/24-bit and float with
a ``.wav.json`` sidecar; NPZ stored, compressed and per-channel) — are written once per
process. ``run_case(rng)`` copies one seed into a fresh directory, mutates one of its
files (byte flips, truncation, insertion, duplication, header edits: a number in a text
header or a binary field replaced by an extreme), then opens it with
:func:`minimeter.sources.recordings.open_recording`, reads it chunk by chunk and binds
it to the meter's inputs. The case returns, or raises a
:class:`minimeter.errors.MinimeterError`; anything else is a finding.
"""

from __future__ import annotations

import atexit
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from minimeter.lab.analysis import map_recording
from minimeter.sources.recordings import WavWriter, open_recording, write_csv, write_npz

_WORK = Path(tempfile.mkdtemp(prefix="fuzz-readers-"))
atexit.register(shutil.rmtree, _WORK, True)
_FS = 1920.0                        # [Hz] 32 samples per 60 Hz cycle
_N = 96                             # frames per seed: three cycles


def _signals() -> np.ndarray:
    t = np.arange(_N) / _FS
    return np.vstack((170.0 * np.sin(2 * np.pi * 60 * t), 14.1 * np.sin(2 * np.pi * 60 * t - 0.5)))


def _cfg_text(fmt: str, units: tuple[str, str] = ("V", "A")) -> str:
    return "\n".join([
        "fuzz,dev,2013", "3,2A,1D",
        f"1,V1,A,,{units[0]},0.01,0,0,-32767,32767,1,1,P", f"2,I1,A,,{units[1]},0.001,0,0,-32767,32767,1,1,P",
        "1,D1,,,0", "60", "1", f"{_FS:g},{_N}", "01/01/2020,00:00:00.000000", "01/01/2020,00:00:00.000000",
        fmt, "1", "+0h00,+0h00", "0,0"]) + "\n"


def _dat_records(fmt: str, counts: np.ndarray) -> bytes:
    """A DAT's bytes: ASCII lines or binary records (sample number, time, values, digital word);
    frame 10's voltage is the standard's missing-sample marker (a gap)."""
    if fmt == "ASCII":
        return "".join(f"{k + 1},{int(k * 1e6 / _FS)},{99999 if k == 10 else counts[0, k]},{counts[1, k]},0\n"
                       for k in range(_N)).encode()
    value = {"BINARY": "<i2", "BINARY32": "<i4", "FLOAT32": "<f4"}[fmt]
    rec = np.zeros(_N, dtype=[("n", "<u4"), ("t", "<u4"), ("a", value, (2,)), ("d", "<u2", (1,))])
    rec["n"] = np.arange(1, _N + 1)
    rec["t"] = (np.arange(_N) * 1e6 / _FS).astype(int)
    rec["a"] = counts.T
    rec["a"][10, 0] = {"BINARY": -0x8000, "BINARY32": -0x80000000, "FLOAT32": np.nan}[fmt]
    return rec.tobytes()


def _comtrade_seeds(frames: np.ndarray) -> list[Path]:
    counts = np.round(frames / np.array([[0.01], [0.001]])).astype(int)
    seeds = []
    for fmt in ("ASCII", "BINARY", "BINARY32", "FLOAT32"):
        folder = _WORK / "seeds" / f"comtrade-{fmt.lower()}"
        folder.mkdir(parents=True)
        (folder / "r.cfg").write_text(_cfg_text(fmt))
        (folder / "r.dat").write_bytes(_dat_records(fmt, counts))
        seeds.append(folder)
        cff = _WORK / "seeds" / f"cff-{fmt.lower()}"
        cff.mkdir(parents=True)
        dat = _dat_records(fmt, counts)
        head = "DAT ASCII" if fmt == "ASCII" else f"DAT {fmt}: {len(dat)}"
        (cff / "r.cff").write_bytes(b"--- file type: CFG ---\n" + _cfg_text(fmt).encode()
                                    + b"--- file type: INF ---\n--- file type: HDR ---\n"
                                    + f"--- file type: {head} ---\n".encode() + dat)
        seeds.append(cff)
    return seeds


def _other_seeds(frames: np.ndarray) -> list[Path]:
    seeds = []
    for name, write in (("csv", lambda d: write_csv(d / "r.csv", frames, _FS, ["V1 [V]", "I1 [A]"])),
                        ("npz", lambda d: write_npz(d / "r.npz", frames, _FS, ["V1", "I1"], ["kV", "A"])),
                        ("npz-compressed", lambda d: np.savez_compressed(
                            d / "r.npz", frames=frames, sample_rate_hz=_FS, channel_names=np.array(["V1", "I1"]))),
                        ("npz-members", lambda d: np.savez(d / "r.npz", V1=frames[0], I1=frames[1],
                                                           sample_rate_hz=_FS))):
        folder = _WORK / "seeds" / name
        folder.mkdir(parents=True)
        write(folder)
        seeds.append(folder)
    folder = _WORK / "seeds" / "wav16"
    folder.mkdir(parents=True)
    with WavWriter(folder / "r.wav", int(_FS), [400.0, 40.0], ["V1", "I1"], ["V", "A"]) as w:
        w.write(frames)
    seeds.append(folder)
    for bits, fmt_tag, dtype in ((24, 1, None), (32, 3, "<f4")):
        folder = _WORK / "seeds" / f"wav{bits}"
        folder.mkdir(parents=True)
        norm = frames / np.array([[400.0], [40.0]])
        if dtype is None:
            ints = np.round(norm.T * (1 << 23)).astype("<i4").reshape(-1)
            data = b"".join(int(x).to_bytes(3, "little", signed=True) for x in ints)
        else:
            data = norm.T.astype(dtype).tobytes()
        fmt = struct.pack("<HHIIHH", fmt_tag, 2, int(_FS), int(_FS) * 2 * bits // 8, 2 * bits // 8, bits)
        body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
        (folder / "r.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
        shutil.copy(_WORK / "seeds" / "wav16" / "r.wav.json", folder / "r.wav.json")
        seeds.append(folder)
    return seeds


_SEEDS: list[Path] = []


def seeds() -> list[Path]:
    """The seed folders (written on first use)."""
    if not _SEEDS:
        frames = _signals()
        _SEEDS.extend(_comtrade_seeds(frames) + _other_seeds(frames))
    return _SEEDS


_EXTREMES = [b"0", b"-1", b"99999", b"-99999", b"1e308", b"-1e308", b"nan", b"inf", b"4294967295",
             b"18446744073709551616", b"0.0000001", b"", b"1" * 40, b"2147483648", b"65536", b"1e-320"]
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _header_edit(data: bytearray, rng: np.random.Generator) -> None:
    """A number in the text (a CFG line, a CSV cell, a JSON scale, an .npy header) or a
    binary field at a random aligned offset replaced by an extreme."""
    numbers = list(_NUMBER.finditer(bytes(data[:4096])))
    if numbers and rng.random() < 0.7:
        m = numbers[int(rng.integers(len(numbers)))]
        data[m.start():m.end()] = _EXTREMES[int(rng.integers(len(_EXTREMES)))]
        return
    if len(data) >= 8:
        at = int(rng.integers(0, min(len(data), 256) - 4 + 1)) & ~3
        value = int(rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x8000, int(rng.integers(0, 2 ** 32))]))
        data[at:at + 4] = struct.pack("<I", value)


def _mutate(data: bytearray, rng: np.random.Generator) -> None:
    kind = int(rng.integers(6))
    n = len(data)
    if kind == 0 and n:                                   # flip bytes
        for _ in range(int(rng.integers(1, 9))):
            data[int(rng.integers(n))] = int(rng.integers(256))
    elif kind == 1:                                       # truncate
        del data[int(rng.integers(n + 1)):]
    elif kind == 2:                                       # insert random or hostile bytes
        at = int(rng.integers(n + 1))
        blobs = [bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8)),
                 b"\xff", b"\x1a", b"\x00" * 16, b"[" * 5000, b"x" * 140_000, b"\r\n" * 8, b",,,,"]
        data[at:at] = blobs[int(rng.integers(len(blobs)))]
    elif kind == 3 and n:                                 # duplicate or drop a span
        a = int(rng.integers(n))
        b = min(n, a + int(rng.integers(1, 512)))
        if rng.random() < 0.5:
            data[b:b] = data[a:b]
        else:
            del data[a:b]
    elif kind == 4:
        _header_edit(data, rng)
    else:                                                 # empty, or only an EOF byte
        data[:] = (b"", b"\x1a", b"\x00")[int(rng.integers(3))]


def _mutate_inside_zip(path: Path, rng: np.random.Generator) -> None:
    """An .npz rebuilt with one member's bytes (its .npy header or data) mutated, or a
    member renamed, so the mutation reaches the arrays and not only the container."""
    with zipfile.ZipFile(path) as zf:
        members = [(i.filename, zf.read(i.filename), i.compress_type) for i in zf.infolist()]
    k = int(rng.integers(len(members)))
    name, data, compress = members[k]
    if rng.random() < 0.1:
        name = name.removesuffix(".npy") + rng.choice(["", ".txt", ".npy.npy"])
    else:
        buf = bytearray(data)
        _header_edit(buf, rng) if rng.random() < 0.6 else _mutate(buf, rng)
        data = bytes(buf)
    members[k] = (name, data, compress)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, compress in members:
            zf.writestr(name, data, compress_type=compress)


def _read(path: Path, rng: np.random.Generator) -> None:
    """Open, read in chunks, and bind to the meter's inputs the way ``analyze`` does."""
    options = {"sample_rate_hz": _FS} if path.suffix == ".csv" and rng.random() < 0.3 else {}
    reader = open_recording(path, **options)
    for _ in reader.chunks(int(rng.choice([1, 7, 64, 4096]))):
        pass
    for _ in map_recording(reader, chunk_frames=int(rng.choice([5, 4096]))).chunks():
        pass


def run_case(rng: np.random.Generator) -> None:
    """One mutated recording read end to end (see the module's docstring)."""
    seed = seeds()[int(rng.integers(len(seeds())))]
    case = _WORK / "case"
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(seed, case)
    files = sorted(case.iterdir())
    for _ in range(1 if rng.random() < 0.7 else int(rng.integers(2, 4))):
        target = files[int(rng.integers(len(files)))]
        if target.suffix == ".npz" and rng.random() < 0.7 and zipfile.is_zipfile(target):
            try:
                _mutate_inside_zip(target, rng)
                continue
            except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, NotImplementedError):
                pass                        # an earlier mutation broke the container: mutate its bytes
        data = bytearray(target.read_bytes())
        _mutate(data, rng)
        target.write_bytes(bytes(data))
    main = next(p for p in files if p.suffix in (".cfg", ".cff", ".csv", ".wav", ".npz"))
    _read(main, rng)
