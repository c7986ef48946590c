"""Installations: the meter, the service, the wiring, the loads, and wiring faults (SPEC §3).

An :class:`Installation` says what is landed where (SPEC S3.2): which service conductor
is on each voltage terminal (L1, L2, N), which conductor(s) pass through each CT and in
which direction, the CT's own rating, and the loads. Faults (SPEC S3.4) are recorded on
the installation (:meth:`Installation.with_fault`) and applied, in order, when the
terminal signals are built (:meth:`Installation.wiring`); the wiring parts, the faults
and their physics are in :mod:`minimeter.sources.wiring` (re-exported here).
Installation files are TOML, read by :func:`minimeter.formats.installation.load_installation`
(see ``docs/installation-format.md``). The meter itself is built by the caller:
``Meter(installation.spec)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from minimeter.errors import InvalidOption, UnknownModel
from minimeter.meter.catalog import MeterSpec, meter_spec
from minimeter.sources.service import Load, Service, SyntheticSource, household_day
from minimeter.sources.wiring import (
    CONDUCTORS,
    CT,
    CT_STATES,
    FAULT_KINDS,
    FAULT_PARAMETERS,
    TERMINALS,
    Fault,
    InvalidInstallation,
    Wiring,
    apply_fault,
    check_wiring,
    correct_cts,
    correct_terminals,
    ct_currents,
    terminal_voltages,
)


@dataclass(frozen=True)
class Installation:
    """A meter as installed: model and options, service, wiring, loads, faults.

    ``terminals`` and ``cts`` are the wiring as stated (a file may state a faulty wiring
    directly); ``faults`` are applied on top of it (:meth:`wiring`).
    ``generation`` is what the installer declares of generation (S3.3: a PV inverter
    back-feeding) — True: expected, so reverse power is not a fault; False: there is
    none; None: not said. It changes no signal; the loads say what is connected.
    ``duration_s`` is how long to simulate [s], or None for the caller's default.
    """

    model: str = "7B"
    ct_rating: str = "200A"
    ct_ratio: str | None = None
    register: str = "lcd"
    t_suffix: bool = False
    service: Service = field(default_factory=Service)
    terminals: tuple[tuple[str, str | None], ...] | None = None     # None: correct for the model
    cts: tuple[CT, ...] | None = None                               # None: correct for the model
    loads: tuple[Load, ...] = ()
    faults: tuple[Fault, ...] = ()
    generation: bool | None = None          # the installer's word: PV back-feed on site (True), none (False), unsaid (None)
    duration_s: float | None = None
    name: str = ""
    description: str = ""

    # ------------------------------------------------------------------ the meter
    @property
    def spec(self) -> MeterSpec:
        """The meter's validated spec (raises InvalidInstallation on a bad model/option)."""
        try:
            return meter_spec(self.model, ct_rating=self.ct_rating, ct_ratio=self.ct_ratio,
                              register=self.register, t_suffix=self.t_suffix)
        except (UnknownModel, InvalidOption) as exc:
            raise InvalidInstallation(f"meter: {exc}") from None

    # ------------------------------------------------------------------ changing it
    def with_fault(self, kind: str, **params: Any) -> "Installation":
        """A new installation with one more fault (see :data:`FAULT_KINDS` and
        :data:`FAULT_PARAMETERS`), e.g. ``inst.with_fault("ct-reversed", ct="CT2")``.
        The fault is checked against this installation at once."""
        fault = Fault(kind, tuple(sorted(params.items())))
        new = replace(self, faults=self.faults + (fault,))
        new.wiring()          # validate now, not at the first use
        return new

    def without_faults(self) -> "Installation":
        """The same installation with the added faults removed (the stated wiring stays)."""
        return replace(self, faults=())

    def with_loads(self, loads: Sequence[Load]) -> "Installation":
        """The same installation with other loads."""
        return replace(self, loads=tuple(loads))

    # ------------------------------------------------------------------ what is connected
    def wiring(self) -> Wiring:
        """The wiring as stated, with every fault applied in order."""
        spec = self.spec
        wiring = Wiring(
            service=self.service,
            terminals=self.terminals if self.terminals is not None else correct_terminals(spec.elements),
            cts=self.cts if self.cts is not None else correct_cts(spec.elements),
            loads=self.loads,
        )
        for fault in self.faults:
            wiring = apply_fault(fault, wiring, spec)
        check_wiring(wiring, spec)
        return wiring

    def source(self, *, noise_v_rms: float = 0.0, noise_a_rms: float = 0.0, seed: int = 0) -> SyntheticSource:
        """What the meter's terminals see: per element, the terminal voltage and the CT
        current at the meter input (primary amperes as the meter reads them)."""
        spec = self.spec
        wiring = self.wiring()
        volts = terminal_voltages(wiring, spec.elements)
        amps = ct_currents(wiring, spec)
        return SyntheticSource(
            frequency_hz=wiring.service.frequency_hz,
            volts=volts,
            amps=amps,
            noise_v_rms=noise_v_rms,
            noise_a_rms=noise_a_rms,
            seed=seed,
            labels=tuple(f"L{k + 1}/CT{k + 1}" for k in range(spec.elements)),
        )

    def describe(self) -> list[str]:
        """Human-readable lines: meter, service, terminals, CTs, loads, faults."""
        spec = self.spec
        wiring = self.wiring()
        svc = wiring.service
        lines = [
            f"meter    {spec.model_number} ({spec.elements} element{'s' if spec.elements > 1 else ''})",
            f"service  {svc.kind}, {svc.volts:g} V L–N, {svc.frequency_hz:g} Hz",
            "voltage  " + ", ".join(f"{t}←{c or 'open'}" for t, c in wiring.terminals),
        ]
        lines += [f"CT       {ct.describe()}" for ct in wiring.cts]
        for load in wiring.loads:
            what = "profile" if load.profile is not None else f"{load.watts:g} W"
            pf = f"PF {load.power_factor:g} {'lead' if load.leading else 'lag'}" if load.power_factor < 1 else "PF 1"
            lines.append(f"load     {load.name or what} on {load.connection}, {what}, {pf}")
        lines += [f"fault    {f.describe()}" for f in self.faults]
        return lines


# --------------------------------------------------------------------------- the built-in one
def default_installation() -> Installation:
    """The built-in 24-hour household (:func:`minimeter.sources.service.household_day`) on a
    7B meter with 200 A CTs, correctly wired."""
    service, loads = household_day()
    return Installation(model="7B", ct_rating="200A", service=service, loads=tuple(loads),
                        name="household", description="built-in 24-hour household, correctly wired")



__all__ = ["Installation", "default_installation", "InvalidInstallation", "CT", "Fault", "Wiring", "FAULT_KINDS",
           "FAULT_PARAMETERS", "CONDUCTORS", "TERMINALS", "CT_STATES"]
