"""``minimeter models``: the catalog (SPEC S2.4)."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from minimeter.meter.catalog import load_catalog, meter_spec


@click.command("models")
@click.argument("prefix", required=False)
@click.option("--catalog", "catalog_path", type=click.Path(exists=True, dir_okay=False),
              help="A TOML file of extra models ([models.XX] tables) to add to the catalog.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models_command(prefix: str | None, catalog_path: str | None, as_json: bool) -> None:
    """List every model prefix, or one model in full with its options and sources."""
    catalog = load_catalog(catalog_path)
    opts = catalog.options
    ratings = [f"{x:g}A" for x in opts["ct_ratings_primary_a"]] + [f"{x:g}A" for x in opts["ct_ratings_secondary_a"]]
    console = Console()
    if prefix is None:
        if as_json:
            click.echo(json.dumps({p: m.__dict__ for p, m in catalog.models.items()}, indent=2))
            return
        table = Table(title="Mini Meter models", caption=(
            f"Options on every prefix: CT {', '.join(ratings)} (secondary-rated needs the CT ratio); "
            "LCD or 12 VDC counter (kh 100 / 1000); T suffix (no 1000 output). Outputs 10, 100, 1000 Wh/pulse."))
        for col in ("prefix", "product", "elements", "wiring", "voltage inputs", "CT inputs", "+12 VDC aux"):
            table.add_column(col)
        for entry in catalog.models.values():
            table.add_row(entry.prefix, entry.product, str(entry.elements), entry.wiring,
                          ", ".join(entry.voltage_inputs), ", ".join(entry.ct_inputs), "yes" if entry.aux_12v else "no")
        console.print(table)
        return
    entry = catalog.entry(prefix)
    spec = meter_spec(entry.prefix, catalog=catalog)
    facts = {
        "prefix": entry.prefix,
        "product": entry.product,
        "elements": entry.elements,
        "wiring": entry.wiring,
        "voltage inputs": ", ".join(entry.voltage_inputs),
        "CT inputs": ", ".join(entry.ct_inputs),
        "CT ratings": ", ".join(ratings) + " (secondary-rated: give the CT ratio; it becomes the register multiplier)",
        "maximum current": "110 % of rating: 110 / 220 / 440 A primary, 0.11 / 0.22 A secondary",
        "register": "LCD total kWh (000000.0), or 12 VDC counter at kh 100 or 1000 Wh",
        "outputs": "10 (test only, not for field wiring), 100, 1000 Wh/pulse — 50 % duty; no 1000 on T models",
        "+12 VDC aux (3 mA)": "yes" if entry.aux_12v else "no",
        "supply": f"{spec.supply_min_v:g}–{spec.supply_max_v:g} V L–N, {spec.frequency_min_hz:g}–{spec.frequency_max_hz:g} Hz",
        "accuracy": f"±{opts['accuracy_pf1_percent']}% at PF 1, ±{opts['accuracy_pf05_percent']}% at PF 0.5, 2–200 A",
        "starting current": f"{opts['starting_current_fraction'] * 100:g} % of rating (0.2 A on 200 A)",
        "reverse-phase LED": f"needs ≥ {spec.reverse_led_min_current_a:g} A on a CT",
        "source": entry.source,
    }
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    table = Table(title=f"Model {entry.prefix}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in facts.items():
        table.add_row(key, str(value))
    console.print(table)


COMMANDS = [models_command]
