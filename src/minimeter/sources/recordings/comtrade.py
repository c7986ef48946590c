"""COMTRADE reader (IEEE C37.111-1991, -1999 and IEC 60255-24:2013 / C37.111-2013).

A recording is a ``.CFG`` (configuration, text) and a ``.DAT`` (samples) of the same
stem. Analog values are ``a · x + b`` with the CFG's per-channel multiplier ``a`` and
offset ``b``. The ``.DAT`` is ASCII (``n, timestamp, A1…Aa, D1…Dd`` per line) or binary
(``BINARY`` int16, ``BINARY32`` int32, ``FLOAT32``; each record a uint32 sample number,
a uint32 timestamp, the analog values and the digital channels packed in uint16 words),
all little-endian.

What real files do, and how it is handled:

* negative multipliers (the Schneider meter behind ``keating_1999`` records inverted
  counts): applied as given, ``a · x + b``;
* a trailing DOS end-of-file byte ``0x1A`` after the last record: ignored;
* an empty timestamp column, or timestamps rounded to whole microseconds: time comes
  from the CFG's sample rate; when the CFG gives a rate of 0 (timestamps only), the rate
  is the mean over the whole file, ``(n − 1) / (t_last − t_first)``, not the rounded
  differences between neighbours;
* the 1991 revision has no revision year on line 1 and no ``timemult`` line.

Only digital channels' presence is checked; their values are not returned. Recordings
with more than one sample rate are refused with a clear error (the meter needs one
uniform rate, S4.1).

The package ``comtrade`` on PyPI reads a file whole into lists; streaming with flat
memory (a 2 GB ``.DAT``) needs a record-level reader, so this one parses the format
directly (the standard's text is short) and maps binary ``.DAT`` files with
``numpy.memmap``; the package serves the tests as an independent cross-check.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from minimeter.sources.recordings._base import InvalidRecording, Reader, RecordingInfo, check_file

_BINARY_TYPES = {"BINARY": "<i2", "BINARY32": "<i4", "FLOAT32": "<f4"}
_EOF = 0x1A


@dataclass(frozen=True)
class AnalogChannel:
    """One analog channel line of the CFG."""

    index: int
    name: str
    phase: str
    unit: str
    multiplier: float      # a
    offset: float          # b
    skew_us: float
    primary: float | None
    secondary: float | None
    ps: str                # 'P' or 'S' (values are primary or secondary), '' in 1991 files


@dataclass(frozen=True)
class ComtradeConfig:
    """The parsed CFG."""

    station: str
    revision: int
    analog: tuple[AnalogChannel, ...]
    digital_count: int
    line_frequency_hz: float
    sample_rate_hz: float          # 0 when the file relies on timestamps
    end_sample: int                # number of samples (last sample number)
    start_time: str
    trigger_time: str
    data_format: str               # 'ASCII', 'BINARY', 'BINARY32', 'FLOAT32'
    time_multiplier: float


def _fields(line: str) -> list[str]:
    return [f.strip() for f in line.rstrip("\r\n").split(",")]


class _CfgLines:
    """The CFG's lines, read one after another; errors name the file and the line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.pos = 0                      # index of the next line to read

    @property
    def line_no(self) -> int:
        """1-based number of the next line to read."""
        return self.pos + 1

    def take(self, what: str) -> list[str]:
        """The next non-blank line's comma-separated fields."""
        while self.pos < len(self.lines) and not self.lines[self.pos].strip():
            self.pos += 1
        if self.pos >= len(self.lines):
            raise InvalidRecording(f"{self.path}: ends early — expected {what} at line {self.pos + 1}")
        self.pos += 1
        return _fields(self.lines[self.pos - 1])

    def text_of(self, line_no: int) -> str:
        return self.lines[line_no - 1]

    def number(self, value: str, what: str, line_no: int, kind=float):
        try:
            return kind(value)
        except ValueError:
            raise InvalidRecording(f"{self.path}: line {line_no}: {what} {value!r} is not a number") from None

    def fail(self, line_no: int, problem: str) -> InvalidRecording:
        return InvalidRecording(f"{self.path}: line {line_no}: {problem}")


def parse_cfg(path: str | Path) -> ComtradeConfig:
    """Parse a COMTRADE configuration file; errors name the file, the line and the fault."""
    p = check_file(path)
    raw = p.read_bytes().replace(bytes([_EOF]), b"")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    cfg = _CfgLines(p, text)
    head = cfg.take("station, device and revision year")
    revision = cfg.number(head[2], "revision year", 1, int) if len(head) >= 3 and head[2] else 1991
    n_analog, n_digital = _channel_counts(cfg)
    analog = tuple(_analog_channel(cfg, k, n_analog) for k in range(n_analog))
    for k in range(n_digital):
        _digital_channel(cfg, k, n_digital)
    line_frequency = _line_frequency(cfg, n_analog, n_digital)
    rate_hz, end_sample = _sample_rate(cfg)
    start = ",".join(cfg.take("the first sample's date and time"))
    trigger = ",".join(cfg.take("the trigger's date and time"))
    line_no = cfg.line_no
    fmt = cfg.take("the data file type (ASCII, BINARY, BINARY32, FLOAT32)")[0].upper()
    if fmt not in ("ASCII", *_BINARY_TYPES):
        raise cfg.fail(line_no, f"data file type {fmt!r} unknown — ASCII, BINARY, BINARY32 or FLOAT32")
    time_mult = 1.0
    if revision >= 1999 and cfg.pos < len(cfg.lines) and cfg.lines[cfg.pos].strip():
        time_mult = cfg.number(_fields(cfg.lines[cfg.pos])[0], "time multiplier", cfg.line_no)
    return ComtradeConfig(
        station=head[0], revision=revision, analog=analog, digital_count=n_digital,
        line_frequency_hz=line_frequency, sample_rate_hz=rate_hz, end_sample=end_sample,
        start_time=start, trigger_time=trigger, data_format=fmt, time_multiplier=time_mult,
    )


def _channel_counts(cfg: _CfgLines) -> tuple[int, int]:
    """Line 2, ``TT,##A,##D``: the analog and digital channel counts."""
    counts = cfg.take("the channel counts 'TT,##A,##D'")
    if len(counts) < 3:
        raise cfg.fail(2, f"expected 'TT,##A,##D' (total, analog, digital counts), got {cfg.text_of(2)!r}")
    total = cfg.number(counts[0], "total channel count", 2, int)
    n_analog = cfg.number(counts[1].upper().rstrip("A"), "analog channel count", 2, int)
    n_digital = cfg.number(counts[2].upper().rstrip("D"), "digital channel count", 2, int)
    if total != n_analog + n_digital:
        raise cfg.fail(2, f"wrong channel count — total {total} is not {n_analog} analog + {n_digital} digital")
    return n_analog, n_digital


def _analog_channel(cfg: _CfgLines, k: int, n_analog: int) -> AnalogChannel:
    """Analog channel line ``An,ch_id,ph,ccbm,uu,a,b,skew,min,max[,primary,secondary,PS]``."""
    line_no = cfg.line_no
    f = cfg.take(f"analog channel {k + 1} of {n_analog}")
    if len(f) < 10:
        raise cfg.fail(line_no, f"wrong channel count — line 2 declares {n_analog} analog channels, "
                                f"but line {line_no} ({cfg.text_of(line_no)!r}) is not analog channel {k + 1} "
                                "(expected at least 10 comma-separated fields: An,ch_id,ph,ccbm,uu,a,b,skew,min,max)")
    index = cfg.number(f[0], "channel number", line_no, int)
    if index != k + 1:
        raise cfg.fail(line_no, f"wrong channel count — expected analog channel {k + 1}, found number {index}")
    return AnalogChannel(
        index=index, name=f[1], phase=f[2], unit=f[4],
        multiplier=cfg.number(f[5], "multiplier a", line_no), offset=cfg.number(f[6], "offset b", line_no),
        skew_us=cfg.number(f[7], "skew", line_no) if f[7] else 0.0,
        primary=cfg.number(f[10], "primary ratio", line_no) if len(f) > 10 and f[10] else None,
        secondary=cfg.number(f[11], "secondary ratio", line_no) if len(f) > 11 and f[11] else None,
        ps=(f[12].upper() if len(f) > 12 else ""),
    )


def _digital_channel(cfg: _CfgLines, k: int, n_digital: int) -> None:
    """A digital channel line: only its presence is checked."""
    line_no = cfg.line_no
    f = cfg.take(f"digital channel {k + 1} of {n_digital}")
    if len(f) < 3 or not f[0].isdigit() or len(f) >= 10:
        raise cfg.fail(line_no, f"wrong channel count — line 2 declares {n_digital} digital channels, "
                                f"but line {line_no} ({cfg.text_of(line_no)!r}) is not digital channel {k + 1}")


def _line_frequency(cfg: _CfgLines, n_analog: int, n_digital: int) -> float:
    line_no = cfg.line_no
    lf = cfg.take("the line frequency")
    if len(lf) != 1:
        raise cfg.fail(line_no, f"wrong channel count — expected the line frequency after {n_analog} analog and "
                                f"{n_digital} digital channels, got {cfg.text_of(line_no)!r}")
    return cfg.number(lf[0], "line frequency", line_no)


def _sample_rate(cfg: _CfgLines) -> tuple[float, int]:
    """The sample rate [Hz] and the last sample number; one uniform rate only."""
    line_no = cfg.line_no
    nrates = cfg.number(cfg.take("the number of sample rates")[0], "number of sample rates", line_no, int)
    rates = []
    for _ in range(max(nrates, 1)):
        line_no = cfg.line_no
        f = cfg.take("a sample rate line 'samp,endsamp'")
        if len(f) < 2:
            raise cfg.fail(line_no, f"expected 'samp,endsamp', got {cfg.text_of(line_no)!r}")
        rates.append((cfg.number(f[0], "sample rate", line_no), cfg.number(f[1], "end sample", line_no, int)))
    if nrates > 1 and len({r for r, _ in rates}) > 1:
        raise InvalidRecording(
            f"{cfg.path}: {nrates} different sample rates ({', '.join(f'{r:g} Hz' for r, _ in rates)}) — "
            "the meter needs one uniform rate; resample the recording first"
        )
    return rates[0][0], rates[-1][1]


def _dat_path(cfg_path: Path) -> Path:
    for suffix in (".DAT", ".dat", ".Dat"):
        candidate = cfg_path.with_suffix(suffix)
        if candidate.exists():
            return candidate
    raise InvalidRecording(f"{cfg_path}: its data file {cfg_path.with_suffix('.DAT').name} is missing")


class ComtradeReader(Reader):
    """A COMTRADE recording. ``path`` is the ``.CFG`` (or the ``.DAT`` beside it)."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if p.suffix.lower() == ".dat":
            p = p.with_suffix(".CFG") if p.with_suffix(".CFG").exists() else p.with_suffix(".cfg")
        self.cfg_path = check_file(p)
        self.cfg = parse_cfg(self.cfg_path)
        self.dat_path = _dat_path(self.cfg_path)
        cfg = self.cfg
        self._a = np.array([c.multiplier for c in cfg.analog])[:, None]
        self._b = np.array([c.offset for c in cfg.analog])[:, None]
        self._words = (cfg.digital_count + 15) // 16
        notes = []
        if any(c.multiplier < 0 for c in cfg.analog):
            notes.append("negative scale factors applied as given (a·x + b)")
        if cfg.data_format == "ASCII":
            frames, rate, extra = self._scan_ascii()
        else:
            frames, rate, extra = self._scan_binary()
        notes += extra
        if cfg.end_sample != frames:
            raise InvalidRecording(
                f"{self.dat_path}: truncated or inconsistent — the CFG says {cfg.end_sample} samples, "
                f"the DAT holds {frames}"
            )
        self.info = RecordingInfo(
            path=str(self.cfg_path), format="comtrade", sample_rate_hz=rate, frame_count=frames,
            channel_names=tuple(c.name for c in cfg.analog),
            channel_units=tuple(c.unit for c in cfg.analog),
            start_time=cfg.start_time, notes=tuple(notes),
        )

    # ------------------------------------------------------------ binary
    def _record_dtype(self) -> np.dtype:
        cfg = self.cfg
        return np.dtype([("n", "<u4"), ("t", "<u4"),
                         ("a", _BINARY_TYPES[cfg.data_format], (len(cfg.analog),)),
                         ("d", "<u2", (self._words,))])

    def _scan_binary(self) -> tuple[int, float, list[str]]:
        size = self.dat_path.stat().st_size
        rec = self._record_dtype().itemsize
        frames, rest = divmod(size, rec)
        notes = []
        if rest:
            with open(self.dat_path, "rb") as fh:
                fh.seek(frames * rec)
                tail = fh.read()
            if tail == bytes([_EOF]):
                notes.append("trailing end-of-file byte 0x1A ignored")
            else:
                raise InvalidRecording(
                    f"{self.dat_path}: truncated — {size} bytes is not a whole number of {rec}-byte records "
                    f"({len(self.cfg.analog)} analog, {self.cfg.digital_count} digital channels, {self.cfg.data_format})"
                )
        self._frames = frames
        rate = self.cfg.sample_rate_hz
        if rate <= 0:
            rate = self._rate_from_timestamps(*self._binary_times(frames))
            notes.append("sample rate taken from the timestamps (mean over the file)")
        return frames, rate, notes

    def _binary_times(self, frames: int) -> tuple[float, float, int]:
        mm = np.memmap(self.dat_path, dtype=self._record_dtype(), mode="r", shape=(frames,))
        return float(mm["t"][0]), float(mm["t"][-1]), frames

    def _rate_from_timestamps(self, t_first: float, t_last: float, frames: int) -> float:
        span_s = (t_last - t_first) * self.cfg.time_multiplier * 1e-6
        if frames < 2 or span_s <= 0:
            raise InvalidRecording(
                f"{self.cfg_path}: the sample rate is 0 (timestamps only) and the timestamps do not advance"
            )
        return (frames - 1) / span_s

    def _binary_chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        if self._frames == 0:
            return
        mm = np.memmap(self.dat_path, dtype=self._record_dtype(), mode="r", shape=(self._frames,))
        for k in range(0, self._frames, chunk_frames):
            counts = np.asarray(mm["a"][k:k + chunk_frames], dtype=float).T
            yield self._a * counts + self._b

    # ------------------------------------------------------------ ASCII
    def _open_text(self):
        return open(self.dat_path, "r", encoding="latin-1", newline=None)

    def _ascii_lines(self) -> Iterator[tuple[int, str]]:
        with self._open_text() as fh:
            for number, line in enumerate(fh, 1):
                stripped = line.strip().strip("\x1a").strip()
                if stripped:
                    yield number, stripped

    def _scan_ascii(self) -> tuple[int, float, list[str]]:
        frames = 0
        first_t = last_t = None
        want = 2 + len(self.cfg.analog) + self.cfg.digital_count
        saw_eof = False
        last = (0, "")
        with self._open_text() as fh:
            for number, line in enumerate(fh, 1):
                if "\x1a" in line:
                    saw_eof = True
                stripped = line.strip().strip("\x1a").strip()
                if not stripped:
                    continue
                if frames == 0 or self.cfg.sample_rate_hz <= 0:
                    got = stripped.count(",") + 1
                    if got != want:
                        raise InvalidRecording(
                            f"{self.dat_path}: line {number} has {got} fields; the CFG describes "
                            f"2 + {len(self.cfg.analog)} analog + {self.cfg.digital_count} digital = {want} "
                            "(wrong channel count in the CFG, or a damaged DAT)"
                        )
                if self.cfg.sample_rate_hz <= 0:
                    t = stripped.split(",")[1].strip()
                    if t:
                        first_t = float(t) if first_t is None else first_t
                        last_t = float(t)
                frames += 1
                last = (number, stripped)
        if last[0] and last[1].count(",") + 1 != want:
            raise InvalidRecording(
                f"{self.dat_path}: line {last[0]} has {last[1].count(',') + 1} fields, expected {want} "
                f"(truncated: the last record is cut short)"
            )
        notes = ["trailing end-of-file byte 0x1A ignored"] if saw_eof else []
        rate = self.cfg.sample_rate_hz
        if rate <= 0:
            if first_t is None:
                raise InvalidRecording(f"{self.cfg_path}: sample rate 0 and no timestamps in {self.dat_path.name}")
            rate = self._rate_from_timestamps(first_t, last_t, frames)
            notes.append("sample rate taken from the timestamps (mean over the file)")
        return frames, rate, notes

    def _ascii_chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        n_a = len(self.cfg.analog)
        want = 2 + n_a + self.cfg.digital_count
        batch: list[str] = []
        first_line = 0
        for number, line in self._ascii_lines():
            if not batch:
                first_line = number
            batch.append(line)
            if len(batch) == chunk_frames:
                yield self._parse_ascii(batch, first_line, want, n_a)
                batch = []
        if batch:
            yield self._parse_ascii(batch, first_line, want, n_a)

    def _parse_ascii(self, batch: list[str], first_line: int, want: int, n_a: int) -> np.ndarray:
        try:
            values = np.loadtxt(io.StringIO("\n".join(batch)), delimiter=",", usecols=range(2, 2 + n_a),
                                dtype=float, ndmin=2)
        except ValueError as exc:
            for offset, line in enumerate(batch):
                fields = line.split(",")
                if len(fields) != want:
                    raise InvalidRecording(
                        f"{self.dat_path}: line {first_line + offset} has {len(fields)} fields, expected {want} "
                        "(truncated or damaged DAT)"
                    ) from None
                for field_no, value in enumerate(fields[2:2 + n_a], 3):
                    try:
                        float(value)
                    except ValueError:
                        raise InvalidRecording(
                            f"{self.dat_path}: line {first_line + offset}, field {field_no}: {value.strip()!r} is not a number"
                        ) from None
            raise InvalidRecording(f"{self.dat_path}: cannot parse the samples near line {first_line}: {exc}") from None
        return self._a * values.T + self._b

    def _chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        if self.cfg.data_format == "ASCII":
            yield from self._ascii_chunks(chunk_frames)
        else:
            yield from self._binary_chunks(chunk_frames)


def read_comtrade(path: str | Path) -> tuple[np.ndarray, RecordingInfo]:
    """A whole COMTRADE recording: (frames (channels, n) in the CFG's units, metadata)."""
    return ComtradeReader(path).read()
