"""SPEC S4.1, S4.9, S15.1, S15.2 (issue 12, item 4): the CSV reader on Arrow's parser.

Every file is written here as text; the expected numbers are Python's own ``float`` of
the text written (bit for bit), the expected line numbers counted by hand. Chunks are
exactly ``chunk_frames`` long (the last one shorter) and join to ``read()``; hostile
files give one line naming the file, the line and the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minimeter.drive import recording_chunks
from minimeter.meter import EventKind
from minimeter.sources.recordings import ChannelMap, CsvReader, InvalidRecording, open_recording, read
from minimeter.sources.recordings.csv_reader import MAX_LINE_BYTES


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def _refused(path: Path, needle: str, **options) -> str:
    """Opening and reading ``path`` whole raises InvalidRecording: one line, naming the file and ``needle``."""
    with pytest.raises(InvalidRecording) as caught:
        read(path, **options)
    message = str(caught.value)
    assert "\n" not in message and path.name in message and needle in message, message
    return message


def _table(rows: list[list[str]]) -> np.ndarray:
    """The numbers of text cells by Python's float: (columns, rows)."""
    return np.array([[float(cell) for cell in row] for row in rows]).T.reshape(len(rows[0]), len(rows))


# --------------------------------------------------------------------------- values and chunks
def test_s4_1_csv_numbers_are_pythons_floats_bit_for_bit(tmp_path):
    """Shortest round-trip reprs of random doubles (subnormals and ±1e308 included),
    scientific and fixed notation, quoted and space-padded cells."""
    rng = np.random.default_rng(12)
    bits = rng.integers(0, 2 ** 64, size=3000, dtype=np.uint64)
    doubles = bits.view(np.float64)
    cells = [repr(float(x)) for x in doubles[np.isfinite(doubles)][:2000]]
    cells += [f"{x:.6e}" for x in rng.normal(0, 1e3, 500)] + [f"{x:.3f}" for x in rng.normal(0, 170, 500)]
    cells[7], cells[8], cells[9] = '"1.5"', "  -2.25 ", ".5"
    cells += ["4.9e-324", "-1.7976931348623157e308"]
    rows = [cells[k:k + 3] for k in range(0, len(cells) - len(cells) % 3, 3)]
    path = _write(tmp_path / "v.csv", "A,B,C\n" + "".join(",".join(r) + "\n" for r in rows))
    frames, info = read(path, sample_rate_hz=1000.0)
    expected = _table([[c.strip().strip('"') for c in r] for r in rows])
    assert info.frame_count == len(rows) and info.channel_names == ("A", "B", "C")
    assert np.array_equal(frames.view(np.uint64), expected.view(np.uint64))


@pytest.mark.parametrize("chunk_frames", [1, 7, 1000, 4096, 1 << 16])
def test_s4_1_csv_chunks_are_exactly_chunk_frames_and_join_to_read(tmp_path, chunk_frames):
    """40,001 rows (1.4 MB: two of the parser's 1 MiB blocks), a blank line every 997:
    every chunk but the last holds exactly ``chunk_frames`` frames; joined, they equal
    ``read()`` and the text's numbers."""
    n = 40_001
    rows = [[f"{k / 8000:.9g}", f"{170 * np.sin(k / 7):.10g}", f"{-14 * np.cos(k / 5):.10g}"] for k in range(n)]
    text = "".join(",".join(r) + ("\n\n" if k % 997 == 0 else "\n") for k, r in enumerate(rows))
    path = _write(tmp_path / "c.csv", "time_s,V1,I1\n" + text)
    assert path.stat().st_size > MAX_LINE_BYTES
    whole, info = read(path)
    assert info.frame_count == n and info.sample_rate_hz == pytest.approx(8000.0, rel=1e-9)
    assert np.array_equal(whole, _table([r[1:] for r in rows]))
    chunks = list(open_recording(path).chunks(chunk_frames))
    assert [c.shape[1] for c in chunks[:-1]] == [chunk_frames] * (len(chunks) - 1)
    assert 1 <= chunks[-1].shape[1] <= chunk_frames
    assert np.array_equal(np.concatenate(chunks, axis=1), whole)


def test_s4_1_csv_line_ends_bom_blank_lines_and_delimiters(tmp_path):
    """LF, CRLF, CR and a BOM read alike; blank lines and lines of spaces are not frames;
    ';' and tab delimiters."""
    rows = ["0,1,-2", "0.5,3,4.25", "1,-5e-3,6"]
    expected = np.array([[1, 3, -5e-3], [-2, 4.25, 6]])
    texts = {
        "lf": "t,V,I\n" + "\n".join(rows) + "\n",
        "crlf": "\ufefft,V,I\r\n" + "\r\n".join(rows) + "\r\n",
        "cr": "t,V,I\r" + "\r".join(rows),
        "blank": "t,V,I\n\n" + rows[0] + "\n   \n\n" + rows[1] + "\r\n\t\n" + rows[2] + "\n\n",
        "semicolon": "t;V;I\n" + "\n".join(r.replace(",", ";") for r in rows),
        "tab": "t\tV\tI\n" + "\n".join(r.replace(",", "\t") for r in rows),
    }
    for name, text in texts.items():
        delimiter = {"semicolon": ";", "tab": "\t"}.get(name, ",")
        reader = CsvReader(_write(tmp_path / f"{name}.csv", text), delimiter=delimiter)
        frames, info = reader.read()
        assert info.frame_count == 3 and info.sample_rate_hz == 2.0, name   # (3 − 1) / (1 − 0) s
        assert np.array_equal(frames, expected), name


def test_s4_1_csv_the_parser_counts_files_the_fast_count_cannot(tmp_path):
    """Quotes, non-ASCII text and a single column are counted by the parser: the same
    numbers as the plain file."""
    plain = "t,V,I\n0,1,2\n\n0.25,3,4\n0.5,5,6\n"
    variants = {"quoted": '"t","V","I"\n0,"1",2\n\n0.25,3,"4"\n0.5,5,6\n',
                "unicode": "t,V \u00b5,I\n0,1,2\n\n0.25,3,4\n0.5,5,6\n",
                "plain": plain}
    for name, text in variants.items():
        frames, info = read(_write(tmp_path / f"{name}.csv", text))
        assert info.frame_count == 3 and info.sample_rate_hz == 4.0, name
        assert np.array_equal(frames, [[1, 3, 5], [2, 4, 6]]), name
    frames, info = read(_write(tmp_path / "one.csv", "V\n1\n\n2\n3\n"), sample_rate_hz=50.0)
    assert info.frame_count == 3 and np.array_equal(frames, [[1, 2, 3]])


def test_s4_1_csv_rate_from_first_and_last_time_only(tmp_path):
    """(n − 1) / (t_last − t_first): jittered and even non-numeric inner times do not
    matter; with the rate given, the time column is not read at all (ISO timestamps)."""
    path = _write(tmp_path / "t.csv", "time_s,V\n0.0,1\n0.0011,2\nnot-a-time,3\n0.004,4\n")
    frames, info = read(path)
    assert info.sample_rate_hz == pytest.approx(3 / 0.004, rel=1e-12) and np.array_equal(frames, [[1, 2, 3, 4]])
    iso = _write(tmp_path / "iso.csv", "timestamp,V\n2026-11-30T20:00:00Z,1\n2026-11-30T20:00:01Z,2\n")
    frames, info = read(iso, sample_rate_hz=1.0)
    assert np.array_equal(frames, [[1, 2]]) and info.channel_names == ("V",)
    _refused(iso, "line 2, column 'timestamp': '2026-11-30T20:00:00Z' is not a number")


def test_s4_1_csv_trailing_delimiter_on_every_row(tmp_path):
    frames, info = read(_write(tmp_path / "tc.csv", "t,V,I\n0,1,2,\n1,3,4,\n"))
    assert np.array_equal(frames, [[1, 3], [2, 4]])
    assert info.notes == ("rows hold 4 fields, the header names 3: the last 1 are not read",)


# --------------------------------------------------------------------------- units and gaps
def test_s4_9_csv_units_to_si_and_nan_cells_are_flagged_gaps(tmp_path):
    """A kV and an mA column come out in V and A; 'nan' cells (any case, signed) are NaN,
    and the stream flags frames 2–3 and 6 as gaps, whatever the chunking."""
    cells = [("1", "2"), ("0.5", "-1"), ("nan", "3"), ("-0.25", "NaN"), ("2", "4"), ("1", "1"), ("1", "-nan"),
             ("3", "2")]
    text = "t,V1 [kV],I1 (mA)\n" + "".join(f"{k * 0.001},{v},{i}\n" for k, (v, i) in enumerate(cells))
    path = _write(tmp_path / "g.csv", text)
    frames, info = read(path)
    assert info.channel_units == ("V", "A") and info.file_units == ("kV", "mA")
    volts = np.array([float(v) * 1000 for v, _ in cells])
    amps = np.array([float(i) / 1000 for _, i in cells])
    assert np.array_equal(frames, np.vstack((volts, amps)), equal_nan=True)
    for chunk_frames in (1, 3, 100):
        reader = open_recording(path)
        resolved = ChannelMap.parse("V1:I1").resolve(reader.info)
        events = [e for chunk in recording_chunks(reader, resolved, chunk_frames) for e in getattr(chunk, "events", ())]
        gaps = sorted((round(e.time_s * 1000), e.active) for e in events if e.kind == EventKind.MISSING_SAMPLES)
        assert gaps == [(2, True), (4, False), (6, True), (7, False)], chunk_frames


# --------------------------------------------------------------------------- hostile files
@pytest.mark.parametrize("text,needle", [
    ("t,V,I\n0,1,2\n0.1,1\n0.2,3,4\n", "line 3 has 2 columns, the header has 3"),
    ("t,V,I\n0,1,2\n\n\n0.1,1,2,9\n", "line 5 has 4 columns, the header has 3"),
    ("t,V,I\r\n0,1,2\r\n\r\n# a comment\r\n", "line 4 has 1 columns, the header has 3"),
    ("t,V,I\n0,1,2,\n0.1,1,2\n", "line 3 has 3 columns, the rows before have 4"),
    ("t,V,I\n0,1,2\n0.1,oops,2\n", "line 3, column 'V': 'oops' is not a number"),
    ("t,V,I\n0,1,2\n  \n0.1,1,\n", "line 4, column 'I': '' is not a number"),
    ("t,V,I\n0,1,2\n0.1,0x10,2\n", "line 3, column 'V': '0x10' is not a number"),
    ("t,V,I\n0,1,2\n0.1,NA,2\n", "line 3, column 'V': 'NA' is not a number"),
    ('"t",V,I\n0,1,2\n\n0.1,"1\n2",3\n', "line 4, column 'V': '1\\n2' is not a number"),
    ("t,V,I\n0,1,2\n\n0.1,inf,2\n", "line 4, column 'V': not a finite number"),
    ("t,V,I\n0,1,2\n0.1,1," + "9" * 140_000 + "\n", "line 3, column 'I': not a finite number"),
    ("t,V,I\r0,1,2\r\r0.1,1,-1e999\r", "line 4, column 'I': not a finite number"),
    ("t,V,I\n0,1,2\n0.1,1," + "7" * (3 * MAX_LINE_BYTES) + "\n", "line 3 is longer than 1,048,576 bytes"),
    ("t,V," + "I" * (MAX_LINE_BYTES + 5) + "\n0,1,2\n", "line 1 is longer than 1,048,576 bytes"),
    ("", "empty file"),
    ("\n0,1,2\n", "empty file"),
    ("t,V,I\n", "the time column does not advance"),
    ("t,V,I\n0,1,2\n", "the time column does not advance"),
    ("t,V,I\n0,1,2\n0,1,2\n", "the time column does not advance"),
    ("V,I\n1,2\n", "no time column"),
    ("t\n0\n1\n", "no sample columns"),
    (",".join(f"c{k}" for k in range(5000)) + "\n", "5000 columns — at most 4097"),
    ("t,V,I\n" + ",".join(["1"] * 6000) + "\n", "line 2 has 6000 columns"),
    ("t,V,I\n0,1,2\n\x00\x00\n", "line 3 has 1 columns"),
    ("t,V,I\n0,1,2\n0.1,1\x002,3\n", "line 3, column 'V': '1\\x002' is not a number"),
])
def test_s15_1_csv_hostile_rows_name_the_line_and_column(tmp_path, text, needle):
    message = _refused(_write(tmp_path / "h.csv", text), needle)
    assert "Traceback" not in message


def test_s15_1_csv_not_utf8_names_the_byte_and_its_offset(tmp_path):
    """An 0xff byte deep in the file (past the first MiB block) and one in the time column."""
    head = "t,V,I\n" + "".join(f"{k},1,2\n" for k in range(200_000))
    path = tmp_path / "ff.csv"
    path.write_bytes(head.encode() + b"5,\xff,3\n")
    _refused(path, f"not UTF-8 text (byte 0xff at offset {len(head) + 2})")
    path.write_bytes(b"t,V,I\n0,1,2\n0.\xfe1,1,2\n")
    _refused(path, "not UTF-8 text (byte 0xfe at offset 14)")


def test_s15_1_csv_bad_arguments(tmp_path):
    path = _write(tmp_path / "a.csv", "t,V,I\n0,1,2\n1,3,4\n")
    for delimiter in ("", ";;", '"', "\n", "\u00e9"):
        with pytest.raises(InvalidRecording, match="delimiter"):
            CsvReader(path, delimiter=delimiter)
    _refused(path, "no column 'X' — the header has t, V, I", columns=["X"])
    with pytest.raises(InvalidRecording, match="chunk_frames must be at least 1"):
        next(open_recording(path).chunks(0))


def test_s15_2_csv_a_failed_read_changes_nothing(tmp_path):
    """The reader of a file bad at line 5,000 raises there each time, its metadata
    unchanged; once the line is mended the same reader reads the whole file."""
    rows = [f"{k},{k % 7},{-k}" for k in range(6000)]
    rows[4998] = "4998,bad,1"
    path = _write(tmp_path / "f.csv", "t,V,I\n" + "\n".join(rows) + "\n")
    reader = open_recording(path)
    info = reader.info
    for _ in range(2):
        with pytest.raises(InvalidRecording, match=r"line 5000, column 'V': 'bad' is not a number"):
            reader.read()
        assert reader.info == info
    rows[4998] = "4998,5,-4998"
    _write(path, "t,V,I\n" + "\n".join(rows) + "\n")
    frames, _ = reader.read()
    assert np.array_equal(frames, [[k % 7 if k != 4998 else 5 for k in range(6000)], [-k for k in range(6000)]])


def test_s15_1_csv_a_file_grown_since_opening_is_refused(tmp_path):
    path = _write(tmp_path / "grow.csv", "t,V\n0,1\n1,2\n")
    reader = open_recording(path)
    _write(path, "t,V\n0,1\n1,2\n2,3\n")
    with pytest.raises(InvalidRecording, match="holds more than the 2 frames counted when it was opened"):
        reader.read()


_CELL = st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr),
                  st.floats(-1e6, 1e6).map(lambda x: f"{x:.5g}"), st.just("nan"))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_CELL, _CELL), min_size=1, max_size=40), st.sampled_from(["\n", "\r\n", "\r"]),
       st.lists(st.booleans(), min_size=40, max_size=40), st.integers(1, 9))
def test_s4_1_csv_any_numbers_any_line_ends_any_chunking(tmp_path_factory, cells, newline, blanks, chunk_frames):
    """Random cells, line ends and blank lines: ``read()`` equals Python's float of every
    cell, and every chunking joins to it."""
    lines = ["A,B"]
    for (a, b), blank in zip(cells, blanks):
        lines += [f"{a},{b}"] + ([""] if blank else [])
    path = _write(tmp_path_factory.mktemp("hyp") / "r.csv", newline.join(lines) + newline)
    frames, info = read(path, sample_rate_hz=100.0)
    assert info.frame_count == len(cells)
    assert np.array_equal(frames, _table([list(c) for c in cells]), equal_nan=True)
    joined = np.concatenate(list(open_recording(path, sample_rate_hz=100.0).chunks(chunk_frames)), axis=1)
    assert np.array_equal(joined, frames, equal_nan=True)


# --------------------------------------------------------------------- counting and reading ahead (issue 12, item 4)
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_s4_1_csv_frame_count_of_plain_files_of_every_length(tmp_path, delimiter):
    """Opening counts a plain file's frames from its delimiters, eight bytes at a time:
    files of every length modulo 8 (and one over a parser block), blank lines between,
    count as many frames as rows were written, and read the numbers written."""
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 5, 8, 13, 21, 34, 80_000):
        cells = [[f"{rng.normal(0, 170):.{1 + k % 9}g}", f"{rng.normal(0, 5):.{1 + k % 7}g}"] for k in range(n)]
        lines = [delimiter.join(row) + ("\n" if k % 11 else "\n\n") for k, row in enumerate(cells)]
        path = _write(tmp_path / f"n{n}.csv", f"V{delimiter}I\n" + "".join(lines))
        reader = CsvReader(path, sample_rate_hz=1000.0, delimiter=delimiter)
        frames, info = reader.read()
        assert info.frame_count == n, n
        assert np.array_equal(frames, _table(cells)), n
    assert path.stat().st_size > MAX_LINE_BYTES


def test_s4_1_csv_a_quote_or_a_bad_row_past_the_first_blocks(tmp_path):
    """A file plain for its first 3 MB: a quoted number in its last row is read as the
    number (the blocks parsed while opening, as if free of quotes, are not used); a bad
    cell there instead names its line, on every read."""
    n = 150_000
    rows = [f"{k / 8000:.9g},{170 * np.sin(k / 9):.10g},{k % 13 - 6}" for k in range(n)]
    head = "time_s,V,I\n" + "\n".join(rows[:-1]) + "\n"
    assert len(head) > 3 * MAX_LINE_BYTES
    path = _write(tmp_path / "q.csv", head + f'{(n - 1) / 8000:.9g},"-2.5",{(n - 1) % 13 - 6}\n')
    frames, info = read(path)
    expected = _table([r.split(",")[1:] for r in rows[:-1]] + [["-2.5", f"{(n - 1) % 13 - 6}"]])
    assert info.frame_count == n and np.array_equal(frames, expected)
    _write(path, head + f"{(n - 1) / 8000:.9g},oops,1\n")
    reader = open_recording(path)
    for _ in range(2):
        with pytest.raises(InvalidRecording, match=rf"line {n + 1}, column 'V': 'oops' is not a number"):
            reader.read()


def test_s4_1_csv_a_reader_read_again_gives_the_same_frames(tmp_path):
    """The first read takes the blocks parsed while opening; the next ones parse the file
    again: chunks of any size, and ``read()``, give the text's numbers every time."""
    n = 90_000
    rows = [[f"{k / 8000:.9g}", f"{170 * np.sin(k / 7):.10g}", f"{-14 * np.cos(k / 5):.10g}"] for k in range(n)]
    path = _write(tmp_path / "twice.csv", "time_s,V1,I1\n" + "".join(",".join(r) + "\n" for r in rows))
    expected = _table([r[1:] for r in rows])
    reader = open_recording(path)
    for chunk_frames in (1 << 16, 4099, 1 << 20):
        assert np.array_equal(np.concatenate(list(reader.chunks(chunk_frames)), axis=1), expected), chunk_frames
        assert np.array_equal(reader.read()[0], expected)
    first = open_recording(path)
    assert np.array_equal(next(iter(first.chunks(10))), expected[:, :10])    # (a read left early)
    assert np.array_equal(first.read()[0], expected)


def test_issue_12_csv_read_makes_one_copy(tmp_path):
    """``read()`` allocates its output once and fills it from the parser's blocks: the
    peak of traced allocations is one output (with a little to spare), not two."""
    import tracemalloc

    n = 150_000
    text = "".join(f"{k / 8000:.9g},{np.sin(k):.10g},{np.cos(k):.10g}\n" for k in range(n))
    path = _write(tmp_path / "m.csv", "time_s,V,I\n" + text)
    read(_write(tmp_path / "warm.csv", "time_s,V,I\n0,1,2\n1,3,4\n"))      # (first-use imports traced otherwise)
    reader = open_recording(path)
    tracemalloc.start()
    try:
        frames, _ = reader.read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frames.shape == (2, n) and peak < 1.1 * frames.nbytes
