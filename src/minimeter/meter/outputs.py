"""Pulse outputs and the load LED (SPEC §6, S7.2): a pure transition finder.

An output of constant Kh is ON while ``(E mod Kh) < Kh/2`` (E the register in Wh), so
it changes state each time E crosses a multiple of Kh/2; an OFF→ON change marks Kh Wh.
Within a line cycle the power is taken as constant, so the moment E reaches a
threshold is interpolated linearly inside the cycle (S6.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minimeter.meter.register import quanta_for_wh


@dataclass(frozen=True)
class Transition:
    """One change of an output's state."""

    output: str        # '10', '100', '1000' or 'counter'
    state: bool        # True = ON (closed)
    time_s: float      # seconds since the meter started
    cause: str = "energy"   # 'energy' (marks Kh/2 Wh), 'power-loss' or 'power-restore'


def output_state(register_quanta: int, kh_wh: int) -> bool:
    """ON while (E mod Kh) < Kh/2 (S6.1)."""
    return (register_quanta // quanta_for_wh(kh_wh / 2)) % 2 == 0


def find_transitions(
    output: str,
    kh_wh: int,
    register_before: int,
    cycle_quanta: np.ndarray,
    start_s: np.ndarray,
    duration_s: np.ndarray,
) -> list[Transition]:
    """Energy transitions of one output over consecutive cycles.

    Parameters
    ----------
    output, kh_wh : the output's name and constant [Wh/pulse]
    register_before : the register [quanta] before the first cycle
    cycle_quanta : (m,) int64 energy each cycle adds to the register [quanta], ≥ 0
    start_s, duration_s : (m,) each cycle's start and length [s]
    """
    half = quanta_for_wh(kh_wh / 2)
    base_half, base_rem = divmod(register_before, half)
    end_rel = np.cumsum(cycle_quanta)                 # register after each cycle, minus register_before
    start_rel = end_rel - cycle_quanta
    # half-periods completed, counted from register_before's half-period
    h_start = (base_rem + start_rel) // half
    h_end = (base_rem + end_rel) // half
    crossings = h_end - h_start
    if not crossings.any():
        return []
    cycles = np.repeat(np.arange(cycle_quanta.size), crossings)
    first_of = np.repeat(np.cumsum(crossings) - crossings, crossings)
    m_rel = h_start[cycles] + 1 + (np.arange(cycles.size) - first_of)   # threshold index (relative)
    level_rel = m_rel * half - base_rem                               # threshold, relative to register_before
    fraction = (level_rel - start_rel[cycles]) / cycle_quanta[cycles]
    times = start_s[cycles] + fraction * duration_s[cycles]
    states = ((base_half + m_rel) % 2) == 0
    return [Transition(output, bool(st), float(t)) for st, t in zip(states, times)]
