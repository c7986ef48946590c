"""Running a fleet on Dask and writing its results (SPEC S14.2).

:func:`run_fleet` cuts the fleet's meters into partitions of consecutive indices, one
Dask task each (:func:`minimeter.fleet.meter_run.run_partition`), and writes each
partition's tables as they come back: ``DIR/<table>/part-NNNNN.parquet`` for the tables
``meters`` (one row per meter: registers, truth, injected fault, diagnosis),
``intervals`` (energy per meter, element and interval), ``closures`` (per meter and
output), ``registers`` (per meter: the register and the S12.2 ones) and ``events``, plus ``DIR/fleet.json`` (what was run). Parts are named by
their first meter, so the same fleet gives the same files whatever the workers;
:func:`read_table` reads a table back sorted by meter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pandas as pd

from minimeter.errors import MinimeterError
from minimeter.formats.fleet import Fleet
from minimeter.fleet.meter_run import TABLES, PartitionResult, run_partition

DEFAULT_PARTITION_METERS = 4
MAX_PARTITION_METERS = 10_000
_SORT = {"meters": ["meter"], "intervals": ["meter", "element", "start_s"], "closures": ["meter", "output"],
         "registers": ["meter", "register", "element"],
         "events": ["meter", "time_s", "kind"]}


class FleetResultsError(MinimeterError, ValueError):
    """A results folder that does not hold a fleet's results."""


def partitions(meters: int, size: int) -> list[list[int]]:
    """Consecutive meter indices in partitions of ``size`` (the last may be shorter)."""
    if not 1 <= size <= MAX_PARTITION_METERS:
        raise MinimeterError(f"--partition {size} is outside 1 … {MAX_PARTITION_METERS} meters")
    return [list(range(lo, min(lo + size, meters))) for lo in range(0, meters, size)]


def _prepare(out: Path) -> None:
    """Make ``out``, removing results of an earlier run (only the tables we write)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        shutil.rmtree(out / name, ignore_errors=True)
        (out / name).mkdir()


def write_partition(out: Path, part: PartitionResult) -> None:
    """Write a partition's Parquet files (encoded by the worker) under ``out``."""
    for name, data in part.parquet.items():
        (out / name / f"part-{part.first:07d}.parquet").write_bytes(data)


def run_fleet(fleet: Fleet, out: str | Path, client, *, partition_meters: int = DEFAULT_PARTITION_METERS,
              on_done: Callable[[int], None] | None = None) -> Path:
    """Run every meter of ``fleet`` on the Dask ``client`` and write the results under
    ``out``; ``on_done(meters)`` after each partition. Returns ``out``."""
    from distributed import as_completed

    out = Path(out)
    chunks = partitions(fleet.meters, partition_meters)
    _prepare(out)
    shared = client.scatter(fleet, broadcast=True, hash=False)    # a key of its own: an earlier run's release cannot take it
    futures = [client.submit(run_partition, shared, chunk, pure=False) for chunk in chunks]
    for future in as_completed(futures):
        part = future.result()
        write_partition(out, part)
        future.release()
        if on_done is not None:
            on_done(part.meters)
    about = {"name": fleet.name, "seed": fleet.seed, "meters": fleet.meters, "period_s": fleet.period_s,
             "interval_s": fleet.interval_s, "description": fleet.description}
    (out / "fleet.json").write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")
    return out


def read_table(out: str | Path, name: str) -> pd.DataFrame:
    """Table ``name`` of a results folder, sorted by meter (and element, time, output)."""
    folder = Path(out) / name
    if name not in TABLES or not folder.is_dir():
        raise FleetResultsError(f"{out}: no '{name}' table — is this the --out folder of `minimeter fleet run`?")
    frame = pd.read_parquet(folder)
    return frame.sort_values(_SORT[name], kind="stable").reset_index(drop=True)


def read_about(out: str | Path) -> dict:
    """``fleet.json`` of a results folder."""
    path = Path(out) / "fleet.json"
    if not path.is_file():
        raise FleetResultsError(f"{out}: no fleet.json — is this the --out folder of `minimeter fleet run`?")
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["run_fleet", "read_table", "read_about", "partitions", "FleetResultsError", "DEFAULT_PARTITION_METERS"]
