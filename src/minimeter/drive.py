"""The one loop: any source → a :class:`~minimeter.meter.Meter` → updates.

Every command, the bench, calibration, diagnostics, analysis, the live runner and the
fleet feed meters through these functions and nowhere else; no other module calls
:meth:`Meter.feed` or :meth:`Meter.feed_cycles`. Each is a generator: it feeds one chunk,
yields what the meter made of it, and goes on when asked, so a caller can show
progress, publish, commit or stop between chunks without writing its own loop.

* :func:`feed_samples` — chunks of sampled ``(volts, amps)``: synthetic frames, a
  recording through its channel map (:func:`recording_chunks`), a front end's output;
* :func:`feed_cycles` — per-cycle blocks (the phasor path), from a synthetic source or
  a live clock;
* :func:`feed_source` — a synthetic source by samples or by phasors, with the simulated
  time reached;
* :func:`measure_samples` — line-cycle metrology alone (no register), for any number of
  elements, cut on the same reference voltage as the meter
  (:func:`minimeter.meter.metrology.reference_voltage`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Iterator

import numpy as np

from minimeter.meter import CycleBlock, Event, EventKind, Meter, Update
from minimeter.meter.metrology import CycleRuns, LineCycleState, measure_chunk

SampleChunk = tuple[np.ndarray, np.ndarray]      # (volts (e, n) [V], amps (e, n) [A])


class GappedChunk(tuple):
    """A :data:`SampleChunk` ``(volts, amps)`` from a recording with missing samples (a
    gap; the readers give them as NaN): the frames of a gap hold 0 V and 0 A, so no
    energy is invented over them, and ``events`` flag it — 'missing-samples' raised at
    its first frame and cleared after its last, the energy over it stated as not
    measured. It unpacks like any chunk; :func:`feed_samples` adds the events to the
    chunk's update."""

    events: tuple[Event, ...]

    def __new__(cls, volts: np.ndarray, amps: np.ndarray, events: tuple[Event, ...]) -> "GappedChunk":
        chunk = super().__new__(cls, (volts, amps))
        chunk.events = events
        return chunk


def _gap_raised(start: int, sample_rate_hz: float) -> Event:
    t0 = start / sample_rate_hz
    return Event(t0, EventKind.MISSING_SAMPLES, True, None, 0.0,
                 f"samples missing from {t0:.6f} s: the energy over the gap is not measured")


def _gap_cleared(start: int, stop: int, sample_rate_hz: float) -> Event:
    t0, t1 = start / sample_rate_hz, stop / sample_rate_hz
    return Event(t1, EventKind.MISSING_SAMPLES, False, None, t1 - t0,
                 f"samples missing from {t0:.6f} s to {t1:.6f} s ({stop - start:,} frame(s)): "
                 "the energy over the gap is not measured")


def fill_gaps(volts: np.ndarray, amps: np.ndarray, first: int, open_since: int | None, last: bool,
              sample_rate_hz: float) -> tuple[list[Event], int | None]:
    """Zero, in place, the frames of ``volts``/``amps`` (frames ``first …`` of the
    stream) where a sample is NaN (missing). Returns the gap events of these frames and
    the first frame of a gap still open after them (``open_since``: one open before;
    ``last``: the stream ends here, so an open gap closes at its end)."""
    n = volts.shape[1]
    missing = np.isnan(volts).any(axis=0) | np.isnan(amps).any(axis=0)
    volts[:, missing] = 0.0
    amps[:, missing] = 0.0
    edges = np.diff(np.concatenate(([False], missing, [False])).astype(np.int8))
    events: list[Event] = []
    if open_since is not None and not (n and missing[0]):     # the open gap ended with the chunk before
        events.append(_gap_cleared(open_since, first, sample_rate_hz))
        open_since = None
    for start, stop in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]):
        begin = open_since if start == 0 and open_since is not None else first + int(start)
        if begin == first + int(start):
            events.append(_gap_raised(begin, sample_rate_hz))
        open_since = None
        if stop < n or last:
            events.append(_gap_cleared(begin, first + int(stop), sample_rate_hz))
        else:
            open_since = begin
    return events, open_since


def feed_samples(meter: Meter, chunks: Iterable[SampleChunk], sample_rate_hz: float, *,
                 amps_are: str = "primary", close: bool = True) -> Iterator[Update]:
    """Feed sampled chunks to ``meter``; yield each chunk's :class:`Update`, and the
    closing update (the trailing partial cycle) when ``close``."""
    for chunk in chunks:
        volts, amps = chunk
        update = meter.feed(volts, amps, sample_rate_hz, amps_are=amps_are)
        events = getattr(chunk, "events", ())
        yield replace(update, events=tuple(sorted(update.events + events, key=lambda e: e.time_s))) if events else update
    if close:
        yield meter.close()


def feed_cycles(meter: Meter, blocks: Iterable[CycleBlock | CycleRuns], *, close: bool = True) -> Iterator[Update]:
    """Feed per-cycle blocks (or runs of identical cycles) to ``meter`` (the phasor
    path); yield each block's update, and the closing update when ``close``."""
    for block in blocks:
        yield meter.feed_cycles(block)
    if close:
        yield meter.close()


def feed_source(meter: Meter, source: Any, duration_s: float, *, sample_rate_hz: float | None = None,
                chunk_frames: int = 1 << 16, cycles_per_block: int | None = None) -> Iterator[tuple[Update, float]]:
    """Feed ``duration_s`` [s] of a synthetic ``source`` (:class:`~minimeter.sources.service.SyntheticSource`)
    into ``meter`` and yield each update with the simulated time reached [s].
    ``sample_rate_hz`` None selects the phasor path, by segment: runs of identical cycles
    (:meth:`~minimeter.sources.service.SyntheticSource.cycle_runs`), blocks of at most
    ``cycles_per_block`` cycles if given. The meter is closed at the end."""
    if sample_rate_hz is None:
        for block in source.cycle_runs(duration_s, cycles_per_block):
            update = meter.feed_cycles(block)
            yield update, float(block.end_s[-1]) if block.count else meter.time_s
    else:
        for frames in source.frames(duration_s, sample_rate_hz, chunk_frames):
            update = meter.feed(frames.volts, frames.amps, sample_rate_hz)
            yield update, frames.start_s + frames.count / sample_rate_hz
    yield meter.close(), duration_s


def recording_chunks(reader: Any, resolved_map: Any, chunk_frames: int) -> Iterator[SampleChunk]:
    """A recording's frames through its resolved channel map, chunk by chunk:
    ``(volts (e, n) [V], amps (e, n) [A primary])``. Missing samples (NaN from the
    reader) make gaps (:func:`fill_gaps`): a chunk meeting one is a :class:`GappedChunk`
    carrying its events."""
    rate = reader.info.sample_rate_hz
    first, open_since = 0, None
    pieces = iter(reader.chunks(chunk_frames))
    frames = next(pieces, None)
    while frames is not None:
        following = next(pieces, None)
        volts, amps = resolved_map.split(frames)
        if open_since is not None or np.isnan(volts.sum() + amps.sum()):     # one reduction when there is no gap
            events, open_since = fill_gaps(volts, amps, first, open_since, following is None, rate)
            yield GappedChunk(volts, amps, tuple(events)) if events else (volts, amps)
        else:
            yield volts, amps
        first += frames.shape[1]
        frames = following


def measure_samples(chunks: Iterable[SampleChunk], sample_rate_hz: float, *, hysteresis_v: float,
                    tracking_min_hz: float = 40.0) -> Iterator[CycleBlock]:
    """Line-cycle metrology alone over sampled chunks of any number of elements:
    yields the blocks of cycles completed, then the trailing partial cycle. Cycles are
    cut on :func:`~minimeter.meter.metrology.reference_voltage`, as in the meter."""
    state: LineCycleState | None = None
    for volts, amps in chunks:
        if state is None:
            state = LineCycleState.start(volts.shape[0], sample_rate_hz)
        block, state = measure_chunk(volts, amps, state, hysteresis_v=hysteresis_v, tracking_min_hz=tracking_min_hz)
        if block.count:
            yield block
    if state is None:
        return
    empty = np.zeros((state.elements, 0))
    block, _ = measure_chunk(empty, empty, state, hysteresis_v=hysteresis_v, tracking_min_hz=tracking_min_hz,
                             final=True)
    if block.count:
        yield block
