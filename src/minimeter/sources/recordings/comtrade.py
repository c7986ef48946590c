"""COMTRADE reader (IEEE C37.111-1991, -1999 and IEC 60255-24:2013 / C37.111-2013).

A recording is a ``.CFG`` (configuration, text) and a ``.DAT`` (samples) of the same
stem, or (2013) one ``.CFF`` holding both as sections — ``--- file type: CFG ---``, then
INF and HDR, then ``--- file type: DAT ASCII ---`` or ``--- file type: DAT BINARY: n ---``
(``BINARY32``, ``FLOAT32``; ``n`` the section's bytes) — streamed the same way: the
binary data section is memory-mapped at its offset, the ASCII one read line by line. Analog values are ``a · x + b`` with the CFG's per-channel multiplier ``a`` and
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

* a missing sample (the standard's marker: 99999 in ASCII, 0x8000 in BINARY,
  0x80000000 in BINARY32, NaN in FLOAT32; not in 1991 files) is never a sample: it comes
  out as NaN (:func:`minimeter.drive.recording_chunks` turns it into a flagged gap,
  S4.9); found as the chunks are read, with a reduction per chunk, not a scan at open;
* channel units (``kV``, ``mA``, …) are applied: the frames come out in V and A (S4.9).

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
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from numba import njit

from minimeter.sources.recordings._base import (MAX_CHANNELS, MAX_SAMPLE_RATE_HZ, MAX_TEXT_BYTES, InvalidRecording,
                                                Reader, RecordingInfo, check_file, check_rate, reading)

_BINARY_TYPES = {"BINARY": "<i2", "BINARY32": "<i4", "FLOAT32": "<f4"}
# The standard's missing-sample markers (C37.111-1999 and -2013): 99999 in an ASCII DAT,
# 0x8000 in BINARY, 0x80000000 in BINARY32; a NaN in FLOAT32. The 1991 revision has none.
_MISSING = {"ASCII": 99999, "BINARY": -0x8000, "BINARY32": -0x80000000, "FLOAT32": math.nan}
_EOF = 0x1A


@njit(cache=True, nogil=True)
def _scale_records(counts, a, b, marker, check, out):  # pragma: no cover - compiled
    """``out[c, i] = counts[i, c] · a[c] + b[c]`` [float64] — the records' raw values
    (frames, channels) in their file layout, read once — NaN where ``check`` and the value
    is the format's missing-sample ``marker``: each value converted to float64, multiplied,
    then added (no fused multiply-add: the bits of NumPy's ``x * a + b``), in one pass."""
    for i in range(counts.shape[0]):
        for c in range(counts.shape[1]):
            x = counts[i, c]
            out[c, i] = np.nan if check and x == marker else np.float64(x) * a[c] + b[c]


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

    def number(self, value: str, what: str, line_no: int, kind=float, lo: float = -math.inf, hi: float = math.inf):
        """``value`` as a finite number of ``kind`` inside [lo, hi]."""
        try:
            number = kind(value)
        except ValueError:
            raise InvalidRecording(f"{self.path}: line {line_no}: {what} {value!r} is not a number") from None
        if not (math.isfinite(number) and lo <= number <= hi):
            raise InvalidRecording(f"{self.path}: line {line_no}: {what} {value!r} is outside {lo:g} … {hi:g}")
        return number

    def fail(self, line_no: int, problem: str) -> InvalidRecording:
        return InvalidRecording(f"{self.path}: line {line_no}: {problem}")


def parse_cfg(path: str | Path) -> ComtradeConfig:
    """Parse a COMTRADE configuration file; errors name the file, the line and the fault."""
    p = check_file(path, MAX_TEXT_BYTES)
    with reading(p):
        return _parse_cfg_text(p, p.read_bytes())


def _parse_cfg_text(p: Path, raw: bytes) -> ComtradeConfig:
    raw = raw.replace(bytes([_EOF]), b"")
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
        time_mult = cfg.number(_fields(cfg.lines[cfg.pos])[0], "time multiplier", cfg.line_no, lo=1e-12, hi=1e12)
    return ComtradeConfig(
        station=head[0], revision=revision, analog=analog, digital_count=n_digital,
        line_frequency_hz=line_frequency, sample_rate_hz=rate_hz, end_sample=end_sample,
        start_time=start, trigger_time=trigger, data_format=fmt, time_multiplier=time_mult,
    )


def _iso_start(cfg: ComtradeConfig) -> str:
    """The first sample's date and time in ISO 8601 (``2015-11-18T05:33:03.765333``),
    from COMTRADE's ``dd/mm/yyyy,hh:mm:ss.ssssss`` (``mm/dd/yy`` in 1991): the recorder's
    clock, whose zone the file does not state, so none is added; as written when it does
    not read as a date."""
    from datetime import datetime  # noqa: PLC0415

    form = "%m/%d/%y,%H:%M:%S.%f" if cfg.revision < 1999 else "%d/%m/%Y,%H:%M:%S.%f"
    text = cfg.start_time.replace(" ", "")
    try:
        return datetime.strptime(text if "." in text else text + ".0", form).isoformat(timespec="microseconds")
    except ValueError:
        return cfg.start_time


def _channel_counts(cfg: _CfgLines) -> tuple[int, int]:
    """Line 2, ``TT,##A,##D``: the analog and digital channel counts."""
    counts = cfg.take("the channel counts 'TT,##A,##D'")
    if len(counts) < 3:
        raise cfg.fail(2, f"expected 'TT,##A,##D' (total, analog, digital counts), got {cfg.text_of(2)!r}")
    total = cfg.number(counts[0], "total channel count", 2, int, 0, 17 * MAX_CHANNELS)
    n_analog = cfg.number(counts[1].upper().rstrip("A"), "analog channel count", 2, int, 0, MAX_CHANNELS)
    n_digital = cfg.number(counts[2].upper().rstrip("D"), "digital channel count", 2, int, 0, 16 * MAX_CHANNELS)
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
    nrates = cfg.number(cfg.take("the number of sample rates")[0], "number of sample rates", line_no, int, 0, 1000)
    rates = []
    for _ in range(max(nrates, 1)):
        line_no = cfg.line_no
        f = cfg.take("a sample rate line 'samp,endsamp'")
        if len(f) < 2:
            raise cfg.fail(line_no, f"expected 'samp,endsamp', got {cfg.text_of(line_no)!r}")
        rates.append((cfg.number(f[0], "sample rate", line_no, float, 0.0, MAX_SAMPLE_RATE_HZ),
                      cfg.number(f[1], "end sample", line_no, int, 0, 1 << 48)))
    if nrates > 1 and len({r for r, _ in rates}) > 1:
        raise InvalidRecording(
            f"{cfg.path}: {nrates} different sample rates ({', '.join(f'{r:g} Hz' for r, _ in rates)}) — "
            "the meter needs one uniform rate; resample the recording first"
        )
    return rates[0][0], rates[-1][1]


_CFF_HEADER = re.compile(rb"^---\s*file type:\s*([a-z]+)(?:\s+([a-z0-9]+))?(?:\s*:\s*(\d+))?\s*---$", re.IGNORECASE)


@dataclass(frozen=True)
class CffLayout:
    """Where a ``.cff``'s sections are: the CFG's text, and the DAT section's data type,
    byte offset and length (None: to the end of the file, an ASCII section)."""

    cfg_text: bytes
    data_format: str
    data_offset: int
    data_bytes: int | None


def scan_cff(path: Path) -> CffLayout:
    """Find a ``.cff``'s CFG text and its DAT section, reading only up to the DAT header."""
    size = path.stat().st_size
    cfg, section = bytearray(), None
    with open(path, "rb") as fh:
        while line := fh.readline(MAX_TEXT_BYTES):
            header = _CFF_HEADER.match(line.strip())
            if header is None:
                if section == "CFG":
                    cfg += line
                    if len(cfg) > MAX_TEXT_BYTES:
                        raise InvalidRecording(f"{path}: the CFG section is over {MAX_TEXT_BYTES:,} bytes")
                elif section is None and line.strip():
                    raise InvalidRecording(f"{path}: not a COMTRADE .cff — expected '--- file type: CFG ---' first")
                continue
            section = header.group(1).decode().upper()
            if section != "DAT":
                continue
            fmt = (header.group(2) or b"").decode().upper()
            if fmt not in ("ASCII", *_BINARY_TYPES):
                raise InvalidRecording(f"{path}: DAT section of type {fmt!r} — ASCII, BINARY, BINARY32 or FLOAT32")
            if not cfg.strip():
                raise InvalidRecording(f"{path}: no CFG section before the DAT section")
            offset = fh.tell()
            if fmt == "ASCII":
                return CffLayout(bytes(cfg), fmt, offset, None)
            if header.group(3) is None:
                raise InvalidRecording(f"{path}: the {fmt} DAT section's header gives no byte count")
            length = int(header.group(3))
            if offset + length > size:
                raise InvalidRecording(f"{path}: truncated — the DAT section declares {length:,} bytes, "
                                       f"the file holds {size - offset:,}")
            return CffLayout(bytes(cfg), fmt, offset, length)
    raise InvalidRecording(f"{path}: no '--- file type: DAT … ---' section")


def _dat_path(cfg_path: Path) -> Path:
    for suffix in (".DAT", ".dat", ".Dat"):
        candidate = cfg_path.with_suffix(suffix)
        if candidate.exists():
            return candidate
    raise InvalidRecording(f"{cfg_path}: its data file {cfg_path.with_suffix('.DAT').name} is missing")


class ComtradeReader(Reader):
    """A COMTRADE recording. ``path`` is the ``.CFG`` (or the ``.DAT`` beside it), or a
    2013 single-file ``.CFF``."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if p.suffix.lower() == ".dat":
            p = p.with_suffix(".CFG") if p.with_suffix(".CFG").exists() else p.with_suffix(".cfg")
        self.cfg_path = check_file(p)
        self._data_offset, self._data_bytes = 0, None      # the data: a whole .DAT, or a .cff's section
        if p.suffix.lower() == ".cff":
            with reading(p):
                layout = scan_cff(p)
                self.cfg = _parse_cfg_text(p, layout.cfg_text)
            if self.cfg.data_format != layout.data_format:
                raise InvalidRecording(f"{p}: the CFG says {self.cfg.data_format}, the DAT section is {layout.data_format}")
            self.dat_path, self._data_offset, self._data_bytes = p, layout.data_offset, layout.data_bytes
        else:
            self.cfg = parse_cfg(self.cfg_path)
            self.dat_path = _dat_path(self.cfg_path)
        with reading(self.dat_path):
            self.info = self._describe(self._open())

    def _open(self) -> RecordingInfo:
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
        return RecordingInfo(
            path=str(self.cfg_path), format="comtrade", sample_rate_hz=check_rate(self.cfg_path, rate),
            frame_count=frames, channel_names=tuple(c.name for c in cfg.analog),
            channel_units=tuple(c.unit for c in cfg.analog), start_time=_iso_start(cfg), notes=tuple(notes),
        )

    # ------------------------------------------------------------ missing samples
    @property
    def _marker(self) -> float | None:
        """The missing-sample marker of this file's data format (None: a 1991 file)."""
        return None if self.cfg.revision < 1999 else _MISSING[self.cfg.data_format]

    def _scaled(self, records: np.ndarray) -> np.ndarray:
        """Raw values (frames, channels) as the DAT holds them, any numeric type →
        ``a · x + b`` (channels, frames) [float64], NaN where a sample is missing (the
        format's marker; FLOAT32's NaN stays NaN by itself), in one compiled pass
        (:func:`_scale_records`)."""
        if not records.dtype.isnative:                     # (a big-endian DAT on a little-endian machine)
            records = records.astype(records.dtype.newbyteorder("="))
        out = np.empty((records.shape[1], records.shape[0]))
        marker = self._marker
        check = marker is not None and not math.isnan(marker)
        _scale_records(records, self._a[:, 0], self._b[:, 0], marker if check else 0, check, out)
        return out

    # ------------------------------------------------------------ binary
    def _record_dtype(self) -> np.dtype:
        cfg = self.cfg
        return np.dtype([("n", "<u4"), ("t", "<u4"),
                         ("a", _BINARY_TYPES[cfg.data_format], (len(cfg.analog),)),
                         ("d", "<u2", (self._words,))])

    def _scan_binary(self) -> tuple[int, float, list[str]]:
        size = (self._data_bytes if self._data_bytes is not None
                else self.dat_path.stat().st_size - self._data_offset)
        rec = self._record_dtype().itemsize
        frames, rest = divmod(size, rec)
        notes = []
        if rest:
            with open(self.dat_path, "rb") as fh:
                fh.seek(self._data_offset + frames * rec)
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
            if frames < 2:
                raise InvalidRecording(f"{self.cfg_path}: the sample rate is 0 (timestamps only) and the DAT holds "
                                       f"{frames} record(s) — at least 2 are needed to time them")
            rate = self._rate_from_timestamps(*self._binary_times(frames))
            notes.append("sample rate taken from the timestamps (mean over the file)")
        return frames, rate, notes

    def _memmap(self, frames: int) -> np.memmap:
        return np.memmap(self.dat_path, dtype=self._record_dtype(), mode="r", offset=self._data_offset,
                         shape=(frames,))

    def _binary_times(self, frames: int) -> tuple[float, float, int]:
        mm = self._memmap(frames)
        return float(mm["t"][0]), float(mm["t"][-1]), frames

    def _rate_from_timestamps(self, t_first: float, t_last: float, frames: int) -> float:
        span_s = (t_last - t_first) * self.cfg.time_multiplier * 1e-6
        if frames < 2 or not span_s > 0:
            raise InvalidRecording(
                f"{self.cfg_path}: the sample rate is 0 (timestamps only) and the timestamps do not advance"
            )
        return (frames - 1) / span_s

    def _binary_chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        if self._frames == 0:
            return
        counts = self._memmap(self._frames)["a"]
        for k in range(0, self._frames, chunk_frames):
            yield self._scaled(counts[k:k + chunk_frames])

    # ------------------------------------------------------------ ASCII
    def _open_text(self):
        raw = open(self.dat_path, "rb")
        raw.seek(self._data_offset)
        return io.TextIOWrapper(raw, encoding="latin-1", newline=None)

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
        return self._scaled(values)

    def _chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        if self.cfg.data_format == "ASCII":
            yield from self._ascii_chunks(chunk_frames)
        else:
            yield from self._binary_chunks(chunk_frames)


def read_comtrade(path: str | Path) -> tuple[np.ndarray, RecordingInfo]:
    """A whole COMTRADE recording: (frames (channels, n) in the CFG's units, metadata)."""
    return ComtradeReader(path).read()
