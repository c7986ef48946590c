"""Readers of waveform files (SPEC §4 inputs; issue 4): COMTRADE (with the 2013 ``.cff``), CSV, WAV and NumPy
``.npz``. Each returns ``(frames, metadata)`` and can stream in chunks with flat memory;
:class:`ChannelMap` assigns file channels to the meter's inputs with CT and PT ratios.

>>> frames, info = read("keating_1999.CFG")           # doctest: +SKIP
>>> reader = open_recording("big.wav")                 # doctest: +SKIP
>>> for chunk in reader.chunks(65536): ...             # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minimeter.sources.recordings._base import DEFAULT_CHUNK_FRAMES, InvalidRecording, Reader, RecordingInfo
from minimeter.sources.recordings.channels import MAP_HELP, ChannelMap, ElementChannels, ResolvedMap
from minimeter.sources.recordings.comtrade import ComtradeReader, parse_cfg, read_comtrade
from minimeter.sources.recordings.csv_reader import CsvReader, read_csv, write_csv
from minimeter.sources.recordings.npz import NpzReader, read_npz, write_npz
from minimeter.sources.recordings.wav import WavReader, WavWriter, read_wav

FORMATS = {".cfg": "comtrade", ".dat": "comtrade", ".cff": "comtrade", ".csv": "csv", ".txt": "csv", ".wav": "wav", ".npz": "npz"}


def open_recording(path: str | Path, **options: Any) -> Reader:
    """A reader for ``path``, chosen by its suffix (.cfg/.dat/.cff, .csv, .wav, .npz).
    ``options`` go to the reader (``columns``, ``sample_rate_hz`` for CSV; ``names``,
    ``units``, ``scales`` for WAV)."""
    p = Path(path)
    kind = FORMATS.get(p.suffix.lower())
    if kind is None:
        raise InvalidRecording(
            f"{p}: unknown file type {p.suffix!r} — COMTRADE (.cfg/.dat/.cff), CSV (.csv), WAV (.wav) or NumPy (.npz)"
        )
    if kind == "comtrade":
        return ComtradeReader(p)
    if kind == "csv":
        return CsvReader(p, options.get("columns"), options.get("sample_rate_hz"))
    if kind == "wav":
        return WavReader(p, options.get("names"), options.get("units"), options.get("scales"))
    return NpzReader(p)


def read(path: str | Path, **options: Any) -> tuple:
    """The whole recording: ``(frames (channels, n), RecordingInfo)``."""
    return open_recording(path, **options).read()


__all__ = [
    "DEFAULT_CHUNK_FRAMES", "InvalidRecording", "Reader", "RecordingInfo", "ChannelMap", "ElementChannels",
    "ResolvedMap", "MAP_HELP", "ComtradeReader", "CsvReader", "NpzReader", "WavReader", "WavWriter",
    "open_recording", "read", "read_comtrade", "read_csv", "read_npz", "read_wav", "write_csv", "write_npz",
    "parse_cfg",
]
