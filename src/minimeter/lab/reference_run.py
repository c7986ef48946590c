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
   ``cos β / r1`` and the current is delayed by ``β / (360° · frequency_hz)`` [s]
   (:func:`minimeter.lab.calibration.fit_phase_and_gain`).

The steps become a :class:`~minimeter.lab.calibration.CalibrationPlan` fitted by
:func:`~minimeter.lab.calibration.fit_sequence`, the synthetic sequence's own fit;
measurements average whole line cycles (each element's own) after ``settle_s``, exactly
like the synthetic sequence. Every problem with the file raises
:class:`InvalidReferenceRun` naming the file, the key and what is wrong, e.g.
``run.toml: step[3].power_w: -5 must be positive``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from minimeter.formats.reference_run import (FORMAT, InvalidReferenceRun, ReferenceRun, ReferenceStep,
                                             load_reference_run)
from minimeter.lab.analysis import MappedRecording, first_frames, map_recording
from minimeter.lab.calibration import (CalibratedAverages, Calibration, CalibrationFitError, CalibrationPlan,
                                       SequenceStep, average_whole_cycles, fit_sequence)
from minimeter.sources.recordings import InvalidRecording, open_recording

UNITY_PF = 0.99                 # a step at or above this PF is a PF 1 step
PHASE_PF_RANGE = (0.3, 0.9)     # a phase step's PF
PAIR_TOLERANCE = 0.10           # a phase step's current within ±10 % of its PF 1 step's
FREQUENCY_TOLERANCE = 0.02      # recorded line frequency within ±2 % of frequency_hz


# --------------------------------------------------------------------------- the plan
def _sequence_step(step: ReferenceStep) -> SequenceStep:
    return SequenceStep(step.key, np.asarray(step.volts_rms, float), np.asarray(step.amps_rms, float),
                        np.asarray(step.power_w, float), step.lead, step)


def _plan(run: ReferenceRun) -> tuple[CalibrationPlan, int]:
    """The sequence (PF 1 step + phase step per table point, by rising current) and the
    element count."""
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
        points.append((_sequence_step(u), _sequence_step(near[0])))
        used.add(near[0].index)
    for s in phase:
        if s.index not in used:
            raise run.fail(f"{s.key}", f"phase step at {s.current_a:g} A has no PF 1 step "
                                       f"within ±{PAIR_TOLERANCE:.0%}")
    plan = CalibrationPlan(points[0][0], points[-1][0], tuple(points), run.frequency_hz)
    return plan, elements.pop()


# --------------------------------------------------------------------------- measuring
def _mapped(run: ReferenceRun, step: ReferenceStep) -> MappedRecording:
    """The step's recording through its channel map; problems named by the step's key."""
    options = {"columns": list(step.columns) if step.columns else None, "sample_rate_hz": step.sample_rate_hz}
    try:
        reader = open_recording(step.recording, **options)
        first = first_frames(reader)
    except InvalidRecording as exc:
        raise run.fail(f"{step.key}.recording", str(exc)) from None
    try:
        mapped = map_recording(reader, step.channel_map, chunk_frames=1 << 15, first=first)
    except InvalidRecording as exc:
        raise run.fail(f"{step.key}.map", str(exc)) from None
    if mapped.elements != len(step.volts_rms):
        raise run.fail(f"{step.key}.map", f"the map gives {mapped.elements} element(s) ({mapped.channel_map.text()}), "
                                          f"the reference values {len(step.volts_rms)}")
    return mapped


def measure_step(run: ReferenceRun, step: ReferenceStep, calibration: Calibration) -> CalibratedAverages:
    """Stream a step's recording through its channel map and ``calibration``; average the
    whole line cycles that start after ``settle_s``
    (:func:`~minimeter.lab.calibration.average_whole_cycles`)."""
    mapped = _mapped(run, step)
    try:
        got = average_whole_cycles(mapped.chunks, calibration, mapped.sample_rate_hz, settle_s=run.settle_s,
                                   hysteresis_v=0.1 * min(step.volts_rms))
    except InvalidRecording as exc:
        raise run.fail(f"{step.key}.recording", str(exc)) from None
    if got is None:
        raise run.fail(f"{step.key}.recording", f"{step.recording}: no whole line cycle after settle_s = "
                                                f"{run.settle_s:g} s ({mapped.info.duration_s:g} s recorded)")
    return got


def _measure_at_line_frequency(run: ReferenceRun) -> Callable[[SequenceStep, Calibration], CalibratedAverages]:
    """:func:`measure_step` for the sequence, refusing a recording off ``frequency_hz``
    (the phase error becomes a delay at the line frequency)."""
    def measure(step: SequenceStep, calibration: Calibration) -> CalibratedAverages:
        got = measure_step(run, step.source, calibration)
        if abs(got.frequency_hz / run.frequency_hz - 1.0) > FREQUENCY_TOLERANCE:
            raise run.fail("frequency_hz", f"{run.frequency_hz:g} Hz stated, but {step.name}'s recording is at "
                                           f"{got.frequency_hz:.2f} Hz (the phase error becomes a delay at the "
                                           f"line frequency)")
        return got

    return measure


# --------------------------------------------------------------------------- the sequence
def calibrate_from_reference_run(run: ReferenceRun | str | Path,
                                 on_step: Callable[[str], None] | None = None) -> Calibration:
    """The makers' sequence (module docstring; :func:`~minimeter.lab.calibration.fit_sequence`)
    on a recorded reference run. Returns the calibration; the meter loads it with
    ``calibration=``, ``Calibration.save`` writes the file ``minimeter calibrate`` writes."""
    if not isinstance(run, ReferenceRun):
        run = load_reference_run(run)
    plan, elements = _plan(run)
    notes = (f"reference: recorded run {run.path} ({len(run.steps)} steps, {run.frequency_hz:g} Hz)",
             "sequence: offset at the lowest current; voltage gain at the highest current PF 1; "
             "current gain at PF 1 and phase at the paired phase step per table current", *run.notes)
    try:
        return fit_sequence(plan, _measure_at_line_frequency(run), elements, notes, on_step)
    except CalibrationFitError as exc:
        raise run.fail(exc.key, exc.problem) from None


__all__ = ["FORMAT", "InvalidReferenceRun", "ReferenceRun", "ReferenceStep", "load_reference_run", "measure_step",
           "calibrate_from_reference_run"]
