"""The cost of the beyond-kWh pass (SPEC §12, issue 11), measured as engine_throughput.py
measures the sample path (DESIGN.md "Performance"): the same 7B at 8 kHz, the same data
laid out chunk by chunk, one core, one BLAS thread, CPU time, repeats interleaved:

  * ``Meter.feed``                  — the meter as built by default (kWh only);
  * ``Meter.feed, quantities=True`` — plus the S12 pass: per-cycle fundamentals and
    half-cycle rms (compiled), IEC 61000-4-30 windows' DFTs, registers, dips and swells;
  * ``numpy.einsum`` baseline       — one pass that just reads the four channels.

Prints frames/s (min-time / median-time), the ratios to the baseline, and the extra
pass's own cost (1/fps with − 1/fps without) as frames/s. Then the phasor path: a
simulated household day (a year's worth of days timed) with and without quantities.

Usage: python benchmarks/power_quantities.py [--log2-frames 23] [--chunks 16,19] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_throughput import RATE_HZ, chunked, einsum_baseline, feed_meter, stream_data, throughput, _environment  # noqa: E402

from minimeter import Meter  # noqa: E402
from minimeter.drive import feed_source  # noqa: E402
from minimeter.sources.service import household_day, ideal_source  # noqa: E402


def feed_with_quantities(blocks) -> float:
    meter = Meter.for_model("7B", ct_rating="200A", quantities=True)
    for block in blocks:
        meter.feed(block[:2], block[2:], RATE_HZ)
    meter.close()
    return meter.watt_hours


def phasor_days(days: int, quantities: bool) -> float:
    """CPU seconds to run ``days`` simulated household days on the phasor path."""
    service, loads = household_day()
    source = ideal_source(service, loads, 2)
    t0 = time.process_time()
    for _ in range(days):
        meter = Meter.for_model("7B", ct_rating="200A", quantities=quantities)
        for _ in feed_source(meter, source, 86400.0):
            pass
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log2-frames", type=int, default=23, help="frames in the data, as a power of 2")
    parser.add_argument("--chunks", default="16,19", help="chunk sizes as powers of 2, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--days", type=int, default=30, help="phasor-path household days timed")
    args = parser.parse_args()
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})           # one core
    total = 1 << args.log2_frames
    data = stream_data(total)
    with threadpool_limits(limits=1):
        print(f"minimeter beyond-kWh pass — 7B, {RATE_HZ:g} Hz, {total:,} frames = {data.nbytes / 1e9:.2f} GB "
              f"walked once per repeat, one core, min/median of {args.repeats}")
        print(_environment())
        warm = chunked(data[:, : 1 << 16], 1 << 16)
        feed_meter(warm), feed_with_quantities(warm)                    # load the compiled kernels
        runs = {"kWh": feed_meter, "kWh+S12": feed_with_quantities, "einsum": einsum_baseline}
        print(f"{'chunk':>9} | {'Meter.feed M/s':>15} | {'quantities=True M/s':>19} | {'einsum M/s':>13} |"
              f" plain/einsum | S12/einsum | S12 pass alone M/s")
        for log2 in (int(x) for x in args.chunks.split(",")):
            blocks = chunked(data, 1 << log2)
            fps = throughput(blocks, args.repeats, runs)
            best = {k: max(v) / 1e6 for k, v in fps.items()}
            median = {k: statistics.median(v) / 1e6 for k, v in fps.items()}
            cells = " | ".join(f"{best[k]:6.1f} / {median[k]:6.1f}".rjust(w) for k, w in zip(runs, (15, 19, 13)))
            extra = 1.0 / (1.0 / best["kWh+S12"] - 1.0 / best["kWh"])
            print(f"  2^{log2:<2} = {1 << log2:>9,} | {cells} | {best['kWh'] / best['einsum']:12.3f} |"
                  f" {best['kWh+S12'] / best['einsum']:10.3f} | {extra:18.1f}")
            del blocks
        print("(each cell: min-time / median-time frames/s; ratios from the min times; the S12 pass alone: "
              "1 / (1/with − 1/without))")
    plain, with_q = phasor_days(args.days, False), phasor_days(args.days, True)
    print(f"phasor path, {args.days} household days: kWh {args.days / plain:,.1f} days/s, "
          f"quantities=True {args.days / with_q:,.1f} days/s (ratio {plain / with_q:.3f})")


if __name__ == "__main__":
    main()
