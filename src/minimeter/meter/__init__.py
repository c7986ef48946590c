"""The metering core: line-cycle metrology (pure functions on arrays), the exact register,
the pulse outputs, the catalog of models, and the :class:`Meter` — the one stateful object.
Nothing here imports any other part of minimeter but :mod:`minimeter.errors`."""

from minimeter.meter.catalog import MeterSpec, load_catalog, meter_spec
from minimeter.meter.core import Event, LedChange, LedStates, Meter, Update
from minimeter.meter.snapshot import EventKind, MeterSnapshot
from minimeter.meter.metrology import CycleBlock
from minimeter.meter.outputs import Transition
from minimeter.meter.power import HarmonicTable, PowerQuantities
from minimeter.meter.energy import EnergyRegisters

__all__ = ["Meter", "MeterSpec", "MeterSnapshot", "Update", "Event", "EventKind", "LedChange", "LedStates", "Transition", "CycleBlock",
           "meter_spec", "load_catalog",
           "HarmonicTable", "PowerQuantities", "EnergyRegisters"]
