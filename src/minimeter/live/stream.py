"""What a live meter's sinks receive: the :class:`Snapshot` stream and the :class:`Sink`
contract (DESIGN: one contract for sinks).

The runner (:class:`~minimeter.live.runner.LiveMeter`) *pushes*: after each piece of
line cycles it feeds that ends at a change of the Kh = 10 output (and at least once a
second: a *commit point*) and at each display tick (~10 a second), it makes one frozen
:class:`Snapshot` and calls ``sink.update(snapshot)`` on every sink, in the order they
were added, from the meter's thread. A sink added later receives the newest snapshot at
once. Sinks never read the runner or the meter: the store commits at each commit point;
the web panel, Modbus, MQTT, metrics and the terminal keep the last snapshot and serve
it at their own pace.

A snapshot carries the meter's own :class:`~minimeter.meter.MeterSnapshot` (exact
registers, lifetime closures, output and LED states, active conditions), the live clock
(cycle index), the last line cycle's quantities, what happened since the previous
snapshot (events, interval energies: every sink sees every snapshot, so nothing is lost
between two) and the recent windows the panels show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from minimeter.meter import Event, EventKind, LedChange, MeterSnapshot, MeterSpec
from minimeter.meter.outputs import Transition
from minimeter.meter.register import counter_reading, lcd_text, watt_hours

INTERVAL_S = 900.0                 # 15-minute interval data (SPEC §10)


@dataclass(frozen=True)
class IntervalRow:
    """Energy of one element over one 15-minute interval of simulated time."""

    start_s: float
    element: int
    energy_wh: float
    covered_s: float

    @property
    def avg_power_w(self) -> float:
        """Average power over the covered part of the interval [W]."""
        return self.energy_wh * 3600.0 / self.covered_s if self.covered_s > 0 else 0.0


@dataclass(frozen=True)
class OutputReading:
    name: str               # '10', '100', '1000' or 'counter'
    kh_wh: int              # [Wh/pulse]
    on: bool                # closed now
    closures: int           # lifetime OFF→ON transitions marking energy


@dataclass(frozen=True)
class Snapshot:
    """The live meter as its sinks see it at one moment."""

    seq: int                                   # 1, 2, … per publication of this runner
    spec: MeterSpec
    meter: MeterSnapshot                       # the meter's own state (exact integers)
    cycle_index: int                           # the live clock: line cycles fed since simulated time 0
    time_s: float                              # simulated time reached [s]
    speed: float                               # simulated seconds per wall second (0: flat out)
    power_w: tuple[float, ...]                 # per element, last cycle [W]
    volts_rms: tuple[float, ...]               # [V]
    amps_rms: tuple[float, ...]                # [A primary]
    power_factor: tuple[float, ...]
    frequency_hz: float
    events: tuple[Event, ...] = ()             # raised or cleared since the previous snapshot
    intervals: tuple[IntervalRow, ...] = ()    # touched since the previous snapshot (totals so far)
    recent_events: tuple[Event, ...] = ()      # the last ones, oldest first (earlier runs' too)
    event_counts: dict = field(default_factory=dict)   # EventKind → raised, over the whole log
    led_changes: tuple[LedChange, ...] = ()    # recent, oldest first
    history: tuple[tuple[float, tuple[float, ...]], ...] = ()   # (time [s], power per element [W])
    loads: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    running: bool = False                      # the clock is running (LiveMeter.run)
    commit_point: bool = False                 # after a Kh = 10 change, a second, or the end: to be stored
    start_epoch_s: float | None = None         # UNIX time [s] of simulated time 0, if known (ISO times out)
    transitions: tuple[Transition, ...] = ()   # output edges since the previous snapshot, in time order (S13.1)
    # Beyond kWh (SPEC §12), last cycle / last 10-12-cycle window, per element; () until measured
    reactive_power_var: tuple[float, ...] = ()     # Q1, fundamental reactive power (IEEE 1459) [var]
    apparent_power_va: tuple[float, ...] = ()      # S = Vrms·Irms [VA]
    displacement_pf: tuple[float, ...] = ()        # P1 / S1
    thd_v_percent: tuple[float, ...] = ()          # [%]
    thd_i_percent: tuple[float, ...] = ()          # [%]
    harmonics: Any = None                          # the last window's harmonic table (meter/power.py), or None
    registers: Any = None                          # the four-quadrant / apparent / demand registers, or None

    # ------------------------------------------------------------------ views of the meter
    @property
    def watt_hours(self) -> float:
        """The register [Wh] (a float view)."""
        return watt_hours(self.meter.register_quanta)

    @property
    def reverse_watt_hours(self) -> float:
        """Energy of negative cycles, not registered (diagnostics) [Wh]."""
        return watt_hours(self.meter.reverse_quanta)

    @property
    def lcd_text(self) -> str:
        return lcd_text(self.meter.register_quanta)

    @property
    def counter_value(self) -> int | None:
        if not self.spec.counter_kh_wh:
            return None
        return counter_reading(self.meter.register_quanta, self.spec.counter_kh_wh, self.spec.counter_digits)

    @property
    def outputs(self) -> tuple[OutputReading, ...]:
        kh = dict(zip((str(k) for k in self.spec.outputs_wh), self.spec.outputs_wh))
        if self.spec.counter_kh_wh:
            kh["counter"] = self.spec.counter_kh_wh
        on = dict(self.meter.outputs_on)
        return tuple(OutputReading(name, kh[name], on[name], n) for name, n in self.meter.closures)

    @property
    def active_events(self) -> frozenset[tuple[EventKind, int | None]]:
        """The event conditions raised now, as (kind, element)."""
        return frozenset(self.meter.active)

    @property
    def net_power_w(self) -> float:
        return float(sum(self.power_w))

    @property
    def net_power_factor(self) -> float:
        apparent = sum(v * a for v, a in zip(self.volts_rms, self.amps_rms))
        return self.net_power_w / apparent if apparent > 0 else float("nan")

    @property
    def measured(self) -> bool:
        """Whether the line quantities are measured: a start-up snapshot (no cycle fed
        yet) has no frequency and no voltage; clients show nothing rather than zeros."""
        return math.isfinite(self.frequency_hz) or any(math.isfinite(v) and v != 0.0 for v in self.volts_rms)

    def as_dict(self) -> dict:
        """The panel's JSON (NaN as None; the register as decimal text: it outgrows 2⁵³)."""
        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "seq": self.seq, "model": self.spec.model_number, "elements": self.spec.elements,
            "time_s": self.time_s, "speed": self.speed,
            "register_quanta": str(self.meter.register_quanta), "watt_hours": self.watt_hours,
            "reverse_watt_hours": self.reverse_watt_hours, "lcd": self.lcd_text,
            "counter": self.counter_value,
            "leds": {"power": self.meter.power_led, "load": self.meter.load_led, "reverse": self.meter.reverse_led},
            "outputs": [{"name": o.name, "kh_wh": o.kh_wh, "on": o.on, "closures": o.closures}
                        for o in self.outputs],
            "power_w": [num(x) for x in self.power_w], "net_power_w": num(self.net_power_w),
            "volts_rms": [num(x) for x in self.volts_rms], "amps_rms": [num(x) for x in self.amps_rms],
            "power_factor": [num(x) for x in self.power_factor], "frequency_hz": num(self.frequency_hz),
            "active_events": [[kind, element] for kind, element in self.meter.active],
            "event_counts": dict(self.event_counts),
            "led_changes": [[c.led, c.state, c.time_s] for c in self.led_changes],
            "loads": list(self.loads), "faults": list(self.faults), "running": self.running,
            # beyond kWh (SPEC §12)
            "reactive_power_var": [num(x) for x in self.reactive_power_var],
            "apparent_power_va": [num(x) for x in self.apparent_power_va],
            "displacement_pf": [num(x) for x in self.displacement_pf],
            "thd_v_percent": [num(x) for x in self.thd_v_percent],
            "thd_i_percent": [num(x) for x in self.thd_i_percent],
            "harmonics": None if self.harmonics is None else self.harmonics.as_dict(),
            "registers": None if self.registers is None else self.registers.as_dict(),
        }


class Sink(Protocol):
    """Anything that consumes the stream: called with every snapshot, in order, from the
    meter's thread. It must return quickly (keep the snapshot, commit it, queue it)."""

    def update(self, snapshot: Snapshot) -> None: ...

