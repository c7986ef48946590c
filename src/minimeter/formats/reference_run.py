"""The reference-run file (TOML; the format is described in :mod:`minimeter.lab.reference_run`,
which fits a calibration from it): its model (:class:`ReferenceRun`, :class:`ReferenceStep`)
and its reader :func:`load_reference_run`, raising :class:`InvalidReferenceRun`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minimeter.errors import MinimeterError
from minimeter.formats.toml import MAX_STRING_CHARS, Key, TomlReader, read_text
from minimeter.sources.recordings import ChannelMap, InvalidRecording

FORMAT = "minimeter-reference-run"
_TOP_KEYS = ("format", "frequency_hz", "map", "settle_s", "notes", "step")
# S15.1: the bounds of a reference's true values (per element) and of a file's lists
_TRUE_VALUE_BOUNDS = {"volts_rms": 1e6, "amps_rms": 1e6, "power_w": 1e12}   # [V], [A], [W]
MAX_ELEMENTS = 64
MAX_NOTES = 100
_STEP_KEYS = ("recording", "volts_rms", "amps_rms", "power_w", "power_factor", "lead", "map", "columns",
              "sample_rate_hz")


class InvalidReferenceRun(MinimeterError, ValueError):
    """A reference-run file that cannot be used; the message names the file, the key and
    the problem."""


@dataclass(frozen=True)
class ReferenceStep:
    """One step: a recording of the meter's inputs and the reference's true values.

    ``volts_rms`` [V], ``amps_rms`` [A] and ``power_w`` [W] have one value per element.
    """

    index: int                          # 1-based position in the file (for messages)
    recording: Path
    channel_map: ChannelMap | None      # None: channels paired by unit
    volts_rms: tuple[float, ...]        # [V rms]
    amps_rms: tuple[float, ...]         # [A rms]
    power_w: tuple[float, ...]          # [W]
    lead: bool = False
    columns: tuple[str, ...] | None = None
    sample_rate_hz: float | None = None  # [Hz], CSV only

    @property
    def key(self) -> str:
        return f"step[{self.index}]"

    @property
    def power_factor(self) -> float:
        """Mean of the elements' P / (Vrms · Irms)."""
        return float(np.mean(np.asarray(self.power_w) / (np.asarray(self.volts_rms) * np.asarray(self.amps_rms))))

    @property
    def current_a(self) -> float:
        """The step's current [A rms] (mean over elements)."""
        return float(np.mean(self.amps_rms))


@dataclass(frozen=True)
class ReferenceRun:
    """A parsed reference-run file."""

    path: Path
    steps: tuple[ReferenceStep, ...]
    frequency_hz: float = 60.0          # [Hz]
    settle_s: float = 0.6               # [s]
    notes: tuple[str, ...] = ()

    def fail(self, key: str, problem: str) -> InvalidReferenceRun:
        return InvalidReferenceRun(f"{self.path}: {key}: {problem}")


# --------------------------------------------------------------------------- the file
def load_reference_run(path: str | Path) -> ReferenceRun:
    """Read a reference-run file (TOML; see :mod:`minimeter.lab.reference_run`). Recordings
    are found relative to the file; they are opened only when calibrating.

    Errors name the file and the key but no line, like the ones
    :meth:`ReferenceRun.fail` raises later about the same file (which has no text to
    locate in)."""
    path = Path(path)
    r = TomlReader(path, read_text(path, InvalidReferenceRun, "reference-run"), InvalidReferenceRun, locate=False)
    if r.data.get("format") != FORMAT:
        raise r.fail(("format",), f"expected \"{FORMAT}\", got {r.data.get('format')!r}")
    r.known(r.data, (), _TOP_KEYS)
    default_map = _channel_map(r, r.data, ("map",), None)
    hint = " (at least two: PF 1 and a phase step)"
    steps = tuple(_step(r, key, table, default_map) for key, table in r.tables("step", hint))
    if not steps:
        raise r.fail(("step",), f"expected [[step]] tables{hint}")
    return ReferenceRun(path, steps, r.number(r.data, ("frequency_hz",), 60.0, 40.0, 70.0),
                        r.number(r.data, ("settle_s",), 0.6, 0.0, 3600.0), _notes(r))


def _notes(r: TomlReader) -> tuple[str, ...]:
    notes = r.data.get("notes", [])
    if isinstance(notes, str):
        notes = [notes]
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise r.fail(("notes",), "expected a string or a list of strings")
    if len(notes) > MAX_NOTES or any(len(n) > MAX_STRING_CHARS for n in notes):
        raise r.fail(("notes",), f"at most {MAX_NOTES} notes of at most {MAX_STRING_CHARS} characters each")
    return tuple(notes)


def _channel_map(r: TomlReader, data: dict, key: Key, default: ChannelMap | None) -> ChannelMap | None:
    """A channel map's text form (``"V:I"``, ``"U1:I1:ct=2000"``), or ``default`` when absent."""
    value = data.get(key[-1])
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > MAX_STRING_CHARS:
        raise r.fail(key, f"expected a channel map such as \"V:I\" or \"U1:I1:ct=2000\", got {value!r:.80}")
    try:
        return ChannelMap.parse(value)
    except InvalidRecording as exc:
        raise r.fail(key, str(exc)) from None


def _values(r: TomlReader, s: dict, key: Key) -> tuple[float, ...] | None:
    """A positive number, or a list of them (one per element); None when absent."""
    value = s.get(key[-1])
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not abs(x) < 1e308
                        for x in items):         # NaN, inf and ints too large for a float fail
        raise r.fail(key, f"expected a number or a list of numbers (one per element), got {value!r}")
    if any(x <= 0 for x in items):
        raise r.fail(key, f"{value!r} must be positive")
    bound = _TRUE_VALUE_BOUNDS.get(str(key[-1]), 1e12)     # (power_factor: at most 1, checked with its meaning)
    if len(items) > MAX_ELEMENTS or any(x > bound * (1 + 1e-9) for x in items):
        raise r.fail(key, f"{value!r:.80}: at most {MAX_ELEMENTS} values, each in (0, {bound:g}]")
    return tuple(float(x) for x in items)


def _per_element(values: tuple[float, ...], n: int) -> tuple[float, ...]:
    return values * n if len(values) == 1 else values


def _true_values(r: TomlReader, key: Key, s: dict) -> tuple[tuple[float, ...], ...]:
    """The reference's (volts_rms, amps_rms, power_w), one value per element each."""
    named = {name: _values(r, s, key + (name,)) for name in ("volts_rms", "amps_rms", "power_w", "power_factor")}
    for name in ("volts_rms", "amps_rms"):
        if named[name] is None:
            raise r.fail(key + (name,), "missing — the reference's true value is required")
    if (named["power_w"] is None) == (named["power_factor"] is None):
        raise r.fail(key + ("power_w",), "give exactly one of power_w [W] and power_factor")
    n = max(len(v) for v in named.values() if v is not None)
    for name, v in named.items():
        if v is not None and len(v) not in (1, n):
            raise r.fail(key + (name,), f"{len(v)} values where another key has {n} (one per element, or one)")
    volts, amps = _per_element(named["volts_rms"], n), _per_element(named["amps_rms"], n)
    if named["power_w"] is not None:
        power = _per_element(named["power_w"], n)
    elif any(x > 1 for x in named["power_factor"]):
        raise r.fail(key + ("power_factor",), f"{list(named['power_factor'])} must be at most 1")
    else:
        power = tuple(v * a * f for v, a, f in zip(volts, amps, _per_element(named["power_factor"], n)))
    ratio = [w / (v * a) for w, v, a in zip(power, volts, amps)]
    if any(x > 1.0 + 1e-6 for x in ratio):
        raise r.fail(key + ("power_w",), f"{list(power)} W exceeds Vrms · Irms (PF {max(ratio):.4f} > 1)")
    return volts, amps, power


def _step(r: TomlReader, key: Key, s: dict, default_map: ChannelMap | None) -> ReferenceStep:
    r.known(s, key, _STEP_KEYS)
    recording = s.get("recording")
    if not isinstance(recording, str) or not recording or len(recording) > MAX_STRING_CHARS:
        raise r.fail(key + ("recording",), f"expected the path of a recording, got {recording!r}")
    recording_path = r.beside(recording)
    if not recording_path.is_file():
        raise r.fail(key + ("recording",), f"no such file {str(recording_path)!r}")
    volts, amps, power = _true_values(r, key, s)
    lead = r.boolean(s, key + ("lead",), False)
    columns = s.get("columns")
    if columns is not None and (not isinstance(columns, list) or len(columns) > 4096
                                or not all(isinstance(c, str) and len(c) <= MAX_STRING_CHARS for c in columns)):
        raise r.fail(key + ("columns",), f"expected a list of column names, got {columns!r}")
    rate = r.number(s, key + ("sample_rate_hz",), None, 1.0, 1e9)
    return ReferenceStep(key[-1] + 1, recording_path, _channel_map(r, s, key + ("map",), default_map), volts, amps,
                         power, lead, tuple(columns) if columns is not None else None, rate)


__all__ = ["FORMAT", "InvalidReferenceRun", "ReferenceRun", "ReferenceStep", "load_reference_run"]
