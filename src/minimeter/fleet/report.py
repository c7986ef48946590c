"""The HTML report of a fleet's results (``minimeter fleet report DIR``): the fleet's load
curve, registration per meter, injected against diagnosed faults (a confusion table), and
the installations losing the most revenue with what it costs a year at a tariff.

Plots are matplotlib PNGs embedded in the page (base64), so the report is one file.
Revenue lost is the energy a correctly wired meter would have registered minus what was
registered (``true_delivered_wh − registered_wh``), scaled from the fleet's period to a
year (365 days) and priced at the tariff.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from minimeter.errors import MinimeterError
from minimeter.fleet.run import read_about, read_table

DEFAULT_TARIFF_PER_KWH = 0.15       # [currency/kWh]
TARIFF_RANGE = (0.0, 100.0)
YEAR_S = 365 * 86400.0
TOP_LOSERS = 20
MIN_LOSS_KWH_YEAR = 1.0             # a meter listed among the losers loses at least this [kWh/year]


@dataclass(frozen=True)
class Losses:
    """Revenue lost per meter: energy [kWh] over the period and per year, cost per year."""

    table: pd.DataFrame          # meter, name, injected, diagnosed, registration_percent, lost_kwh, lost_kwh_year, cost_year
    total_cost_year: float


def losses(meters: pd.DataFrame, period_s: float, tariff_per_kwh: float) -> Losses:
    """Each meter's unregistered energy and its yearly cost, largest first."""
    if not TARIFF_RANGE[0] <= tariff_per_kwh <= TARIFF_RANGE[1]:
        raise MinimeterError(f"--tariff {tariff_per_kwh:g} is outside {TARIFF_RANGE[0]:g} … {TARIFF_RANGE[1]:g} per kWh")
    lost_kwh = (meters.true_delivered_wh - meters.registered_wh).clip(lower=0.0) / 1000.0
    table = meters[["meter", "name", "injected", "diagnosed", "registration_percent"]].assign(
        lost_kwh=lost_kwh, lost_kwh_year=lost_kwh * YEAR_S / period_s)
    table = table.assign(cost_year=table.lost_kwh_year * tariff_per_kwh)
    table = table.sort_values(["cost_year", "meter"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return Losses(table, float(table.cost_year.sum()))


def load_curve_kw(intervals: pd.DataFrame, interval_s: float) -> pd.Series:
    """The fleet's mean power per interval [kW], all meters and elements summed."""
    energy = intervals.groupby("start_s").energy_wh.sum()
    return energy / (interval_s / 3600.0) / 1000.0


def confusion(meters: pd.DataFrame) -> pd.DataFrame:
    """Injected fault (rows) × what the diagnosis put first (columns), and how many of each
    row the diagnosis got right: the injected fault among the readings it names (where the
    measurements cannot tell a reversed CT from generation, both are named, the one it
    thinks likelier first), or, on a correct installation, no fault reported."""
    table = pd.crosstab(meters.injected, meters.diagnosed)
    ok = meters.groupby("injected").diagnosis_ok.agg(["sum", "count"])
    table["named / total"] = [f"{int(ok.loc[i, 'sum'])}/{int(ok.loc[i, 'count'])}" for i in table.index]
    order = sorted(table.index, key=lambda s: (s != "none", s))
    return table.loc[order]


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figures(meters: pd.DataFrame, curve: pd.Series, interval_s: float) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    fig, ax = plt.subplots(figsize=(9, 3.2))
    hours = np.append(curve.index.to_numpy(), curve.index[-1] + interval_s) / 3600.0
    ax.stairs(curve.to_numpy(), hours)
    ax.set_xlabel("simulated time [h]")
    ax.set_ylabel("fleet power [kW]")
    ax.set_title("Fleet load curve (mean measured power per interval, all meters)")
    ax.grid(alpha=0.3)
    out["load"] = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    faulty = meters.injected != "none"
    ax.scatter(meters.meter[~faulty], meters.registration_percent[~faulty], s=8, label="correct")
    ax.scatter(meters.meter[faulty], meters.registration_percent[faulty], s=14, color="tab:red", label="fault injected")
    ax.set_xlabel("meter")
    ax.set_ylabel("registration [%]")
    ax.set_title("Registered / true delivered energy per meter")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    out["registration"] = _png(fig)
    plt.close(fig)
    return out


def _html_table(frame: pd.DataFrame, floats: str = "{:,.2f}", index: bool = False) -> str:
    return frame.to_html(border=0, classes="t", index=index, float_format=lambda x: floats.format(x), na_rep="—")


def render(out: str | Path, *, tariff_per_kwh: float = DEFAULT_TARIFF_PER_KWH, currency: str = "$") -> str:
    """The report of results folder ``out`` as one HTML page."""
    about = read_about(out)
    meters = read_table(out, "meters")
    curve = load_curve_kw(read_table(out, "intervals"), about["interval_s"])
    lost = losses(meters, about["period_s"], tariff_per_kwh)
    figures = _figures(meters, curve, about["interval_s"])
    faulty = meters[meters.injected != "none"]
    e = html.escape
    top = lost.table[lost.table.lost_kwh_year >= MIN_LOSS_KWH_YEAR].head(TOP_LOSERS).rename(columns={
        "registration_percent": "registration [%]", "lost_kwh": "lost [kWh]", "lost_kwh_year": "lost [kWh/year]",
        "cost_year": f"cost/year [{currency}]"})
    summary = (f"{len(meters)} meters × {about['period_s'] / 86400:g} d (seed {about['seed']}); registered "
               f"{meters.registered_wh.sum() / 1000:,.1f} kWh of {meters.true_delivered_wh.sum() / 1000:,.1f} kWh "
               f"delivered; {len(faulty)} faults injected, {int(faulty.named.sum())} named; diagnosis right on "
               f"{int(meters.diagnosis_ok.sum())} of {len(meters)} meters; revenue lost "
               f"{currency}{lost.total_cost_year:,.2f} a year at {currency}{tariff_per_kwh:g}/kWh.")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fleet {e(about['name'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}} table.t{{border-collapse:collapse;font-size:90%}}
table.t td,table.t th{{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}} img{{max-width:100%}}</style>
</head><body>
<h1>Fleet {e(about['name'])}</h1>
<p>{e(summary)}</p>
<h2>Load curve</h2><img alt="fleet load curve" src="data:image/png;base64,{figures['load']}">
<h2>Registration per meter</h2><img alt="registration per meter" src="data:image/png;base64,{figures['registration']}">
<h2>Injected against diagnosed faults</h2>
<p>Rows: the fault made on the installation; columns: what the diagnosis (from the meter's
measurements only) put first; "named / total": the injected fault among the readings the
diagnosis names — where the measurements cannot tell two faults apart (a reversed CT and
generation both run a leg backwards) it names both, the likelier first — or, on a correct
installation, no fault reported ("possible …" is a reading that fits, not a fault).</p>
{_html_table(confusion(meters), "{:g}", index=True)}
<h2>Installations losing the most revenue</h2>
<p>Energy a correctly wired meter would have registered minus what was registered, per year,
at {e(currency)}{tariff_per_kwh:g}/kWh. Total: {e(currency)}{lost.total_cost_year:,.2f} a year.</p>
{_html_table(top)}
</body></html>
"""


def write_report(out: str | Path, path: str | Path, **options) -> Path:
    """Write :func:`render`'s page to ``path``."""
    path = Path(path)
    path.write_text(render(out, **options), encoding="utf-8")
    return path


__all__ = ["render", "write_report", "losses", "confusion", "load_curve_kw", "DEFAULT_TARIFF_PER_KWH"]
