"""The Meter: the one stateful object (SPEC §4–§8).

It holds the spec, the exact register, the line cycle still open between chunks, the
outputs' and LEDs' states and the events' conditions. Two ways in, one way down:

* :meth:`Meter.feed` takes sampled voltage and current, measures line cycles
  (:mod:`minimeter.meter.metrology`) and passes them on;
* :meth:`Meter.feed_cycles` takes per-cycle quantities directly (the phasor path of
  :mod:`minimeter.sources.service`), for days or years of simulated service.

Both end in the same code: the register, the pulse outputs, the three LEDs and the
events are judged once per line cycle — the common cycles (whole, powered, no event to
raise or clear) in one compiled pass (:mod:`minimeter.meter._judge`), the others
vectorised over the cycles of a chunk; either way gives the same bits.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from minimeter.meter.catalog import MeterSpec, meter_spec
from minimeter.errors import InvalidOption, InvalidSamples, MinimeterError
from minimeter.meter import _kernels
from minimeter.meter import _judge as _compiled    # (core has a function _judge of its own)
from minimeter.meter.metrology import (SECONDS_PER_HOUR, CycleBlock, CycleRuns, LineCycleState, made,
                                      measure_chunk)
from minimeter.meter.outputs import Records, Transition, half_quanta, output_edges, output_state
from minimeter.meter.register import MAX_CYCLE_WH, QUANTA_PER_WH, counter_reading, lcd_text, to_quanta, watt_hours
from minimeter.meter.snapshot import EventKind, InvalidSnapshot, MeterSnapshot

_MAX_CYCLES_PER_STEP = 1 << 20      # cycles judged at once (also bounded so int64 sums of quanta cannot overflow)
FREQUENCY_TOLERANCE = 0.02          # ±2 % around 50–60 Hz before a frequency event (49.0–61.2 Hz)
REVERSE_DEADBAND_W = 1.0            # |net P| below this is not "negative" for the reverse LED
# Decisions: a meter must work at its rated limits, but a per-cycle rms scatters around a
# supply held exactly at 102 V or 138 V. So the supply is judged out of range only beyond a
# ±0.5 % band outside 102–138 V (the meter's own voltage tolerance).
SUPPLY_TOLERANCE = 0.005
# Starting current (S4.5; decision, issue 16): judged per element on the *active* current
# |P| / V — the part of the current in step with the voltage — smoothed over cycles
# (y += α (x − y), α = 1/8: about 8 cycles), or on one cycle when that cycle alone is
# twice the threshold (a real load starts at once). ADC noise and offset are not in step
# with the voltage: with the 'typical' front end's 0.15 A rms noise and 0.9 A offset
# the smoothed active current of an open CT scatters by σ ≈ 0.007 A at 2 kHz (0.014 A at
# 500 Hz), where the rms current judged before (0.15–0.92 A) sat at or above the threshold. The
# threshold is 90 % of the starting current (0.18 A on 200 A): so that 0.2 A registers
# through a front end reading up to 3 % low (the 'typical' CT uncalibrated) with the
# smoothed estimate's noise (σ ≈ 0.005 A at 4 kHz) 2.8 σ clear. SPEC S4.5's "nothing below
# the starting current" therefore holds below 90 % of it; a real load between 90 and 100 %
# may register — this replaces the 80 % band on rms current.
STARTING_DETECT_FRACTION = 0.9
STARTING_SMOOTHING = 1 / 8
STARTING_SETTLED_FRACTION = 1e-6    # the smoothed current is taken as settled within 1e-6 × the threshold
# Hysteresis of the threshold events (S8.1): a condition raised beyond its limit clears
# only once back inside by this band, so a quantity held at a limit raises one event.
PF_CLEAR_BAND = 0.02                # low PF clears at |PF| ≥ 0.5 · 1.02
CURRENT_CLEAR_BAND = 0.02           # over-current clears at ≤ 98 % of the maximum
FREQUENCY_CLEAR_BAND = 0.01         # clears within 50 · 0.99 – 60 · 1.01 Hz
# Low PF is judged where the element's rms current is in the manual's accuracy range
# (from 1 % of rating, 2 A on 200 A: ten times the starting current), so a front end's
# offset on an open CT (0.9 A rms on 'typical') is not read as a load of PF ≈ 0.
LOW_PF_MIN_CURRENT_FACTOR = 10.0
# S4.8: a partial cycle whose rms reaches 10 % of the lowest supply is partly alive (the
# supply went or came back inside it) and is judged on the whole cycle beside it.
ALIVE_FRACTION = 0.1

# The stated bounds of the Meter API (SPEC S15.1; the table in the Meter's docstring and
# the README). Beyond them a call raises InvalidOption / InvalidSamples naming the input.
MIN_SAMPLE_RATE_HZ = 500.0          # ≥ 7 samples in a 65 Hz cycle (S4.7's accuracy needs ≥ 2 kHz)
MAX_SAMPLE_RATE_HZ = 10e6
TRACKING_MIN_HZ_BOUNDS = (1.0, 45.0)    # below 45 Hz (S4.7's lowest line frequency), above DC
MAX_REGISTER_WH = 1e12              # 1 TWh: over a century at the largest meter's ceiling
MAX_REVERSE_DEADBAND_W = 1000.0
INPUT_CEILING_MULTIPLE = 10.0       # samples beyond 10 × the default full scale are not a front end's
MAX_CYCLE_S = 3600.0                # a per-cycle quantity's duration (phasor path): hour-long aggregates at most
# Runs of identical cycles (CycleRuns, the phasor path by segment): one call's |net energy|
# at most 2^24 Wh (16.8 MWh: the edges it makes stay a few million per output), and a
# run's quanta in one row of the int64 arithmetic at most 2^56 (longer runs are split).
MAX_RUNS_WH = float(1 << 24)
MAX_RUN_CYCLES = 1e12              # cycles in one call: ~530 years at 60 Hz
ROW_QUANTA_MAX = 1 << 56
_CAUSES = ("energy", "power-loss", "power-restore")
_NO_ROWS = np.zeros(0, np.int64)
_SETTLING_CYCLES = 8     # cycles judged the general way where an event or LED must settle before the one pass
_CHANGED_IN_PLACE = ("_output_on", "_closures", "_active")     # the Meter's only attributes changed in place
_NO_ROWS.setflags(write=False)
_NO_AMPS = np.zeros(0)
_LEDS = ("power", "load", "reverse")


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
    """What one call of :meth:`Meter.feed` (or ``feed_cycles``, ``close``) produced:
    the cycles registered (:class:`CycleRuns` when runs were fed), and sequences of
    transitions and LED changes in time order (read-only, made objects when read)."""

    cycles: CycleBlock | CycleRuns
    transitions: Sequence[Transition]
    led_changes: Sequence[LedChange]
    leds: LedStates
    events: tuple[Event, ...]
    watt_hours: float          # the register after this update [Wh]
    quantities: Any = None     # beyond kWh (S12, a meter with quantities=True): a meter.quantities.QuantityUpdate


def _carry_forward(code: np.ndarray, initial: bool) -> np.ndarray:
    """Per-cycle states from codes 1 (on), 0 (off), -1 (keep the last state)."""
    if code.size == 0:
        return code.astype(bool)
    if not (code == (0 if initial else 1)).any():          # never leaves the initial state
        return np.full(code.size, initial)
    idx = np.where(code >= 0, np.arange(code.size), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, code[np.maximum(idx, 0)] == 1, initial)


@dataclass(frozen=True)
class _Judgement:
    """What the limits are judged on, per cycle (S4.8): the rms values and active power,
    whether they are a neighbour's, and whether the supply stayed up with no zero crossing
    for 1/tracking_min_hz (a frequency below it)."""

    volts: np.ndarray      # (e, m) [V]
    amps: np.ndarray       # (e, m) [A]
    power: np.ndarray      # (e, m) [W]
    borrowed: np.ndarray   # (m,) bool: a partial cycle judged on the whole cycle beside it
    slow: np.ndarray       # (m,) bool

    def slice(self, lo: int, hi: int) -> "_Judgement":
        return _Judgement(self.volts[:, lo:hi], self.amps[:, lo:hi], self.power[:, lo:hi],
                          self.borrowed[lo:hi], self.slow[lo:hi])

    def take(self, rows: np.ndarray) -> "_Judgement":
        return _Judgement(self.volts[:, rows], self.amps[:, rows], self.power[:, rows], self.borrowed[rows], self.slow[rows])


def _judge(block: CycleBlock, prev_whole: np.ndarray | None, *, stream_start: bool,
           final: bool, alive_v: float, powered_v: float, long_s: float) -> _Judgement:
    """The values each cycle is judged on (SPEC S4.8). A whole cycle: its own. A partial
    cycle (cut at the stream's edge, or where no zero crossing came in time) that is
    partly alive (rms ≥ ``alive_v``), or is the stream's first or last fragment, takes
    the values of the whole cycle beside it — the one before, else the one after — so
    the cycle in which the supply goes or comes back is judged on the supply's own
    voltage, not on a fragment diluted by the dead part: its energy (nothing flows while
    the voltage is 0) is registered in full. Otherwise a partial cycle is judged on its
    own. ``prev_whole``: (3e,) Vrms, Irms, P of the cycle before the block, if it was whole."""
    m, e = block.count, block.elements
    if not block.partial.any():          # every cycle whole: judged on its own (the common case)
        none = np.zeros(m, bool)
        return _Judgement(block.volts_rms, block.amps_rms, block.power_w, none, none)
    whole = ~block.partial
    own = np.concatenate((block.volts_rms, block.amps_rms, block.power_w))
    before = np.concatenate((own[:, :1] if prev_whole is None else prev_whole[:, None], own[:, :-1]), axis=1)
    prev_is_whole = np.concatenate(([prev_whole is not None], whole[:-1]))
    next_is_whole = np.concatenate((whole[1:], [False]))
    edge = np.zeros(m, bool)
    edge[0] |= stream_start
    edge[-1] |= final
    own_max = block.volts_rms.max(axis=0)
    borrow = block.partial & (edge | (own_max >= alive_v))
    use_prev = borrow & prev_is_whole
    use_next = borrow & ~use_prev & next_is_whole
    judged = own.copy()
    judged[:, use_prev] = before[:, use_prev]
    nxt = np.flatnonzero(use_next)
    judged[:, nxt] = own[:, nxt + 1]
    own_up = own_max >= powered_v
    slow = block.partial & (block.duration_s >= long_s) & own_up & np.concatenate((own_up[1:], [False]))
    return _Judgement(judged[:e], judged[e:2 * e], judged[2 * e:], use_prev | use_next, slow)


def _rows(block: CycleBlock, take: np.ndarray, offsets: np.ndarray | None = None) -> CycleBlock:
    """Rows ``take`` of ``block`` (a row listed twice comes twice); with ``offsets``,
    each row starts that many of its cycles later (a run cut into pieces)."""
    fields = {f.name: getattr(block, f.name) for f in dataclasses.fields(CycleBlock)}
    fields = {name: x if x is None else np.take(x, take, axis=-1) for name, x in fields.items()}
    if offsets is not None:
        fields["start_s"] = fields["start_s"] + offsets * fields["duration_s"]
    return CycleBlock(**fields)


def _capped(block: CycleBlock, repeats: np.ndarray) -> tuple[CycleBlock, np.ndarray]:
    """Runs cut so that no row carries more than ``ROW_QUANTA_MAX`` quanta."""
    quanta = np.abs(block.net_energy_wh) * QUANTA_PER_WH * repeats
    pieces = np.minimum(np.maximum(np.ceil(quanta / ROW_QUANTA_MAX), 1), repeats).astype(np.int64)
    if (pieces == 1).all():
        return block, repeats
    take = np.repeat(np.arange(pieces.size), pieces)
    index = np.arange(take.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)     # piece within its run
    base, extra = repeats[take] // pieces[take], repeats[take] % pieces[take]
    offsets = index * base + np.minimum(index, extra)
    return _rows(block, take, offsets), base + (index < extra)


def _step_rows(block: CycleBlock, repeats: np.ndarray | None) -> int:
    """Rows judged in one step: at most ``_MAX_CYCLES_PER_STEP``, and few enough that the
    step's int64 running sums of quanta stay below 2^62."""
    row_quanta = np.abs(block.net_energy_wh) * (1 if repeats is None else repeats)
    largest = float(row_quanta.max()) * QUANTA_PER_WH
    return int(max(1, min(_MAX_CYCLES_PER_STEP, (1 << 62) // max(int(largest) + 1, 1))))


def _joined(first: CycleBlock, second: CycleBlock) -> CycleBlock:
    """Two consecutive blocks as one."""
    if not first.count:
        return second
    def cat(name: str) -> np.ndarray | None:
        a, b = getattr(first, name), getattr(second, name)
        return None if a is None or b is None else np.concatenate((a, b), axis=-1)
    return CycleBlock(**{f.name: cat(f.name) for f in dataclasses.fields(CycleBlock)})


def _finite_floats(value: Any, count: int) -> bool:
    """Whether ``value`` is a tuple of ``count`` finite real numbers."""
    return (isinstance(value, tuple) and len(value) == count
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value))


def _prev_whole_of(snapshot: MeterSnapshot) -> np.ndarray | None:
    """The whole cycle before the next one a snapshot carries (older snapshots: no power, so none)."""
    parts = (snapshot.judged_volts, snapshot.judged_amps, snapshot.judged_power_w)
    return None if any(p is None for p in parts) else np.array([x for p in parts for x in p], float)


def _cycle_values(block: CycleBlock) -> tuple[float, ...]:
    """A one-cycle block as plain floats (a snapshot carries the cycle held back)."""
    head = (block.start_s[0], block.duration_s[0], block.frequency_hz[0], float(block.partial[0]))
    rows = (block.power_w, block.energy_wh, block.volts_rms, block.amps_rms)
    return tuple(float(x) for x in head) + tuple(float(x) for r in rows for x in r[:, 0])


def _cycle_from_values(values: tuple[float, ...], elements: int) -> CycleBlock:
    head = [np.array([values[k]]) for k in range(3)]
    rows = np.array(values[4:], float).reshape(4, elements, 1)
    return CycleBlock(*head, np.array([bool(values[3])]), *rows)


def _real_number(name: str, value: Any, lo: float, hi: float, unit: str, *,
                 lo_open: bool = False, error: type[MinimeterError] = InvalidOption) -> float:
    """``value`` as a float if it is a real number in [lo, hi] (or (lo, hi]), else ``error``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise error(f"{name} must be a real number [{unit}], got {value!r}")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not (math.isfinite(x) and (x > lo if lo_open else x >= lo) and x <= hi):
        raise error(f"{name} must be {'>' if lo_open else '≥'} {lo:g} and ≤ {hi:g} {unit}, got {value!r}")
    return x


def max_hysteresis_v(spec: MeterSpec) -> float:
    """The deepest zero-crossing hysteresis a meter of ``spec`` takes: half the peak of its
    lowest powered supply [V]."""
    return 0.5 * math.sqrt(2) * spec.supply_min_v


def _check_samples(name: str, x: np.ndarray, ceiling: float, unit: str) -> None:
    """Every sample of ``x`` (e, n) finite and within ±``ceiling``, else InvalidSamples
    naming the first bad sample (S8.2, S15.1)."""
    if x.size == 0:
        return
    peak = np.maximum(x.max(axis=1), -x.min(axis=1))     # NaN propagates
    if np.all(peak <= ceiling):
        return
    ch = int(np.flatnonzero(~(peak <= ceiling))[0])
    bad = ~np.isfinite(x[ch])
    if bad.any():
        k = int(np.argmax(bad))
        raise InvalidSamples(f"{name}[{ch}] has a non-finite sample ({x[ch, k]}) at index {k} of this chunk; "
                             "nothing from the chunk was registered")
    k = int(np.argmax(np.abs(x[ch]) > ceiling))
    raise InvalidSamples(
        f"{name}[{ch}] sample {x[ch, k]:.6g} {unit} at index {k} is beyond the meter's input ceiling "
        f"±{ceiling:.6g} {unit} ({INPUT_CEILING_MULTIPLE:g} × full scale); nothing from the chunk was registered"
    )


def _real_array(name: str, x: Any) -> np.ndarray:
    """``x`` as a float array if it holds real numbers (bool, int, float); complex,
    object and text arrays are refused, never cut to a part of them."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        raise InvalidSamples(f"{name} must be an array of real samples") from None
    if arr.dtype.kind not in "biuf":
        what = "complex" if arr.dtype.kind == "c" else f"{arr.dtype} (not real numbers)"
        raise InvalidSamples(f"{name} must be real samples, got a {what} array; nothing registered")
    return arr.astype(float, copy=False)


def _zero_width_defined(block: CycleBlock) -> CycleBlock:
    """A cycle the metrology cut to zero width (a forced cut landing on the interpolated
    crossing) holds no time and, to rounding, no energy: under half a register quantum it
    registers nothing, so it is dropped (if it held more, it stays with power and rms 0,
    not 0/0)."""
    empty = block.duration_s <= 0
    if not empty.any():
        return block
    nothing = np.abs(block.net_energy_wh) * QUANTA_PER_WH < 0.5
    keep = np.flatnonzero(~(empty & nothing))
    block = CycleBlock(*(np.take(getattr(block, f.name), keep, axis=-1) for f in dataclasses.fields(CycleBlock)))
    empty = block.duration_s <= 0
    zero = lambda x: np.where(empty, 0.0, x)     # noqa: E731
    return replace(block, power_w=zero(block.power_w), volts_rms=zero(block.volts_rms), amps_rms=zero(block.amps_rms))


def _starting_quanta(register_wh: Any, register_quanta: Any) -> int:
    """The register a new meter starts from, exactly [quanta] (bounds: see :class:`Meter`)."""
    if register_quanta is None:
        return int(round(_real_number("register_wh", register_wh, 0.0, MAX_REGISTER_WH, "Wh") * QUANTA_PER_WH))
    top = int(MAX_REGISTER_WH) * QUANTA_PER_WH
    if isinstance(register_quanta, bool) or not isinstance(register_quanta, (int, np.integer)) \
            or not 0 <= int(register_quanta) <= top:
        raise InvalidOption(f"register_quanta must be an integer from 0 to {top} (1e12 Wh), got {register_quanta!r}")
    return int(register_quanta)


def _hysteresis(beyond: np.ndarray, back: np.ndarray, judged: np.ndarray | None = None) -> np.ndarray:
    """Per-cycle codes for :func:`_carry_forward`: 1 beyond the limit, 0 back inside the
    clearing band, -1 (keep) in between or where not judged — one event for a quantity
    held at its limit (S8.1)."""
    code = np.where(beyond, 1, np.where(back, 0, -1))
    return code if judged is None else np.where(judged, code, -1)


def _quantity_engine(spec: MeterSpec, quantities: Any) -> Any:
    """The beyond-kWh pass (:mod:`minimeter.meter.quantities`) for ``quantities=True``:
    dips and swells against the declared voltage, the middle of the supply range (120 V)."""
    if not isinstance(quantities, bool):
        raise InvalidOption(f"quantities must be True or False, got {quantities!r}")
    if not quantities:
        return None
    from minimeter.meter.quantities import QuantityEngine      # (it imports this module)
    return QuantityEngine(spec.elements, 0.5 * (spec.supply_min_v + spec.supply_max_v))


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
    tracking_min_hz : lowest line frequency tracked [Hz]; a powered supply with no zero
        crossing for ``1 / tracking_min_hz`` raises a frequency event (S8.1)
    reverse_deadband_w : net power closer to zero than this is not "reverse" [W]
    full_scale_v, full_scale_a : the input range; samples at or beyond it are flagged
        as clipped [V], [A primary]. Defaults: 1.5 × 138 V × √2 and 2 × 110 % × √2 of
        the rating (a crest factor of 2 at maximum current).
    calibration : optional per-element correction applied to the samples before they
        are measured: an object with ``initial_state(elements, sample_rate_hz)`` and
        ``apply(volts, amps, sample_rate_hz, state) -> (volts, amps, state)``, pure
        (it returns a new state and leaves its inputs alone). See :mod:`minimeter.sources.frontend`.
    quantities : also measure beyond kWh (SPEC §12, :mod:`minimeter.meter.quantities`): IEEE
        1459 powers and harmonics per cycle and per IEC 61000-4-30 window (``Update.quantities``),
        the registers of :attr:`registers` (:meth:`reset_max_demand`), and dip, swell and
        interruption events against 120 V. Off by default: the kWh path keeps its speed.

    Bounds (SPEC S15.1). Every keyword and every argument of :meth:`feed` and
    :meth:`feed_cycles` is checked here, once; beyond its bound the call raises
    :class:`~minimeter.errors.InvalidOption` (keywords) or
    :class:`~minimeter.errors.InvalidSamples` (feeds) naming the input and the bound,
    and changes nothing (S15.2). Numbers are real (``bool``, ``str`` and complex refused).

    ==================== =====================================================================
    register_wh          0 … 1e12 Wh (``register_quanta``: an int, 0 … 1e12 · 2⁴⁰)
    hysteresis_v         0 … ½ · √2 · 102 V (half the lowest powered peak, 72.1 V)
    tracking_min_hz      1 … 45 Hz
    reverse_deadband_w   0 … 1000 W
    full_scale_v, _a     > 0 and ≤ the input ceiling
    input ceiling        10 × the default full scale: 2927 V; 6223 A on a 200 A meter
                         (:attr:`input_ceiling_v`, :attr:`input_ceiling_a`)
    sample_rate_hz       500 Hz … 10 MHz, one rate per stream
    volts, amps          real, finite, (elements, n), equal lengths, |x| ≤ the ceiling (amps
                         after ``amps_are='secondary'`` × CT ratio; again after calibration)
    amps_are             'primary' or 'secondary'
    per-cycle (phasor)   a CycleBlock of this meter's elements; finite; 0 < duration ≤ 3600 s;
                         start ≥ 0; 0 ≤ Vrms ≤ ceiling V; 0 ≤ Irms ≤ ceiling A; frequency
                         NaN (partial) or > 0; per element |P| and |E|/duration ≤ ceiling V ×
                         ceiling A; |net E| ≤ 2²² Wh in one cycle (the register's int64 step)
    runs (CycleRuns)     the cycles as above; repeats an int array, one per cycle, ≥ 1 (1 for a
                         partial cycle); ≤ 2⁴⁰ cycles and |net E| ≤ 2²⁴ Wh in one call
    ==================== =====================================================================

    So the energy the meter can be handed is at most ``ceiling V × ceiling A × elements``
    per second of the stream (3.6·10⁷ W on a 200 A two-element meter), and the output
    transitions one feed creates at most that energy ÷ (Kh/2) per output: memory grows with
    the length of the stream fed, never with an absurd value.
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
        quantities: bool = False,
    ) -> None:
        # (Long: each option's check and the state the meter starts from, once; see the class.)
        if not isinstance(spec, MeterSpec):
            raise InvalidOption(f"a Meter takes a MeterSpec (minimeter.meter.catalog.meter_spec), not a {type(spec).__name__}")
        self.spec = spec
        self.hysteresis_v = _real_number("hysteresis_v", hysteresis_v, 0.0, max_hysteresis_v(spec), "V")
        self.tracking_min_hz = _real_number("tracking_min_hz", tracking_min_hz, *TRACKING_MIN_HZ_BOUNDS, "Hz")
        self.reverse_deadband_w = _real_number("reverse_deadband_w", reverse_deadband_w, 0.0, MAX_REVERSE_DEADBAND_W, "W")
        self.supply_low_v = spec.supply_min_v * (1 - SUPPLY_TOLERANCE)     # below: unpowered
        self.supply_high_v = spec.supply_max_v * (1 + SUPPLY_TOLERANCE)    # above: over-voltage
        self.starting_detect_a = spec.starting_current_a * STARTING_DETECT_FRACTION
        default_v = 1.5 * spec.supply_max_v * math.sqrt(2)
        default_a = 2.0 * spec.max_primary_a * math.sqrt(2)
        self.input_ceiling_v = INPUT_CEILING_MULTIPLE * default_v     # [V peak]
        self.input_ceiling_a = INPUT_CEILING_MULTIPLE * default_a     # [A peak, primary]
        self.full_scale_v = default_v if full_scale_v is None else _real_number(
            "full_scale_v", full_scale_v, 0.0, self.input_ceiling_v, "V peak", lo_open=True)
        self.full_scale_a = default_a if full_scale_a is None else _real_number(
            "full_scale_a", full_scale_a, 0.0, self.input_ceiling_a, "A peak", lo_open=True)
        self._quanta = _starting_quanta(register_wh, register_quanta)
        if calibration is not None and not (callable(getattr(calibration, "initial_state", None))
                                            and callable(getattr(calibration, "apply", None))):
            raise InvalidOption("calibration must have initial_state(elements, sample_rate_hz) and "
                                f"apply(volts, amps, sample_rate_hz, state); got a {type(calibration).__name__}")
        self._reverse_quanta = 0
        self._outputs: dict[str, int] = {str(kh): kh for kh in spec.outputs_wh}
        if spec.counter_kh_wh:
            self._outputs["counter"] = spec.counter_kh_wh
        self._output_labels = tuple(self._outputs)                      # the transitions' output names
        self._output_on = {name: False for name in self._outputs}       # physical state
        self._halves = tuple(half_quanta(kh) for kh in self._outputs.values())    # each output's Kh/2 [quanta]
        self._halves_quanta = np.array(self._halves, np.int64)
        # the register modulo a common multiple of the outputs' periods Kh (≤ 1000·2^40 quanta) tells
        # where each output stands; beyond int64's headroom (no model of the catalog) 0: not used
        period = math.lcm(*(2 * half for half in self._halves))
        self._period = period if period < 1 << 61 else 0
        self._load_code = list(self._outputs).index("10") if "10" in self._outputs else -1   # the load LED's output
        self._steady_limits = self._judge_limits()
        self._closures = {name: 0 for name in self._outputs}
        self._leds = LedStates()
        self._powered = False
        self._prev_whole: np.ndarray | None = None     # (3e,) Vrms, Irms, P of the last cycle registered, if whole
        self._active: set[tuple[EventKind, int | None]] = set()     # event conditions now raised
        self.calibration = calibration
        self._calibration_state: Any = None
        self._stream: LineCycleState | None = None
        self._pending: CycleBlock | None = None    # a partial cycle held back for the one after it (S4.8)
        self._active_amps: np.ndarray | None = None     # smoothed active current per element [A] (S4.5)
        self._mode: str | None = None          # 'samples' or 'cycles'
        self._closed = False
        self._time_s = 0.0
        self._quantities = _quantity_engine(spec, quantities)     # the S12 pass, or None (off: kWh at full speed)
        self._quantities_state = None if self._quantities is None else self._quantities.initial()

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
        return self._output_labels

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
        e = self.spec.elements
        return MeterSnapshot(
            model_number=self.spec.model_number,
            register_quanta=self._quanta,
            reverse_quanta=self._reverse_quanta,
            closures=tuple(self._closures.items()),
            outputs_on=tuple(self._output_on.items()),
            power_led=self._leds.power, load_led=self._leds.load, reverse_led=self._leds.reverse,
            powered=self._powered,
            active=tuple(sorted(self._active, key=lambda key: (key[0].value, key[1] or 0))),
            judged_volts=None if self._prev_whole is None else tuple(float(x) for x in self._prev_whole[:e]),
            judged_amps=None if self._prev_whole is None else tuple(float(x) for x in self._prev_whole[e:2 * e]),
            judged_power_w=None if self._prev_whole is None else tuple(float(x) for x in self._prev_whole[2 * e:]),
            time_s=self._time_s,
            mode=self._mode,
            closed=self._closed,
            stream=self._stream,
            calibration_state=self._calibration_state,
            pending_cycle=None if self._pending is None else _cycle_values(self._pending),
            active_amps=None if self._active_amps is None else tuple(float(x) for x in self._active_amps),
            quantities=self._quantities_state,
        )

    def restore(self, snapshot: MeterSnapshot) -> None:
        """Continue from ``snapshot`` (of a meter of the same model), bit for bit: the
        next feed gives what the snapshotted meter's next feed would have given. A
        snapshot that does not fit raises :class:`InvalidSnapshot` and changes nothing."""
        self._check_snapshot(snapshot)
        self._load(snapshot)

    def _check_snapshot(self, snapshot: Any) -> None:
        if not isinstance(snapshot, MeterSnapshot):
            raise InvalidSnapshot(f"restore takes a MeterSnapshot, not a {type(snapshot).__name__}")
        if snapshot.model_number != self.spec.model_number:
            raise InvalidSnapshot(f"the snapshot is of a {snapshot.model_number}; this meter is a {self.spec.model_number}")
        names = set(self._outputs)
        try:
            closures, outputs_on = dict(snapshot.closures), dict(snapshot.outputs_on)
            for kind, element in snapshot.active:
                EventKind(kind)
                if element is not None and not (isinstance(element, int) and 1 <= element <= self.spec.elements):
                    raise ValueError(f"element {element!r}")
        except (TypeError, ValueError) as exc:
            raise InvalidSnapshot(f"the snapshot's outputs or conditions are malformed: {exc}") from None
        if set(closures) != names or set(outputs_on) != names:
            raise InvalidSnapshot(f"the snapshot's outputs differ from the {self.spec.model_number}'s: {', '.join(self._outputs)}")
        counts = [snapshot.register_quanta, snapshot.reverse_quanta, *closures.values()]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
            raise InvalidSnapshot("a snapshot's registers and closures must be non-negative integers")
        if snapshot.mode not in (None, "samples", "cycles"):
            raise InvalidSnapshot(f"the snapshot's mode {snapshot.mode!r} is not 'samples', 'cycles' or None")
        if not (isinstance(snapshot.time_s, (int, float)) and not isinstance(snapshot.time_s, bool) and math.isfinite(snapshot.time_s) and snapshot.time_s >= 0):
            raise InvalidSnapshot(f"the snapshot's time {snapshot.time_s!r} is not a finite, non-negative number of seconds")
        e = self.spec.elements
        for name in ("judged_volts", "judged_amps", "judged_power_w", "active_amps"):
            value = getattr(snapshot, name)
            if value is not None and not _finite_floats(value, e):
                raise InvalidSnapshot(f"the snapshot's {name} must be None or {e} finite numbers")
        flags = (snapshot.power_led, snapshot.load_led, snapshot.reverse_led, snapshot.powered, snapshot.closed)
        if not all(isinstance(flag, (bool, np.bool_)) for flag in flags):
            raise InvalidSnapshot("the snapshot's LED, powered and closed flags must be booleans")
        if (snapshot.stream is not None) != (snapshot.mode == "samples"):
            raise InvalidSnapshot("the snapshot's open line cycle does not match its mode")
        if snapshot.stream is not None:
            self._check_stream(snapshot.stream)
        if snapshot.calibration_state is not None and self.calibration is None:
            raise InvalidSnapshot("the snapshot is of a calibrated meter; give this meter the same calibration")
        pending = snapshot.pending_cycle
        if pending is not None and not (isinstance(pending, tuple) and len(pending) == 4 + 4 * e
                                        and _finite_floats(pending[:2], 2) and _finite_floats(pending[3:], 1 + 4 * e)
                                        and pending[1] > 0):
            raise InvalidSnapshot(f"the snapshot's held-back cycle must be {4 + 4 * e} numbers (finite but its frequency)")
        problem = None if snapshot.quantities is None or self._quantities is None \
            else self._quantities.check(snapshot.quantities)
        if problem:
            raise InvalidSnapshot(f"the snapshot's beyond-kWh state: {problem}")

    def _check_stream(self, stream: Any) -> None:
        """The open line cycle a snapshot carries: this meter's elements, a rate within
        bounds, finite samples of matching shapes."""
        e = self.spec.elements
        ok = (isinstance(stream, LineCycleState) and stream.elements == e
              and MIN_SAMPLE_RATE_HZ <= stream.sample_rate_hz <= MAX_SAMPLE_RATE_HZ
              and np.shape(stream.tail_volts) == np.shape(stream.tail_amps)
              and np.ndim(stream.tail_volts) == 2 and np.shape(stream.tail_volts)[0] == e
              and np.shape(stream.tail_start_share) == (3 * e,)
              and np.isfinite(stream.tail_volts).all() and np.isfinite(stream.tail_amps).all())
        if not ok:
            raise InvalidSnapshot(f"the snapshot's open line cycle is not a {e}-element stream of finite samples "
                                  f"at {MIN_SAMPLE_RATE_HZ:g} Hz – {MAX_SAMPLE_RATE_HZ:g} Hz")

    def _load(self, snapshot: MeterSnapshot) -> None:
        """Take every value of a checked snapshot (built first, then assigned)."""
        values = dict(
            _quanta=int(snapshot.register_quanta),
            _reverse_quanta=int(snapshot.reverse_quanta),
            _closures={name: int(n) for name, n in snapshot.closures},
            _output_on={name: bool(on) for name, on in snapshot.outputs_on},
            _leds=LedStates(bool(snapshot.power_led), bool(snapshot.load_led), bool(snapshot.reverse_led)),
            _powered=bool(snapshot.powered),
            _active={(EventKind(kind), element) for kind, element in snapshot.active},
            _prev_whole=_prev_whole_of(snapshot),
            _time_s=float(snapshot.time_s),
            _mode=snapshot.mode,
            _closed=bool(snapshot.closed),
            _stream=snapshot.stream,
            _calibration_state=snapshot.calibration_state,
            _pending=None if snapshot.pending_cycle is None else _cycle_from_values(snapshot.pending_cycle, self.spec.elements),
            _active_amps=None if snapshot.active_amps is None else np.array(snapshot.active_amps, float),
            _quantities_state=None if self._quantities is None else (snapshot.quantities or self._quantities.initial()),
        )
        for name, value in values.items():
            setattr(self, name, value)

    def _commit(self, block: CycleBlock, events: list[Event], *, final: bool = False,
                repeats: np.ndarray | None = None, measured: bool = False, **changes: Any) -> Update:
        """Apply ``changes`` (private attributes: the stream, the mode, …) and register
        ``block`` (see :meth:`_process`), all or nothing: whatever fails on the way, the
        meter is left exactly as before the call (S15.2)."""
        before = self._saved()
        try:
            for name, value in changes.items():
                setattr(self, name, value)
            return self._process(block, events, final, repeats, measured)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _saved(self) -> dict[str, Any]:
        """Every attribute, the containers changed in place (``_CHANGED_IN_PLACE``) copied
        (every other attribute is replaced, never changed in place): what :meth:`_commit`
        puts back when a call fails — a microsecond, where a full :meth:`state` snapshot
        cost tens."""
        before = self.__dict__.copy()
        for name in _CHANGED_IN_PLACE:
            before[name] = before[name].copy()
        return before

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

        Bad input (see the bounds in :class:`Meter`) raises :class:`InvalidSamples` and
        leaves the meter untouched: everything is computed first, the state committed last.
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
        names = ("volts", "amps")
        if self.calibration is not None:
            _check_samples("volts", v, self.input_ceiling_v, "V")    # the raw input, before the filter
            _check_samples("amps", a, self.input_ceiling_a, "A")
            if calibration_state is None:
                calibration_state = self.calibration.initial_state(self.spec.elements, fs)
            v, a, calibration_state = self.calibration.apply(v, a, fs, calibration_state)
            v, a = np.asarray(v, float), np.asarray(a, float)
            names = ("calibrated volts", "calibrated amps")
        # measure_chunk is pure: the samples are judged on the peaks its one pass finds,
        # before anything is committed (a scan of the samples only to name a bad one). Its
        # arithmetic is compiled (NumPy's error model: a zero-width cycle's 0/0 is NaN, no
        # warning; see _zero_width_defined).
        block, new_state, peaks = measure_chunk(
            v, a, state, hysteresis_v=self.hysteresis_v, tracking_min_hz=self.tracking_min_hz, peaks=True
        )
        peak_v, peak_a = peaks.volts.tolist(), peaks.amps.tolist()
        if not all(p <= self.input_ceiling_v for p in peak_v):     # NaN fails too
            _check_samples(names[0], v, self.input_ceiling_v, "V")
        if not all(p <= self.input_ceiling_a for p in peak_a):
            _check_samples(names[1], a, self.input_ceiling_a, "A")
        clipped = self._clipping_events(v, a, state, peak_v, peak_a)
        beyond = self._beyond("samples", v, a, fs, state.next_index, block)
        return self._measured(beyond, self._commit(block, clipped + beyond[1], measured=True, _mode="samples",
                                                   _stream=new_state, _calibration_state=calibration_state, **beyond[0]))

    def feed_cycles(self, block: CycleBlock | CycleRuns) -> Update:
        """Register per-cycle quantities directly (the phasor path): a :class:`CycleBlock`
        of cycles, or :class:`CycleRuns` — runs of identical cycles, each judged once and
        registered in closed form (n cycles of q quanta add n·q; the outputs' edges
        interpolate inside the run as they would cycle by cycle). Bounds: see :class:`Meter`."""
        self._check_open("cycles")
        runs = block if isinstance(block, CycleRuns) else None
        if runs is not None:
            block = runs.cycles
        self._check_cycles(block)
        repeats = None
        if runs is not None:
            repeats = self._checked_repeats(runs)
            self._check_runs_energy(block, repeats)
        beyond = self._beyond("cycles", block, repeats)
        return self._measured(beyond, self._commit(block, beyond[1], _mode="cycles", repeats=repeats, **beyond[0]))

    def close(self) -> Update:
        """End the stream: the trailing partial cycle is measured and registered."""
        if self._closed:
            raise MinimeterError("the meter is already closed")
        if self._stream is None or self._stream.tail_volts.shape[1] == 0:
            return self._commit(CycleBlock.empty(self.spec.elements), [], final=True, _closed=True)
        e = self.spec.elements
        empty = np.zeros((e, 0))
        block, stream = measure_chunk(
            empty, empty, self._stream, hysteresis_v=self.hysteresis_v,
            tracking_min_hz=self.tracking_min_hz, final=True,
        )
        beyond = self._beyond("samples", empty, empty, self._stream.sample_rate_hz, self._stream.next_index, block)
        return self._measured(beyond, self._commit(block, beyond[1], final=True, measured=True, _closed=True,
                                                   _stream=stream, **beyond[0]))

    # ----------------------------------------------------------------- beyond kWh (S12)
    def _beyond(self, path: str, *args: Any) -> tuple[dict, list[Event], Any]:
        """The S12 pass over what is being fed (pure): the state to commit with the rest,
        its power-quality events and its :class:`~minimeter.meter.quantities.QuantityUpdate`."""
        if self._quantities is None:
            return {}, [], None
        new, result = getattr(self._quantities, path)(self._quantities_state, *args)
        return {"_quantities_state": new}, list(result.events), result

    @staticmethod
    def _measured(beyond: tuple[dict, list[Event], Any], update: Update) -> Update:
        return update if beyond[2] is None else replace(update, quantities=beyond[2])

    @property
    def registers(self) -> Any:
        """The S12.2 registers (:class:`~minimeter.meter.energy.EnergyRegisters`), or None
        for a meter without ``quantities=True``."""
        return None if self._quantities_state is None else self._quantities_state.registers

    def reset_max_demand(self) -> Event:
        """Clear the maximum demand (S12.2) — its only reset — and return the event that
        logs it (kind 'demand-reset', value: the maximum cleared [W])."""
        if self._quantities_state is None:
            raise MinimeterError("this meter keeps no demand register (build it with quantities=True)")
        regs = self._quantities_state.registers
        self._quantities_state = replace(self._quantities_state, registers=regs.reset_max_demand())
        when = "" if regs.max_demand_time_s is None else f" (block from {regs.max_demand_time_s:g} s)"
        return Event(self._time_s, EventKind.DEMAND_RESET, True, None, regs.max_demand_w,
                     f"maximum demand {regs.max_demand_w:.1f} W{when} reset by command")

    # ----------------------------------------------------------------- validation
    def _check_open(self, mode: str) -> None:
        if self._closed:
            raise MinimeterError("the meter is closed; create a new one to measure another stream")
        if self._mode is not None and self._mode != mode:
            raise MinimeterError(
                f"this meter is fed {self._mode}; it cannot also be fed {mode} (one timeline per meter)"
            )

    def _validated(self, volts: Any, amps: Any, sample_rate_hz: Any, amps_are: Any):
        fs = _real_number("sample_rate_hz", sample_rate_hz, MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ, "Hz",
                          error=InvalidSamples)
        if not isinstance(amps_are, str) or amps_are not in ("primary", "secondary"):
            raise InvalidSamples(f"amps_are must be 'primary' or 'secondary', got {amps_are!r}")
        e = self.spec.elements
        arrays = []
        for name, x in (("volts", volts), ("amps", amps)):
            arr = _real_array(name, x)
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
            _check_samples("amps (secondary)", a, self.input_ceiling_a / self.spec.ct_ratio, "A")
            a = a * self.spec.ct_ratio
        return v, a, fs          # finite and within the ceilings: judged in feed, on the kernel's peaks

    def _check_cycles(self, block: Any) -> None:
        """The phasor path's per-cycle quantities within their bounds (see :class:`Meter`)."""
        if not isinstance(block, CycleBlock):
            raise InvalidSamples(f"feed_cycles takes a CycleBlock, not a {type(block).__name__}")
        e, m = self.spec.elements, block.start_s.shape[0] if np.ndim(block.start_s) == 1 else -1
        fields = {"start_s": (m,), "duration_s": (m,), "frequency_hz": (m,), "partial": (m,),
                  "power_w": (e, m), "energy_wh": (e, m), "volts_rms": (e, m), "amps_rms": (e, m)}
        for name, shape in fields.items():
            x = getattr(block, name)
            kinds = "b" if name == "partial" else "fiu"
            if not isinstance(x, np.ndarray) or x.shape != shape or x.dtype.kind not in kinds:
                raise InvalidSamples(
                    f"{self.spec.prefix} has {e} element(s): the cycles' {name} must be a real array of shape "
                    f"{shape if m >= 0 else '(m,)'}, got {getattr(x, 'shape', type(x).__name__)}; nothing registered")
        va = self.input_ceiling_v * self.input_ceiling_a
        with np.errstate(all="ignore"):
            self._check_cycle_limits(block, va)

    def _checked_repeats(self, runs: CycleRuns) -> np.ndarray:
        """The runs' counts: integers ≥ 1, one per cycle row, 1 for a partial cycle, at
        most 2^40 cycles in one call."""
        repeats, cycles = runs.repeats, runs.cycles
        rows = cycles.start_s.shape
        if not (isinstance(repeats, np.ndarray) and repeats.dtype.kind in "iu" and repeats.ndim == 1
                and repeats.shape == rows):
            raise InvalidSamples(f"the runs' repeats must be an integer array of shape {rows}, one per run, "
                                 f"got {getattr(repeats, 'shape', type(repeats).__name__)}; nothing registered")
        if repeats.size and not (repeats.min() >= 1 and (repeats[cycles.partial] == 1).all()):
            raise InvalidSamples("each run must repeat its cycle at least once, and a partial cycle exactly once; "
                                 "nothing registered")
        if repeats.size and not float(repeats.astype(float).sum()) <= MAX_RUN_CYCLES:
            raise InvalidSamples(f"the runs hold {float(repeats.astype(float).sum()):.6g} cycles in one call, beyond "
                                 f"{MAX_RUN_CYCLES:g}; nothing registered")
        return repeats.astype(np.int64)

    def _check_runs_energy(self, block: CycleBlock, repeats: np.ndarray) -> None:
        with np.errstate(over="ignore"):
            total = float(np.abs(block.net_energy_wh * repeats).sum())
        if not total <= MAX_RUNS_WH:
            raise InvalidSamples(f"the runs carry {total:.6g} Wh in one call, beyond {MAX_RUNS_WH:g} Wh (2^24); "
                                 "feed them in several calls; nothing registered")

    def _check_cycle_limits(self, block: CycleBlock, va: float) -> None:
        limits = (
            ("start_s", block.start_s, 0.0, math.inf, "s"),
            ("duration_s", block.duration_s, 0.0, MAX_CYCLE_S, "s"),
            ("volts_rms", block.volts_rms, 0.0, self.input_ceiling_v, "V"),
            ("amps_rms", block.amps_rms, 0.0, self.input_ceiling_a, "A"),
            ("power_w", block.power_w, -va, va, "W (input ceilings' product)"),
            ("energy_wh", block.energy_wh / block.duration_s * SECONDS_PER_HOUR, -va * (1 + 1e-9), va * (1 + 1e-9),
             "W over the cycle (input ceilings' product)"),
            ("net energy_wh", block.net_energy_wh, -MAX_CYCLE_WH, MAX_CYCLE_WH, "Wh in one cycle (the register's int64 arithmetic)"),
            ("frequency_hz", np.where(np.isnan(block.frequency_hz), 1.0, block.frequency_hz), 0.0, math.inf, "Hz"),
        )
        for name, x, lo, hi, unit in limits:
            ok = np.isfinite(x) & (x >= lo) & (x <= hi)
            if name in ("duration_s", "frequency_hz"):
                ok &= x > 0
            if not ok.all():
                where = tuple(int(i) for i in np.argwhere(~ok)[0])
                raise InvalidSamples(f"per-cycle {name} at {where} is {float(x[where]):.6g}, beyond its bound "
                                     f"[{lo:g}, {hi:g}] {unit}; nothing registered")

    def _clipping_events(self, v: np.ndarray, a: np.ndarray, state: LineCycleState,
                         peak_v: list[float], peak_a: list[float]) -> list[Event]:
        """One clipped event per input whose peak |x| (each input's, from the one pass)
        reached full scale, at its first clipped sample."""
        events = []
        for kind_name, x, peak, full in (("voltage", v, peak_v, self.full_scale_v),
                                         ("current", a, peak_a, self.full_scale_a)):
            for ch in [ch for ch, p in enumerate(peak) if p >= full]:    # one event per clipped input
                over = np.abs(x[ch]) >= full
                k = int(np.argmax(over))
                t = (state.next_index + k) / state.sample_rate_hz
                events.append(Event(
                    t, EventKind.CLIPPED, True, ch + 1, float(x[ch, k]),
                    f"{kind_name} input {ch + 1} at or beyond full scale ({full:.1f}): samples clipped, "
                    "accuracy not guaranteed", kind_name,
                ))
        return events

    # ----------------------------------------------------------------- per-cycle judgement
    def _judge_limits(self) -> np.ndarray:
        """The thresholds :func:`minimeter.meter._judge.steady_cycles` judges the common
        case against, at the positions it names: each the value the general path uses."""
        spec, limits = self.spec, np.zeros(_compiled.LIMITS)
        limits[[_compiled.LOW_V, _compiled.HIGH_V, _compiled.MAX_A, _compiled.F_LO, _compiled.F_HI]] = (
            self.supply_low_v, self.supply_high_v, spec.max_primary_a,
            spec.frequency_min_hz * (1 - FREQUENCY_TOLERANCE), spec.frequency_max_hz * (1 + FREQUENCY_TOLERANCE))
        limits[[_compiled.PF_MIN, _compiled.PF_MIN_A, _compiled.PF_NEAR]] = (
            spec.power_factor_min, LOW_PF_MIN_CURRENT_FACTOR * spec.starting_current_a,
            spec.power_factor_min * _compiled.PF_MARGIN)
        limits[[_compiled.DEADBAND_W, _compiled.DETECT_A, _compiled.ALPHA, _compiled.SETTLED_A]] = (
            self.reverse_deadband_w, self.starting_detect_a, STARTING_SMOOTHING,
            STARTING_SETTLED_FRACTION * self.starting_detect_a)
        limits[[_compiled.MAX_CYCLE_WH, _compiled.QUANTA_PER_WH, _compiled.QUANTA_MAX]] = (
            MAX_CYCLE_WH, QUANTA_PER_WH, float(1 << 61))       # Σ|quanta| of a block: int64 sums with headroom
        return limits

    def _steady_step(self, b: CycleBlock, lo: int, hi: int, transitions: list, led_changes: list) -> tuple[bool, int]:
        """Judge cycles [lo, hi) of ``b`` in the common case, in one compiled pass
        (:func:`minimeter.meter._judge.steady_cycles`): every cycle whole and powered on
        every element, no event active and none raised, the Power LED on and the reverse
        LED off and both staying so — exactly as :meth:`_step` would. Returns whether it
        judged them (if not, nothing changed) and the first cycle from which on all are
        common ones."""
        judge = not self._active and self._powered and self._leds.power and not self._leds.reverse
        fresh = self._active_amps is None
        ints, floats, moves, lights = _compiled.steady_cycles(
            b.partial, b.start_s, b.duration_s, b.frequency_hz, b.power_w, b.energy_wh, b.volts_rms, b.amps_rms,
            self._steady_limits, lo, hi, judge and self._period > 0, _NO_AMPS if fresh else self._active_amps, fresh,
            self._halves_quanta, self._quanta % self._period if self._period else 0, self._load_code, self._leds.load)
        values = ints.tolist()
        if not values[1]:
            return False, values[0]
        e, k = self.spec.elements, len(self._halves)
        self._active_amps, self._prev_whole = floats[:e], floats[e:4 * e]
        self._quanta += values[2]
        self._reverse_quanta += values[3]
        self._time_s = floats[4 * e].item()
        if len(moves[0]):
            self._set_outputs(values[4:4 + k], values[4 + k:])
            transitions.append(moves)
            if len(lights[0]):
                led_changes.append(lights)
                self._leds = made(LedStates, power=True, load=lights[1][-1].item(), reverse=False)
        return True, values[0]

    def _process(self, block: CycleBlock, events: list[Event], final: bool = False,
                 repeats: np.ndarray | None = None, measured: bool = False) -> Update:
        """Judge and register ``block`` (rows of ``repeats`` identical cycles, or single
        cycles) after the cycle held back from the last call. A partial cycle at the
        block's end is held back (unless ``final``): it is judged with the cycle after it
        (S4.8), whatever the chunk sizes. Single cycles go in steps: the common ones
        (:meth:`_steady_step`) in one compiled pass, the others (:meth:`_step`) the general
        way. ``measured``: cycles as the metrology gave them, zero-width ones not yet dropped
        (:func:`_zero_width_defined`; a block the common case takes has none)."""
        transitions: list[tuple[np.ndarray, ...]] = []
        led_changes: list[tuple[np.ndarray, ...]] = []
        common = None        # from which cycle on the block's cycles are all common ones, if tried
        if repeats is None and self._pending is None and 0 < block.count <= _MAX_CYCLES_PER_STEP \
                and not block.partial[-1]:
            judged, common = self._steady_step(block, 0, block.count, transitions, led_changes)
            if judged:
                return self._update(block, transitions, led_changes, events)      # the common case, in one pass
        trimmed = _zero_width_defined(block) if measured else block
        if trimmed is not block:
            block, common = trimmed, None
        if self._pending is not None:
            block = _joined(self._pending, block)
            repeats = None if repeats is None else np.concatenate(([1], repeats))
        if repeats is not None:
            block, repeats = _capped(block, repeats)
        hold = block.count and not final and bool(block.partial[-1])
        done = block.count - 1 if hold else block.count
        self._general(block, done, final, repeats, transitions, led_changes, events, common)
        self._pending = block.slice(block.count - 1, block.count) if hold else None
        if hold:
            block = block.slice(0, done)
        return self._update(block if repeats is None else CycleRuns(block, repeats[:done]), transitions, led_changes,
                            events)

    def _update(self, cycles: CycleBlock | CycleRuns, transitions: list, led_changes: list,
                events: list[Event]) -> Update:
        """What a call produced: its cycles, the steps' transitions and LED changes, and
        its events in time order, with the LEDs and register after it."""
        if len(events) > 1:
            events.sort(key=lambda ev: ev.time_s)
        return made(Update, cycles=cycles,
                    transitions=_records(Transition, transitions, (self._output_labels, None, None, _CAUSES)),
                    led_changes=_records(LedChange, led_changes, (_LEDS, None, None)), leds=self._leds,
                    events=tuple(events), watt_hours=self.watt_hours, quantities=None)

    def _general(self, block: CycleBlock, done: int, final: bool, repeats: np.ndarray | None,
                 transitions: list, led_changes: list, events: list, common: int | None = None) -> None:
        """Judge rows [0, done) of ``block`` in steps: of at most ``_MAX_CYCLES_PER_STEP``
        rows whose int64 sums of quanta cannot overflow; single cycles from which on all
        are common ones in :meth:`_steady_step`, the rest in :meth:`_step`. Where the
        cycles are common but the meter's state is not yet (an event to clear, an LED to
        light), ``_SETTLING_CYCLES`` go the general way before the one pass is tried again
        (at most four steps in a step's worth of cycles). ``common``: what :meth:`_steady_step`
        said of the whole block, if it was tried on it."""
        if not done:
            return
        judgement = self._judgement(block, final)
        step = _MAX_CYCLES_PER_STEP if repeats is None else _step_rows(block, repeats)
        lo, settling = 0, True
        while lo < done:
            end = hi = min(lo + step, done)
            if repeats is None:
                if common is not None and (lo, end) == (0, block.count):
                    judged, start = False, common
                else:
                    judged, start = self._steady_step(block, lo, end, transitions, led_changes)
                common = None
                if judged:
                    lo, settling = end, True
                    continue
                if start > lo:                    # the cycles before the common ones
                    hi = start
                elif settling:                    # common cycles, the state not yet: a few first
                    hi, settling = min(end, lo + _SETTLING_CYCLES), False
                hi = min(hi, lo + _step_rows(block, None))
            part = block if (lo, hi) == (0, block.count) else block.slice(lo, hi)
            self._step(part, judgement(lo, hi), transitions, led_changes, events,
                       None if repeats is None else repeats[lo:hi])
            lo = hi

    def _judgement(self, block: CycleBlock, final: bool):
        """``rows(lo, hi)``: what cycles [lo, hi) of ``block`` are judged on (:func:`_judge`,
        from the meter's state now), found over the cycles up to ``hi`` and the one after
        it (a partial cycle borrows from its neighbour) — not over a whole block of which
        one cycle goes the general way."""
        prev, stream_start = self._prev_whole, self._time_s == 0.0
        found: list = [0, None]            # cycles covered, their judgement

        def rows(lo: int, hi: int) -> _Judgement:
            if found[1] is None or hi > found[0]:
                upto = min(hi + 1, block.count)
                part = block if upto == block.count else block.slice(0, upto)
                found[1] = _judge(part, prev, stream_start=stream_start, final=final and upto == block.count,
                                  alive_v=ALIVE_FRACTION * self.supply_low_v, powered_v=self.supply_low_v,
                                  long_s=0.999 / self.tracking_min_hz)
                found[0] = upto if upto == block.count else upto - 1
            return found[1].slice(lo, hi)
        return rows

    def _step(self, b: CycleBlock, judged: _Judgement, transitions: list, led_changes: list, events: list,
              repeats: np.ndarray | None = None) -> None:
        """Judge rows of cycles (each ``repeats`` identical cycles, or one): the register,
        outputs, LEDs and events. Times of changes are the first cycle's of a row; a row
        whose starting-current decision changes inside it is cut there first."""
        spec = self.spec
        self._prev_whole = None if b.partial[-1] else np.concatenate(
            (b.volts_rms[:, -1], b.amps_rms[:, -1], b.power_w[:, -1]))
        starting, b, judged, repeats = self._starting(b, judged, repeats)
        volts, amps = judged.volts, judged.amps
        powered = (volts >= self.supply_low_v).any(axis=0)
        if any(key[0] is EventKind.OVER_VOLTAGE for key in self._active) or (volts > self.supply_high_v).any():
            over_v = np.array([      # over-voltage with hysteresis (clears at ≤ 138 V): the LED does not flicker
                _carry_forward(_hysteresis(volts[k] > self.supply_high_v, volts[k] <= spec.supply_max_v),
                               (EventKind.OVER_VOLTAGE, k + 1) in self._active) for k in range(b.elements)])
            in_range = ((volts >= self.supply_low_v) & ~over_v).any(axis=0)
            power_led = powered & in_range & ~over_v.any(axis=0)
        else:                        # none held and none reached: off throughout, and in range wherever powered
            over_v = np.zeros(volts.shape, bool)
            power_led = powered
        running = powered & starting
        net_q = to_quanta(b.net_energy_wh)
        forward_q = np.where(running & (net_q > 0), net_q, 0)
        reverse_q = np.where(running & (net_q < 0), -net_q, 0)
        lengths = b.duration_s
        if repeats is not None:
            forward_q, reverse_q, lengths = forward_q * repeats, reverse_q * repeats, lengths * repeats
        net_w = b.net_power_w
        negative = net_w < -self.reverse_deadband_w
        if self._leds.reverse or negative.any():
            big = (amps >= spec.reverse_led_min_current_a).any(axis=0)
            reverse_led = _carry_forward(
                np.where(~powered, 0, np.where(big & starting & ~b.partial, negative.astype(int), -1)), self._leds.reverse)
        else:                        # off and never lit
            reverse_led = np.zeros(b.count, bool)

        codes, states, times, causes = self._advance_outputs(b, powered, forward_q, lengths)
        transitions.append((codes, states, times, causes))
        self._reverse_quanta += int(reverse_q.sum())
        self._time_s = float(b.start_s[-1] + lengths[-1])

        if codes.size or not ((power_led == self._leds.power).all() and (reverse_led == self._leds.reverse).all()):
            self._led_changes(b, power_led, reverse_led, (codes, states, times, causes), led_changes)   # else none changes

        self._judge_events(b, judged, powered, over_v, starting, negative, net_w, events)

    def _led_changes(self, b: CycleBlock, power_led: np.ndarray, reverse_led: np.ndarray,
                     transitions: tuple[np.ndarray, ...], led_changes: list) -> None:
        """The LEDs' changes over rows ``b`` into ``led_changes``, and their states after it:
        power and reverse judged at each cycle's end; load follows output 10 (its
        ``transitions``: output codes, states, times, causes)."""
        codes, states, times, causes = transitions
        end_s = b.end_s
        power_at = _flips(power_led, self._leds.power)
        reverse_at = _flips(reverse_led, self._leds.reverse)
        load_at, load = self._load_flips(codes, states, causes)
        led_times = np.concatenate((b.start_s[power_at], end_s[reverse_at], times[load_at]))
        order = np.argsort(led_times, kind="stable")
        led_changes.append((
            np.repeat(np.array([0, 2, 1]), [power_at.size, reverse_at.size, load_at.size])[order],
            np.concatenate((power_led[power_at], reverse_led[reverse_at], states[load_at]))[order],
            led_times[order]))
        self._leds = LedStates(power=bool(power_led[-1]), load=load, reverse=bool(reverse_led[-1]))

    def _starting(self, b: CycleBlock, judged: _Judgement, repeats: np.ndarray | None):
        """(m,) whether some element carries the starting current: its active current
        P / V, smoothed (y += α (x − y) each cycle), at or above the threshold — or, on a
        whole cycle (or one judged on its whole neighbour), one cycle's at twice it (see
        STARTING_DETECT_FRACTION). Advances the smoothing's state. Rows of repeated
        cycles whose decision changes inside them come back cut at the change
        (:func:`minimeter.meter._kernels.starting_pieces`): (decisions, rows, judgement,
        repeats)."""
        active = np.ascontiguousarray(judged.power / np.maximum(judged.volts, self.supply_low_v))  # signed
        detect = self.starting_detect_a
        at_once = ((np.abs(active) >= 2 * detect) & (~b.partial | judged.borrowed)).any(axis=0)
        smoothed = np.array(active[:, 0] if self._active_amps is None else self._active_amps, float)
        counts = np.ones(b.count, np.int64) if repeats is None else repeats
        rows, offsets, counts, flags, n = _kernels.starting_pieces(active, counts, at_once, smoothed,
                                                                    STARTING_SMOOTHING, detect,
                                                                    STARTING_SETTLED_FRACTION * detect)
        self._active_amps = smoothed
        if n == b.count:
            return flags[:n].copy(), b, judged, repeats
        rows = rows[:n]
        return flags[:n].copy(), _rows(b, rows, offsets[:n]), judged.take(rows), counts[:n].copy()

    def _advance_outputs(self, b: CycleBlock, powered: np.ndarray, forward_q: np.ndarray,
                         lengths_s: np.ndarray) -> tuple[np.ndarray, ...]:
        """Add ``forward_q`` [quanta per row] to the register and find the outputs'
        transitions (rows ``lengths_s`` long): energy transitions inside powered runs;
        every output forced open while unpowered. The supply is judged per cycle, so
        power changes are stamped at the cycle's start. Returns the transitions as
        columns (output index, state, time, cause index), in time order."""
        if powered.all():          # one powered run (the common case)
            bounds = [0, b.count]
        else:
            bounds = [0, *(np.flatnonzero(np.diff(powered.astype(np.int8))) + 1).tolist(), b.count]
        runs: list[tuple[np.ndarray, ...]] = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            parts: list[tuple[np.ndarray, ...]] = []
            if powered[lo]:
                if not self._powered:
                    self._powered = True
                    parts.append(self._power_outputs(True, float(b.start_s[lo])))
                seg_q = forward_q[lo:hi]
                parts.append(self._energy_edges(seg_q, int(seg_q.sum()), b.start_s[lo:hi], lengths_s[lo:hi]))
            elif self._powered:
                self._powered = False
                parts.append(self._power_outputs(False, float(b.start_s[lo])))
            parts = [part for part in parts if part[0].size]
            if len(parts) == 1:                   # one part: in time order already
                runs.append(self._apply_transitions(*parts[0], ordered=True))
            elif parts:
                runs.append(self._apply_transitions(*(np.concatenate(column) for column in zip(*parts))))
        if not runs:
            return np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0), np.zeros(0, np.int64)
        return tuple(np.concatenate(column) for column in zip(*runs))

    def _apply_transitions(self, codes: np.ndarray, states: np.ndarray, times: np.ndarray,
                           causes: np.ndarray, ordered: bool = False) -> tuple[np.ndarray, ...]:
        """Put one powered (or unpowered) run's transitions in time order (unless
        ``ordered``: they are) and set the outputs' states and closures from them."""
        if not ordered:
            order = np.argsort(times, kind="stable")
            codes, states, times, causes = codes[order], states[order], times[order], causes[order]
        last, closures, _ = _compiled.tally_edges(codes, states, causes, len(self._outputs), self._load_code,
                                                  self._leds.load)
        self._set_outputs(last.tolist(), closures.tolist())
        return codes, states, times, causes

    def _set_outputs(self, last: list[int], closures: list[int]) -> None:
        """Each output's state after its last transition (-1: none) and its new closures."""
        for name, on, closed in zip(self._outputs, last, closures):
            if on >= 0:
                self._output_on[name] = bool(on)
                self._closures[name] += closed

    def _load_flips(self, codes: np.ndarray, states: np.ndarray, causes: np.ndarray) -> tuple[np.ndarray, bool]:
        """Where the load LED changes among transitions in time order (it follows output
        10, S7.2), and its state after them."""
        flips = _compiled.tally_edges(codes, states, causes, len(self._outputs), self._load_code, self._leds.load)[2]
        return flips, bool(states[flips[-1]]) if flips.size else self._leds.load

    def _energy_edges(self, forward_q: np.ndarray, total_q: int, start_s: np.ndarray,
                      lengths_s: np.ndarray) -> tuple[np.ndarray, ...]:
        """The outputs' energy transitions over powered rows adding ``forward_q`` quanta to
        the register (``total_q`` in all), which they advance: transition columns (output
        index, state, time, cause index) in time order."""
        codes, states, times = output_edges(self._halves, self._quanta, forward_q, total_q, start_s, lengths_s)
        self._quanta += total_q
        return codes, states, times, np.zeros(codes.size, np.int64) if codes.size else _NO_ROWS

    def _power_outputs(self, on: bool, time_s: float) -> tuple[np.ndarray, ...]:
        """Power lost: every closed output opens. Power back: each output takes the state
        the register gives it (S7.1: the register is kept). As transition columns."""
        changed = []
        for code, (name, kh) in enumerate(self._outputs.items()):
            target = output_state(self._quanta, kh) if on else False
            if target != self._output_on[name]:
                changed.append((code, target))
        n = len(changed)
        return (np.array([c for c, _ in changed], np.int64), np.array([t for _, t in changed], bool),
                np.full(n, time_s), np.full(n, 2 if on else 1, np.int64))

    def _no_condition_met(self, b: CycleBlock, judged: _Judgement, powered: np.ndarray, over_v: np.ndarray,
                          negative: np.ndarray) -> bool:
        """Whether no cycle of ``b`` meets any event's raising condition of :meth:`_judge_events`,
        each tested on every cycle (where it is not judged too: a wider test, so True is
        exact): with no event active, then, no edge can come — in a few whole-block tests."""
        spec = self.spec
        volts = judged.volts
        if not (powered.all() and (volts >= self.supply_low_v).all()) or over_v.any() or negative.any() \
                or judged.slow.any() or (judged.amps > spec.max_primary_a).any():
            return False
        f = b.frequency_hz                       # NaN (a partial cycle) compares False: not judged
        if ((f < spec.frequency_min_hz * (1 - FREQUENCY_TOLERANCE)) | (f > spec.frequency_max_hz * (1 + FREQUENCY_TOLERANCE))).any():
            return False
        # |PF| < minimum as |P| < minimum · V · I, widened by a rounding's worth (V·I = 0: no current, not judged)
        limit = (spec.power_factor_min * (1 + 1e-9)) * (b.volts_rms * b.amps_rms)
        return not (np.abs(b.power_w) < limit).any()

    def _judge_events(self, b, judged: _Judgement, powered, over_v, starting, negative, net_w, events: list) -> None:
        """Raise and clear events on the edges of each condition. Current, power-factor,
        frequency and reverse-power conditions are judged on whole cycles only — and a
        powered supply with no zero crossing for 1/tracking_min_hz is a frequency below it.
        (Long because it lists every condition of S8.1 once, each one call of ``edges``.)"""
        if not self._active and self._no_condition_met(b, judged, powered, over_v, negative):
            return                                # nothing to raise, nothing to clear: the common case
        spec = self.spec
        volts, amps = judged.volts, judged.amps
        t = b.end_s
        whole = ~b.partial
        power_factor = b.power_factor           # (e, m), computed once
        low_pf_a = LOW_PF_MIN_CURRENT_FACTOR * spec.starting_current_a

        def edges(condition, values, kind, element, raised, cleared, code=None, times=t):
            key = (kind, element)
            was = key in self._active
            if not (condition != was if code is None else code == (0 if was else 1)).any():
                return                            # never leaves its state: no edge (the common case)
            states = condition if code is None else _carry_forward(code, was)
            values = values() if callable(values) else values
            for i in _flips(states, was):
                on = bool(states[i])
                events.append(Event(float(times[i]), kind, on, element, float(values[i]),
                                    raised(float(values[i])) if on else cleared(float(values[i]))))
            if states.size:
                if states[-1]:
                    self._active.add(key)
                else:
                    self._active.discard(key)

        edges(~powered, lambda: volts.max(axis=0), EventKind.POWER_LOSS, None,
              lambda x: f"power lost: supply {x:.1f} V below {spec.supply_min_v:g} V — registering stopped, register kept",
              lambda x: f"power restored: supply {x:.1f} V", times=b.start_s)   # as the outputs and Power LED
        for k in range(b.elements):
            leg = f"L{k + 1}"
            edges(None, volts[k], EventKind.UNDER_VOLTAGE, k + 1,
                  lambda x, leg=leg: f"{leg}–N {x:.1f} V below {spec.supply_min_v:g} V",
                  lambda x, leg=leg: f"{leg}–N {x:.1f} V back above {spec.supply_min_v:g} V",
                  code=_hysteresis(volts[k] < self.supply_low_v, volts[k] >= spec.supply_min_v))
            edges(over_v[k], volts[k], EventKind.OVER_VOLTAGE, k + 1,
                  lambda x, leg=leg: f"{leg}–N {x:.1f} V above {spec.supply_max_v:g} V — Power LED off, still measuring",
                  lambda x, leg=leg: f"{leg}–N {x:.1f} V back within {spec.supply_max_v:g} V")
            ct = f"CT{k + 1}"
            over_i = _hysteresis(amps[k] > spec.max_primary_a, amps[k] <= spec.max_primary_a * (1 - CURRENT_CLEAR_BAND),
                                 judged=powered & whole)
            edges(None, amps[k], EventKind.OVER_CURRENT, k + 1,
                  lambda x, ct=ct: f"{ct} {x:.1f} A above the {spec.max_primary_a:g} A maximum (110 % of {spec.ct_rating})",
                  lambda x, ct=ct: f"{ct} {x:.1f} A back within rating", code=over_i)
            pf = np.abs(power_factor[k])       # NaN (no current) compares False: not judged
            pf_judged = powered & whole & (amps[k] >= low_pf_a) & np.isfinite(pf)
            low_pf = _hysteresis(pf < spec.power_factor_min, pf >= spec.power_factor_min * (1 + PF_CLEAR_BAND),
                                 judged=pf_judged)
            edges(None, power_factor[k], EventKind.LOW_PF, k + 1,
                  lambda x, k=k: f"element {k + 1} power factor {x:.2f} below {spec.power_factor_min:g}: accuracy not guaranteed",
                  lambda x, k=k: f"element {k + 1} power factor {x:.2f} back within range", code=low_pf)
        f = b.frequency_hz
        f_lo = spec.frequency_min_hz * (1 - FREQUENCY_TOLERANCE)
        f_hi = spec.frequency_max_hz * (1 + FREQUENCY_TOLERANCE)
        with np.errstate(invalid="ignore"):
            inside = (f >= spec.frequency_min_hz * (1 - FREQUENCY_CLEAR_BAND)) & (f <= spec.frequency_max_hz * (1 + FREQUENCY_CLEAR_BAND))
            f_code = np.where(powered & np.isfinite(f), _hysteresis((f < f_lo) | (f > f_hi), inside),
                              np.where(judged.slow, 1, -1))
        tmin = self.tracking_min_hz
        edges(None, lambda: np.where(judged.slow, tmin, np.nan_to_num(f)), EventKind.FREQUENCY, None,
              lambda x: (f"line frequency {x:.2f} Hz outside {f_lo:g}–{f_hi:g} Hz (50–60 Hz ± {FREQUENCY_TOLERANCE:.0%})"
                         if x > tmin else f"no zero crossing for {1000 / tmin:.0f} ms with the supply up: line "
                         f"frequency below {tmin:g} Hz, outside {f_lo:g}–{f_hi:g} Hz"),
              lambda x: f"line frequency {x:.2f} Hz back within range", code=f_code)
        rev_code = _hysteresis(negative, net_w >= 0, judged=powered & starting & whole)
        edges(None, net_w, EventKind.REVERSE_POWER, None,
              lambda x: f"net power {x:.1f} W is negative: not registered (check CT orientation and phasing)",
              lambda x: f"net power {x:.1f} W forward again", code=rev_code)


def _records(kind: type, parts: list[tuple[np.ndarray, ...]], labels: tuple) -> Records:
    """The columns of each step, joined, as a :class:`~minimeter.meter.outputs.Records` of ``kind``."""
    if not parts:
        return _no_records(kind, labels)
    return Records(kind, tuple([(column[0] if len(column) == 1 else np.concatenate(column), label)
                                for column, label in zip(zip(*parts), labels)]))


@functools.lru_cache(maxsize=64)
def _no_records(kind: type, labels: tuple) -> Records:
    """No records of ``kind`` (one read-only instance per kind and labels)."""
    return Records(kind, tuple((_NO_ROWS, label) for label in labels))


_METER_KEYWORDS = {
    "quantities", "calibration", "register_wh", "register_quanta", "hysteresis_v", "tracking_min_hz", "reverse_deadband_w", "full_scale_v", "full_scale_a",
}
