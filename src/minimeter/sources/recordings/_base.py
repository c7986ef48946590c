"""What every reader shares: the recording's metadata and the reader interface.

A reader returns ``(frames, metadata)`` like pvlib's ``iotools``: ``frames`` is a float
array shaped (channels, n) in SI units (V, A: after the file's own scale factors and
units, before any CT or PT ratio), and :class:`RecordingInfo` says what the channels are.
A missing sample (COMTRADE's markers) is NaN — never a value; the stream
(:func:`minimeter.drive.recording_chunks`) turns NaN into flagged gaps.
Streaming (:meth:`Reader.chunks`) yields the same frames in pieces, holding one piece in
memory at a time.
"""

from __future__ import annotations

import csv
import math
import stat
import struct
import tokenize
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from minimeter.errors import MinimeterError

DEFAULT_CHUNK_FRAMES = 1 << 16
MAX_SAMPLE_RATE_HZ = 1e9            # S15.1: a recording's sample rate lies in (0, 1 GHz]
MAX_CHANNELS = 4096                 # S15.1: channels in one recording
MAX_TEXT_BYTES = 16 << 20           # S15.1: a configuration, sidecar or profile read whole [bytes]

# What a malformed or hostile file makes the libraries underneath raise; :func:`reading`
# turns each into the one-line InvalidRecording naming the file (S15.1).
_BAD_FILE = (ValueError, TypeError, KeyError, IndexError, OverflowError, EOFError, OSError, RecursionError,
             UnicodeError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile, zlib.error, csv.Error, struct.error,
             NotImplementedError)


class InvalidRecording(MinimeterError, ValueError):
    """A recording file that cannot be read: malformed, truncated, inconsistent with its
    configuration, or not numeric. The message names the file and the problem, on one
    line: control characters that came from the file (a channel or member name with a
    newline) are shown escaped."""

    def __init__(self, message: str = "") -> None:
        super().__init__(_one_line(str(message)))


def _one_line(text: str) -> str:
    """``text`` with control characters escaped as ``\\n``, ``\\x1b``, … (printable text unchanged)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


@dataclass(frozen=True)
class RecordingInfo:
    """Metadata of a recording.

    ``channel_units`` are the file's own unit strings ('V', 'A', 'volt', 'ampere', '' when
    unknown); ``frame_count`` is the number of frames (instants of every channel).
    """

    path: str
    format: str                                   # 'comtrade', 'csv', 'wav', 'npz'
    sample_rate_hz: float
    frame_count: int
    channel_names: tuple[str, ...]
    channel_units: tuple[str, ...]
    start_time: str | None = None
    notes: tuple[str, ...] = field(default=())    # things the reader had to work around
    file_units: tuple[str, ...] = field(default=())   # the units as written in the file (before SI)

    @property
    def channels(self) -> int:
        return len(self.channel_names)

    @property
    def duration_s(self) -> float:
        """Length of the recording [s]."""
        return self.frame_count / self.sample_rate_hz

    def index_of(self, channel: str | int) -> int:
        """The 0-based index of a channel given by name (case-insensitive) or by its
        1-based number, e.g. 'U1' or '5'."""
        text = str(channel).strip()
        for k, name in enumerate(self.channel_names):
            if name == text:
                return k
        lowered = [n.lower() for n in self.channel_names]
        if lowered.count(text.lower()) == 1:
            return lowered.index(text.lower())
        if text.lstrip("#").isdigit():
            number = int(text.lstrip("#"))
            if 1 <= number <= self.channels:
                return number - 1
        raise InvalidRecording(
            f"{self.path}: no channel {text!r} — channels are {', '.join(self.channel_names)} "
            f"(or their numbers 1–{self.channels})"
        )

    def as_dict(self) -> dict:
        return {
            "path": self.path, "format": self.format, "sample_rate_hz": self.sample_rate_hz,
            "frame_count": self.frame_count, "channel_names": list(self.channel_names),
            "channel_units": list(self.channel_units), "start_time": self.start_time,
            "notes": list(self.notes), "file_units": list(self.file_units),
        }


# The units a reader converts to SI (S4.9): written unit → (SI unit, factor).
_UNIT_WORDS = {"volt": "V", "volts": "V", "ampere": "A", "amperes": "A", "amp": "A", "amps": "A"}
_UNIT_PREFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e-3, "M": 1e6}


def si_unit(unit: str) -> tuple[str, float]:
    """``'kV'`` → ``('V', 1000.0)``, ``'mA'`` → ``('A', 0.001)``, ``'volts'`` → ``('V', 1.0)``;
    a unit that is not a volt or an ampere is kept with factor 1 (``'Hz'`` → ``('Hz', 1.0)``)."""
    text = unit.strip()
    if text.lower() in _UNIT_WORDS:
        return _UNIT_WORDS[text.lower()], 1.0
    prefix, base = text[:-1], text[-1:]
    if base in ("V", "v", "A", "a") and prefix in _UNIT_PREFIXES:
        return base.upper(), _UNIT_PREFIXES[prefix]
    return text, 1.0


def guess_unit(name: str) -> str:
    """The unit of a channel named without one: V for names starting V or U, A for I."""
    first = name[:1].upper()
    return "V" if first in ("V", "U") else "A" if first == "I" else ""


class Reader:
    """A recording opened for reading. Subclasses set :attr:`info` (through
    :meth:`_describe`) and implement :meth:`_chunks`; the frames come out in SI units."""

    info: RecordingInfo
    _si_factor: np.ndarray | None = None      # (channels, 1) file unit → SI, None when all 1

    def _describe(self, info: RecordingInfo) -> RecordingInfo:
        """``info`` with its channel units converted to SI (kV → V, mA → A, …), the
        written ones kept in ``file_units``; sets the factor :meth:`chunks` applies."""
        pairs = [si_unit(u) for u in info.channel_units]
        factors = np.array([f for _, f in pairs], float)[:, None]
        self._si_factor = None if np.all(factors == 1.0) else factors
        return replace(info, channel_units=tuple(u for u, _ in pairs), file_units=tuple(info.channel_units))

    def chunks(self, chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> Iterator[np.ndarray]:
        """The frames in consecutive pieces of at most ``chunk_frames`` frames, each a
        float64 array shaped (channels, k). The pieces joined equal :meth:`read`."""
        if int(chunk_frames) < 1:
            raise InvalidRecording(f"{self.info.path}: chunk_frames must be at least 1, got {chunk_frames}")
        with reading(self.info.path):
            for chunk in self._chunks(int(chunk_frames)):
                yield chunk if self._si_factor is None else chunk * self._si_factor

    def read(self) -> tuple[np.ndarray, RecordingInfo]:
        """The whole recording: (frames shaped (channels, n), metadata). The output is
        allocated once and filled chunk by chunk: one full copy of the data."""
        n, path = self.info.frame_count, self.info.path
        out = np.empty((self.info.channels, n))
        filled = 0
        for chunk in self.chunks(DEFAULT_CHUNK_FRAMES):
            m = chunk.shape[1]
            if filled + m > n:
                raise InvalidRecording(f"{path}: holds more than the {n:,} frames its header declares")
            out[:, filled:filled + m] = chunk
            filled += m
        if filled != n:
            raise InvalidRecording(f"{path}: holds {filled:,} frames, its header declares {n:,}")
        return out, self.info

    def _chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError


def check_file(path: str | Path, max_bytes: int | None = None,
               error: type[MinimeterError] = InvalidRecording) -> Path:
    """The path, if it names a regular file (of at most ``max_bytes`` bytes when given);
    else ``error`` naming it. Devices and pipes (``/dev/zero``) are refused: they could be
    read forever (S15.1)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise error(f"{p}: no such file") from None
    except (OSError, ValueError) as exc:
        raise error(f"{p}: cannot be read ({exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{p}: {st.st_size:,} bytes is over the limit of {max_bytes:,} bytes for this file")
    return p


def check_rate(path: str | Path, rate_hz: float) -> float:
    """A sample rate [Hz] inside (0, MAX_SAMPLE_RATE_HZ]; else InvalidRecording."""
    rate = float(rate_hz)
    if not (math.isfinite(rate) and 0 < rate <= MAX_SAMPLE_RATE_HZ):
        raise InvalidRecording(f"{path}: sample rate {rate_hz!r} Hz is outside (0, {MAX_SAMPLE_RATE_HZ:g}] Hz")
    return rate


def describe(exc: BaseException) -> str:
    """One line saying what a library found wrong with a file."""
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:160])   # one printable line
    return f"malformed ({type(exc).__name__}: {text})"


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Inside, any error a malformed file can cause in the parsers underneath becomes
    the one-line :class:`InvalidRecording` naming ``path`` (S15.1)."""
    try:
        yield
    except MinimeterError:
        raise
    except _BAD_FILE as exc:
        raise InvalidRecording(f"{path}: {describe(exc)}") from None
