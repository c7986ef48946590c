"""Synthetic electrical services and loads (SPEC §3.1, §3.3).

Every signal here is a sum of sinusoids at harmonics of the line frequency, each with a
piecewise-constant gain (a load profile): ``x(t) = Σ A·g(t)·cos(h·2πf·t + φ)``. From that
one description come

* chunks of samples of any length, for any duration, generated on the fly
  (:meth:`SyntheticSource.frames`) — memory does not grow with the duration;
* per-line-cycle quantities for the meter's phasor path (:meth:`SyntheticSource.cycles`);
* the exact energy ∫v·i dt over any interval, integrated analytically
  (:meth:`SyntheticSource.energy_wh`), the reference the meter is judged against.

Services: 1 phase 2 wire (120 V), split phase 120/240 V (legs 180° apart) and network
120/208 V (two legs of a wye, L2 lagging L1 by 120°). Loads: any power and power
factor, lead or lag, harmonics, on L1–N, L2–N or L1–L2, constant or following a profile,
negative power for generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import numpy as np

from minimeter.errors import InvalidLoad
from minimeter.meter.metrology import SECONDS_PER_HOUR, CycleBlock, CycleRuns
from minimeter.meter.power import with_phasors

SERVICE_KINDS = ("single", "split", "network")
CONNECTIONS = ("L1", "L2", "L1-L2")
RUNS_BLOCK_S = 7 * 86400.0      # the phasor path by segment: at most a week of cycles per block
RUNS_PER_PASS = 1 << 16         # … and the runs of several blocks computed in one pass (NumPy calls per profile)
_LEG_ANGLE_DEG = {"single": (0.0,), "split": (0.0, 180.0), "network": (0.0, -120.0)}


# --------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Profile:
    """A piecewise-constant value against time: ``values[k]`` from ``times_s[k]`` until
    ``times_s[k+1]`` (the last holds on). Before ``times_s[0]`` the value is 0. With
    ``period_s`` the pattern repeats (a fridge's on/off cycle)."""

    times_s: tuple[float, ...]
    values: tuple[float, ...]
    period_s: float | None = None

    def __post_init__(self) -> None:
        t = np.asarray(self.times_s, float)
        if t.size == 0 or t.size != len(self.values):
            raise InvalidLoad("a profile needs as many values as times, and at least one")
        if not np.all(np.isfinite(t)) or not np.all(np.isfinite(self.values)):
            raise InvalidLoad("profile times and values must be finite numbers")
        if np.any(np.diff(t) <= 0):
            raise InvalidLoad("profile times must increase strictly")
        if self.period_s is not None and (self.period_s <= 0 or t[-1] >= self.period_s or t[0] < 0):
            raise InvalidLoad("a periodic profile's times must lie in [0, period)")

    @staticmethod
    def constant(value: float) -> "Profile":
        return Profile((0.0,), (float(value),))

    @staticmethod
    def on_off(on_s: float, off_s: float, value: float, start_s: float = 0.0) -> "Profile":
        """Cycling: ``value`` for ``on_s``, 0 for ``off_s``, repeating (first on at ``start_s``)."""
        period = on_s + off_s
        start = start_s % period
        if start + on_s <= period:
            times, values = [start, start + on_s], [value, 0.0]
            if start > 0:
                times, values = [0.0] + times, [0.0] + values
        else:
            times, values = [0.0, start + on_s - period, start], [value, 0.0, value]
        times_v = [(t, v) for t, v in zip(times, values) if t < period]
        return Profile(tuple(t for t, _ in times_v), tuple(v for _, v in times_v), period)

    @staticmethod
    def from_csv(path: str) -> "Profile":
        """Read ``time_s,watts`` rows (a header line is allowed). S15.1: the file must be
        a regular file of at most 16 MiB of UTF-8 text; times lie in 0 … 3.1536e8 s (ten
        years) and values within ±1 MW."""
        from minimeter.sources.recordings._base import check_file     # (recordings import nothing of ours)

        max_bytes, max_time_s, max_w = 16 << 20, 3650 * 86400.0, 1e6
        check_file(path, max_bytes, InvalidLoad)
        rows: list[tuple[float, float]] = []
        try:
            with open(path, encoding="utf-8") as fh:
                for line_no, line in enumerate(fh, 1):
                    text = line.split("#", 1)[0].strip()
                    if not text:
                        continue
                    cells = [c.strip() for c in text.split(",")]
                    try:
                        t, w = float(cells[0]), float(cells[1])
                    except (ValueError, IndexError):
                        if line_no == 1 or not rows:
                            continue  # header
                        raise InvalidLoad(f"{path}:{line_no}: expected 'time_s,watts', got {line.strip()[:80]!r}") from None
                    if not (0.0 <= t <= max_time_s and abs(w) <= max_w):
                        raise InvalidLoad(f"{path}:{line_no}: {t:g} s, {w:g} W is outside 0 … {max_time_s:g} s, "
                                          f"±{max_w:g} W")
                    rows.append((t, w))
        except UnicodeDecodeError as exc:
            raise InvalidLoad(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
        if not rows:
            raise InvalidLoad(f"{path}: no 'time_s,watts' rows")
        return Profile(tuple(r[0] for r in rows), tuple(r[1] for r in rows))

    def at(self, t_s: np.ndarray) -> np.ndarray:
        """The value at each time."""
        t = np.asarray(t_s, float)
        if self.period_s is not None:
            idx = self._locate(t)[1]
        else:
            idx = np.searchsorted(np.asarray(self.times_s), t, side="right")
        before = self.values[-1] if self.period_s is not None else 0.0   # a periodic profile wraps
        vals = np.concatenate(([before], np.asarray(self.values, float)))
        return vals[idx]

    def integral(self, t_s: np.ndarray) -> np.ndarray:
        """∫₀ᵗ value dt at each time [value·s] — exact for a piecewise-constant profile."""
        t = np.asarray(t_s, float)
        times = np.asarray(self.times_s, float)
        vals = np.asarray(self.values, float)
        if self.period_s is not None:
            period = self.period_s
            ext_t = np.concatenate((times, [period]))
            # value on [0, times[0]) of a periodic profile is the last value (it wraps)
            seg_t = np.concatenate(([0.0], ext_t))
            seg_v = np.concatenate(([vals[-1]], vals))
            widths = np.diff(seg_t)
            cum = np.concatenate(([0.0], np.cumsum(widths * seg_v)))
            per_period = cum[-1]
            whole, frac = np.divmod(t, period)
            k = np.clip(np.searchsorted(seg_t, frac, side="right") - 1, 0, seg_v.size - 1)
            return whole * per_period + cum[k] + (frac - seg_t[k]) * seg_v[k]
        seg_t = times
        cum = np.concatenate(([0.0], np.cumsum(np.diff(seg_t) * vals[:-1])))
        k = np.searchsorted(seg_t, t, side="right") - 1
        inside = k >= 0
        kk = np.maximum(k, 0)
        return np.where(inside, cum[kk] + (t - seg_t[kk]) * vals[kk], 0.0)

    def window_mean(self, t_s: np.ndarray, window_s: np.ndarray, mid_value: np.ndarray | None = None) -> np.ndarray:
        """The mean value over each window [t, t + w) [value]: the value itself where no
        breakpoint falls inside the window (so every cycle between two breakpoints gets
        the same number, bit for bit, however far from t = 0), else from the integral
        (taken only on those windows). ``mid_value``: :meth:`at` ``t + w/2`` if the caller has it."""
        t = np.asarray(t_s, float)
        end = t + window_s
        value = self.at(t + 0.5 * window_s) if mid_value is None else mid_value
        spread = np.flatnonzero(self._piece(t) != self._piece(np.nextafter(end, -np.inf)))
        if not spread.size:
            return value
        out = np.array(np.broadcast_to(value, t.shape), float)
        w = np.broadcast_to(window_s, t.shape)[spread]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[spread] = (self.integral(end[spread]) - self.integral(t[spread])) / w
        return out

    def _piece(self, t: np.ndarray) -> np.ndarray:
        """Which constant piece each time falls in (periods counted apart)."""
        times = np.asarray(self.times_s, float)
        if self.period_s is None:
            return np.searchsorted(times, t, side="right")
        whole, idx = self._locate(t)
        return whole * (times.size + 1) + idx

    def _locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whole periods, ``searchsorted(times, t mod period, 'right')``) of each time of a
        periodic profile, exactly as from ``np.divmod`` — which is slow on long times
        (``fmod``), so the remainder is taken by a division and a product instead, and
        by ``np.divmod`` only where that lands within a few ulps of a piece's edge (the
        two agree everywhere else: they differ by at most two ulps of the time)."""
        times, period = np.asarray(self.times_s, float), self.period_s
        if t.ndim == 0 or t.size == 0:
            whole, frac = np.divmod(t, period)
            return whole, np.searchsorted(times, frac, side="right")
        whole = np.floor(t / period)
        frac = t - whole * period
        idx = np.searchsorted(times, frac, side="right")
        ulps = 8.0 * np.spacing(max(float(np.max(np.abs(t))), period))     # NaN: every time is redone
        lo, hi = np.concatenate(([0.0], times))[idx], np.concatenate((times, [period]))[idx]
        near = np.flatnonzero(~((frac - lo >= ulps) & (hi - frac >= ulps)))
        if near.size:
            whole[near], frac_near = np.divmod(t[near], period)
            idx[near] = np.searchsorted(times, frac_near, side="right")
        return whole, idx

    def breakpoints(self, t1: float, t2: float) -> np.ndarray:
        """Times in (t1, t2) where the value may change."""
        times = np.asarray(self.times_s, float)
        if self.period_s is None:
            return times[(times > t1) & (times < t2)]
        k0 = math.floor(t1 / self.period_s)
        k1 = math.floor(t2 / self.period_s)
        allt = (np.arange(k0, k1 + 1)[:, None] * self.period_s + times[None, :]).ravel()
        return allt[(allt > t1) & (allt < t2)]

    def scaled(self, factor: float) -> "Profile":
        return replace(self, values=tuple(v * factor for v in self.values))


# --------------------------------------------------------------------------- signals
@dataclass(frozen=True)
class Component:
    """``amplitude · gain(t) · cos(order · 2πf t + phase)``; peak amplitude [V] or [A]."""

    amplitude: float
    order: int
    phase_rad: float
    gain: Profile | None = None      # None: constant 1

    def scaled(self, factor: float) -> "Component":
        return replace(self, amplitude=self.amplitude * factor)


Signal = tuple[Component, ...]


def scale_signal(signal: Signal, factor: float) -> Signal:
    return tuple(c.scaled(factor) for c in signal if c.amplitude * factor != 0.0)


def add_signals(*signals: Signal) -> Signal:
    """The sum of signals, with constant-gain components of equal order merged."""
    merged: dict[int, complex] = {}
    scheduled: list[Component] = []
    for sig in signals:
        for c in sig:
            if c.gain is None:
                merged[c.order] = merged.get(c.order, 0j) + c.amplitude * complex(math.cos(c.phase_rad), math.sin(c.phase_rad))
            else:
                scheduled.append(c)
    out = [Component(abs(z), h, math.atan2(z.imag, z.real)) for h, z in sorted(merged.items()) if abs(z) > 0]
    return tuple(out + scheduled)


def evaluate(signal: Signal, t_s: np.ndarray, frequency_hz: float) -> np.ndarray:
    """Samples of ``signal`` at times ``t_s`` [s]."""
    out = np.zeros_like(t_s, dtype=float)
    for c in signal:
        turns = np.mod(c.order * frequency_hz * t_s, 1.0)
        wave = np.cos(2.0 * np.pi * turns + c.phase_rad)
        if c.gain is None:
            out += c.amplitude * wave
        else:
            out += c.amplitude * c.gain.at(t_s) * wave
    return out


def _cos_integral(k: int, phase: float, omega: float, edges: np.ndarray) -> np.ndarray:
    """∫ cos(k·ω t + phase) dt over each piece between consecutive ``edges`` (the sine
    taken once per edge: an edge ends one piece and starts the next)."""
    if k == 0:
        return (edges[1:] - edges[:-1]) * math.cos(phase)
    s = np.sin(k * omega * edges + phase)
    return (s[1:] - s[:-1]) / (k * omega)


def piece_integrals(a: Signal, b: Signal, frequency_hz: float, edges: np.ndarray) -> np.ndarray:
    """∫ a(t)·b(t) dt over each piece between consecutive ``edges`` [s], exactly when
    the gains are constant on each piece (edges include their breakpoints)."""
    omega = 2.0 * math.pi * frequency_hz
    mid = 0.5 * (edges[:-1] + edges[1:])
    total = np.zeros(mid.size)
    at: dict[int, np.ndarray] = {}           # each profile's value on each piece, once
    cos: dict[tuple[int, float], np.ndarray] = {}   # each (order, phase)'s integral once (loads of one PF share it)

    def gain(c: Component) -> np.ndarray | float:
        if c.gain is None:
            return 1.0
        if id(c.gain) not in at:
            at[id(c.gain)] = c.gain.at(mid)
        return at[id(c.gain)]

    def integral(k: int, phase: float) -> np.ndarray:
        if (k, phase) not in cos:
            cos[k, phase] = _cos_integral(k, phase, omega, edges)
        return cos[k, phase]

    gains_b = [gain(cb) for cb in b]
    for ca in a:
        ga = gain(ca)
        for cb, gb in zip(b, gains_b):
            amp = 0.5 * ca.amplitude * cb.amplitude * ga * gb
            total += amp * (integral(ca.order - cb.order, ca.phase_rad - cb.phase_rad)
                            + integral(ca.order + cb.order, ca.phase_rad + cb.phase_rad))
    return total


def _times(profiles: Sequence[Profile | None], t1: float, t2: float, *ends: float) -> np.ndarray:
    """The sorted distinct breakpoints in (t1, t2) of ``profiles`` (each profile once), with ``ends``."""
    once = {id(p): p for p in profiles if p is not None}
    cuts = np.concatenate([np.asarray(ends, float), *(p.breakpoints(t1, t2) for p in once.values())])
    return _distinct(cuts)


def _distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` by a sort (the inputs here are long and mostly distinct)."""
    v = np.sort(values)
    return v[np.concatenate(([True], v[1:] != v[:-1]))] if v.size else v


def product_integral(a: Signal, b: Signal, frequency_hz: float, t1: float, t2: float) -> float:
    """∫ a(t)·b(t) dt over [t1, t2], exactly (piecewise over the gains' breakpoints)."""
    edges = _times([c.gain for c in a + b], t1, t2, t1, t2)
    return float(piece_integrals(a, b, frequency_hz, edges).sum())


# --------------------------------------------------------------------------- service & loads
@dataclass(frozen=True)
class Harmonic:
    """A harmonic of a load current or of the supply voltage: ``magnitude`` is a
    fraction of the fundamental; ``phase_deg`` is its angle at its own frequency
    relative to ``order ×`` the fundamental's angle (0 = "in phase")."""

    order: int
    magnitude: float
    phase_deg: float = 0.0

    def __post_init__(self) -> None:
        if int(self.order) != self.order or self.order < 2:
            raise InvalidLoad(f"harmonic order must be an integer ≥ 2, got {self.order}")
        if not math.isfinite(self.magnitude) or self.magnitude < 0:
            raise InvalidLoad(f"harmonic magnitude must be ≥ 0, got {self.magnitude}")


@dataclass(frozen=True)
class Service:
    """The supply: ``kind`` one of single, split, network; ``volts`` L–N rms [V];
    ``frequency_hz`` [Hz]; ``voltage_harmonics`` present on every leg."""

    kind: str = "split"
    volts: float = 120.0
    frequency_hz: float = 60.0
    voltage_harmonics: tuple[Harmonic, ...] = ()
    phase_deg: float = 0.0             # angle of L1 at t = 0

    def __post_init__(self) -> None:
        if self.kind not in SERVICE_KINDS:
            raise InvalidLoad(f"service kind {self.kind!r} unknown — valid: {', '.join(SERVICE_KINDS)}")
        if not (math.isfinite(self.volts) and self.volts >= 0):
            raise InvalidLoad(f"service voltage must be ≥ 0 V, got {self.volts}")
        if not (math.isfinite(self.frequency_hz) and 1.0 <= self.frequency_hz <= 1000.0):
            raise InvalidLoad(f"service frequency must be a line frequency in hertz, got {self.frequency_hz}")

    @property
    def legs(self) -> tuple[str, ...]:
        return ("L1",) if self.kind == "single" else ("L1", "L2")

    def leg_angle_rad(self, leg: str) -> float:
        return math.radians(self.phase_deg + _LEG_ANGLE_DEG[self.kind][self.legs.index(leg)])

    def leg_voltage(self, leg: str) -> Signal:
        """The leg's voltage to neutral."""
        if leg not in self.legs:
            raise InvalidLoad(f"a {self.kind} service has no leg {leg} — its legs: {', '.join(self.legs)}")
        theta = self.leg_angle_rad(leg)
        peak = self.volts * math.sqrt(2)
        comps = [Component(peak, 1, theta)]
        comps += [Component(peak * h.magnitude, h.order, h.order * theta + math.radians(h.phase_deg))
                  for h in self.voltage_harmonics if h.magnitude > 0]
        return tuple(comps)

    def connection_voltage(self, connection: str) -> tuple[float, float]:
        """(rms [V], angle [rad]) of the fundamental across a load's connection."""
        z = self._phasor(connection)
        return abs(z), math.atan2(z.imag, z.real)

    def _phasor(self, connection: str) -> complex:
        if connection not in CONNECTIONS:
            raise InvalidLoad(f"load connection {connection!r} unknown — valid: {', '.join(CONNECTIONS)}")
        if connection == "L1-L2":
            if self.kind == "single":
                raise InvalidLoad("a 1-phase 2-wire service has no L2: a 240 V load needs split or network")
            return self._phasor("L1") - self._phasor("L2")
        theta = self.leg_angle_rad(connection)
        return self.volts * complex(math.cos(theta), math.sin(theta))


@dataclass(frozen=True)
class Load:
    """A load: ``watts`` of fundamental active power at the service voltage (negative for
    generation), at ``power_factor`` (lagging unless ``leading``), on ``connection``
    ('L1', 'L2' or 'L1-L2'), with current ``harmonics``; or following ``profile``
    (watts against time) instead of a constant ``watts``."""

    watts: float = 0.0
    power_factor: float = 1.0
    leading: bool = False
    connection: str = "L1"
    harmonics: tuple[Harmonic, ...] = ()
    profile: Profile | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.power_factor) and 0.0 < self.power_factor <= 1.0):
            raise InvalidLoad(f"power factor must be in (0, 1], got {self.power_factor} (use leading=True for lead)")
        if not math.isfinite(self.watts):
            raise InvalidLoad(f"load watts must be finite, got {self.watts}")
        if self.connection not in CONNECTIONS:
            raise InvalidLoad(f"load connection {self.connection!r} unknown — valid: {', '.join(CONNECTIONS)}")

    def current(self, service: Service) -> Signal:
        """The load's current (flowing out of the first conductor of its connection)."""
        v_rms, v_angle = service.connection_voltage(self.connection)
        if v_rms == 0:
            return ()
        phi = math.acos(self.power_factor) * (1.0 if self.leading else -1.0)
        watts = 1.0 if self.profile is not None else self.watts
        peak = watts / (v_rms * self.power_factor) * math.sqrt(2)
        theta = v_angle + phi
        comps = [Component(peak, 1, theta, self.profile)]
        comps += [Component(peak * h.magnitude, h.order, h.order * v_angle + math.radians(h.phase_deg), self.profile)
                  for h in self.harmonics if h.magnitude > 0]
        return tuple(c for c in comps if c.amplitude != 0.0)


def conductor_currents(service: Service, loads: Sequence[Load]) -> dict[str, Signal]:
    """Currents on the service conductors L1, L2 (towards the loads) and N (back from them)."""
    per = {"L1": [], "L2": [], "N": []}
    for load in loads:
        i = load.current(service)
        if load.connection == "L1-L2":
            per["L1"].append(i)
            per["L2"].append(scale_signal(i, -1.0))
        else:
            per[load.connection].append(i)
            per["N"].append(scale_signal(i, -1.0))
    return {k: add_signals(*v) for k, v in per.items()}


# --------------------------------------------------------------------------- the source
@dataclass(frozen=True)
class Frames:
    """One chunk of samples: ``volts`` and ``amps`` shaped (elements, n)."""

    start_s: float
    sample_rate_hz: float
    volts: np.ndarray
    amps: np.ndarray

    @property
    def count(self) -> int:
        return int(self.volts.shape[1])


@dataclass(frozen=True)
class SyntheticSource:
    """What the meter's terminals see: a voltage and a CT current signal per element.

    ``noise_v_rms`` / ``noise_a_rms`` add white Gaussian noise to the samples (not to the
    phasor path, nor to the analytic energy, whose expectation it does not change).
    """

    frequency_hz: float
    volts: tuple[Signal, ...]
    amps: tuple[Signal, ...]
    noise_v_rms: float = 0.0
    noise_a_rms: float = 0.0
    seed: int = 0
    labels: tuple[str, ...] = field(default=())

    @property
    def elements(self) -> int:
        return len(self.volts)

    # ---------------------------------------------------------------- samples
    def frames(
        self,
        duration_s: float,
        sample_rate_hz: float,
        chunk_frames: int = 65536,
        start_index: int = 0,
    ) -> Iterator[Frames]:
        """Chunks of samples covering ``duration_s`` at ``sample_rate_hz``, generated on
        the fly (memory is one chunk, whatever the duration)."""
        if not (sample_rate_hz > 0 and math.isfinite(sample_rate_hz)):
            raise InvalidLoad(f"sample rate must be positive, got {sample_rate_hz}")
        if chunk_frames < 1:
            raise InvalidLoad("chunk_frames must be at least 1")
        total = int(round(duration_s * sample_rate_hz))
        rng = np.random.default_rng(self.seed)
        for k0 in range(start_index, start_index + total, chunk_frames):
            n = min(chunk_frames, start_index + total - k0)
            yield self.frames_at(k0, n, sample_rate_hz, rng)

    def frames_at(self, first_index: int, count: int, sample_rate_hz: float,
                  rng: np.random.Generator | None = None) -> Frames:
        """Samples ``first_index … first_index+count-1`` (time ``index / rate``)."""
        t = (first_index + np.arange(count)) / sample_rate_hz
        e = self.elements
        volts = np.empty((e, count))
        amps = np.empty((e, count))
        for k in range(e):
            volts[k] = evaluate(self.volts[k], t, self.frequency_hz)
            amps[k] = evaluate(self.amps[k], t, self.frequency_hz)
        if rng is not None and self.noise_v_rms > 0:
            volts += rng.normal(0.0, self.noise_v_rms, volts.shape)
        if rng is not None and self.noise_a_rms > 0:
            amps += rng.normal(0.0, self.noise_a_rms, amps.shape)
        return Frames(first_index / sample_rate_hz, sample_rate_hz, volts, amps)

    # ---------------------------------------------------------------- analytic
    def energy_wh(self, t1_s: float, t2_s: float) -> np.ndarray:
        """Exact ∫v·i dt per element over [t1, t2] [Wh]."""
        return np.array([
            product_integral(self.volts[k], self.amps[k], self.frequency_hz, t1_s, t2_s)
            for k in range(self.elements)
        ]) / SECONDS_PER_HOUR

    def delivered_energy_wh(self, t1_s: float, t2_s: float) -> float:
        """Energy a uni-directional meter should register over [t1, t2] [Wh]: the net
        energy of each stretch between load changes, counted where it is positive."""
        edges = np.concatenate(([t1_s], self.breakpoints(t1_s, t2_s), [t2_s]))
        net = sum(piece_integrals(self.volts[k], self.amps[k], self.frequency_hz, edges) for k in range(self.elements))
        return float(np.maximum(net, 0.0).sum()) / SECONDS_PER_HOUR

    def breakpoints(self, t1_s: float, t2_s: float) -> np.ndarray:
        """Sorted times in (t1, t2) where some profile of the source may change [s]."""
        return _times([c.gain for sig in self.volts + self.amps for c in sig], t1_s, t2_s)

    # ---------------------------------------------------------------- phasor path
    def cycles(self, duration_s: float, cycles_per_block: int = 1 << 16) -> Iterator[CycleBlock]:
        """Per-line-cycle quantities for :meth:`Meter.feed_cycles` over ``duration_s``.

        Cycles are whole periods from t = 0. Each cycle's power is its exact mean
        (profiles integrated over the cycle); rms values take the gains at mid-cycle.
        """
        period = 1.0 / self.frequency_hz
        total = int(math.floor(duration_s * self.frequency_hz + 1e-9))
        for c0 in range(0, total, cycles_per_block):
            m = min(cycles_per_block, total - c0)
            yield self.cycle_block(c0, m)
        rest = duration_s - total * period
        if rest > 1e-12 * max(duration_s, 1.0):
            yield self._partial_cycle(total * period, rest)

    def cycle_runs(self, duration_s: float, cycles_per_block: int | None = None,
                   runs_per_block: int = 4096) -> Iterator[CycleRuns]:
        """The cycles of :meth:`cycles` by segment, for :meth:`Meter.feed_cycles`: each
        stretch of identical cycles between two breakpoints of the profiles is one run
        (its first cycle and a count). The cycles within one cycle of a breakpoint stand
        alone, computed as :meth:`cycles` computes them; every other cycle of a stretch
        equals its first bit for bit (:meth:`Profile.window_mean`). A block holds at most
        ``runs_per_block`` runs and ``cycles_per_block`` cycles (default: a week's,
        :data:`RUNS_BLOCK_S`, so one block's energy stays within what a meter takes in one call)."""
        f = self.frequency_hz
        cycles_per_block = cycles_per_block or max(int(RUNS_BLOCK_S * f), 1)
        period = 1.0 / f
        total = int(math.floor(duration_s * f + 1e-9))
        near = np.floor(self.breakpoints(0.0, duration_s) * f).astype(np.int64)
        edges = _run_edges(near, total, int(cycles_per_block))
        first, count = edges[:-1], np.diff(edges)
        cuts = np.union1d(np.arange(0, first.size, runs_per_block),
                          np.flatnonzero(np.diff(first // int(cycles_per_block))) + 1)
        bounds = [*cuts.tolist(), first.size]
        for a, b in _passes(bounds, RUNS_PER_PASS):
            rows = first[bounds[a]:bounds[b]]
            values = self._values(rows * period, np.full(rows.size, period))
            for lo, hi in zip(bounds[a:b], bounds[a + 1:b + 1]):
                m = hi - lo
                block = values.block(lo - bounds[a], hi - bounds[a], np.full(m, f), np.zeros(m, bool))
                yield CycleRuns(block, count[lo:hi].astype(np.int64))
        rest = duration_s - total * period
        if rest > 1e-12 * max(duration_s, 1.0):
            yield CycleRuns(self._partial_cycle(total * period, rest), np.ones(1, np.int64))

    def cycle_block(self, first_cycle: int, count: int) -> CycleBlock:
        """Cycles ``first_cycle … first_cycle+count-1``."""
        period = 1.0 / self.frequency_hz
        k = first_cycle + np.arange(count)
        start = k * period
        return self._block(start, np.full(count, period), np.full(count, self.frequency_hz), np.zeros(count, bool))

    def _partial_cycle(self, start_s: float, length_s: float) -> CycleBlock:
        block = self._block(np.array([start_s]), np.array([length_s]), np.array([np.nan]), np.ones(1, bool))
        energy = self.energy_wh(start_s, start_s + length_s)[:, None]
        return replace(block, energy_wh=energy, power_w=energy * SECONDS_PER_HOUR / length_s)

    def _block(self, start: np.ndarray, duration: np.ndarray, freq: np.ndarray, partial: np.ndarray) -> CycleBlock:
        return self._values(start, duration).block(0, start.size, freq, partial)

    def _values(self, start: np.ndarray, duration: np.ndarray) -> "_CycleValues":
        """The quantities of cycles starting at ``start`` [s], lasting ``duration`` [s]."""
        e = self.elements
        gains = _Gains(start, duration)
        power = np.empty((e, start.size))
        vrms = np.empty((e, start.size))
        arms = np.empty((e, start.size))
        pairs = []                                  # the phasors, for the S12.1 quantities (meter/power.py)
        for j in range(e):
            v_ph = _phasors(self.volts[j], gains)
            i_mid = _phasors(self.amps[j], gains)
            i_mean = _phasors(self.amps[j], gains, mean=True)
            pairs.append((v_ph, i_mean))
            p = np.zeros(start.size)
            for h, vz in v_ph.items():
                if h in i_mean:
                    p += 0.5 * np.real(vz * np.conj(i_mean[h]))
            power[j] = p
            vrms[j] = np.sqrt(sum(0.5 * np.abs(z) ** 2 for z in v_ph.values())) if v_ph else 0.0
            arms[j] = np.sqrt(sum(0.5 * np.abs(z) ** 2 for z in i_mid.values())) if i_mid else 0.0
        return _CycleValues(start, duration, power, vrms, arms, pairs)


@dataclass(frozen=True)
class _CycleValues:
    """The quantities of consecutive cycles, computed in one pass (every value is the
    cycle's own, whatever the pass), cut into :class:`CycleBlock` s by :meth:`block`."""

    start_s: np.ndarray
    duration_s: np.ndarray
    power_w: np.ndarray
    volts_rms: np.ndarray
    amps_rms: np.ndarray
    pairs: list[tuple[dict[int, np.ndarray], dict[int, np.ndarray]]]   # per element (voltage, current) phasors

    def block(self, lo: int, hi: int, frequency_hz: np.ndarray, partial: np.ndarray) -> CycleBlock:
        """Cycles ``lo … hi-1`` of the pass, with their frequency and partial flags."""
        def cut(x: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(x[..., lo:hi])

        power, duration = cut(self.power_w), cut(self.duration_s)
        pairs = [({h: z[lo:hi] for h, z in v.items()}, {h: z[lo:hi] for h, z in i.items()}) for v, i in self.pairs]
        return with_phasors(CycleBlock(
            start_s=cut(self.start_s), duration_s=duration, frequency_hz=frequency_hz, partial=partial,
            power_w=power, energy_wh=power * duration / SECONDS_PER_HOUR,
            volts_rms=cut(self.volts_rms), amps_rms=cut(self.amps_rms),
        ), pairs)


def _passes(bounds: list[int], rows: int) -> Iterator[tuple[int, int]]:
    """Consecutive blocks (``bounds``: their first rows, then the end) grouped into
    passes of at most ``rows`` rows (a longer block alone): (first block, end block)."""
    a = 0
    while a < len(bounds) - 1:
        b = a + 1
        while b < len(bounds) - 1 and bounds[b + 1] - bounds[a] <= rows:
            b += 1
        yield a, b
        a = b


def _run_edges(near: np.ndarray, total: int, block: int) -> np.ndarray:
    """Where runs of cycles start, and ``total``: the distinct cycle indices in
    [0, total] among 0, every ``block``-th cycle, and ``k - 1 … k + 2`` for each ``k``
    of the sorted ``near`` (cycles ``k - 1 … k + 1`` stand alone; a run starts after)."""
    near = near[np.concatenate(([True], near[1:] != near[:-1]))] if near.size else near
    alone = (near[:, None] + np.arange(-1, 3)).ravel()
    alone = alone[(alone >= 0) & (alone <= total)]
    if np.any(alone[1:] < alone[:-1]):                  # breakpoints closer than four cycles
        alone = np.sort(alone)
    starts = np.append(np.arange(0, total, block), total)
    edges = np.insert(alone, np.searchsorted(alone, starts), starts)
    return edges[np.concatenate(([True], edges[1:] != edges[:-1]))]


class _Gains:
    """Each profile's gain on cycles starting at ``start_s`` and lasting ``duration_s``:
    :meth:`at` mid-cycle and :meth:`mean` over the cycle, each computed once per profile
    (a load's fundamental and harmonics, and a 240 V load's current on both elements,
    share one profile), the mean from the mid-cycle value (:meth:`Profile.window_mean`)."""

    def __init__(self, start_s: np.ndarray, duration_s: np.ndarray) -> None:
        self.start_s, self.duration_s = start_s, duration_s
        self.mid_s = start_s + 0.5 * duration_s
        self._at: dict[int, np.ndarray] = {}
        self._mean: dict[int, np.ndarray] = {}

    def at(self, profile: Profile) -> np.ndarray:
        key = id(profile)
        if key not in self._at:
            self._at[key] = profile.at(self.mid_s)
        return self._at[key]

    def mean(self, profile: Profile) -> np.ndarray:
        key = id(profile)
        if key not in self._mean:
            self._mean[key] = profile.window_mean(self.start_s, self.duration_s, self.at(profile))
        return self._mean[key]


def _phasors(signal: Signal, gains: _Gains, mean: bool = False) -> dict[int, np.ndarray]:
    """Per harmonic order, the peak phasor of ``signal`` on each cycle of ``gains``, each
    component's profile taken mid-cycle, or with ``mean`` its mean over the cycle."""
    out: dict[int, np.ndarray] = {}
    for c in signal:
        z = c.amplitude * complex(math.cos(c.phase_rad), math.sin(c.phase_rad))
        if c.gain is None:
            g = 1.0
        else:
            g = gains.mean(c.gain) if mean else gains.at(c.gain)
        out[c.order] = out.get(c.order, 0j) + z * g
    return {h: np.broadcast_to(np.asarray(z, complex), gains.mid_s.shape) for h, z in out.items()}


# --------------------------------------------------------------------------- ideal wiring
def ideal_source(
    service: Service,
    loads: Sequence[Load],
    elements: int,
    *,
    noise_v_rms: float = 0.0,
    noise_a_rms: float = 0.0,
    seed: int = 0,
) -> SyntheticSource:
    """A correctly installed meter: L1 (and L2) landed on their legs, CT1 on L1's conductor
    and CT2 on L2's, each with its arrow towards the source (SPEC S3.2)."""
    if elements == 2 and service.kind == "single":
        raise InvalidLoad("a dual-element meter needs a split-phase or network service (L1, L2, N)")
    currents = conductor_currents(service, loads)
    legs = ("L1", "L2")[:elements]
    if elements == 1 and any(load.connection != "L1" for load in loads):
        raise InvalidLoad("a single-element meter measures L1 only: every load must be on 'L1'")
    return SyntheticSource(
        frequency_hz=service.frequency_hz,
        volts=tuple(service.leg_voltage(leg) for leg in legs),
        amps=tuple(currents[leg] for leg in legs),
        noise_v_rms=noise_v_rms,
        noise_a_rms=noise_a_rms,
        seed=seed,
        labels=tuple(f"{leg}/CT{k + 1}" for k, leg in enumerate(legs)),
    )


# --------------------------------------------------------------------------- the demo household
def household_day() -> tuple[Service, tuple[Load, ...]]:
    """A 24-hour household on a 120/240 V split-phase service: always-on electronics,
    a cycling fridge, lighting, cooking (range and microwave), a 240 V dryer. Every
    profile repeats: run longer than a day, it is the same day again (15,450 Wh each)."""
    hour = 3600.0

    def window(*spans: tuple[float, float, float]) -> Profile:
        """(start h, end h, watts) spans of each day → a profile repeating daily."""
        times, values = [0.0], [0.0]
        for start, end, watts in sorted(spans):
            times += [start * hour, end * hour]
            values += [watts, 0.0]
        pairs = sorted(dict(zip(times, values)).items())
        return Profile(tuple(t for t, _ in pairs), tuple(v for _, v in pairs), period_s=24 * hour)

    service = Service("split", 120.0, 60.0)
    loads = (
        Load(120.0, 0.9, connection="L1", harmonics=(Harmonic(3, 0.30), Harmonic(5, 0.15)),
             name="electronics (always on)"),
        Load(power_factor=0.8, connection="L2", profile=Profile.on_off(15 * 60, 25 * 60, 150.0, 5 * 60),
             name="fridge (15 min on / 25 min off)"),
        Load(power_factor=0.95, connection="L1", profile=window((6.0, 8.0, 60.0), (18.0, 23.0, 300.0)),
             name="lighting"),
        Load(power_factor=1.0, connection="L1-L2", profile=window((7.0, 7.0 + 20 / 60, 3000.0), (18.0, 19.0, 3000.0)),
             name="range 240 V (cooking)"),
        Load(power_factor=0.9, connection="L2", profile=window((12.0, 12.5, 1200.0)),
             harmonics=(Harmonic(3, 0.20),), name="microwave"),
        Load(power_factor=0.97, connection="L1-L2", profile=window((14.0, 15.0, 5000.0)),
             name="dryer 240 V"),
    )
    return service, loads
