"""The live virtual meter: one :class:`~minimeter.meter.Meter` fed continuously by the
phasor path, in real time or accelerated, persisted and published (SPEC §5, §7, §10).

:class:`LiveMeter` owns the meter, the simulated clock and the store. Each step it feeds
the line cycles due by the wall clock (``speed`` simulated seconds per wall second, or
as fast as it can with ``speed = 0``), cut so that each piece adds at most one Kh = 10
pulse's energy; after every such piece, and at least once a second, the register, the
cycle index, the interval data and the new events are committed to the
:class:`~minimeter.live.store.Store` in one transaction. A crash therefore loses less than
one Kh = 10 pulse's energy, and a restart continues from a state the meter really had.

It publishes a frozen :class:`Snapshot` to its subscribers (web panel, Modbus, MQTT,
metrics): edges that translate, never reach back into the meter. The register can only
be advanced by energy; nothing here writes or resets it.

Loads and wiring faults change live (trainers): a new source is built from the new
installation and fed from the current simulated time on, into the same meter.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from minimeter.errors import MinimeterError
from minimeter.meter.core import Meter, Update
from minimeter.meter.metrology import CycleBlock
from minimeter.meter.register import QUANTA_PER_WH, lcd_text
from minimeter.sources.installation import FAULT_KINDS, Installation, default_installation  # noqa: F401 (re-exported)
from minimeter.sources.service import SyntheticSource
from minimeter.live.store import INTERVAL_S, EventRow, IntervalRow, MeterState, Store, StoreError

DAY_S = 86400.0
KH_TEST_WH = 10.0                 # the test output (S10.1)
COMMIT_STEP_WH = KH_TEST_WH / 2   # commit at each change of the Kh = 10 output: both edges, so
#                                   a crash loses at most 5 Wh + one line cycle, under one pulse
COMMIT_EVERY_S = 1.0              # and at least this often [s wall]
MAX_CYCLES_PER_BLOCK = 36_000     # 10 minutes of 60 Hz per source call
HISTORY_STEP_S = 60.0             # chart resolution [s simulated]
HISTORY_POINTS = 6 * 60           # six hours of chart
EVENTS_KEPT = 200
LED_CHANGES_KEPT = 4000


class ControlError(MinimeterError):
    """A load or fault change that cannot be made."""


# --------------------------------------------------------------------------- installations
def fault_kinds() -> tuple[str, ...]:
    """The wiring faults a trainer can inject (:data:`minimeter.sources.installation.FAULT_KINDS`)."""
    return tuple(FAULT_KINDS)


# --------------------------------------------------------------------------- snapshots
@dataclass(frozen=True)
class OutputReading:
    name: str               # '10', '100', '1000' or 'counter'
    kh_wh: int              # [Wh/pulse]
    on: bool                # closed now
    closures: int           # lifetime OFF→ON transitions marking energy


@dataclass(frozen=True)
class Snapshot:
    """The meter as its sinks see it at one moment."""

    seq: int
    model_number: str
    elements: int
    time_s: float                       # simulated time [s]
    speed: float                        # simulated seconds per wall second (0: flat out)
    register_quanta: int
    watt_hours: float                   # register [Wh]
    reverse_watt_hours: float           # diagnostics [Wh]
    lcd_text: str
    counter_value: int | None
    power_led: bool
    load_led: bool
    reverse_led: bool
    outputs: tuple[OutputReading, ...]
    power_w: tuple[float, ...]          # per element, last cycle [W]
    volts_rms: tuple[float, ...]        # [V]
    amps_rms: tuple[float, ...]         # [A primary]
    power_factor: tuple[float, ...]
    frequency_hz: float
    active_events: frozenset = frozenset()        # {(kind, element)}
    event_counts: dict = field(default_factory=dict)
    led_changes: tuple = ()             # ((led, state, time_s), …) recent, oldest first
    loads: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    running: bool = True

    @property
    def net_power_w(self) -> float:
        return float(sum(self.power_w))

    @property
    def net_power_factor(self) -> float:
        apparent = sum(v * a for v, a in zip(self.volts_rms, self.amps_rms))
        return self.net_power_w / apparent if apparent > 0 else float("nan")

    def as_dict(self) -> dict:
        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else x

        return {
            "seq": self.seq, "model": self.model_number, "elements": self.elements,
            "time_s": self.time_s, "speed": self.speed,
            "register_quanta": str(self.register_quanta), "watt_hours": self.watt_hours,
            "reverse_watt_hours": self.reverse_watt_hours, "lcd": self.lcd_text,
            "counter": self.counter_value,
            "leds": {"power": self.power_led, "load": self.load_led, "reverse": self.reverse_led},
            "outputs": [{"name": o.name, "kh_wh": o.kh_wh, "on": o.on, "closures": o.closures}
                        for o in self.outputs],
            "power_w": [num(x) for x in self.power_w], "net_power_w": num(self.net_power_w),
            "volts_rms": [num(x) for x in self.volts_rms], "amps_rms": [num(x) for x in self.amps_rms],
            "power_factor": [num(x) for x in self.power_factor], "frequency_hz": num(self.frequency_hz),
            "active_events": sorted([k, e] for k, e in self.active_events),
            "event_counts": dict(self.event_counts),
            "led_changes": [list(c) for c in self.led_changes],
            "loads": list(self.loads), "faults": list(self.faults), "running": self.running,
        }


# --------------------------------------------------------------------------- the live meter
@dataclass
class _Segment:
    """A stretch of simulated time fed from one source, for the analytic comparison."""

    source: SyntheticSource
    start_s: float                  # [s, source time]
    end_s: float                    # [s, source time]
    offset_s: float                 # simulated time − source time (whole days)


class LiveMeter:
    """A meter running on a simulated installation, persisted to ``store``.

    Parameters
    ----------
    installation : an object with ``meter()`` and ``source()`` (see
        :mod:`minimeter.sources.installation`); its source repeats every day of simulated time
    store : where the register lives; None runs without persistence
    speed : simulated seconds per wall second; 0 runs as fast as the machine can
    """

    def __init__(self, installation: Any, *, store: Store | None = None, speed: float = 3600.0) -> None:
        if not (speed >= 0 and math.isfinite(speed)):
            raise MinimeterError(f"speed must be a finite number ≥ 0 (0: as fast as possible), got {speed!r}")
        self.speed = float(speed)
        self.store = store
        self._installation = installation
        self._faults: list[str] = [f.describe() for f in getattr(installation, "faults", ())]
        template = installation.meter()
        self.spec = template.spec
        state = store.load() if store is not None else None
        if state is not None and state.model_number != self.spec.model_number:
            raise StoreError(
                f"the store {store.path} holds a {state.model_number} meter, not a {self.spec.model_number}; "
                "use another --db file"
            )
        self.restored = state
        if state is None:
            self.meter = template
            self._cycle = 0
            self._closures_base = {name: 0 for name in template.output_names}
            self._reverse_base = 0
        else:
            self.meter = Meter(self.spec, register_quanta=state.register_quanta)
            self._cycle = state.cycle_index
            self._closures_base = {name: int(state.closures.get(name, 0)) for name in self.meter.output_names}
            self._reverse_base = state.reverse_quanta
        self._source = installation.source()
        self._check_source(self._source)
        self.frequency_hz = float(self._source.frequency_hz)
        if state is not None and abs(state.cycle_index / self.frequency_hz - state.time_s) > 1e-6:
            self._cycle = int(round(state.time_s * self.frequency_hz))     # stored at another line frequency
        cycles_per_day = DAY_S * self.frequency_hz
        self._day_cycles = int(round(cycles_per_day)) if abs(cycles_per_day - round(cycles_per_day)) < 1e-6 else None
        self.start_time_s = self.time_s
        self.start_watt_hours = self.meter.watt_hours
        self._segments: list[_Segment] = []
        self._lock = threading.RLock()
        self._pending: Any = None
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self._seq = 0
        self._last_commit_wall = time.monotonic()
        self._pending_events: list[EventRow] = []
        self._intervals: dict[float, list] = {}           # start_s → [wh per element, covered_s]
        self._dirty_intervals: set[float] = set()
        self._event_log: deque = deque(maxlen=EVENTS_KEPT)
        self._event_counts: dict[str, int] = dict(store.event_counts()) if store is not None else {}
        self._active: dict[tuple, bool] = {}
        self._led_changes: deque = deque(maxlen=LED_CHANGES_KEPT)
        self._history: deque = deque(maxlen=HISTORY_POINTS)
        self._last = None                                  # last cycle's quantities
        self.cycles_fed = 0
        self.closed = False
        if store is not None:
            for row in store.events(limit=EVENTS_KEPT):
                self._event_log.append(row)
            self._restore_interval(store)
        self._latest = self._snapshot()

    # ------------------------------------------------------------------ reading
    @property
    def time_s(self) -> float:
        """Simulated time reached [s]."""
        return self._cycle / self.frequency_hz if hasattr(self, "frequency_hz") else 0.0

    @property
    def latest(self) -> Snapshot:
        return self._latest

    @property
    def installation(self) -> Any:
        return self._pending if self._pending is not None else self._installation

    def closures(self, name: str) -> int:
        """Lifetime closures of an output (stored ones plus this run's)."""
        return self._closures_base[name] + self.meter.closures(name)

    def reverse_quanta(self) -> int:
        return self._reverse_base + int(round(self.meter.reverse_watt_hours * QUANTA_PER_WH))

    def events(self) -> list[EventRow]:
        with self._lock:
            return list(self._event_log)

    def history(self) -> list[tuple[float, tuple[float, ...]]]:
        """(simulated time [s], power per element [W]) once a simulated minute, last hours."""
        with self._lock:
            return list(self._history)

    def loads_text(self) -> tuple[str, ...]:
        return tuple(getattr(load, "name", "") or repr(load) for load in getattr(self.installation, "loads", ()))

    def subscribe(self, callback: Callable[[Snapshot], None]) -> None:
        """Call ``callback(snapshot)`` at each publication (from the meter's thread)."""
        self._subscribers.append(callback)

    # ------------------------------------------------------------------ live changes
    def set_installation(self, installation: Any, faults: Sequence[str] | None = None) -> None:
        """Feed cycles from ``installation``'s source from the current simulated time on."""
        source = installation.source()
        self._check_source(source)
        with self._lock:
            self._pending = installation
            if faults is not None:
                self._faults = list(faults)

    def add_load(self, load: Any) -> None:
        inst = self.installation
        self.set_installation(inst.with_loads(tuple(getattr(inst, "loads", ())) + (load,)))

    def remove_load(self, index: int) -> None:
        inst = self.installation
        loads = list(getattr(inst, "loads", ()))
        if not 0 <= index < len(loads):
            raise ControlError(f"no load number {index}; there are {len(loads)} (numbered from 0)")
        del loads[index]
        self.set_installation(inst.with_loads(tuple(loads)))

    def inject_fault(self, kind: str, **params: Any) -> None:
        """Add a wiring fault (``installation.with_fault``), e.g. ``('ct-reversed', ct='CT2')``."""
        kinds = fault_kinds()
        if kind not in kinds:
            raise ControlError(f"unknown fault {kind!r} — known: {', '.join(kinds)}")
        inst = self.installation.with_fault(kind, **params)
        self.set_installation(inst, [f.describe() for f in inst.faults])

    def clear_faults(self) -> None:
        self.set_installation(self.installation.without_faults(), [])

    def _check_source(self, source: SyntheticSource) -> None:
        if source.elements != self.spec.elements:
            raise ControlError(
                f"the installation gives {source.elements} element(s); the meter {self.spec.model_number} "
                f"has {self.spec.elements}"
            )
        if hasattr(self, "frequency_hz") and source.frequency_hz != self.frequency_hz:
            raise ControlError("a live change cannot change the line frequency")

    # ------------------------------------------------------------------ running
    def run(self, stop: threading.Event, *, hours: float | None = None, until_s: float | None = None,
            publish_every_s: float = 0.1, on_step: Callable[[], None] | None = None) -> None:
        """Run until ``stop`` is set, ``hours`` of simulated time have passed in this run, or
        the simulated clock reaches ``until_s`` [s]. Commits at the end."""
        end_s = math.inf
        if hours:
            end_s = self.time_s + hours * 3600.0
        if until_s is not None:
            end_s = min(end_s, until_s)
        wall0, sim0 = time.monotonic(), self.time_s
        last_publish = 0.0
        try:
            while not stop.is_set() and self.time_s < end_s - 0.5 / self.frequency_hz:
                now = time.monotonic()
                if self.speed > 0:
                    target = sim0 + (now - wall0) * self.speed
                else:
                    target = self.time_s + MAX_CYCLES_PER_BLOCK / self.frequency_hz
                self.advance_to(min(target, end_s), stop)
                if now - last_publish >= publish_every_s:
                    self.publish()
                    last_publish = now
                    if on_step is not None:
                        on_step()
                if self.speed > 0:
                    stop.wait(min(0.02, publish_every_s))
        finally:
            self.commit()
            self.publish()

    def advance_to(self, target_s: float, stop: threading.Event | None = None) -> None:
        """Feed every whole line cycle that ends by ``target_s`` [s simulated]."""
        last = int(math.floor(target_s * self.frequency_hz + 1e-6))
        while self._cycle < last and not (stop is not None and stop.is_set()):
            self._apply_pending()
            count = min(last - self._cycle, MAX_CYCLES_PER_BLOCK)
            if self._day_cycles:
                count = min(count, self._day_cycles - self._cycle % self._day_cycles)
            self._feed(self._block(self._cycle, count))

    def _apply_pending(self) -> None:
        with self._lock:
            if self._pending is None:
                return
            self._installation, self._pending = self._pending, None
            self._source = self._installation.source()

    def _block(self, first: int, count: int) -> CycleBlock:
        if not self._day_cycles:
            block = self._source.cycle_block(first, count)
            self._account(block, 0.0)
            return block
        day, within = divmod(first, self._day_cycles)
        block = self._source.cycle_block(within, count)
        offset = day * DAY_S
        self._account(block, offset)
        return replace(block, start_s=block.start_s + offset)

    def _account(self, block: CycleBlock, offset_s: float) -> None:
        """Remember which source fed which simulated stretch (for the analytic energy)."""
        if not block.count:
            return
        t0, t1 = float(block.start_s[0]), float(block.end_s[-1])
        seg = self._segments[-1] if self._segments else None
        if seg is not None and seg.source is self._source and seg.offset_s == offset_s and abs(seg.end_s - t0) < 1e-6:
            seg.end_s = t1
        else:
            self._segments.append(_Segment(self._source, t0, t1, offset_s))

    def _feed(self, block: CycleBlock) -> None:
        """Feed ``block`` in pieces that each end at a change of the Kh = 10 output (every
        5 Wh), committing after each: no more than half a pulse's energy is ever unstored.
        The cuts use each cycle's positive net energy, an upper bound of what registers."""
        forward = np.maximum(block.net_energy_wh, 0.0)
        e0 = self.meter.watt_hours
        level = np.floor((e0 + np.cumsum(forward)) / COMMIT_STEP_WH)
        ends = np.flatnonzero(np.diff(np.concatenate(([math.floor(e0 / COMMIT_STEP_WH)], level))) > 0) + 1
        lo = 0
        for hi in [*ends.tolist(), block.count]:
            if hi <= lo:
                continue
            piece = block.slice(lo, hi) if (lo, hi) != (0, block.count) else block
            update = self.meter.feed_cycles(piece)
            with self._lock:
                self._cycle += piece.count
                self._absorb(update, piece)
            crossed = hi != block.count or (ends.size and ends[-1] == block.count)
            if crossed or time.monotonic() - self._last_commit_wall >= COMMIT_EVERY_S:
                self.commit()
            lo = hi

    def _absorb(self, update: Update, b: CycleBlock) -> None:
        self.cycles_fed += b.count
        idx = np.floor(b.start_s / INTERVAL_S)
        for k in np.unique(idx):
            sel = idx == k
            start = float(k * INTERVAL_S)
            slot = self._intervals.get(start)
            if slot is None:
                slot = self._intervals[start] = [np.zeros(b.elements), 0.0]
            slot[0] = slot[0] + b.energy_wh[:, sel].sum(axis=1)
            slot[1] += float(b.duration_s[sel].sum())
            self._dirty_intervals.add(start)
        for ev in update.events:
            row = EventRow(ev.time_s, ev.kind, ev.active, ev.element, ev.value, ev.message)
            self._pending_events.append(row)
            self._event_log.append(row)
            self._active[(ev.kind, ev.element)] = ev.active
            if ev.active:
                self._event_counts[ev.kind] = self._event_counts.get(ev.kind, 0) + 1
        for ch in update.led_changes:
            self._led_changes.append((ch.led, ch.state, ch.time_s))
        step = np.floor(b.start_s / HISTORY_STEP_S)
        prev = math.floor(self._history[-1][0] / HISTORY_STEP_S) if self._history else -1
        for i in np.flatnonzero(np.diff(np.concatenate(([prev], step))) > 0)[-HISTORY_POINTS:]:
            self._history.append((float(b.start_s[i]), tuple(float(p) for p in b.power_w[:, i])))
        last = b.count - 1
        self._last = (
            tuple(float(x) for x in b.power_w[:, last]), tuple(float(x) for x in b.volts_rms[:, last]),
            tuple(float(x) for x in b.amps_rms[:, last]), tuple(float(x) for x in b.power_factor[:, last]),
            float(b.frequency_hz[last]),
        )

    def _restore_interval(self, store: Store) -> None:
        """Continue the interval that was open when the meter stopped."""
        start = math.floor(self.time_s / INTERVAL_S) * INTERVAL_S
        rows = [r for r in store.intervals() if r.start_s == start]
        if rows:
            wh = np.zeros(self.spec.elements)
            for r in rows:
                wh[r.element - 1] = r.energy_wh
            self._intervals[start] = [wh, rows[0].covered_s]

    # ------------------------------------------------------------------ persisting
    def state(self) -> MeterState:
        m = self.meter
        return MeterState(
            model_number=self.spec.model_number,
            register_quanta=m.register_quanta,
            reverse_quanta=self.reverse_quanta(),
            cycle_index=self._cycle,
            time_s=self.time_s,
            closures={name: self.closures(name) for name in m.output_names},
            outputs_on={name: m.output_on(name) for name in m.output_names},
            counter_value=m.counter_value,
        )

    def commit(self) -> None:
        """Store the register, the touched intervals and the new events, durably."""
        self._last_commit_wall = time.monotonic()
        if self.store is None:
            self._pending_events.clear()
            return
        with self._lock:
            rows = []
            for start in sorted(self._dirty_intervals):
                wh, covered = self._intervals[start]
                rows += [IntervalRow(start, k + 1, float(wh[k]), covered) for k in range(len(wh))]
            events, self._pending_events = self._pending_events, []
            self.store.commit(self.state(), intervals=rows, events=events)
            self._dirty_intervals.clear()
            current = math.floor(self.time_s / INTERVAL_S) * INTERVAL_S
            for start in [s for s in self._intervals if s < current]:
                del self._intervals[start]

    # ------------------------------------------------------------------ publishing
    def _snapshot(self) -> Snapshot:
        m = self.meter
        e = self.spec.elements
        if self._last is None:
            power, volts, amps, pf, freq = (0.0,) * e, (0.0,) * e, (0.0,) * e, (float("nan"),) * e, float("nan")
        else:
            power, volts, amps, pf, freq = self._last
        kh = dict(zip((str(k) for k in self.spec.outputs_wh), self.spec.outputs_wh))
        if self.spec.counter_kh_wh:
            kh["counter"] = self.spec.counter_kh_wh
        self._seq += 1
        return Snapshot(
            seq=self._seq, model_number=self.spec.model_number, elements=e, time_s=self.time_s,
            speed=self.speed, register_quanta=m.register_quanta, watt_hours=m.watt_hours,
            reverse_watt_hours=self.reverse_quanta() / QUANTA_PER_WH, lcd_text=lcd_text(m.register_quanta),
            counter_value=m.counter_value, power_led=m.leds.power, load_led=m.leds.load,
            reverse_led=m.leds.reverse,
            outputs=tuple(OutputReading(n, kh[n], m.output_on(n), self.closures(n)) for n in m.output_names),
            power_w=power, volts_rms=volts, amps_rms=amps, power_factor=pf, frequency_hz=freq,
            active_events=frozenset(k for k, on in self._active.items() if on),
            event_counts=dict(self._event_counts),
            led_changes=tuple(self._led_changes)[-200:],
            loads=self.loads_text(), faults=tuple(self._faults), running=not self.closed,
        )

    def publish(self) -> Snapshot:
        """Make a snapshot and hand it to every subscriber."""
        with self._lock:
            snap = self._latest = self._snapshot()
        for callback in list(self._subscribers):
            callback(snap)
        return snap

    # ------------------------------------------------------------------ summary
    def analytic(self) -> tuple[np.ndarray, float]:
        """Exact energy per element and the delivered energy over this run's simulated time
        [Wh], from the sources that fed it."""
        per = np.zeros(self.spec.elements)
        delivered = 0.0
        for seg in self._segments:
            t1, t2 = seg.start_s, seg.end_s
            per = per + seg.source.energy_wh(t1, t2)
            delivered += seg.source.delivered_energy_wh(t1, t2)
        return per, delivered
