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

from minimeter.meter import _judge
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
    return (register_quanta // half_quanta(kh_wh)) % 2 == 0


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
    _, states, times = output_edges((half_quanta(kh_wh),), register_before, cycle_quanta, int(cycle_quanta.sum()),
                                    start_s, duration_s)
    return times, states


def half_quanta(kh_wh: int) -> int:
    """An output's half period Kh/2 [quanta]: it changes state each time the register
    crosses a multiple of it."""
    return quanta_for_wh(kh_wh / 2)


def output_edges(halves: tuple[int, ...], register_before: int, quanta: np.ndarray, total_quanta: int,
                 start_s: np.ndarray, duration_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The energy transitions of outputs of half periods ``halves`` [quanta] over
    consecutive stretches of constant power (see :func:`transition_times`; ``quanta``
    (m,) int64 ≥ 0 summing to ``total_quanta``), in time order, ties in output order:
    (output index, new state, time [s]) columns. In one compiled pass
    (:func:`minimeter.meter._judge.energy_edges`): a threshold (a multiple of Kh/2) is
    reached in the first stretch whose end is at or beyond it."""
    levels = output_levels(halves, register_before)
    reached = [(rem + total_quanta) // half for half, rem in zip(halves, levels[1].tolist())]
    if not any(reached):                          # (most small chunks)
        return _NO_CODES, _NO_STATES, _NO_TIMES
    return _judge.energy_edges(np.ascontiguousarray(quanta, dtype=np.int64), np.ascontiguousarray(start_s, dtype=float),
                               np.ascontiguousarray(duration_s, dtype=float), levels, np.array(reached, np.int64))


def output_levels(halves: tuple[int, ...], register_quanta: int) -> np.ndarray:
    """Where outputs of half periods ``halves`` [quanta] stand at a register [quanta]:
    (3, outputs) int64 rows — the half period, the register past its last multiple of
    it, and that multiple's parity (the output is ON where it is even, S6.1)."""
    below = [divmod(register_quanta, half) for half in halves]
    return np.array([halves, [rem for _, rem in below], [whole % 2 for whole, _ in below]], np.int64)


_NO_CODES, _NO_STATES, _NO_TIMES = np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0)    # (empty: nothing to change)


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
