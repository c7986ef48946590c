"""Models and options of the Mini Meter (SPEC §2).

The catalog is data: ``catalog.toml`` beside this module, which a user may extend with
a file of their own (:func:`load_catalog`). :func:`meter_spec` turns a prefix and its
options into a validated, frozen :class:`MeterSpec`, or raises :class:`UnknownModel` /
:class:`InvalidOption` with the valid choices in the message.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

from minimeter.errors import InvalidOption, UnknownModel

OUTPUT_NAMES = ("10", "100", "1000")


@dataclass(frozen=True)
class ModelEntry:
    """One catalog entry (a model prefix)."""

    prefix: str
    product: str
    elements: int
    wiring: str
    voltage_inputs: tuple[str, ...]
    ct_inputs: tuple[str, ...]
    aux_12v: bool
    source: str


@dataclass(frozen=True)
class Catalog:
    """The models and the catalog-wide option facts."""

    models: Mapping[str, ModelEntry]
    options: Mapping[str, Any]
    sources: Mapping[str, str]

    def entry(self, prefix: str) -> ModelEntry:
        """The entry for ``prefix`` (case-insensitive) or :class:`UnknownModel`."""
        key = str(prefix).strip().upper()
        if key not in self.models:
            raise UnknownModel(
                f"{prefix!r} is not a Mini Meter model — known prefixes: "
                + ", ".join(self.models)
            )
        return self.models[key]


@dataclass(frozen=True)
class MeterSpec:
    """A fully specified meter: model prefix plus options, validated.

    Currents in this spec are primary amperes [A] unless the name says secondary.
    """

    prefix: str
    product: str
    elements: int
    wiring: str
    ct_rating: str                 # as ordered: '200A' or '0.1A'
    ct_rating_a: float             # rating at the CT input [A] (primary or secondary)
    ct_secondary: bool             # True for 0.1 A / 0.2 A secondary-rated models
    ct_ratio: float                # primary A per secondary A (1.0 for primary-rated)
    register: str                  # 'lcd', 'counter100', 'counter1000'
    t_suffix: bool
    aux_12v: bool
    outputs_wh: tuple[int, ...]    # isolated outputs present, Kh [Wh/pulse]
    counter_kh_wh: int | None      # mechanical counter Kh [Wh/count], None with an LCD
    rated_primary_a: float         # CT rating referred to the primary [A]
    max_primary_a: float           # 110 % of rating, primary [A]
    starting_current_a: float      # least primary current that registers [A]
    reverse_led_min_current_a: float
    supply_min_v: float
    supply_max_v: float
    frequency_min_hz: float
    frequency_max_hz: float
    power_factor_min: float
    counter_digits: int
    voltage_inputs: tuple[str, ...] = field(default=())
    ct_inputs: tuple[str, ...] = field(default=())

    @property
    def model_number(self) -> str:
        """A readable model designation, e.g. ``7B-200A-LCD-T``."""
        parts = [self.prefix, self.ct_rating, self.register.upper()]
        if self.t_suffix:
            parts.append("T")
        return "-".join(parts)


def _parse_catalog(data: Mapping[str, Any]) -> tuple[dict[str, ModelEntry], dict, dict]:
    models = {}
    for prefix, raw in data.get("models", {}).items():
        try:
            models[prefix.upper()] = ModelEntry(
                prefix=prefix.upper(),
                product=str(raw["product"]),
                elements=int(raw["elements"]),
                wiring=str(raw["wiring"]),
                voltage_inputs=tuple(raw["voltage_inputs"]),
                ct_inputs=tuple(raw["ct_inputs"]),
                aux_12v=bool(raw.get("aux_12v", False)),
                source=str(raw.get("source", "user catalog")),
            )
        except KeyError as missing:
            raise InvalidOption(f"catalog entry models.{prefix} lacks the key {missing}") from None
    options = dict(data.get("options", {}))
    sources = dict(options.pop("sources", {}))
    return models, options, sources


@lru_cache(maxsize=8)
def load_catalog(extra_path: str | None = None) -> Catalog:
    """Load the packaged catalog, optionally extended or overridden by a user TOML file
    of the same shape (``[models.XX]`` tables)."""
    text = resources.files("minimeter.meter").joinpath("catalog.toml").read_text(encoding="utf-8")
    models, options, sources = _parse_catalog(tomllib.loads(text))
    if extra_path is not None:
        extra = tomllib.loads(Path(extra_path).read_text(encoding="utf-8"))
        more_models, more_options, more_sources = _parse_catalog(extra)
        models.update(more_models)
        options.update(more_options)
        sources.update(more_sources)
    return Catalog(models=models, options=options, sources=sources)


_RATING = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*A?\s*$", re.IGNORECASE)


def _parse_rating(ct_rating: str | float, catalog: Catalog) -> tuple[str, float, bool]:
    primary = [float(x) for x in catalog.options["ct_ratings_primary_a"]]
    secondary = [float(x) for x in catalog.options["ct_ratings_secondary_a"]]
    valid = [f"{x:g}A" for x in primary + secondary]
    match = _RATING.match(str(ct_rating))
    value = float(match.group(1)) if match else math.nan
    if value in primary:
        return f"{value:g}A", value, False
    if value in secondary:
        return f"{value:g}A", value, True
    raise InvalidOption(f"CT rating {ct_rating!r} is not offered — valid ratings: {', '.join(valid)}")


MAX_CT_RATIO = 1e5     # decision (SPEC S15.1): primary amperes per secondary ampere, 10 kA : 0.1 A


def _parse_ratio(ct_ratio: str | float | None) -> float | None:
    if ct_ratio is None:
        return None
    text = str(ct_ratio).strip()
    try:
        if ":" in text:
            primary, secondary = (float(x) for x in text.split(":", 1))
            ratio = primary / secondary
        else:
            ratio = float(text)
    except (ValueError, ZeroDivisionError):
        raise InvalidOption(
            f"CT ratio {ct_ratio!r} is not a ratio — give 'primary:secondary' such as '200:0.1', "
            "or the number of primary amperes per secondary ampere"
        ) from None
    if not math.isfinite(ratio) or not 0 < ratio <= MAX_CT_RATIO:
        raise InvalidOption(
            f"CT ratio {ct_ratio!r} must be positive and at most {MAX_CT_RATIO:g} "
            "(a 10 kA primary on a 0.1 A secondary)"
        )
    return ratio


def _checked_ratio(entry: ModelEntry, rating_text: str, secondary: bool, ratio: float | None) -> float:
    """The register multiplier: the CT ratio of a secondary-rated model (required), 1 otherwise."""
    if secondary and ratio is None:
        raise InvalidOption(
            f"{entry.prefix} with a {rating_text} secondary-rated CT input needs the CT ratio "
            "(e.g. ct_ratio='200:0.1'): it becomes the register multiplier"
        )
    if not secondary and ratio is not None:
        raise InvalidOption(
            f"ct_ratio applies to secondary-rated models (0.1A, 0.2A) only; a {rating_text} "
            "model comes with its Leviton CTs"
        )
    return ratio if secondary else 1.0


def _checked_register(register: str, opts: dict) -> int | None:
    """The counter's Kh [Wh] for a counter register, None for the LCD."""
    valid_registers = list(opts["registers"])
    if register not in valid_registers:
        raise InvalidOption(f"register {register!r} is not offered — valid: {', '.join(valid_registers)}")
    return {"lcd": None, "counter100": 100, "counter1000": 1000}[register]


def _check_outputs(entry: ModelEntry, wanted: Sequence[str] | None, outputs_wh: tuple[int, ...],
                   counter_kh: int | None, t_suffix: bool) -> None:
    present = [str(kh) for kh in outputs_wh] + (["counter"] if counter_kh else [])
    for name in wanted or ():
        if str(name) not in present:
            why = " (T models have no 1000 output)" if str(name) == "1000" and t_suffix else ""
            if str(name) == "counter" and not counter_kh:
                why = " (the counter output exists on counter models only: register='counter100' or 'counter1000')"
            raise InvalidOption(
                f"{entry.prefix}{'-T' if t_suffix else ''} has no output {name!r}{why} — "
                f"its outputs: {', '.join(present)}"
            )


def _check_inputs(entry: ModelEntry, wanted: Sequence[str] | None) -> None:
    terminals = list(entry.voltage_inputs) + list(entry.ct_inputs)
    for name in wanted or ():
        if str(name).upper() not in terminals:
            raise InvalidOption(
                f"{entry.prefix} is a {entry.elements}-element model with no {name} input — "
                f"its inputs: {', '.join(terminals)} (L2 and CT2 exist on 7B and 5B only)"
            )


def meter_spec(
    prefix: str,
    *,
    ct_rating: str | float = "200A",
    register: str = "lcd",
    t_suffix: bool = False,
    ct_ratio: str | float | None = None,
    aux_12v: bool = False,
    outputs: Sequence[str] | None = None,
    inputs: Sequence[str] | None = None,
    catalog: Catalog | None = None,
) -> MeterSpec:
    """Validate a model and its options (SPEC S2.2–S2.4) and return its :class:`MeterSpec`.
    (Long only for its parameters' documentation and the spec's fields; each check is
    a function of its own.)

    Parameters
    ----------
    prefix : model prefix, one of the catalog's (MO, MK, 6S, 6F, 7B, 5B). A trailing
        ``T`` or ``-T`` (``7BT``) is read as the T suffix.
    ct_rating : '100A', '200A', '400A' (primary, Leviton CTs) or '0.1A', '0.2A' (secondary).
    register : 'lcd', 'counter100' (kh = 100 Wh) or 'counter1000' (kh = 1000 Wh).
    t_suffix : the T suffix, which removes the 1000 Wh/pulse output.
    ct_ratio : for secondary-rated models only, e.g. '200:0.1'; it becomes the register
        multiplier, so the register reads primary energy.
    aux_12v : ask for the +12 VDC auxiliary output.
    outputs : outputs the user means to wire ('10', '100', '1000', 'counter'); any the
        model lacks is an error.
    inputs : terminals the user means to wire ('L1', 'L2', 'N', 'CT1', 'CT2').
    """
    catalog = catalog or load_catalog()
    raw_prefix = str(prefix).strip().upper()
    if raw_prefix not in catalog.models and raw_prefix.rstrip("T").rstrip("-") in catalog.models:
        raw_prefix, t_suffix = raw_prefix.rstrip("T").rstrip("-"), True
    entry = catalog.entry(raw_prefix)
    opts = catalog.options
    rating_text, rating_a, secondary = _parse_rating(ct_rating, catalog)
    ratio = _checked_ratio(entry, rating_text, secondary, _parse_ratio(ct_ratio))
    counter_kh = _checked_register(register, opts)
    outputs_wh = tuple(kh for kh in opts["outputs_wh"] if not (t_suffix and kh == 1000))
    _check_outputs(entry, outputs, outputs_wh, counter_kh, t_suffix)
    _check_inputs(entry, inputs)
    if aux_12v and not entry.aux_12v:
        with_aux = [p for p, m in catalog.models.items() if m.aux_12v]
        raise InvalidOption(
            f"{entry.prefix} has no +12 VDC auxiliary output — models with it: {', '.join(with_aux)}"
        )

    rated_primary = rating_a * ratio
    return MeterSpec(
        prefix=entry.prefix,
        product=entry.product,
        elements=entry.elements,
        wiring=entry.wiring,
        ct_rating=rating_text,
        ct_rating_a=rating_a,
        ct_secondary=secondary,
        ct_ratio=ratio,
        register=register,
        t_suffix=bool(t_suffix),
        aux_12v=bool(aux_12v),
        outputs_wh=outputs_wh,
        counter_kh_wh=counter_kh,
        rated_primary_a=rated_primary,
        max_primary_a=rated_primary * float(opts["max_rated_fraction"]),
        starting_current_a=rated_primary * float(opts["starting_current_fraction"]),
        reverse_led_min_current_a=float(opts["reverse_led_min_current_a"]),
        supply_min_v=float(opts["supply_min_v"]),
        supply_max_v=float(opts["supply_max_v"]),
        frequency_min_hz=float(opts["frequency_min_hz"]),
        frequency_max_hz=float(opts["frequency_max_hz"]),
        power_factor_min=float(opts["power_factor_min"]),
        counter_digits=int(opts["counter_digits"]),
        voltage_inputs=entry.voltage_inputs,
        ct_inputs=entry.ct_inputs,
    )
