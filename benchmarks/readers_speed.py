"""Readers at disk speed (issue 12 item 4): each reader's chunked pass against its
baseline in the same run, and ``read()``'s peak allocation against its output.

* WAV 16-bit and COMTRADE BINARY, chunked (2^16 frames), against memmap + scale: the
  same bytes mapped with ``numpy.memmap`` and scaled chunk by chunk with one
  ``numpy.multiply`` (COMTRADE: ``a · x + b``) — the least a reader can do;
* CSV (2e6 rows of a time column and four channels written as ``%.10g``): the reader
  (Arrow's parser underneath), chunked (opening included) and ``read()`` whole, against
  ``pandas.read_csv`` of the same file (its default C engine, every column: the baseline of
  DESIGN.md), against ``pandas.read_csv(usecols=…)`` of the four sample columns the reader
  parses (like for like), and against ``numpy.loadtxt``; the four interleaved run by run;
* ``read()``: the peak of traced allocations (``tracemalloc``, which numpy reports to)
  over the output's size — 1.0 is one full copy.

One core (every thread of the process pinned by ``sched_setaffinity`` before any pass;
threads started later — the CSV reader's counting thread, Arrow's pools — inherit it;
Arrow's parser runs with ``use_threads=False``, pandas' C parser has one thread; BLAS
threads 1; CPU times are the whole process's), the file dropped from the page cache
before every run (``posix_fadvise(DONTNEED)``), three runs each: min and median.

    .venv/bin/python benchmarks/readers_speed.py [--megabytes 256] [--csv-rows 2000000] [--csv-only]
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


def timed_interleaved(passes: dict, path: Path, runs: int = 3) -> tuple[dict, dict]:
    """(min, median) wall time and CPU time of each pass, the passes taking turns run by
    run, the file dropped from the page cache before each."""
    wall: dict[str, list[float]] = {name: [] for name in passes}
    cpu: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(runs):
        for name, fn in passes.items():
            drop_cache(path)
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return ({name: (min(t), statistics.median(t)) for name, t in wall.items()},
            {name: (min(t), statistics.median(t)) for name, t in cpu.items()})


def csv_figures(folder: Path, rows: int) -> None:
    """The CSV reader against pandas.read_csv and numpy.loadtxt of the same file."""
    path = folder / "bench.csv"
    write_csv(path, _signal(rows) * 170, FS, [f"CH{k + 1}" for k in range(CHANNELS)])
    label = f"CSV {rows:,} rows"
    print(f"{label}: {path.stat().st_size / 1e6:.0f} MB, time_s + {CHANNELS} channels as %.10g")
    passes = {"chunked": lambda: reader_pass(path), "read": lambda: open_recording(path).read()}
    try:
        import pandas
    except ImportError:
        print("CSV vs pandas.read_csv: pandas is not installed here — no figure")
    else:
        passes["pandas"] = lambda: pandas.read_csv(path)
        passes["pandas usecols"] = lambda: pandas.read_csv(path, usecols=[f"CH{k + 1}" for k in range(CHANNELS)])
    wall, cpu = timed_interleaved(passes, path)
    if "pandas" in wall:
        row(f"{label} chunked", wall["chunked"], wall["pandas"], "pandas.read_csv")
        row(f"{label} read()", wall["read"], wall["pandas"], "pandas.read_csv")
        row(f"{label} chunked", wall["chunked"], wall["pandas usecols"], "pandas usecols (4 ch)")
        ours, base = cpu["chunked"][0], cpu["pandas"][0]
        print(f"{'  the same, CPU time':<26} chunked {ours:.3f} s, read() {cpu['read'][0]:.3f} s, "
              f"pandas.read_csv {base:.3f} s, usecols {cpu['pandas usecols'][0]:.3f} s (min) | ratio "
              f"chunked {ours / base:.2f}×, read() {cpu['read'][0] / base:.2f}×, "
              f"chunked/usecols {ours / cpu['pandas usecols'][0]:.2f}×")
        worst = max(wall[name][k] / wall["pandas"][k] for name in ("chunked", "read") for k in (0, 1))
        print(f"CSV target ≤ 1.00× pandas.read_csv (issue 12; chunked and read(), min and median): "
              f"{worst:.2f}× — {'met' if worst <= 1.0 else 'NOT met'}")
    print(f"{'CSV read()':<26} peak allocation {read_peak_ratio(path):.2f} × the output (1.00 = one full copy; "
          "Arrow's own buffers not traced)")
    row(f"{label} chunked", wall["chunked"], timed(lambda: np.loadtxt(path, delimiter=",", skiprows=1), path),
        "numpy.loadtxt (whole)")


def row(name: str, ours: tuple[float, float], base: tuple[float, float], base_name: str) -> None:
    print(f"{name:<26} ours min {ours[0]:7.3f} s median {ours[1]:7.3f} s | {base_name:<22} min {base[0]:7.3f} s "
          f"median {base[1]:7.3f} s | ratio min {ours[0] / base[0]:5.2f}× median {ours[1] / base[1]:5.2f}×")


def pin_to_one_core() -> None:
    """Every thread of the process, and those it starts later, on one core."""
    if hasattr(os, "sched_setaffinity"):
        core = {min(os.sched_getaffinity(0))}
        tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
        for tid in tasks:
            try:
                os.sched_setaffinity(int(tid), core)
            except ProcessLookupError:          # a thread that ended meanwhile
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=256.0, help="size of the WAV and COMTRADE files")
    parser.add_argument("--csv-rows", type=int, default=2_000_000)
    parser.add_argument("--csv-only", action="store_true", help="only the CSV figures")
    args = parser.parse_args()
    pin_to_one_core()
    if args.csv_only:
        with tempfile.TemporaryDirectory() as tmp:
            print("one core (every thread pinned); page cache dropped before each run; 3 runs")
            csv_figures(Path(tmp), args.csv_rows)
        return
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
        csv_figures(folder, args.csv_rows)


if __name__ == "__main__":
    main()
