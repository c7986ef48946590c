"""SPEC §10 / S5.2: the SQLite store — exact register, WAL, never backwards, interval data,
event log, CSV export."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import threading

import pytest

from minimeter.live.runner import LiveMeter
from minimeter.meter.core import Meter
from minimeter.live.store import MeterState, RegisterWentBackwards, Store, StoreError
from .test_live_support import MINIMETER, QUANTA_PER_WH, constant_installation


def _state(quanta: int, **kw) -> MeterState:
    base = dict(model_number="7B-200A-LCD", register_quanta=quanta, reverse_quanta=0, cycle_index=0, time_s=0.0)
    base.update(kw)
    return MeterState(**base)


def test_s10_1_register_beyond_int64_round_trips_exactly(tmp_path):
    # 2**70 quanta is 2**30 Wh ≈ 1.07 GWh: far beyond int64 as a quanta count.
    quanta = (1 << 70) + 123_456_789
    store = Store.open(tmp_path / "m.sqlite3")
    store.commit(_state(quanta, cycle_index=7, time_s=7 / 60))
    store.close()
    loaded = Store.open(tmp_path / "m.sqlite3").load()
    assert loaded.register_quanta == quanta
    assert loaded.cycle_index == 7
    restored = Meter.for_model("7B", ct_rating="200A", register_quanta=loaded.register_quanta)
    assert restored.register_quanta == quanta
    assert restored.watt_hours == pytest.approx(2.0 ** 30)


def test_s10_1_store_uses_wal_and_synchronous_full(tmp_path):
    path = tmp_path / "m.sqlite3"
    store = Store.open(path)
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2       # FULL
    store.commit(_state(5))
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT register_quanta FROM meter").fetchone()[0] == "5"


def test_s5_2_store_refuses_a_lower_register(tmp_path):
    store = Store.open(tmp_path / "m.sqlite3")
    store.commit(_state(10 * QUANTA_PER_WH))
    with pytest.raises(RegisterWentBackwards):
        store.commit(_state(10 * QUANTA_PER_WH - 1))
    assert store.load().register_quanta == 10 * QUANTA_PER_WH


def test_s10_1_store_of_another_model_is_refused(tmp_path):
    store = Store.open(tmp_path / "m.sqlite3")
    store.commit(_state(1, model_number="MO-200A-LCD"))
    with pytest.raises(StoreError, match="MO-200A-LCD"):
        LiveMeter(constant_installation((100.0, "L1")), store=store, speed=0)


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
    assert store.load().register_quanta / QUANTA_PER_WH == pytest.approx(1800.0, abs=1e-6)


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


def test_export_without_a_store_is_one_clear_error(tmp_path):
    proc = subprocess.run([MINIMETER, "export", "--db", str(tmp_path / "none.sqlite3")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no store" in proc.stderr and "Traceback" not in proc.stderr
