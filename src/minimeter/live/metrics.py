"""Prometheus metrics of live meters (issues 5, 11, 14; SPEC S12.4, S14.3).

:class:`SnapshotCollector` is a sink of one meter's stream and a ``prometheus_client``
collector; :class:`FleetCollector` holds many meters' newest snapshots and labels every
sample with ``meter`` (``fleet.sink(name)`` is the sink of that meter's stream). Each
renders at a scrape with ``prometheus_client``'s own machinery, in a private registry
(:func:`make_registry`), so nothing global leaks between meters.

Naming follows Prometheus' conventions: base units in the name, ``_total`` on counters,
an ``_info`` metric for identity, ratios rather than percentages.

*Decision — energy in joules*: the watt-hour is not a base unit, so the register and
the other energy counters are exported in joules (1 Wh = 3600 J exactly, the float
carries the register to well under a millijoule below 10⁹ Wh); reactive and apparent
energy likewise as var·s and VA·s. ``minimeter_energy_joules_total / 3.6e6`` is the kWh
the LCD shows (the LCD reading itself is not exported: it is the same quantity in a
prefixed unit, truncated).

================================================  ========  ===========================
metric                                            type      labels
================================================  ========  ===========================
minimeter_meter_info                              gauge 1   model, serial, elements
minimeter_energy_joules_total                     counter   (the register, S5)
minimeter_reverse_energy_joules_total             counter   (negative cycles, not registered)
minimeter_output_closures_total                   counter   output
minimeter_power_watts                             gauge     element
minimeter_net_power_watts                         gauge
minimeter_voltage_volts / minimeter_current_amperes  gauge  element (rms)
minimeter_power_factor_ratio                      gauge     element (true PF, signed like P)
minimeter_frequency_hertz                         gauge
minimeter_led_on                                  gauge     led
minimeter_events_total / minimeter_event_active   counter / gauge  kind
minimeter_simulated_seconds                       gauge
— when measured (SPEC §12):
minimeter_reactive_power_volt_amperes_reactive    gauge     element (Q1)
minimeter_apparent_power_volt_amperes             gauge     element
minimeter_displacement_power_factor_ratio         gauge     element
minimeter_voltage_thd_ratio / _current_thd_ratio  gauge     element
minimeter_element_energy_joules_total             counter   element, direction (import/export)
minimeter_reactive_energy_var_seconds_total       counter   quadrant (1–4)
minimeter_apparent_energy_volt_ampere_seconds_total  counter
minimeter_demand_watts / minimeter_max_demand_watts  gauge  (15-minute blocks)
================================================  ========  ===========================

The line gauges (power, voltage, current, PF, frequency, §12) are absent until the meter
has measured a line cycle: no 0 V before the first one.
"""

from __future__ import annotations

import threading
from typing import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from minimeter.meter import EventKind
from minimeter.live.stream import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOULES_PER_WH = 3600.0


class _Families:
    """Metric families under construction for one scrape: each row (one meter) adds its
    samples with its own label values in front of the family's own labels."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.families: dict[str, Metric] = {}
        self.row: tuple[str, ...] = ()

    def add(self, name: str, doc: str, value: float, labels: dict[str, str] | None = None, *,
            counter: bool = False) -> None:
        labels = labels or {}
        family = self.families.get(name)
        if family is None:
            kind = CounterMetricFamily if counter else GaugeMetricFamily
            family = self.families[name] = kind(name, doc, labels=[*self.keys, *labels])
        family.add_metric([*self.row, *labels.values()], value)


def _add_snapshot(f: _Families, s: Snapshot, serial: str) -> None:
    f.add("minimeter_meter_info", "The meter's identity (value 1)", 1.0,
          {"model": s.spec.model_number, "serial": serial, "elements": str(s.spec.elements)})
    f.add("minimeter_energy_joules", "Register: delivered energy [J] (S5)", s.watt_hours * JOULES_PER_WH, counter=True)
    f.add("minimeter_reverse_energy_joules", "Energy of cycles with negative net power, not registered [J]",
          s.reverse_watt_hours * JOULES_PER_WH, counter=True)
    for out in s.outputs:
        f.add("minimeter_output_closures", "OFF→ON transitions per output marking energy (S6.1)", out.closures,
              {"output": out.name}, counter=True)
    _add_indicators(f, s)
    if s.measured:
        _add_line(f, s)
        _add_beyond_kwh_line(f, s)
    if s.registers is not None:
        _add_registers(f, s.registers)
    f.add("minimeter_simulated_seconds", "Simulated time since the meter's start [s]", s.time_s)


def _add_line(f: _Families, s: Snapshot) -> None:
    for k in range(s.spec.elements):
        e = {"element": str(k + 1)}
        f.add("minimeter_power_watts", "Active power per element [W]", s.power_w[k], e)
        f.add("minimeter_voltage_volts", "Voltage L–N per element [V rms]", s.volts_rms[k], e)
        f.add("minimeter_current_amperes", "CT current per element [A rms primary]", s.amps_rms[k], e)
        f.add("minimeter_power_factor_ratio", "True power factor P/S per element, signed like P",
              s.power_factor[k], e)
    f.add("minimeter_net_power_watts", "Net active power, the elements' algebraic sum [W]", s.net_power_w)
    f.add("minimeter_frequency_hertz", "Line frequency [Hz]", s.frequency_hz)


def _add_beyond_kwh_line(f: _Families, s: Snapshot) -> None:
    per_element = (
        ("minimeter_reactive_power_volt_amperes_reactive", "Fundamental reactive power Q1 (IEEE 1459) [var]",
         s.reactive_power_var, 1.0),
        ("minimeter_apparent_power_volt_amperes", "Apparent power S = Vrms·Irms [VA]", s.apparent_power_va, 1.0),
        ("minimeter_displacement_power_factor_ratio", "Displacement power factor P1/S1", s.displacement_pf, 1.0),
        ("minimeter_voltage_thd_ratio", "Total harmonic distortion of the voltage", s.thd_v_percent, 0.01),
        ("minimeter_current_thd_ratio", "Total harmonic distortion of the current", s.thd_i_percent, 0.01),
    )
    for name, doc, values, scale in per_element:
        for k, x in enumerate(values):
            f.add(name, doc, scale * x, {"element": str(k + 1)})


def _add_registers(f: _Families, r) -> None:
    for k, (imp, exp) in enumerate(zip(r.import_wh, r.export_wh)):
        for direction, wh in (("import", imp), ("export", exp)):
            f.add("minimeter_element_energy_joules", "Active energy per element and direction [J]", wh * JOULES_PER_WH,
                  {"element": str(k + 1), "direction": direction}, counter=True)
    for q, varh in enumerate(r.varh, start=1):
        f.add("minimeter_reactive_energy_var_seconds", "Reactive energy per quadrant [var·s]",
              varh * JOULES_PER_WH, {"quadrant": str(q)}, counter=True)
    f.add("minimeter_apparent_energy_volt_ampere_seconds", "Apparent energy [VA·s]", r.vah * JOULES_PER_WH,
          counter=True)
    f.add("minimeter_demand_watts", "Demand of the current 15-minute block so far [W]", r.demand_w)
    f.add("minimeter_max_demand_watts", "Maximum 15-minute demand since the last reset [W]", r.max_demand_w)


def _add_indicators(f: _Families, s: Snapshot) -> None:
    for name, on in (("power", s.meter.power_led), ("load", s.meter.load_led), ("reverse", s.meter.reverse_led)):
        f.add("minimeter_led_on", "LED state, 1 = lit (S7)", 1.0 if on else 0.0, {"led": name})
    kinds_active = {kind for kind, _ in s.active_events}
    for kind in EventKind:
        f.add("minimeter_events", "Events raised per kind (S8.1)", s.event_counts.get(kind, 0),
              {"kind": kind.value}, counter=True)
        f.add("minimeter_event_active", "Event condition active now, 1 = yes", 1.0 if kind in kinds_active else 0.0,
              {"kind": kind.value})


class SnapshotCollector:
    """One meter: the newest snapshot pushed to :meth:`update`, as metric families at
    each scrape."""

    def __init__(self, *, serial: str = "MM000001") -> None:
        self.serial = serial
        self._snapshot: Snapshot | None = None

    def update(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot
        if s is None:
            return
        f = _Families(())
        _add_snapshot(f, s, self.serial)
        yield from f.families.values()


class _FleetSink:
    """The sink of one meter of a :class:`FleetCollector`."""

    def __init__(self, fleet: "FleetCollector", meter: str) -> None:
        self.fleet, self.meter = fleet, meter

    def update(self, snapshot: Snapshot) -> None:
        self.fleet.update(self.meter, snapshot)


class FleetCollector:
    """Many meters in one scrape, every sample labelled ``meter`` (S14.3).

    ``fleet.sink(name, serial=...)`` returns the sink to add to that meter's stream;
    :meth:`remove` drops a meter's samples.
    """

    def __init__(self, label: str = "meter") -> None:
        self.label = label
        self._lock = threading.Lock()
        self._meters: dict[str, tuple[Snapshot | None, str]] = {}

    def sink(self, meter: str, *, serial: str = "MM000001") -> _FleetSink:
        with self._lock:
            self._meters.setdefault(meter, (None, serial))
        return _FleetSink(self, meter)

    def update(self, meter: str, snapshot: Snapshot) -> None:
        with self._lock:
            serial = self._meters.get(meter, (None, "MM000001"))[1]
            self._meters[meter] = (snapshot, serial)

    def remove(self, meter: str) -> None:
        with self._lock:
            self._meters.pop(meter, None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            meters = sorted(self._meters.items())
        f = _Families((self.label,))
        for name, (snapshot, serial) in meters:
            if snapshot is not None:
                f.row = (name,)
                _add_snapshot(f, snapshot, serial)
        yield from f.families.values()


def make_registry(collector: "SnapshotCollector | FleetCollector") -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def metrics_text(registry: CollectorRegistry) -> bytes:
    """One scrape, in the text exposition format."""
    return generate_latest(registry)
