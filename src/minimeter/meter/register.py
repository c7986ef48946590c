"""The exact energy register, the LCD and the mechanical counter (SPEC S4.6, §5).

Energy is held as an integer count of a quantum of ``2**-40`` Wh (about 0.9 pWh).
Each line cycle's energy is rounded to that quantum once, half to even, and then only
integers are added — Python integers, which never overflow, so the register neither
drifts nor loses precision however long it runs. The rounding is unbiased and at most
half a quantum a cycle: ten years of 60 Hz cycles (1.9·10¹⁰) could not lose 0.01 Wh
even if every cycle rounded the same way. Because each cycle is rounded on its own, the
register does not depend on how the stream was split into chunks.
"""

from __future__ import annotations

import numpy as np

from minimeter.errors import InvalidSamples

QUANTUM_BITS = 40
QUANTA_PER_WH = 1 << QUANTUM_BITS          # quanta in one watthour
WH_PER_QUANTUM = 1.0 / QUANTA_PER_WH

MAX_CYCLE_WH = float(1 << 22)              # one value to_quanta converts: |E| ≤ 2^22 Wh (int64 headroom 2^62 / 2^40)
LCD_ROLLOVER_TENTHS_KWH = 10_000_000       # 999999.9 kWh + 0.1 rolls to 000000.0 (S5.1)


def to_quanta(energy_wh: np.ndarray) -> np.ndarray:
    """Energies [Wh] as int64 counts of the register quantum (round half to even).

    Each value must be finite with |energy| ≤ :data:`MAX_CYCLE_WH` (2²² Wh, so that 2¹⁰⁺
    of them still sum inside int64); beyond it :class:`InvalidSamples` is raised — never a
    wrapped integer. One line cycle of the largest Mini Meter carries under 1 Wh.
    """
    energy = np.asarray(energy_wh, dtype=float)
    if energy.size and not (np.abs(energy).max() <= MAX_CYCLE_WH):      # NaN fails too
        worst = energy.flat[int(np.argmax(~(np.abs(energy) <= MAX_CYCLE_WH)))]
        raise InvalidSamples(f"a cycle's energy {worst!r} Wh is beyond the register's per-cycle bound "
                             f"±{MAX_CYCLE_WH:g} Wh (2^22); nothing registered")
    return np.rint(energy * QUANTA_PER_WH).astype(np.int64)


def quanta_for_wh(watt_hours: int | float) -> int:
    """An exact energy in whole quanta, e.g. an output's Kh/2 (5 Wh → 5·2⁴⁰)."""
    quanta = watt_hours * QUANTA_PER_WH
    if quanta != int(quanta):
        raise ValueError(f"{watt_hours} Wh is not a whole number of register quanta")
    return int(quanta)


def watt_hours(quanta: int) -> float:
    """A register count as watthours (a float view of the exact integer)."""
    return quanta / QUANTA_PER_WH


def lcd_text(quanta: int) -> str:
    """The LCD: total kWh with six integer digits and one decimal, truncated (not
    rounded), rolling over to ``000000.0`` after ``999999.9`` (S5.1).

    >>> lcd_text(quanta_for_wh(12_345))
    '000012.3'
    """
    tenths_kwh = (quanta // (100 * QUANTA_PER_WH)) % LCD_ROLLOVER_TENTHS_KWH
    return f"{tenths_kwh // 10:06d}.{tenths_kwh % 10:d}"


def counter_reading(quanta: int, kh_wh: int, digits: int = 6) -> int:
    """The mechanical counter: one count per ``kh_wh`` watthours (S5.3), on ``digits``
    wheels that roll over."""
    return (quanta // quanta_for_wh(kh_wh)) % (10 ** digits)
