"""The other end of the wire (SPEC §13): the meter's output edges written out, and a
pulse reader that turns edges back into energy.

**Edges out (S13.1).** One edge is one :class:`~minimeter.meter.outputs.Transition`
(output, state, time, cause). Leaving the program it is one record,
:func:`edge_record` — ``{"time": ISO 8601 UTC, "time_s": s since the meter started,
"output": "10", "state": "ON"|"OFF", "cause": "energy"|"power-loss"|"power-restore"}`` —
a JSON object on MQTT and the web event stream, a CSV row in ``--pulses-out`` files
(:class:`EdgeWriter`, columns :data:`EDGE_FIELDS`). :func:`read_edges` reads such a file
back (CSV, or JSON lines).

**The reader (S13.2).** :class:`PulseReader` is what an AMR pulse counter does with the
contact: each accepted OFF→ON edge is one pulse of Kh Wh (``edge='falling'`` counts
ON→OFF instead, as some counters do). It

* filters the contact: a level must hold ``debounce_s`` before it is accepted (a minimum
  pulse width), so contact bounce shorter than that is not counted;
* does not count the edges of power loss and restore (``cause``): after a power loss the
  outputs open, and at restore an output whose register sits in the first half of its
  Kh closes again — an OFF→ON edge that marks no energy (``count_power_edges=True`` models
  the naive reader that counts it);
* uses the 50 % duty of the outputs to notice missed edges: two energy OFF edges in a row
  mean an OFF→ON was lost (one pulse recovered, flagged); two ON edges in a row mean an
  ON→OFF was lost (the second ON still counts);
* keeps its total across a restart (:meth:`PulseReader.restart`; ``keep_count=False``
  models a counter that counts since boot), reads the level at boot, and flags the time it
  was down as a gap, with the energy the last power would have drawn over it;
* gives 15-minute interval energies (pulses × Kh, by the time of the edge), power from the
  time between pulses (``Kh · 3600 / Δt`` — as a pulse meter does), and flags a silence
  longer than ``silence_factor`` × the last pulse period while power was being drawn;
* reconciles its count with a register read at start and end
  (:meth:`PulseReader.reconcile`): a reader fed the meter's own edges counts exactly
  ``floor(E_end/Kh) − floor(E_start/Kh)``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from minimeter.errors import MinimeterError
from minimeter.formats import InvalidFormat, iso8601, parse_iso8601
from minimeter.meter.outputs import Transition

EDGE_FIELDS = ("time", "time_s", "output", "state", "cause")
CAUSES = ("energy", "power-loss", "power-restore")
INTERVAL_S = 900.0                 # 15-minute interval data
DEFAULT_DEBOUNCE_S = 0.020         # the project's reader: 20 ms (contact bounce is a few ms; a Kh = 10 pulse at
                                   # the largest meter's full load is 148 ms wide — see lab/pulse_bench.py)
DEFAULT_SILENCE_FACTOR = 10.0


class PulseError(MinimeterError, ValueError):
    """An edge, an edge file or a reader setting that cannot be used; the message names
    the input and the bound."""


# --------------------------------------------------------------------------- edges out
def edge_record(edge: Transition, start_epoch_s: float | None = None) -> dict[str, Any]:
    """One edge as it leaves the program (S13.1). ``start_epoch_s`` is the UNIX time of
    the meter's time 0; None (not known: a simulation, a recording without a start time)
    leaves ``time`` None — null in JSON, empty in CSV; ``time_s`` is exact either way."""
    time = None if start_epoch_s is None else iso8601(start_epoch_s + edge.time_s)
    return {"time": time, "time_s": edge.time_s, "output": edge.output, "state": "ON" if edge.state else "OFF",
            "cause": edge.cause}


def start_epoch_of(text: str | None) -> float | None:
    """A recording's start time (ISO 8601 text) → UNIX time [s]; None when absent or not
    ISO 8601 (COMTRADE's own ``dd/mm/yyyy,hh:mm:ss`` included: the edges then carry
    ``time_s`` alone)."""
    if not text:
        return None
    try:
        return parse_iso8601(text)
    except InvalidFormat:
        return None


class EdgeWriter:
    """Writes edges to a CSV file (``--pulses-out``), header :data:`EDGE_FIELDS`, one
    row per edge in time order; with no path it writes nothing, so a command calls it
    either way. Use as a context manager; calling it with an update of
    :mod:`minimeter.drive` (and anything after, as ``on_update`` callbacks get) writes
    the update's edges."""

    def __init__(self, path: str | Path | None, start_epoch_s: float | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.start_epoch_s = start_epoch_s
        self.count = 0
        self._file: IO[str] | None = None
        self._csv: Any = None

    def __enter__(self) -> "EdgeWriter":
        if self.path is not None:
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._csv = csv.DictWriter(self._file, fieldnames=EDGE_FIELDS)
            self._csv.writeheader()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __call__(self, update: Any, *_: Any) -> None:
        self.write(update.transitions)

    def write(self, edges: Iterable[Transition]) -> None:
        if self._csv is None:
            return
        for edge in edges:
            row = edge_record(edge, self.start_epoch_s)
            row["time_s"] = repr(edge.time_s)          # every digit: the reader's power comes from differences
            self._csv.writerow(row)
            self.count += 1


def edge_from_record(record: Mapping[str, Any], where: str = "edge") -> Transition:
    """An edge record (a JSON object or a CSV row) → a Transition; ``time_s`` is used
    when present, else ``time`` (ISO 8601, as UNIX seconds)."""
    try:
        output = str(record["output"]).strip()
        state_text = str(record["state"]).strip().upper()
        cause = str(record.get("cause") or "energy").strip()
        raw_t = record.get("time_s")
        time_s = float(raw_t) if raw_t not in (None, "") else parse_iso8601(record["time"])
    except (KeyError, TypeError, ValueError, MinimeterError) as exc:
        raise PulseError(f"{where}: needs output, state and time_s or time ({exc})") from None
    if state_text not in ("ON", "OFF"):
        raise PulseError(f"{where}: state {state_text[:20]!r} must be ON or OFF")
    if cause not in CAUSES:
        raise PulseError(f"{where}: cause {cause[:30]!r} must be one of {', '.join(CAUSES)}")
    if not output or not math.isfinite(time_s):
        raise PulseError(f"{where}: an output name and a finite time are needed")
    return Transition(output, state_text == "ON", time_s, cause)


def read_edges(path: str | Path) -> Iterator[Transition]:
    """The edges of a ``--pulses-out`` CSV file, or of a file of JSON lines (one edge
    record per line), in file order."""
    path = Path(path)
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        first = f.readline()
        f.seek(0)
        if first.lstrip().startswith("{"):
            for k, line in enumerate(f, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError:
                        raise PulseError(f"{path}:{k}: not a JSON edge record") from None
                    if not isinstance(record, dict):
                        raise PulseError(f"{path}:{k}: not a JSON edge record")
                    yield edge_from_record(record, f"{path}:{k}")
            return
        rows = csv.DictReader(f)
        if not rows.fieldnames or not {"output", "state"} <= set(rows.fieldnames):
            raise PulseError(f"{path}: not an edge file — the header must name {', '.join(EDGE_FIELDS)}")
        for k, row in enumerate(rows, 2):
            yield edge_from_record(row, f"{path}:{k}")


# --------------------------------------------------------------------------- the reader
@dataclass(frozen=True)
class ReaderSettings:
    """How a reader counts. The defaults are the project's reader; the bench's naive
    readers change one thing each."""

    name: str = "minimeter"
    edge: str = "rising"                     # 'rising' (OFF→ON marks a pulse) or 'falling'
    debounce_s: float = DEFAULT_DEBOUNCE_S   # a level must hold this long to be accepted [s]
    count_power_edges: bool = False          # count the edges of power loss / restore too (naive)
    recover_missed: bool = True              # use the 50 % duty to recover a lost OFF→ON
    keep_count: bool = True                  # the total survives a restart (False: count since boot)
    silence_factor: float = DEFAULT_SILENCE_FACTOR   # flag no pulse for this × the last period

    def __post_init__(self) -> None:
        if self.edge not in ("rising", "falling"):
            raise PulseError(f"edge {self.edge!r} must be 'rising' or 'falling'")
        if not (isinstance(self.debounce_s, (int, float)) and 0.0 <= self.debounce_s <= 60.0):
            raise PulseError(f"debounce {self.debounce_s!r} s must be between 0 and 60 s")
        if not (isinstance(self.silence_factor, (int, float)) and self.silence_factor > 1.0):
            raise PulseError(f"silence factor {self.silence_factor!r} must be a number above 1")


@dataclass(frozen=True)
class Gap:
    """A stretch where pulses may be missing: the reader was down ('reader-down'), an edge
    was lost ('missed-edge'), or the pulses stopped while power was being drawn ('silence')."""

    output: str
    start_s: float
    end_s: float
    reason: str
    power_before_w: float          # the reader's power just before [W] (0 when unknown)

    @property
    def estimated_wh(self) -> float:
        """What the power before would have drawn over the gap, had it gone on [Wh]: an
        upper bound of the energy missing (a load that stopped drew none of it)."""
        return self.power_before_w * (self.end_s - self.start_s) / 3600.0


@dataclass(frozen=True)
class Reconciliation:
    """The reader's count on one output against a register read at start and end."""

    output: str
    kh_wh: int
    register_start_wh: float
    register_end_wh: float
    expected_pulses: int            # floor(E_end/Kh) − floor(E_start/Kh)
    counted_pulses: int

    @property
    def difference_pulses(self) -> int:
        return self.counted_pulses - self.expected_pulses

    @property
    def difference_wh(self) -> float:
        return self.difference_pulses * self.kh_wh

    @property
    def exact(self) -> bool:
        return self.difference_pulses == 0

    def as_dict(self) -> dict:
        return {"output": self.output, "kh_wh": self.kh_wh, "register_start_wh": self.register_start_wh,
                "register_end_wh": self.register_end_wh, "expected_pulses": self.expected_pulses,
                "counted_pulses": self.counted_pulses, "difference_pulses": self.difference_pulses,
                "difference_wh": self.difference_wh, "exact": self.exact}


def expected_pulses(register_start_wh: float, register_end_wh: float, kh_wh: int) -> int:
    """The OFF→ON edges marking energy between two register readings (S6.1)."""
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (register_start_wh, register_end_wh))
    if not (numbers and math.isfinite(register_start_wh) and math.isfinite(register_end_wh)
            and 0.0 <= register_start_wh <= register_end_wh):
        raise PulseError(f"register readings {register_start_wh!r} → {register_end_wh!r} Wh must be finite, "
                         "≥ 0 and not decreasing")
    return math.floor(register_end_wh / kh_wh) - math.floor(register_start_wh / kh_wh)


@dataclass
class _Line:
    """One output's contact as the reader sees it."""

    kh_wh: int
    level: bool | None = None           # the accepted (debounced) level; None before the first edge
    raw: bool | None = None             # the last raw edge's state
    raw_cause: str = "energy"
    pending: Transition | None = None   # a level change waiting to hold debounce_s
    pulses: int = 0                     # counted since the reader's total began (or since boot)
    recovered: int = 0
    ignored_power_edges: int = 0
    rejected: int = 0                   # edges the debounce filter swallowed
    last_pulse_s: float | None = None
    period_s: float | None = None
    power_w: float = 0.0
    intervals: dict[int, int] = field(default_factory=dict)
    power: list[tuple[float, float]] = field(default_factory=list)


class PulseReader:
    """An AMR pulse reader on the meter's outputs (see the module's docstring).

    Parameters
    ----------
    settings : how it counts (:class:`ReaderSettings`; the project's reader by default)
    kh_wh : Kh per output [Wh/pulse]; an output not named here takes its name as Kh
        ('10', '100', '1000'); the counter output needs ``{'counter': 100}`` or 1000
    start_epoch_s : UNIX time of time_s 0, to align the 15-minute intervals on the clock
    """

    def __init__(self, settings: ReaderSettings | None = None, *, kh_wh: Mapping[str, int] | None = None,
                 start_epoch_s: float | None = None) -> None:
        self.settings = settings or ReaderSettings()
        self._kh = {str(k): _valid_kh(str(k), v) for k, v in (kh_wh or {}).items()}
        self._offset_s = (start_epoch_s or 0.0) % INTERVAL_S
        self._lines: dict[str, _Line] = {}
        self._gaps: list[Gap] = []
        self._last_time_s = -math.inf
        self.edges_seen = 0

    # ------------------------------------------------------------------ reading
    def read(self, edges: Iterable[Transition]) -> None:
        """Take a batch of edges in time order (a stream of every output's edges, as the
        meter makes them). The batch is checked first: a refused batch changes nothing."""
        batch = list(edges)
        last = self._last_time_s
        for edge in batch:
            if not isinstance(edge, Transition):
                raise PulseError(f"an edge is a Transition (output, state, time_s, cause), not a {type(edge).__name__}")
            self._kh_for(edge.output)
            if not edge.time_s >= last - 1e-9:
                raise PulseError(f"edge of output {edge.output} at {edge.time_s!r} s is before the one at "
                                 f"{last!r} s: edges must come in time order")
            last = max(last, edge.time_s)
        for edge in batch:
            self._last_time_s = max(self._last_time_s, edge.time_s)
            self.edges_seen += 1
            self._take(edge.output, self._line(edge.output), edge)

    def finish(self, time_s: float | None = None) -> None:
        """The stream ends (at ``time_s``, default the last edge): a level change still
        waiting is accepted if it has held ``debounce_s`` by then."""
        now = self._last_time_s if time_s is None else time_s
        for name, line in self._lines.items():
            if line.pending is not None and now - line.pending.time_s >= self.settings.debounce_s:
                self._accept(name, line, line.pending)
            self._check_silence(name, line, now)

    def restart(self, down_s: float, up_s: float, levels: Mapping[str, bool]) -> None:
        """The reader went down at ``down_s`` and booted at ``up_s``, reading ``levels``
        (output → closed). The edge in progress is lost; without ``keep_count`` the total
        starts again from zero. A level found closed where the reader last saw it open is
        one pulse recovered (``recover_missed``); the time down is flagged as a gap."""
        if not (math.isfinite(down_s) and math.isfinite(up_s) and self._last_time_s <= down_s <= up_s):
            raise PulseError(f"a restart from {down_s!r} s to {up_s!r} s must come after the last edge "
                             f"({self._last_time_s!r} s) and boot after it went down")
        for name, line in self._lines.items():
            self._gaps.append(Gap(name, down_s, up_s, "reader-down", line.power_w))
            line.pending = None
            if not self.settings.keep_count:
                line.pulses, line.recovered = 0, 0
                line.intervals.clear()
            now = bool(levels.get(name, False))
            if self.settings.recover_missed and self.settings.keep_count and line.level is False and now:
                self._count(line, up_s, recovered=True)
            line.level = line.raw = now
            line.raw_cause = "energy"
            line.last_pulse_s = line.period_s = None
            line.power_w = 0.0
        self._last_time_s = max(self._last_time_s, up_s)

    # ------------------------------------------------------------------ results
    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self._lines)

    def _view(self, output: str) -> _Line:
        """An output's line to read (a blank one, not kept, for an output never seen)."""
        return self._lines.get(output) or _Line(self._kh_for(output))

    def kh_of(self, output: str) -> int:
        return self._view(output).kh_wh

    def pulses(self, output: str) -> int:
        """Pulses counted on ``output`` (recovered ones included)."""
        return self._view(output).pulses

    def energy_wh(self, output: str) -> float:
        line = self._view(output)
        return float(line.pulses * line.kh_wh)

    def recovered(self, output: str) -> int:
        return self._view(output).recovered

    def ignored_power_edges(self, output: str) -> int:
        return self._view(output).ignored_power_edges

    def rejected_edges(self, output: str) -> int:
        return self._view(output).rejected

    def intervals(self, output: str) -> list[tuple[float, float]]:
        """(interval start [s], energy [Wh]) per 15-minute interval with pulses, in order."""
        line = self._view(output)
        return [(k * INTERVAL_S - self._offset_s, n * line.kh_wh) for k, n in sorted(line.intervals.items())]

    def power(self, output: str) -> list[tuple[float, float]]:
        """(pulse time [s], power from the period since the pulse before [W])."""
        return list(self._view(output).power)

    def gaps(self, output: str | None = None) -> list[Gap]:
        return [g for g in self._gaps if output is None or g.output == output]

    def reconcile(self, output: str, register_start_wh: float, register_end_wh: float) -> Reconciliation:
        line = self._view(output)
        return Reconciliation(output, line.kh_wh, register_start_wh, register_end_wh,
                              expected_pulses(register_start_wh, register_end_wh, line.kh_wh), line.pulses)

    # ------------------------------------------------------------------ the contact
    def _kh_for(self, output: str) -> int:
        kh = self._kh.get(output)
        if kh is None:
            if not output.isdigit():
                raise PulseError(f"output {output[:40]!r}: give its Kh (e.g. {output[:40]}=100); only numeric "
                                 "outputs name their own Kh")
            kh = _valid_kh(output, int(output))
        return kh

    def _line(self, output: str) -> _Line:
        if output not in self._lines:
            self._lines[output] = _Line(self._kh_for(output))
        return self._lines[output]

    def _take(self, name: str, line: _Line, edge: Transition) -> None:
        debounce = self.settings.debounce_s
        if line.pending is not None and edge.time_s - line.pending.time_s >= debounce:
            self._accept(name, line, line.pending)
        if line.raw is not None and edge.state == line.raw:
            self._duplicate(name, line, edge)
        elif line.pending is not None:              # the line went back before the change held: a glitch
            line.pending = None
            line.rejected += 2
        elif edge.state != line.level:
            line.pending = edge
        if debounce == 0.0 and line.pending is not None:
            self._accept(name, line, line.pending)
        line.raw, line.raw_cause = edge.state, edge.cause

    def _duplicate(self, name: str, line: _Line, edge: Transition) -> None:
        """Two edges of the same state in a row: the one between was lost."""
        if not self.settings.recover_missed:
            return                                    # a level reader sees no change
        prev_energy = line.raw_cause == "energy"
        if edge.cause != "energy" or not prev_energy:
            return
        self._gaps.append(Gap(name, self._last_pulse_or(line, edge.time_s), edge.time_s, "missed-edge", line.power_w))
        counts_on_rise = self.settings.edge == "rising"
        if edge.state == counts_on_rise:              # the counted edge came again: this one is a pulse
            line.pending = None
            line.level = edge.state
            self._count(line, edge.time_s)
        else:                                         # the counted edge itself was lost
            line.pending = None
            line.level = edge.state
            self._count(line, edge.time_s, recovered=True)

    def _accept(self, name: str, line: _Line, edge: Transition) -> None:
        line.pending = None
        if edge.state == line.level:
            return
        line.level = edge.state
        counted_state = self.settings.edge == "rising"
        if edge.cause != "energy":
            line.ignored_power_edges += edge.state == counted_state
            line.last_pulse_s = line.period_s = None     # no period across a power loss
            line.power_w = 0.0
            if not self.settings.count_power_edges:
                return
        if edge.state == counted_state:
            self._check_silence(name, line, edge.time_s)
            self._count(line, edge.time_s, period=edge.cause == "energy")

    def _count(self, line: _Line, time_s: float, *, recovered: bool = False, period: bool = True) -> None:
        line.pulses += 1
        line.recovered += recovered
        k = math.floor((time_s + self._offset_s) / INTERVAL_S)
        line.intervals[k] = line.intervals.get(k, 0) + 1
        if recovered or not period:
            line.last_pulse_s = line.period_s = None
            return
        if line.last_pulse_s is not None and time_s > line.last_pulse_s:
            line.period_s = time_s - line.last_pulse_s
            line.power_w = line.kh_wh * 3600.0 / line.period_s
            line.power.append((time_s, line.power_w))
        line.last_pulse_s = time_s

    def _check_silence(self, name: str, line: _Line, now_s: float) -> None:
        """No pulse for ``silence_factor`` × the last period while power was drawn, and
        none on the reader's other outputs either (were one still pulsing, the meter was
        registering slowly, not lost): the load stopped, or the pulses were lost."""
        if line.period_s is None or line.last_pulse_s is None or line.power_w <= 0:
            return
        since = line.last_pulse_s
        if now_s - since <= self.settings.silence_factor * line.period_s:
            return
        if any(other.last_pulse_s is not None and other.last_pulse_s > since    # (a debounced edge is judged late)
               for other in self._lines.values() if other is not line):
            return
        self._gaps.append(Gap(name, since, now_s, "silence", line.power_w))

    @staticmethod
    def _last_pulse_or(line: _Line, time_s: float) -> float:
        return line.last_pulse_s if line.last_pulse_s is not None else time_s


def _valid_kh(output: str, kh: Any) -> int:
    if isinstance(kh, bool) or not isinstance(kh, int) or not 1 <= kh <= 1_000_000:
        raise PulseError(f"output {output!r}: Kh {kh!r} must be a whole number of Wh from 1 to 1000000")
    return kh
