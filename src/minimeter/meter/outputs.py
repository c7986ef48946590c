"""Pulse outputs and the load LED (SPEC §6, S7.2): a pure transition finder.

An output of constant Kh is ON while ``(E mod Kh) < Kh/2`` (E the register in Wh), so
it changes state each time E crosses a multiple of Kh/2; an OFF→ON change marks Kh Wh.
Within a line cycle the power is taken as constant, so the moment E reaches a
threshold is interpolated linearly inside the cycle (S6.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Iterator

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
    """Energy transitions of one output over consecutive cycles (see :func:`transition_times`)."""
    times, states = transition_times(kh_wh, register_before, cycle_quanta, start_s, duration_s)
    return [Transition(output, st, t) for st, t in zip(states.tolist(), times.tolist())]


def transition_times(
    kh_wh: int,
    register_before: int,
    cycle_quanta: np.ndarray,
    start_s: np.ndarray,
    duration_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Times [s] and new states of one output's energy transitions over consecutive
    stretches of constant power: cycles, or runs of equal cycles (a run of n cycles of q
    quanta and length d each is one stretch of n·q quanta and n·d seconds; the
    interpolated times are the same, start + (level / q)·d).

    Parameters
    ----------
    kh_wh : the output's constant [Wh/pulse]
    register_before : the register [quanta] before the first stretch
    cycle_quanta : (m,) int64 energy each stretch adds to the register [quanta], ≥ 0
    start_s, duration_s : (m,) each stretch's start and length [s]
    """
    half = quanta_for_wh(kh_wh / 2)
    base_half, base_rem = divmod(register_before, half)
    reached = (base_rem + int(cycle_quanta.sum())) // half     # thresholds (multiples of Kh/2) reached
    if not reached:                                            # (most small chunks)
        return np.zeros(0), np.zeros(0, bool)
    end_rel = np.cumsum(cycle_quanta)                 # register after each cycle, minus register_before
    m_rel = np.arange(1, reached + 1, dtype=np.int64)           # threshold index, from register_before's half-period
    level_rel = m_rel * half - base_rem                          # threshold, relative to register_before
    # the stretch that reaches each: the first whose end is at or beyond it (its start is below it)
    cycles = np.searchsorted(end_rel, level_rel, side="left")
    start_rel = end_rel[cycles] - cycle_quanta[cycles]
    fraction = (level_rel - start_rel) / cycle_quanta[cycles]
    times = start_s[cycles] + fraction * duration_s[cycles]
    states = ((base_half + m_rel) % 2) == 0
    return times, states


class Records(Sequence):
    """A read-only sequence of ``kind`` records (e.g. :class:`Transition`) held as
    columns, made into objects only when read: a meter-year's hundreds of thousands of
    output edges cost arrays, not objects, until someone looks at them. Compares equal
    to the tuple of its records."""

    __slots__ = ("_kind", "_columns")

    def __init__(self, kind: type, columns: tuple[tuple[np.ndarray, tuple | None], ...]) -> None:
        self._kind = kind
        self._columns = columns        # (values, labels): labels[values[i]] when labels is given

    def __len__(self) -> int:
        return int(self._columns[0][0].shape[0]) if self._columns else 0

    def _values(self, index: Any) -> list:
        return [values[index].tolist() if labels is None else [labels[i] for i in values[index].tolist()]
                for values, labels in self._columns]

    def __iter__(self) -> Iterator:
        kind = self._kind
        return iter([kind(*row) for row in zip(*self._values(slice(None)))]) if len(self) else iter(())

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self._kind(*row) for row in zip(*self._values(index)))
        k = range(len(self))[index]
        return self._kind(*(row[0] for row in self._values(slice(k, k + 1))))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (tuple, list, Records)) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Any) -> tuple:
        return tuple(self) + tuple(other)

    def __radd__(self, other: Any) -> Any:
        return other + type(other)(self)

    def __repr__(self) -> str:
        return f"Records({tuple(self)!r})"
