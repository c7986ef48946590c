"""CSV reader: one row per frame, a header row naming the columns.

The user names the columns that hold samples (``columns``); by default every column but
a time column (named ``t``, ``time``, ``time_s`` or ``timestamp``). The sample rate is
given, or taken from the time column in seconds as ``(n − 1) / (t_last − t_first)`` (the
mean over the file, so timestamps rounded in the file do not matter).
Streaming parses ``chunk_frames`` rows at a time.
"""

from __future__ import annotations

import csv
import io
from itertools import islice
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from minimeter.sources.recordings._base import InvalidRecording, Reader, RecordingInfo, check_file

TIME_COLUMNS = ("t", "time", "time_s", "timestamp", "seconds")


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
        with open(self.path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, delimiter=delimiter), None)
        if not header:
            raise InvalidRecording(f"{self.path}: empty file — expected a header row naming the columns")
        header = [h.strip() for h in header]
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
        if not (sample_rate_hz > 0 and np.isfinite(sample_rate_hz)):
            raise InvalidRecording(f"{self.path}: sample rate must be positive, got {sample_rate_hz}")
        names = tuple(header[k] for k in chosen)
        if units is None:
            units = tuple("V" if n[:1].upper() in "VU" else "A" if n[:1].upper() == "I" else "" for n in names)
        self.info = RecordingInfo(str(self.path), "csv", float(sample_rate_hz), frames, names, tuple(units))

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        with open(self.path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            next(reader, None)
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    yield reader.line_num, row

    def _scan(self) -> tuple[int, float, float]:
        frames = 0
        first_t = last_t = float("nan")
        width = len(self.header)
        for line, row in self._rows():
            if len(row) != width:
                raise InvalidRecording(f"{self.path}: line {line} has {len(row)} columns, the header has {width}")
            if self._time_col is not None:
                t = self._number(row[self._time_col], line, self.header[self._time_col])
                first_t = t if frames == 0 else first_t
                last_t = t
            frames += 1
        return frames, first_t, last_t

    def _number(self, cell: str, line: int, column: str) -> float:
        try:
            return float(cell)
        except ValueError:
            raise InvalidRecording(
                f"{self.path}: line {line}, column {column!r}: {cell.strip()!r} is not a number"
            ) from None

    def _chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        rows = self._rows()
        while True:
            batch = list(islice(rows, chunk_frames))
            if not batch:
                return
            out = np.empty((len(self._cols), len(batch)))
            try:
                out[:] = np.array([[float(r[k]) for k in self._cols] for _, r in batch]).T
            except ValueError:
                for line, row in batch:
                    for k in self._cols:
                        self._number(row[k], line, self.header[k])
                raise  # pragma: no cover - a cell failed above
            yield out


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
