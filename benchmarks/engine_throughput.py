"""Sample-path throughput, measured fairly (DESIGN.md "Performance"; issue 12).

A 7B (two elements: V1, V2, I1, I2) at 8 kHz. The data — ≥ 1 GB, far larger than the
caches — is generated once and laid out chunk by chunk (each chunk's four channels
contiguous, as a reader hands them over); every repeat walks it once, front to back. One
core (the process is pinned to one CPU), one BLAS thread (threadpoolctl). For each chunk
size, three repeats of, interleaved:

  * ``Meter.feed``            — the whole meter: metrology, register, outputs, LEDs, events;
  * ``measure_chunk``         — the sample path alone (the one-pass compiled kernel);
  * ``numpy.einsum`` baseline — one pass that just reads the same four channels
    (Σ volts·amps over the chunk), the floor any single pass over the data stands on.

Prints min and median frames per second of CPU time (user + system, this process; one
frame = one instant of all four channels) and the ratios to the baseline; with 2^12 and
2^19 among the chunks, the per-call fixed cost as ``Meter.feed`` at 2^12 against 2^19
(target: within 2×); then the peak traced memory of streaming 10 min against 1 h
generated on the fly (flat memory: the two are equal).

Environment: where OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (older OpenBLAS builds
need them on some processors) they slow a current NumPy's BLAS; ``einsum`` without
``optimize`` does not call BLAS, and the meter does not either, so the ratio holds with
them set — the script prints them and the BLAS threadpoolctl finds. To compare against a
BLAS routine, unset both for that command alone: ``env -u OPENBLAS_CORETYPE -u
OPENBLAS_L2_SIZE python benchmarks/engine_throughput.py``.

Usage: python benchmarks/engine_throughput.py [--log2-frames 25] [--chunks 12,16,19,21] [--repeats 3]
       [--no-memory] [--kernel-only]   (--kernel-only: measure_chunk and the baseline alone, no Meter.feed)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from minimeter import Load, Meter, Service, ideal_source
from minimeter.meter.metrology import LineCycleState, measure_chunk

RATE_HZ = 8000.0
POOL_FRAMES = 8_000_000      # 1000 s = 60 000 whole cycles at 60 Hz: the pool tiles seamlessly
CHANNELS = 4


def _source():
    service = Service("split", 120.0, 60.0)
    loads = [Load(3000.0, 0.9, connection="L1"), Load(1800.0, 0.8, connection="L2"),
             Load(4800.0, 1.0, connection="L1-L2")]
    return ideal_source(service, loads, 2)


def stream_data(total_frames: int) -> np.ndarray:
    """(4, total) V1, V2, I1, I2: the source's pool tiled to ``total_frames``."""
    pool = _source().frames_at(0, POOL_FRAMES, RATE_HZ)
    pool4 = np.concatenate((pool.volts, pool.amps))
    data = np.empty((CHANNELS, total_frames))
    for start in range(0, total_frames, POOL_FRAMES):
        stop = min(total_frames, start + POOL_FRAMES)
        data[:, start:stop] = pool4[:, : stop - start]
    return data


def chunked(data: np.ndarray, chunk: int) -> np.ndarray:
    """(blocks, 4, chunk): each chunk's four channels contiguous."""
    blocks = data.shape[1] // chunk
    return np.ascontiguousarray(data[:, : blocks * chunk].reshape(CHANNELS, blocks, chunk).transpose(1, 0, 2))


def feed_meter(blocks: np.ndarray) -> float:
    meter = Meter.for_model("7B", ct_rating="200A")
    for block in blocks:
        meter.feed(block[:2], block[2:], RATE_HZ)
    meter.close()
    return meter.watt_hours


def measure_only(blocks: np.ndarray) -> float:
    state = LineCycleState.start(2, RATE_HZ)
    wh = 0.0
    for block in blocks:
        cycles, state = measure_chunk(block[:2], block[2:], state)
        wh += float(cycles.net_energy_wh.sum())
    return wh


def einsum_baseline(blocks: np.ndarray) -> float:
    acc = 0.0
    for block in blocks:
        acc += float(np.einsum("ij,ij->", block[:2], block[2:]))
    return acc


def throughput(blocks: np.ndarray, repeats: int, runs: dict[str, Callable[[np.ndarray], float]]) -> dict:
    """Frames per second of this process's CPU time (user + system: on a shared machine
    wall time counts the other processes too) of each run, repeated ``repeats`` times
    interleaved: {name: [fps, ...]}."""
    frames = blocks.shape[0] * blocks.shape[2]
    fps: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t0 = time.process_time()
            run(blocks)
            fps[name].append(frames / (time.process_time() - t0))
    return fps


def peak_memory_streaming(seconds: float, chunk: int) -> tuple[float, float]:
    """Peak traced memory [MB] while generating and metering ``seconds`` of signal, and the
    energy registered [Wh]."""
    meter = Meter.for_model("7B", ct_rating="200A")
    tracemalloc.start()
    tracemalloc.reset_peak()
    for frames in _source().frames(seconds, RATE_HZ, chunk):
        meter.feed(frames.volts, frames.amps, RATE_HZ)
    meter.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6, meter.watt_hours


def _environment() -> str:
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, {i.get('num_threads')} thread)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    flags = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ)
    return (f"BLAS: {'; '.join(blas) or 'none found'}; {flags or 'OPENBLAS_CORETYPE/L2_SIZE unset'}; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log2-frames", type=int, default=25, help="frames in the data, as a power of 2 (25: 1.07 GB)")
    parser.add_argument("--chunks", default="12,16,19,21", help="chunk sizes as powers of 2, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the 10 min / 1 h memory comparison")
    parser.add_argument("--kernel-only", action="store_true",
                        help="time measure_chunk and the baseline only (no Meter.feed; implies --no-memory)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})           # one core
    total = 1 << args.log2_frames
    data = stream_data(total)
    with threadpool_limits(limits=1):
        print(f"minimeter sample path — 7B, {RATE_HZ:g} Hz, {total:,} frames = {data.nbytes / 1e9:.2f} GB "
              f"walked once per repeat, one core, min/median of {args.repeats}")
        print(_environment())
        measure_only(chunked(data[:, : 1 << 16], 1 << 16))             # load the compiled kernel
        runs = {"Meter.feed": feed_meter, "measure_chunk": measure_only, "einsum baseline": einsum_baseline}
        if args.kernel_only:
            del runs["Meter.feed"]
        print(f"{'chunk':>9} | {'Meter.feed M/s':>15} | {'measure_chunk M/s':>18} | {'einsum M/s':>12} |"
              f" meter/einsum | kernel/einsum")
        meter_best = {}
        for log2 in (int(x) for x in args.chunks.split(",")):
            blocks = chunked(data, 1 << log2)
            fps = throughput(blocks, args.repeats, runs)
            best = {k: max(v) / 1e6 for k, v in fps.items()}
            median = {k: statistics.median(v) / 1e6 for k, v in fps.items()}
            cells = " | ".join((f"{best[k]:6.1f} / {median[k]:6.1f}" if k in best else "not timed").rjust(w)
                               for k, w in zip(("Meter.feed", "measure_chunk", "einsum baseline"), (15, 18, 12)))
            meter_ratio = "—"
            if "Meter.feed" in best:
                meter_best[log2] = best["Meter.feed"]
                meter_ratio = f"{best['Meter.feed'] / best['einsum baseline']:.3f}"
            print(f"  2^{log2:<2} = {1 << log2:>9,} | {cells} | {meter_ratio:>12} |"
                  f" {best['measure_chunk'] / best['einsum baseline']:13.3f}")
            del blocks
        print("(each cell: min-time / median-time frames/s; ratios from the min times; target meter/einsum ≥ 0.5)")
        if 12 in meter_best and 19 in meter_best:
            print(f"per-call fixed cost: Meter.feed at 2^12 runs at {meter_best[12] / meter_best[19]:.3f} × its 2^19 "
                  f"speed ({1e6 * 4096 / (meter_best[12] * 1e6):.0f} µs a call; target ≥ 0.5)")
    if not (args.no_memory or args.kernel_only):
        chunk = 1 << 19
        peak_10min, _ = peak_memory_streaming(600.0, chunk)
        peak_1h, wh_1h = peak_memory_streaming(3600.0, chunk)
        analytic_1h = _source().energy_wh(0, 3600.0).sum()
        print(f"peak memory streaming 10 min / 1 h generated on the fly: {peak_10min:.1f} MB / {peak_1h:.1f} MB "
              f"(ratio {peak_1h / peak_10min:.3f}); 1 h registered {wh_1h:,.4f} Wh, analytic {analytic_1h:,.4f} Wh")


if __name__ == "__main__":
    main()
