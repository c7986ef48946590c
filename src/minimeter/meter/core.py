"""The Meter: the one stateful object (SPEC §4–§8).

It holds the spec, the exact register, the line cycle still open between chunks, the
outputs' and LEDs' states and the events' conditions. Two ways in, one way down:

* :meth:`Meter.feed` takes sampled voltage and current, measures line cycles
  (:mod:`minimeter.meter.metrology`) and passes them on;
* :meth:`Meter.feed_cycles` takes per-cycle quantities directly (the phasor path of
  :mod:`minimeter.sources.service`), for days or years of simulated service.

Both end in the same code: the register, the pulse outputs, the three LEDs and the
events are judged once per line cycle, vectorised over the cycles of a chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from minimeter.meter.catalog import MeterSpec, meter_spec
from minimeter.errors import InvalidSamples, MinimeterError
from minimeter.meter.metrology import CycleBlock, LineCycleState, measure_chunk
from minimeter.meter.outputs import Transition, find_transitions, output_state
from minimeter.meter.register import QUANTA_PER_WH, counter_reading, lcd_text, to_quanta, watt_hours
from minimeter.meter.snapshot import EventKind, InvalidSnapshot, MeterSnapshot

_MAX_CYCLES_PER_STEP = 1 << 20      # cycles judged at once (also bounded so int64 sums of quanta cannot overflow)
FREQUENCY_TOLERANCE = 0.02          # ±2 % around 50–60 Hz before a frequency event (49.0–61.2 Hz)
REVERSE_DEADBAND_W = 1.0            # |net P| below this is not "negative" for the reverse LED
# Decisions: a meter must work at its rated limits, but a per-cycle rms scatters around a
# supply held exactly at 102 V or 138 V, and around a load of exactly the starting current.
# So the supply is judged out of range only beyond a ±0.5 % band outside 102–138 V (the
# meter's own voltage tolerance), and the starting current is detected at 80 % of its
# rating (0.16 A on a 200 A meter that must start at 0.2 A; creep noise stays far below).
SUPPLY_TOLERANCE = 0.005
STARTING_DETECT_FRACTION = 0.8


@dataclass(frozen=True)
class Event:
    """Something the meter noticed (S8.1), raised (``active``) or cleared."""

    time_s: float
    kind: EventKind        # a str enum: 'power-loss', 'under-voltage', … (see EventKind)
    active: bool
    element: int | None    # 1-based element / leg / CT, or None for the meter as a whole
    value: float           # the measured value that changed the condition
    message: str
    quantity: str | None = None    # 'clipped' events: the input clipped, 'voltage' or 'current'


@dataclass(frozen=True)
class LedChange:
    """A change of one LED."""

    led: str               # 'power', 'load' or 'reverse'
    state: bool
    time_s: float


@dataclass(frozen=True)
class LedStates:
    """The three LEDs at one moment (S7)."""

    power: bool = False
    load: bool = False
    reverse: bool = False


@dataclass(frozen=True)
class Update:
    """What one call of :meth:`Meter.feed` (or ``feed_cycles``, ``close``) produced."""

    cycles: CycleBlock
    transitions: tuple[Transition, ...]
    led_changes: tuple[LedChange, ...]
    leds: LedStates
    events: tuple[Event, ...]
    watt_hours: float          # the register after this update [Wh]


def _carry_forward(code: np.ndarray, initial: bool) -> np.ndarray:
    """Per-cycle states from codes 1 (on), 0 (off), -1 (keep the last state)."""
    if code.size == 0:
        return code.astype(bool)
    idx = np.where(code >= 0, np.arange(code.size), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, code[np.maximum(idx, 0)] == 1, initial)


def _judged_rms(values: np.ndarray, short: np.ndarray, last: np.ndarray | None) -> np.ndarray:
    """The rms values the supply and current limits are judged on: a short partial
    cycle (a fragment at the stream's edge) takes the values of the cycle before it —
    or, at the very start, of the first whole cycle after it — since the rms of a
    fragment of a sine says little about the supply."""
    if not short.any():
        return values
    m = short.size
    prev = np.where(~short, np.arange(m), -1)
    np.maximum.accumulate(prev, out=prev)
    nxt = np.where(~short, np.arange(m), m)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    out = values.copy()
    has_prev = prev >= 0
    out[:, has_prev] = values[:, prev[has_prev]]
    lead = ~has_prev
    if last is not None:
        out[:, lead] = last[:, None]
    else:
        use_next = lead & (nxt < m)
        out[:, use_next] = values[:, nxt[use_next]]
    return out


def _flips(states: np.ndarray, initial: bool) -> np.ndarray:
    """Indices where ``states`` differs from the state before it."""
    prev = np.concatenate(([initial], states[:-1]))
    return np.flatnonzero(states != prev)


class Meter:
    """A Mini Meter.

    >>> meter = Meter.for_model("7B", ct_rating="200A")

    Parameters
    ----------
    spec : the validated model and options (:func:`minimeter.meter.catalog.meter_spec`)
    register_wh : the register's starting value [Wh] (a restored meter)
    register_quanta : the same, exactly, as :attr:`register_quanta` stored it (wins over
        ``register_wh``)
    hysteresis_v : depth below zero that arms the next zero crossing [V]
    tracking_min_hz : lowest line frequency tracked [Hz]
    reverse_deadband_w : net power closer to zero than this is not "reverse" [W]
    full_scale_v, full_scale_a : the input range; samples at or beyond it are flagged
        as clipped [V], [A primary]. Defaults: 1.5 × 138 V × √2 and 2 × 110 % × √2 of
        the rating (a crest factor of 2 at maximum current).
    calibration : optional per-element correction applied to the samples before they
        are measured: an object with ``initial_state(elements, sample_rate_hz)`` and
        ``apply(volts, amps, sample_rate_hz, state) -> (volts, amps, state)``, pure
        (it returns a new state and leaves its inputs alone). See :mod:`minimeter.sources.frontend`.
    """

    def __init__(
        self,
        spec: MeterSpec,
        *,
        register_wh: float = 0.0,
        register_quanta: int | None = None,
        hysteresis_v: float = 10.0,
        tracking_min_hz: float = 40.0,
        reverse_deadband_w: float = REVERSE_DEADBAND_W,
        full_scale_v: float | None = None,
        full_scale_a: float | None = None,
        calibration: Any = None,
    ) -> None:
        if not math.isfinite(register_wh) or register_wh < 0:
            raise MinimeterError(f"register_wh must be a finite, non-negative energy, got {register_wh!r}")
        self.spec = spec
        self.hysteresis_v = float(hysteresis_v)
        self.tracking_min_hz = float(tracking_min_hz)
        self.reverse_deadband_w = float(reverse_deadband_w)
        self.supply_low_v = spec.supply_min_v * (1 - SUPPLY_TOLERANCE)     # below: unpowered
        self.supply_high_v = spec.supply_max_v * (1 + SUPPLY_TOLERANCE)    # above: over-voltage
        self.starting_detect_a = spec.starting_current_a * STARTING_DETECT_FRACTION
        self.full_scale_v = float(full_scale_v or 1.5 * spec.supply_max_v * math.sqrt(2))
        self.full_scale_a = float(full_scale_a or 2.0 * spec.max_primary_a * math.sqrt(2))
        if register_quanta is not None and (int(register_quanta) != register_quanta or register_quanta < 0):
            raise MinimeterError(f"register_quanta must be a non-negative integer, got {register_quanta!r}")
        self._quanta = int(register_quanta) if register_quanta is not None else int(round(register_wh * QUANTA_PER_WH))
        self._reverse_quanta = 0
        self._outputs: dict[str, int] = {str(kh): kh for kh in spec.outputs_wh}
        if spec.counter_kh_wh:
            self._outputs["counter"] = spec.counter_kh_wh
        self._output_on = {name: False for name in self._outputs}       # physical state
        self._closures = {name: 0 for name in self._outputs}
        self._leds = LedStates()
        self._powered = False
        self._judged_volts: np.ndarray | None = None   # last rms values judged, per element
        self._judged_amps: np.ndarray | None = None
        self._active: set[tuple[EventKind, int | None]] = set()     # event conditions now raised
        self.calibration = calibration
        self._calibration_state: Any = None
        self._stream: LineCycleState | None = None
        self._mode: str | None = None          # 'samples' or 'cycles'
        self._closed = False
        self._time_s = 0.0

    # ----------------------------------------------------------------- construction
    @classmethod
    def for_model(cls, prefix: str, **options: Any) -> "Meter":
        """A meter of the catalog's model ``prefix`` with options as keywords
        (``ct_rating``, ``register``, ``t_suffix``, ``ct_ratio``, ``aux_12v``, ``outputs``,
        ``inputs``), and the meter's own keywords (see :class:`Meter`)."""
        own = {k: options.pop(k) for k in list(options) if k in _METER_KEYWORDS}
        return cls(meter_spec(prefix, **options), **own)

    # ----------------------------------------------------------------- reading it
    @property
    def register_quanta(self) -> int:
        """The exact register, in quanta of 2⁻⁴⁰ Wh."""
        return self._quanta

    @property
    def watt_hours(self) -> float:
        """The register [Wh] (a float view of the exact integer)."""
        return watt_hours(self._quanta)

    @property
    def reverse_quanta(self) -> int:
        """Energy of cycles with negative net power, not registered (diagnostics), exactly
        [2⁻⁴⁰ Wh]; :func:`~minimeter.meter.register.watt_hours` gives it in Wh."""
        return self._reverse_quanta

    @property
    def reverse_watt_hours(self) -> float:
        return watt_hours(self._reverse_quanta)

    @property
    def active_conditions(self) -> frozenset[tuple[EventKind, int | None]]:
        """The event conditions raised now, as (kind, element) pairs."""
        return frozenset(self._active)

    @property
    def lcd_text(self) -> str:
        """The LCD, e.g. ``'000012.3'`` (S5.1); blank-free even when unpowered."""
        return lcd_text(self._quanta)

    @property
    def counter_value(self) -> int | None:
        """The mechanical counter's reading, or None for an LCD model (S5.3)."""
        if not self.spec.counter_kh_wh:
            return None
        return counter_reading(self._quanta, self.spec.counter_kh_wh, self.spec.counter_digits)

    @property
    def leds(self) -> LedStates:
        return self._leds

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def time_s(self) -> float:
        """End of the last line cycle measured [s since start]."""
        return self._time_s

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self._outputs)

    def output_on(self, output: str) -> bool:
        """Whether an output is closed now."""
        return self._output_on[self._check_output(output)]

    def closures(self, output: str) -> int:
        """OFF→ON transitions of ``output`` that marked energy since the meter started:
        ``floor(E/Kh) − floor(E_start/Kh)`` (S6.1)."""
        return self._closures[self._check_output(output)]

    def _check_output(self, output: str) -> str:
        name = str(output)
        if name not in self._outputs:
            raise MinimeterError(
                f"{self.spec.model_number} has no output {name!r} — its outputs: {', '.join(self._outputs)}"
            )
        return name

    # ----------------------------------------------------------------- its state
    def state(self) -> MeterSnapshot:
        """A frozen snapshot of everything this meter carries between calls (exact
        registers, lifetime closures, output and LED states, active conditions, the
        open line cycle, the calibration's state, the clock)."""
        return MeterSnapshot(
            model_number=self.spec.model_number,
            register_quanta=self._quanta,
            reverse_quanta=self._reverse_quanta,
            closures=tuple(self._closures.items()),
            outputs_on=tuple(self._output_on.items()),
            power_led=self._leds.power, load_led=self._leds.load, reverse_led=self._leds.reverse,
            powered=self._powered,
            active=tuple(sorted(self._active, key=lambda key: (key[0].value, key[1] or 0))),
            judged_volts=None if self._judged_volts is None else tuple(float(x) for x in self._judged_volts),
            judged_amps=None if self._judged_amps is None else tuple(float(x) for x in self._judged_amps),
            time_s=self._time_s,
            mode=self._mode,
            closed=self._closed,
            stream=self._stream,
            calibration_state=self._calibration_state,
        )

    def restore(self, snapshot: MeterSnapshot) -> None:
        """Continue from ``snapshot`` (of a meter of the same model), bit for bit: the
        next feed gives what the snapshotted meter's next feed would have given."""
        if not isinstance(snapshot, MeterSnapshot):
            raise InvalidSnapshot(f"restore takes a MeterSnapshot, not a {type(snapshot).__name__}")
        if snapshot.model_number != self.spec.model_number:
            raise InvalidSnapshot(f"the snapshot is of a {snapshot.model_number}; this meter is a {self.spec.model_number}")
        if set(dict(snapshot.closures)) != set(self._outputs) or set(dict(snapshot.outputs_on)) != set(self._outputs):
            raise InvalidSnapshot(f"the snapshot's outputs differ from the {self.spec.model_number}'s: {', '.join(self._outputs)}")
        if snapshot.register_quanta < 0 or snapshot.reverse_quanta < 0:
            raise InvalidSnapshot("a snapshot's registers cannot be negative")
        if (snapshot.stream is not None) != (snapshot.mode == "samples"):
            raise InvalidSnapshot("the snapshot's open line cycle does not match its mode")
        if snapshot.calibration_state is not None and self.calibration is None:
            raise InvalidSnapshot("the snapshot is of a calibrated meter; give this meter the same calibration")
        self._quanta = int(snapshot.register_quanta)
        self._reverse_quanta = int(snapshot.reverse_quanta)
        self._closures = {name: int(n) for name, n in snapshot.closures}
        self._output_on = {name: bool(on) for name, on in snapshot.outputs_on}
        self._leds = LedStates(snapshot.power_led, snapshot.load_led, snapshot.reverse_led)
        self._powered = bool(snapshot.powered)
        self._active = {(EventKind(kind), element) for kind, element in snapshot.active}
        self._judged_volts = None if snapshot.judged_volts is None else np.array(snapshot.judged_volts, float)
        self._judged_amps = None if snapshot.judged_amps is None else np.array(snapshot.judged_amps, float)
        self._time_s = float(snapshot.time_s)
        self._mode = snapshot.mode
        self._closed = bool(snapshot.closed)
        self._stream = snapshot.stream
        self._calibration_state = snapshot.calibration_state

    # ----------------------------------------------------------------- feeding it
    def feed(
        self,
        volts: Any,
        amps: Any,
        sample_rate_hz: float,
        *,
        amps_are: str = "primary",
    ) -> Update:
        """Measure a chunk of samples and register it.

        Parameters
        ----------
        volts : (elements, n) terminal voltages L–N [V]; 1-D for a single element
        amps : (elements, n) CT currents [A], primary (default) or secondary (multiplied
            by the spec's CT ratio)
        sample_rate_hz : the uniform sample rate [Hz]; the same for the whole stream

        Bad input raises :class:`InvalidSamples` and leaves the meter untouched.
        """
        self._check_open("samples")
        v, a, fs = self._validated(volts, amps, sample_rate_hz, amps_are)
        state = self._stream or LineCycleState.start(self.spec.elements, fs)
        if state.sample_rate_hz != fs:
            raise InvalidSamples(
                f"sample rate changed from {state.sample_rate_hz:g} Hz to {fs:g} Hz in one stream; "
                "start a new meter (or resample) for a different rate"
            )
        calibration_state = self._calibration_state
        if self.calibration is not None:
            if calibration_state is None:
                calibration_state = self.calibration.initial_state(self.spec.elements, fs)
            v, a, calibration_state = self.calibration.apply(v, a, fs, calibration_state)
        block, new_state = measure_chunk(
            v, a, state, hysteresis_v=self.hysteresis_v, tracking_min_hz=self.tracking_min_hz
        )
        self._reject_non_finite(block, new_state, v, a)
        clipped = self._clipping_events(v, a, state)
        self._stream = new_state
        self._calibration_state = calibration_state
        return self._process(block, list(clipped))

    def feed_cycles(self, block: CycleBlock) -> Update:
        """Register per-cycle quantities directly (the phasor path)."""
        self._check_open("cycles")
        if block.elements != self.spec.elements:
            raise InvalidSamples(
                f"{self.spec.prefix} has {self.spec.elements} element(s); the cycles carry {block.elements}"
            )
        finite = [np.isfinite(x).all() for x in (block.power_w, block.energy_wh, block.volts_rms,
                                                   block.amps_rms, block.duration_s, block.start_s)]
        if not all(finite):
            raise InvalidSamples("per-cycle quantities contain NaN or infinite values; nothing registered")
        if block.count and (block.duration_s <= 0).any():
            raise InvalidSamples("per-cycle durations must be positive; nothing registered")
        return self._process(block, [])

    def close(self) -> Update:
        """End the stream: the trailing partial cycle is measured and registered."""
        if self._closed:
            raise MinimeterError("the meter is already closed")
        self._closed = True
        if self._stream is None or self._stream.tail_volts.shape[1] == 0:
            return self._process(CycleBlock.empty(self.spec.elements), [])
        e = self.spec.elements
        empty = np.zeros((e, 0))
        block, self._stream = measure_chunk(
            empty, empty, self._stream, hysteresis_v=self.hysteresis_v,
            tracking_min_hz=self.tracking_min_hz, final=True,
        )
        return self._process(block, [])

    # ----------------------------------------------------------------- validation
    def _check_open(self, mode: str) -> None:
        if self._closed:
            raise MinimeterError("the meter is closed; create a new one to measure another stream")
        if self._mode is not None and self._mode != mode:
            raise MinimeterError(
                f"this meter is fed {self._mode}; it cannot also be fed {mode} (one timeline per meter)"
            )
        self._mode = mode

    def _validated(self, volts: Any, amps: Any, sample_rate_hz: Any, amps_are: str):
        try:
            fs = float(sample_rate_hz)
        except (TypeError, ValueError):
            raise InvalidSamples(f"sample rate must be a number of hertz, got {sample_rate_hz!r}") from None
        if not math.isfinite(fs) or fs <= 0:
            raise InvalidSamples(f"sample rate must be positive and finite, got {sample_rate_hz!r} Hz")
        e = self.spec.elements
        arrays = []
        for name, x in (("volts", volts), ("amps", amps)):
            try:
                arr = np.asarray(x, dtype=float)
            except (TypeError, ValueError):
                raise InvalidSamples(f"{name} must be numeric samples") from None
            if arr.ndim == 1 and e == 1:
                arr = arr[np.newaxis, :]
            if arr.ndim != 2 or arr.shape[0] != e:
                raise InvalidSamples(
                    f"{name} must have shape (elements, n) = ({e}, n) for a {self.spec.prefix} "
                    f"({e} element{'s' if e > 1 else ''}); got shape {arr.shape}"
                )
            arrays.append(np.ascontiguousarray(arr))
        v, a = arrays
        if v.shape != a.shape:
            raise InvalidSamples(
                f"mismatched lengths: volts has {v.shape[1]} samples per channel, amps has {a.shape[1]}"
            )
        if amps_are == "secondary":
            a = a * self.spec.ct_ratio
        elif amps_are != "primary":
            raise InvalidSamples(f"amps_are must be 'primary' or 'secondary', got {amps_are!r}")
        return v, a, fs

    def _reject_non_finite(self, block: CycleBlock, state: LineCycleState, v, a) -> None:
        """NaN/inf anywhere shows in the sums of v² or i² of its cycle, or in the tail."""
        sums_ok = np.isfinite(block.volts_rms).all() and np.isfinite(block.amps_rms).all()
        tail_ok = np.isfinite(state.tail_volts).all() and np.isfinite(state.tail_amps).all()
        if sums_ok and tail_ok:
            return
        for name, x in (("volts", v), ("amps", a)):
            bad = np.argwhere(~np.isfinite(x))
            if bad.size:
                ch, k = (int(i) for i in bad[0])
                raise InvalidSamples(
                    f"{name}[{ch}] has a non-finite sample ({x[ch, k]}) at index {k} of this chunk; "
                    "nothing from the chunk was registered"
                )
        raise InvalidSamples("the samples overflow to infinite products; nothing was registered")

    def _clipping_events(self, v: np.ndarray, a: np.ndarray, state: LineCycleState) -> list[Event]:
        events = []
        for kind_name, x, full in (("voltage", v, self.full_scale_v), ("current", a, self.full_scale_a)):
            if x.size == 0 or max(x.max(), -x.min()) < full:
                continue
            over = np.abs(x) >= full
            for ch in np.flatnonzero(over.any(axis=1)).tolist():      # one event per clipped input
                k = int(np.argmax(over[ch]))
                t = (state.next_index + k) / state.sample_rate_hz
                events.append(Event(
                    t, EventKind.CLIPPED, True, ch + 1, float(x[ch, k]),
                    f"{kind_name} input {ch + 1} at or beyond full scale ({full:.1f}): samples clipped, "
                    "accuracy not guaranteed", kind_name,
                ))
        return events

    # ----------------------------------------------------------------- per-cycle judgement
    def _process(self, block: CycleBlock, events: list[Event]) -> Update:
        transitions: list[Transition] = []
        led_changes: list[LedChange] = []
        step = _MAX_CYCLES_PER_STEP
        if block.count:
            # int64 running sums of quanta inside a step must stay below 2**62
            largest = float(np.abs(block.net_energy_wh).max()) * QUANTA_PER_WH
            step = int(max(1, min(step, (1 << 62) // max(int(largest) + 1, 1))))
        for lo in range(0, block.count, step):
            part = block.slice(lo, lo + step) if block.count > step else block
            self._step(part, transitions, led_changes, events)
        events.sort(key=lambda ev: ev.time_s)
        return Update(block, tuple(transitions), tuple(led_changes), self._leds, tuple(events), self.watt_hours)

    def _step(self, b: CycleBlock, transitions: list, led_changes: list, events: list) -> None:
        spec = self.spec
        end_s = b.end_s
        short = b.partial & (b.duration_s < 0.999 / self.tracking_min_hz)
        volts = _judged_rms(b.volts_rms, short, self._judged_volts)
        amps = _judged_rms(b.amps_rms, short, self._judged_amps)
        self._judged_volts, self._judged_amps = volts[:, -1].copy(), amps[:, -1].copy()
        powered = (volts >= self.supply_low_v).any(axis=0)
        over_v = volts > self.supply_high_v
        in_range = ((volts >= self.supply_low_v) & ~over_v).any(axis=0)
        power_led = powered & in_range & ~over_v.any(axis=0)
        starting = (amps >= self.starting_detect_a).any(axis=0)
        running = powered & starting
        net_q = to_quanta(b.net_energy_wh)
        forward_q = np.where(running & (net_q > 0), net_q, 0)
        reverse_q = np.where(running & (net_q < 0), -net_q, 0)
        net_w = b.net_power_w
        negative = net_w < -self.reverse_deadband_w
        big = (amps >= spec.reverse_led_min_current_a).any(axis=0)
        reverse_led = _carry_forward(
            np.where(~powered, 0, np.where(big & ~b.partial, negative.astype(int), -1)), self._leds.reverse
        )

        step_transitions = self._advance_outputs(b, powered, forward_q)
        transitions.extend(step_transitions)
        self._reverse_quanta += int(reverse_q.sum())
        self._time_s = float(end_s[-1])

        # LEDs: power and reverse judged at each cycle's end; load follows output 10.
        led_changes.extend(LedChange("power", bool(power_led[i]), float(b.start_s[i]))
                           for i in _flips(power_led, self._leds.power))
        led_changes.extend(LedChange("reverse", bool(reverse_led[i]), float(end_s[i]))
                           for i in _flips(reverse_led, self._leds.reverse))
        load = self._leds.load
        for tr in step_transitions:
            if tr.output == "10" and tr.state != load:
                load = tr.state
                led_changes.append(LedChange("load", load, tr.time_s))
        led_changes.sort(key=lambda ch: ch.time_s)
        self._leds = LedStates(power=bool(power_led[-1]), load=load, reverse=bool(reverse_led[-1]))

        self._judge_events(b, volts, amps, powered, over_v, starting, negative, net_w, events)

    def _advance_outputs(self, b: CycleBlock, powered: np.ndarray, forward_q: np.ndarray) -> list[Transition]:
        """Add ``forward_q`` [quanta per cycle] to the register and find the outputs'
        transitions: energy transitions inside powered runs; every output forced open
        while unpowered. The supply is judged per cycle, so power changes are stamped at
        the cycle's start."""
        run_edges = np.flatnonzero(np.diff(powered.astype(np.int8))) + 1
        bounds = np.concatenate(([0], run_edges, [b.count]))
        step_transitions: list[Transition] = []
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            run: list[Transition] = []
            if powered[lo]:
                if not self._powered:
                    self._powered = True
                    self._power_outputs(True, float(b.start_s[lo]), run)
                seg_q = forward_q[lo:hi]
                for name, kh in self._outputs.items():
                    run.extend(find_transitions(
                        name, kh, self._quanta, seg_q, b.start_s[lo:hi], b.duration_s[lo:hi]
                    ))
                self._quanta += int(seg_q.sum())
            elif self._powered:
                self._powered = False
                self._power_outputs(False, float(b.start_s[lo]), run)
            run.sort(key=lambda tr: tr.time_s)
            for tr in run:
                self._output_on[tr.output] = tr.state
                if tr.state and tr.cause == "energy":
                    self._closures[tr.output] += 1
            step_transitions.extend(run)
        return step_transitions

    def _power_outputs(self, on: bool, time_s: float, out: list) -> None:
        """Power lost: every closed output opens. Power back: each output takes the state
        the register gives it (S7.1: the register is kept)."""
        for name, kh in self._outputs.items():
            target = output_state(self._quanta, kh) if on else False
            if target != self._output_on[name]:
                out.append(Transition(name, target, time_s, "power-restore" if on else "power-loss"))

    def _judge_events(self, b, volts, amps, powered, over_v, starting, negative, net_w, events: list) -> None:
        """Raise and clear events on the edges of each condition. Current, power-factor,
        frequency and reverse-power conditions are judged on whole cycles only."""
        spec = self.spec
        t = b.end_s
        whole = ~b.partial
        power_factor = b.power_factor           # (e, m), computed once

        def edges(condition, values, kind, element, raised, cleared, code=None, times=t):
            key = (kind, element)
            was = key in self._active
            states = condition if code is None else _carry_forward(code, was)
            for i in _flips(states, was):
                on = bool(states[i])
                events.append(Event(float(times[i]), kind, on, element, float(values[i]),
                                    raised(float(values[i])) if on else cleared(float(values[i]))))
            if states.size:
                if states[-1]:
                    self._active.add(key)
                else:
                    self._active.discard(key)

        edges(~powered, volts.max(axis=0), EventKind.POWER_LOSS, None,
              lambda x: f"power lost: supply {x:.1f} V below {spec.supply_min_v:g} V — registering stopped, register kept",
              lambda x: f"power restored: supply {x:.1f} V", times=b.start_s)   # as the outputs and Power LED
        for k in range(b.elements):
            leg = f"L{k + 1}"
            edges(volts[k] < self.supply_low_v, volts[k], EventKind.UNDER_VOLTAGE, k + 1,
                  lambda x, leg=leg: f"{leg}–N {x:.1f} V below {spec.supply_min_v:g} V",
                  lambda x, leg=leg: f"{leg}–N {x:.1f} V back above {spec.supply_min_v:g} V")
            edges(over_v[k], volts[k], EventKind.OVER_VOLTAGE, k + 1,
                  lambda x, leg=leg: f"{leg}–N {x:.1f} V above {spec.supply_max_v:g} V — Power LED off, still measuring",
                  lambda x, leg=leg: f"{leg}–N {x:.1f} V back within {spec.supply_max_v:g} V")
            ct = f"CT{k + 1}"
            over_i = np.where(powered & whole, (amps[k] > spec.max_primary_a).astype(int), -1)
            edges(None, amps[k], EventKind.OVER_CURRENT, k + 1,
                  lambda x, ct=ct: f"{ct} {x:.1f} A above the {spec.max_primary_a:g} A maximum (110 % of {spec.ct_rating})",
                  lambda x, ct=ct: f"{ct} {x:.1f} A back within rating", code=over_i)
            pf = power_factor[k]
            judged = powered & whole & (amps[k] >= self.starting_detect_a) & np.isfinite(pf)
            low_pf = np.where(judged, (np.abs(pf) < spec.power_factor_min).astype(int), -1)
            edges(None, pf, EventKind.LOW_PF, k + 1,
                  lambda x, k=k: f"element {k + 1} power factor {x:.2f} below {spec.power_factor_min:g}: accuracy not guaranteed",
                  lambda x, k=k: f"element {k + 1} power factor {x:.2f} back within range", code=low_pf)
        f = b.frequency_hz
        f_lo = spec.frequency_min_hz * (1 - FREQUENCY_TOLERANCE)
        f_hi = spec.frequency_max_hz * (1 + FREQUENCY_TOLERANCE)
        f_code = np.where(powered & np.isfinite(f), ((f < f_lo) | (f > f_hi)).astype(int), -1)
        edges(None, np.nan_to_num(f), EventKind.FREQUENCY, None,
              lambda x: f"line frequency {x:.2f} Hz outside {f_lo:g}–{f_hi:g} Hz (50–60 Hz ± {FREQUENCY_TOLERANCE:.0%})",
              lambda x: f"line frequency {x:.2f} Hz back within range", code=f_code)
        rev_code = np.where(powered & starting & whole, negative.astype(int), -1)
        edges(None, net_w, EventKind.REVERSE_POWER, None,
              lambda x: f"net power {x:.1f} W is negative: not registered (check CT orientation and phasing)",
              lambda x: f"net power {x:.1f} W forward again", code=rev_code)


_METER_KEYWORDS = {
    "calibration", "register_wh", "register_quanta", "hysteresis_v", "tracking_min_hz", "reverse_deadband_w", "full_scale_v", "full_scale_a",
}
