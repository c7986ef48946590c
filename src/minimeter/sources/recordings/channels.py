"""The channel map: which file channels feed the meter's voltage and current inputs.

Element ``k`` takes its voltage from one channel times the PT ratio and its current from
another times the CT ratio: ``volts = pt_ratio · v_file`` [V], ``amps = ct_ratio · i_file``
[A primary]. Text form (the CLI's ``--map``), elements separated by commas::

    U1:I1,U2:I2,U3:I3            # channel names (or 1-based numbers)
    V:I:pt=1:ct=2000             # a CT with a 2000:1 ratio recorded on its secondary
    -U1:I1                       # a leading '-' inverts a channel (a CT fitted backwards)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minimeter.sources.recordings._base import InvalidRecording, RecordingInfo, guess_unit, si_unit

MAP_HELP = "VCHAN:ICHAN[:pt=RATIO][:ct=RATIO] per element, comma-separated — e.g. U1:I1,U2:I2,U3:I3"


@dataclass(frozen=True)
class ElementChannels:
    """One element's inputs."""

    voltage: str
    current: str
    pt_ratio: float = 1.0
    ct_ratio: float = 1.0


@dataclass(frozen=True)
class ChannelMap:
    """Elements in order (element 1 first)."""

    elements: tuple[ElementChannels, ...]

    @staticmethod
    def parse(text: str) -> "ChannelMap":
        """The text form (see the module's docstring)."""
        elements = []
        for part in [p for p in str(text).split(",") if p.strip()]:
            fields = [f.strip() for f in part.split(":")]
            if len(fields) < 2 or not fields[0] or not fields[1]:
                raise InvalidRecording(f"channel map element {part!r} not understood — {MAP_HELP}")
            ratios = {"pt": 1.0, "ct": 1.0}
            for extra in fields[2:]:
                key, _, value = extra.partition("=")
                try:
                    if key.lower() not in ratios:
                        raise ValueError
                    ratios[key.lower()] = float(value)
                except ValueError:
                    raise InvalidRecording(f"{extra!r} in channel map element {part!r} not understood — {MAP_HELP}") from None
                if not (np.isfinite(ratios[key.lower()]) and ratios[key.lower()] != 0):
                    raise InvalidRecording(f"channel map element {part!r}: a ratio must be finite and non-zero")
            elements.append(ElementChannels(fields[0], fields[1], ratios["pt"], ratios["ct"]))
        if not elements:
            raise InvalidRecording(f"empty channel map — {MAP_HELP}")
        return ChannelMap(tuple(elements))

    @staticmethod
    def automatic(info: RecordingInfo, first_chunk: np.ndarray | None = None) -> "ChannelMap":
        """Pair the file's voltage channels with its current channels in order (by unit:
        V/volt/kV and A/ampere/kA; else by a name starting with V/U and I). With
        ``first_chunk``, a voltage channel whose rms is under 10 % of the largest is
        taken for a neutral-to-ground voltage and left out with its partner."""
        def kind(name: str, unit: str) -> str:
            si, _ = si_unit(unit)
            return si if si in ("V", "A") else guess_unit(name)
        kinds = [kind(n, u) for n, u in zip(info.channel_names, info.channel_units)]
        v_idx = [k for k, c in enumerate(kinds) if c == "V"]
        i_idx = [k for k, c in enumerate(kinds) if c == "A"]
        pairs = list(zip(v_idx, i_idx))
        if not pairs:
            raise InvalidRecording(
                f"{info.path}: cannot tell voltage from current channels ({', '.join(info.channel_names)}) — "
                f"give a channel map: {MAP_HELP}"
            )
        if first_chunk is not None and first_chunk.shape[1] and len(pairs) > 1:
            rms = np.sqrt(np.nanmean(first_chunk[[v for v, _ in pairs]] ** 2, axis=1))   # NaN: a gap
            pairs = [p for p, r in zip(pairs, rms) if r >= 0.1 * rms.max()]
        names = info.channel_names
        return ChannelMap(tuple(ElementChannels(names[v], names[i]) for v, i in pairs))

    def text(self) -> str:
        """The map in its text form."""
        def one(e: ElementChannels) -> str:
            extra = (f":pt={e.pt_ratio:g}" if e.pt_ratio != 1 else "") + (f":ct={e.ct_ratio:g}" if e.ct_ratio != 1 else "")
            return f"{e.voltage}:{e.current}{extra}"
        return ",".join(one(e) for e in self.elements)

    def resolve(self, info: RecordingInfo) -> "ResolvedMap":
        """Check the channels exist in ``info`` and fix their indices."""
        v_idx, i_idx, v_sign, i_sign = [], [], [], []
        for e in self.elements:
            for name, idx, sign in ((e.voltage, v_idx, v_sign), (e.current, i_idx, i_sign)):
                negative = name.startswith("-")
                idx.append(info.index_of(name[1:] if negative else name))
                sign.append(-1.0 if negative else 1.0)
        pt = np.array([e.pt_ratio for e in self.elements]) * np.array(v_sign)
        ct = np.array([e.ct_ratio for e in self.elements]) * np.array(i_sign)
        return ResolvedMap(self, np.array(v_idx), np.array(i_idx), pt[:, None], ct[:, None])


@dataclass(frozen=True)
class ResolvedMap:
    """A channel map bound to a recording's channel indices."""

    channel_map: ChannelMap
    voltage_index: np.ndarray
    current_index: np.ndarray
    volts_factor: np.ndarray      # (e, 1) PT ratio with sign
    amps_factor: np.ndarray       # (e, 1) CT ratio with sign

    @property
    def elements(self) -> int:
        return int(self.voltage_index.size)

    def split(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames (channels, n) → (volts (e, n) [V], amps (e, n) [A primary])."""
        return frames[self.voltage_index] * self.volts_factor, frames[self.current_index] * self.amps_factor
