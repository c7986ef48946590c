"""Readers at disk speed (issue 12 item 4): each reader's chunked pass against its
baseline in the same run, and ``read()``'s peak allocation against its output.

* WAV 16-bit and COMTRADE BINARY, chunked (2^16 frames), against memmap + scale: the
  same bytes mapped with ``numpy.memmap`` and scaled chunk by chunk with one
  ``numpy.multiply`` (COMTRADE: ``a · x + b``) — the least a reader can do;
* CSV, chunked, against ``pandas.read_csv`` when pandas is installed, and against
  ``numpy.loadtxt`` of the whole file;
* ``read()``: the peak of traced allocations (``tracemalloc``, which numpy reports to)
  over the output's size — 1.0 is one full copy.

One core (``sched_setaffinity``; BLAS threads 1), the file dropped from the page cache
before every run (``posix_fadvise(DONTNEED)``), three runs each: min and median.

    .venv/bin/python benchmarks/readers_speed.py [--megabytes 256] [--csv-rows 2000000]
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics  # noqa: E402
import struct  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from minimeter.sources.recordings import DEFAULT_CHUNK_FRAMES, open_recording, write_csv  # noqa: E402

FS = 8000
CHANNELS = 4


def drop_cache(path: Path) -> None:
    """Evict the file's pages so the next pass reads the disk (best effort)."""
    if hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(fn, path: Path, runs: int = 3) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        drop_cache(path)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def _signal(n: int) -> np.ndarray:
    t = np.arange(n) / FS
    return np.vstack([np.sin(2 * np.pi * 60 * t + k) * 0.8 for k in range(CHANNELS)])


# --------------------------------------------------------------------------- the files
def write_wav(path: Path, frames: int) -> None:
    with open(path, "wb") as fh:
        data_bytes = frames * CHANNELS * 2
        fh.write(b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt "
                 + struct.pack("<IHHIIHH", 16, 1, CHANNELS, FS, FS * CHANNELS * 2, CHANNELS * 2, 16)
                 + b"data" + struct.pack("<I", data_bytes))
        for k in range(0, frames, 1 << 20):
            m = min(1 << 20, frames - k)
            fh.write(np.ascontiguousarray((_signal(m) * 32767).astype("<i2").T).tobytes())


def write_comtrade(path: Path, frames: int) -> Path:
    cfg = path.with_suffix(".cfg")
    cfg.write_text("\n".join(["bench,dev,1999", f"{CHANNELS},{CHANNELS}A,0D"]
                             + [f"{k + 1},CH{k + 1},,,V,0.01,0.5,0,-32767,32767,1,1,P" for k in range(CHANNELS)]
                             + ["60", "1", f"{FS},{frames}", "01/01/2020,00:00:00.000000",
                                "01/01/2020,00:00:00.000000", "BINARY", "1"]) + "\n")
    dtype = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", "<i2", (CHANNELS,))])
    with open(path.with_suffix(".dat"), "wb") as fh:
        for k in range(0, frames, 1 << 20):
            m = min(1 << 20, frames - k)
            rec = np.zeros(m, dtype)
            rec["n"] = np.arange(k + 1, k + m + 1)
            rec["a"] = (_signal(m) * 30000).astype("<i2").T
            fh.write(rec.tobytes())
    return cfg


# --------------------------------------------------------------------------- the passes
def reader_pass(path: Path) -> float:
    total = 0.0
    for chunk in open_recording(path).chunks(DEFAULT_CHUNK_FRAMES):
        total += float(chunk[0, 0])
    return total


def memmap_wav(path: Path, frames: int) -> float:
    mm = np.memmap(path, dtype="<i2", mode="r", offset=44, shape=(frames, CHANNELS))
    scale = np.full((CHANNELS, 1), 1.0 / 32768)
    total = 0.0
    for k in range(0, frames, DEFAULT_CHUNK_FRAMES):
        total += float(np.multiply(mm[k:k + DEFAULT_CHUNK_FRAMES].T, scale, dtype=float)[0, 0])
    return total


def memmap_comtrade(dat: Path, frames: int) -> float:
    dtype = np.dtype([("n", "<u4"), ("t", "<u4"), ("a", "<i2", (CHANNELS,))])
    mm = np.memmap(dat, dtype=dtype, mode="r", shape=(frames,))
    a, b = np.full((CHANNELS, 1), 0.01), np.full((CHANNELS, 1), 0.5)
    total = 0.0
    for k in range(0, frames, DEFAULT_CHUNK_FRAMES):
        out = np.multiply(mm["a"][k:k + DEFAULT_CHUNK_FRAMES].T, a, dtype=float)
        out += b
        total += float(out[0, 0])
    return total


def read_peak_ratio(path: Path) -> float:
    """Peak traced allocation of ``read()`` over the output's bytes."""
    reader = open_recording(path)
    tracemalloc.start()
    frames, _ = reader.read()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / frames.nbytes


def row(name: str, ours: tuple[float, float], base: tuple[float, float], base_name: str) -> None:
    print(f"{name:<26} ours min {ours[0]:7.3f} s median {ours[1]:7.3f} s | {base_name:<22} min {base[0]:7.3f} s "
          f"median {base[1]:7.3f} s | ratio min {ours[0] / base[0]:5.2f}× median {ours[1] / base[1]:5.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=256.0, help="size of the WAV and COMTRADE files")
    parser.add_argument("--csv-rows", type=int, default=2_000_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    frames = int(args.megabytes * 2 ** 20 / (CHANNELS * 2))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wav = folder / "bench.wav"
        write_wav(wav, frames)
        cfg = write_comtrade(folder / "bench.dat", frames)
        dat = cfg.with_suffix(".dat")
        print(f"one core; {frames:,} frames × {CHANNELS} channels ({args.megabytes:g} MB of int16 samples); "
              "page cache dropped before each run; 3 runs")
        row("WAV 16-bit chunked", timed(lambda: reader_pass(wav), wav), timed(lambda: memmap_wav(wav, frames), wav),
            "memmap + scale")
        row("COMTRADE BINARY chunked", timed(lambda: reader_pass(cfg), dat),
            timed(lambda: memmap_comtrade(dat, frames), dat), "memmap + a·x + b")
        for name, path in (("WAV", wav), ("COMTRADE", cfg)):
            print(f"{name + ' read()':<26} peak allocation {read_peak_ratio(path):.2f} × the output "
                  "(1.00 = one full copy)")
        csv_path = folder / "bench.csv"
        write_csv(csv_path, _signal(args.csv_rows) * 170, FS, [f"CH{k + 1}" for k in range(CHANNELS)])
        ours = timed(lambda: reader_pass(csv_path), csv_path)
        row(f"CSV {args.csv_rows:,} rows", ours,
            timed(lambda: np.loadtxt(csv_path, delimiter=",", skiprows=1), csv_path), "numpy.loadtxt (whole)")
        try:
            import pandas
        except ImportError:
            print("CSV vs pandas.read_csv: pandas is not installed here — no figure")
        else:
            row(f"CSV {args.csv_rows:,} rows", ours,
                timed(lambda: pandas.read_csv(csv_path), csv_path), "pandas.read_csv")


if __name__ == "__main__":
    main()
