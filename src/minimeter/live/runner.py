"""The live virtual meter: one :class:`~minimeter.meter.Meter` fed continuously by the
phasor path, in real time or accelerated, persisted and published (SPEC §5, §7, §10).

:class:`LiveMeter` keeps the clock (the index of the next line cycle), the installation
that feeds it, and what it publishes; the meter keeps its own state
(:meth:`Meter.state() <minimeter.meter.Meter.state>`). Each step it feeds the line cycles
due by the wall clock (``speed`` simulated seconds per wall second, or as fast as it can
with ``speed = 0``) through :func:`minimeter.drive.feed_cycles`, cut so that each piece
adds at most one Kh = 10 output change (5 Wh). After every such piece, and at least once
a second, it pushes a :class:`~minimeter.live.stream.Snapshot` marked as a commit point
to its sinks — the store first, which commits it in one transaction — and in between,
display snapshots. A restart continues, bit for bit, from a state the meter really had
(:meth:`Meter.restore() <minimeter.meter.Meter.restore>`).

Commits are bounded in rate whatever the load: no two closer than
:data:`MIN_COMMIT_CYCLES` line cycles — at most 10 a simulated second at 60 Hz, so 10 a
second for a real-time meter; an accelerated meter whose load asks for more commits than
the disk gives falls behind the wall clock (nothing is skipped) and stays responsive: the
lock is held one piece at a time and ``stop`` is honoured between pieces. What a crash
(``kill -9``) loses, honestly:

- within the meter's rating (110 % of the CT's rating at the highest supply voltage) no
  Kh = 10 edge comes sooner than 6 cycles after the last, so the spacing never delays a
  commit: less than one Kh = 10 pulse (5 Wh + one line cycle, S10.1);
- beyond it — the trainer's loads and faults go up to 4 × the CT's rating at 2 × the
  highest supply voltage (:func:`check_within_ratings`) — the larger of that and 6 line
  cycles' energy: still under a pulse for the 7B with 200 A CTs at 800 A, 120 V, 60 Hz
  (5.9 Wh); at the extreme (400 A CTs at 1600 A and 276 V, 50 Hz) 29 Wh, three pulses.

Sinks are edges that translate (:mod:`minimeter.live.stream`); none reaches back into
the meter. The register can only be advanced by energy; nothing here writes or resets it.

Loads and wiring faults change live (trainers): a new source is built from the new
installation and fed from the current simulated time on, into the same meter.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from minimeter.drive import feed_cycles
from minimeter.errors import MinimeterError
from minimeter.meter import Event, EventKind, Meter, Update
from minimeter.meter._kernels import warm
from minimeter.meter.metrology import CycleBlock
from minimeter.meter.snapshot import InvalidSnapshot
from minimeter.sources.installation import FAULT_KINDS
from minimeter.sources.service import SyntheticSource
from minimeter.live.store import Store, StoredMeter, StoreError
from minimeter.live.stream import INTERVAL_S, IntervalRow, Sink, Snapshot

DAY_S = 86400.0
KH_TEST_WH = 10.0                 # the test output (S10.1)
COMMIT_STEP_WH = KH_TEST_WH / 2   # push (and so commit) at each change of the Kh = 10 output: both
#                                   edges, so a crash loses at most 5 Wh + one line cycle, under one pulse
COMMIT_EVERY_S = 1.0              # and at least this often [s wall]
MIN_COMMIT_CYCLES = 6             # and no closer together than this many line cycles: within the
#                                   rating no Kh = 10 edge comes sooner (the largest meter, 440 A × 2 ×
#                                   138 V at 50 Hz, registers 0.67 Wh a cycle: 5 Wh take ≥ 7 cycles)
MAX_CYCLES_PER_BLOCK = 36_000     # 10 minutes of 60 Hz per source call
MIN_TICK_SIM_S = 1.0              # a paced run feeds at least this much simulated time per wake [s]
MAX_TICK_S = 5.0                  # and wakes at least this often [s wall] (the panels' clocks)
LOOK_AHEAD_CYCLES = 3_600         # and looks this far ahead for its next wake [line cycles]
CT_RATING_FACTOR_MAX = 4.0        # live loads/faults: a CT carries at most 4 × its rating (the largest
#                                   continuous thermal rating factor of IEEE C57.13)
SUPPLY_FACTOR_MAX = 2.0           # live voltages: at most 2 × the meter's highest supply voltage (rms)
MAX_HARMONIC_ORDER = 50           # live loads: harmonics up to the 50th (IEC 61000-4-7's range)
MAX_LOADS = 64                    # live loads at once
MAX_FAULTS = 16                   # live faults at once
HISTORY_STEP_S = 60.0             # chart resolution [s simulated]
HISTORY_POINTS = 6 * 60           # six hours of chart
EVENTS_SHOWN = 200
LED_CHANGES_SHOWN = 200


class ControlError(MinimeterError):
    """A load or fault change that cannot be made."""


def _peak(signal: Any) -> float:
    """An upper bound of ``|signal(t)|``: the sum of its components' peak amplitudes, each
    at its profile's largest gain (inf for anything not finite)."""
    total = 0.0
    for c in signal:
        gain = max((abs(v) for v in c.gain.values), default=0.0) if c.gain is not None else 1.0
        total += abs(c.amplitude) * gain
    return total if math.isfinite(total) else math.inf


def check_within_ratings(installation: Any, source: SyntheticSource, spec: Any) -> None:
    """Refuse (:class:`ControlError`) an installation the live meter cannot carry: more than
    :data:`MAX_LOADS` loads or :data:`MAX_FAULTS` faults, a harmonic above the
    :data:`MAX_HARMONIC_ORDER`-th, a CT current above :data:`CT_RATING_FACTOR_MAX` × the
    CT's rating, or a terminal voltage above :data:`SUPPLY_FACTOR_MAX` × the meter's
    highest supply voltage (peaks, profiles at their largest)."""
    loads, faults = tuple(getattr(installation, "loads", ())), tuple(getattr(installation, "faults", ()))
    if len(loads) > MAX_LOADS or len(faults) > MAX_FAULTS:
        raise ControlError(f"{len(loads)} loads and {len(faults)} faults: the live meter carries at most "
                           f"{MAX_LOADS} loads and {MAX_FAULTS} faults")
    orders = [h.order for load in loads for h in getattr(load, "harmonics", ())]
    if orders and max(orders) > MAX_HARMONIC_ORDER:
        raise ControlError(f"harmonic order {max(orders)} is above the {MAX_HARMONIC_ORDER}th")
    amps_max = CT_RATING_FACTOR_MAX * spec.rated_primary_a
    volts_max = SUPPLY_FACTOR_MAX * spec.supply_max_v
    for k in range(source.elements):
        amps_rms, volts_rms = _peak(source.amps[k]) / math.sqrt(2), _peak(source.volts[k]) / math.sqrt(2)
        if not amps_rms <= amps_max:
            raise ControlError(f"CT{k + 1} would read up to {amps_rms:.4g} A rms: beyond {amps_max:g} A "
                               f"({CT_RATING_FACTOR_MAX:g} × its {spec.rated_primary_a:g} A rating)")
        if not volts_rms <= volts_max:
            raise ControlError(f"element {k + 1} would see up to {volts_rms:.4g} V rms: beyond {volts_max:g} V "
                               f"({SUPPLY_FACTOR_MAX:g} × the meter's {spec.supply_max_v:g} V)")


@dataclass
class _Segment:
    """A stretch of simulated time fed from one source, for the analytic comparison."""

    source: SyntheticSource
    start_s: float                  # [s, source time]
    end_s: float                    # [s, source time]
    offset_s: float                 # simulated time − source time (whole days)


class _Tally:
    """What the runner gathers from the meter's updates for its snapshots: events and
    interval energies since the last snapshot, and the recent windows the panels show."""

    def __init__(self, elements: int, store: Store | None, time_s: float) -> None:
        self.elements = elements
        self.new_events: list[Event] = []
        self.new_transitions: list = []                  # output edges since the last snapshot (S13.1)
        self.recent_events: deque = deque(store.events(limit=EVENTS_SHOWN) if store else (), maxlen=EVENTS_SHOWN)
        self.event_counts: dict[EventKind, int] = store.event_counts() if store else {}
        self.led_changes: deque = deque(maxlen=LED_CHANGES_SHOWN)
        self.history: deque = deque(maxlen=HISTORY_POINTS)
        self.intervals: dict[float, list] = {}           # start_s → [Wh per element, covered_s]
        self.touched: set[float] = set()
        self.last_cycle: tuple | None = None             # last cycle's (P, V, I, PF per element, f)
        self.beyond: dict[str, tuple] = {}               # last cycle's S12 quantities per element, by Snapshot field
        self.harmonics: Any = None                       # the last harmonic table (S12.1)
        if store is not None:
            self._continue_interval(store, time_s)

    def _continue_interval(self, store: Store, time_s: float) -> None:
        """Continue the interval that was open when the meter stopped."""
        start = math.floor(time_s / INTERVAL_S) * INTERVAL_S
        rows = [r for r in store.intervals() if r.start_s == start]
        if rows:
            wh = np.zeros(self.elements)
            for r in rows:
                wh[r.element - 1] = r.energy_wh
            self.intervals[start] = [wh, rows[0].covered_s]

    def absorb(self, update: Update, b: CycleBlock) -> None:
        self._add_intervals(b)
        if update.quantities is not None:
            self._absorb_beyond(update.quantities)
        self.new_transitions.extend(update.transitions)
        self.log(update.events)
        self.led_changes.extend(update.led_changes)
        self._add_history(b)
        last = b.count - 1
        self.last_cycle = (
            tuple(float(x) for x in b.power_w[:, last]), tuple(float(x) for x in b.volts_rms[:, last]),
            tuple(float(x) for x in b.amps_rms[:, last]), tuple(float(x) for x in b.power_factor[:, last]),
            float(b.frequency_hz[last]),
        )

    def log(self, events: Any) -> None:
        """Events for the next snapshot, the recent list and the counts."""
        for ev in events:
            self.new_events.append(ev)
            self.recent_events.append(ev)
            if ev.active:
                self.event_counts[ev.kind] = self.event_counts.get(ev.kind, 0) + 1

    def _absorb_beyond(self, q: Any) -> None:
        """The last cycle's S12 quantities (meter.quantities.QuantityUpdate) and harmonic table."""
        if q.windows.count:
            last = q.windows.column(q.windows.count - 1)
            self.beyond = {name: last[name] for name in
                           ("reactive_power_var", "apparent_power_va", "displacement_pf", "thd_v_percent", "thd_i_percent")}
        if q.harmonics is not None:
            self.harmonics = q.harmonics

    def _add_intervals(self, b: CycleBlock) -> None:
        idx = np.floor(b.start_s / INTERVAL_S)
        for k in np.unique(idx):
            sel = idx == k
            start = float(k * INTERVAL_S)
            slot = self.intervals.setdefault(start, [np.zeros(b.elements), 0.0])
            slot[0] = slot[0] + b.energy_wh[:, sel].sum(axis=1)
            slot[1] += float(b.duration_s[sel].sum())
            self.touched.add(start)

    def _add_history(self, b: CycleBlock) -> None:
        step = np.floor(b.start_s / HISTORY_STEP_S)
        prev = math.floor(self.history[-1][0] / HISTORY_STEP_S) if self.history else -1
        for i in np.flatnonzero(np.diff(np.concatenate(([prev], step))) > 0)[-HISTORY_POINTS:]:
            self.history.append((float(b.start_s[i]), tuple(float(p) for p in b.power_w[:, i])))

    def take_events(self) -> tuple[Event, ...]:
        events, self.new_events = tuple(self.new_events), []
        return events

    def take_transitions(self) -> tuple:
        edges, self.new_transitions = tuple(sorted(self.new_transitions, key=lambda t: t.time_s)), []
        return edges

    def take_intervals(self, time_s: float) -> tuple[IntervalRow, ...]:
        """The intervals touched since the last call (their totals so far); forgets the
        closed ones."""
        rows = []
        for start in sorted(self.touched):
            wh, covered = self.intervals[start]
            rows += [IntervalRow(start, k + 1, float(wh[k]), covered) for k in range(len(wh))]
        self.touched.clear()
        current = math.floor(time_s / INTERVAL_S) * INTERVAL_S
        for start in [s for s in self.intervals if s < current]:
            del self.intervals[start]
        return tuple(rows)


class LiveMeter:
    """A meter running on a simulated installation, published to its sinks.

    Parameters
    ----------
    installation : an :class:`~minimeter.sources.installation.Installation` (``spec``,
        ``source()``, ``with_loads``, ``with_fault``, …); its source repeats every day of
        simulated time
    store : where the meter lives: it is restored from the store, and the store is its
        first sink (it commits every snapshot). None runs without persistence.
    speed : simulated seconds per wall second; 0 runs as fast as the machine can
    commit_every_s : the longest wall time between two commit points [s] besides the
        Kh = 10 edges (:data:`COMMIT_EVERY_S`; a live fleet stretches it, its energy
        guarantee being the edges': see :mod:`minimeter.fleet.serve`)
    """

    def __init__(self, installation: Any, *, store: Store | None = None, speed: float = 3600.0,
                 commit_every_s: float = COMMIT_EVERY_S) -> None:
        if not (speed >= 0 and math.isfinite(speed)):
            raise MinimeterError(f"speed must be a finite number ≥ 0 (0: as fast as possible), got {speed!r}")
        if not (commit_every_s > 0 and math.isfinite(commit_every_s)):
            raise MinimeterError(f"commit_every_s must be a finite number of seconds > 0, got {commit_every_s!r}")
        self.speed = float(speed)
        self.commit_every_s = float(commit_every_s)
        self.spec = installation.spec
        self._installation = installation
        self._pending: Any = None
        self._faults: list[str] = [f.describe() for f in getattr(installation, "faults", ())]
        self._source = installation.source()
        self.frequency_hz = float(self._source.frequency_hz)
        self._check_source(installation, self._source)
        cycles_per_day = DAY_S * self.frequency_hz
        self._day_cycles = int(round(cycles_per_day)) if abs(cycles_per_day - round(cycles_per_day)) < 1e-6 else None
        self.meter = Meter(self.spec, quantities=True)      # with the S12 quantities, registers and PQ events
        self._cycle = 0
        self._last_cut_cycle = -MIN_COMMIT_CYCLES           # the last commit cut [line cycle]
        self._edge_unstored = False                          # a Kh = 10 edge waiting for its cut
        self._offset_s = 0.0                                 # simulated − source time of the block [s]
        self._ahead: tuple | None = None                     # (source, first cycle, block, offset): looked ahead
        self._sim_now: Any = None                            # a paced run's clock: simulated time now [s]
        self.restored: StoredMeter | None = self._restore(store)
        self.start_time_s = self.time_s
        # the UNIX time of simulated time 0: kept in the store, so the meter's calendar carries on
        now = time.time() - self.start_time_s
        self.start_epoch_s = store.start_epoch_s(now) if store is not None else now
        self.start_state = self.meter.state()
        self.cycles_fed = 0
        self._segments: list[_Segment] = []
        self._lock = threading.RLock()
        self._sinks: list[Sink] = []
        self._seq = 0
        self._running = False
        self._tally = _Tally(self.spec.elements, store, self.time_s)
        self._latest = self._snapshot(commit_point=False)
        self._last_push_wall = self._last_commit_wall = time.monotonic()
        if store is not None:
            self.add_sink(store)

    def _restore(self, store: Store | None) -> StoredMeter | None:
        """Continue the stored meter and its clock, if the store holds one."""
        stored = store.load() if store is not None else None
        if stored is None:
            return None
        if stored.meter.model_number != self.spec.model_number:
            raise StoreError(f"the store {store.path} holds a {stored.meter.model_number} meter, not a "
                             f"{self.spec.model_number}; use another --db file")
        try:
            self.meter.restore(stored.meter)
        except InvalidSnapshot as exc:
            raise StoreError(f"the store {store.path} cannot continue this meter: {exc}; use another --db file") from None
        self._cycle = stored.cycle_index
        if abs(stored.cycle_index / self.frequency_hz - stored.time_s) > 1e-6:
            self._cycle = int(round(stored.time_s * self.frequency_hz))     # stored at another line frequency
        return stored

    # ------------------------------------------------------------------ reading
    @property
    def time_s(self) -> float:
        """Simulated time reached [s]."""
        return self._cycle / self.frequency_hz

    @property
    def installation(self) -> Any:
        return self._pending if self._pending is not None else self._installation

    def loads_text(self) -> tuple[str, ...]:
        return tuple(getattr(load, "name", "") or repr(load) for load in getattr(self.installation, "loads", ()))

    def faults_text(self) -> tuple[str, ...]:
        return tuple(self._faults)

    # ------------------------------------------------------------------ publishing
    def add_sink(self, sink: Sink) -> None:
        """Push every snapshot to ``sink.update`` from now on, starting with the newest."""
        with self._lock:
            self._sinks.append(sink)
            sink.update(self._latest)

    def publish(self, *, commit_point: bool = True) -> Snapshot:
        """Make a snapshot and push it to every sink, in the order they were added; a
        ``commit_point`` is one the store commits (the display ticks are not)."""
        with self._lock:
            snap = self._latest = self._snapshot(commit_point)
            self._last_push_wall = time.monotonic()
            if commit_point:
                self._last_commit_wall = self._last_push_wall
            for sink in self._sinks:
                sink.update(snap)
        return snap

    def commit_due(self) -> bool:
        """Whether a snapshot made now is a commit point by the clock: ``commit_every_s``
        of wall time since the last one."""
        return time.monotonic() - self._last_commit_wall >= self.commit_every_s

    def events_waiting(self) -> bool:
        """Whether events were raised or cleared since the last snapshot."""
        return bool(self._tally.new_events)

    def _snapshot(self, commit_point: bool) -> Snapshot:
        t = self._tally
        e = self.spec.elements
        if t.last_cycle is None:
            power, volts, amps, pf, freq = (0.0,) * e, (0.0,) * e, (0.0,) * e, (float("nan"),) * e, float("nan")
        else:
            power, volts, amps, pf, freq = t.last_cycle
        self._seq += 1
        return Snapshot(
            seq=self._seq, spec=self.spec, meter=self.meter.state(), cycle_index=self._cycle, time_s=self.time_s,
            speed=self.speed, power_w=power, volts_rms=volts, amps_rms=amps, power_factor=pf, frequency_hz=freq,
            events=t.take_events(), intervals=t.take_intervals(self.time_s),
            recent_events=tuple(t.recent_events), event_counts=dict(t.event_counts),
            led_changes=tuple(t.led_changes), history=tuple(t.history),
            loads=self.loads_text(), faults=self.faults_text(), running=self._running, commit_point=commit_point,
            transitions=t.take_transitions(), start_epoch_s=self.start_epoch_s,
            harmonics=t.harmonics, registers=self.meter.registers, **t.beyond,
        )

    # ------------------------------------------------------------------ live changes
    def reset_max_demand(self) -> Event:
        """Clear the maximum demand (S12.2: the one reset, by explicit command); the event
        that logs it goes to the sinks (and the store) with the next snapshot, published now."""
        with self._lock:
            event = self.meter.reset_max_demand()
            self._tally.log([event])
            self.publish()
        return event

    def set_installation(self, installation: Any, faults: Sequence[str] | None = None) -> None:
        """Feed cycles from ``installation``'s source from the current simulated time on
        (checked first: :class:`ControlError` and nothing changes if the meter cannot
        carry it). During a paced :meth:`run` the meter is first fed, on the old
        installation, up to the simulated time of the wall clock, then one line cycle of
        the new one, and a snapshot is published: the change shows at once, not at the
        runner's next wake."""
        source = installation.source()
        self._check_source(installation, source)
        with self._lock:
            clock = self._sim_now
            if clock is not None:
                self.advance_to(clock())
            self._pending = installation
            if faults is not None:
                self._faults = list(faults)
            if clock is not None:
                self.advance_to(self.time_s + 1.0 / self.frequency_hz)
                self.publish(commit_point=False)

    def add_load(self, load: Any) -> None:
        with self._lock:
            inst = self.installation
            self.set_installation(inst.with_loads(tuple(getattr(inst, "loads", ())) + (load,)))

    def remove_load(self, index: int) -> None:
        with self._lock:
            inst = self.installation
            loads = list(getattr(inst, "loads", ()))
            if not 0 <= index < len(loads):
                raise ControlError(f"no load number {index}; there are {len(loads)} (numbered from 0)")
            del loads[index]
            self.set_installation(inst.with_loads(tuple(loads)))

    def inject_fault(self, kind: str, **params: Any) -> None:
        """Add a wiring fault (``installation.with_fault``), e.g. ``('ct-reversed', ct='CT2')``."""
        if kind not in FAULT_KINDS:
            raise ControlError(f"unknown fault {kind!r} — known: {', '.join(FAULT_KINDS)}")
        with self._lock:
            inst = self.installation.with_fault(kind, **params)
            self.set_installation(inst, [f.describe() for f in inst.faults])

    def clear_faults(self) -> None:
        with self._lock:
            self.set_installation(self.installation.without_faults(), [])

    def _check_source(self, installation: Any, source: SyntheticSource) -> None:
        if source.elements != self.spec.elements:
            raise ControlError(
                f"the installation gives {source.elements} element(s); the meter {self.spec.model_number} "
                f"has {self.spec.elements}"
            )
        if source.frequency_hz != self.frequency_hz:
            raise ControlError("a live change cannot change the line frequency")
        check_within_ratings(installation, source, self.spec)

    # ------------------------------------------------------------------ running
    def run(self, stop: threading.Event, *, hours: float | None = None, until_s: float | None = None,
            publish_every_s: float = 0.1) -> None:
        """Run until ``stop`` is set, ``hours`` of simulated time have passed in this run, or
        the simulated clock reaches ``until_s`` [s]; publish after every wake (and at each
        commit point), and once more at the end.

        Paced (``speed > 0``) the runner sleeps between wakes and nothing polls. It looks
        ahead at the source's next cycles and sleeps until the first that changes what
        anyone sees — a different power, voltage or current, or a Kh = 10 output edge —
        but no less than :meth:`tick_s` (``publish_every_s``, or one simulated second if
        that is longer) and no more than :data:`MAX_TICK_S` [s wall]. A control wakes
        nothing: it feeds the meter up to the wall clock itself (:meth:`set_installation`)."""
        warm()          # every compiled kernel loaded now, not at its first use mid-run (a pause, in CPU)
        end_s = math.inf
        if hours:
            end_s = self.time_s + hours * 3600.0
        if until_s is not None:
            end_s = min(end_s, until_s)
        wall0, sim0 = time.monotonic(), self.time_s
        if self.speed > 0:
            self._sim_now = lambda: min(end_s, sim0 + (time.monotonic() - wall0) * self.speed)
        self._running = True
        try:
            while not stop.is_set() and self.time_s < end_s - 0.5 / self.frequency_hz:
                if self.speed > 0:
                    self.advance_to(self._sim_now(), stop)
                    with self._lock:
                        self.publish(commit_point=self.commit_due())
                        wake_s = self._next_wake_s(publish_every_s)
                    stop.wait(max(0.0, wall0 + (min(wake_s, end_s) - sim0) / self.speed - time.monotonic()))
                    continue
                self.advance_to(min(self.time_s + MAX_CYCLES_PER_BLOCK / self.frequency_hz, end_s), stop)
                if time.monotonic() - self._last_push_wall >= publish_every_s:
                    self.publish(commit_point=self.commit_due())
        finally:
            self._sim_now = None
            self._running = False
            self.publish()

    def tick_s(self, publish_every_s: float = 0.1) -> float:
        """The least wall time between two wakes of a paced run [s] (see :meth:`run`)."""
        if self.speed <= 0:
            return 0.0
        return max(publish_every_s, MIN_TICK_SIM_S / self.speed)

    def _next_wake_s(self, publish_every_s: float) -> float:
        """The simulated time [s] to wake at: the end of the first cycle ahead that changes
        what anyone sees, within [tick, MAX_TICK_S] of wall time from now."""
        least = max(1, math.ceil(self.tick_s(publish_every_s) * self.speed * self.frequency_hz - 1e-9))
        most = max(least, min(int(MAX_TICK_S * self.speed * self.frequency_hz), LOOK_AHEAD_CYCLES))
        if least >= most:                                   # fast: the tick is all there is to it
            return (self._cycle + least) / self.frequency_hz
        ahead = self._look_ahead(least, most)
        quiet = ahead.count
        x = np.vstack((ahead.power_w, ahead.volts_rms, ahead.amps_rms))
        changed = np.flatnonzero((np.abs(np.diff(x, axis=1)) > 1e-9 * (1.0 + np.abs(x[:, 1:]))).any(axis=0))
        if changed.size:
            quiet = int(changed[0]) + 2                       # through the first changed cycle
        level = np.floor((self.meter.watt_hours + np.cumsum(np.maximum(ahead.net_energy_wh, 0.0))) / COMMIT_STEP_WH)
        edges = np.flatnonzero(level > math.floor(self.meter.watt_hours / COMMIT_STEP_WH))
        if edges.size:
            quiet = min(quiet, int(edges[0]) + 1)             # through the cycle of the next Kh = 10 edge
        return (self._cycle + min(max(quiet, least), most)) / self.frequency_hz

    def _look_ahead(self, least: int, most: int) -> CycleBlock:
        """The source's next cycles: what is left of the last look ahead if that is at
        least ``least``, else ``most`` of them (fewer at the end of a day), kept for
        :meth:`_block` to feed without computing them again."""
        self._apply_pending()
        ahead = self._ahead
        if ahead is not None and ahead[0] is self._source and 0 <= self._cycle - ahead[1] <= ahead[2].count - least:
            return self._block(self._cycle, ahead[2].count - (self._cycle - ahead[1]))
        if self._day_cycles:
            most = min(most, self._day_cycles - self._cycle % self._day_cycles)
        block = self._block(self._cycle, most)
        self._ahead = (self._source, self._cycle, block, self._offset_s)
        return block

    def advance_to(self, target_s: float, stop: threading.Event | None = None) -> None:
        """Feed every whole line cycle that ends by ``target_s`` [s simulated]."""
        last = int(math.floor(target_s * self.frequency_hz + 1e-6))
        while self._cycle < last and not (stop is not None and stop.is_set()):
            with self._lock:
                self._apply_pending()
                count = min(last - self._cycle, MAX_CYCLES_PER_BLOCK)
                if self._day_cycles:
                    count = min(count, self._day_cycles - self._cycle % self._day_cycles)
                first, block = self._cycle, self._block(self._cycle, count)
            self._feed(first, block, stop)

    def _apply_pending(self) -> None:
        with self._lock:
            if self._pending is None:
                return
            self._installation, self._pending = self._pending, None
            self._source = self._installation.source()

    def _block(self, first: int, count: int) -> CycleBlock:
        ahead = self._ahead
        if ahead is not None and ahead[0] is self._source and 0 <= first - ahead[1] <= ahead[2].count - count:
            self._offset_s = ahead[3]
            a = first - ahead[1]
            return ahead[2] if (a, count) == (0, ahead[2].count) else ahead[2].slice(a, a + count)
        if not self._day_cycles:
            self._offset_s = 0.0
            return self._source.cycle_block(first, count)
        day, within = divmod(first, self._day_cycles)
        block = self._source.cycle_block(within, count)
        self._offset_s = offset = day * DAY_S
        return replace(block, start_s=block.start_s + offset)

    def _account(self, piece: CycleBlock, offset_s: float) -> None:
        """Remember which source fed which simulated stretch (for the analytic energy)."""
        if not piece.count:
            return
        t0, t1 = float(piece.start_s[0]) - offset_s, float(piece.end_s[-1]) - offset_s
        seg = self._segments[-1] if self._segments else None
        if seg is not None and seg.source is self._source and seg.offset_s == offset_s and abs(seg.end_s - t0) < 1e-6:
            seg.end_s = t1
        else:
            self._segments.append(_Segment(self._source, t0, t1, offset_s))

    def _feed(self, first: int, block: CycleBlock, stop: threading.Event | None = None) -> None:
        """Feed ``block`` (from line cycle ``first``) through
        :func:`minimeter.drive.feed_cycles` in pieces, publishing (committing) after each
        piece that ends at a change of the Kh = 10 output and at least every
        ``commit_every_s``. The meter, the clock and the tally change together, under
        the lock, one piece at a time (controls and readers wait for one piece at most);
        if another thread fed the meter meanwhile (a control), the rest of the block is
        left for the caller to recompute; ``stop`` is honoured between pieces."""
        offset_s = self._offset_s
        with self._lock:
            if self._cycle != first:
                return
            pieces, at_cut, edge_left = self._pieces(block)
        for piece, cut in zip(pieces, at_cut):
            with self._lock:
                if self._cycle != first:
                    self._edge_unstored = True                  # (at most one commit early)
                    return
                for update in feed_cycles(self.meter, [piece], close=False):
                    self._cycle += piece.count
                    self.cycles_fed += piece.count
                    self._tally.absorb(update, piece)
                    self._account(piece, offset_s)
                first = self._cycle
                if cut:
                    self._last_cut_cycle = self._cycle
                if cut or self.commit_due():
                    self.publish()
            if stop is not None and stop.is_set():
                self._edge_unstored = True
                return
        self._edge_unstored = edge_left

    def _pieces(self, block: CycleBlock) -> tuple[list[CycleBlock], list[bool], bool]:
        """``block`` cut after each cycle where the register may pass a multiple of 5 Wh
        (each cycle's positive net energy is an upper bound of what it registers), but no
        two cuts closer than :data:`MIN_COMMIT_CYCLES` (within the meter's rating they never
        are); whether each piece ends at such a cut, and whether an edge is left for a
        later block to cut."""
        forward = np.maximum(block.net_energy_wh, 0.0)
        e0 = self.meter.watt_hours
        level = np.floor((e0 + np.cumsum(forward)) / COMMIT_STEP_WH)
        ends = np.flatnonzero(np.diff(np.concatenate(([math.floor(e0 / COMMIT_STEP_WH)], level))) > 0) + 1
        cuts: list[int] = []
        last = self._last_cut_cycle - self._cycle              # the last cut, relative to this block
        edge_left = False
        for end in ([1] if self._edge_unstored else []) + ends.tolist():
            if end <= last:
                continue                                        # stored by a deferred cut
            at = max(end, last + MIN_COMMIT_CYCLES)
            if at > block.count:
                edge_left = True                                # cut in a later block
                break
            cuts.append(at)
            last = at
        pieces, at_cut, lo = [], [], 0
        for hi in cuts + ([block.count] if not cuts or cuts[-1] != block.count else []):
            if hi > lo:
                pieces.append(block if (lo, hi) == (0, block.count) else block.slice(lo, hi))
                at_cut.append(hi in cuts)
                lo = hi
        return pieces, at_cut, edge_left

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
