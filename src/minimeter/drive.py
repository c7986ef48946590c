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

from typing import Any, Iterable, Iterator

import numpy as np

from minimeter.meter import CycleBlock, Meter, Update
from minimeter.meter.metrology import LineCycleState, measure_chunk

SampleChunk = tuple[np.ndarray, np.ndarray]      # (volts (e, n) [V], amps (e, n) [A])


def feed_samples(meter: Meter, chunks: Iterable[SampleChunk], sample_rate_hz: float, *,
                 amps_are: str = "primary", close: bool = True) -> Iterator[Update]:
    """Feed sampled chunks to ``meter``; yield each chunk's :class:`Update`, and the
    closing update (the trailing partial cycle) when ``close``."""
    for volts, amps in chunks:
        yield meter.feed(volts, amps, sample_rate_hz, amps_are=amps_are)
    if close:
        yield meter.close()


def feed_cycles(meter: Meter, blocks: Iterable[CycleBlock], *, close: bool = True) -> Iterator[Update]:
    """Feed per-cycle blocks to ``meter`` (the phasor path); yield each block's update,
    and the closing update when ``close``."""
    for block in blocks:
        yield meter.feed_cycles(block)
    if close:
        yield meter.close()


def feed_source(meter: Meter, source: Any, duration_s: float, *, sample_rate_hz: float | None = None,
                chunk_frames: int = 1 << 16, cycles_per_block: int = 3600) -> Iterator[tuple[Update, float]]:
    """Feed ``duration_s`` [s] of a synthetic ``source`` (:class:`~minimeter.sources.service.SyntheticSource`)
    into ``meter`` and yield each update with the simulated time reached [s].
    ``sample_rate_hz`` None selects the phasor path. The meter is closed at the end."""
    if sample_rate_hz is None:
        for block in source.cycles(duration_s, cycles_per_block):
            update = meter.feed_cycles(block)
            yield update, float(block.end_s[-1]) if block.count else meter.time_s
    else:
        for frames in source.frames(duration_s, sample_rate_hz, chunk_frames):
            update = meter.feed(frames.volts, frames.amps, sample_rate_hz)
            yield update, frames.start_s + frames.count / sample_rate_hz
    yield meter.close(), duration_s


def recording_chunks(reader: Any, resolved_map: Any, chunk_frames: int) -> Iterator[SampleChunk]:
    """A recording's frames through its resolved channel map, chunk by chunk:
    ``(volts (e, n) [V], amps (e, n) [A primary])``."""
    for frames in reader.chunks(chunk_frames):
        yield resolved_map.split(frames)


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
