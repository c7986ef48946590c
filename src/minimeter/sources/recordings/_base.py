"""What every reader shares: the recording's metadata and the reader interface.

A reader returns ``(frames, metadata)`` like pvlib's ``iotools``: ``frames`` is a float
array shaped (channels, n) in the file's physical units (after its own scale factors,
before any CT or PT ratio), and :class:`RecordingInfo` says what the channels are.
Streaming (:meth:`Reader.chunks`) yields the same frames in pieces, holding one piece in
memory at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from minimeter.errors import MinimeterError

DEFAULT_CHUNK_FRAMES = 1 << 16


class InvalidRecording(MinimeterError, ValueError):
    """A recording file that cannot be read: malformed, truncated, inconsistent with its
    configuration, or not numeric. The message names the file and the problem."""


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
            "notes": list(self.notes),
        }


class Reader:
    """A recording opened for reading. Subclasses set :attr:`info` and implement
    :meth:`_chunks`."""

    info: RecordingInfo

    def chunks(self, chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> Iterator[np.ndarray]:
        """The frames in consecutive pieces of at most ``chunk_frames`` frames, each a
        float64 array shaped (channels, k). The pieces joined equal :meth:`read`."""
        if int(chunk_frames) < 1:
            raise InvalidRecording(f"{self.info.path}: chunk_frames must be at least 1, got {chunk_frames}")
        yield from self._chunks(int(chunk_frames))

    def read(self) -> tuple[np.ndarray, RecordingInfo]:
        """The whole recording: (frames shaped (channels, n), metadata)."""
        pieces = list(self.chunks(max(self.info.frame_count, 1)))
        if not pieces:
            return np.zeros((self.info.channels, 0)), self.info
        return np.concatenate(pieces, axis=1), self.info

    def _chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError


def check_file(path: str | Path) -> Path:
    """The path, if it names a readable file; else a clear error."""
    p = Path(path)
    if not p.exists():
        raise InvalidRecording(f"{p}: no such file")
    if not p.is_file():
        raise InvalidRecording(f"{p}: not a file")
    return p
