"""Helpers for the surface tests (no tests here): SPEC §12's EnergyRegisters with values
chosen by hand in Wh, varh, VAh and W; a snapshot without the §12 quantities."""

from __future__ import annotations

from dataclasses import replace

from minimeter.meter.energy import DEMAND_BLOCK_S, EnergyRegisters
from minimeter.meter.register import QUANTA_PER_WH


def _q(wh: float) -> int:
    return round(wh * QUANTA_PER_WH)


def registers(import_wh, export_wh, varh, vah, demand_w=0.0, max_demand_w=0.0, max_demand_time_s=None):
    """EnergyRegisters whose float views are these figures (demand over a 15-minute block)."""
    block_wh = DEMAND_BLOCK_S / 3600.0
    return EnergyRegisters(tuple(map(_q, import_wh)), tuple(map(_q, export_wh)), tuple(map(_q, varh)), _q(vah),
                           block_start_s=0.0, block_quanta=_q(demand_w * block_wh),
                           max_block_quanta=_q(max_demand_w * block_wh), max_block_start_s=max_demand_time_s)


def without_beyond_kwh(snapshot):
    """``snapshot`` as a meter that measures no SPEC §12 quantity gives it (the contract's
    empty values)."""
    return replace(snapshot, reactive_power_var=(), apparent_power_va=(), displacement_pf=(), thd_v_percent=(),
                   thd_i_percent=(), harmonics=None, registers=None)
