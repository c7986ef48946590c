"""Beyond kWh (SPEC S12.1): IEEE Std 1459 powers and IEC 61000-4-7 harmonics, per element.

A separate pass from the kWh kernel (:mod:`minimeter.meter._kernels`): the meter's
register never depends on it, and a meter built without ``quantities=True`` never runs it.

Definitions (IEEE Std 1459-2010, single-phase, per element; rms phasors V₁, I₁ of the
fundamental, V and I the true rms values):

====================  ==============================================================
P                     mean of v·i over the cycle or window [W]
P₁, Q₁                Re and Im of V₁·conj(I₁) [W], [var] — Q₁ > 0 lagging (inductive)
S₁                    |V₁|·|I₁| [VA]
S                     V·I [VA]
N                     √(S² − P²), non-active power [var]
S_N                   √(S² − S₁²), non-fundamental apparent power [VA]
displacement PF       P₁ / S₁;  true PF  P / S
THD_V, THD_I          IEC 61000-4-7 group THD: √(Σ_{n=2}^{40} G_n²) / G₁ [%]
====================  ==============================================================

The window is IEC 61000-4-30's: 10 line cycles at 50 Hz, 12 at 60 Hz (whichever the
window's first cycle is nearer), a rectangular DFT over exactly those cycles (5 Hz lines);
harmonic group ``n`` (IEC 61000-4-7 §5.6) adds the lines within ± half a harmonic of
``n``, the two lines at ± half weighted ½. Phases are each component's angle at its own
frequency relative to ``n ×`` the angle of the element's fundamental voltage [deg].

Two ways in, one set of definitions (:func:`ieee1459`):

* :func:`window_quantities` — from one window of samples (the sample path);
* :func:`phasor_quantities` — from rms phasors per harmonic order (the phasor path,
  :class:`minimeter.sources.service.SyntheticSource`'s cycles).

:func:`cycle_fundamentals` is the per-cycle pass of the sample path (compiled): the
fundamental phasors of every line cycle, fitted by least squares to a sinusoid of the
cycle's own period (exact for a sinusoid whatever the samples per cycle), and the mean
square voltage of each half cycle (what the dip and swell judgement needs, S12.3).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numba
import numpy as np

from minimeter.meter.metrology import CycleBlock

MAX_ORDER = 40                      # harmonics to the 40th (IEC 61000-4-7 / 61000-4-30 class A)
WINDOW_CYCLES_50HZ = 10             # IEC 61000-4-30: 10 cycles at 50 Hz, 12 at 60 Hz (≈ 200 ms)
WINDOW_CYCLES_60HZ = 12
PHASE_FLOOR = 1e-9                  # a component under 1e-9 of the element's largest has no phase (NaN)
WINDOW_SPLIT_HZ = 55.0              # a window starting on a cycle above this is a 60 Hz window


_ORDERS = tuple(range(1, MAX_ORDER + 1))


def window_cycles(frequency_hz: float) -> int:
    """Cycles in an IEC 61000-4-30 window: 10 for a 50 Hz system, 12 for 60 Hz."""
    return WINDOW_CYCLES_60HZ if frequency_hz > WINDOW_SPLIT_HZ else WINDOW_CYCLES_50HZ


@dataclass(frozen=True)
class HarmonicTable:
    """Harmonic magnitudes (rms) and phases per element, orders 1…40 (S12.1).

    ``volts_rms[k][n-1]`` is the IEC 61000-4-7 harmonic group ``n`` of element ``k+1``'s
    voltage [V] (the phasor path: the component itself); ``amps_rms`` likewise [A];
    phases [deg] relative to ``n ×`` the fundamental voltage's angle (NaN where the
    component is 0)."""

    orders: tuple[int, ...]
    volts_rms: tuple[tuple[float, ...], ...]
    amps_rms: tuple[tuple[float, ...], ...]
    thd_v_percent: tuple[float, ...]
    thd_i_percent: tuple[float, ...]
    volts_phase_deg: tuple[tuple[float, ...], ...] = ()
    amps_phase_deg: tuple[tuple[float, ...], ...] = ()

    def as_dict(self) -> dict:
        """Plain values for JSON (NaN as None)."""
        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        rows = lambda table: [[num(x) for x in row] for row in table]      # noqa: E731
        return {"orders": list(self.orders), "volts_rms": rows(self.volts_rms), "amps_rms": rows(self.amps_rms),
                "thd_v_percent": [num(x) for x in self.thd_v_percent], "thd_i_percent": [num(x) for x in self.thd_i_percent],
                "volts_phase_deg": rows(self.volts_phase_deg), "amps_phase_deg": rows(self.amps_phase_deg)}


@dataclass(frozen=True)
class PowerQuantities:
    """IEEE 1459 quantities of ``w`` consecutive windows (or cycles), per element: arrays
    shaped (e, w); times (w,) [s since the meter's start]."""

    start_s: np.ndarray
    duration_s: np.ndarray
    active_power_w: np.ndarray              # P
    fundamental_active_w: np.ndarray        # P₁
    reactive_power_var: np.ndarray          # Q₁
    fundamental_apparent_va: np.ndarray     # S₁
    apparent_power_va: np.ndarray           # S
    non_active_var: np.ndarray              # N
    non_fundamental_va: np.ndarray          # S_N
    displacement_pf: np.ndarray             # P₁ / S₁ (NaN where S₁ = 0)
    power_factor: np.ndarray                # P / S (NaN where S = 0)
    thd_v_percent: np.ndarray
    thd_i_percent: np.ndarray
    volts_rms: np.ndarray
    amps_rms: np.ndarray

    @property
    def count(self) -> int:
        return int(self.start_s.shape[0])

    def column(self, j: int) -> dict[str, tuple[float, ...]]:
        """Window ``j``'s quantities per element, by field name."""
        return {name: tuple(float(x) for x in getattr(self, name)[:, j])
                for name in self.__dataclass_fields__ if name not in ("start_s", "duration_s")}

    @staticmethod
    def joined(parts: "list[PowerQuantities]", elements: int) -> "PowerQuantities":
        """Consecutive blocks as one (an empty block for none)."""
        names = list(PowerQuantities.__dataclass_fields__)
        if not parts:
            return PowerQuantities(np.zeros(0), np.zeros(0), *(np.zeros((elements, 0)) for _ in names[2:]))
        return PowerQuantities(*(np.concatenate([getattr(p, n) for p in parts], axis=-1) for n in names))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def ieee1459(start_s, duration_s, volts_rms, amps_rms, power_w, v1, i1, thd_v, thd_i) -> PowerQuantities:
    """The IEEE 1459 quantities from rms values, active power and the fundamental's rms
    phasors ``v1``, ``i1`` (complex, same shape); THDs given [%]."""
    vi1 = v1 * np.conj(i1)
    s = volts_rms * amps_rms
    s1 = np.abs(v1) * np.abs(i1)
    p1 = vi1.real
    return PowerQuantities(
        start_s=np.asarray(start_s, float), duration_s=np.asarray(duration_s, float),
        active_power_w=power_w, fundamental_active_w=p1, reactive_power_var=vi1.imag, fundamental_apparent_va=s1,
        apparent_power_va=s, non_active_var=np.sqrt(np.maximum(s * s - power_w * power_w, 0.0)),
        non_fundamental_va=np.sqrt(np.maximum(s * s - s1 * s1, 0.0)),
        displacement_pf=_ratio(p1, s1), power_factor=_ratio(power_w, s),
        thd_v_percent=thd_v, thd_i_percent=thd_i, volts_rms=volts_rms, amps_rms=amps_rms,
    )


def _phase_deg(z: np.ndarray, fundamental: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """Angle of each component relative to ``order ×`` the fundamental voltage's [deg]."""
    angle = np.angle(z) - orders * np.angle(fundamental)[..., None]
    deg = np.degrees(np.angle(np.exp(1j * angle)))
    floor = PHASE_FLOOR * np.abs(z).max(axis=-1, keepdims=True)      # rounding noise has no phase
    return np.where(np.abs(z) > floor, deg, np.nan)


def _table(volts: np.ndarray, amps: np.ndarray, v_phase: np.ndarray, i_phase: np.ndarray,
           thd_v: np.ndarray, thd_i: np.ndarray) -> HarmonicTable:
    """A table from (e, 40) magnitudes and phases and (e,) THDs."""
    rows = lambda x: tuple(map(tuple, np.asarray(x, float).tolist()))      # noqa: E731
    return HarmonicTable(_ORDERS, rows(volts), rows(amps), tuple(np.asarray(thd_v, float).tolist()),
                         tuple(np.asarray(thd_i, float).tolist()), rows(v_phase), rows(i_phase))


def _thd_percent(groups: np.ndarray) -> np.ndarray:
    """√(Σ_{n≥2} G_n²) / G₁ [%] over the last axis (orders 1…40)."""
    return 100.0 * _ratio(np.sqrt((groups[..., 1:] ** 2).sum(axis=-1)), groups[..., 0])


def harmonic_groups(spectrum: np.ndarray, cycles: int) -> np.ndarray:
    """IEC 61000-4-7 harmonic groups G₁…G₄₀ [rms] from an rms line spectrum of a window of
    ``cycles`` line cycles (line ``k`` at ``k / cycles`` harmonics; last axis): G_n² is
    the sum of the squares of lines n·N − N/2 … n·N + N/2, the two end lines halved."""
    half = cycles // 2
    top = MAX_ORDER * cycles + half + 1                   # lines needed (zeros beyond the spectrum)
    lines = min(top, spectrum.shape[-1])
    power = spectrum[..., :lines].real ** 2 + spectrum[..., :lines].imag ** 2
    if lines < top:                                       # a low sample rate: no lines up to the 40th group
        power = np.concatenate((power, np.zeros(power.shape[:-1] + (top - lines,))), axis=-1)
    blocks = power[..., half:half + MAX_ORDER * cycles].reshape(spectrum.shape[:-1] + (MAX_ORDER, cycles))
    ends = power[..., half::cycles]                      # lines n·N − N/2 for n = 1 … 41
    groups = blocks.sum(axis=-1) - 0.5 * ends[..., :MAX_ORDER] + 0.5 * ends[..., 1:MAX_ORDER + 1]
    return np.sqrt(np.maximum(groups, 0.0))


def window_quantities(volts: np.ndarray, amps: np.ndarray, cycles: int, start_s: float = 0.0,
                      duration_s: float = float("nan")) -> tuple[PowerQuantities, HarmonicTable]:
    """One window of samples (e, L) spanning exactly ``cycles`` line cycles → its IEEE 1459
    quantities (one column) and harmonic table (see :func:`windows_quantities`)."""
    volts = np.atleast_2d(np.asarray(volts, float))[:, None, :]
    amps = np.atleast_2d(np.asarray(amps, float))[:, None, :]
    return windows_quantities(volts, amps, cycles, np.array([start_s]), np.array([duration_s]))


def windows_quantities(volts: np.ndarray, amps: np.ndarray, cycles: int, start_s: np.ndarray,
                       duration_s: np.ndarray, rms_and_power: tuple | None = None) -> tuple[PowerQuantities, HarmonicTable]:
    """``w`` windows of samples (e, w, L), each exactly ``cycles`` line cycles, starting at
    ``start_s`` (w,) and lasting ``duration_s`` [s] → their IEEE 1459 quantities (e, w)
    and the last window's harmonic table. V, I and P are the samples' means, or
    ``rms_and_power`` (Vrms, Irms, P, each (e, w)) where the kWh pass has them; the
    fundamental is DFT line ``cycles``; harmonics and THD are IEC 61000-4-7 groups."""
    length = volts.shape[-1]
    scale = math.sqrt(2.0) / length
    spec_v = np.fft.rfft(volts, axis=-1) * scale          # rms phasors of each line (DC aside)
    spec_i = np.fft.rfft(amps, axis=-1) * scale
    g_v, g_i = harmonic_groups(spec_v, cycles), harmonic_groups(spec_i, cycles)
    thd_v, thd_i = _thd_percent(g_v), _thd_percent(g_i)
    line = min(cycles, spec_v.shape[-1] - 1)
    v1, i1 = spec_v[..., line], spec_i[..., line]
    if rms_and_power is None:
        rms_and_power = (np.sqrt((volts ** 2).mean(axis=-1)), np.sqrt((amps ** 2).mean(axis=-1)),
                         (volts * amps).mean(axis=-1))
    quantities = ieee1459(start_s, duration_s, *rms_and_power, v1, i1, thd_v, thd_i)
    orders = np.arange(1, MAX_ORDER + 1)
    idx = orders * cycles
    inside = idx < spec_v.shape[-1]
    comp_v = np.zeros(volts.shape[:1] + (MAX_ORDER,), complex)
    comp_i = np.zeros_like(comp_v)
    comp_v[:, inside], comp_i[:, inside] = spec_v[:, -1, idx[inside]], spec_i[:, -1, idx[inside]]
    table = _table(g_v[:, -1], g_i[:, -1], _phase_deg(comp_v, comp_v[:, 0], orders),
                   _phase_deg(comp_i, comp_v[:, 0], orders), thd_v[:, -1], thd_i[:, -1])
    return quantities, table


def phasor_quantities(orders: np.ndarray, v: np.ndarray, i: np.ndarray, start_s: np.ndarray,
                      duration_s: np.ndarray, power_w: np.ndarray | None = None) -> PowerQuantities:
    """Per-cycle quantities from rms phasors ``v``, ``i`` shaped (e, H, m) of harmonic
    ``orders`` (H,) (the phasor path). ``power_w`` (e, m): the cycle's exact active power
    (default Σ_h Re V_h·conj I_h)."""
    orders = np.asarray(orders)
    power = (v * np.conj(i)).real.sum(axis=1) if power_w is None else power_w
    first = orders == 1
    v1 = v[:, first].sum(axis=1)
    i1 = i[:, first].sum(axis=1)
    harm = (orders >= 2) & (orders <= MAX_ORDER)
    thd_v = 100.0 * _ratio(np.sqrt((np.abs(v[:, harm]) ** 2).sum(axis=1)), np.abs(v1))
    thd_i = 100.0 * _ratio(np.sqrt((np.abs(i[:, harm]) ** 2).sum(axis=1)), np.abs(i1))
    vrms = np.sqrt((np.abs(v) ** 2).sum(axis=1))
    irms = np.sqrt((np.abs(i) ** 2).sum(axis=1))
    return ieee1459(start_s, duration_s, vrms, irms, power, v1, i1, thd_v, thd_i)


def phasor_table(orders: np.ndarray, v: np.ndarray, i: np.ndarray) -> HarmonicTable:
    """The harmonic table of rms phasors ``v``, ``i`` shaped (e, H) of ``orders`` (H,): the
    phasor path's components are the harmonics themselves (no interharmonics)."""
    e = v.shape[0]
    comp_v = np.zeros((e, MAX_ORDER), complex)
    comp_i = np.zeros((e, MAX_ORDER), complex)
    for k, n in enumerate(np.asarray(orders).tolist()):
        if 1 <= n <= MAX_ORDER:
            comp_v[:, n - 1] += v[:, k]
            comp_i[:, n - 1] += i[:, k]
    n = np.arange(1, MAX_ORDER + 1)
    mag_v, mag_i = np.abs(comp_v), np.abs(comp_i)
    return _table(mag_v, mag_i, _phase_deg(comp_v, comp_v[:, 0], n), _phase_deg(comp_i, comp_v[:, 0], n),
                  _thd_percent(mag_v), _thd_percent(mag_i))


# --------------------------------------------------------------------------- the per-cycle pass
@numba.njit(cache=True, nogil=True)
def _fundamentals_kernel(volts, amps, first_index, a_pos, b_pos, period, offsets, out_v, out_i, half_sq,
                         half_w):  # pragma: no cover
    """Per cycle ``c`` (between fractional sample positions ``a_pos[c]``…``b_pos[c]``):
    the fundamental's least-squares sums of V and I into ``out_v``/``out_i`` and the
    half-cycle sums of squares into ``half_sq``/``half_w``. (Long: one compiled loop over
    the samples, read once; split, it would read them once per part.)"""
    e = volts.shape[0]
    n_all = volts.shape[1]
    for c in range(a_pos.size):
        a, b = a_pos[c], b_pos[c]
        width = b - a
        first_piece = offsets[c]
        pieces = offsets[c + 1] - first_piece
        piece_len = width / pieces
        k0 = max(int(math.floor(a)) - first_index, 0)
        k1 = min(int(math.ceil(b)) - first_index, n_all)
        step = 2.0 * math.pi / period[c]
        cc = 0.0
        cs = 0.0
        ss = 0.0
        xc = np.zeros(2 * e)
        xs = np.zeros(2 * e)
        theta0 = step * (k0 + first_index - a)
        co, si = math.cos(theta0), math.sin(theta0)          # cos, sin of θ at sample k, by rotation
        rc, rs = math.cos(step), math.sin(step)
        for k in range(k0, k1):
            if k > k0:
                co, si = co * rc - si * rs, si * rc + co * rs
            t = k + first_index
            lo = max(t, a)
            hi = min(t + 1.0, b)
            w = hi - lo
            if w <= 0.0:
                continue
            # the half cycle(s) this sample falls in: at most two (a half cycle is ≥ 1 sample)
            p0 = min(int((lo - a) / piece_len), pieces - 1)
            split = a + (p0 + 1) * piece_len
            w_first = w if (p0 == pieces - 1 or hi <= split) else split - lo
            w_next = w - w_first
            half_w[first_piece + p0] += w_first
            if w_next > 0.0:
                half_w[first_piece + p0 + 1] += w_next
            cc += w * co * co
            cs += w * co * si
            ss += w * si * si
            for j in range(e):
                v = volts[j, k]
                i = amps[j, k]
                xc[j] += w * v * co
                xs[j] += w * v * si
                xc[e + j] += w * i * co
                xs[e + j] += w * i * si
                half_sq[j, first_piece + p0] += w_first * v * v
                if w_next > 0.0:
                    half_sq[j, first_piece + p0 + 1] += w_next * v * v
        det = cc * ss - cs * cs
        for j in range(2 * e):
            if det > 0.0:
                # x ≈ A cos θ + B sin θ by least squares; the rms phasor is (A − jB)/√2
                ca = (ss * xc[j] - cs * xs[j]) / det
                cb = (cc * xs[j] - cs * xc[j]) / det
            else:
                ca = 0.0
                cb = 0.0
            z = complex(ca, -cb) / math.sqrt(2.0)
            if j < e:
                out_v[j, c] = z
            else:
                out_i[j - e, c] = z


def cycle_fundamentals(volts: np.ndarray, amps: np.ndarray, first_index: int, a_pos: np.ndarray,
                       b_pos: np.ndarray, period: np.ndarray | None = None,
                       halves: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """The fundamental rms phasors of line cycles ``[a_pos, b_pos)`` [absolute sample
    positions] of samples (e, n) whose first is sample ``first_index``, fitted to a
    sinusoid of ``period`` [samples] (default: each cycle's own length), and the
    Σv²·weight and weight [samples] of each cycle's ``halves`` equal pieces (default 2:
    its half cycles): ``(v1 (e, m), i1 (e, m), half_sq (e, h), half_w (h,))``. Sample
    ``k`` stands for ``[k, k+1)`` and counts in a cycle by its overlap (as in the kWh pass)."""
    e, m = volts.shape[0], a_pos.size
    halves = np.full(m, 2, np.int64) if halves is None else np.asarray(halves, np.int64)
    offsets = np.concatenate(([0], np.cumsum(halves)))
    out_v = np.zeros((e, m), complex)
    out_i = np.zeros((e, m), complex)
    half_sq = np.zeros((e, int(offsets[-1])))
    half_w = np.zeros(int(offsets[-1]))
    if m:
        _fundamentals_kernel(np.ascontiguousarray(volts, float), np.ascontiguousarray(amps, float), int(first_index),
                             np.ascontiguousarray(a_pos, float), np.ascontiguousarray(b_pos, float),
                             np.ascontiguousarray(np.maximum(b_pos - a_pos if period is None else period, 1.0), float),
                             offsets, out_v, out_i, half_sq, half_w)
    return out_v, out_i, half_sq, half_w


# --------------------------------------------------------------------------- the phasor path's cycles
@dataclass(frozen=True)
class PhasorCycles(CycleBlock):
    """A :class:`~minimeter.meter.CycleBlock` that also carries each cycle's rms phasors per
    harmonic order (the phasor path: :meth:`SyntheticSource.cycle_block
    <minimeter.sources.service.SyntheticSource.cycle_block>`), from which a meter built
    with ``quantities=True`` forms the S12.1 quantities. To the kWh path it is a CycleBlock."""

    orders: tuple[int, ...] = ()
    volts_phasors: np.ndarray | None = None     # (e, H, m) rms phasors [V]
    amps_phasors: np.ndarray | None = None      # (e, H, m) [A]; each cycle's mean current

    def slice(self, start: int, stop: int) -> "PhasorCycles":
        base = CycleBlock.slice(self, start, stop)
        cut = lambda x: None if x is None else x[..., start:stop]      # noqa: E731
        return PhasorCycles(*(getattr(base, f.name) for f in dataclasses.fields(CycleBlock)),
                            orders=self.orders, volts_phasors=cut(self.volts_phasors), amps_phasors=cut(self.amps_phasors))


def with_phasors(block: CycleBlock, pairs: list[tuple[dict, dict]]) -> PhasorCycles:
    """``block`` with its cycles' phasors: per element, (voltage, current) dicts of order →
    (m,) complex *peak* phasors (as :func:`minimeter.sources.service._phasors` gives them)."""
    orders = sorted({h for v, i in pairs for h in (*v, *i)})
    m, e = block.count, len(pairs)
    volts = np.zeros((e, len(orders), m), complex)
    amps = np.zeros((e, len(orders), m), complex)
    for j, (v, i) in enumerate(pairs):
        for k, h in enumerate(orders):
            if h in v:
                volts[j, k] = v[h]
            if h in i:
                amps[j, k] = i[h]
    root2 = math.sqrt(2.0)
    return PhasorCycles(*(getattr(block, f.name) for f in dataclasses.fields(CycleBlock)),
                        orders=tuple(orders), volts_phasors=volts / root2, amps_phasors=amps / root2)
