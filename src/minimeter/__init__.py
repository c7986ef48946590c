"""minimeter — the Leviton Mini Meter, a CT-rated revenue-grade kWh meter, in software.

>>> from minimeter import Meter
>>> meter = Meter.for_model("7B", ct_rating="200A")
"""

from minimeter.errors import InvalidLoad, InvalidOption, InvalidSamples, MinimeterError, UnknownModel
from minimeter.meter import (CycleBlock, Event, EventKind, LedChange, LedStates, Meter, MeterSnapshot, MeterSpec,
                             Transition, Update, load_catalog, meter_spec)
from minimeter.sources.service import Harmonic, Load, Profile, Service, SyntheticSource, household_day, ideal_source

__all__ = [
    "Meter", "MeterSpec", "MeterSnapshot", "Update", "Event", "EventKind", "LedChange", "LedStates", "Transition", "CycleBlock",
    "meter_spec", "load_catalog", "Service", "Load", "Harmonic", "Profile", "SyntheticSource",
    "ideal_source", "household_day",
    "MinimeterError", "UnknownModel", "InvalidOption", "InvalidSamples", "InvalidLoad",
]
__version__ = "0.1.0"
