"""SPEC S4.6 and §5: the exact register, the LCD and the mechanical counter."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from minimeter import Load, Meter, Service, ideal_source, meter_spec
from minimeter.meter.metrology import CycleBlock
from minimeter.meter.register import QUANTA_PER_WH, counter_reading, lcd_text, quanta_for_wh, to_quanta


def test_s5_1_lcd_shows_six_digits_and_a_tenth_truncated():
    assert lcd_text(quanta_for_wh(12_345)) == "000012.3"
    assert lcd_text(quanta_for_wh(12_399)) == "000012.3"          # truncated, not rounded
    assert lcd_text(0) == "000000.0"
    assert lcd_text(quanta_for_wh(999_999_900)) == "999999.9"
    assert lcd_text(quanta_for_wh(1_000_000_000)) == "000000.0"   # rolls over; the register does not
    assert lcd_text(quanta_for_wh(1_000_012_300)) == "000012.3"


def test_s5_3_counter_advances_once_per_kh():
    assert counter_reading(quanta_for_wh(12_345), 100) == 123
    assert counter_reading(quanta_for_wh(12_345), 1000) == 12
    assert counter_reading(quanta_for_wh(1_000_000 * 100 + 500), 100) == 5   # six wheels roll over


def test_s4_6_quantisation_is_half_a_quantum_at_most():
    rng = np.random.default_rng(3)
    energies = rng.uniform(0, 1.0, 10_000)
    q = to_quanta(energies)
    err = np.abs(q.astype(float) / QUANTA_PER_WH - energies)
    assert err.max() <= 0.5 / QUANTA_PER_WH * (1 + 1e-9)


def test_s4_6_a_day_at_full_load_accumulates_exactly():
    """5 184 000 cycles of one 7B at 2 × 440 A × 138 V (121.44 kW): the register must equal
    the exact integer sum of the per-cycle quanta — computed here with Python Fractions —
    with no floating-point drift at all."""
    service = Service("split", 138.0, 60.0)
    source = ideal_source(service, [Load(138 * 440, connection="L1"), Load(138 * 440, connection="L2")], 2)
    meter = Meter.for_model("7B", ct_rating="400A")
    expected = 0
    for block in source.cycles(86400.0, cycles_per_block=1 << 18):
        meter.feed_cycles(block)
        for e in np.unique(block.net_energy_wh):
            count = int((block.net_energy_wh == e).sum())
            expected += count * round(Fraction(float(e)) * QUANTA_PER_WH)
    assert meter.register_quanta == expected
    assert meter.watt_hours == pytest.approx(2 * 138 * 440 * 24, rel=1e-12)


def test_s4_6_ten_years_at_full_load_fit_the_register_exactly():
    """Ten years of 121.44 kW fed as hour-long 'cycles' through a meter: 87 660 h ×
    121 440 Wh = 10 645 430 400 Wh, exactly; the LCD has rolled over ten times."""
    hours = 87_660
    # ten million pulses are not the point here: a 7B spec without pulse outputs
    meter = Meter(dataclasses.replace(meter_spec("7B", ct_rating="400A"), outputs_wh=()))
    block = CycleBlock(
        start_s=np.arange(hours) * 3600.0, duration_s=np.full(hours, 3600.0),
        frequency_hz=np.full(hours, 60.0), partial=np.zeros(hours, bool),
        power_w=np.full((2, hours), 60_720.0), energy_wh=np.full((2, hours), 60_720.0),
        volts_rms=np.full((2, hours), 138.0), amps_rms=np.full((2, hours), 440.0),
    )
    meter.feed_cycles(block)
    assert meter.register_quanta == 10_645_430_400 * QUANTA_PER_WH
    assert meter.register_quanta > 2 ** 63                   # beyond int64: Python ints carry it
    assert meter.lcd_text == "645430.4"
