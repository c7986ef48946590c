"""Prometheus metrics of a live meter: the register, power, LED states, event counters.

:class:`SnapshotCollector` is a sink of the live stream (:mod:`minimeter.live.stream`)
and a ``prometheus_client`` collector: it keeps the newest snapshot pushed to it and
renders that one at each scrape, with ``prometheus_client``'s own machinery, in a private
registry (:func:`make_registry`), so nothing global leaks between meters.
"""

from __future__ import annotations

import math
from typing import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from minimeter.meter import EventKind
from minimeter.live.stream import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class SnapshotCollector:
    """The newest snapshot pushed to :meth:`update`, as metric families at each scrape."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None

    def update(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot
        if s is None:
            return
        yield from _register_families(s)
        yield from _electrical_families(s)
        yield from _indicator_families(s)
        yield from _event_families(s)
        clock = GaugeMetricFamily("minimeter_simulated_seconds", "Simulated time since the meter's start [s]")
        clock.add_metric([], s.time_s)
        yield clock


def _register_families(s: Snapshot) -> tuple[Metric, ...]:
    energy = CounterMetricFamily("minimeter_energy_watt_hours", "Register: delivered energy [Wh] (S5)",
                                 labels=["model"])
    energy.add_metric([s.spec.model_number], s.watt_hours)
    reverse = CounterMetricFamily("minimeter_reverse_energy_watt_hours",
                                  "Energy of cycles with negative net power, not registered [Wh]", labels=["model"])
    reverse.add_metric([s.spec.model_number], s.reverse_watt_hours)
    lcd = GaugeMetricFamily("minimeter_lcd_kilowatt_hours", "The LCD reading [kWh] (S5.1)", labels=["model"])
    lcd.add_metric([s.spec.model_number], float(s.lcd_text))
    closures = CounterMetricFamily("minimeter_output_closures", "OFF→ON transitions per output (S6.1)",
                                   labels=["output"])
    for out in s.outputs:
        closures.add_metric([out.name], out.closures)
    return energy, reverse, lcd, closures


def _electrical_families(s: Snapshot) -> tuple[Metric, ...]:
    power = GaugeMetricFamily("minimeter_power_watts", "Active power per element [W]", labels=["element"])
    volts = GaugeMetricFamily("minimeter_voltage_volts", "Voltage L–N per element [V rms]", labels=["element"])
    amps = GaugeMetricFamily("minimeter_current_amperes", "CT current per element [A rms primary]",
                             labels=["element"])
    for k in range(s.spec.elements):
        power.add_metric([str(k + 1)], s.power_w[k])
        volts.add_metric([str(k + 1)], s.volts_rms[k])
        amps.add_metric([str(k + 1)], s.amps_rms[k])
    net = GaugeMetricFamily("minimeter_net_power_watts", "Net active power, the elements' algebraic sum [W]")
    net.add_metric([], s.net_power_w)
    freq = GaugeMetricFamily("minimeter_frequency_hertz", "Line frequency [Hz]")
    freq.add_metric([], s.frequency_hz if math.isfinite(s.frequency_hz) else float("nan"))
    return power, volts, amps, net, freq


def _indicator_families(s: Snapshot) -> tuple[Metric, ...]:
    led = GaugeMetricFamily("minimeter_led_on", "LED state, 1 = lit (S7)", labels=["led"])
    for name, on in (("power", s.meter.power_led), ("load", s.meter.load_led), ("reverse", s.meter.reverse_led)):
        led.add_metric([name], 1.0 if on else 0.0)
    return (led,)


def _event_families(s: Snapshot) -> tuple[Metric, ...]:
    events = CounterMetricFamily("minimeter_events", "Events raised per kind (S8.1)", labels=["kind"])
    active = GaugeMetricFamily("minimeter_event_active", "Event condition active now, 1 = yes", labels=["kind"])
    kinds_active = {kind for kind, _ in s.active_events}
    for kind in EventKind:
        events.add_metric([kind.value], s.event_counts.get(kind, 0))
        active.add_metric([kind.value], 1.0 if kind in kinds_active else 0.0)
    return events, active


def make_registry(collector: SnapshotCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def metrics_text(registry: CollectorRegistry) -> bytes:
    """One scrape, in the text exposition format."""
    return generate_latest(registry)
