"""Issue 12 item 5 (SPEC §7, S10.1): the paced live loop wakes only when there is
something to do — a real-time meter with a constant load publishes a handful of snapshots
in seconds, not ten a second — and a control made while it sleeps takes effect at the
simulated time it was made, at once."""

from __future__ import annotations

import threading
import time

import pytest

from minimeter.live.runner import MAX_TICK_S, MIN_TICK_SIM_S, LiveMeter
from minimeter.sources.service import Load

from .test_live_support import constant_installation


class _Count:
    def __init__(self) -> None:
        self.snapshots = 0

    def update(self, snapshot) -> None:
        self.snapshots += 1


def test_tick_is_a_simulated_second_at_real_time_and_the_publish_period_when_faster():
    assert LiveMeter(constant_installation((100.0, "L1")), speed=1).tick_s() == MIN_TICK_SIM_S == 1.0
    assert LiveMeter(constant_installation((100.0, "L1")), speed=60).tick_s(0.1) == pytest.approx(0.1)
    assert LiveMeter(constant_installation((100.0, "L1")), speed=0).tick_s() == 0.0
    assert MAX_TICK_S >= 1.0


def test_a_real_time_meter_with_a_constant_load_sleeps():
    # 1200 W: a Kh = 10 edge every 15 s, the same cycle over and over: the runner wakes at
    # most every MAX_TICK_S, so in ~2.5 s: the snapshot on add_sink, one at the first wake
    # and the last one, where a 20 ms poll published ~25.
    live = LiveMeter(constant_installation((1200.0, "L1")), speed=1)
    count = _Count()
    live.add_sink(count)
    stop = threading.Event()
    threading.Timer(2.5, stop.set).start()
    live.run(stop, hours=0)
    assert count.snapshots <= 4
    assert live.meter.watt_hours == pytest.approx(1200.0 * live.time_s / 3600.0, abs=1e-9)


def test_a_control_takes_effect_at_the_simulated_time_it_was_made():
    # 1200 W from t = 0, then 600 W more from the control on: the register is exactly
    # 1200 W × T + 600 W × (T − t_control), whenever the paced runner woke.
    live = LiveMeter(constant_installation((1200.0, "L1")), speed=600)
    stop = threading.Event()
    runner = threading.Thread(target=live.run, args=(stop,), kwargs={"hours": 0}, daemon=True)
    runner.start()
    time.sleep(0.3)
    live.add_load(Load(600.0, connection="L2", name="600 W on L2"))
    t_control = live.time_s - 1 / 60                 # the control fed one cycle of the new installation
    assert live.publish(commit_point=False).power_w == pytest.approx((1200.0, 600.0))   # shown at once
    time.sleep(0.3)
    stop.set()
    runner.join(timeout=10)
    end = live.time_s
    assert end > t_control > 0
    expected_wh = (1200.0 * end + 600.0 * (end - t_control)) / 3600.0
    assert live.meter.watt_hours == pytest.approx(expected_wh, abs=1e-6)
