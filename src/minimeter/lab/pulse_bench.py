"""The pulse-reading conformance bench (SPEC S13.3): the meter's true edges, through the
impairments a real installation adds, fed to reader settings, each total scored against
the register.

The true edges come from a meter run through the drive path (:func:`true_run`): a
household day with ten power cycles on a 7B 200 A meter, and the largest meter (7B,
400 A CTs) at full load — 2 × 440 A × 138 V = 121 440 W, where a Kh = 10 output is
5 Wh · 3600 / 121 440 W = 148.2 ms ON and 148.2 ms OFF. The impairments
(:class:`Impairment`): contact bounce (each edge followed by chatter), reader restarts
(down for a while, booting a few ms after an edge: the edge in progress is lost), and
missed edges (one in ``miss_every`` dropped). The readers (:data:`READERS`): the project's
(rising edge, 20 ms minimum width, power edges not counted, missed edges recovered, count
kept) and the common naive ones — every OFF→ON, every ON→OFF, a fixed 200 ms debounce, a
count since boot — and the project's reader with a 200 ms filter, too long at full load.

:func:`safe_filter_s` is the advice: a filter longer than the narrowest pulse,
``Kh/2 · 3600 / P_full``, swallows every pulse at full load, so the longest safe filter
is just under it (and it must stay above the contact's bounce).
"""

from __future__ import annotations

import base64
from bisect import bisect_left, bisect_right
import html
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from minimeter.drive import feed_source
from minimeter.lab.bench import _STYLE as _BENCH_STYLE
from minimeter.lab.pulses import PulseReader, ReaderSettings, expected_pulses
from minimeter.meter.core import Meter
from minimeter.meter.outputs import Transition
from minimeter.sources.service import Load, Profile, Service, SyntheticSource, household_day, ideal_source

HOUR = 3600.0
# Ten power cycles over the household day: (start [h], minutes without supply)
OUTAGES = ((0.7, 5), (2.3, 12), (6.5, 3), (7.1, 20), (9.9, 2), (12.2, 7), (14.4, 30), (18.5, 4), (20.05, 9), (23.0, 2))
FULL_LOAD_S = 61.0

READERS = (
    ReaderSettings(name="minimeter (20 ms)"),
    ReaderSettings(name="minimeter (200 ms filter)", debounce_s=0.200),
    ReaderSettings(name="naive: every OFF→ON", debounce_s=0.0, count_power_edges=True, recover_missed=False),
    ReaderSettings(name="naive: every ON→OFF", edge="falling", debounce_s=0.0, count_power_edges=True,
                   recover_missed=False),
    ReaderSettings(name="naive: fixed 200 ms debounce", debounce_s=0.200, count_power_edges=True,
                   recover_missed=False),
    ReaderSettings(name="naive: count since boot", debounce_s=0.0, count_power_edges=True, recover_missed=False,
                   keep_count=False),
)


@dataclass(frozen=True)
class TrueRun:
    """A meter's own edges over a run and its register at start and end."""

    name: str
    edges: tuple[Transition, ...]
    register_start_wh: float
    register_end_wh: float
    end_s: float
    kh_wh: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Impairment:
    """What the wire and the reader do to the edges."""

    name: str = "clean"
    bounce_s: float = 0.0             # chatter after each edge [s] (0: none)
    bounce_toggles: int = 4           # extra edges in the chatter (even: it ends in the edge's state)
    restarts: int = 0                 # reader restarts, each just after an energy edge of output 10
    restart_lag_s: float = 0.005      # the reader goes down this long after that edge (the edge in progress)
    down_s: float = 2.0               # and boots this much later [s]
    miss_every: int = 0               # drop one edge in this many (0: none)


@dataclass(frozen=True)
class Score:
    case: str
    reader: str
    output: str
    kh_wh: int
    expected: int
    counted: int
    gaps: int

    @property
    def difference(self) -> int:
        return self.counted - self.expected

    def as_dict(self) -> dict:
        return {**self.__dict__, "difference": self.difference}


# --------------------------------------------------------------------------- true edges
def household_with_outages() -> SyntheticSource:
    """The built-in household day with the supply gone (both legs at 0 V) for each span
    of :data:`OUTAGES`."""
    service, loads = household_day()
    source = ideal_source(service, loads, 2)
    times, values = [0.0], [1.0]
    for start_h, minutes in OUTAGES:
        times += [start_h * HOUR, start_h * HOUR + minutes * 60.0]
        values += [0.0, 1.0]
    gain = Profile(tuple(times), tuple(values))
    return replace(source, volts=tuple(tuple(replace(c, gain=gain) for c in signal) for signal in source.volts))


def full_load_source(meter: Meter) -> SyntheticSource:
    """Every element at its maximum current and the highest supply, PF 1."""
    spec = meter.spec
    service = Service("split" if spec.elements == 2 else "single", spec.supply_max_v, 60.0)
    watts = spec.max_primary_a * spec.supply_max_v
    legs = ("L1", "L2")[:spec.elements]
    return ideal_source(service, tuple(Load(watts, 1.0, connection=leg) for leg in legs), spec.elements)


def full_load_w(meter: Meter) -> float:
    spec = meter.spec
    return spec.elements * spec.max_primary_a * spec.supply_max_v


def true_run(name: str, meter: Meter, source: SyntheticSource, duration_s: float) -> TrueRun:
    """Run ``meter`` on ``source`` through the drive path; its edges and register."""
    start = meter.watt_hours
    edges: list[Transition] = []
    for update, _ in feed_source(meter, source, duration_s):
        edges.extend(update.transitions)
    kh = tuple((name_, int(name_)) for name_ in meter.output_names if name_.isdigit())
    return TrueRun(name, tuple(edges), start, meter.watt_hours, duration_s, kh)


def standard_runs() -> list[TrueRun]:
    return [true_run("household day, 10 power cycles", Meter.for_model("7B", ct_rating="200A"),
                     household_with_outages(), 24 * HOUR),
            _full_load_run()]


def _full_load_run() -> TrueRun:
    meter = Meter.for_model("7B", ct_rating="400A")
    return true_run(f"full load {full_load_w(meter):,.0f} W, {FULL_LOAD_S:g} s", meter, full_load_source(meter),
                    FULL_LOAD_S)


# --------------------------------------------------------------------------- impairments
def bounced(edges: Sequence[Transition], bounce_s: float, toggles: int) -> list[Transition]:
    """Each edge followed by ``toggles`` chatter edges spread evenly over ``bounce_s``,
    alternating, the last one in the edge's own state."""
    out: list[Transition] = []
    for k, edge in enumerate(edges):
        out.append(edge)
        for j in range(1, toggles + 1):
            t = edge.time_s + bounce_s * j / toggles
            out.append(Transition(edge.output, edge.state if j % 2 == 0 else not edge.state, t, edge.cause))
    out.sort(key=lambda e: e.time_s)
    return out


def _restart_times(edges: Sequence[Transition], count: int, lag_s: float) -> list[float]:
    """``count`` instants spread over the run, each ``lag_s`` after an energy OFF→ON edge
    of output 10."""
    rising = [e.time_s for e in edges if e.output == "10" and e.state and e.cause == "energy"]
    if not rising or count <= 0:
        return []
    step = max(len(rising) // (count + 1), 1)
    return [rising[step * (k + 1)] + lag_s for k in range(count) if step * (k + 1) < len(rising)]


def _level_at(edges: Sequence[Transition], time_s: float) -> dict[str, bool]:
    level: dict[str, bool] = {}
    for e in edges:
        if e.time_s > time_s:
            break
        level[e.output] = e.state
    return level


def read_run(run: TrueRun, impairment: Impairment, settings: ReaderSettings) -> PulseReader:
    """Feed ``run``'s edges, impaired, to a reader of ``settings``."""
    edges = list(run.edges)
    if impairment.miss_every:
        edges = [e for k, e in enumerate(edges) if k % impairment.miss_every != impairment.miss_every // 2]
    if impairment.bounce_s:
        edges = bounced(edges, impairment.bounce_s, impairment.bounce_toggles)
    reader = PulseReader(settings, kh_wh=dict(run.kh_wh))
    times = [e.time_s for e in edges]
    start = 0
    for down in _restart_times(run.edges, impairment.restarts, impairment.restart_lag_s):
        up = down + impairment.down_s
        reader.read(edges[start:max(bisect_left(times, down), start)])
        reader.restart(down, up, _level_at(edges, up))
        start = max(bisect_right(times, up), start)       # the edges while it was down are lost
    reader.read(edges[start:])
    reader.finish(run.end_s)
    return reader


def score(run: TrueRun, impairment: Impairment, settings: ReaderSettings) -> list[Score]:
    reader = read_run(run, impairment, settings)
    case = f"{run.name} — {impairment.name}"
    return [Score(case, settings.name, name, kh, expected_pulses(run.register_start_wh, run.register_end_wh, kh),
                  reader.pulses(name) if name in reader.outputs else 0, len(reader.gaps(name)))
            for name, kh in run.kh_wh]


STANDARD_IMPAIRMENTS = (
    Impairment("clean"),
    Impairment("5 ms contact bounce", bounce_s=0.005),
    Impairment("3 reader restarts, 2 s down, 5 ms after an edge", restarts=3),
    Impairment("1 edge in 50 missed", miss_every=50),
)


def run_bench(runs: Sequence[TrueRun] | None = None, impairments: Sequence[Impairment] = STANDARD_IMPAIRMENTS,
              readers: Sequence[ReaderSettings] = READERS) -> list[Score]:
    """Every run × impairment × reader setting, scored per output."""
    runs = standard_runs() if runs is None else runs
    return [s for run in runs for imp in impairments for settings in readers for s in score(run, imp, settings)]


# --------------------------------------------------------------------------- advice
def safe_filter_s(kh_wh: int, full_load_w_: float) -> float:
    """The narrowest pulse of a Kh output at full load, ``Kh/2 · 3600 / P`` [s]: a
    minimum-width filter must stay below it (and above the contact's bounce)."""
    return kh_wh / 2 * HOUR / full_load_w_


def advice_rows(meter: Meter | None = None) -> list[dict]:
    meter = meter or Meter.for_model("7B", ct_rating="400A")
    p = full_load_w(meter)
    return [{"kh_wh": kh, "full_load_w": p, "pulse_width_s": safe_filter_s(kh, p)} for kh in meter.spec.outputs_wh]


# --------------------------------------------------------------------------- report
_STYLE = _BENCH_STYLE + " img{max-width:100%}"          # the accuracy bench's report style, one wide plot


def table_rows(scores: Sequence[Score]) -> tuple[list[str], list[list[str]]]:
    """One row per case and reader; a column per output: the counted pulses minus the
    register's, 'exact' when none."""
    outputs = sorted({s.output for s in scores}, key=int)
    rows: dict[tuple[str, str], dict[str, Score]] = {}
    for s in scores:
        rows.setdefault((s.case, s.reader), {})[s.output] = s
    header = ["case", "reader"] + [f"output {o} (Kh {o})" for o in outputs]
    body = []
    for (case, reader), cells in rows.items():
        body.append([case, reader] + [_cell(cells.get(o)) for o in outputs])
    return header, body


def _cell(s: Score | None) -> str:
    if s is None:
        return "—"
    return "exact" if s.difference == 0 else f"{s.difference:+d} of {s.expected}"


def _plot_png(scores: Sequence[Score]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys(s.case for s in scores))
    readers = list(dict.fromkeys(s.reader for s in scores))
    fig, ax = plt.subplots(figsize=(12.0, 5.0), dpi=100)
    width = 0.8 / max(len(readers), 1)
    for j, reader in enumerate(readers):
        values = []
        for case in cases:
            rows = [s for s in scores if s.case == case and s.reader == reader and s.output == "10"]
            values.append(100.0 * rows[0].difference / rows[0].expected if rows and rows[0].expected else 0.0)
        ax.bar([k + j * width for k in range(len(cases))], values, width, label=reader)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(cases))])
    ax.set_xticklabels([c.replace(" — ", "\n") for c in cases], fontsize=7)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylabel("output 10: counted − register [% of the pulses]")
    ax.axhline(0.0, color="black", lw=0.8)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_report(scores: Sequence[Score], advice: Sequence[dict], out_dir, title: str = "minimeter pulse bench") -> dict:
    """``pulse_bench.json`` and ``index.html`` (the table, the plot embedded, the advice)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "pulse_bench.json", "html": out / "index.html"}
    header, body = table_rows(scores)
    paths["json"].write_text(json.dumps({"title": title, "scores": [s.as_dict() for s in scores],
                                         "advice": list(advice)}, indent=1))
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{_STYLE}</style>"
             f"</head><body><h1>{esc(title)}</h1><p>Each reader setting's count against the register: "
             "floor(E_end/Kh) − floor(E_start/Kh) pulses per output (SPEC S6.1, S13.3).</p><table><tr>"]
    parts += [f"<th>{esc(h)}</th>" for h in header] + ["</tr>"]
    for row in body:
        parts.append("<tr>" + "".join(
            f"<td class='{'l' if k < 2 else 'pass' if c == 'exact' else 'fail'}'>{esc(c)}</td>"
            for k, c in enumerate(row)) + "</tr>")
    png = base64.b64encode(_plot_png(scores)).decode("ascii")
    parts.append(f"</table><h2>Output 10</h2><img alt='counted against the register' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Advice: the longest safe filter at full load</h2><table><tr><th>Kh [Wh]</th><th>full load [W]</th>"
                 "<th>narrowest pulse = longest safe filter [ms]</th></tr>")
    for a in advice:
        parts.append(f"<tr><td>{a['kh_wh']}</td><td>{a['full_load_w']:,.0f}</td><td>{a['pulse_width_s'] * 1000:,.1f}</td></tr>")
    parts.append("</table><p>Keep the filter above the contact's bounce (a few ms) and below the narrowest pulse: "
                 "a longer one swallows every pulse at full load.</p></body></html>")
    paths["html"].write_text("".join(parts))
    return paths
