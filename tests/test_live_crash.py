"""SPEC S10.1 / S5.2 with real processes: ``minimeter run`` killed with SIGKILL at random
moments 20 times and restarted each time never loses its register beyond 20 × 10 Wh
against an uninterrupted twin, and the stored register never decreases; SIGTERM is a
clean stop."""

from __future__ import annotations

import random
import re
import signal
import sqlite3
import subprocess
import time

import pytest

from .test_live_support import MINIMETER, QUANTA_PER_WH

KILLS = 20
UNTIL_HOURS = 24.0          # the built-in household day, flat out (a few seconds)
RUN_ARGS = ["--no-panel", "--port", "0", "--modbus-port", "0", "--speed", "0", "--hours", "0",
            "--until-hours", str(UNTIL_HOURS)]


def _stored(db) -> tuple[int, float]:
    """(register quanta, simulated time [s]) as stored, read without the meter's code."""
    if not db.exists():
        return (0, 0.0)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute("SELECT register_quanta, time_s FROM meter WHERE id = 1").fetchone()
    except sqlite3.OperationalError:          # the schema is not there yet
        row = None
    finally:
        con.close()
    return (int(row[0]), float(row[1])) if row else (0, 0.0)


def _run(db, *extra) -> subprocess.Popen:
    return subprocess.Popen([MINIMETER, "run", "--db", str(db), *RUN_ARGS, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_s10_1_kill_9_twenty_times_loses_at_most_20_pulses(tmp_path):
    rng = random.Random(20261124)
    db = tmp_path / "crashy.sqlite3"
    last_quanta, last_time = 0, 0.0
    kills = 0
    for _ in range(KILLS * 3):                    # bounded: enough tries for 20 kills mid-run
        if kills == KILLS:
            break
        proc = _run(db)
        # wait until this run has committed progress, then kill it a random moment later
        deadline = time.monotonic() + 30
        while _stored(db)[1] <= last_time and proc.poll() is None:
            assert time.monotonic() < deadline, "the meter made no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=30)
        quanta, t = _stored(db)
        assert quanta >= last_quanta, "S5.2: the stored register went backwards"
        assert t >= last_time
        last_quanta, last_time = quanta, t
        if t >= UNTIL_HOURS * 3600 - 1:
            break
    assert kills == KILLS, f"only {kills} kills landed mid-run"
    # finish the day
    final = _run(db)
    out, _ = final.communicate(timeout=120)
    assert final.returncode == 0, out
    crashed_quanta, crashed_time = _stored(db)
    assert crashed_quanta >= last_quanta
    # the uninterrupted twin
    twin_db = tmp_path / "twin.sqlite3"
    twin = _run(twin_db)
    out, _ = twin.communicate(timeout=120)
    assert twin.returncode == 0, out
    twin_quanta, twin_time = _stored(twin_db)
    assert crashed_time == pytest.approx(twin_time) == pytest.approx(UNTIL_HOURS * 3600)
    loss_wh = (twin_quanta - crashed_quanta) / QUANTA_PER_WH
    assert loss_wh <= KILLS * 10.0
    assert crashed_quanta <= twin_quanta + QUANTA_PER_WH          # no energy invented either
    print(f"\n{kills} kills: crashed {crashed_quanta / QUANTA_PER_WH:.6f} Wh, "
          f"twin {twin_quanta / QUANTA_PER_WH:.6f} Wh, loss {loss_wh:.6f} Wh")


def test_s10_1_sigterm_is_a_clean_stop(tmp_path):
    # 1200 W on L1, real-time pacing ×3600: stop it with SIGTERM part-way. The store
    # then holds exactly the energy of the simulated time it reached (1200 W × t), and
    # that time is the one the run's summary reports.
    db = tmp_path / "clean.sqlite3"
    proc = subprocess.Popen([MINIMETER, "run", "--db", str(db), "--no-panel", "--port", "0", "--modbus-port", "0",
                             "--speed", "3600", "--hours", "0", "--load", "1200@L1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while _stored(db)[1] < 1800 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    quanta, t = _stored(db)
    assert quanta / QUANTA_PER_WH == pytest.approx(1200.0 * t / 3600, abs=1e-6)
    hours = float(re.search(r"This run: ([\d.]+) simulated h", out).group(1))
    assert hours == pytest.approx(t / 3600, abs=0.006)
    # restarting continues from the stored register
    again = subprocess.run([MINIMETER, "run", "--db", str(db), *RUN_ARGS[:-2], "--until-hours", str(t / 3600 + 0.5),
                            "--load", "1200@L1"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    quanta2, t2 = _stored(db)
    assert t2 == pytest.approx(t + 1800, abs=1 / 60)
    assert quanta2 / QUANTA_PER_WH == pytest.approx(1200.0 * t2 / 3600, abs=1e-6)
