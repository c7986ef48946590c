"""minimeter — the Leviton Mini Meter, a CT-rated revenue-grade kWh meter, in software.

>>> from minimeter import Meter
>>> meter = Meter.for_model("7B", ct_rating="200A")
"""

from minimeter.meter.catalog import MeterSpec, load_catalog, meter_spec
from minimeter.errors import InvalidLoad, InvalidOption, InvalidSamples, MinimeterError, UnknownModel
from minimeter.meter.core import Event, LedChange, LedStates, Meter, Update
from minimeter.meter.metrology import CycleBlock
from minimeter.meter.outputs import Transition
from minimeter.sources.service import Harmonic, Load, Profile, Service, SyntheticSource, household_day, ideal_source

__all__ = [
    "Meter", "MeterSpec", "Update", "Event", "LedChange", "LedStates", "Transition", "CycleBlock",
    "meter_spec", "load_catalog", "Service", "Load", "Harmonic", "Profile", "SyntheticSource",
    "ideal_source", "household_day",
    "MinimeterError", "UnknownModel", "InvalidOption", "InvalidSamples", "InvalidLoad",
]
__version__ = "0.1.0"
