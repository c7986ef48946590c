"""Running a meter on a synthetic source, by samples or by phasors (issue: the meter core).

:func:`simulate` streams a :class:`~minimeter.sources.service.SyntheticSource` through a
:class:`~minimeter.meter.Meter` and compares what it registered with the analytic
energy. It holds no metering logic of its own; it only moves chunks and keeps score.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from minimeter.drive import feed_source
from minimeter.meter import Event, Meter, Update
from minimeter.sources.service import SyntheticSource

S47_TOLERANCE_PERCENT = 0.01     # SPEC S4.7: ideal input within 0.01 % of the analytic energy
MAX_EVENTS_KEPT = 1000


@dataclass
class SimulationResult:
    """The score of one run."""

    duration_s: float
    mode: str                                  # 'samples' or 'phasor'
    sample_rate_hz: float | None
    frames: int = 0
    cycles: int = 0
    registered_wh: float = 0.0
    reverse_wh: float = 0.0
    analytic_element_wh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    analytic_delivered_wh: float = 0.0
    closures: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    events_dropped: int = 0
    wall_s: float = 0.0

    @property
    def error_percent(self) -> float:
        """Registered against the analytic delivered energy [%]; NaN when nothing was due."""
        if self.analytic_delivered_wh <= 0:
            return float("nan") if self.registered_wh == 0 else float("inf")
        return (self.registered_wh / self.analytic_delivered_wh - 1.0) * 100.0

    @property
    def passed(self) -> bool:
        """Within S4.7's 0.01 % (or both zero)."""
        if self.analytic_delivered_wh <= 0:
            return self.registered_wh == 0
        return abs(self.error_percent) <= S47_TOLERANCE_PERCENT

    def score(self, meter: Meter, start_wh: float, element_wh: np.ndarray, delivered_wh: float) -> None:
        """Record what ``meter`` registered since ``start_wh`` [Wh] against the analytic
        reference: energy per element and delivered (net > 0) energy [Wh]."""
        self.registered_wh = meter.watt_hours - start_wh
        self.reverse_wh = meter.reverse_watt_hours
        self.analytic_element_wh = np.asarray(element_wh, float)
        self.analytic_delivered_wh = float(delivered_wh)
        self.closures = {name: meter.closures(name) for name in meter.output_names}

    def keep_events(self, events: "tuple[Event, ...] | list[Event]") -> None:
        """Keep the first ``MAX_EVENTS_KEPT`` events; count the rest as dropped."""
        room = max(MAX_EVENTS_KEPT - len(self.events), 0)
        self.events.extend(events[:room])
        self.events_dropped += max(len(events) - room, 0)

    def as_dict(self) -> dict:
        return {
            "duration_s": self.duration_s,
            "mode": self.mode,
            "sample_rate_hz": self.sample_rate_hz,
            "frames": self.frames,
            "cycles": self.cycles,
            "registered_wh": self.registered_wh,
            "reverse_wh": self.reverse_wh,
            "analytic_element_wh": [float(x) for x in self.analytic_element_wh],
            "analytic_delivered_wh": self.analytic_delivered_wh,
            "error_percent": self.error_percent,
            "passed": self.passed,
            "closures": self.closures,
            "events": [ev.__dict__ for ev in self.events],
            "events_dropped": self.events_dropped,
            "wall_s": self.wall_s,
        }


def simulate(
    meter: Meter,
    source: SyntheticSource,
    duration_s: float,
    *,
    sample_rate_hz: float | None = None,
    chunk_frames: int = 1 << 16,
    cycles_per_block: int = 3600,
    on_update: Callable[[Update, float], None] | None = None,
) -> SimulationResult:
    """Run the whole simulation (:func:`minimeter.drive.feed_source`) and return its score."""
    result = SimulationResult(
        duration_s=duration_s,
        mode="phasor" if sample_rate_hz is None else "samples",
        sample_rate_hz=sample_rate_hz,
    )
    start_wh = meter.watt_hours
    wall0 = time.perf_counter()
    for update, reached_s in feed_source(meter, source, duration_s, sample_rate_hz=sample_rate_hz,
                                         chunk_frames=chunk_frames, cycles_per_block=cycles_per_block):
        result.cycles += update.cycles.count
        result.keep_events(update.events)
        if on_update is not None:
            on_update(update, reached_s)
    result.wall_s = time.perf_counter() - wall0
    if sample_rate_hz is not None:
        result.frames = int(round(duration_s * sample_rate_hz))
    result.score(meter, start_wh, source.energy_wh(0.0, duration_s), source.delivered_energy_wh(0.0, duration_s))
    return result
