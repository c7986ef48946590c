"""NumPy ``.npz`` reader.

The archive holds ``frames`` shaped (channels, n) and ``sample_rate_hz`` (a scalar), and
optionally ``channel_names`` and ``channel_units`` (string arrays). Alternatively each
channel is its own 1-D array, named by its key, beside ``sample_rate_hz``. An ``.npz``
written without compression is memory-mapped member by member, so streaming a large
one holds a chunk at a time; a compressed one is decompressed a chunk at a time.

Hostile archives are refused with the one-line error (S15.1): pickled (object) arrays
are never loaded, names and units must be 1-D string arrays, every member must be a
``.npy`` array, and each array's header must agree with the bytes it holds.
``channel_units`` ('V', 'kV', 'mA', …) are applied: the frames come out in SI (S4.9).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from minimeter.sources.recordings._base import (MAX_CHANNELS, InvalidRecording, Reader, RecordingInfo, check_file,
                                                check_rate, guess_unit, reading)

_META = ("sample_rate_hz", "channel_names", "channel_units")


def _array_header(fh) -> tuple:
    """(shape, fortran_order, dtype) of a ``.npy`` stream, leaving it at the data."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


class NpzReader(Reader):
    """An ``.npz`` recording (see the module's docstring for its layout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = check_file(path)
        with reading(self.path):
            self.info = self._describe(self._open())

    def _open(self) -> RecordingInfo:
        with zipfile.ZipFile(self.path) as zf:
            self._sizes = {i.filename: i.file_size for i in zf.infolist()}
            if any(i.flag_bits & 0x1 for i in zf.infolist()):
                raise InvalidRecording(f"{self.path}: an encrypted member — .npz archives are not encrypted")
        odd = [name for name in self._sizes if not name.endswith(".npy")]
        if odd:
            raise InvalidRecording(f"{self.path}: member {odd[0]!r} is not a .npy array")
        self._npz = np.load(self.path, allow_pickle=False)
        keys = list(self._npz.files)
        if "sample_rate_hz" not in keys:
            raise InvalidRecording(f"{self.path}: no 'sample_rate_hz' in the archive (keys: {', '.join(keys)})")
        rate = self._npz["sample_rate_hz"]
        if not isinstance(rate, np.ndarray) or rate.shape != () or rate.dtype.kind not in "fiu":
            raise InvalidRecording(f"{self.path}: 'sample_rate_hz' is not a number")
        rate = check_rate(self.path, float(rate))
        if "frames" in keys:
            shape = self._shape("frames")
            if len(shape) != 2:
                raise InvalidRecording(f"{self.path}: 'frames' must be 2-D (channels, n), got shape {shape}")
            channels, n = shape
            names = (self._strings("channel_names") if "channel_names" in keys
                     else tuple(f"ch{k + 1}" for k in range(channels)))
            self._members: list[str] | None = None
        else:
            members = [k for k in keys if k not in _META]
            if not members:
                raise InvalidRecording(f"{self.path}: no sample arrays in the archive")
            lengths = {k: self._shape(k) for k in members}
            if any(len(s) != 1 for s in lengths.values()) or len({s[0] for s in lengths.values()}) != 1:
                raise InvalidRecording(
                    f"{self.path}: per-channel arrays must be 1-D and of equal length, got "
                    + ", ".join(f"{k} {s}" for k, s in lengths.items())
                )
            names, channels, n = tuple(members), len(members), lengths[members[0]][0]
            self._members = members
        if not 1 <= channels <= MAX_CHANNELS:
            raise InvalidRecording(f"{self.path}: {channels} channels — 1 to {MAX_CHANNELS}")
        if len(names) != channels:
            raise InvalidRecording(f"{self.path}: {len(names)} channel names for {channels} channels")
        units = self._strings("channel_units") if "channel_units" in keys else tuple(guess_unit(s) for s in names)
        if len(units) != channels:
            raise InvalidRecording(f"{self.path}: {len(units)} channel units for {channels} channels")
        return RecordingInfo(str(self.path), "npz", rate, int(n), names, units)

    def _strings(self, key: str) -> tuple[str, ...]:
        """A 1-D array of strings (names, units); pickled objects are never loaded."""
        with zipfile.ZipFile(self.path) as zf, zf.open(key + ".npy") as fh:
            shape, _, dtype = _array_header(fh)
        if dtype.kind not in "US" or len(shape) != 1 or shape[0] > MAX_CHANNELS:
            raise InvalidRecording(f"{self.path}: {key!r} must be a 1-D array of at most {MAX_CHANNELS} strings, "
                                   f"got dtype {dtype} shape {tuple(shape)}")
        values = self._npz[key]
        if dtype.kind == "S":
            return tuple(bytes(x).decode("utf-8") for x in values)
        codes = np.ascontiguousarray(values).view(np.uint32)
        if np.any((codes > 0x10FFFF) | ((codes >= 0xD800) & (codes <= 0xDFFF))):
            raise InvalidRecording(f"{self.path}: {key!r} holds characters that are not Unicode")
        return tuple(str(x) for x in values)

    def _shape(self, key: str) -> tuple[int, ...]:
        """The member's shape, after checking it is numeric and holds the bytes its
        header promises."""
        with zipfile.ZipFile(self.path) as zf, zf.open(key + ".npy") as fh:
            shape, _, dtype = _array_header(fh)
            data_start = fh.tell()
        if dtype.kind not in "fiu" or dtype.hasobject:
            raise InvalidRecording(f"{self.path}: array {key!r} is not numeric (dtype {dtype})")
        expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
        held = self._sizes[key + ".npy"] - data_start
        if expected != held:
            raise InvalidRecording(f"{self.path}: array {key!r}: its header says shape {tuple(shape)} "
                                   f"({expected:,} bytes), the archive holds {held:,} bytes")
        return tuple(shape)

    def _member_chunks(self, key: str, chunk_frames: int) -> Iterator[np.ndarray]:
        """Chunks of one member along its last axis, read from the zip stream piece by piece."""
        with zipfile.ZipFile(self.path) as zf, zf.open(key + ".npy") as fh:
            shape, fortran, dtype = _array_header(fh)
            rows = shape[0] if len(shape) == 2 else 1
            n = shape[-1]
            if len(shape) == 2 and not fortran and rows > 1:
                # C order (channels, n): rows are stored one after another; read it whole
                # per row band would need seeks, so map each row's range by offsets.
                data_start = fh.tell()
                if zf.getinfo(key + ".npy").compress_type == zipfile.ZIP_STORED:
                    yield from self._stored_2d(zf, key, data_start, rows, n, dtype, chunk_frames)
                    return
                yield from self._compressed_2d(zf, key, data_start, rows, n, dtype, chunk_frames)
                return
            item = dtype.itemsize * rows
            for k in range(0, n, chunk_frames):
                m = min(chunk_frames, n - k)
                buf = fh.read(m * item)
                if len(buf) != m * item:
                    raise InvalidRecording(f"{self.path}: array {key!r} is truncated at frame {k:,} of {n:,}")
                arr = np.frombuffer(buf, dtype=dtype)
                yield (arr.reshape(m, rows).T if rows > 1 else arr[None, :]).astype(float)

    def _compressed_2d(self, zf, key, data_start, rows, n, dtype, chunk_frames) -> Iterator[np.ndarray]:
        """A compressed C-order (rows, n) member, one stream per row (each row is stored
        after the one before), so memory holds one chunk whatever the length."""
        streams = [zf.open(key + ".npy") for _ in range(rows)]
        try:
            for r, fh in enumerate(streams):
                fh.seek(data_start + r * n * dtype.itemsize)
            for k in range(0, n, chunk_frames):
                m = min(chunk_frames, n - k)
                parts = [fh.read(m * dtype.itemsize) for fh in streams]
                if any(len(p) != m * dtype.itemsize for p in parts):
                    raise InvalidRecording(f"{self.path}: array {key!r} is truncated at frame {k:,} of {n:,}")
                yield np.stack([np.frombuffer(p, dtype=dtype) for p in parts]).astype(float)
        finally:
            for fh in streams:
                fh.close()

    def _stored_2d(self, zf, key, data_start, rows, n, dtype, chunk_frames) -> Iterator[np.ndarray]:
        info = zf.getinfo(key + ".npy")
        with open(self.path, "rb") as raw:
            raw.seek(info.header_offset + 26)
            name_len = int.from_bytes(raw.read(2), "little")
            extra_len = int.from_bytes(raw.read(2), "little")
        offset = info.header_offset + 30 + name_len + extra_len + data_start
        mm = np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=(rows, n))
        for k in range(0, n, chunk_frames):
            yield np.asarray(mm[:, k:k + chunk_frames], dtype=float)

    def _chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        if self._members is None:
            yield from self._member_chunks("frames", chunk_frames)
            return
        streams = [self._member_chunks(k, chunk_frames) for k in self._members]
        for parts in zip(*streams):
            yield np.concatenate(parts, axis=0)


def read_npz(path: str | Path) -> tuple[np.ndarray, RecordingInfo]:
    """A whole ``.npz`` recording: (frames (channels, n), metadata)."""
    return NpzReader(path).read()


def write_npz(path: str | Path, frames: np.ndarray, sample_rate_hz: float, names: Sequence[str],
              units: Sequence[str] | None = None) -> None:
    """Write a recording in the layout :class:`NpzReader` reads (uncompressed)."""
    extra = {"channel_units": np.array(list(units))} if units is not None else {}
    np.savez(path, frames=np.asarray(frames, float), sample_rate_hz=np.float64(sample_rate_hz),
             channel_names=np.array(list(names)), **extra)
