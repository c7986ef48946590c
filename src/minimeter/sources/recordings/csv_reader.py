"""CSV reader: one row per frame, a header row naming the columns.

The user names the columns that hold samples (``columns``); by default every column but
a time column (named ``t``, ``time``, ``time_s``, ``timestamp`` or ``seconds``). The sample
rate is given, or taken from the time column in seconds as ``(n − 1) / (t_last − t_first)``
(the mean over the file, so timestamps rounded in the file do not matter): only the first
and last times are read, and none when the rate is given (the column may then hold
timestamps in any form).

The rows are parsed by Apache Arrow's CSV reader (``pyarrow.csv.open_csv``, one thread,
blocks of :data:`MAX_LINE_BYTES`), the sample columns converted straight to float64; the
chunks are cut from its blocks, so memory stays flat, and ``read()`` fills its output
straight from them (one copy). Opening counts the frames without parsing them: every data
row holds ``width − 1`` delimiters, so a plain file's frame count is its delimiter count
over ``width − 1`` (one pass over the bytes, eight at a time, compiled); a file with
quotes, non-ASCII bytes or a single column is counted by the parser instead. The count
mostly waits for the disk, so it runs in a thread while the first blocks are parsed (at
most :data:`AHEAD_BYTES` of them, kept for the first read; a file without quotes is parsed
without looking for them).

What a row may hold (S15.1): numbers as Python writes them (``1``, ``-2.5e-3``, ``.5``,
quoted or padded with spaces); ``nan`` is a missing sample (NaN: the stream flags it as a
gap; S4.9); an empty cell, other text, an infinite value or one beyond ±1.8e308, and a row
with another number of fields than the first are errors naming the line and column. Blank
lines are skipped. Rows may carry more fields than the header names (a trailing comma on
every row): those are not read. A line is at most :data:`MAX_LINE_BYTES` bytes, the parser's
block (a longer one is refused naming its line — or, under twice that, for what it holds);
the text is UTF-8 (a BOM is allowed); line ends are LF, CRLF or CR.

A column's unit may follow its name in brackets, ``V1 [kV]`` or ``I1 (mA)``; the frames
come out in SI (V, A; S4.9).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from numba import njit

from minimeter.sources.recordings._base import (MAX_CHANNELS, InvalidRecording, Reader, RecordingInfo, check_file,
                                                check_rate, describe, guess_unit, reading)

TIME_COLUMNS = ("t", "time", "time_s", "timestamp", "seconds")
MAX_LINE_BYTES = 1 << 20            # S15.1: one line of a CSV recording [bytes] (the parser's block)
AHEAD_BYTES = 16 << 20              # parsed while opening, at most [bytes of float64] (CsvReader._parse_ahead)
_NAME_UNIT = re.compile(r"^(.*?)\s*[\[(]\s*([^\])]*?)\s*[\])]$")
_LINE = re.compile(rb"([^\r\n]*)(?:\r\n|\r|\n|$)")    # a line, with the ends Arrow's parser splits on
_CONVERSION = re.compile(r"column #(\d+): Row #(\d+): CSV conversion error to double: invalid value '(.*)'$", re.S)


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
    delimiter : one ASCII character
    """

    def __init__(self, path: str | Path, columns: Sequence[str] | None = None,
                 sample_rate_hz: float | None = None, units: Sequence[str] | None = None,
                 delimiter: str = ",") -> None:
        self.path = check_file(path)
        if not (isinstance(delimiter, str) and len(delimiter) == 1 and delimiter.isascii()
                and delimiter not in '"\r\n'):
            raise InvalidRecording(
                f"{self.path}: delimiter {delimiter!r} — one ASCII character, not a quote or newline")
        self.delimiter = delimiter
        self._ahead: _Ahead | None = None
        self._plain: tuple = ()             # the file's stamp when counted free of quotes (() : not)
        with reading(self.path):
            self.info = self._describe(self._open(columns, sample_rate_hz, units))

    # ------------------------------------------------------------------ opening
    def _open(self, columns: Sequence[str] | None, sample_rate_hz: float | None,
              units: Sequence[str] | None) -> RecordingInfo:
        header = self._read_header()
        named = [split_unit(h) for h in header]
        header = [name for name, _ in named]
        self.header = header
        time_col = next((k for k, h in enumerate(header) if h.lower() in TIME_COLUMNS), None)
        chosen = self._choose(columns, time_col)
        self._cols = chosen
        self._time_col = time_col
        first = self._first_data_line()
        self._width = self._row_width(first)
        timed = sample_rate_hz is None and time_col is not None      # the rate comes from the time column
        frames, first_t, last_t = self._count_fast(first, timed) or self._scan(timed)
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
        notes = () if self._width == len(header) else (
            f"rows hold {self._width} fields, the header names {len(header)}: the last "
            f"{self._width - len(header)} are not read",)
        return RecordingInfo(str(self.path), "csv", check_rate(self.path, sample_rate_hz), frames, names,
                             tuple(str(u) for u in units), notes=notes)

    def _read_header(self) -> list[str]:
        """The header's fields (the first line); sets ``_data_offset``, the byte after it."""
        with open(self.path, "rb") as fh:
            head = fh.read(MAX_LINE_BYTES + 1)
        end = _line_end(head)
        if end is None and len(head) > MAX_LINE_BYTES:
            raise InvalidRecording(f"{self.path}: line 1 is longer than {MAX_LINE_BYTES:,} bytes — not a header")
        line = head[:end] if end is not None else head
        self._data_offset = len(head) if end is None else end + (2 if head[end:end + 2] == b"\r\n" else 1)
        header = next(csv.reader([line.decode("utf-8-sig").rstrip("\r\n")], delimiter=self.delimiter), None)
        if not header:
            raise InvalidRecording(f"{self.path}: empty file — expected a header row naming the columns")
        if len(header) > MAX_CHANNELS + 1:
            raise InvalidRecording(f"{self.path}: {len(header)} columns — at most {MAX_CHANNELS + 1}")
        return header

    def _choose(self, columns: Sequence[str] | None, time_col: int | None) -> list[int]:
        header = self.header
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
        return chosen

    def _row_width(self, first: str | None) -> int:
        """Fields per row: the header's, or the first data row's when it holds more (a
        trailing delimiter on every row; the extra fields are not read)."""
        fields = len(next(csv.reader([first], delimiter=self.delimiter), [])) if first is not None else 0
        return min(max(len(self.header), fields), MAX_CHANNELS + 1)

    def _first_data_line(self) -> str | None:
        """The first line after the header that is not blank (None: none within a line's bound)."""
        with open(self.path, "rb") as fh:
            fh.seek(self._data_offset)
            head = fh.read(MAX_LINE_BYTES + 1)
        for match in _LINE.finditer(head):
            if match.end() == len(head) and len(head) > MAX_LINE_BYTES:
                return None                             # cut by the read
            if match.group(1).strip():
                return match.group(1).decode("utf-8", errors="replace")
            if match.end() == len(head):
                return None
        return None

    def _count_fast(self, first: str | None, timed: bool) -> tuple[int, float, float] | None:
        """(frames, first time, last time) of a plain file — ASCII, no quotes, two or more
        fields a row — without parsing it: the data's delimiters over ``width − 1``. None
        where that does not hold (the parser then scans the file). Rows that the parse later
        finds malformed raise there; blank lines hold no delimiter and are not frames.

        The count runs in a thread that mostly waits for the disk; meanwhile the first
        blocks are parsed (:meth:`_parse_ahead`), so that reading a file not yet in memory
        costs the disk's time once, not the disk's and then the parser's."""
        if self._width < 2:
            return None
        counted: list = []
        worker = threading.Thread(target=lambda: counted.append(_attempt(self._count_delimiters)),
                                  name="minimeter-csv-count", daemon=True)
        worker.start()
        try:
            ahead = self._parse_ahead(worker)
        finally:
            worker.join()
        total, error = counted[0]
        if error is not None:
            raise error
        if total is None:
            return None
        self._ahead = ahead
        self._plain = ahead.stamp if ahead else _stamp(self.path)
        frames, rest = divmod(total, self._width - 1)
        if rest:
            return None
        if not timed or frames == 0:
            return frames, float("nan"), float("nan")
        last = self._last_data_line()
        if first is None or last is None:
            return None
        try:
            return frames, self._time_of(first), self._time_of(last)
        except (ValueError, IndexError):
            return None                                 # the scan names the line

    def _count_delimiters(self) -> int | None:
        """The delimiters after the header (None: a byte that is not ASCII, or a quote)."""
        words = np.empty(MAX_LINE_BYTES // 8, np.uint64)     # the bytes read, eight to a word
        raw = words.view(np.uint8)
        total = 0
        with open(self.path, "rb", buffering=0) as fh:
            fh.seek(self._data_offset)
            while size := fh.readinto(raw):
                used = -(-size // 8)
                raw[size:used * 8] = ord("\n")                 # the last word's tail: never a delimiter
                delimiters, plain = _count_plain(words[:used], ord(self.delimiter))
                if not plain:
                    return None
                total += delimiters
        return total

    def _parse_ahead(self, worker: threading.Thread) -> _Ahead | None:
        """The sample columns' first blocks, parsed while ``worker`` runs (at most
        :data:`AHEAD_BYTES` of them), and the parser to go on with. Parsed as if free of
        quotes: kept only if the count finds none. An error met is kept for the read that
        reaches it (opening raises nothing the parse finds)."""
        if self._data_offset >= self.path.stat().st_size:
            return None
        ahead = _Ahead(stamp=_stamp(self.path), opened=True)
        try:
            ahead.parser = self._parser(self._cols, ahead.bad_rows, quotes=False)   # (parses a block at once)
            while worker.is_alive() and ahead.nbytes < AHEAD_BYTES:
                batch = ahead.parser.read_next_batch()
                ahead.batches.append(batch)
                ahead.nbytes += batch.nbytes
        except StopIteration:
            ahead.parser = None                         # the whole file parsed
        except Exception as exc:                         # noqa: BLE001 - raised again where the read reaches it
            ahead.parser, ahead.error = None, exc
        return ahead

    def _last_data_line(self) -> str | None:
        """The last line that is not blank (None: none within a line's bound)."""
        with open(self.path, "rb") as fh:
            size = fh.seek(0, io.SEEK_END)
            start = max(self._data_offset, size - MAX_LINE_BYTES - 1)
            fh.seek(start)
            tail = fh.read().rstrip()
        cut = max(tail.rfind(b"\n"), tail.rfind(b"\r"))
        if cut < 0 and start > self._data_offset:
            return None                                 # the last line may be cut
        return tail[cut + 1:].decode("ascii") or None

    def _time_of(self, line: str) -> float:
        """The time cell of a line [s] (ValueError, IndexError when it has none)."""
        return float(line.split(self.delimiter)[self._time_col])      # type: ignore[index]

    def _scan(self, timed: bool) -> tuple[int, float, float]:
        """The frame count and the first and last times by parsing one column (the time
        column, else the first sample column); the text checked for UTF-8 first."""
        self._check_utf8()
        probe = [self._time_col if timed else self._cols[0]]
        frames = 0
        first_t = last_t = float("nan")
        for (values,) in self._parsed_blocks(probe):
            if values.size and timed:
                first_t = float(values[0]) if frames == 0 else first_t
                last_t = float(values[-1])
            frames += values.size
        return frames, first_t, last_t

    def _check_utf8(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        with open(self.path, "rb") as fh:
            while block := fh.read(MAX_LINE_BYTES):
                pending = len(decoder.getstate()[0])
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    at = offset - pending + exc.start
                    with open(self.path, "rb") as again:
                        again.seek(at)
                        byte = again.read(1)[0]
                    raise InvalidRecording(f"{self.path}: not UTF-8 text (byte 0x{byte:02x} at offset {at})") from None
                offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InvalidRecording(f"{self.path}: not UTF-8 text (cut in a character at the end)") from None

    # ------------------------------------------------------------------ parsing
    def _parser(self, include: list[int], bad_rows: list, quotes: bool | None = None) -> pacsv.CSVStreamingReader:
        """Arrow's streaming reader of the columns ``include``; a row with the wrong number
        of fields is noted in ``bad_rows`` as (row number, fields). Quotes are looked for
        unless the file holds none (``quotes`` False, or None and the file is as counted
        free of them: the parser's faster path)."""
        if quotes is None:
            quotes = self._plain != _stamp(self.path)
        names = [f"c{k}" for k in range(self._width)]

        def on_bad_row(row) -> str:
            if not row.text.strip():
                return "skip"                            # a line of spaces: blank, like an empty one
            bad_rows.append((row.number, row.actual_columns))
            return "error"

        return pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=MAX_LINE_BYTES, column_names=names,
                                           skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter, invalid_row_handler=on_bad_row,
                                             quote_char='"' if quotes else False),
            convert_options=pacsv.ConvertOptions(column_types={names[k]: pa.float64() for k in include},
                                                 include_columns=[names[k] for k in include], null_values=[],
                                                 quoted_strings_can_be_null=False))

    def _parsed_blocks(self, include: list[int]) -> Iterator[list[np.ndarray]]:
        """The columns ``include`` of the data rows, one parser block at a time (a float64
        array per column, shared with the parser's buffers); a row that is not numbers
        raises the located error. The blocks parsed while opening are taken first, once,
        if the file is unchanged since."""
        if self._data_offset >= self.path.stat().st_size:
            return
        ahead, self._ahead = self._ahead, None
        if ahead is None or include != self._cols or ahead.stamp != _stamp(self.path):
            ahead = _Ahead()
        frames = 0
        try:
            for batch in ahead.remaining(lambda: self._parser(include, ahead.bad_rows)):
                columns = [column.to_numpy(zero_copy_only=False) for column in batch.columns]
                self._check_finite(columns, include, frames)
                frames += batch.num_rows
                yield columns
        except pa.ArrowException as exc:
            raise self._located(exc, ahead.bad_rows, frames) from None

    def _check_finite(self, columns: list[np.ndarray], include: list[int], frames_before: int) -> None:
        with np.errstate(over="ignore", invalid="ignore"):      # a sum of large finite values may overflow
            if all(np.isfinite(c.sum()) or not np.isinf(c).any() for c in columns):   # one reduction when all is well
                return
        rows = [int(np.argmax(np.isinf(c))) if np.isinf(c).any() else len(c) for c in columns]
        col = int(np.argmin(rows))
        line = self._line_of_frame(frames_before + rows[col])
        raise InvalidRecording(f"{self.path}: line {line}, column {self.header[include[col]]!r}: "
                               "not a finite number (infinite, or beyond ±1.8e308)")

    def _located(self, exc: pa.ArrowException, bad_rows: list, frames_before: int) -> InvalidRecording:
        """The parser's error as the one-line error naming the line (and column)."""
        if bad_rows:
            number, fields = bad_rows[0]
            where = (f"line {self._line_of_row(number)}" if number is not None
                     else f"a line after line {self._line_of_frame(frames_before)}")
            expected = (f"the header has {self._width}" if self._width == len(self.header)
                        else f"the rows before have {self._width}")
            return InvalidRecording(f"{self.path}: {where} has {fields} columns, {expected}")
        match = _CONVERSION.search(str(exc))
        if match:
            col, row, value = int(match.group(1)), int(match.group(2)), match.group(3)
            name = self.header[col] if col < len(self.header) else f"#{col + 1}"
            return InvalidRecording(f"{self.path}: line {self._line_of_row(row)}, column {name!r}: "
                                    f"{value!r} is not a number")
        if "straddl" in str(exc):
            return InvalidRecording(f"{self.path}: line {self._long_line()} is longer than {MAX_LINE_BYTES:,} bytes "
                                    "— not a row of numbers")
        return InvalidRecording(f"{self.path}: after line {self._line_of_frame(frames_before)}: {describe(exc)}")

    # ------------------------------------------------------------------ line numbers (error paths only)
    def _lines(self) -> Iterator[tuple[int, str]]:
        """(line number, text) of every line, as the parser splits them (LF, CRLF, CR)."""
        with open(self.path, encoding="utf-8", errors="replace", newline=None) as fh:
            yield from enumerate(fh, 1)

    def _line_of_row(self, row: int) -> int:
        """The line of the parser's row ``row`` (1-based, the header row 1, empty lines not counted)."""
        seen = 0
        for number, text in self._lines():
            seen += text != "\n"
            if seen == row:
                return number
        return row

    def _line_of_frame(self, frame: int) -> int:
        """The line of frame ``frame`` (0-based: the data rows, blank lines not counted)."""
        seen = -1
        for number, text in self._lines():
            if number > 1 and text.strip():
                seen += 1
                if seen == frame:
                    return number
        return frame + 2

    def _long_line(self) -> int:
        """The number of the first line longer than MAX_LINE_BYTES (0: none)."""
        with open(self.path, "rb") as fh:
            for number, text in enumerate(iter(lambda: fh.readline(MAX_LINE_BYTES + 1), b""), 1):
                if len(text) > MAX_LINE_BYTES:
                    return number
        return 0

    # ------------------------------------------------------------------ chunks
    def _chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """Chunks of exactly ``chunk_frames`` frames (the last one shorter), cut from the
        parser's blocks: each frame copied once, into its chunk."""
        channels, total = len(self._cols), self.info.frame_count
        out, filled, done = None, 0, 0
        for columns in self._parsed_blocks(self._cols):
            k, pos = columns[0].size, 0
            if done + filled + k > total:
                raise InvalidRecording(f"{self.path}: holds more than the {total:,} frames counted when it was opened")
            while pos < k:
                if out is None:
                    out = np.empty((channels, min(chunk_frames, total - done)))
                take = min(out.shape[1] - filled, k - pos)
                for j in range(channels):
                    out[j, filled:filled + take] = columns[j][pos:pos + take]
                filled, pos = filled + take, pos + take
                if filled == out.shape[1]:
                    yield out
                    out, done, filled = None, done + filled, 0
        if done + filled != total:
            raise InvalidRecording(f"{self.path}: holds {done + filled:,} frames, {total:,} when it was opened")

    def read(self) -> tuple[np.ndarray, RecordingInfo]:
        """The whole recording: (frames shaped (channels, n), metadata) — one chunk the
        length of the file, the parser's blocks copied straight into it: one full copy."""
        with reading(self.path):
            whole = list(self._chunks(max(self.info.frame_count, 1)))   # (the generator run to its end checks)
        frames = whole[0] if whole else np.empty((self.info.channels, 0))
        if self._si_factor is not None:
            frames *= self._si_factor
        return frames, self.info


@dataclass
class _Ahead:
    """Blocks parsed while the file was opened (:meth:`CsvReader._parse_ahead`), and how
    to go on: the parser (None once done), or the error it met. Fresh: nothing opened."""

    stamp: tuple = ()                    # the file's (inode, size, mtime) when opened
    opened: bool = False
    batches: list = field(default_factory=list)
    nbytes: int = 0                      # the batches' size [bytes]
    bad_rows: list = field(default_factory=list)
    parser: pacsv.CSVStreamingReader | None = None
    error: BaseException | None = None

    def remaining(self, start: Callable[[], pacsv.CSVStreamingReader]) -> Iterator[pa.RecordBatch]:
        """The batches parsed ahead, then the rest of the file (``start`` opens the parser
        when none was)."""
        while self.batches:
            yield self.batches.pop(0)                   # (let go of each as it is read)
        if self.error is not None:
            raise self.error
        parser = self.parser if self.opened else start()
        if parser is not None:
            yield from parser


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _attempt(fn: Callable[[], object]) -> tuple[object, BaseException | None]:
    """(fn(), None), or (None, the exception it raised): a thread's result for the caller."""
    try:
        return fn(), None
    except BaseException as exc:                         # noqa: BLE001 - raised again by the caller
        return None, exc


_ONES = np.uint64(0x0101010101010101)     # one in every byte of a word
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)


@njit(cache=True, nogil=True)
def _zero_bytes(x: np.uint64) -> np.uint64:
    """The high bit of each byte of ``x`` that is zero, exactly: no carry crosses a byte,
    as ``(x & 0x7f…) + 0x7f…`` stays within each."""
    return ~(((x & _LOW7) + _LOW7) | x | _LOW7)


@njit(cache=True, nogil=True)
def _count_plain(words: np.ndarray, delimiter: int) -> tuple[int, bool]:
    """(the bytes equal to ``delimiter``, whether every byte is ASCII and none a quote) of
    the bytes held eight to a uint64 word: one pass, a word at a time (a byte equal to b
    is a zero byte of ``word ^ (b · 0x0101…)``)."""
    wanted = _ONES * np.uint64(delimiter)
    quotes = _ONES * np.uint64(ord('"'))
    count = np.uint64(0)
    odd = np.uint64(0)
    for k in range(words.size):
        word = words[k]
        hits = _zero_bytes(word ^ wanted)
        odd |= (word & _HIGH) | _zero_bytes(word ^ quotes)
        count += ((hits >> np.uint64(7)) * _ONES) >> np.uint64(56)      # the hits summed in the top byte
    return int(count), odd == 0

def _line_end(data: bytes) -> int | None:
    """The index of the first line end (LF or CR) in ``data``, None without one."""
    ends = [k for k in (data.find(b"\n"), data.find(b"\r")) if k >= 0]
    return min(ends) if ends else None


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
