"""IEC 61000-4-30 aggregation windows of a recording, for ``minimeter analyze``: 10 whole
line cycles at 50 Hz, 12 at 60 Hz (about 200 ms), per element, with IEEE Std 1459's
quantities — P, Q₁, S, true and displacement PF, THD of V and I — as the meter's own
beyond-kWh pass computes them (:class:`minimeter.meter.quantities.QuantityEngine`, the
window's DFT: :func:`minimeter.meter.power.windows_quantities`).

:func:`measured_windows` runs that pass beside the line-cycle metrology
(:func:`minimeter.drive.measure_samples`): the chunks are tapped on their way in, and each
block of cycles goes to the pass with the samples it was cut from. A partial cycle (a
gap, the recording's edges) starts a new window: every window holds exactly its 10 or
12 whole cycles.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from minimeter.drive import SampleChunk, measure_samples
from minimeter.meter.metrology import CycleBlock
from minimeter.meter.power import PowerQuantities
from minimeter.meter.quantities import QuantityEngine

DECLARED_V = 120.0        # the pass judges dips and swells against it; analyze keeps none of them


def measured_windows(chunks: Iterable[SampleChunk], sample_rate_hz: float, *, hysteresis_v: float,
                     elements: int) -> Iterator[tuple[CycleBlock, PowerQuantities]]:
    """Each block of cycles :func:`~minimeter.drive.measure_samples` cuts, with the
    windows its cycles complete (e, w)."""
    engine = QuantityEngine(elements, DECLARED_V)
    state = engine.initial()
    taken: list[SampleChunk] = []
    first = 0

    def tap() -> Iterator[SampleChunk]:
        for chunk in chunks:
            taken.append(chunk)
            yield chunk

    for block in measure_samples(tap(), sample_rate_hz, hysteresis_v=hysteresis_v):
        if taken:
            volts = np.concatenate([v for v, _ in taken], axis=1)
            amps = np.concatenate([a for _, a in taken], axis=1)
        else:
            volts = amps = np.zeros((elements, 0))
        taken.clear()
        state, update = engine.samples(state, volts, amps, sample_rate_hz, first, block)
        first += volts.shape[1]
        yield block, update.windows


def window_rows(windows: PowerQuantities, first_index: int) -> list[dict]:
    """The per-window table: one dict of plain numbers per window (element ``n``'s
    columns suffixed ``n``; NaN where a ratio has no denominator)."""
    columns = {"v{}_rms": "volts_rms", "i{}_rms": "amps_rms", "p{}_w": "active_power_w",
               "q{}_var": "reactive_power_var", "s{}_va": "apparent_power_va", "pf{}": "power_factor",
               "dpf{}": "displacement_pf", "thd_v{}_percent": "thd_v_percent", "thd_i{}_percent": "thd_i_percent"}
    rows = []
    for j in range(windows.count):
        duration = float(windows.duration_s[j])
        row = {"window": first_index + j, "start_s": float(windows.start_s[j]), "duration_s": duration}
        for k in range(windows.active_power_w.shape[0]):
            for name, field in columns.items():
                row[name.format(k + 1)] = float(getattr(windows, field)[k, j])
            row[f"e{k + 1}_wh"] = float(windows.active_power_w[k, j]) * duration / 3600.0
        rows.append(row)
    return rows


__all__ = ["measured_windows", "window_rows"]
