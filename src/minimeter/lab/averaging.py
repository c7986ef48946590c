"""Whole-cycle averaging: the one accumulator behind analysis, calibration and diagnostics.

A steady figure is read off a stream of line cycles (:class:`~minimeter.meter.CycleBlock`)
over its *whole* cycles only — the partial ones at the edges of a stream are left out,
and so are the cycles that start before an optional settling time. Per element, over
those cycles of durations ``T_j``::

    Vrms = √(Σ Vrms_j² · T_j / Σ T_j)        Irms likewise      (the rms over the cycles)
    P    = Σ E_j / Σ T_j                                         (energy over duration)
    f    = mean of the cycles' frequencies

so a long cycle weighs as much as the time it lasted, as the samples do. The energy of
every cycle seen (partial ones and those before settling included) is kept beside it:
it is the integral of v·i over every sample the cycles tile.

:class:`WholeCycleAverager` is the running form (EmonLibCM-style named sums, fed block
by block); :func:`average_cycles` runs it over an iterable of blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from minimeter.meter.metrology import SECONDS_PER_HOUR, CycleBlock


@dataclass(frozen=True)
class CycleAverages:
    """Averages over the whole line cycles of a stream (see the module's docstring).

    Without a whole cycle, the per-element figures and the frequency are NaN."""

    volts_rms: np.ndarray       # (e,) rms over the whole cycles [V]
    amps_rms: np.ndarray        # (e,) [A]
    power_w: np.ndarray         # (e,) their energy over their duration [W]
    energy_wh: np.ndarray       # (e,) over the whole cycles [Wh]
    energy_all_wh: np.ndarray   # (e,) over every cycle seen, partial ones included [Wh]
    frequency_hz: float         # mean of the whole cycles' frequencies [Hz]
    seconds: float              # duration of the whole cycles [s]
    whole_cycles: int
    cycles: int                 # every cycle seen

    @property
    def elements(self) -> int:
        return int(self.volts_rms.size)

    @property
    def power_factor(self) -> np.ndarray:
        """(e,) P / (Vrms · Irms); NaN where Vrms · Irms is zero or there is no whole cycle."""
        va = self.volts_rms * self.amps_rms
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(va > 0, self.power_w / np.where(va > 0, va, 1.0), np.nan)


class WholeCycleAverager:
    """Running sums over whole cycles that start at or after ``settle_s`` [s]."""

    def __init__(self, elements: int, *, settle_s: float = 0.0) -> None:
        self.settle_s = float(settle_s)
        self._sum_v2t = np.zeros(elements)        # Σ Vrms² · T   [V² s]
        self._sum_i2t = np.zeros(elements)        # Σ Irms² · T   [A² s]
        self._sum_energy = np.zeros(elements)     # Σ E over whole cycles [Wh]
        self._sum_energy_all = np.zeros(elements)
        self._sum_frequency = 0.0
        self._seconds = 0.0
        self._whole = 0
        self._cycles = 0

    def add(self, block: CycleBlock) -> None:
        """Take one block of cycles into the sums."""
        self._cycles += block.count
        self._sum_energy_all += block.energy_wh.sum(axis=1)
        keep = ~block.partial & (block.start_s >= self.settle_s)
        if not keep.any():
            return
        t = block.duration_s[keep]
        self._sum_v2t += (block.volts_rms[:, keep] ** 2 * t).sum(axis=1)
        self._sum_i2t += (block.amps_rms[:, keep] ** 2 * t).sum(axis=1)
        self._sum_energy += block.energy_wh[:, keep].sum(axis=1)
        self._sum_frequency += float(np.nansum(block.frequency_hz[keep]))
        self._seconds += float(t.sum())
        self._whole += int(keep.sum())

    def result(self) -> CycleAverages:
        """The averages of the cycles taken so far."""
        t = self._seconds
        if self._whole == 0 or t <= 0:
            nan = np.full(self._sum_v2t.size, np.nan)
            return CycleAverages(nan, nan.copy(), nan.copy(), self._sum_energy.copy(), self._sum_energy_all.copy(),
                                 float("nan"), 0.0, 0, self._cycles)
        return CycleAverages(np.sqrt(self._sum_v2t / t), np.sqrt(self._sum_i2t / t),
                             self._sum_energy * SECONDS_PER_HOUR / t, self._sum_energy.copy(),
                             self._sum_energy_all.copy(), self._sum_frequency / self._whole, t, self._whole,
                             self._cycles)


def average_cycles(blocks: Iterable[CycleBlock], elements: int, *, settle_s: float = 0.0,
                   on_block: Callable[[CycleBlock], None] | None = None) -> CycleAverages:
    """Average ``blocks`` over their whole cycles after ``settle_s`` [s];
    ``on_block(block)`` sees every block as it passes."""
    averager = WholeCycleAverager(elements, settle_s=settle_s)
    for block in blocks:
        averager.add(block)
        if on_block is not None:
            on_block(block)
    return averager.result()


__all__ = ["CycleAverages", "WholeCycleAverager", "average_cycles"]
