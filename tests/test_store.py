"""SPEC §10 / S5.2: the SQLite store — exact register, WAL, never backwards, interval data,
event log, CSV export."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import threading
from dataclasses import replace

import pytest

from minimeter.live.runner import LiveMeter
from minimeter.meter import EventKind, Meter
from minimeter.live.store import RegisterWentBackwards, Store, StoredMeter, StoreError
from .test_live_support import MINIMETER, QUANTA_PER_WH, constant_installation


def _stored(quanta: int, *, prefix: str = "7B", cycle_index: int = 0, reverse_quanta: int = 0) -> StoredMeter:
    """A meter of ``prefix`` whose registers hold these exact quanta, at ``cycle_index``
    line cycles of 60 Hz."""
    meter = Meter.for_model(prefix, ct_rating="200A", register_quanta=quanta)
    state = replace(meter.state(), reverse_quanta=reverse_quanta)
    return StoredMeter(state, cycle_index, cycle_index / 60)


def test_s10_1_registers_beyond_int64_round_trip_exactly(tmp_path):
    # 2**70 quanta is 2**30 Wh ≈ 1.07 GWh: far beyond int64 as a quanta count, and
    # 2**60 + 1 quanta of reverse energy is beyond a float's 53-bit mantissa.
    quanta, reverse = (1 << 70) + 123_456_789, (1 << 60) + 1
    store = Store.open(tmp_path / "m.sqlite3")
    store.commit(_stored(quanta, cycle_index=7, reverse_quanta=reverse))
    store.close()
    loaded = Store.open(tmp_path / "m.sqlite3").load()
    assert loaded.meter.register_quanta == quanta and loaded.meter.reverse_quanta == reverse
    assert loaded.cycle_index == 7 and loaded.time_s == 7 / 60
    restored = Meter.for_model("7B", ct_rating="200A")
    restored.restore(loaded.meter)
    assert restored.register_quanta == quanta and restored.reverse_quanta == reverse
    assert restored.watt_hours == pytest.approx(2.0 ** 30)


def test_s10_1_store_uses_wal_and_synchronous_full(tmp_path):
    path = tmp_path / "m.sqlite3"
    store = Store.open(path)
    assert store.synchronous() == "full" and store.journal_mode() == "wal"
    store.commit(_stored(5))
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT register_quanta FROM meter").fetchone()[0] == "5"


def test_s5_2_store_refuses_a_lower_register(tmp_path):
    store = Store.open(tmp_path / "m.sqlite3")
    store.commit(_stored(10 * QUANTA_PER_WH))
    with pytest.raises(RegisterWentBackwards):
        store.commit(_stored(10 * QUANTA_PER_WH - 1))
    assert store.load().meter.register_quanta == 10 * QUANTA_PER_WH


def test_s10_1_store_of_another_model_is_refused(tmp_path):
    store = Store.open(tmp_path / "m.sqlite3")
    store.commit(_stored(1, prefix="MO"))
    with pytest.raises(StoreError, match="MO-200A-LCD"):
        LiveMeter(constant_installation((100.0, "L1")), store=store, speed=0)


def test_a_store_from_a_newer_minimeter_is_refused(tmp_path):
    path = tmp_path / "m.sqlite3"
    Store.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer minimeter"):
        Store.open(path)


def test_interval_data_15_min_kwh_and_average_w_per_element(tmp_path):
    # 1200 W on L1 and 600 W on L2 for one hour: each 15-minute interval holds
    # 1200 W × 0.25 h = 300 Wh on element 1 and 150 Wh on element 2.
    store = Store.open(tmp_path / "m.sqlite3")
    live = LiveMeter(constant_installation((1200.0, "L1"), (600.0, "L2")), store=store, speed=0)
    live.run(threading.Event(), hours=1.0)
    rows = store.intervals()
    assert [(r.start_s, r.element) for r in rows] == [(s, e) for s in (0.0, 900.0, 1800.0, 2700.0) for e in (1, 2)]
    for r in rows:
        expected = 300.0 if r.element == 1 else 150.0
        assert r.energy_wh == pytest.approx(expected, abs=1e-6)
        assert r.avg_power_w == pytest.approx(expected * 4, abs=1e-5)
        assert r.covered_s == pytest.approx(900.0)
    assert store.load().meter.register_quanta / QUANTA_PER_WH == pytest.approx(1800.0, abs=1e-6)


def test_export_writes_intervals_and_events_as_csv(tmp_path):
    db = tmp_path / "m.sqlite3"
    store = Store.open(db)
    # 200 W on L1, 1000 W on L2, CT2 reversed: net −800 W → a reverse-power event.
    inst = constant_installation((200.0, "L1"), (1000.0, "L2")).with_fault("ct-reversed", ct="CT2")
    live = LiveMeter(inst, store=store, speed=0)
    live.run(threading.Event(), hours=0.5)
    store.close()
    intervals_csv, events_csv = tmp_path / "i.csv", tmp_path / "e.csv"
    proc = subprocess.run([MINIMETER, "export", "--db", str(db), "--intervals", str(intervals_csv),
                           "--events", str(events_csv)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(intervals_csv.read_text())))
    assert len(rows) == 4                                         # 2 intervals × 2 elements
    e1 = [r for r in rows if r["element"] == "1"]
    assert float(e1[0]["energy_kwh"]) == pytest.approx(0.05, abs=1e-6)      # 200 W × 0.25 h
    assert float(e1[0]["average_w"]) == pytest.approx(200.0, abs=1e-3)
    e2 = [r for r in rows if r["element"] == "2"]
    assert float(e2[0]["energy_kwh"]) == pytest.approx(-0.25, abs=1e-6)     # reversed: −1000 W × 0.25 h
    events = list(csv.DictReader(io.StringIO(events_csv.read_text())))
    assert any(e["kind"] == "reverse-power" and e["state"] == "raised" for e in events)


def test_s12_2_export_writes_the_registers_beyond_kwh(tmp_path):
    # 1200 W on L1 and 600 W on L2 at PF 0.8 lagging for half an hour: Q = P·tan(acos 0.8)
    # = 0.75 P, S = P / 0.8 per element; all of it imported, reactive energy in quadrant I.
    db = tmp_path / "m.sqlite3"
    store = Store.open(db)
    live = LiveMeter(constant_installation((1200.0, "L1"), (600.0, "L2"), pf=0.8), store=store, speed=0)
    live.run(threading.Event(), hours=0.5)
    store.close()
    out = tmp_path / "r.csv"
    proc = subprocess.run([MINIMETER, "export", "--db", str(db), "--registers", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = {(r["register"], r["element"]): float(r["value"]) for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert rows[("forward", "")] == pytest.approx(900.0, rel=1e-6)              # (1200 + 600) W × 0.5 h
    assert rows[("import", "1")] == pytest.approx(600.0, rel=1e-6)
    assert rows[("import", "2")] == pytest.approx(300.0, rel=1e-6)
    assert rows[("export", "1")] == 0.0 and rows[("export", "2")] == 0.0
    assert rows[("reactive-q1", "")] == pytest.approx(0.75 * 900.0, rel=1e-4)   # 675 varh
    assert rows[("reactive-q2", "")] == rows[("reactive-q3", "")] == rows[("reactive-q4", "")] == 0.0
    assert rows[("apparent", "")] == pytest.approx(900.0 / 0.8, rel=1e-4)       # 1125 VAh
    assert rows[("max-demand", "")] == pytest.approx(1800.0, rel=1e-6)          # a finished 15-min block


def test_export_without_a_store_is_one_clear_error(tmp_path):
    proc = subprocess.run([MINIMETER, "export", "--db", str(tmp_path / "none.sqlite3")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no store" in proc.stderr and "Traceback" not in proc.stderr


_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE meter (
    id INTEGER PRIMARY KEY CHECK (id = 1), model_number TEXT NOT NULL, register_quanta TEXT NOT NULL,
    reverse_quanta TEXT NOT NULL, cycle_index INTEGER NOT NULL, time_s REAL NOT NULL,
    closures_json TEXT NOT NULL, outputs_json TEXT NOT NULL, counter_value INTEGER, saved_at_unix REAL NOT NULL);
CREATE TABLE intervals (
    start_s REAL NOT NULL, element INTEGER NOT NULL, energy_wh REAL NOT NULL, covered_s REAL NOT NULL,
    avg_power_w REAL NOT NULL, PRIMARY KEY (start_s, element));
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time_s REAL NOT NULL, kind TEXT NOT NULL, active INTEGER NOT NULL,
    element INTEGER, value REAL, message TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def test_s10_1_a_schema_1_store_is_migrated_and_the_meter_carries_on(tmp_path):
    # A store as minimeter 0.1 left it after 20 min of 1200 W on L1: 400 Wh, exactly
    # 400 × 2⁴⁰ quanta, 72 000 line cycles, closures floor(400/10) = 40, floor(400/100) = 4,
    # one power-loss event, and the open interval 900–1200 s holding 1200 W × 300 s = 100 Wh.
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA_1)
        db.execute("INSERT INTO meter VALUES (1, '7B-200A-LCD', ?, '7', 72000, 1200.0, ?, ?, NULL, 0.0)",
                   (str(400 * QUANTA_PER_WH), '{"10": 40, "100": 4, "1000": 0}', '{"10": true, "100": true, "1000": true}'))
        db.execute("INSERT INTO intervals VALUES (0.0, 1, 300.0, 900.0, 1200.0), (0.0, 2, 0.0, 900.0, 0.0), "
                   "(900.0, 1, 100.0, 300.0, 1200.0), (900.0, 2, 0.0, 300.0, 0.0)")
        db.execute("INSERT INTO events(time_s, kind, active, element, value, message) "
                   "VALUES (0.0, 'power-loss', 0, NULL, 120.0, 'power restored: supply 120.0 V')")
    db.close()
    store = Store.open(path)
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone()[0] == "2"
    live = LiveMeter(constant_installation((1200.0, "L1")), store=store, speed=0)
    assert live.meter.register_quanta == 400 * QUANTA_PER_WH and live.meter.reverse_quanta == 7
    assert live.time_s == 1200.0
    assert {n: live.meter.closures(n) for n in live.meter.output_names} == {"10": 40, "100": 4, "1000": 0}
    # 0.53 h more at 1200 W: 636 Wh → 1036 Wh; closures floor(1036/10) = 103, 10, 1
    live.run(threading.Event(), hours=0.53)
    assert live.meter.watt_hours == pytest.approx(1036.0, abs=1e-6)
    assert {n: live.meter.closures(n) for n in live.meter.output_names} == {"10": 103, "100": 10, "1000": 1}
    # the open interval went on from its 100 Wh: 1200 W × 900 s = 300 Wh
    second = [r for r in store.intervals() if r.start_s == 900.0 and r.element == 1]
    assert second[0].energy_wh == pytest.approx(300.0, abs=1e-6) and second[0].covered_s == pytest.approx(900.0)
    old = store.events()[0]
    assert old.kind is EventKind.POWER_LOSS and not old.active
    store.close()
    assert Store.open(path).load().meter.register_quanta == live.meter.register_quanta
