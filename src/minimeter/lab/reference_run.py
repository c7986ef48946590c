"""Calibration against a recorded reference run (issue 4; SPEC S9.1).

On a meter bench the reference is not a formula but a reference standard (a
calibrated wattmeter in series with the meter) that states the true Vrms, Irms and
active power of each step while the meter's own inputs are recorded. A *reference run*
file lists those steps; :func:`calibrate_from_reference_run` fits the same corrections
as the synthetic sequence (:func:`minimeter.lab.calibration.calibrate`) and returns the same
:class:`~minimeter.lab.calibration.Calibration`.

The file is TOML (see ``docs/bench.md``)::

    format = "minimeter-reference-run"
    frequency_hz = 60.0        # line frequency of the run [Hz]: turns the phase error into a delay
    map = "V:I"                # channel map for every step (text form of minimeter.sources.recordings.ChannelMap)
    settle_s = 0.6             # skipped at the start of every recording [s]

    [[step]]
    recording = "rec/200A_pf1.wav"      # relative to this file; any format minimeter.sources.recordings reads
    volts_rms = 120.0                   # the reference's true values [V], [A]
    amps_rms = 200.0
    power_w = 24000.0                   # or power_factor = 1.0 (with lead = true for a leading PF)

A step's ``volts_rms``, ``amps_rms`` and ``power_w`` may be one number (every element)
or a list with one number per element. Optional per step: ``map`` (overrides the
top-level map), ``lead`` (default false), and for CSV recordings ``columns`` and
``sample_rate_hz``.

Roles, from the reference's power factor ``PF = P / (Vrms · Irms)`` (mean over elements):

* ``PF ≥ 0.99`` — a **PF 1 step**; each one is a table current (each element's table
  at that element's reference Irms).
* ``0.3 ≤ PF ≤ 0.9`` — a **phase step**, paired with the PF 1 step whose current is
  within ±10 % (makers use PF 0.5 lag; any PF in the range works, lead or lag).

The sequence (STANDARDS.md, "Where the error comes from"):

1. offsets: the mean of the recorded samples after ``settle_s`` in the PF 1 step at the
   lowest current;
2. voltage gain at the PF 1 step with the highest current: ``true Vrms / measured Vrms``;
3. per table current, without current correction: ``r1 = P_meas / P_true`` at PF 1 and
   ``rφ = P_meas / P_true`` at the phase step's angle φ. With the current reading
   ``G·i(t + β/ω)`` (β > 0: the recorded current leads), ``r1 = G·cos β`` and
   ``rφ = G·(cos β ± tan φ · sin β)`` (+ lag, − lead), so ``β = atan(±(rφ/r1 − 1) / tan φ)``
   — at PF 0.5 lag ``tan φ = √3``, the synthetic sequence's formula — the current gain is
   ``cos β / r1`` and the current is delayed by ``β / (360° · frequency_hz)`` [s].

Measurements average whole line cycles (cut on element 1's voltage) after ``settle_s``,
exactly like the synthetic sequence. Every problem with the file raises
:class:`InvalidReferenceRun` naming the file, the key and what is wrong, e.g.
``run.toml: step[3].power_w: -5 must be positive``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from minimeter.lab.calibration import Calibration, ElementCalibration, average_whole_cycles
from minimeter.errors import MinimeterError
from minimeter.sources.frontend import InvalidFrontEnd
from minimeter.sources.recordings import ChannelMap, InvalidRecording, open_recording

FORMAT = "minimeter-reference-run"
UNITY_PF = 0.99                 # a step at or above this PF is a PF 1 step
PHASE_PF_RANGE = (0.3, 0.9)     # a phase step's PF
PAIR_TOLERANCE = 0.10           # a phase step's current within ±10 % of its PF 1 step's
FREQUENCY_TOLERANCE = 0.02      # recorded line frequency within ±2 % of frequency_hz
_TOP_KEYS = ("format", "frequency_hz", "map", "settle_s", "notes", "step")
_STEP_KEYS = ("recording", "volts_rms", "amps_rms", "power_w", "power_factor", "lead", "map", "columns",
              "sample_rate_hz")


class InvalidReferenceRun(MinimeterError, ValueError):
    """A reference-run file that cannot be used; the message names the file, the key and
    the problem."""


@dataclass(frozen=True)
class ReferenceStep:
    """One step: a recording of the meter's inputs and the reference's true values.

    ``volts_rms`` [V], ``amps_rms`` [A] and ``power_w`` [W] have one value per element.
    """

    index: int                          # 1-based position in the file (for messages)
    recording: Path
    channel_map: ChannelMap | None      # None: channels paired by unit
    volts_rms: tuple[float, ...]        # [V rms]
    amps_rms: tuple[float, ...]         # [A rms]
    power_w: tuple[float, ...]          # [W]
    lead: bool = False
    columns: tuple[str, ...] | None = None
    sample_rate_hz: float | None = None  # [Hz], CSV only

    @property
    def key(self) -> str:
        return f"step[{self.index}]"

    @property
    def power_factor(self) -> float:
        """Mean of the elements' P / (Vrms · Irms)."""
        return float(np.mean(np.asarray(self.power_w) / (np.asarray(self.volts_rms) * np.asarray(self.amps_rms))))

    @property
    def current_a(self) -> float:
        """The step's current [A rms] (mean over elements)."""
        return float(np.mean(self.amps_rms))


@dataclass(frozen=True)
class ReferenceRun:
    """A parsed reference-run file."""

    path: Path
    steps: tuple[ReferenceStep, ...]
    frequency_hz: float = 60.0          # [Hz]
    settle_s: float = 0.6               # [s]
    notes: tuple[str, ...] = ()

    def fail(self, key: str, problem: str) -> InvalidReferenceRun:
        return InvalidReferenceRun(f"{self.path}: {key}: {problem}")


# --------------------------------------------------------------------------- the file
def load_reference_run(path: str | Path) -> ReferenceRun:
    """Read a reference-run file (TOML; see the module's docstring). Recordings are
    found relative to the file; they are opened only by :func:`calibrate_from_reference_run`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidReferenceRun(f"{p}: no such reference-run file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidReferenceRun(f"{p}: cannot be read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidReferenceRun(f"{p}: not valid TOML: {exc}") from None

    def fail(key: str, problem: str) -> InvalidReferenceRun:
        return InvalidReferenceRun(f"{p}: {key}: {problem}")

    def number(table: dict, key: str, name: str, default: float | None, lo: float, hi: float) -> float | None:
        value = table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise fail(name, f"expected a number, got {value!r}")
        if not lo <= value <= hi:
            raise fail(name, f"{value!r} is outside {lo:g} … {hi:g}")
        return float(value)

    def channel_map(value: Any, name: str) -> ChannelMap | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise fail(name, f"expected a channel map such as \"V:I\" or \"U1:I1:ct=2000\", got {value!r}")
        try:
            return ChannelMap.parse(value)
        except InvalidRecording as exc:
            raise fail(name, str(exc)) from None

    if data.get("format") != FORMAT:
        raise fail("format", f"expected \"{FORMAT}\", got {data.get('format')!r}")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown key — known keys: {', '.join(_TOP_KEYS)}")
    frequency = number(data, "frequency_hz", "frequency_hz", 60.0, 40.0, 70.0)
    settle = number(data, "settle_s", "settle_s", 0.6, 0.0, 3600.0)
    default_map = channel_map(data.get("map"), "map")
    notes = data.get("notes", [])
    if isinstance(notes, str):
        notes = [notes]
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise fail("notes", "expected a string or a list of strings")
    raw_steps = data.get("step")
    if not isinstance(raw_steps, list) or not raw_steps or not all(isinstance(s, dict) for s in raw_steps):
        raise fail("step", "expected [[step]] tables (at least two: PF 1 and a phase step)")

    steps = []
    for k, s in enumerate(raw_steps, 1):
        key = f"step[{k}]"
        unknown = sorted(set(s) - set(_STEP_KEYS))
        if unknown:
            raise fail(f"{key}.{unknown[0]}", f"unknown key — known keys: {', '.join(_STEP_KEYS)}")
        rec = s.get("recording")
        if not isinstance(rec, str) or not rec:
            raise fail(f"{key}.recording", f"expected the path of a recording, got {rec!r}")
        rec_path = Path(rec) if Path(rec).is_absolute() else p.parent / rec
        if not rec_path.is_file():
            raise fail(f"{key}.recording", f"no such file {str(rec_path)!r}")

        def values(name: str) -> tuple[float, ...] | None:
            value = s.get(name)
            if value is None:
                return None
            items = value if isinstance(value, list) else [value]
            if not items or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x)
                                for x in items):
                raise fail(f"{key}.{name}", f"expected a number or a list of numbers (one per element), got {value!r}")
            if any(x <= 0 for x in items):
                raise fail(f"{key}.{name}", f"{value!r} must be positive")
            return tuple(float(x) for x in items)

        volts, amps, power, pf = values("volts_rms"), values("amps_rms"), values("power_w"), values("power_factor")
        for name, v in (("volts_rms", volts), ("amps_rms", amps)):
            if v is None:
                raise fail(f"{key}.{name}", "missing — the reference's true value is required")
        if (power is None) == (pf is None):
            raise fail(f"{key}.power_w", "give exactly one of power_w [W] and power_factor")
        n = max(len(volts), len(amps), len(power or pf))
        for name, v in (("volts_rms", volts), ("amps_rms", amps), ("power_w", power), ("power_factor", pf)):
            if v is not None and len(v) not in (1, n):
                raise fail(f"{key}.{name}", f"{len(v)} values where another key has {n} (one per element, or one)")
        volts = volts * n if len(volts) == 1 else volts
        amps = amps * n if len(amps) == 1 else amps
        if power is None:
            if any(x > 1 for x in pf):
                raise fail(f"{key}.power_factor", f"{list(pf)} must be at most 1")
            pf = pf * n if len(pf) == 1 else pf
            power = tuple(v * a * f for v, a, f in zip(volts, amps, pf))
        else:
            power = power * n if len(power) == 1 else power
        ratio = [w / (v * a) for w, v, a in zip(power, volts, amps)]
        if any(r > 1.0 + 1e-6 for r in ratio):
            raise fail(f"{key}.power_w", f"{list(power)} W exceeds Vrms · Irms (PF {max(ratio):.4f} > 1)")
        lead = s.get("lead", False)
        if not isinstance(lead, bool):
            raise fail(f"{key}.lead", f"expected true or false, got {lead!r}")
        columns = s.get("columns")
        if columns is not None and (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)):
            raise fail(f"{key}.columns", f"expected a list of column names, got {columns!r}")
        rate = number(s, "sample_rate_hz", f"{key}.sample_rate_hz", None, 1.0, 1e9)
        step_map = channel_map(s.get("map"), f"{key}.map") if "map" in s else default_map
        steps.append(ReferenceStep(k, rec_path, step_map, volts, amps, power, lead,
                                   tuple(columns) if columns is not None else None, rate))
    return ReferenceRun(p, tuple(steps), frequency, settle, tuple(notes))


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class _Point:
    unity: ReferenceStep
    phase: ReferenceStep


def _plan(run: ReferenceRun) -> tuple[list[_Point], int]:
    """The table points (PF 1 step + phase step, by rising current) and the element count."""
    elements = {len(s.volts_rms) for s in run.steps}
    unity, phase = [], []
    for s in run.steps:
        pf = s.power_factor
        if pf >= UNITY_PF:
            unity.append(s)
        elif PHASE_PF_RANGE[0] <= pf <= PHASE_PF_RANGE[1]:
            phase.append(s)
        else:
            raise run.fail(f"{s.key}.power_w", f"PF {pf:.3f}: a step is at PF 1 (≥ {UNITY_PF}) or a phase step "
                                               f"(PF {PHASE_PF_RANGE[0]} … {PHASE_PF_RANGE[1]}, 0.5 lag is usual)")
    if len(elements) != 1:
        raise run.fail("step", f"the steps give values for different numbers of elements ({sorted(elements)})")
    unity.sort(key=lambda s: s.current_a)
    for a, b in zip(unity, unity[1:]):
        if b.current_a <= a.current_a * (1 + PAIR_TOLERANCE):
            raise run.fail(f"{b.key}.amps_rms", f"a second PF 1 step at {b.current_a:g} A "
                                                f"(within ±{PAIR_TOLERANCE:.0%} of {a.key}'s {a.current_a:g} A)")
    if not unity:
        raise run.fail("step", "no PF 1 step (PF ≥ 0.99): the gains are found at PF 1")
    points, used = [], set()
    for u in unity:
        near = [s for s in phase if abs(s.current_a / u.current_a - 1) <= PAIR_TOLERANCE]
        if not near:
            raise run.fail(f"{u.key}", f"no phase step (e.g. PF 0.5 lag) at {u.current_a:g} A ±{PAIR_TOLERANCE:.0%} "
                                       f"to pair with this PF 1 step")
        if len(near) > 1:
            raise run.fail(f"{near[1].key}", f"a second phase step at {u.current_a:g} A (also {near[0].key})")
        points.append(_Point(u, near[0]))
        used.add(near[0].index)
    for s in phase:
        if s.index not in used:
            raise run.fail(f"{s.key}", f"phase step at {s.current_a:g} A has no PF 1 step "
                                       f"within ±{PAIR_TOLERANCE:.0%}")
    return points, elements.pop()


# --------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class RecordedMeasurement:
    """A step's recording measured through a calibration, averaged over whole cycles."""

    volts_rms: np.ndarray     # (e,) [V]
    amps_rms: np.ndarray      # (e,) [A]
    power_w: np.ndarray       # (e,) [W]
    mean_v: np.ndarray        # (e,) mean of the raw samples after settling [V]
    mean_a: np.ndarray        # (e,) [A]
    seconds: float            # whole cycles averaged [s]
    frequency_hz: float       # whole cycles / their duration [Hz]


def measure_step(run: ReferenceRun, step: ReferenceStep, calibration: Calibration) -> RecordedMeasurement:
    """Stream a step's recording through its channel map and ``calibration``; average the
    whole line cycles that start after ``settle_s``."""
    options = {"columns": list(step.columns) if step.columns else None, "sample_rate_hz": step.sample_rate_hz}
    try:
        reader = open_recording(step.recording, **options)
        info = reader.info
        chunks_iter = reader.chunks(1 << 15)
        first = next(chunks_iter, None)
    except InvalidRecording as exc:
        raise run.fail(f"{step.key}.recording", str(exc)) from None
    try:
        cmap = step.channel_map or ChannelMap.automatic(info, first)
        resolved = cmap.resolve(info)
    except InvalidRecording as exc:
        raise run.fail(f"{step.key}.map", str(exc)) from None
    e = resolved.elements
    if e != len(step.volts_rms):
        raise run.fail(f"{step.key}.map", f"the map gives {e} element(s) ({cmap.text()}), the reference values "
                                          f"{len(step.volts_rms)}")
    fs = info.sample_rate_hz

    def chunks():
        if first is not None:
            yield resolved.split(first)
        for frames in chunks_iter:
            yield resolved.split(frames)

    try:
        got = average_whole_cycles(chunks(), calibration, e, fs, settle_s=run.settle_s,
                                   hysteresis_v=0.1 * min(step.volts_rms))
    except InvalidRecording as exc:
        raise run.fail(f"{step.key}.recording", str(exc)) from None
    if got is None:
        raise run.fail(f"{step.key}.recording", f"{step.recording}: no whole line cycle after settle_s = "
                                                f"{run.settle_s:g} s ({info.duration_s:g} s recorded)")
    return RecordedMeasurement(got.volts_rms, got.amps_rms, got.power_w, got.mean_v, got.mean_a,
                               got.seconds, got.cycles / got.seconds)


# --------------------------------------------------------------------------- the sequence
def calibrate_from_reference_run(run: ReferenceRun | str | Path,
                                 on_step: Callable[[str], None] | None = None) -> Calibration:
    """The makers' sequence (module docstring) on a recorded reference run. Returns the
    calibration; the meter loads it with ``calibration=``, ``Calibration.save`` writes the
    file ``minimeter calibrate`` writes."""
    if not isinstance(run, ReferenceRun):
        run = load_reference_run(run)
    say = on_step or (lambda _msg: None)
    points, elements = _plan(run)
    unity = [p.unity for p in points]

    # 1. offsets: the PF 1 step at the lowest current.
    low = measure_step(run, unity[0], Calibration.identity(elements))
    say(f"offset ({unity[0].key}, {unity[0].current_a:g} A): V {', '.join(f'{x:+.4f}' for x in low.mean_v)} V, "
        f"I {', '.join(f'{x:+.4f}' for x in low.mean_a)} A")
    base = [ElementCalibration(offset_v=float(low.mean_v[k]), offset_a=float(low.mean_a[k])) for k in range(elements)]

    # 2. voltage gain: the PF 1 step at the highest current.
    top = unity[-1]
    m = measure_step(run, top, Calibration(tuple(base)))
    volts_gain = np.asarray(top.volts_rms) / m.volts_rms
    say(f"voltage gain ({top.key}, {top.current_a:g} A, PF 1): {', '.join(f'{g:.5f}' for g in volts_gain)}")
    base = [replace(b, volts_gain=float(volts_gain[k])) for k, b in enumerate(base)]

    # 3. per table current: current gain and phase from the PF 1 / phase step pair.
    currents = np.array([p.unity.amps_rms for p in points]).T      # (e, points): each element's own [A rms]
    gains = np.ones((elements, len(points)))
    delays = np.zeros((elements, len(points)))
    for j, p in enumerate(points):
        flat = Calibration(tuple(replace(b, current_a=(float(currents[k, j]),), amps_gain=(1.0,), phase_delay_s=(0.0,))
                                 for k, b in enumerate(base)))
        m1 = measure_step(run, p.unity, flat)
        m2 = measure_step(run, p.phase, flat)
        for step, meas in ((p.unity, m1), (p.phase, m2)):
            if abs(meas.frequency_hz / run.frequency_hz - 1.0) > FREQUENCY_TOLERANCE:
                raise run.fail("frequency_hz", f"{run.frequency_hz:g} Hz stated, but {step.key}'s recording is at "
                                               f"{meas.frequency_hz:.2f} Hz (the phase error becomes a delay at the "
                                               f"line frequency)")
        r1 = m1.power_w / np.asarray(p.unity.power_w)
        rphi = m2.power_w / np.asarray(p.phase.power_w)
        cos_phi = np.asarray(p.phase.power_w) / (np.asarray(p.phase.volts_rms) * np.asarray(p.phase.amps_rms))
        tan_phi = np.sqrt(1.0 - cos_phi ** 2) / cos_phi
        sign = -1.0 if p.phase.lead else 1.0
        beta = np.arctan(sign * (rphi / r1 - 1.0) / tan_phi)
        if not (np.all(np.isfinite(beta)) and np.all(r1 > 0)):
            raise run.fail(f"{p.unity.key}", "the recording measures no positive power at PF 1 — "
                                             "check the channel map and the current's direction")
        gains[:, j] = np.cos(beta) / r1
        beta_deg = np.degrees(beta)
        delays[:, j] = beta_deg / (360.0 * run.frequency_hz)
        pf_text = f"PF {p.phase.power_factor:.2f} {'lead' if p.phase.lead else 'lag'}"
        say(f"{p.unity.current_a:7.2f} A ({p.unity.key} PF 1, {p.phase.key} {pf_text}): current gain "
            f"{', '.join(f'{g:.5f}' for g in gains[:, j])}; phase {', '.join(f'{b:+.4f}°' for b in beta_deg)} "
            f"→ current delayed {', '.join(f'{d * 1e6:+.2f} µs' for d in delays[:, j])}")
    try:
        return Calibration(
            tuple(replace(b, current_a=tuple(float(x) for x in currents[k]),
                          amps_gain=tuple(float(g) for g in gains[k]),
                          phase_delay_s=tuple(float(d) for d in delays[k])) for k, b in enumerate(base)),
            notes=(f"reference: recorded run {run.path} ({len(run.steps)} steps, {run.frequency_hz:g} Hz)",
                   "sequence: offset at the lowest current; voltage gain at the highest current PF 1; "
                   "current gain at PF 1 and phase at the paired phase step per table current", *run.notes),
        )
    except InvalidFrontEnd as exc:
        raise run.fail("step", f"the fitted calibration is unusable ({exc})") from None


__all__ = ["FORMAT", "InvalidReferenceRun", "ReferenceRun", "ReferenceStep", "RecordedMeasurement",
           "load_reference_run", "measure_step", "calibrate_from_reference_run"]
