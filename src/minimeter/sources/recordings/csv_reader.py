"""CSV reader: one row per frame, a header row naming the columns.

The user names the columns that hold samples (``columns``); by default every column but
a time column (named ``t``, ``time``, ``time_s`` or ``timestamp``). The sample rate is
given, or taken from the time column in seconds as ``(n − 1) / (t_last − t_first)`` (the
mean over the file, so timestamps rounded in the file do not matter).
Streaming parses ``chunk_frames`` lines at a time with NumPy's C reader (``loadtxt``);
a line that does not parse is then named with its number. Quoted numbers are allowed;
columns beyond the header's are not read.

A column's unit may follow its name in brackets, ``V1 [kV]`` or ``I1 (mA)``; the frames
come out in SI (V, A; S4.9). The text must be UTF-8; a field is at most
``csv.field_size_limit()`` (131,072) characters (S15.1).
"""

from __future__ import annotations

import csv
import io
import re
from itertools import islice
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from minimeter.sources.recordings._base import (MAX_CHANNELS, InvalidRecording, Reader, RecordingInfo, check_file,
                                                check_rate, guess_unit, reading)

TIME_COLUMNS = ("t", "time", "time_s", "timestamp", "seconds")
_NAME_UNIT = re.compile(r"^(.*?)\s*[\[(]\s*([^\])]*?)\s*[\])]$")


def split_unit(heading: str) -> tuple[str, str]:
    """``'V1 [kV]'`` → ``('V1', 'kV')``; ``'V1'`` → ``('V1', '')``."""
    match = _NAME_UNIT.match(heading.strip())
    return (match.group(1), match.group(2)) if match and match.group(1) else (heading.strip(), "")


class CsvReader(Reader):
    """A CSV recording.

    Parameters
    ----------
    path : the file
    columns : names of the sample columns, in order (None: all but the time column)
    sample_rate_hz : [Hz]; None: from the time column
    units : unit per selected column ('V', 'A'); default guessed from names starting V/U or I
    """

    def __init__(self, path: str | Path, columns: Sequence[str] | None = None,
                 sample_rate_hz: float | None = None, units: Sequence[str] | None = None,
                 delimiter: str = ",") -> None:
        self.path = check_file(path)
        self.delimiter = delimiter
        with reading(self.path):
            self.info = self._describe(self._open(columns, sample_rate_hz, units))

    def _open(self, columns: Sequence[str] | None, sample_rate_hz: float | None,
              units: Sequence[str] | None) -> RecordingInfo:
        with open(self.path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, delimiter=self.delimiter), None)
        if not header:
            raise InvalidRecording(f"{self.path}: empty file — expected a header row naming the columns")
        if len(header) > MAX_CHANNELS + 1:
            raise InvalidRecording(f"{self.path}: {len(header)} columns — at most {MAX_CHANNELS + 1}")
        named = [split_unit(h) for h in header]
        header = [name for name, _ in named]
        self.header = header
        time_col = next((k for k, h in enumerate(header) if h.lower() in TIME_COLUMNS), None)
        if columns is None:
            chosen = [k for k in range(len(header)) if k != time_col]
        else:
            chosen = []
            for name in columns:
                if name not in header:
                    raise InvalidRecording(f"{self.path}: no column {name!r} — the header has {', '.join(header)}")
                chosen.append(header.index(name))
        if not chosen:
            raise InvalidRecording(f"{self.path}: no sample columns (header: {', '.join(header)})")
        self._cols = chosen
        self._time_col = time_col
        frames, first_t, last_t = self._scan()
        if sample_rate_hz is None:
            if time_col is None:
                raise InvalidRecording(
                    f"{self.path}: no time column ({'/'.join(TIME_COLUMNS)}) — give the sample rate"
                )
            if frames < 2 or not last_t > first_t:
                raise InvalidRecording(f"{self.path}: the time column does not advance; give the sample rate")
            sample_rate_hz = (frames - 1) / (last_t - first_t)
        names = tuple(header[k] for k in chosen)
        if units is None:
            units = tuple(named[k][1] or guess_unit(header[k]) for k in chosen)
        elif len(units) != len(chosen):
            raise InvalidRecording(f"{self.path}: {len(units)} units given for {len(chosen)} columns")
        return RecordingInfo(str(self.path), "csv", check_rate(self.path, sample_rate_hz), frames, names,
                             tuple(str(u) for u in units))

    def _batches(self, lines: int) -> Iterator[tuple[int, list[str]]]:
        """The data lines after the header, ``lines`` at a time, with the file's line
        number of each batch's first line."""
        with open(self.path, newline="", encoding="utf-8-sig") as fh:
            next(fh, None)
            line_no = 2
            while batch := list(islice(fh, lines)):
                yield line_no, batch
                line_no += len(batch)

    def _parse(self, first_line: int, batch: list[str], cols: list[int]) -> np.ndarray:
        """The numbers of columns ``cols`` of a batch's non-blank lines, (rows, len(cols)),
        parsed by NumPy's C reader; a bad line is found and named afterwards."""
        rows = [line for line in batch if line.strip()]
        if not rows:
            return np.empty((0, len(cols)))
        try:
            values = np.loadtxt(rows, delimiter=self.delimiter, usecols=cols, ndmin=2, comments=None, quotechar='"',
                                dtype=float)
        except ValueError:
            self._explain(first_line, batch, cols)
            raise InvalidRecording(f"{self.path}: cannot parse the rows from line {first_line}") from None
        if not np.isfinite(values.sum()) and np.isinf(values).any():    # one reduction when all is well
            row, col = np.argwhere(np.isinf(values))[0]
            line = [n for n, text in enumerate(batch, first_line) if text.strip()][row]
            raise InvalidRecording(f"{self.path}: line {line}, column {self.header[cols[col]]!r}: "
                                   "not a finite number (infinite, or beyond ±1.8e308)")
        return values

    def _explain(self, first_line: int, batch: list[str], cols: list[int]) -> None:
        """Raise the located error for the first bad line of a batch."""
        width = len(self.header)
        for line, text in enumerate(batch, first_line):
            if not text.strip():
                continue
            row = next(csv.reader([text], delimiter=self.delimiter))
            if len(row) != width:
                raise InvalidRecording(f"{self.path}: line {line} has {len(row)} columns, the header has {width}")
            for k in cols:
                self._number(row[k], line, self.header[k])

    def _scan(self) -> tuple[int, float, float]:
        """The number of frames and the first and last times (NaN without a time column)."""
        frames = 0
        first_t = last_t = float("nan")
        probe = [self._time_col if self._time_col is not None else self._cols[0]]
        for first_line, batch in self._batches(1 << 16):
            values = self._parse(first_line, batch, probe)[:, 0]
            if values.size and self._time_col is not None:
                first_t = float(values[0]) if frames == 0 else first_t
                last_t = float(values[-1])
            frames += values.size
        return frames, first_t, last_t

    def _number(self, cell: str, line: int, column: str) -> float:
        try:
            return float(cell)
        except ValueError:
            raise InvalidRecording(
                f"{self.path}: line {line}, column {column!r}: {cell.strip()!r} is not a number"
            ) from None

    def _chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        for first_line, batch in self._batches(chunk_frames):
            values = self._parse(first_line, batch, self._cols)
            if values.shape[0]:
                yield values.T


def read_csv(path: str | Path, columns: Sequence[str] | None = None,
             sample_rate_hz: float | None = None) -> tuple[np.ndarray, RecordingInfo]:
    """A whole CSV recording: (frames (channels, n), metadata)."""
    return CsvReader(path, columns, sample_rate_hz).read()


def write_csv(path: str | Path, frames: np.ndarray, sample_rate_hz: float, names: Sequence[str]) -> None:
    """Write frames (channels, n) with a ``time_s`` column (tests and examples)."""
    buf = io.StringIO()
    t = np.arange(frames.shape[1]) / sample_rate_hz
    np.savetxt(buf, np.column_stack((t, frames.T)), delimiter=",", fmt="%.10g",
               header=",".join(("time_s", *names)), comments="")
    Path(path).write_text(buf.getvalue())
