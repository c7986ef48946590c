"""SPEC §4.2, §4.7 and S8.2 (issue 12): the compiled one-pass sample path against the plain
NumPy path it replaced (tests/metrology_reference.py), per cycle, on random signals —
frequencies, phases, harmonics, noise, dead voltage (forced cuts), one and two elements,
random chunkings, the final partial cycle — and its own chunk invariance, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minimeter.errors import InvalidSamples
from minimeter.meter.metrology import LineCycleState, measure_chunk

from .metrology_reference import channel_peaks_reference, measure_chunk_reference

RELATIVE = 1e-12       # kernel against reference, per cycle
FIELDS = ("start_s", "duration_s", "frequency_hz", "partial", "power_w", "energy_wh", "volts_rms", "amps_rms")


def _signal(elements, fs, seconds, frequency_hz, phase, harmonic, noise_v, amps_peak, angle, dead, seed):
    """Hand-built volts/amps (e, n): fundamental + 3rd and 5th harmonics + noise, the
    second leg in antiphase (split phase), the voltage dead over ``dead`` (fractions)."""
    n = max(int(seconds * fs), 1)
    t = np.arange(n) / fs
    w = 2 * math.pi * frequency_hz
    rng = np.random.default_rng(seed)
    volts, amps = np.empty((elements, n)), np.empty((elements, n))
    for j in range(elements):
        leg = phase + math.pi * j
        volts[j] = 170 * (np.cos(w * t + leg) + harmonic * np.cos(3 * w * t + leg) + harmonic * np.cos(5 * w * t))
        amps[j] = amps_peak[j] * (np.cos(w * t + leg - angle) + 2 * harmonic * np.cos(3 * w * t + 0.4))
    volts += rng.normal(0, noise_v, volts.shape) if noise_v else 0.0
    lo, hi = sorted(dead)
    volts[:, int(lo * n):int(hi * n)] = 0.0
    return volts, amps


def _run(measure, volts, amps, fs, sizes, **kw):
    """Feed consecutive chunks of ``sizes`` (the rest last), then the final call; returns
    the blocks, the per-chunk peaks (kernel only) and the end states."""
    state = LineCycleState.start(volts.shape[0], fs)
    blocks, peaks, states = [], [], []
    start, n = 0, volts.shape[1]
    for size in list(sizes) + [n]:
        stop = min(n, start + size)
        if stop > start:
            out = measure(volts[:, start:stop], amps[:, start:stop], state, **kw)
            blocks.append(out[0])
            state = out[1]
            states.append(state)
            peaks.append(out[2] if len(out) > 2 else None)
        start = stop
    empty = np.zeros((volts.shape[0], 0))
    blocks.append(measure(empty, empty, state, final=True, **kw)[0])
    return blocks, peaks, states


def _joined(blocks, name):
    return np.concatenate([getattr(b, name) for b in blocks], axis=-1)


def _assert_close_per_cycle(kernel_blocks, reference_blocks, volts, amps, fs):
    """Per cycle, within RELATIVE of the reference, plus the reference's own rounding of a
    crossing's share: it formed the share's fraction as ``k - ((k - 1) + x)`` from
    chunk-relative indices ``k``, exact only to ``k·eps`` of one sample's product, and a
    crossing's position to ``k·eps`` samples (the kernel forms ``1 - x`` and the position
    from absolute indices). That slack matters only for cycles a fraction of a sample long
    (a crossing just after a forced cut); for a whole cycle it is below 1e-13 relative."""
    k = {f: _joined(kernel_blocks, f) for f in FIELDS}
    r = {f: _joined(reference_blocks, f) for f in FIELDS}
    assert k["start_s"].shape == r["start_s"].shape
    assert np.array_equal(k["partial"], r["partial"])
    rounding = 4 * np.finfo(float).eps * volts.shape[1]         # the reference's, in samples
    f_ok = ~np.isnan(r["frequency_hz"])
    assert np.array_equal(np.isnan(k["frequency_hz"]), ~f_ok)
    for name, got, want, slack in (
        ("start_s", k["start_s"], r["start_s"], rounding / fs),
        ("duration_s", k["duration_s"], r["duration_s"], rounding / fs),
        ("frequency_hz", k["frequency_hz"][f_ok], r["frequency_hz"][f_ok], rounding * r["frequency_hz"][f_ok] ** 2 / fs),
    ):
        assert np.all(np.abs(got - want) <= RELATIVE * np.abs(want) + slack), name
    width = r["duration_s"] * fs                                   # [samples]
    share_slack = rounding / width                                 # per unit of one sample's product
    peak_v, peak_a = np.abs(volts).max(axis=1)[:, None], np.abs(amps).max(axis=1)[:, None]
    checks = (
        ("volts_rms", k["volts_rms"] ** 2, r["volts_rms"] ** 2, peak_v ** 2),
        ("amps_rms", k["amps_rms"] ** 2, r["amps_rms"] ** 2, peak_a ** 2),
        ("power_w", k["power_w"], r["power_w"], peak_v * peak_a),
        ("energy_wh", k["energy_wh"] / r["duration_s"] * 3600, r["energy_wh"] / r["duration_s"] * 3600, peak_v * peak_a),
    )
    apparent = r["volts_rms"] * r["amps_rms"]      # the scale of Σv·i's terms: P may be ~0 at PF 0
    for name, got, want, product in checks:
        scale = np.abs(want) if name.endswith("rms") else np.maximum(np.abs(want), apparent)
        assert np.all(np.abs(got - want) <= RELATIVE * scale + share_slack * product), name


SIGNALS = st.fixed_dictionaries({
    "elements": st.sampled_from([1, 2]),
    "fs": st.sampled_from([1000.0, 2000.5, 4000.3, 7812.5, 8000.0]),
    "seconds": st.floats(0.05, 0.6),
    "frequency_hz": st.floats(42.0, 68.0),
    "phase": st.floats(0.0, 2 * math.pi),
    "harmonic": st.sampled_from([0.0, 0.05, 0.3]),
    "noise_v": st.sampled_from([0.0, 0.5, 4.0]),
    "amps_peak": st.tuples(st.floats(0.0, 60.0), st.floats(0.0, 60.0)),
    "angle": st.floats(-math.pi, math.pi),
    "dead": st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    "seed": st.integers(0, 2**16),
})
CHUNKS = st.lists(st.integers(min_value=1, max_value=3000), min_size=0, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SIGNALS, CHUNKS)
def test_s4_2_kernel_equals_the_numpy_reference_per_cycle(signal, sizes):
    volts, amps = _signal(**signal)
    fs = signal["fs"]
    kernel, peaks, states = _run(lambda *a, **kw: measure_chunk(*a, peaks=True, **kw), volts, amps, fs, sizes)
    reference, _, reference_states = _run(measure_chunk_reference, volts, amps, fs, sizes)
    _assert_close_per_cycle(kernel, reference, volts, amps, fs)
    # the trigger and the open cycle handed on are the same after every chunk
    for got, want in zip(states, reference_states):
        assert (got.tail_start, got.next_index, got.armed, got.last_low) == \
            (want.tail_start, want.next_index, want.armed, want.last_low)
        assert np.array_equal(got.tail_volts, want.tail_volts) and np.array_equal(got.tail_amps, want.tail_amps)
    # peaks: the chunk's max |x| per input, exactly (the scans the meter made)
    start = 0
    for size, got in zip(list(sizes) + [volts.shape[1]], peaks):
        stop = min(volts.shape[1], start + size)
        assert np.array_equal(got.volts, channel_peaks_reference(volts[:, start:stop]))
        assert np.array_equal(got.amps, channel_peaks_reference(amps[:, start:stop]))
        start = stop


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SIGNALS, CHUNKS)
def test_s4_2_every_cycle_is_bit_identical_whatever_the_chunking(signal, sizes):
    volts, amps = _signal(**signal)
    fs = signal["fs"]
    whole, _, _ = _run(measure_chunk, volts, amps, fs, [])
    chunked, _, _ = _run(measure_chunk, volts, amps, fs, sizes)
    for f in FIELDS:
        assert np.array_equal(_joined(whole, f), _joined(chunked, f), equal_nan=f != "partial"), f


def test_s4_7_kernel_hand_checked_cycle():
    """One element, 8 samples a cycle at 480 Hz / 60 Hz, v = 100 cos, i = 10 cos (PF 1):
    a whole cycle's Σv·i = 8 · 1000 / 2 = 4000 → P = 500 W, Vrms = 100/√2, Irms = 10/√2,
    and a cycle lasts exactly 8 samples (1/60 s)."""
    fs = 480.0
    k = np.arange(8 * 10)
    v = 100 * np.cos(2 * np.pi * k / 8 + 0.1)
    block, _ = measure_chunk(v[None], (v / 10)[None], LineCycleState.start(1, fs), hysteresis_v=10.0)
    whole = ~block.partial
    assert whole.sum() == 9
    assert np.allclose(block.power_w[0, whole], 500.0, rtol=1e-12)
    assert np.allclose(block.volts_rms[0, whole], 100 / math.sqrt(2), rtol=1e-12)
    assert np.allclose(block.amps_rms[0, whole], 10 / math.sqrt(2), rtol=1e-12)
    assert np.allclose(block.duration_s[whole], 1 / 60, rtol=1e-12)
    assert np.allclose(block.frequency_hz[whole], 60.0, rtol=1e-12)


def test_s8_2_peaks_are_the_largest_magnitude_per_input():
    volts = np.array([[1.0, -170.5, 3.0, 0.0], [2.0, 2.5, -0.5, 1.0]])
    amps = np.array([[-250.0, 1.0, 0.0, 249.9], [0.0, -0.0, 0.0, 0.0]])
    _, _, peaks = measure_chunk(volts, amps, LineCycleState.start(2, 4000.0), peaks=True)
    assert peaks.volts.tolist() == [170.5, 2.5]
    assert peaks.amps.tolist() == [250.0, 0.0]
    amps[1, 2] = np.nan
    _, _, peaks = measure_chunk(volts, amps, LineCycleState.start(2, 4000.0), peaks=True)
    assert peaks.amps[0] == 250.0 and np.isnan(peaks.amps[1])


def test_s4_2_an_explicit_reference_gives_the_same_cycles():
    fs = 4000.0
    volts, amps = _signal(2, fs, 0.3, 60.0, 0.3, 0.05, 0.5, (10.0, 5.0), 0.5, (0.0, 0.0), 1)
    implicit, _ = measure_chunk(volts, amps, LineCycleState.start(2, fs))
    explicit, _ = measure_chunk(volts, amps, LineCycleState.start(2, fs), reference=volts[0] - volts[1])
    for f in FIELDS:
        assert np.array_equal(getattr(implicit, f), getattr(explicit, f), equal_nan=f != "partial")
    with pytest.raises(InvalidSamples, match=r"reference must have shape \(1200,\)"):
        measure_chunk(volts, amps, LineCycleState.start(2, fs), reference=volts[0, :10])


def test_s4_2_a_crossing_every_other_sample_matches_the_reference():
    """The most cycles a chunk can close: a reference alternating ±20 V (hysteresis 10 V)
    crosses at every second sample, 2000 cycles in 4000 samples — far more than a line
    frequency gives, so the kernel's output grows as it goes."""
    fs = 8000.0
    volts = np.tile([20.0, -20.0], 2000)[None]
    amps = np.ones_like(volts)
    kernel, _, _ = _run(measure_chunk, volts, amps, fs, [1000, 1, 999])
    reference, _, _ = _run(measure_chunk_reference, volts, amps, fs, [1000, 1, 999])
    assert sum(b.count for b in kernel) == 2000        # 1999 crossings: 1998 whole + two partial ends
    _assert_close_per_cycle(kernel, reference, volts, amps, fs)
    # each whole cycle: 2 samples, crossing at the middle of the rising step (x = 0.5)
    whole = ~_joined(kernel, "partial")
    assert np.all(_joined(kernel, "duration_s")[whole] == 2 / fs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SIGNALS, CHUNKS, st.sampled_from([0.0, 2.0, 10.0, 60.0]), st.sampled_from([1.0, 0.02, 0.07, 0.4]), st.booleans())
def test_s4_2_the_trigger_searching_blocks_of_samples_equals_the_reference(signal, sizes, hysteresis_v, scale, explicit):
    """The trigger passes over a block of samples at a time where it cannot act (disarmed:
    none below -hysteresis; armed: none non-negative) and steps sample by sample only
    where it may: every depth of hysteresis (0: each entry below zero arms it), noise
    near zero, dead stretches longer than a block, an explicit reference, a voltage whose
    troughs barely reach the hysteresis (``scale``: 3.4 V to 170 V peaks) — the same cycles
    as the sample-by-sample reference, and the same trigger state after each chunk."""
    volts, amps = _signal(**signal)
    volts *= scale
    fs = signal["fs"]
    kw = {"hysteresis_v": hysteresis_v}
    if explicit:
        kw["reference"] = volts[0].copy()      # the chunks' slices of it
    def sliced(measure):
        def run(v, a, state, final=False, **kwargs):
            if "reference" in kwargs:
                lo = state.next_index
                kwargs["reference"] = kwargs["reference"][lo:lo + v.shape[1]]
            return measure(v, a, state, final=final, **kwargs)
        return run
    kernel, _, states = _run(sliced(measure_chunk), volts, amps, fs, sizes, **kw)
    reference, _, reference_states = _run(sliced(measure_chunk_reference), volts, amps, fs, sizes, **kw)
    _assert_close_per_cycle(kernel, reference, volts, amps, fs)
    for got, want in zip(states, reference_states):
        assert (got.tail_start, got.armed, got.last_low) == (want.tail_start, want.armed, want.last_low)
        assert got.last_reference == want.last_reference or (math.isnan(got.last_reference) and math.isnan(want.last_reference))


@pytest.mark.parametrize("elements", [1, 2])
def test_s4_2_a_trough_just_short_of_the_hysteresis_does_not_arm_the_trigger(elements):
    """Hand-checked: a 50 Hz reference at 8 kHz (160 samples a period) whose troughs
    alternate 10.5 V and 9.5 V deep, hysteresis 10 V: only a trough beyond -10 V arms the
    next crossing, so every counted cycle spans two periods — 320 samples, 0.04 s, 25 Hz —
    whatever the chunking (the trigger searches blocks of samples; a block holding only the
    9.5 V trough must not arm it, one holding the 10.5 V trough must)."""
    fs, period = 8000.0, 160
    k = np.arange(period * 24)
    depth = np.where((k // period) % 2 == 0, 10.5, 9.5)
    reference = depth * np.sin(2 * np.pi * k / period + 0.3)
    volts = reference[None] if elements == 1 else np.stack((reference / 2, -reference / 2))   # L1-L2 = reference
    amps = np.ones_like(volts)
    for sizes in ([], [1000, 37, 5000], [63, 64, 65] * 20):
        blocks, _, _ = _run(measure_chunk, volts, amps, fs, sizes, hysteresis_v=10.0, tracking_min_hz=20.0)
        whole = ~_joined(blocks, "partial")
        assert whole.sum() == 11          # 12 arming troughs: 11 cycles between their crossings
        assert np.allclose(_joined(blocks, "duration_s")[whole], 2 * period / fs, rtol=0, atol=1e-12)
        assert np.allclose(_joined(blocks, "frequency_hz")[whole], fs / (2 * period), rtol=1e-12)


def test_s4_2_three_elements_equal_the_reference_whatever_the_chunking():
    """A recording of three phases (cut on L1–N): every element summed on its own, not the
    two-element meter's joint loop — the same cycles as the reference, per cycle, and the
    same bits whatever the chunking (issue 12)."""
    fs = 7812.5
    volts, amps = _signal(3, fs, 0.4, 57.3, 0.7, 0.05, 0.5, (12.0, 30.0, 4.0), 0.6, (0.55, 0.7), 3)
    sizes = [700, 1, 333, 2000]
    kernel, _, _ = _run(measure_chunk, volts, amps, fs, sizes)
    reference, _, _ = _run(measure_chunk_reference, volts, amps, fs, sizes)
    _assert_close_per_cycle(kernel, reference, volts, amps, fs)
    whole, _, _ = _run(measure_chunk, volts, amps, fs, [])
    for f in FIELDS:
        assert np.array_equal(_joined(whole, f), _joined(kernel, f), equal_nan=f != "partial"), f


def test_s4_2_streams_fed_in_turn_are_each_as_if_fed_alone():
    """Two streams (one and two elements) measured in turn in one thread, chunks of
    different sizes: each gives the bits it gives fed alone — the kernel's work arrays,
    reused from call to call, carry nothing from one call to the next (issue 12)."""
    fs = 8000.0
    one = _signal(1, fs, 0.5, 60.0, 0.2, 0.05, 0.5, (20.0, 0.0), 0.4, (0.0, 0.0), 5)
    two = _signal(2, fs, 0.5, 49.0, 1.1, 0.3, 4.0, (8.0, 50.0), -0.9, (0.3, 0.4), 6)
    alone = [_run(measure_chunk, v, a, fs, [1500, 400])[0] for v, a in (one, two)]
    states = [LineCycleState.start(1, fs), LineCycleState.start(2, fs)]
    blocks = [[], []]
    for lo, hi in ((0, 1500), (1500, 1900), (1900, 4000)):
        for s, (v, a) in enumerate((one, two)):
            block, states[s] = measure_chunk(v[:, lo:hi], a[:, lo:hi], states[s])
            blocks[s].append(block)
    for s in range(2):
        blocks[s].append(measure_chunk(np.zeros((s + 1, 0)), np.zeros((s + 1, 0)), states[s], final=True)[0])
        for f in FIELDS:
            assert np.array_equal(_joined(alone[s], f), _joined(blocks[s], f), equal_nan=f != "partial"), f


def test_issue_12_the_block_and_state_handed_back_have_every_field():
    """measure_chunk makes its block and state without their dataclass __init__ (a fixed
    cost per call): every field is set — so a field added to either class and not given
    there fails here — and they stay frozen."""
    import dataclasses

    fs = 4000.0
    volts, amps = _signal(2, fs, 0.2, 60.0, 0.3, 0.05, 0.5, (10.0, 5.0), 0.5, (0.0, 0.0), 2)
    block, state = measure_chunk(volts, amps, LineCycleState.start(2, fs))
    for made in (block, state):
        names = [f.name for f in dataclasses.fields(made)]
        assert sorted(vars(made)) == sorted(names)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, names[0], None)
    assert state.next_index == volts.shape[1] and block.power_w.shape == (2, block.count)
