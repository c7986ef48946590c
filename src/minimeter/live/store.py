"""The embedded store: a live meter's state, interval data and event log in SQLite
(SPEC §10, S5.2) — one of the live meter's sinks (:mod:`minimeter.live.stream`).

One file, WAL journal, ``synchronous=FULL``: every commit is on disk when it returns, so
a crash (``kill -9``) loses only what happened after the last commit. The store commits
each :class:`~minimeter.live.stream.Snapshot` pushed to it that is a commit point, and
the runner makes one at each change of the Kh = 10 output (each closure and each
opening, every 5 Wh) and at least once a second, so a crash loses less than one Kh = 10
pulse's energy within the meter's rating (S10.1; beyond it, at most 6 line cycles'
energy: see :mod:`minimeter.live.runner`).

What it keeps of the meter is the meter's own :class:`~minimeter.meter.MeterSnapshot`
(as its ``as_dict()`` JSON: exact integers of any size — the register outgrows int64
over a meter's life), together with the live clock (line-cycle index and simulated time)
it was reached at, in the same transaction: the stored state is always one the meter
really had, and a restored meter continues bit for bit. A commit never stores a register
lower than the one already stored (:class:`RegisterWentBackwards`), so the register
never goes backwards across restarts.

Tables (schema 2)
-----------------
``meter``      one row: model, register quanta (a copy of the snapshot's, for the check
               above and for readers without minimeter), cycle index, simulated time [s],
               the meter snapshot (JSON), when it was saved.
``intervals``  one row per 15-minute interval of simulated time and element: energy
               [Wh], seconds covered, average power [W].
``events``     the event log: simulated time [s], kind (an :class:`~minimeter.meter.EventKind`
               string), raised/cleared, element, value, message.

One writer per store (S10.2): :meth:`Store.open` takes an exclusive ``flock`` on a lock
file beside the database (``meter.sqlite3.lock``), held until :meth:`Store.close` or the
end of the process (``kill -9`` releases it too); a second writer on the same store is
refused at once with :class:`StoreLocked` while the first goes on. Readers
(``minimeter export``: :func:`open_existing`) take no lock — WAL lets them read a store
being written. A damaged or tampered store (a meter row whose fields are not what this
module wrote, a snapshot that is not valid JSON, a file that is not SQLite) is a
:class:`StoreError` when it is opened or read, never a traceback.

A schema-1 store (minimeter 0.1: register, reverse register and lifetime closures, no
LED, output or condition state) is migrated when opened: the meter continues from its
registers and closures as that version restarted it — unpowered, outputs open, until
its first line cycle.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, TextIO, TypeVar

try:
    import fcntl
except ImportError:                 # not POSIX: no writer's lock there (a documented limit)
    fcntl = None  # type: ignore[assignment]

from minimeter.errors import MinimeterError
from minimeter.formats import iso8601
from minimeter.meter import Event, EventKind, MeterSnapshot
from minimeter.meter.register import watt_hours
from minimeter.meter.snapshot import InvalidSnapshot
from minimeter.live.stream import IntervalRow, Snapshot

SCHEMA_VERSION = 2
_T = TypeVar("_T")

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
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
_METER_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    model_number      TEXT NOT NULL,
    register_quanta   TEXT NOT NULL,
    cycle_index       INTEGER NOT NULL,
    time_s            REAL NOT NULL,
    snapshot_json     TEXT NOT NULL,
    saved_at_unix     REAL NOT NULL
)
"""
_SYNCHRONOUS = {0: "off", 1: "normal", 2: "full", 3: "extra"}


class StoreError(MinimeterError):
    """A store that cannot be opened or does not belong to this meter."""


class StoreLocked(StoreError):
    """Another live meter is writing this store (S10.2)."""


class RegisterWentBackwards(StoreError):
    """A commit that would store a register lower than the stored one (S5.2)."""


@dataclass(frozen=True)
class StoredMeter:
    """What a store holds about the meter: its snapshot and the live clock it was reached at."""

    meter: MeterSnapshot
    cycle_index: int                   # line cycles fed since simulated time 0
    time_s: float                      # simulated time reached [s]
    saved_at_unix: float = 0.0


class Store:
    """The SQLite store of one meter, and the live meter's durable sink.

    >>> store = Store.open("meter.sqlite3")      # doctest: +SKIP
    """

    def __init__(self, connection: sqlite3.Connection, path: str, lock_fd: int | None = None) -> None:
        self._connection = connection
        self.path = path
        self._lock_fd = lock_fd
        self._events: list[Event] = []                              # pushed, not committed yet
        self._intervals: dict[tuple[float, int], IntervalRow] = {}

    @classmethod
    def open(cls, path: str | Path, *, writer: bool = True) -> "Store":
        """Open (or create) the store at ``path`` in WAL mode with synchronous writes;
        a schema-1 store is migrated (see the module's docstring). A ``writer`` holds the
        store's lock until :meth:`close` (:class:`StoreLocked` if another one holds it)."""
        path = str(path)
        lock_fd = None
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store's folder {parent}: {exc.strerror}") from None
            path = str(Path(path).expanduser())
            lock_fd = _lock(path) if writer else None
        try:
            return cls(_connect(path), path, lock_fd)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise

    def close(self) -> None:
        """Close the database and release the writer's lock."""
        self._connection.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def journal_mode(self) -> str:
        """SQLite's journal mode for this store: ``'wal'`` (``'memory'`` for ``:memory:``)."""
        return str(self._connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    def synchronous(self) -> str:
        """SQLite's synchronous setting for this store: ``'full'``."""
        return _SYNCHRONOUS.get(int(self._connection.execute("PRAGMA synchronous").fetchone()[0]), "unknown")

    # ------------------------------------------------------------------ reading
    def load(self) -> StoredMeter | None:
        """The stored meter, or None for a new store."""
        return self._reading("the stored meter", self._load)

    def _load(self) -> StoredMeter | None:
        row = self._connection.execute(
            "SELECT snapshot_json, cycle_index, time_s, saved_at_unix, register_quanta FROM meter WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        snapshot = MeterSnapshot.from_dict(json.loads(row[0]))
        stored = StoredMeter(snapshot, _exact_int(row[1]), float(row[2]), float(row[3]))
        if _exact_int(row[4]) != snapshot.register_quanta:
            raise ValueError(f"register_quanta {row[4]!r} is not the snapshot's register {snapshot.register_quanta}")
        if stored.cycle_index < 0 or not (math.isfinite(stored.time_s) and stored.time_s >= 0):
            raise ValueError(f"clock (cycle {stored.cycle_index}, {stored.time_s} s) is not a time ≥ 0")
        return stored

    def start_epoch_s(self, now_s: float | None = None) -> float | None:
        """The UNIX time [s] of the meter's simulated time 0 (for ISO 8601 times out): the
        stored one; else ``now_s``, stored in the ``meta`` table by a writer; else None."""
        row = self._reading("the start time", lambda: self._connection.execute(
            "SELECT value FROM meta WHERE key = 'start_epoch_s'").fetchone())
        if row is not None:
            epoch = self._reading("the start time", lambda: float(row[0]))
            if math.isfinite(epoch):
                return epoch
        if now_s is None or (self._lock_fd is None and self.path != ":memory:"):
            return None
        self._connection.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('start_epoch_s', ?)",
                                 (repr(float(now_s)),))
        return float(now_s)

    def _reading(self, what: str, read: Callable[[], _T]) -> _T:
        """``read()``, any damage found in the store a :class:`StoreError` naming it."""
        try:
            return read()
        except StoreError:
            raise
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError, OverflowError, RecursionError,
                InvalidSnapshot) as exc:
            raise StoreError(f"{self.path} is damaged: {what} cannot be read ({exc}); "
                             "use another --db file") from None

    def intervals(self) -> list[IntervalRow]:
        return self._reading("the interval data", self._intervals_rows)

    def _intervals_rows(self) -> list[IntervalRow]:
        rows = self._connection.execute(
            "SELECT start_s, element, energy_wh, covered_s FROM intervals ORDER BY start_s, element"
        ).fetchall()
        return [IntervalRow(float(a), int(b), float(c), float(d)) for a, b, c, d in rows]

    def events(self, limit: int | None = None) -> list[Event]:
        """The event log, oldest first (the last ``limit`` only, if given)."""
        return self._reading("the event log", lambda: self._event_rows(limit))

    def _event_rows(self, limit: int | None) -> list[Event]:
        if limit is None:
            rows = self._connection.execute(
                "SELECT time_s, kind, active, element, value, message FROM events ORDER BY id").fetchall()
        else:
            rows = self._connection.execute(
                "SELECT time_s, kind, active, element, value, message FROM "
                "(SELECT * FROM events ORDER BY id DESC LIMIT ?) ORDER BY id", (int(limit),)).fetchall()
        return [Event(float(t), self._kind(k), bool(a), e, float(v) if v is not None else float("nan"), m)
                for t, k, a, e, v, m in rows]

    def event_counts(self) -> dict[EventKind, int]:
        """Raised events per kind, over the whole log."""
        rows = self._reading("the event log", lambda: self._connection.execute(
            "SELECT kind, COUNT(*) FROM events WHERE active = 1 GROUP BY kind").fetchall())
        return {self._kind(k): int(n) for k, n in rows}

    def _kind(self, text: str) -> EventKind:
        try:
            return EventKind(text)
        except ValueError:
            raise StoreError(f"{self.path}: unknown event kind {text!r} in the log") from None

    # ------------------------------------------------------------------ writing
    def update(self, snapshot: Snapshot) -> None:
        """The sink: at a commit point, commit the meter's state with its clock, and the
        intervals touched and events raised since the last commit, in one durable
        transaction; between commit points, hold the intervals and events."""
        self._events.extend(snapshot.events)
        self._intervals.update(((r.start_s, r.element), r) for r in snapshot.intervals)
        if not snapshot.commit_point:
            return
        self.commit(StoredMeter(snapshot.meter, snapshot.cycle_index, snapshot.time_s),
                    intervals=list(self._intervals.values()), events=self._events)
        self._events, self._intervals = [], {}

    def commit(self, stored: StoredMeter, *, intervals: Iterable[IntervalRow] = (),
               events: Sequence[Event] = ()) -> None:
        """Store the meter with its clock, touched intervals and new events in one durable
        transaction. Raises :class:`RegisterWentBackwards` rather than lower the register."""
        db = self._connection
        db.execute("BEGIN IMMEDIATE")
        try:
            self._check_forward(stored)
            db.execute(
                "INSERT OR REPLACE INTO meter(id, model_number, register_quanta, cycle_index, time_s, "
                "snapshot_json, saved_at_unix) VALUES (1, ?, ?, ?, ?, ?, ?)",
                (stored.meter.model_number, str(stored.meter.register_quanta), int(stored.cycle_index), float(stored.time_s),
                 json.dumps(stored.meter.as_dict()), time.time()),
            )
            db.executemany(
                "INSERT OR REPLACE INTO intervals(start_s, element, energy_wh, covered_s, avg_power_w) "
                "VALUES (?, ?, ?, ?, ?)",
                [(r.start_s, r.element, r.energy_wh, r.covered_s, r.avg_power_w) for r in intervals],
            )
            db.executemany(
                "INSERT INTO events(time_s, kind, active, element, value, message) VALUES (?, ?, ?, ?, ?, ?)",
                [(e.time_s, str(e.kind), int(e.active), e.element, e.value, e.message) for e in events],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _check_forward(self, stored: StoredMeter) -> None:
        row = self._connection.execute("SELECT model_number, register_quanta FROM meter WHERE id = 1").fetchone()
        if row is None:
            return
        meter = stored.meter
        if row[0] != meter.model_number:
            raise StoreError(f"{self.path} holds a {row[0]} meter, not a {meter.model_number}; use another --db file")
        if self._reading("the stored register", lambda: _exact_int(row[1])) > meter.register_quanta:
            raise RegisterWentBackwards(
                f"refusing to store a register of {watt_hours(meter.register_quanta):.6f} Wh below the stored "
                f"{watt_hours(int(row[1])):.6f} Wh (S5.2: the register never decreases)"
            )

    # ------------------------------------------------------------------ export
    def export_intervals_csv(self, out: TextIO) -> int:
        """Write the interval data as CSV (one row per interval and element; the start as
        ISO 8601 UTC and in simulated seconds); returns rows."""
        writer = csv.writer(out)
        writer.writerow(["interval_start", "interval_start_s", "element", "energy_kwh", "average_w", "covered_s"])
        rows = self.intervals()
        at = self._iso_times()
        for r in rows:
            writer.writerow([at(r.start_s), f"{r.start_s:.0f}", r.element, f"{r.energy_wh / 1000:.6f}",
                             f"{r.avg_power_w:.3f}", f"{r.covered_s:.3f}"])
        return len(rows)

    def export_events_csv(self, out: TextIO) -> int:
        """Write the event log as CSV (times as ISO 8601 UTC and simulated seconds); returns rows."""
        writer = csv.writer(out)
        writer.writerow(["time", "time_s", "kind", "state", "element", "value", "message"])
        rows = self.events()
        at = self._iso_times()
        for e in rows:
            writer.writerow([at(e.time_s), f"{e.time_s:.6f}", e.kind, "raised" if e.active else "cleared",
                             "" if e.element is None else e.element, f"{e.value:.6g}", e.message])
        return len(rows)

    def export_registers_csv(self, out: TextIO) -> int:
        """Write the stored registers as CSV, one row per register (SPEC S12.2): the forward
        register, and with the beyond-kWh registers import/export per element, reactive
        energy per quadrant, apparent energy and the maximum demand with its block's start.
        Returns rows (0 for a new store)."""
        writer = csv.writer(out)
        writer.writerow(["time", "time_s", "register", "element", "value", "unit"])
        stored = self.load()
        if stored is None:
            return 0
        at, t_s = self._iso_times(), stored.time_s
        rows: list[tuple[str, int | str, float, str]] = [("forward", "", watt_hours(stored.meter.register_quanta), "Wh")]
        state = stored.meter.quantities
        regs = getattr(state, "registers", None)
        if regs is not None:
            rows += [("import", k + 1, wh, "Wh") for k, wh in enumerate(regs.import_wh)]
            rows += [("export", k + 1, wh, "Wh") for k, wh in enumerate(regs.export_wh)]
            rows += [(f"reactive-q{q}", "", varh, "varh") for q, varh in zip(("1", "2", "3", "4"), regs.varh)]
            rows += [("apparent", "", regs.vah, "VAh"), ("max-demand", "", regs.max_demand_w, "W")]
            if regs.max_demand_time_s is not None:
                rows.append(("max-demand-block-start", "", regs.max_demand_time_s, "s"))
        for name, element, value, unit in rows:
            writer.writerow([at(t_s), f"{t_s:.6f}", name, element, repr(float(value)), unit])
        return len(rows)

    def _iso_times(self) -> Callable[[float], str]:
        """Simulated seconds → ISO 8601 UTC on this meter's calendar ('' for a store that
        never stored its start time)."""
        epoch = self.start_epoch_s()
        return (lambda t_s: "") if epoch is None else (lambda t_s: iso8601(epoch + t_s))


def open_existing(path: str | Path) -> Store:
    """Open a store that must already exist, to read it (``minimeter export``): no
    writer's lock, so it can be read while a meter runs on it."""
    if not Path(path).expanduser().is_file():
        raise StoreError(f"no store at {path} — run `minimeter run --db {path}` first")
    return Store.open(path, writer=False)


def _exact_int(value: object) -> int:
    """An integer column as this module writes it (an int, or a decimal string for the
    registers, which outgrow SQLite's int64); ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


def _lock(path: str) -> int | None:
    """Take the writer's lock of the store at ``path`` (an exclusive, non-blocking flock
    on ``path + '.lock'``); its file descriptor, to close to release it."""
    if fcntl is None:
        return None
    lock_path = path + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open the store's lock file {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreLocked(f"{path} is in use by another running meter (S10.2: one writer per store); "
                          "stop it first, or give this one another --db file") from None
    return fd


def _connect(path: str) -> sqlite3.Connection:
    """The store's connection: WAL, synchronous writes, schema ready."""
    db = None
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if path != ":memory:" and str(mode).lower() != "wal":
            raise StoreError(f"{path}: SQLite refused WAL mode (got {mode!r})")
        db.execute("PRAGMA synchronous=FULL")
        _prepare_schema(db, path)
    except (sqlite3.DatabaseError, StoreError, ValueError, TypeError, KeyError, RecursionError) as exc:
        if db is not None:
            db.close()
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"{path} is not a usable minimeter store: {exc}") from None
    return db


# --------------------------------------------------------------------------- schema
def _prepare_schema(db: sqlite3.Connection, path: str) -> None:
    """Create a new store's tables, or migrate a schema-1 store, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in filter(str.strip, _TABLES.split(";")):
            db.execute(statement)
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} was written by a newer minimeter (store schema {version}); "
                             f"this one reads schema {SCHEMA_VERSION} — upgrade minimeter or use another --db file")
        if version == 1:
            _migrate_from_schema_1(db)
        db.execute(_METER_TABLE.format(name="meter"))
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate_from_schema_1(db: sqlite3.Connection) -> None:
    """Schema 1 kept the registers, the clock and lifetime closures in columns; rewrite
    its meter row as a schema-2 one holding a meter snapshot."""
    row = db.execute("SELECT model_number, register_quanta, reverse_quanta, cycle_index, time_s, closures_json, "
                     "saved_at_unix FROM meter WHERE id = 1").fetchone()
    db.execute(_METER_TABLE.format(name="meter_schema_2"))
    if row is not None:
        model, register, reverse, cycle_index, time_s, closures_json, saved = row
        snapshot = _restarted_meter(model, int(register), int(reverse), json.loads(closures_json), float(time_s))
        db.execute(
            "INSERT INTO meter_schema_2(id, model_number, register_quanta, cycle_index, time_s, snapshot_json, "
            "saved_at_unix) VALUES (1, ?, ?, ?, ?, ?, ?)",
            (model, str(register), int(cycle_index), float(time_s), json.dumps(snapshot.as_dict()), float(saved)))
    db.execute("DROP TABLE meter")
    db.execute("ALTER TABLE meter_schema_2 RENAME TO meter")


def _restarted_meter(model: str, register_quanta: int, reverse_quanta: int, closures: dict,
                     time_s: float) -> MeterSnapshot:
    """A schema-1 meter as minimeter 0.1 restarted it: its registers and lifetime
    closures, unpowered, outputs open, LEDs dark, no condition raised, not fed yet."""
    return MeterSnapshot(
        model_number=model, register_quanta=register_quanta, reverse_quanta=reverse_quanta,
        closures=tuple((str(name), int(n)) for name, n in closures.items()),
        outputs_on=tuple((str(name), False) for name in closures),
        power_led=False, load_led=False, reverse_led=False, powered=False, active=(),
        judged_volts=None, judged_amps=None, time_s=time_s, mode=None, closed=False,
    )
