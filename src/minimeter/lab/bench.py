"""The accuracy bench (SPEC S9.2–S9.3, STANDARDS.md): test points through front end →
meter, percent registration from the test output's closures.

Each point builds a synthetic service and load (:mod:`minimeter.sources.service`), streams its
samples chunk by chunk through a :class:`~minimeter.sources.frontend.FrontEnd`
(:class:`~minimeter.sources.frontend.FrontEndSource`) into a :class:`~minimeter.meter.Meter`
(with an optional calibration) by :func:`minimeter.drive.feed_source`, and watches output 10
(Kh = 10 Wh). As meter labs do, the measurement is gated on the output's own edges: from
the first closure to the last, the meter registered ``10 · (N − 1)`` Wh, and the
reference is the analytic energy over the same interval (shifted by the group delay
of the front end and calibration filters), so a fraction of a pulse never counts as
error::

    %R = 100 · 10 Wh · (N − 1) / E_reference(t_first − τ, t_last − τ)

A point runs until it has ``min_pulses + 1`` closures spanning at least ``MIN_GATE_S``
(or a cap of twice the time that should take). The span matters: the meter stamps a
closure by interpolating linearly inside its line cycle, up to ~1/(4πf) ≈ 1.3 ms away
from when the (rippling) energy truly crossed the threshold, so each gate edge is
uncertain by that much; over 120 s that is at most ±0.002 %. Starting load and creep run for their fixed durations (hours of signal):
streamed, with memory of one chunk.

Rows (STANDARDS.md): 1–10 accuracy points; 11 starting load (registers within two
expected pulse periods and keeps registering — each half of the run registers); 12
creep (CT open, at most one pulse in 250 min); 13 dual element; 14 the in-service
figure (4 × full load + light load) / 5 from rows 1 and 2; 15 pulses against the
register over ≥ 1000 pulses (closures = floor(register / Kh) exactly).
Rows 16–19 (:func:`class_points`) are held to IEC 62053-22 class 0.2S
(:func:`class02s_limit`), out of sample: 16 the sweep at 60 and 50 Hz; 17 currents
between the calibration's points, the other line frequency, and unit ``OTHER_CT_UNIT`` of
the CT type; 18 changing loads, judged on the register over the whole run against the
reference energy of the run; 19 creep with the realistic front end, 0 Wh. Each point's
front end is put on the point's line frequency (:meth:`FrontEnd.at_frequency`) — the
physics a CT follows.

Conventions of this project: PF 0.8 points are held to the PF 0.5 limit (±0.75 %);
the sweep (row 7) is 2, 5, 10, 20, 50, 100, 200 and 220 A. The points at 102 V and at
the starting current 0.2 A are run exactly there: the meter judges its supply with a
±0.5 % band and detects the starting current at 80 % of it (see ``minimeter.meter``).
"""

from __future__ import annotations

import html
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

from minimeter.drive import feed_source
from minimeter.lab.calibration import Calibration
from minimeter.meter.core import Meter
from minimeter.meter.register import quanta_for_wh
from minimeter.sources.frontend import FrontEnd, FrontEndSource
from minimeter.sources.service import Harmonic, Load, Profile, Service, ideal_source

KH_WH = 10
OUTPUT = "10"
TEST_AMPS = 100.0                     # TA, half the 200 A rating (STANDARDS.md convention)
RATED_AMPS = 200.0
LIMIT_PF1 = 0.5                       # [%] manual Table 1
LIMIT_PF05 = 0.75                     # [%]
SHIFT_LIMIT_PF1 = 0.2                 # [%] rows 8 and 9
SHIFT_LIMIT_PF05 = 0.4
STARTING_AMPS = 0.2                   # row 11: 0.1 % of 200 A
CREEP_MINUTES = 250.0                 # row 12
SWEEP_AMPS = (2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 220.0)
SWEEP_PFS = ((1.0, False), (0.8, False), (0.8, True), (0.5, False), (0.5, True))
DEFAULT_SAMPLE_RATE_HZ = 2000.0       # S4.7: any rate ≥ 2 kHz
MANUAL_ROWS = tuple(range(1, 16))     # STANDARDS.md rows 1–15: the manual's claim
CLASS_ROWS = (16, 17, 18, 19)         # rows 16–19: IEC 62053-22 class 0.2S, out of sample
ROW16_AMPS = (2.0, 4.0, 10.0, 20.0, 50.0, 100.0, 200.0, 220.0)      # 1 %, 2 %, 5 % … 110 % of In = 200 A
CLASS_PFS = ((1.0, False), (0.5, False), (0.8, True), (0.5, True))
CHANGING_LOAD_S = 120.0               # row 18: each changing-load run [s]
OTHER_CT_UNIT = 3                     # row 17: a unit of the CT type never used by `calibrate --ct-unit 1 --ct-unit 2`
MIN_GATE_S = 120.0                    # least time between the first and last gated closure [s]


@dataclass(frozen=True)
class BenchPoint:
    """One test point. ``amps`` is the load current [A rms] at ``power_factor``; dual
    element points give their ``loads`` explicitly."""

    row: int
    label: str
    kind: str = "accuracy"                   # 'accuracy', 'starting', 'creep', 'register'
    volts: float = 120.0
    amps: float = TEST_AMPS
    power_factor: float = 1.0
    leading: bool = False
    frequency_hz: float = 60.0
    elements: int = 1
    voltage_harmonics: tuple[Harmonic, ...] = ()
    current_harmonics: tuple[Harmonic, ...] = ()
    loads: tuple[Load, ...] = ()
    min_pulses: int = 10
    duration_s: float | None = None          # fixed-length points (starting, creep)
    ct_unit: int | None = None               # another unit of the front end's CT type (row 17)
    limits: str = "manual"                   # 'manual' (Table 1) or 'class02s' (IEC 62053-22, rows 16–19)

    @property
    def limit_percent(self) -> float:
        if self.limits == "class02s":
            return class02s_limit(self.amps, self.power_factor, self.leading)
        return LIMIT_PF1 if self.power_factor >= 0.999 else LIMIT_PF05

    @property
    def pf_text(self) -> str:
        return _pf_name(self.power_factor, self.leading)

    def service(self) -> Service:
        kind = "single" if self.elements == 1 else "split"
        return Service(kind, self.volts, self.frequency_hz, self.voltage_harmonics)

    def load_list(self) -> tuple[Load, ...]:
        if self.loads:
            return self.loads
        if self.kind == "creep" or self.amps == 0:
            return ()
        watts = self.volts * self.amps * self.power_factor
        return (Load(watts, self.power_factor, self.leading, "L1", self.current_harmonics),)


@dataclass(frozen=True)
class PointResult:
    """What the bench measured at one point."""

    point: BenchPoint
    closures: int                 # OFF→ON transitions of output 10
    gated_pulses: int             # N − 1 between the first and last closure
    meter_wh: float               # 10 · (N − 1) [Wh]
    reference_wh: float           # analytic energy over the gated interval [Wh]
    percent_registration: float   # %R; NaN where no pulses were gated
    passed: bool
    signal_s: float               # signal streamed [s]
    register_wh: float            # the meter's register at the end [Wh]
    note: str = ""

    @property
    def error_percent(self) -> float:
        return self.percent_registration - 100.0

    def as_dict(self) -> dict:
        p = self.point
        return {
            "row": p.row, "label": p.label, "kind": p.kind, "volts": p.volts, "amps": p.amps,
            "power_factor": p.power_factor, "leading": p.leading, "frequency_hz": p.frequency_hz,
            "elements": p.elements, "limit_percent": _num(p.limit_percent), "limits": p.limits,
            "ct_unit": p.ct_unit, "min_pulses": p.min_pulses,
            "closures": self.closures, "gated_pulses": self.gated_pulses, "meter_wh": self.meter_wh,
            "reference_wh": _num(self.reference_wh), "percent_registration": _num(self.percent_registration),
            "error_percent": _num(self.error_percent), "passed": self.passed, "signal_s": self.signal_s,
            "register_wh": self.register_wh, "note": self.note,
        }


def _num(x: float):
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class BenchRun:
    """All points of one front end (and calibration)."""

    name: str
    front_end: FrontEnd
    calibrated: bool
    sample_rate_hz: float
    results: tuple[PointResult, ...]
    wall_s: float

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    def tally(self, rows: Iterable[int]) -> str:
        """'passed/points' over these rows ('—' when none ran)."""
        wanted = set(rows)
        mine = [r.passed for r in self.results if r.point.row in wanted]
        return f"{sum(mine)}/{len(mine)}" if mine else "—"

    def worst(self, row: int) -> "PointResult | None":
        """The row's point furthest from passing: the largest |error| / limit (accuracy and
        changing-load points), else the first failed point, else the first."""
        mine = [r for r in self.results if r.point.row == row]
        judged = [r for r in mine if r.point.kind in ("accuracy", "run") and math.isfinite(r.error_percent)
                  and math.isfinite(r.point.limit_percent)]
        if judged:
            return max(judged, key=lambda r: abs(r.error_percent) / r.point.limit_percent)
        return next((r for r in mine if not r.passed), mine[0] if mine else None)

    def rows_passed(self, rows: Iterable[int]) -> bool | None:
        """All points of these rows passed; None when none of them ran."""
        wanted = set(rows)
        mine = [r.passed for r in self.results if r.point.row in wanted]
        return all(mine) if mine else None

    def max_abs_error(self, pf1: bool) -> float:
        """Over the manual's accuracy points (rows 1–15)."""
        errs = [abs(r.error_percent) for r in self.results
                if r.point.kind == "accuracy" and r.point.row in MANUAL_ROWS and math.isfinite(r.error_percent)
                and (r.point.power_factor >= 0.999) == pf1]
        return max(errs) if errs else float("nan")

    def as_dict(self) -> dict:
        return {"name": self.name, "front_end": self.front_end.name, "front_end_description": self.front_end.description,
                "calibrated": self.calibrated, "sample_rate_hz": self.sample_rate_hz, "passed": self.passed,
                "failed": self.failed, "wall_s": self.wall_s, "points": [r.as_dict() for r in self.results]}


# --------------------------------------------------------------------------- the points
def standard_points() -> list[BenchPoint]:
    """STANDARDS.md rows 1–15 (row 14 is derived from rows 1 and 2 after the run)."""
    pts: list[BenchPoint] = []
    add = pts.append
    add(BenchPoint(1, "full load 100 A PF 1", amps=TEST_AMPS, min_pulses=20))
    add(BenchPoint(2, "light load 10 A PF 1", amps=0.1 * TEST_AMPS, min_pulses=10))
    add(BenchPoint(3, "100 A PF 0.5 lag", amps=TEST_AMPS, power_factor=0.5))
    for amps in (20.0, TEST_AMPS):
        for pf in (0.8, 0.5):
            add(BenchPoint(4, f"{amps:g} A PF {pf:g} lead", amps=amps, power_factor=pf, leading=True))
    add(BenchPoint(5, "2 A PF 1", amps=2.0, min_pulses=5))
    add(BenchPoint(5, "2 A PF 0.5 lag", amps=2.0, power_factor=0.5, min_pulses=5))
    add(BenchPoint(5, "2 A PF 0.5 lead", amps=2.0, power_factor=0.5, leading=True, min_pulses=5))
    add(BenchPoint(6, "200 A PF 1", amps=RATED_AMPS, min_pulses=20))
    add(BenchPoint(6, "220 A PF 1", amps=1.1 * RATED_AMPS, min_pulses=20))
    for amps in SWEEP_AMPS:
        for pf, lead in SWEEP_PFS:
            name = "1" if pf == 1.0 else f"{pf:g} {'lead' if lead else 'lag'}"
            add(BenchPoint(7, f"sweep {amps:g} A PF {name}", amps=amps, power_factor=pf, leading=lead and pf < 1,
                           min_pulses=5))
    for volts in (102.0, 108.0, 132.0, 138.0):
        add(BenchPoint(8, f"{volts:g} V 100 A PF 1", volts=volts))
        add(BenchPoint(8, f"{volts:g} V 100 A PF 0.5 lag", volts=volts, power_factor=0.5))
    for f in (50.0, 58.8, 61.2):
        add(BenchPoint(9, f"{f:g} Hz 100 A PF 1", frequency_hz=f))
    add(BenchPoint(10, "harmonics V5 10 %, I5 40 %, 100 A", voltage_harmonics=(Harmonic(5, 0.10),),
                   current_harmonics=(Harmonic(5, 0.40),), min_pulses=20))
    period = 3600.0 * KH_WH / (120.0 * STARTING_AMPS)
    add(BenchPoint(11, f"starting load {STARTING_AMPS:g} A PF 1", kind="starting",
                   amps=STARTING_AMPS, duration_s=2 * period, min_pulses=1))
    for volts in (132.0, 138.0):
        add(BenchPoint(12, f"creep {volts:g} V, CT open", kind="creep", volts=volts, amps=0.0,
                       duration_s=CREEP_MINUTES * 60.0, min_pulses=0))
    for pf, lead in ((1.0, False), (0.5, False), (0.5, True)):
        loads = (Load(120.0 * 40.0 * pf, pf, lead, "L1"), Load(120.0 * 15.0 * pf, pf, lead, "L2"),
                 Load(240.0 * 25.0 * pf, pf, lead, "L1-L2"))
        name = "1" if pf == 1.0 else f"0.5 {'lead' if lead else 'lag'}"
        add(BenchPoint(13, f"dual element split phase PF {name}", elements=2, power_factor=pf, leading=lead,
                       loads=loads, amps=0.0, min_pulses=20))
    add(BenchPoint(15, "pulses vs register, 200 A PF 1", kind="register", amps=RATED_AMPS, min_pulses=1000))
    return pts


def class02s_limit(amps: float, power_factor: float, leading: bool) -> float:
    """IEC 62053-22 class 0.2S (STANDARDS.md, "Beyond the manual"), In = RATED_AMPS [%]:
    PF 1 ±0.4 % from 1 % In, ±0.2 % from 5 % In; PF 0.5 lag and 0.8 lead ±0.5 % from 2 %
    In, ±0.3 % from 10 % In; PF 0.5 lead ±0.3 % from 10 % In (±0.5 % from 2 % In, this
    project's convention as for lag). NaN outside the table (no limit: not a test point)."""
    share = amps / RATED_AMPS
    if share > 1.1 + 1e-9:
        return math.nan
    if power_factor >= 0.999:
        return 0.2 if share >= 0.05 - 1e-9 else 0.4 if share >= 0.01 - 1e-9 else math.nan
    known = (abs(power_factor - 0.5) < 1e-6) or (abs(power_factor - 0.8) < 1e-6 and leading)
    if not known:
        return math.nan
    return 0.3 if share >= 0.1 - 1e-9 else 0.5 if share >= 0.02 - 1e-9 else math.nan


def _pf_name(pf: float, lead: bool) -> str:
    return "1" if pf >= 0.999 else f"{pf:g} {'lead' if lead else 'lag'}"


def zero_cross_profile(values_w: tuple[float, float], on_s: float, frequency_hz: float) -> Profile:
    """Watts alternating ``values_w[0]`` → ``values_w[1]`` every ``on_s`` [s], switched at
    the voltage's rising zero crossing (the bench's voltage is a cosine: ``3/(4f)``), as a
    zero-cross contactor or burst-fire controller switches. Switching mid-cycle at PF 0.5
    would make cycles of net reverse energy, which the meter (import per cycle) leaves
    out — a different test."""
    z = 0.75 / frequency_hz
    return Profile((z, z + on_s), values_w, 2.0 * on_s)


def class_points(frequencies_hz: Sequence[float] = (60.0, 50.0)) -> list[BenchPoint]:
    """STANDARDS.md rows 16–19, judged against the class 0.2S table (:func:`class02s_limit`)."""
    pts: list[BenchPoint] = []
    add = pts.append
    for f in frequencies_hz:
        for pf, lead in CLASS_PFS:
            for amps in ROW16_AMPS:
                if math.isfinite(class02s_limit(amps, pf, lead)):
                    add(BenchPoint(16, f"0.2S {f:g} Hz {amps:g} A PF {_pf_name(pf, lead)}", amps=amps, power_factor=pf,
                                   leading=lead, frequency_hz=f, min_pulses=5, limits="class02s"))
    between = ((3.0, 1.0, False), (7.0, 0.5, False), (15.0, 1.0, False), (30.0, 0.5, False), (70.0, 0.5, True),
               (150.0, 0.5, False))
    other_f = ((7.0, 0.5, False), (30.0, 0.5, True), (150.0, 0.5, False), (150.0, 0.8, True))
    unit = ((3.0, 1.0, False, 60.0), (7.0, 0.5, False, 60.0), (30.0, 0.5, True, 60.0), (150.0, 0.5, False, 60.0),
            (30.0, 0.5, False, 50.0), (150.0, 0.5, True, 50.0))
    for amps, pf, lead in between:
        add(BenchPoint(17, f"between table points: {amps:g} A PF {_pf_name(pf, lead)}", amps=amps, power_factor=pf,
                       leading=lead, min_pulses=5, limits="class02s"))
    for amps, pf, lead in other_f:
        add(BenchPoint(17, f"50 Hz: {amps:g} A PF {_pf_name(pf, lead)}", amps=amps, power_factor=pf, leading=lead,
                       frequency_hz=50.0, min_pulses=5, limits="class02s"))
    for amps, pf, lead, f in unit:
        add(BenchPoint(17, f"CT #{OTHER_CT_UNIT}, {f:g} Hz: {amps:g} A PF {_pf_name(pf, lead)}", amps=amps,
                       power_factor=pf, leading=lead, frequency_hz=f, ct_unit=OTHER_CT_UNIT, min_pulses=5,
                       limits="class02s"))
    for pf in (1.0, 0.5):
        step = Load(0.0, pf, profile=zero_cross_profile((120.0 * 5.0 * pf, 120.0 * 150.0 * pf), 0.5, 60.0))
        burst = Load(0.0, pf, profile=zero_cross_profile((120.0 * 100.0 * pf, 0.0), 10 / 60.0, 60.0))
        add(BenchPoint(18, f"5 ↔ 150 A every 0.5 s, PF {_pf_name(pf, False)}", kind="run", amps=150.0,
                       power_factor=pf, loads=(step,), duration_s=CHANGING_LOAD_S, min_pulses=0, limits="class02s"))
        add(BenchPoint(18, f"burst 100 A, 10 cycles on / 10 off, PF {_pf_name(pf, False)}", kind="run", amps=100.0,
                       power_factor=pf, loads=(burst,), duration_s=CHANGING_LOAD_S, min_pulses=0, limits="class02s"))
    add(BenchPoint(19, "creep 138 V, CT open, realistic front end", kind="creep", volts=138.0, amps=0.0,
                   duration_s=CREEP_MINUTES * 60.0, min_pulses=0, limits="class02s"))
    return pts


def all_points() -> list[BenchPoint]:
    """Rows 1–19: the manual's (:func:`standard_points`) and class 0.2S (:func:`class_points`)."""
    return standard_points() + class_points()


def select_points(points: Sequence[BenchPoint], rows: Iterable[int] | None) -> list[BenchPoint]:
    if rows is None:
        return list(points)
    wanted = set(rows)
    return [p for p in points if p.row in wanted]


def expected_signal_s(point: BenchPoint) -> float:
    """Signal a point should need [s] (for progress bars)."""
    if point.duration_s is not None:
        return point.duration_s
    period = 3600.0 * KH_WH / _nominal_power_w(point)
    return max((point.min_pulses + 1.6) * period, MIN_GATE_S + 1.6 * period) + 1.0


def _nominal_power_w(point: BenchPoint) -> float:
    loads = point.load_list()
    source = ideal_source(point.service(), loads, point.elements)
    period = 1.0 / point.frequency_hz
    return float(source.energy_wh(0.0, period).sum() * 3600.0 / period)


# --------------------------------------------------------------------------- running
@dataclass(frozen=True)
class _Streamed:
    """What streaming one point left: the output's energy closures and the meter."""

    meter: Meter
    closure_times_s: tuple[float, ...]     # OFF→ON of output 10 marking energy [s]
    half_wh: float                         # the register half-way through (starting points) [Wh]
    signal_s: float                        # signal streamed [s]
    duration_s: float                      # signal the point could take [s]


def _point_duration_s(point: BenchPoint) -> float:
    return point.duration_s if point.duration_s is not None else 2.0 * expected_signal_s(point) + 2.0


def _gated_enough(point: BenchPoint, times: list[float]) -> bool:
    """An accuracy point's gate is complete: enough closures spanning ``MIN_GATE_S``."""
    return (point.kind in ("accuracy", "register") and len(times) >= point.min_pulses + 1
            and times[-1] - times[0] >= MIN_GATE_S)


def _stream_point(point: BenchPoint, meter: Meter, source: FrontEndSource, sample_rate_hz: float, chunk_frames: int,
                  progress: Callable[[float], None] | None) -> _Streamed:
    """Feed the point's signal (through :func:`minimeter.drive.feed_source`) until its
    gate is complete or its duration is streamed."""
    duration = _point_duration_s(point)
    times: list[float] = []
    half_wh, signal = math.nan, 0.0
    for update, reached in feed_source(meter, source, duration, sample_rate_hz=sample_rate_hz,
                                       chunk_frames=chunk_frames):
        times.extend(tr.time_s for tr in update.transitions
                     if tr.output == OUTPUT and tr.state and tr.cause == "energy")
        if progress is not None and reached > signal:
            progress(reached - signal)
        signal = max(signal, reached)
        if point.kind == "starting" and math.isnan(half_wh) and signal >= duration / 2:
            half_wh = meter.watt_hours
        if _gated_enough(point, times):
            break
    return _Streamed(meter, tuple(times), half_wh, signal, duration)


def _registration(streamed: _Streamed, source: FrontEndSource, delay_s: float) -> tuple[int, float, float, float]:
    """(pulses gated, meter Wh, reference Wh, %R) from the first to the last closure,
    the reference shifted by the filters' group delay ``delay_s`` [s]."""
    times = streamed.closure_times_s
    gated = max(len(times) - 1, 0)
    if gated < 1:
        return 0, 0.0, math.nan, math.nan
    reference = float(source.energy_wh(times[0] - delay_s, times[-1] - delay_s).sum())
    meter_wh = float(KH_WH * gated)
    return gated, meter_wh, reference, (100.0 * meter_wh / reference if reference > 0 else math.nan)


def _judge(point: BenchPoint, streamed: _Streamed, gated: int, pr: float) -> tuple[bool, str]:
    """Pass or fail, and a note, by the point's kind."""
    meter = streamed.meter
    closures, register_wh = meter.closures(OUTPUT), meter.watt_hours
    within = math.isfinite(pr) and abs(pr - 100.0) <= point.limit_percent
    if point.kind == "accuracy":
        note = f"only {gated} pulses gated (want {point.min_pulses})" if gated < point.min_pulses else ""
        return gated >= point.min_pulses and within, note
    if point.kind == "register":
        due = meter.register_quanta // quanta_for_wh(KH_WH)
        exact = register_wh >= 0 and closures == due
        return (exact and closures >= point.min_pulses and within,
                f"closures {closures} {'=' if exact else '≠'} floor(register / Kh) = {due}")
    if point.kind == "starting":
        half = streamed.half_wh
        second_half = register_wh - (half if math.isfinite(half) else 0.0)
        expected_half = _nominal_power_w(point) * streamed.duration_s / 2 / 3600.0
        keeps = math.isfinite(half) and half > 0.5 * expected_half and second_half > 0.5 * expected_half
        return (closures >= 1 and keeps, f"registered {register_wh:.3f} Wh of {2 * expected_half:.3f} Wh due "
                                         f"(first half {half:.3f}, second half {second_half:.3f} Wh)")
    if point.kind == "run":
        return within, (f"register {register_wh:.4f} Wh against the reference's {streamed.signal_s:g} s: "
                        f"{pr - 100.0:+.4f} %")
    if point.limits == "class02s":
        return register_wh == 0.0, f"register {register_wh:.6f} Wh over {streamed.duration_s / 60:g} min (want 0)"
    return closures <= 1, f"{closures} pulse(s), register {register_wh:.6f} Wh over {streamed.duration_s / 60:g} min"


def run_point(
    point: BenchPoint,
    front_end: FrontEnd,
    calibration: Calibration | None = None,
    *,
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
    chunk_frames: int = 1 << 16,
    progress: Callable[[float], None] | None = None,
) -> PointResult:
    """Stream one point through front end → meter; ``progress(seconds)`` after each chunk."""
    fs = float(sample_rate_hz)
    model = "MO" if point.elements == 1 else "7B"
    meter = Meter.for_model(model, ct_rating=f"{RATED_AMPS:g}A", calibration=calibration)
    physics = front_end.at_frequency(point.frequency_hz)
    if point.ct_unit is not None:
        physics = physics.with_ct_unit(point.ct_unit)
    source = FrontEndSource(ideal_source(point.service(), point.load_list(), point.elements), physics)
    streamed = _stream_point(point, meter, source, fs, chunk_frames, progress)
    delay = physics.group_delay_s(fs) + (calibration.group_delay_s(fs) if calibration is not None else 0.0)
    if point.kind == "run":
        gated, meter_wh = 0, meter.watt_hours
        reference = float(source.energy_wh(0.0, streamed.signal_s - delay).sum())
        pr = 100.0 * meter_wh / reference if reference > 0 else math.nan
    else:
        gated, meter_wh, reference, pr = _registration(streamed, source, delay)
    passed, note = _judge(point, streamed, gated, pr)
    return PointResult(point, meter.closures(OUTPUT), gated, meter_wh, reference, pr, bool(passed), streamed.signal_s,
                       meter.watt_hours, note)


def judge_shifts(results: list[PointResult]) -> list[PointResult]:
    """Rows 8 and 9: the shift from the 120 V / 60 Hz figure must stay within 0.2 %
    (0.4 % at PF 0.5); the 120 V, 60 Hz figures are rows 1 (PF 1) and 3 (PF 0.5 lag)."""
    base = {}
    for r in results:
        if r.point.row == 1:
            base[1.0] = r.percent_registration
        elif r.point.row == 3:
            base[0.5] = r.percent_registration
    out = []
    for r in results:
        if r.point.row in (8, 9) and r.point.power_factor in base and math.isfinite(base[r.point.power_factor]):
            shift = r.percent_registration - base[r.point.power_factor]
            limit = SHIFT_LIMIT_PF1 if r.point.power_factor >= 0.999 else SHIFT_LIMIT_PF05
            ok = math.isfinite(shift) and abs(shift) <= limit
            r = replace(r, passed=r.passed and ok, note=(r.note + "; " if r.note else "")
                        + f"shift from nominal {shift:+.3f} % (limit ±{limit:g} %)")
        out.append(r)
    return out


def in_service_result(results: list[PointResult]) -> PointResult | None:
    """Row 14: (4 × full load + light load) / 5 from rows 1 and 2, within 98–102 %."""
    full = next((r for r in results if r.point.row == 1), None)
    light = next((r for r in results if r.point.row == 2), None)
    if full is None or light is None:
        return None
    value = (4 * full.percent_registration + light.percent_registration) / 5
    passed = math.isfinite(value) and 98.0 <= value <= 102.0
    point = BenchPoint(14, "in-service check (4 × full + light) / 5", kind="derived", min_pulses=0)
    return PointResult(point, 0, 0, 0.0, 0.0, value, passed, 0.0, 0.0, "derived from rows 1 and 2; pass 98–102 %")


def run_bench(
    name: str,
    front_end: FrontEnd,
    calibration: Calibration | None = None,
    *,
    points: Sequence[BenchPoint] | None = None,
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
    progress: Callable[[float], None] | None = None,
    on_point: Callable[[PointResult], None] | None = None,
) -> BenchRun:
    """Run every point (default: :func:`standard_points`, the manual's rows; :func:`all_points`
    adds rows 16–19). Calibrations are per element
    count: pass a :class:`Calibration` for one element; dual-element points use
    ``calibration_for(2)`` when the calibration object offers it."""
    pts = list(points if points is not None else standard_points())
    t0 = time.perf_counter()
    results = []
    for p in pts:
        cal = calibration
        if cal is not None and len(cal.elements) != p.elements:
            cal = replace(cal, elements=tuple(cal.elements[0] for _ in range(p.elements))
                          if len(cal.elements) == 1 else cal.elements[:p.elements])
        r = run_point(p, front_end, cal, sample_rate_hz=sample_rate_hz, progress=progress)
        results.append(r)
        if on_point is not None:
            on_point(r)
    results = judge_shifts(results)
    derived = in_service_result(results)
    if derived is not None:
        results.append(derived)
    results.sort(key=lambda r: r.point.row)
    return BenchRun(name, front_end, calibration is not None, sample_rate_hz, tuple(results), time.perf_counter() - t0)


# --------------------------------------------------------------------------- summary
def summary_rows(runs: Sequence[BenchRun]) -> list[list[str]]:
    """The summary table: one line per run; the manual's rows and the class 0.2S rows
    counted apart."""
    rows = []
    for run in runs:
        acc = lambda rows_: {True: "pass", False: "FAIL", None: "—"}[run.rows_passed(rows_)]  # noqa: E731
        rows.append([
            run.name, run.tally(MANUAL_ROWS),
            _pct(run.max_abs_error(True)), _pct(run.max_abs_error(False)),
            acc(range(1, 11)), acc([11]), acc([12]), acc([13]), acc([14]), acc([15]),
            run.tally(CLASS_ROWS), acc([16]), acc([17]), acc([18]), acc([19]),
            f"{run.wall_s:.0f} s" if run.wall_s >= 10 else f"{run.wall_s:.2f} s",
        ])
    return rows


SUMMARY_HEADER = ["run", "rows 1-15", "max|err| PF1", "max|err| PF<1", "rows 1-10", "11 start", "12 creep",
                  "13 dual", "14 in-svc", "15 pulses", "rows 16-19", "16 0.2S", "17 out", "18 change", "19 creep",
                  "wall"]


def class_rows(runs: Sequence[BenchRun]) -> list[list[str]]:
    """Rows 16–19 against class 0.2S: per row and run, the worst point (its error against
    its limit, or the creep register) and the row's verdict."""
    out = []
    for row in CLASS_ROWS:
        line = [str(row)]
        for run in runs:
            r = run.worst(row)
            if r is None:
                line += ["—", "—"]
                continue
            if r.point.kind == "creep":
                line.append(f"{r.register_wh:.4f} Wh (limit 0 Wh)")
            else:
                line.append(f"{r.error_percent:+.4f} % (±{r.point.limit_percent:g} %) at {r.point.label}")
            line.append(f"{run.tally([row])} " + {True: "pass", False: "FAIL"}[bool(run.rows_passed([row]))])
        out.append(line)
    return out


def class_header(runs: Sequence[BenchRun]) -> list[str]:
    return ["row"] + [h for run in runs for h in (f"{run.name}: worst point", f"{run.name}: passed")]


def _pct(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.4f} %"


# --------------------------------------------------------------------------- report
_STYLE = ("body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right} th{background:#eee}"
          "td.l{text-align:left} .pass{color:#070} .fail{color:#c00;font-weight:bold} img{max-width:48%}")


def write_report(runs: Sequence[BenchRun], out_dir, title: str = "minimeter accuracy bench") -> dict:
    """Write ``bench.json``, one PNG per power factor (error against current, every run,
    with the ±0.5 % / ±0.75 % bands) and ``index.html`` (summary and the point table,
    runs side by side) into ``out_dir``. Returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "html": out / "index.html", "plots": []}
    payload = {"title": title, "summary_header": SUMMARY_HEADER, "summary": summary_rows(runs),
               "class_header": class_header(runs), "class_rows": class_rows(runs),
               "runs": [r.as_dict() for r in runs]}
    paths["json"].write_text(json.dumps(payload, indent=1))
    paths["plots"] = _plots(runs, out)
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{_STYLE}"
             "</style></head><body>", f"<h1>{esc(title)}</h1>",
             "<p>Percent registration from output 10 (Kh = 10 Wh) closures, gated on the output's own edges; "
             "limits from the manual's claim (±0.5 % at PF 1, ±0.75 % at PF 0.5; PF 0.8 held to ±0.75 %). "
             "Rows 16–19 are held to IEC 62053-22 class 0.2S (±0.2 % at PF 1 from 5 % In, ±0.3 % at PF 0.5 "
             "from 10 % In; In = 200 A), out of sample. See STANDARDS.md for the rows.</p>"]
    parts += _summary_html(runs)
    parts += _table_html("Class 0.2S, out of sample (rows 16–19): the worst point per row", class_header(runs),
                         class_rows(runs))
    parts.append("<h2>Error against current</h2>")
    parts += [f"<img src='{esc(p.name)}' alt='{esc(p.stem)}'>" for p in paths["plots"]]
    parts += _points_html(runs)
    parts.append("</body></html>")
    paths["html"].write_text("".join(parts))
    return paths


def _table_html(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    esc = html.escape
    parts = [f"<h2>{esc(title)}</h2><table><tr>"] + [f"<th>{esc(h)}</th>" for h in header] + ["</tr>"]
    for row in rows:
        parts.append("<tr>" + "".join(
            f"<td class='{'fail' if 'FAIL' in c else 'pass' if c.endswith('pass') else 'l'}'>{esc(c)}</td>"
            for c in row) + "</tr>")
    return parts + ["</table>"]


def _summary_html(runs: Sequence[BenchRun]) -> list[str]:
    """The summary table and one line per run."""
    esc = html.escape
    parts = ["<h2>Summary</h2><table><tr>"] + [f"<th>{esc(h)}</th>" for h in SUMMARY_HEADER] + ["</tr>"]
    for row in summary_rows(runs):
        parts.append("<tr>" + "".join(
            f"<td class='{'l' if k == 0 else ('pass' if c == 'pass' else 'fail' if c == 'FAIL' else '')}'>{esc(c)}</td>"
            for k, c in enumerate(row)) + "</tr>")
    parts.append("</table><ul>")
    for run in runs:
        parts.append(f"<li><b>{esc(run.name)}</b>: {esc(run.front_end.description or run.front_end.name)}"
                     f"{', calibrated' if run.calibrated else ', uncalibrated'}; {run.sample_rate_hz:g} Hz samples</li>")
    return parts + ["</ul>"]


def _points_html(runs: Sequence[BenchRun]) -> list[str]:
    """The point table: a row per point, three cells per run."""
    esc = html.escape
    parts = ["<h2>Points</h2><table><tr><th>row</th><th>point</th><th>limit</th>"]
    for run in runs:
        parts.append(f"<th>{esc(run.name)} pulses</th><th>{esc(run.name)} error</th><th>{esc(run.name)}</th>")
    parts.append("</tr>")
    for k, r0 in enumerate(runs[0].results):
        parts.append(f"<tr><td>{r0.point.row}</td><td class='l'>{esc(r0.point.label)}</td>"
                     f"<td>{_limit_text(r0.point)}</td>")
        parts += [_point_cells(run.results[k]) for run in runs]
        parts.append("</tr>")
    return parts + ["</table>"]


def _point_cells(r: PointResult) -> str:
    verdict = "pass" if r.passed else "FAIL"
    err = "—" if not math.isfinite(r.error_percent) else f"{r.error_percent:+.4f} %"
    if r.point.kind in ("starting", "creep"):
        err = html.escape(r.note)
    elif r.point.kind == "run":
        err = f"{r.error_percent:+.4f} % (whole run)" if math.isfinite(r.error_percent) else "—"
    elif r.point.kind == "derived":
        err = f"{r.percent_registration:.4f} %" if math.isfinite(r.percent_registration) else "—"
    pulses = r.gated_pulses if r.point.kind in ("accuracy", "register") else r.closures
    return f"<td>{pulses}</td><td class='l'>{err}</td><td class='{verdict.lower()}'>{verdict}</td>"


def _limit_text(point: BenchPoint) -> str:
    if point.limits == "class02s":
        return {"accuracy": f"±{point.limit_percent:g} % (0.2S)", "run": f"±{point.limit_percent:g} % (0.2S, run)",
                "creep": "0 Wh"}.get(point.kind, "")
    if point.kind == "accuracy":
        return f"±{point.limit_percent:g} %"
    return {"starting": "registers", "creep": "≤ 1 pulse", "register": "exact", "derived": "98–102 %"}.get(point.kind, "")


def _plots(runs: Sequence[BenchRun], out) -> list:
    """One PNG per power factor of the sweep (row 7): error [%] against current [A]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for pf, lead in SWEEP_PFS:
        label = "1" if pf == 1.0 else f"{pf:g} {'lead' if lead else 'lag'}"
        fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.0), dpi=100)
        limit = LIMIT_PF1 if pf == 1.0 else LIMIT_PF05
        any_points = False
        for run in runs:
            pts = [r for r in run.results if r.point.row == 7 and r.point.power_factor == pf
                   and (pf == 1.0 or r.point.leading == lead) and math.isfinite(r.error_percent)]
            if not pts:
                continue
            any_points = True
            pts.sort(key=lambda r: r.point.amps)
            for ax in axes:
                ax.plot([r.point.amps for r in pts], [r.error_percent for r in pts], marker="o", label=run.name)
        if not any_points:
            plt.close(fig)
            continue
        for k, ax in enumerate(axes):
            ax.axhspan(-limit, limit, color="tab:green", alpha=0.12, label=f"±{limit:g} % claim")
            ax.axhline(limit, color="tab:green", lw=0.8)
            ax.axhline(-limit, color="tab:green", lw=0.8)
            ax.axvline(2.0, color="grey", lw=0.6, ls=":")
            ax.set_xscale("log")
            ax.set_xlabel("current [A rms]")
            ax.set_ylabel("registration error [%]")
            ax.grid(True, which="both", alpha=0.3)
            if k == 0:
                lo, hi = ax.get_ylim()
                ax.set_ylim(min(lo, -1.5 * limit), max(hi, 1.5 * limit))
                ax.set_title(f"Row 7 sweep, PF {label}, 120 V 60 Hz")
                ax.legend(fontsize=8)
            else:
                ax.set_ylim(-2 * limit, 2 * limit)
                ax.set_title(f"the same, zoomed to ±{2 * limit:g} %")
        fig.tight_layout()
        name = f"error_pf_{label.replace(' ', '_').replace('.', '')}.png"
        fig.savefig(out / name)
        plt.close(fig)
        written.append(out / name)
    return written + _class_plots(runs, out, plt)


def _class_plots(runs: Sequence[BenchRun], out, plt) -> list:
    """Row 16: error [%] against current per power factor, one PNG per line frequency,
    with the class 0.2S limits as a band."""
    written = []
    freqs = sorted({r.point.frequency_hz for run in runs for r in run.results if r.point.row == 16}, reverse=True)
    for f in freqs:
        fig, axes = plt.subplots(1, len(CLASS_PFS), figsize=(16.0, 4.0), dpi=100, sharey=True)
        for ax, (pf, lead) in zip(axes, CLASS_PFS):
            grid = [a for a in ROW16_AMPS if math.isfinite(class02s_limit(a, pf, lead))]
            limits = [class02s_limit(a, pf, lead) for a in grid]
            ax.fill_between(grid, [-x for x in limits], limits, step="post", color="tab:green", alpha=0.12,
                            label="class 0.2S")
            for run in runs:
                pts = sorted((r for r in run.results if r.point.row == 16 and r.point.frequency_hz == f
                              and r.point.power_factor == pf and r.point.leading == lead
                              and math.isfinite(r.error_percent)), key=lambda r: r.point.amps)
                if pts:
                    ax.plot([r.point.amps for r in pts], [r.error_percent for r in pts], marker="o", label=run.name)
            ax.set_xscale("log")
            ax.set_ylim(-1.0, 1.0)
            ax.set_xlabel("current [A rms]")
            ax.set_title(f"Row 16, {f:g} Hz, PF {_pf_name(pf, lead)}")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel("registration error [%]")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        name = f"class02s_{f:g}hz.png"
        fig.savefig(out / name)
        plt.close(fig)
        written.append(out / name)
    return written
