"""Power-quality events (SPEC S12.3, IEC 61000-4-30 §5.4): voltage dips, swells and
interruptions, per element, against the declared voltage U_din.

Judged on U_rms(½): the rms over one line cycle, refreshed every half cycle (each value
covers the half cycle just ended and the one before it), timestamped at its window's end.

====================  ===============  ================  ==========================
event                 starts below     ends at or above  extreme reported
====================  ===============  ================  ==========================
dip                   90 % U_din        92 %              residual (lowest U_rms(½))
interruption          5 % U_din         7 %               residual
swell                 above 110 %       at or below 108 % height (highest U_rms(½))
====================  ===============  ================  ==========================

An interruption is also a dip (both are reported). The raised
:class:`~minimeter.meter.Event` comes at the end of the first U_rms(½) beyond the
threshold (IEC's time stamp), with that value [V]. The cleared one comes at the event's
end with the extreme [V] and a message giving the residual or height as % of U_din, the
depth (U_din − residual, for dips and interruptions), the start and the duration. Start
and end are placed inside the one-cycle windows that detected and ended the event, where
a step from the level before the event to its extreme gives the windows' values — the
windows' ends alone would misplace an edge by up to a cycle, depending on the depth
(an interruption is only detected once a whole window is below 5 %).

The phasor path has no samples, so no half cycles: there each line cycle's rms is judged
once, at the cycle's end (durations in whole cycles).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from minimeter.meter.core import Event
from minimeter.meter.snapshot import EventKind, snapshot_state_type

DIP_START = 0.90                    # of the declared voltage (IEC 61000-4-30 typical thresholds)
SWELL_START = 1.10
INTERRUPTION_START = 0.05
HYSTERESIS = 0.02                   # of the declared voltage

# kind, start threshold, end threshold, whether "beyond" is below
_LIMITS = (
    (EventKind.DIP, DIP_START, DIP_START + HYSTERESIS, True),
    (EventKind.INTERRUPTION, INTERRUPTION_START, INTERRUPTION_START + HYSTERESIS, True),
    (EventKind.SWELL, SWELL_START, SWELL_START - HYSTERESIS, False),
)


@snapshot_state_type
@dataclass(frozen=True)
class OpenEvent:
    """A dip, swell or interruption under way."""

    kind: str
    element: int                    # 1-based
    detected_s: float               # end of the first U_rms(½) window beyond the threshold [s]
    window_s: float                 # that window's length [s]
    first_v: float                  # its value [V]
    before_v: float                 # the value one window before it: the level before the event [V]
    extreme_v: float                # the lowest (dip, interruption) or highest (swell) value so far [V]


@snapshot_state_type
@dataclass(frozen=True)
class PqState:
    """What the judgement carries from one chunk to the next."""

    half_sq: tuple[float, ...] | None = None      # Σv²·weight of the last half cycle, per element
    half_w: float = 0.0                           # its weight [samples]
    open_events: tuple[OpenEvent, ...] = ()
    recent_v: tuple[tuple[float, float], ...] | None = None     # the last two values judged, per element [V]


def half_cycle_rms(state: PqState, half_sq: np.ndarray, half_w: np.ndarray) -> tuple[np.ndarray, np.ndarray, PqState]:
    """U_rms(½) at the end of each half cycle of ``half_sq`` (e, h) / ``half_w`` (h,):
    one cycle's rms (this half and the one before; NaN for an empty window, which judges
    nothing), and each window's length [samples].
    The first half of a stream has no predecessor and gives no value (the results then
    have h − 1 columns)."""
    e = half_sq.shape[0]
    if half_w.size == 0:
        return np.zeros((e, 0)), np.zeros(0), state
    sq, w = half_sq, half_w
    if state.half_sq is not None:
        sq = np.concatenate((np.array(state.half_sq, float)[:, None], half_sq), axis=1)
        w = np.concatenate(([state.half_w], half_w))
    pair_sq, pair_w = sq[:, 1:] + sq[:, :-1], w[1:] + w[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.where(pair_w > 0, np.sqrt(np.maximum(pair_sq, 0.0) / np.where(pair_w > 0, pair_w, 1.0)), np.nan)
    new = replace(state, half_sq=tuple(float(x) for x in half_sq[:, -1]), half_w=float(half_w[-1]))
    return rms, pair_w, new


def judge(state: PqState, times_s: np.ndarray, window_s: np.ndarray, rms_v: np.ndarray,
          declared_v: float) -> tuple[PqState, list[Event]]:
    """Dips, swells and interruptions over rms values ``rms_v`` (e, r) of windows
    ``window_s`` (r,) long ending at ``times_s`` (r,) [s]."""
    events: list[Event] = []
    if times_s.size == 0:
        return state, events
    open_events = {(ev.kind, ev.element): ev for ev in state.open_events}
    e = rms_v.shape[0]
    recent = np.full((e, 2), declared_v) if state.recent_v is None else np.array(state.recent_v, float)
    for k in range(e):
        x = rms_v[k]
        before = np.concatenate((recent[k], x))[:-2]            # the value one window (two halves) earlier
        for kind, start, end, below in _LIMITS:
            key = (kind.value, k + 1)
            beyond = x < start * declared_v if below else x > start * declared_v
            if key not in open_events and not beyond.any():
                continue                                  # the common case: nothing to do
            back = x >= end * declared_v if below else x <= end * declared_v
            now = _edges(kind, k + 1, (times_s, window_s, x, before), beyond, back, below, open_events.get(key),
                         declared_v, events)
            open_events.pop(key, None)
            if now is not None:
                open_events[key] = now
    last_two = np.concatenate((recent, rms_v), axis=1)[:, -2:]
    events.sort(key=lambda ev: ev.time_s)
    ordered = tuple(sorted(open_events.values(), key=lambda ev: (ev.kind, ev.element)))
    return replace(state, open_events=ordered, recent_v=tuple((float(a), float(b)) for a, b in last_two)), events


def _edges(kind: EventKind, element: int, values: tuple, beyond: np.ndarray, back: np.ndarray,
           below: bool, now: OpenEvent | None, declared_v: float, out: list[Event]) -> OpenEvent | None:
    """Walk the edges of one condition (only where some value is beyond, or it is open)."""
    t, window, x, before = values
    i = 0
    r = x.size
    while i < r:
        if now is None:
            starts = np.flatnonzero(beyond[i:])
            if not starts.size:
                return None
            i += int(starts[0])
            now = OpenEvent(kind.value, element, float(t[i]), float(window[i]), float(x[i]), float(before[i]), float(x[i]))
            out.append(Event(float(t[i]), kind, True, element, float(x[i]),
                             f"{kind.value} on L{element}: {x[i]:.1f} V ({100 * x[i] / declared_v:.1f} % of "
                             f"{declared_v:g} V declared)"))
        ends = np.flatnonzero(back[i:])
        stop = i + int(ends[0]) if ends.size else r
        seg = x[i:stop]
        if seg.size:
            extreme = float(min(now.extreme_v, seg.min()) if below else max(now.extreme_v, seg.max()))
            now = replace(now, extreme_v=extreme)
        if not ends.size:
            return now
        out.append(_cleared(now, kind, float(t[stop]), float(window[stop]), float(x[stop]), below, declared_v))
        now = None
        i = stop + 1
    return now


def _share(level_v: float, value_v: float, extreme_v: float) -> float:
    """The share of a window spent at ``extreme_v`` whose rms is ``value_v``, the rest at
    ``level_v`` (a step: value² = s·extreme² + (1 − s)·level²), within [0, 1]."""
    span = level_v ** 2 - extreme_v ** 2
    return 1.0 if span == 0 else min(max((level_v ** 2 - value_v ** 2) / span, 0.0), 1.0)


def _cleared(ev: OpenEvent, kind: EventKind, back_s: float, back_window_s: float, back_v: float, below: bool,
             declared_v: float) -> Event:
    """The cleared event. Its start and end are where the event's step lies inside the
    windows that detected it and ended it (the value before the event taken as the level
    before and after it): IEC 61000-4-30's windows are one cycle long, so their ends alone
    would misplace the edges by up to a cycle, by how deep the event goes."""
    start_s = ev.detected_s - _share(ev.before_v, ev.first_v, ev.extreme_v) * ev.window_s
    end_s = back_s - (1.0 - _share(ev.before_v, back_v, ev.extreme_v)) * back_window_s
    end_s = max(end_s, start_s)
    pct = 100.0 * ev.extreme_v / declared_v
    what = (f"residual {ev.extreme_v:.1f} V ({pct:.1f} %, depth {100 - pct:.1f} %)" if below
            else f"height {ev.extreme_v:.1f} V ({pct:.1f} %)")
    return Event(end_s, kind, False, ev.element, ev.extreme_v,
                 f"{kind.value} on L{ev.element} ended: {what} of {declared_v:g} V declared, "
                 f"lasted {1000 * (end_s - start_s):.1f} ms from {start_s:.6f} s")
