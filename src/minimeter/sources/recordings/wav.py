"""WAV reader: multi-channel PCM (8/16/24/32-bit integer) or IEEE float, with a scale
per channel.

Sound-card energy monitors record voltage and current as audio channels; a sample's
physical value is its normalised value (integer counts / 2^(bits−1), or the float as
stored, both in [−1, 1)) times the channel's scale [V or A at full scale]. Names, units
and scales come from the arguments, or from a JSON sidecar ``<file>.wav.json`` holding
``{"channels": [{"name": "V1", "unit": "V", "scale": 400.0}, …]}``; without either, the
channels are ``ch1…`` with scale 1.

The data chunk is memory-mapped, so streaming holds one chunk at a time whatever the
file's size. Units ('V', 'kV', 'mA', …) are applied: the frames come out in SI (S4.9).
The sidecar is at most 16 MiB of JSON; each scale is finite, non-zero and at most 1e9 in
magnitude (S15.1).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from minimeter.sources.recordings._base import (MAX_CHANNELS, MAX_TEXT_BYTES, InvalidRecording, Reader, RecordingInfo,
                                                check_file, check_rate, guess_unit, reading)

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
MAX_SCALE = 1e9          # |scale| bound: the physical value at full scale [V] or [A]


def read_sidecar(sidecar: Path) -> tuple[list[str], list[str], list[float]]:
    """The names, units and scales of a ``.wav.json`` channel description."""
    check_file(sidecar, MAX_TEXT_BYTES)
    try:
        described = json.loads(sidecar.read_text(encoding="utf-8"))["channels"]
        if not isinstance(described, list) or not all(isinstance(c, dict) for c in described):
            raise TypeError("'channels' must be a list of tables")
        names = [str(c["name"]) for c in described]
        units = [str(c.get("unit", "")) for c in described]
        scales = [float(c.get("scale", 1.0)) for c in described]
    except RecursionError:
        raise InvalidRecording(f"{sidecar}: not a channel description (nested too deeply)") from None
    except (ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise InvalidRecording(f"{sidecar}: not a channel description ({exc})") from None
    return names, units, scales


class WavReader(Reader):
    """A WAV recording.

    Parameters
    ----------
    path : the file
    names, units : per channel (default: the sidecar's, else ch1… and '')
    scales : per channel, the physical value at digital full scale [V] or [A]
    """

    def __init__(self, path: str | Path, names: Sequence[str] | None = None,
                 units: Sequence[str] | None = None, scales: Sequence[float] | None = None) -> None:
        self.path = check_file(path)
        with reading(self.path):
            self.info = self._describe(self._open(names, units, scales))

    def _open(self, names, units, scales) -> RecordingInfo:
        self._parse_header()
        sidecar = Path(str(self.path) + ".json")
        described = False
        if sidecar.exists() and names is None and scales is None:
            names, units, scales = read_sidecar(sidecar)
            described = True
        source = f"the channel description ({sidecar.name})" if described else "the channel description given"
        for what, values in (("names", names), ("units", units), ("scales", scales)):
            if values is not None and len(values) != self.channels:
                raise InvalidRecording(
                    f"{self.path}: wrong channel count — the WAV has {self.channels} channels, "
                    f"{source} has {len(values)} {what}"
                )
        names = tuple(str(n) for n in names) if names is not None else tuple(f"ch{k + 1}" for k in range(self.channels))
        units = tuple(str(u) for u in units) if units is not None else tuple(guess_unit(n) for n in names)
        scale = np.asarray(scales, float) if scales is not None else np.ones(self.channels)
        if not np.all(np.isfinite(scale) & (scale != 0) & (np.abs(scale) <= MAX_SCALE)):
            raise InvalidRecording(f"{self.path}: a channel scale {scale.tolist()} is zero, not finite or over "
                                   f"{MAX_SCALE:g} in magnitude")
        self._scale = scale[:, None]
        return RecordingInfo(str(self.path), "wav", check_rate(self.path, self.rate), self.frames, names, units)

    def _parse_header(self) -> None:
        size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            riff = fh.read(12)
            if len(riff) < 12 or riff[:4] not in (b"RIFF", b"RF64") or riff[8:12] != b"WAVE":
                raise InvalidRecording(f"{self.path}: not a WAV file (no RIFF/WAVE header)")
            fmt = None
            while True:
                head = fh.read(8)
                if len(head) < 8:
                    raise InvalidRecording(f"{self.path}: truncated — no 'data' chunk found")
                cid, clen = head[:4], struct.unpack("<I", head[4:])[0]
                if cid == b"fmt ":
                    if clen > 1 << 16:          # 16 to 40 bytes in practice; never allocate what a header claims
                        raise InvalidRecording(f"{self.path}: a 'fmt ' chunk of {clen:,} bytes — at most 65,536")
                    fmt = fh.read(clen)
                    if clen % 2:
                        fh.read(1)
                elif cid == b"data":
                    if fmt is None:
                        raise InvalidRecording(f"{self.path}: 'data' chunk before the 'fmt ' chunk")
                    self._offset = fh.tell()
                    data_len = clen if clen != 0xFFFFFFFF else size - self._offset
                    break
                else:
                    fh.seek(clen + (clen % 2), 1)
        if len(fmt) < 16:
            raise InvalidRecording(f"{self.path}: 'fmt ' chunk too short")
        tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == _EXTENSIBLE and len(fmt) >= 26:
            tag = struct.unpack("<H", fmt[24:26])[0]
        if tag not in (_PCM, _FLOAT) or (tag == _FLOAT and bits not in (32, 64)) or (tag == _PCM and bits not in (8, 16, 24, 32)):
            raise InvalidRecording(f"{self.path}: unsupported WAV encoding (format {tag}, {bits} bits); "
                                   "PCM 8/16/24/32-bit or float 32/64-bit")
        if not 1 <= channels <= MAX_CHANNELS or rate <= 0 or align != channels * bits // 8:
            raise InvalidRecording(f"{self.path}: inconsistent 'fmt ' chunk ({channels} channels, {rate} Hz, block {align})")
        available = max(size - self._offset, 0)
        if data_len > available:
            raise InvalidRecording(
                f"{self.path}: truncated — the data chunk declares {data_len} bytes, the file holds {available}"
            )
        self.channels, self.rate, self.bits, self.is_float = channels, rate, bits, tag == _FLOAT
        self.frames = data_len // align
        self._align = align

    def _normalised(self, k: int, m: int) -> np.ndarray:
        """Frames k … k+m−1 as (channels, m) floats in [−1, 1)."""
        bytes_per = self.bits // 8
        if self.is_float:
            mm = np.memmap(self.path, dtype="<f4" if self.bits == 32 else "<f8", mode="r",
                           offset=self._offset + k * self._align, shape=(m, self.channels))
            return np.asarray(mm, dtype=float).T
        if self.bits == 24:
            mm = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self._offset + k * self._align,
                           shape=(m, self.channels, 3))
            b = np.asarray(mm, dtype=np.int32)
            counts = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
            counts = np.where(counts >= 1 << 23, counts - (1 << 24), counts)
            return counts.T / float(1 << 23)
        dtype = {8: np.uint8, 16: "<i2", 32: "<i4"}[self.bits]
        mm = np.memmap(self.path, dtype=dtype, mode="r", offset=self._offset + k * self._align,
                       shape=(m, self.channels))
        x = np.asarray(mm, dtype=float).T
        if self.bits == 8:
            return (x - 128.0) / 128.0
        return x / float(1 << (8 * bytes_per - 1))

    def _chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        if not (self.is_float or self.bits in (16, 32)):
            for k in range(0, self.frames, chunk_frames):
                yield self._normalised(k, min(chunk_frames, self.frames - k)) * self._scale
            return
        if self.frames == 0:
            return
        # 16/32-bit PCM and float: one map of the whole data chunk (one read-ahead stream),
        # each chunk converted and scaled in one pass: counts × (scale / 2^(bits−1))
        dtype = ("<f4" if self.bits == 32 else "<f8") if self.is_float else {16: "<i2", 32: "<i4"}[self.bits]
        mm = np.memmap(self.path, dtype=dtype, mode="r", offset=self._offset, shape=(self.frames, self.channels))
        per_count = self._scale if self.is_float else self._scale / float(1 << (self.bits - 1))
        for k in range(0, self.frames, chunk_frames):
            yield np.multiply(mm[k:k + chunk_frames].T, per_count, dtype=float)


def read_wav(path: str | Path, names: Sequence[str] | None = None, units: Sequence[str] | None = None,
             scales: Sequence[float] | None = None) -> tuple[np.ndarray, RecordingInfo]:
    """A whole WAV recording: (frames (channels, n) [V], [A], metadata)."""
    return WavReader(path, names, units, scales).read()


class WavWriter:
    """Write a 16-bit PCM WAV chunk by chunk (for tests and benchmarks of large files).

    ``scales`` are the physical values at full scale per channel; samples are clipped to
    the 16-bit range. The header is completed on :meth:`close`.
    """

    def __init__(self, path: str | Path, sample_rate_hz: int, scales: Sequence[float],
                 names: Sequence[str] | None = None, units: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.channels = len(scales)
        self.rate = int(sample_rate_hz)
        self._scale = np.asarray(scales, float)[:, None]
        self._frames = 0
        self._fh = open(self.path, "wb")
        self._fh.write(self._header(0))
        if names is not None:
            Path(str(self.path) + ".json").write_text(json.dumps({"channels": [
                {"name": n, "unit": (units[k] if units else ""), "scale": float(scales[k])}
                for k, n in enumerate(names)]}, indent=1))

    def _header(self, frames: int) -> bytes:
        data = frames * self.channels * 2
        return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt "
                + struct.pack("<IHHIIHH", 16, _PCM, self.channels, self.rate, self.rate * self.channels * 2,
                              self.channels * 2, 16)
                + b"data" + struct.pack("<I", data))

    def write(self, frames: np.ndarray) -> None:
        """Append frames (channels, n) in physical units."""
        counts = np.clip(np.round(frames / self._scale * 32768.0), -32768, 32767).astype("<i2")
        self._fh.write(np.ascontiguousarray(counts.T).tobytes())
        self._frames += frames.shape[1]

    def close(self) -> None:
        self._fh.seek(0)
        self._fh.write(self._header(self._frames))
        self._fh.close()

    def __enter__(self) -> "WavWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
