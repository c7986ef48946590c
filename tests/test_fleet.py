"""Fleets (SPEC §14): fleet files, seeded populations, and `minimeter fleet run` on a real
Dask cluster (a scheduler and two worker processes started here, on free ports) against
the default local cluster and against each meter run alone with `simulate`.

Each meter runs a whole day (the phasor path by segment makes a meter-day a few tens of
milliseconds); the fleets start at 18 h on the households' clock."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from minimeter.cli import main
from minimeter.formats.fleet import InvalidFleet, load_fleet, parse_fleet
from minimeter.fleet.population import daily, member
from minimeter.fleet.run import read_table
from minimeter.lab.simulation import simulate
from minimeter.meter import Meter

from .test_live_support import free_port

DASK = Path(sys.executable).with_name("dask")

FLEET_50 = """
name = "street"
seed = 2026
period = "1d"
start = "18h"
interval = "15min"

[population]
meters = 50
models = { "7B" = 0.7, "6S" = 0.2, "MO" = 0.1 }
ct_ratings = { "200A" = 0.8, "100A" = 0.2 }
services = { split = 0.8, network = 0.2 }

[population.household]
pv = 0.2

[population.faults]
ct-reversed = 0.1
voltage-open = 0.05
ct-open = 0.05
"""

DETECTABLE = ("ct-reversed", "ct-wrong-phase", "l1-l2-swapped", "voltage-open", "neutral-missing", "ct-open",
              "ct-shorted", "over-current", "supply-voltage", "frequency")
FLEET_200 = f"""
name = "campus"
seed = 14
period = "1d"
start = "18h"
[population]
meters = 200
models = {{ "7B" = 0.6, "5B" = 0.1, "6S" = 0.2, "MO" = 0.1 }}
services = {{ split = 0.7, network = 0.3 }}
[population.faults]
{chr(10).join(f'{k} = 0.02' for k in DETECTABLE)}
"""


@pytest.fixture(scope="module")
def scheduler_address():
    """A real `distributed` scheduler and two worker processes on localhost (free ports)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__LOGGING__DISTRIBUTED="error")
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    from distributed import Client

    try:
        for _ in range(2):
            procs.append(subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--no-dashboard",
                                           "--host", "127.0.0.1"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=max(deadline - time.monotonic(), 1))
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _run(args: list[str]) -> None:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def fleet_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "street.toml"
    path.write_text(FLEET_50, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def on_scheduler(scheduler_address, fleet_file) -> Path:
    out = fleet_file.parent / "on-scheduler"
    _run(["fleet", "run", str(fleet_file), "--out", str(out), "--scheduler", scheduler_address])
    return out


# --------------------------------------------------------------------------- S14.1 the file
def test_s14_1_fleet_file_errors_name_line_and_key(tmp_path):
    with pytest.raises(InvalidFleet, match=r"f\.toml:5: population\.models\.7X: .*7X"):
        parse_fleet('name = "x"\n\n[population]\nmeters = 3\nmodels = { "7X" = 1 }\n', tmp_path / "f.toml")
    with pytest.raises(InvalidFleet, match=r"population\.faults: the fault shares add up to 1\.5, over 1"):
        parse_fleet("[population]\nmeters = 3\n[population.faults]\nct-open = 0.9\nct-reversed = 0.6\n")
    with pytest.raises(InvalidFleet, match=r"either installations"):
        parse_fleet("seed = 1\n")
    with pytest.raises(InvalidFleet, match=r"population\.meters: 0 is outside 1 … 1000000"):
        parse_fleet("[population]\nmeters = 0\n")


def test_s14_1_a_list_of_installation_files(tmp_path):
    examples = Path(__file__).resolve().parents[1] / "examples"
    path = tmp_path / "two.toml"
    path.write_text(f'installations = ["{examples}/correct-dual.toml", "{examples}/fault-ct-reversed.toml"]\n'
                    'period = "2min"\n', encoding="utf-8")
    fleet = load_fleet(path)
    assert fleet.meters == 2 and fleet.period_s == 120.0
    # the file states CT2 reversed as its wiring ([[ct]] conductors = ["-L2"]), not as a [[fault]]
    assert member(fleet, 0).injected == () and member(fleet, 1).injected == (("stated-wiring", ""),)
    assert member(fleet, 1).installation.name == "CT2 reversed"


def test_s14_1_a_meter_is_drawn_from_the_seed_and_its_index_alone():
    fleet = parse_fleet(FLEET_50)
    again = parse_fleet(FLEET_50.replace("meters = 50", "meters = 5000"))
    other = parse_fleet(FLEET_50.replace("seed = 2026", "seed = 2027"))
    assert [member(fleet, i) for i in (0, 17, 49)] == [member(again, i) for i in (0, 17, 49)]
    assert member(fleet, 17) != member(other, 17)


def test_s14_1_daily_profile_wraps_midnight_and_follows_the_clock():
    # 22 h for 4 h at 1 kW, seen from a clock starting at 18 h: on from 4 h to 8 h of simulated time
    profile = daily([(22.0, 4.0, 1000.0)], clock_s=18 * 3600.0)
    hours = np.array([0.0, 3.99, 4.0, 7.99, 8.0, 23.0, 28.5]) * 3600.0
    assert profile.at(hours).tolist() == [0.0, 0.0, 1000.0, 1000.0, 0.0, 0.0, 1000.0]
    assert profile.integral(np.array([86400.0]))[0] == pytest.approx(4 * 3600.0 * 1000.0)


# --------------------------------------------------------------------------- S14.2 the runs
def test_s14_2_scheduler_local_cluster_and_partitions_give_identical_results(on_scheduler, fleet_file):
    local = fleet_file.parent / "local"
    _run(["fleet", "run", str(fleet_file), "--out", str(local), "--partition", "7"])     # this machine's cores
    for table in ("meters", "intervals", "closures", "registers", "events"):
        pd.testing.assert_frame_equal(read_table(on_scheduler, table), read_table(local, table))
    assert len(read_table(local, "meters")) == 50


def test_s14_2_each_meter_equals_simulate_run_alone(on_scheduler, fleet_file):
    fleet = load_fleet(fleet_file)
    meters = read_table(on_scheduler, "meters").set_index("meter")
    intervals = read_table(on_scheduler, "intervals")
    closures = read_table(on_scheduler, "closures").set_index(["meter", "output"]).closures
    registers = read_table(on_scheduler, "registers").set_index(["meter", "register", "element"]).value
    for i in range(fleet.meters):
        inst = member(fleet, i).installation
        meter = Meter(inst.spec, quantities=True)
        result = simulate(meter, inst.source(), fleet.period_s)
        assert meters.registered_wh[i] == result.registered_wh
        assert meters.reverse_wh[i] == result.reverse_wh
        r = meter.registers
        assert [registers[(i, "import_wh", k + 1)] for k in range(inst.spec.elements)] == list(r.import_wh)
        assert [registers[(i, "varh", q)] for q in (1, 2, 3, 4)] == list(r.varh)
        assert (registers[(i, "vah", 0)], registers[(i, "max_demand_w", 0)]) == (r.vah, r.max_demand_w)
        assert {o: closures[(i, o)] for o in result.closures} == result.closures
        # the intervals add up, per element, to the analytic energy (S4.7: within 0.01 %)
        mine = intervals[intervals.meter == i].groupby("element").energy_wh.sum().to_numpy()
        assert mine == pytest.approx(result.analytic_element_wh, rel=1e-4, abs=1e-3)
    assert sorted(set(intervals.start_s)) == [900.0 * k for k in range(96)]


def test_s14_2_injected_faults_are_diagnosed_on_a_200_meter_fleet(scheduler_address, tmp_path):
    """One meter in five carries one fault, of any kind the measurements can show."""
    path = tmp_path / "campus.toml"
    path.write_text(FLEET_200, encoding="utf-8")
    _run(["fleet", "run", str(path), "--out", str(tmp_path / "out"), "--scheduler", scheduler_address,
          "--partition", "10"])
    meters = read_table(tmp_path / "out", "meters")
    faulty = meters[meters.injected != "none"]
    assert len(meters) == 200 and 25 <= len(faulty) <= 55
    assert faulty.named.mean() >= 0.99
    assert meters.diagnosis_ok.mean() >= 0.99
    assert not meters[meters.injected == "none"].reported_fault.any()


# --------------------------------------------------------------------------- S14.2 the report
def test_s14_2_report_costs_a_reversed_ct_in_closed_form(tmp_path):
    """fault-ct-reversed.toml registers 600 W of 4,200 W: over 2 min it misses 3,600 W × 120 s
    = 120 Wh; a year is 262,800 such periods → 31,536 kWh, at 0.15/kWh 4,730.40 a year."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    path = tmp_path / "one.toml"
    path.write_text(f'installations = ["{examples}/fault-ct-reversed.toml", "{examples}/correct-dual.toml"]\n'
                    'period = "2min"\ninterval = "1min"\n', encoding="utf-8")
    out = tmp_path / "out"
    _run(["fleet", "run", str(path), "--out", str(out), "--workers", "1"])
    _run(["fleet", "report", str(out), "--tariff", "0.15", "--currency", "EUR "])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "EUR 4,730.40 a year" in page
    assert page.count("data:image/png;base64,") == 2
    assert "<td>CT2 reversed</td>" in page and "correct dual" not in page.split("losing the most revenue")[1]


def test_s14_1_households_stay_within_the_ct_rating():
    """A 24 kW 240 V load draws 100 A on each leg of a 120/240 V service: on 100 A CTs it
    is scaled to 90 A (21.6 kW); a 120 V 1.2 kW load beside it (10 A on L1) makes the worst
    leg 110 A, so both scale by 90/110."""
    from minimeter.fleet.population import within_rating
    from minimeter.sources.service import Load, Profile, Service

    split = Service("split", 120.0, 60.0)
    heater = Load(power_factor=1.0, connection="L1-L2", profile=Profile.constant(24000.0))
    (alone,) = within_rating((heater,), split, 100.0)
    assert alone.profile.values == (pytest.approx(21600.0),)
    lamp = Load(1200.0, 1.0, connection="L1")
    scaled = within_rating((heater, lamp), split, 100.0)
    assert scaled[0].profile.values[0] == pytest.approx(24000.0 * 90 / 110)
    assert scaled[1].watts == pytest.approx(1200.0 * 90 / 110)
    assert within_rating((lamp,), split, 100.0) == (lamp,)


def test_s14_2_runs_of_cycles_are_cut_at_interval_starts_by_hand():
    """Periods of 10 s, cycles of 1 s: a run of 8 cycles from 7 s has 3 cycles (7, 8, 9 s)
    in period 0 and 5 (10 … 14 s) in period 1; a run of 2 from 15 s is all in period 1; a
    run of 25 from 0 s spans three periods, 10 + 10 + 5; a cycle starting a hair before
    10 s (within the rounding allowance) counts from 10 s."""
    from minimeter.fleet.meter_run import EDGE_CYCLES
    from minimeter.meter.energy import split_runs

    start = np.array([7.0, 15.0, 0.0, 10.0 - 1e-9])
    row, period, count = split_runs(start, np.ones(4), np.array([8, 2, 25, 1]), 10.0, EDGE_CYCLES)
    assert list(zip(row.tolist(), period.tolist(), count.tolist())) == [
        (0, 0, 3), (0, 1, 5), (1, 1, 2), (2, 0, 10), (2, 1, 10), (2, 2, 5), (3, 1, 1)]
    # by the cycle's middle (the demand blocks): a cycle from 9.6 s has its middle at 10.1 s
    _, period, count = split_runs(np.array([8.6]), np.ones(1), np.array([3]), 10.0, 0.5)
    assert (period.tolist(), count.tolist()) == ([0, 1], [1, 2])


def test_s14_2_interval_energy_of_constant_loads_in_closed_form(tmp_path):
    """correct-dual.toml: element 1 carries 1,200 W + half the 2,400 W water heater = 2,400 W,
    element 2 600 W + 1,200 W = 1,800 W, constant: every 15-min interval holds 600 Wh and
    450 Wh (runs of identical cycles cross the interval starts)."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    fleet = parse_fleet(f'installations = ["{examples}/correct-dual.toml"]\nperiod = "1h"\n', tmp_path / "f.toml")
    from minimeter.fleet.meter_run import run_member

    tables = run_member(fleet, 0)
    intervals = pd.DataFrame(tables["intervals"])
    assert intervals.start_s.tolist() == [0.0, 900.0, 1800.0, 2700.0] * 2
    assert intervals.energy_wh.to_numpy() == pytest.approx([600.0] * 4 + [450.0] * 4, rel=1e-6)
    # S12.2 registers over the hour: import 2,400 and 1,800 Wh; the lighting's 1,200 W at PF 0.9
    # lagging is the only reactive power, 1,200 · tan(acos 0.9) = 581.19 var, in quadrant I
    registers = pd.DataFrame(tables["registers"]).set_index(["register", "element"]).value
    assert [registers[("import_wh", 1)], registers[("import_wh", 2)]] == pytest.approx([2400.0, 1800.0], rel=1e-4)
    assert registers[("varh", 1)] == pytest.approx(1200.0 * math.tan(math.acos(0.9)), rel=1e-4)
    assert registers[("varh", 2)] == registers[("varh", 3)] == registers[("varh", 4)] == 0.0
