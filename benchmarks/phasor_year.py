"""A meter-year on the phasor path by segment (issue 12), measured fairly.

The household 7B (``household_day``: its day, then its always-on loads and fridge for the
rest of the year) for 365 days through :func:`minimeter.drive.feed_source` — runs of
identical cycles (``SyntheticSource.cycle_runs``) judged once each — against the same
meter fed cycle by cycle (``SyntheticSource.cycles``, 3600 cycles a block) over one
simulated day, scaled by 365. One core (the process is pinned to one CPU), one BLAS thread
(threadpoolctl); CPU time of this process (user + system), min and median of three. The
two paths' registers are compared over the day (they must be equal, to the quantum).

Usage: python benchmarks/phasor_year.py [--repeats 3] [--days 365]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from threadpoolctl import threadpool_limits

from minimeter import Meter
from minimeter.drive import feed_cycles, feed_source
from minimeter.sources.service import household_day, ideal_source

DAY_S = 86400.0


def _meter() -> Meter:
    return Meter.for_model("7B", ct_rating="200A")


def by_segment(source, duration_s: float) -> tuple[float, Meter]:
    """CPU seconds of a run by segment, and the meter."""
    meter = _meter()
    t0 = time.process_time()
    for _ in feed_source(meter, source, duration_s):
        pass
    return time.process_time() - t0, meter


def by_cycle(source, duration_s: float) -> tuple[float, Meter]:
    """CPU seconds of a run cycle by cycle, and the meter."""
    meter = _meter()
    t0 = time.process_time()
    for _ in feed_cycles(meter, source.cycles(duration_s, 3600)):
        pass
    return time.process_time() - t0, meter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--days", type=float, default=365.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})           # one core
    source = ideal_source(*household_day(), elements=2)
    with threadpool_limits(limits=1):
        by_segment(source, DAY_S)                                      # load the compiled kernels
        year = [by_segment(source, args.days * DAY_S) for _ in range(args.repeats)]
        day_runs = by_segment(source, DAY_S)[1]
        day_cycles = [by_cycle(source, DAY_S) for _ in range(args.repeats)]
    year_s = [t for t, _ in year]
    cycle_year_s = [t * args.days for t, _ in day_cycles]
    meter = year[0][1]
    equal = day_runs.register_quanta == day_cycles[0][1].register_quanta
    print(f"minimeter phasor path — household 7B, {args.days:g} days, one core, min/median of {args.repeats} "
          f"(CPU s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s))")
    print(f"  by segment (cycle_runs):     {min(year_s):8.3f} / {statistics.median(year_s):8.3f} s   "
          f"register {meter.watt_hours:,.4f} Wh, closures "
          + "/".join(str(meter.closures(n)) for n in meter.output_names))
    print(f"  cycle by cycle (day × {args.days:g}): {min(cycle_year_s):8.1f} / {statistics.median(cycle_year_s):8.1f} s")
    verdict = ("yes" if min(year_s) <= 0.5 else "no") if args.days == 365 else "n/a (--days 365)"
    print(f"  speed-up {min(cycle_year_s) / min(year_s):,.0f}×; meter-year ≤ 0.5 s: {verdict}; "
          f"day's register by segment == cycle by cycle: {equal}")


if __name__ == "__main__":
    main()
