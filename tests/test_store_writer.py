"""SPEC S10.2: one writer per store — a second ``minimeter run`` on a store is refused at
once while the first goes on — and a damaged or tampered store is a clear ``StoreError``
(a one-line message from ``minimeter run``), never a traceback."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from minimeter.live.store import Store, StoredMeter, StoreError, StoreLocked
from minimeter.meter import Meter

from .test_live_support import MINIMETER, start_run

QUIET = ["--port", "0", "--modbus-port", "0"]


def _stored_time_s(db) -> float:
    """The simulated time stored, read with plain sqlite3 (0 before the first commit)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute("SELECT time_s FROM meter WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        row = None
    finally:
        con.close()
    return float(row[0]) if row else 0.0


def _wait_for_progress(db, proc, beyond_s: float) -> float:
    deadline = time.monotonic() + 30
    while (t := _stored_time_s(db) if db.exists() else 0.0) <= beyond_s:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the first meter made no progress"
        time.sleep(0.05)
    return t


def test_s10_2_a_second_run_on_the_store_is_refused_while_the_first_goes_on(tmp_path):
    db = tmp_path / "m.sqlite3"
    first = start_run("--db", str(db), "--speed", "3600", "--hours", "0", *QUIET)
    try:
        t_before = _wait_for_progress(db, first, 0.0)
        second = subprocess.run([MINIMETER, "run", "--no-panel", "--db", str(db), "--speed", "0", "--hours", "1",
                                 *QUIET], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert "in use by another running meter" in second.stderr + second.stdout
        assert "Traceback" not in second.stderr + second.stdout
        # the first goes on committing: its stored clock passes where it was
        _wait_for_progress(db, first, _stored_time_s(db) + 1.0)
        assert _stored_time_s(db) > t_before
    finally:
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=30)
    assert first.returncode == 0, out
    assert "refusing to store" not in out


_HOLD = """
import sys, time
from minimeter.live.store import Store
store = Store.open(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
store.close()
"""


def test_s10_2_store_open_in_another_process_is_refused_until_the_first_closes(tmp_path):
    db = tmp_path / "m.sqlite3"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLocked, match="one writer per store"):
            Store.open(db)
        Store.open(db, writer=False).close()                  # a reader (export) is fine
    finally:
        holder.communicate("\n", timeout=30)
    Store.open(db).close()                                     # released: a writer again


def _tampered(tmp_path, column: str, value) -> str:
    db = tmp_path / "m.sqlite3"
    store = Store.open(db)
    meter = Meter.for_model("7B", ct_rating="200A", register_quanta=12345)
    store.commit(StoredMeter(meter.state(), 60, 1.0))
    store.close()
    con = sqlite3.connect(db)
    con.execute(f"UPDATE meter SET {column} = ? WHERE id = 1", (value,))
    con.commit()
    con.close()
    return str(db)


@pytest.mark.parametrize("column, value, message", [
    ("register_quanta", "lots", "stored meter"),
    ("register_quanta", "99999", "not the snapshot's register"),
    ("snapshot_json", "{not json", "stored meter"),
    ("snapshot_json", "[" * 100_000 + "]" * 100_000, "stored meter"),
    ("snapshot_json", '{"format": "minimeter-meter-snapshot"}', "stored meter"),
    ("cycle_index", "x", "stored meter"),
    ("time_s", -5.0, "time ≥ 0"),
])
def test_s10_2_a_tampered_store_is_a_store_error(tmp_path, column, value, message):
    db = _tampered(tmp_path, column, value)
    store = Store.open(db)
    try:
        with pytest.raises(StoreError, match=message):
            store.load()
    finally:
        store.close()


def test_s10_2_minimeter_run_on_a_tampered_store_is_one_line(tmp_path):
    db = _tampered(tmp_path, "register_quanta", "lots")
    result = subprocess.run([MINIMETER, "run", "--no-panel", "--db", db, "--speed", "0", "--hours", "1", *QUIET],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "is damaged" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_s10_2_a_file_that_is_not_a_store_is_a_store_error(tmp_path):
    db = tmp_path / "m.sqlite3"
    db.write_bytes(b"\xff" * 4096)
    for _ in range(2):                 # the failed open released its lock: the same error, not "in use"
        with pytest.raises(StoreError, match="not a usable minimeter store"):
            Store.open(db)
    db.unlink()
    Store.open(db).close()
