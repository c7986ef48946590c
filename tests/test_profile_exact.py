"""A periodic profile's value and cycle means, bit for bit (issue 13: a fleet meter-year
cheaper; issue 12 item 3: every cycle of a segment equals its first bit for bit).

``Profile.at`` and ``Profile.window_mean`` take the time within the period by a division
instead of ``fmod`` and fall back to ``np.divmod`` near a piece's edge; here they are
held to a plain-NumPy reference (``np.mod``/``np.divmod`` + ``searchsorted``, the
formulas they replaced) at times placed within a few ulps of every edge — a breakpoint,
a period's start — out to ten years, and at random times."""

from __future__ import annotations

import numpy as np
import pytest

from minimeter import Profile

TEN_YEARS_S = 3650 * 86400.0


def _reference_at(p: Profile, t: np.ndarray) -> np.ndarray:
    times = np.asarray(p.times_s, float)
    idx = np.searchsorted(times, np.mod(t, p.period_s), side="right")
    return np.concatenate(([p.values[-1]], p.values))[idx]


def _reference_mean(p: Profile, t: np.ndarray, w: np.ndarray) -> np.ndarray:
    times = np.asarray(p.times_s, float)

    def piece(x):
        whole, frac = np.divmod(x, p.period_s)
        return whole * (times.size + 1) + np.searchsorted(times, frac, side="right")

    end = t + w
    same = piece(t) == piece(np.nextafter(end, -np.inf))
    spread = (p.integral(end) - p.integral(t)) / w
    return np.where(same, _reference_at(p, t + 0.5 * w), spread)


def _edges_times(p: Profile, rng: np.random.Generator) -> np.ndarray:
    """Times within ±4 ulps of each edge (breakpoints and period starts) of some periods up to ten years."""
    k = np.unique(np.concatenate(([0, 1, 2, 7], rng.integers(0, int(TEN_YEARS_S / p.period_s), 300))))
    edges = (k[:, None] * p.period_s + np.concatenate(([0.0], p.times_s))[None, :]).ravel()
    t = edges[:, None].copy()
    out = [t]
    for _ in range(4):
        out.append(np.nextafter(out[-1], np.inf))
    down = [t]
    for _ in range(4):
        down.append(np.nextafter(down[-1], -np.inf))
    near = np.concatenate([*out, *down[1:]], axis=1).ravel()
    return np.concatenate((near, rng.uniform(0.0, TEN_YEARS_S, 5000)))


@pytest.mark.parametrize("profile", [
    Profile.on_off(611.37, 1234.5, 150.0, 77.0),             # a fridge: not a whole number of seconds
    Profile.on_off(900.0, 1500.0, 120.0, 0.0),               # first piece at 0
    Profile((0.0, 21600.0, 25200.0, 64800.0, 82800.0), (0.0, 60.0, 0.0, 300.0, 0.0), 86400.0),
    Profile((3600.0, 7200.5), (5.0, -3.0), 86400.0 / 7.0),
])
def test_issue13_periodic_value_and_cycle_mean_equal_the_divmod_reference_bit_for_bit(profile):
    rng = np.random.default_rng(13)
    t = _edges_times(profile, rng)
    assert np.array_equal(profile.at(t), _reference_at(profile, t))
    for window_s in (1 / 60.0, 1 / 50.0):
        w = np.full(t.size, window_s)
        got = profile.window_mean(t, w)
        assert np.array_equal(got, _reference_mean(profile, t, w))


def test_issue13_a_nan_or_scalar_time_is_located_as_divmod_locates_it():
    p = Profile.on_off(600.0, 1200.0, 100.0, 30.0)
    t = np.array([np.nan, 5.0, 1e7 + 0.25])
    assert np.array_equal(p.at(t), _reference_at(p, t))
    assert float(p.at(np.float64(630.5))) == 0.0 and float(p.at(np.float64(29.0))) == 0.0
    assert float(p.at(np.float64(31.0))) == 100.0
