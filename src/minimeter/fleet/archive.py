"""Archives of recordings (issue 13, SPEC S14.2): ``minimeter analyze 'survey/*.cfg' --out
summary.parquet`` analyses every file the same way, one Dask task per file, on the
cluster fleets run on (:mod:`minimeter.fleet.cluster`).

Each file is analysed exactly as ``minimeter analyze FILE`` does
(:func:`minimeter.lab.analysis.analyze`, metrology only) and gives one row per element
(file, element, channels, Vrms, Irms, P, PF, energies, frequency, cycles); a file that
cannot be read or analysed gives one row with its ``error`` (the project's one-line
message) and no figures — it does not stop the others.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from minimeter.errors import MinimeterError
from minimeter.lab.analysis import analyze
from minimeter.sources.recordings import DEFAULT_CHUNK_FRAMES, ChannelMap, open_recording

MAX_FILES = 1_000_000
SCHEMA = pa.schema([
    ("file", pa.string()), ("element", pa.int64()), ("voltage_channel", pa.string()),
    ("current_channel", pa.string()), ("volts_rms", pa.float64()), ("amps_rms", pa.float64()),
    ("power_w", pa.float64()), ("power_factor", pa.float64()), ("energy_wh", pa.float64()),
    ("energy_all_wh", pa.float64()), ("frequency_hz", pa.float64()), ("cycles", pa.int64()),
    ("whole_cycles", pa.int64()), ("duration_s", pa.float64()), ("error", pa.string()),
])


class ArchiveError(MinimeterError, ValueError):
    """A pattern that names no file, or too many."""


def expand(pattern: str) -> list[str]:
    """The files ``pattern`` (a glob, ``**`` allowed) names, sorted."""
    files = sorted(p for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not files:
        raise ArchiveError(f"{pattern!r}: no file matches")
    if len(files) > MAX_FILES:
        raise ArchiveError(f"{pattern!r}: {len(files):,} files — at most {MAX_FILES:,}")
    return files


def analyze_file(path: str, *, channel_map: str | None = None, sample_rate_hz: float | None = None,
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES, hysteresis_v: float | None = None) -> list[dict]:
    """One file's rows (see the module's docstring); never raises for a bad file."""
    try:
        options = {"sample_rate_hz": sample_rate_hz} if sample_rate_hz else {}
        reader = open_recording(path, **options)
        cmap = ChannelMap.parse(channel_map) if channel_map else None
        summary = analyze(reader, cmap, chunk_frames=chunk_frames, hysteresis_v=hysteresis_v)
    except (MinimeterError, OSError) as exc:
        text = str(exc) if isinstance(exc, MinimeterError) else f"{exc.strerror}: {path}"
        return [{"file": path, "error": text}]
    common = {"file": path, "frequency_hz": summary.frequency_hz, "cycles": summary.cycles,
              "whole_cycles": summary.whole_cycles, "duration_s": summary.info.duration_s, "error": None}
    return [{**common, **e.__dict__} for e in summary.elements]


def analyze_archive(files: list[str], client, out: str | Path, *, on_done: Callable[[int], None] | None = None,
                    **options) -> pd.DataFrame:
    """Analyse ``files`` on the Dask ``client``, one task each, and write the rows (in
    the files' order) to the Parquet file ``out``. Returns them."""
    futures = client.map(analyze_file, files, pure=False, **options)
    rows: list[list[dict]] = [[] for _ in files]
    index = {f.key: j for j, f in enumerate(futures)}
    from distributed import as_completed

    for future in as_completed(futures):
        rows[index[future.key]] = future.result()
        future.release()
        if on_done is not None:
            on_done(1)
    table = pa.Table.from_pylist([row for file_rows in rows for row in file_rows], schema=SCHEMA)
    pq.write_table(table, out)
    return table.to_pandas()


__all__ = ["analyze_file", "analyze_archive", "expand", "ArchiveError", "SCHEMA"]
