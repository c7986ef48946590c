"""Peak memory while streaming a large WAV (issue 4 acceptance: a 2 GB WAV stays under
300 MB), and that the chunked result equals a second pass with another chunk size.

Writes a 4-channel 16-bit WAV of ``--gigabytes`` (default 2) of a 60 Hz service to a
temporary directory, then, in a fresh process each, (1) streams it through the reader
alone and (2) through ``minimeter.lab.analysis.analyze`` (metrology of two elements), and
prints each process's peak resident memory (``VmHWM``; not ``ru_maxrss``, which also counts
the parent's memory at the fork) and throughput.
Then the same for CSV: ``--csv-rows`` rows (default 2e6; 0 skips it) and half of that
streamed through the CSV reader in fresh processes — the peak must not grow with the file
(flat memory; the parser holds a bounded queue of 1 MiB blocks, ~32 MB once the file is
past ~30 MB).

    .venv/bin/python benchmarks/reader_memory.py [--gigabytes 2] [--csv-rows 2000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from minimeter.sources.recordings import open_recording, ChannelMap
from minimeter.lab.analysis import analyze
path, mode, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
reader = open_recording(path)
out = {}
if mode == "read":
    total = 0.0
    frames = 0
    for c in reader.chunks(chunk):
        total += float(c[0].sum())
        frames += c.shape[1]
    out["frames"] = frames
else:
    s = analyze(reader, ChannelMap.parse("V1:I1,V2:I2"), chunk_frames=chunk)
    out["frames"] = reader.info.frame_count
    out["energy_wh"] = [e.energy_all_wh for e in s.elements]
out["wall_s"] = time.perf_counter() - t0
# this process's own high-water mark (ru_maxrss also counts the parent's RSS at the fork)
try:
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
    out["peak_rss_mb"] = int(hwm[0].split()[1]) / 1024
except (OSError, IndexError):
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def write_wav(path: Path, gigabytes: float, fs: int = 48000) -> int:
    from minimeter.sources.recordings import WavWriter

    channels = 4
    frames = int(gigabytes * 1e9 / (2 * channels))
    block = 1 << 18
    t = np.arange(block) / fs
    with WavWriter(path, fs, scales=(400.0, 200.0, 400.0, 200.0), names=("V1", "I1", "V2", "I2"),
                   units=("V", "A", "V", "A")) as w:
        for k0 in range(0, frames, block):
            n = min(block, frames - k0)
            tt = (k0 + t[:n]) / 1.0
            w_ = 2 * math.pi * 60 * tt
            sig = np.vstack((170 * np.cos(w_), 100 * np.cos(w_ - 0.5), -170 * np.cos(w_), 60 * np.cos(w_ + 2.6)))
            w.write(sig)
    return frames


def run_child(path: Path, mode: str, chunk: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, str(chunk)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout)


def csv_memory(folder: Path, rows: int) -> None:
    """Peak RSS streaming a CSV of ``rows`` rows and of half of them (flat: no growth)."""
    from minimeter.sources.recordings import write_csv

    peaks = []
    for n in (rows // 2, rows):
        path = folder / f"big{n}.csv"
        t = np.arange(n) / 8000.0
        write_csv(path, np.vstack((170 * np.cos(2 * math.pi * 60 * t), 100 * np.cos(2 * math.pi * 60 * t - 0.5))),
                  8000.0, ("V1", "I1"))
        r = run_child(path, "read", 1 << 16)
        peaks.append(r["peak_rss_mb"])
        print(f"CSV read chunk  65536, {n:>10,} rows ({path.stat().st_size / 1e6:5.0f} MB): peak RSS "
              f"{r['peak_rss_mb']:7.1f} MB, {r['wall_s']:6.2f} s, {r['frames'] / r['wall_s'] / 1e6:5.2f} M frames/s")
        path.unlink()
    print(f"CSV peak RSS {peaks[1]:.1f} MB at {rows:,} rows vs {peaks[0]:.1f} MB at {rows // 2:,}: "
          f"{'flat' if peaks[1] - peaks[0] < 16 else 'GROWS'} (within 16 MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gigabytes", type=float, default=2.0)
    ap.add_argument("--csv-rows", type=int, default=2_000_000, help="rows of the larger CSV (0: no CSV figures)")
    ap.add_argument("--keep", default=None, help="directory for the WAV (default: a temporary one, deleted)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory() if args.keep is None else None
    folder = Path(args.keep or tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "big.wav"
    t0 = time.perf_counter()
    frames = write_wav(path, args.gigabytes)
    size = path.stat().st_size
    print(f"wrote {path} — {size / 1e9:.2f} GB, {frames:,} frames of 4 channels, {time.perf_counter() - t0:.1f} s")
    results = {}
    for mode, chunk in (("read", 1 << 16), ("analyze", 1 << 16), ("analyze", 10007)):
        r = run_child(path, mode, chunk)
        results[(mode, chunk)] = r
        print(f"{mode:8s} chunk {chunk:6d}: peak RSS {r['peak_rss_mb']:7.1f} MB, {r['wall_s']:6.1f} s, "
              f"{r['frames'] / r['wall_s'] / 1e6:5.2f} M frames/s"
              + (f", energy {r['energy_wh'][0]:.6f} / {r['energy_wh'][1]:.6f} Wh" if "energy_wh" in r else ""))
    a, b = results[("analyze", 1 << 16)], results[("analyze", 10007)]
    same = all(abs(x - y) <= 1e-9 * abs(x) for x, y in zip(a["energy_wh"], b["energy_wh"]))
    print(f"chunk size 65536 vs 10007: energies {'agree' if same else 'DIFFER'} to 1e-9")
    worst = max(r["peak_rss_mb"] for r in results.values())
    print(f"worst peak RSS {worst:.1f} MB — {'under' if worst < 300 else 'OVER'} the 300 MB budget")
    if args.csv_rows > 0:
        csv_memory(folder, args.csv_rows)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
