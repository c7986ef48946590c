"""Prometheus metrics of a live meter: the register, power, LED states, event counters.

:func:`metrics_text` renders the latest :class:`~minimeter.live.Snapshot` in the
Prometheus text exposition format with ``prometheus_client``'s own collector machinery
(a private registry, so nothing global leaks between meters).
"""

from __future__ import annotations

import math
from typing import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from minimeter.live.runner import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EVENT_KINDS = ("power-loss", "under-voltage", "over-voltage", "over-current", "frequency",
               "low-pf", "reverse-power", "clipped")


class SnapshotCollector:
    """A ``prometheus_client`` collector reading ``latest()`` at each scrape."""

    def __init__(self, latest: Callable[[], Snapshot]) -> None:
        self._latest = latest

    def collect(self):
        s = self._latest()
        model = {"model": s.model_number}
        energy = CounterMetricFamily("minimeter_energy_watt_hours", "Register: delivered energy [Wh] (S5)",
                                     labels=["model"])
        energy.add_metric([s.model_number], s.watt_hours)
        yield energy
        reverse = CounterMetricFamily("minimeter_reverse_energy_watt_hours",
                                      "Energy of cycles with negative net power, not registered [Wh]", labels=["model"])
        reverse.add_metric([s.model_number], s.reverse_watt_hours)
        yield reverse
        lcd = GaugeMetricFamily("minimeter_lcd_kilowatt_hours", "The LCD reading [kWh] (S5.1)", labels=list(model))
        lcd.add_metric([s.model_number], float(s.lcd_text))
        yield lcd
        power = GaugeMetricFamily("minimeter_power_watts", "Active power per element [W]", labels=["element"])
        volts = GaugeMetricFamily("minimeter_voltage_volts", "Voltage L–N per element [V rms]", labels=["element"])
        amps = GaugeMetricFamily("minimeter_current_amperes", "CT current per element [A rms primary]",
                                 labels=["element"])
        for k in range(s.elements):
            power.add_metric([str(k + 1)], s.power_w[k])
            volts.add_metric([str(k + 1)], s.volts_rms[k])
            amps.add_metric([str(k + 1)], s.amps_rms[k])
        yield power
        yield volts
        yield amps
        net = GaugeMetricFamily("minimeter_net_power_watts", "Net active power, the elements' algebraic sum [W]")
        net.add_metric([], s.net_power_w)
        yield net
        freq = GaugeMetricFamily("minimeter_frequency_hertz", "Line frequency [Hz]")
        freq.add_metric([], s.frequency_hz if math.isfinite(s.frequency_hz) else float("nan"))
        yield freq
        led = GaugeMetricFamily("minimeter_led_on", "LED state, 1 = lit (S7)", labels=["led"])
        for name, on in (("power", s.power_led), ("load", s.load_led), ("reverse", s.reverse_led)):
            led.add_metric([name], 1.0 if on else 0.0)
        yield led
        closures = CounterMetricFamily("minimeter_output_closures", "OFF→ON transitions per output (S6.1)",
                                       labels=["output"])
        for out in s.outputs:
            closures.add_metric([out.name], out.closures)
        yield closures
        events = CounterMetricFamily("minimeter_events", "Events raised per kind (S8.1)", labels=["kind"])
        for kind in sorted(set(EVENT_KINDS) | set(s.event_counts)):
            events.add_metric([kind], s.event_counts.get(kind, 0))
        yield events
        active = GaugeMetricFamily("minimeter_event_active", "Event condition active now, 1 = yes", labels=["kind"])
        kinds_active = {k for k, _ in s.active_events}
        for kind in EVENT_KINDS:
            active.add_metric([kind], 1.0 if kind in kinds_active else 0.0)
        yield active
        clock = GaugeMetricFamily("minimeter_simulated_seconds", "Simulated time since the meter's start [s]")
        clock.add_metric([], s.time_s)
        yield clock


def make_registry(latest: Callable[[], Snapshot]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(latest))
    return registry


def metrics_text(registry: CollectorRegistry) -> bytes:
    """One scrape, in the text exposition format."""
    return generate_latest(registry)
