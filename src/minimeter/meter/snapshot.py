"""A meter's state as a frozen, serialisable value (DESIGN: one owner of meter state).

:meth:`Meter.state() <minimeter.meter.Meter.state>` returns a :class:`MeterSnapshot`;
:meth:`Meter.restore() <minimeter.meter.Meter.restore>` continues from one bit for bit.
Stores, live runners and fleets keep snapshots, never their own copies of the register,
closures, LED states or active conditions.

Energies are exact integers of the register's quantum (:mod:`minimeter.meter.register`);
the open line cycle's raw samples and a calibration's filter history travel with the
snapshot as the frozen dataclasses that hold them. :meth:`MeterSnapshot.as_dict` and
:meth:`MeterSnapshot.from_dict` turn a snapshot into plain JSON-able values and back:
integers stay integers of any size, floats are written with ``repr`` precision (exact
round trip), arrays keep their dtype and shape.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

import numpy as np

from minimeter.errors import MinimeterError

SNAPSHOT_FORMAT = "minimeter-meter-snapshot"
SNAPSHOT_VERSION = 1


class EventKind(enum.StrEnum):
    """The kinds of :class:`~minimeter.meter.Event` (S8.1), shared by every sink."""

    POWER_LOSS = "power-loss"
    UNDER_VOLTAGE = "under-voltage"
    OVER_VOLTAGE = "over-voltage"
    OVER_CURRENT = "over-current"
    FREQUENCY = "frequency"
    LOW_PF = "low-pf"
    REVERSE_POWER = "reverse-power"
    CLIPPED = "clipped"
    MISSING_SAMPLES = "missing-samples"     # a recording's gap (drive.recording_chunks): not measured
    DEMAND_RESET = "demand-reset"           # the maximum demand register cleared by command (S12.2)
    DIP = "dip"                             # IEC 61000-4-30 voltage dip (S12, half-cycle rms < 90 %)
    SWELL = "swell"                         # … swell (> 110 %)
    INTERRUPTION = "interruption"           # … interruption (< 5 %)


class InvalidSnapshot(MinimeterError, ValueError):
    """A snapshot that cannot be restored into this meter or decoded."""


# Frozen dataclasses a snapshot may carry (the open cycle's state, a calibration's state),
# by name, so that :meth:`MeterSnapshot.from_dict` never builds a type it was not told of.
_STATE_TYPES: dict[str, type] = {}


def snapshot_state_type(cls: type) -> type:
    """Class decorator: ``cls`` (a frozen dataclass of numbers, arrays and other such
    dataclasses) may travel inside a :class:`MeterSnapshot`."""
    _STATE_TYPES[cls.__name__] = cls
    return cls


@dataclasses.dataclass(frozen=True)
class MeterSnapshot:
    """Everything a :class:`~minimeter.meter.Meter` holds between two calls."""

    model_number: str
    register_quanta: int                          # the register [2⁻⁴⁰ Wh]
    reverse_quanta: int                           # energy of negative cycles, not registered [2⁻⁴⁰ Wh]
    closures: tuple[tuple[str, int], ...]         # output → lifetime OFF→ON closures marking energy
    outputs_on: tuple[tuple[str, bool], ...]      # output → closed now
    power_led: bool
    load_led: bool
    reverse_led: bool
    powered: bool
    active: tuple[tuple[EventKind, int | None], ...]   # active conditions (kind, element)
    judged_volts: tuple[float, ...] | None        # rms of the last cycle registered, if whole, per element [V]
    judged_amps: tuple[float, ...] | None         # [A]
    time_s: float                                 # end of the last line cycle [s since start]
    mode: str | None                              # 'samples', 'cycles' or None (not fed yet)
    closed: bool
    stream: Any = None                            # the open line cycle (LineCycleState) or None
    calibration_state: Any = None                 # the calibration's own state, or None
    pending_cycle: tuple[float, ...] | None = None   # a partial cycle held back for the one after it (S4.8):
    #                                               start, duration, frequency, partial, then P, E, Vrms, Irms per element
    active_amps: tuple[float, ...] | None = None  # smoothed active current per element, the starting-current judge [A]
    judged_power_w: tuple[float, ...] | None = None   # active power of the last cycle registered, if whole [W]
    quantities: Any = None                        # beyond kWh (S12): the meter.quantities.QuantityState, or None

    def closures_of(self, output: str) -> int:
        return dict(self.closures)[output]

    def as_dict(self) -> dict:
        """Plain values for JSON (see the module's docstring)."""
        out = {"format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION}
        for f in dataclasses.fields(self):
            out[f.name] = _encode(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "MeterSnapshot":
        """The snapshot :meth:`as_dict` gave; :class:`InvalidSnapshot` for anything else."""
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise InvalidSnapshot(f"not a meter snapshot (no \"format\": \"{SNAPSHOT_FORMAT}\")")
        if data.get("version") != SNAPSHOT_VERSION:
            raise InvalidSnapshot(f"meter snapshot version {data.get('version')!r}; this minimeter reads {SNAPSHOT_VERSION}")
        try:
            values = {f.name: _decode(data[f.name]) for f in dataclasses.fields(cls)
                      if f.name in data or f.default is dataclasses.MISSING}     # older snapshots: defaults
            for name in ("pending_cycle", "active_amps", "judged_power_w"):
                if values.get(name) is not None:
                    values[name] = tuple(float(x) for x in values[name])
            values["closures"] = tuple((str(k), int(v)) for k, v in values["closures"])
            values["outputs_on"] = tuple((str(k), bool(v)) for k, v in values["outputs_on"])
            values["active"] = tuple((EventKind(k), None if e is None else int(e)) for k, e in values["active"])
            for name in ("judged_volts", "judged_amps"):
                if values[name] is not None:
                    values[name] = tuple(float(x) for x in values[name])
            snap = cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidSnapshot(f"meter snapshot malformed: {exc}") from None
        if not isinstance(snap.register_quanta, int) or not isinstance(snap.reverse_quanta, int):
            raise InvalidSnapshot("meter snapshot malformed: registers must be integers")
        return snap


def _encode(x: Any) -> Any:
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else {"float": repr(x)}
    if isinstance(x, np.ndarray):
        return {"array": [_encode(v) for v in x.ravel().tolist()], "dtype": str(x.dtype), "shape": list(x.shape)}
    if isinstance(x, np.generic):
        return _encode(x.item())
    if isinstance(x, (tuple, list)):
        return [_encode(v) for v in x]
    if dataclasses.is_dataclass(x) and type(x).__name__ in _STATE_TYPES:
        return {"state": type(x).__name__, "fields": {f.name: _encode(getattr(x, f.name)) for f in dataclasses.fields(x)}}
    raise InvalidSnapshot(f"a meter snapshot cannot carry a {type(x).__name__} (not a registered state type)")


def _decode(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_decode(v) for v in x)
    if not isinstance(x, dict):
        return x
    if "float" in x:
        return float(x["float"])
    if "array" in x:
        flat = [_decode(v) for v in x["array"]]
        return np.array(flat, dtype=np.dtype(x["dtype"])).reshape(x["shape"])
    if "state" in x:
        cls = _STATE_TYPES.get(x["state"])
        if cls is None:
            raise InvalidSnapshot(f"unknown state type {x['state']!r} in a meter snapshot")
        fields = {k: _decode(v) for k, v in x["fields"].items()}
        return cls(**fields)
    raise InvalidSnapshot(f"unrecognised value in a meter snapshot: {sorted(x)}")
