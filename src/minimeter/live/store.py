"""The embedded store: a running meter's register, outputs, interval data and event log
in SQLite (SPEC §10, S5.2).

One file, WAL journal, ``synchronous=FULL``: every :meth:`Store.commit` is on disk when
it returns, so a crash (``kill -9``) loses only what happened after the last commit.
The live loop (:mod:`minimeter.live`) commits at each change of the Kh = 10 output
(each closure and each opening, every 5 Wh) and at least once a second, so a crash
loses less than one Kh = 10 pulse's energy (S10.1).

The register is stored exactly, as the decimal text of :attr:`Meter.register_quanta`
(an integer count of 2⁻⁴⁰ Wh that outgrows int64 over a meter's life), together with
the simulated time and line-cycle index it was reached at, in the same transaction: the
stored state is always one the meter really had. A commit never stores a register lower
than the one already stored (:class:`RegisterWentBackwards`), so the register never
goes backwards across restarts.

Tables
------
``meter``      one row: model, register quanta, reverse quanta, cycle index, simulated
               time [s], lifetime closures per output, last output states, counter.
``intervals``  one row per 15-minute interval of simulated time and element: energy
               [Wh], seconds covered, average power [W].
``events``     the event log: simulated time [s], kind, raised/cleared, element, value,
               message.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from minimeter.errors import MinimeterError

INTERVAL_S = 900.0                 # 15-minute interval data
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meter (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    model_number      TEXT NOT NULL,
    register_quanta   TEXT NOT NULL,
    reverse_quanta    TEXT NOT NULL,
    cycle_index       INTEGER NOT NULL,
    time_s            REAL NOT NULL,
    closures_json     TEXT NOT NULL,
    outputs_json      TEXT NOT NULL,
    counter_value     INTEGER,
    saved_at_unix     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS intervals (
    start_s      REAL NOT NULL,
    element      INTEGER NOT NULL,
    energy_wh    REAL NOT NULL,
    covered_s    REAL NOT NULL,
    avg_power_w  REAL NOT NULL,
    PRIMARY KEY (start_s, element)
);
CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time_s    REAL NOT NULL,
    kind      TEXT NOT NULL,
    active    INTEGER NOT NULL,
    element   INTEGER,
    value     REAL,
    message   TEXT NOT NULL
);
"""


class StoreError(MinimeterError):
    """A store that cannot be opened or does not belong to this meter."""


class RegisterWentBackwards(StoreError):
    """A commit that would store a register lower than the stored one (S5.2)."""


@dataclass(frozen=True)
class MeterState:
    """What a store holds about the meter, enough to restart it where it was."""

    model_number: str
    register_quanta: int               # exact register [2⁻⁴⁰ Wh]
    reverse_quanta: int                # diagnostics reverse register [2⁻⁴⁰ Wh]
    cycle_index: int                   # line cycles fed since simulated time 0
    time_s: float                      # simulated time reached [s]
    closures: dict = field(default_factory=dict)      # output → lifetime closures
    outputs_on: dict = field(default_factory=dict)    # output → closed at the last commit
    counter_value: int | None = None
    saved_at_unix: float = 0.0

    @property
    def watt_hours(self) -> float:
        """The stored register [Wh] (a float view)."""
        return self.register_quanta / (1 << 40)


@dataclass(frozen=True)
class IntervalRow:
    """Energy of one element over one 15-minute interval of simulated time."""

    start_s: float
    element: int
    energy_wh: float
    covered_s: float

    @property
    def avg_power_w(self) -> float:
        """Average power over the covered part of the interval [W]."""
        return self.energy_wh * 3600.0 / self.covered_s if self.covered_s > 0 else 0.0


@dataclass(frozen=True)
class EventRow:
    time_s: float
    kind: str
    active: bool
    element: int | None
    value: float
    message: str


class Store:
    """The SQLite store of one meter.

    >>> store = Store.open("meter.sqlite3")      # doctest: +SKIP
    """

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._db = connection
        self.path = path
        self.commits = 0

    @classmethod
    def open(cls, path: str | Path) -> "Store":
        """Open (or create) the store at ``path`` in WAL mode with synchronous writes."""
        path = str(path)
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store's folder {parent}: {exc.strerror}") from None
            path = str(Path(path).expanduser())
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a usable minimeter store: {exc}") from None
        if path != ":memory:" and str(mode).lower() != "wal":
            raise StoreError(f"{path}: SQLite refused WAL mode (got {mode!r})")
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ reading
    def load(self) -> MeterState | None:
        """The stored meter state, or None for a new store."""
        row = self._db.execute(
            "SELECT model_number, register_quanta, reverse_quanta, cycle_index, time_s, closures_json, "
            "outputs_json, counter_value, saved_at_unix FROM meter WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        return MeterState(
            model_number=row[0], register_quanta=int(row[1]), reverse_quanta=int(row[2]),
            cycle_index=int(row[3]), time_s=float(row[4]), closures=json.loads(row[5]),
            outputs_on=json.loads(row[6]), counter_value=row[7], saved_at_unix=float(row[8]),
        )

    def intervals(self) -> list[IntervalRow]:
        rows = self._db.execute(
            "SELECT start_s, element, energy_wh, covered_s FROM intervals ORDER BY start_s, element"
        ).fetchall()
        return [IntervalRow(float(a), int(b), float(c), float(d)) for a, b, c, d in rows]

    def events(self, limit: int | None = None) -> list[EventRow]:
        """The event log, oldest first (the last ``limit`` only, if given)."""
        if limit is None:
            rows = self._db.execute(
                "SELECT time_s, kind, active, element, value, message FROM events ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                "SELECT time_s, kind, active, element, value, message FROM "
                "(SELECT * FROM events ORDER BY id DESC LIMIT ?) ORDER BY id", (int(limit),)).fetchall()
        return [EventRow(float(t), k, bool(a), e, float(v) if v is not None else float("nan"), m)
                for t, k, a, e, v, m in rows]

    def event_counts(self) -> dict[str, int]:
        """Raised events per kind, over the whole log."""
        rows = self._db.execute("SELECT kind, COUNT(*) FROM events WHERE active = 1 GROUP BY kind").fetchall()
        return {k: int(n) for k, n in rows}

    # ------------------------------------------------------------------ writing
    def commit(
        self,
        state: MeterState,
        *,
        intervals: Iterable[IntervalRow] = (),
        events: Sequence[EventRow] = (),
    ) -> None:
        """Store the meter's state, its touched intervals and new events in one durable
        transaction. Raises :class:`RegisterWentBackwards` rather than lower the register."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT model_number, register_quanta FROM meter WHERE id = 1").fetchone()
            if row is not None:
                if row[0] != state.model_number:
                    raise StoreError(f"{self.path} holds a {row[0]} meter, not a {state.model_number}")
                if int(row[1]) > state.register_quanta:
                    raise RegisterWentBackwards(
                        f"refusing to store a register of {state.watt_hours:.6f} Wh below the stored "
                        f"{int(row[1]) / (1 << 40):.6f} Wh (S5.2: the register never decreases)"
                    )
            db.execute(
                "INSERT OR REPLACE INTO meter(id, model_number, register_quanta, reverse_quanta, cycle_index, "
                "time_s, closures_json, outputs_json, counter_value, saved_at_unix) "
                "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (state.model_number, str(state.register_quanta), str(state.reverse_quanta), state.cycle_index,
                 state.time_s, json.dumps(state.closures), json.dumps(state.outputs_on), state.counter_value,
                 time.time()),
            )
            db.executemany(
                "INSERT OR REPLACE INTO intervals(start_s, element, energy_wh, covered_s, avg_power_w) "
                "VALUES (?, ?, ?, ?, ?)",
                [(r.start_s, r.element, r.energy_wh, r.covered_s, r.avg_power_w) for r in intervals],
            )
            db.executemany(
                "INSERT INTO events(time_s, kind, active, element, value, message) VALUES (?, ?, ?, ?, ?, ?)",
                [(e.time_s, e.kind, int(e.active), e.element, e.value, e.message) for e in events],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self.commits += 1

    # ------------------------------------------------------------------ export
    def export_intervals_csv(self, out: TextIO) -> int:
        """Write the interval data as CSV (one row per interval and element); returns rows."""
        writer = csv.writer(out)
        writer.writerow(["interval_start_s", "element", "energy_kwh", "average_w", "covered_s"])
        rows = self.intervals()
        for r in rows:
            writer.writerow([f"{r.start_s:.0f}", r.element, f"{r.energy_wh / 1000:.6f}",
                             f"{r.avg_power_w:.3f}", f"{r.covered_s:.3f}"])
        return len(rows)

    def export_events_csv(self, out: TextIO) -> int:
        """Write the event log as CSV; returns rows."""
        writer = csv.writer(out)
        writer.writerow(["time_s", "kind", "state", "element", "value", "message"])
        rows = self.events()
        for e in rows:
            writer.writerow([f"{e.time_s:.6f}", e.kind, "raised" if e.active else "cleared",
                             "" if e.element is None else e.element, f"{e.value:.6g}", e.message])
        return len(rows)


def open_existing(path: str | Path) -> Store:
    """Open a store that must already exist (for ``minimeter export``)."""
    if not Path(path).expanduser().is_file():
        raise StoreError(f"no store at {path} — run `minimeter run --db {path}` first")
    return Store.open(path)
