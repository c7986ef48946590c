"""Engine throughput and memory: a 7B meter at 8 kHz.

Prints, for one run on this machine:
  * frames per second of ``Meter.feed`` over ≥ 10⁸ frames (one frame = one instant of all
    four channels: V1, V2, I1, I2), fed in chunks from a pool of pre-generated samples
    larger than the CPU caches;
  * the same run's baseline: ``numpy.dot(v1, i1)`` over the same chunks, and the ratio;
  * peak Python/NumPy memory (tracemalloc) while streaming one hour generated on the fly,
    against ten minutes — flat memory means the two peaks are the same.

Usage: python benchmarks/engine_throughput.py [--frames 1e8] [--chunk 500000]
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np

from minimeter import Load, Meter, Service, ideal_source

RATE_HZ = 8000.0
POOL_S = 1000.0        # 8·10⁶ frames = 60 000 whole line cycles: the pool repeats seamlessly


def _source():
    service = Service("split", 120.0, 60.0)
    loads = [Load(3000.0, 0.9, connection="L1"), Load(1800.0, 0.8, connection="L2"),
             Load(4800.0, 1.0, connection="L1-L2")]
    return ideal_source(service, loads, 2)


def peak_memory_streaming(seconds: float, chunk: int) -> tuple[float, float]:
    """Peak traced memory [MB] while generating and metering ``seconds`` of signal, and the
    energy registered [Wh]."""
    source = _source()
    meter = Meter.for_model("7B", ct_rating="200A")
    tracemalloc.start()
    tracemalloc.reset_peak()
    for frames in source.frames(seconds, RATE_HZ, chunk):
        meter.feed(frames.volts, frames.amps, RATE_HZ)
    meter.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6, meter.watt_hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=float, default=1.04e8, help="frames to feed (≥ 1e8 for the record)")
    parser.add_argument("--chunk", type=int, default=500_000, help="frames per chunk")
    args = parser.parse_args()
    chunk = args.chunk
    print(f"minimeter engine throughput — 7B, {RATE_HZ:g} Hz, chunks of {chunk:,} frames, "
          f"{os.cpu_count()} CPU(s) visible, one core used")

    # Memory first, on a clean heap: one hour against ten minutes, generated on the fly.
    peak_10min, _ = peak_memory_streaming(600.0, chunk)
    peak_1h, wh_1h = peak_memory_streaming(3600.0, chunk)
    analytic_1h = _source().energy_wh(0, 3600.0).sum()
    print(f"peak memory streaming 10 min : {peak_10min:8.1f} MB")
    print(f"peak memory streaming 1 h    : {peak_1h:8.1f} MB   (ratio 1 h / 10 min = {peak_1h / peak_10min:.3f}; "
          f"one chunk of 4 channels = {4 * 8 * chunk / 1e6:.0f} MB)")
    print(f"1 h registered {wh_1h:,.4f} Wh, analytic {analytic_1h:,.4f} Wh, "
          f"error {(wh_1h / analytic_1h - 1) * 100:+.2e} %")

    # Throughput: a pool of pre-generated samples bigger than the caches, fed repeatedly.
    source = _source()
    pool_frames = int(POOL_S * RATE_HZ)
    pool = source.frames_at(0, pool_frames, RATE_HZ)
    volts, amps = pool.volts, pool.amps
    passes = int(np.ceil(args.frames / pool_frames))
    total = passes * pool_frames
    print(f"pool {pool_frames:,} frames ({volts.nbytes * 2 / 1e6:.0f} MB), fed {passes} times = {total:,} frames")

    meter = Meter.for_model("7B", ct_rating="200A")
    t0 = time.perf_counter()
    for _ in range(passes):
        for k in range(0, pool_frames, chunk):
            meter.feed(volts[:, k:k + chunk], amps[:, k:k + chunk], RATE_HZ)
    meter_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    acc = 0.0
    for _ in range(passes):
        for k in range(0, pool_frames, chunk):
            acc += float(np.dot(volts[0, k:k + chunk], amps[0, k:k + chunk]))
    dot_s = time.perf_counter() - t0

    meter_fps = total / meter_s
    dot_fps = total / dot_s
    print(f"meter.feed           : {meter_fps / 1e6:8.1f} M frames/s  ({meter_s:.2f} s)")
    print(f"numpy.dot(v1, i1)    : {dot_fps / 1e6:8.1f} M frames/s  ({dot_s:.2f} s)")
    print(f"ratio meter / dot    : {meter_s / dot_s:8.1f} × the time of one dot pass")
    expected_wh = source.energy_wh(0, POOL_S).sum() * passes
    print(f"registered {meter.watt_hours:,.3f} Wh over {total / RATE_HZ / 3600:.2f} h of signal "
          f"(analytic {expected_wh:,.3f} Wh); target ≥ 20 M frames/s: "
          f"{'met' if meter_fps >= 20e6 else 'NOT met'}")


if __name__ == "__main__":
    main()
