"""SPEC §13.1–13.2: the output edges written out, and the pulse reader that turns them back
into energy, interval data and power — against the register, by closed forms."""

from __future__ import annotations

import json
import math
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from minimeter.cli import main
from minimeter.drive import feed_source
from minimeter.formats import InvalidFormat, iso8601, parse_iso8601
from minimeter.lab.pulse_bench import HOUR, OUTAGES, household_with_outages
from minimeter.lab.pulses import (
    EDGE_FIELDS, EdgeWriter, PulseError, PulseReader, ReaderSettings, edge_from_record, edge_record,
    expected_pulses, read_edges,
)
from minimeter.meter.core import Meter
from minimeter.meter.outputs import Transition
from minimeter.sources.service import Load, Service, ideal_source

def run_edges(meter, source, duration_s, sample_rate_hz=None):
    """The edges of a run through the drive path, and (time reached, register [Wh]) after
    each update (of at most 60 s: one ends inside every outage of 2 minutes or more)."""
    edges, registers = [], []
    for update, reached in feed_source(meter, source, duration_s, sample_rate_hz=sample_rate_hz, cycles_per_block=3600):
        edges.extend(update.transitions)
        registers.append((reached, update.watt_hours))
    return edges, registers


@pytest.fixture(scope="module")
def household_run():
    meter = Meter.for_model("7B", ct_rating="200A")
    edges, registers = run_edges(meter, household_with_outages(), 24 * HOUR)
    return meter, edges, registers


# ----------------------------------------------------------------------------- S13.1
def test_s13_1_iso8601_is_utc_with_microseconds_and_reads_back():
    assert iso8601(0.0) == "1970-01-01T00:00:00.000000Z"
    assert iso8601(1_796_068_660.123456) == "2026-11-30T19:57:40.123456Z"     # 20 787 days + 71 860.123456 s
    assert parse_iso8601("2026-11-30T19:57:40.123456Z") == pytest.approx(1_796_068_660.123456, abs=1e-6)
    with pytest.raises(InvalidFormat, match="UNIX time"):
        iso8601(float("nan"))
    with pytest.raises(InvalidFormat, match="ISO 8601"):
        parse_iso8601("yesterday")


def test_s13_1_edge_record_is_the_shared_json_format():
    record = edge_record(Transition("100", True, 90.5, "energy"), start_epoch_s=1_796_068_800.0)
    assert record == {"time": "2026-11-30T20:01:30.500000Z", "time_s": 90.5, "output": "100", "state": "ON",
                      "cause": "energy"}
    assert edge_from_record(json.loads(json.dumps(record))) == Transition("100", True, 90.5, "energy")
    assert edge_record(Transition("10", False, 2.0, "power-loss"))["time"] is None
    with pytest.raises(PulseError, match="state"):
        edge_from_record({**record, "state": "HALF"})
    with pytest.raises(PulseError, match="cause"):
        edge_from_record({**record, "cause": "magic"})


def test_s13_1_simulate_writes_every_edge_of_the_run(tmp_path):
    """200 W for 3630 s on an MO meter: 201.67 Wh, so output 10 makes 20 closures (10, 20,
    …, 200 Wh) and 20 openings (5, 15, …, 195 Wh) besides the power-up closure; output 100
    two and two; output 1000 none but its power-up closure."""
    out = tmp_path / "edges.csv"
    result = CliRunner().invoke(main, ["simulate", "--model", "MO", "--load", "200@L1", "--duration", "3630s",
                                       "--phasor", "--json", "--pulses-out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    header = out.read_text().splitlines()[0]
    assert header == ",".join(EDGE_FIELDS)
    edges = list(read_edges(out))
    by = {name: [e for e in edges if e.output == name] for name in ("10", "100", "1000")}
    assert [(e.state, e.cause) for e in by["1000"]] == [(True, "power-restore")]
    assert sum(e.state and e.cause == "energy" for e in by["10"]) == 20 == payload["closures"]["10"]
    assert sum(not e.state for e in by["10"]) == 20
    assert sum(e.state and e.cause == "energy" for e in by["100"]) == 2 == payload["closures"]["100"]
    # 200 W: the 5 Wh mark at 5 · 3600 / 200 = 90 s
    assert by["10"][1].time_s == pytest.approx(90.0, abs=1e-6)
    assert out.read_text().splitlines()[4].startswith(",90.0000")         # no start instant: no ISO time


def test_s13_1_meter_command_writes_the_edges_of_a_recording(tmp_path):
    """A 120 V, 50 A, PF 1 recording of 10 s: 6000 W × 10 s = 16.67 Wh: output 10 closes
    at power-up and once for energy (at 10 Wh, t = 6 s), opens at 5 Wh and 15 Wh."""
    import numpy as np

    fs, seconds = 4000.0, 10.0
    t = np.arange(int(fs * seconds)) / fs
    v = 120 * math.sqrt(2) * np.sin(2 * math.pi * 60 * t)
    i = 50 * math.sqrt(2) * np.sin(2 * math.pi * 60 * t)
    rec = tmp_path / "rec.npz"
    np.savez(rec, frames=np.vstack([v, i]), sample_rate_hz=np.float64(fs), channel_names=np.array(["V1", "I1"]),
             channel_units=np.array(["V", "A"]))
    out = tmp_path / "edges.csv"
    result = CliRunner().invoke(main, ["meter", str(rec), "--model", "MO", "--json", "--pulses-out", str(out)])
    assert result.exit_code == 0, result.output
    edges = [e for e in read_edges(out) if e.output == "10"]
    assert [(e.state, e.cause) for e in edges] == [(True, "power-restore"), (False, "energy"), (True, "energy"),
                                                   (False, "energy")]
    assert edges[2].time_s == pytest.approx(6.0, abs=2e-3)          # 10 Wh at 6000 W


def test_s13_1_edge_writer_without_a_path_writes_nothing(tmp_path):
    with EdgeWriter(None) as write:
        write.write([Transition("10", True, 1.0)])
    assert write.count == 0


# ----------------------------------------------------------------------------- S13.2
def test_s13_2_household_day_ten_power_cycles_counts_exactly(household_run):
    """Every output: floor(E_end/Kh) − floor(E_start/Kh) pulses (E_start = 0); a naive
    reader counting every OFF→ON over-counts by the restores that closed the output:
    the power-up at E = 0 and each restore k whose register E_k (held through the outage)
    has (E_k mod Kh) < Kh/2."""
    meter, edges, registers = household_run
    e_end = meter.watt_hours
    assert e_end > 10_000.0                                        # the day's energy less the outages
    losses = [e for e in edges if e.cause == "power-loss"]
    restores = [e for e in edges if e.cause == "power-restore"]
    assert losses and restores
    # the register through each outage, read from an update that ends inside it
    held = []
    for start_h, minutes in OUTAGES:
        inside = [wh for t, wh in registers if start_h * HOUR + 1 < t < start_h * HOUR + minutes * 60]
        assert inside, (start_h, minutes)
        held.append(inside[0])
    readers = {"project": ReaderSettings(), "unfiltered": ReaderSettings(debounce_s=0.0),
               "naive": ReaderSettings(name="naive", debounce_s=0.0, count_power_edges=True)}
    readers = {key: PulseReader(settings) for key, settings in readers.items()}
    for reader in readers.values():
        reader.read(edges)
        reader.finish(24 * HOUR)
    for name, kh in (("10", 10), ("100", 100), ("1000", 1000)):
        expected = math.floor(e_end / kh) - 0
        assert readers["project"].pulses(name) == readers["unfiltered"].pulses(name) == expected == meter.closures(name)
        assert readers["project"].reconcile(name, 0.0, e_end).exact
        closing_restores = 1 + sum((e_k % kh) < kh / 2 for e_k in held)
        assert readers["naive"].pulses(name) - expected == closing_restores, name
        assert readers["unfiltered"].ignored_power_edges(name) == closing_restores
    assert len(OUTAGES) == 10


def test_s13_2_constant_200w_intervals_and_power_from_the_period():
    """200 W: 50 Wh per 15 minutes (±1 Kh: a pulse on an interval's edge), and the
    power from the pulse period Kh · 3600 / Δt — 180 s for Kh = 10, 1800 s for Kh = 100 —
    within 0.1 % of 200 W."""
    meter = Meter.for_model("MO")
    source = ideal_source(Service("single", 120.0, 60.0), (Load(200.0, 1.0, connection="L1"),), 1)
    edges, _ = run_edges(meter, source, 4 * HOUR)
    reader = PulseReader()
    reader.read(edges)
    reader.finish(4 * HOUR)
    rows = reader.intervals("10")
    assert [start for start, _ in rows] == [k * 900.0 for k in range(16)]
    for start, wh in rows[1:]:
        assert abs(wh - 50.0) <= 10.0
    assert sum(wh for _, wh in rows) == reader.energy_wh("10") == 10 * math.floor(meter.watt_hours / 10)
    for name, period_s in (("10", 180.0), ("100", 1800.0)):
        power = reader.power(name)
        assert len(power) >= 3
        for t, watts in power:
            assert watts == pytest.approx(200.0, rel=1e-3)
        assert power[1][0] - power[0][0] == pytest.approx(period_s, rel=1e-6)
    assert reader.gaps() == []


def test_s13_2_debounce_swallows_bounce_and_keeps_the_pulse():
    """One Kh = 10 pulse (ON at 10 s, OFF at 40 s) with 5 ms of chatter after each edge:
    a 20 ms filter counts 1; no filter counts 1 + 2 chatter closures."""
    edges = [Transition("10", True, 10.0), Transition("10", False, 10.002), Transition("10", True, 10.004),
             Transition("10", False, 40.0), Transition("10", True, 40.001), Transition("10", False, 40.003),
             Transition("10", True, 40.004), Transition("10", False, 40.005)]
    filtered = PulseReader(ReaderSettings(debounce_s=0.020))
    filtered.read(edges)
    filtered.finish(50.0)
    raw = PulseReader(ReaderSettings(debounce_s=0.0, recover_missed=False))
    raw.read(edges)
    raw.finish(50.0)
    assert filtered.pulses("10") == 1 and filtered.rejected_edges("10") == 6
    assert raw.pulses("10") == 4


def test_s13_2_missed_edges_are_recovered_and_flagged():
    """Edges of 3 pulses of Kh = 100 with the second OFF→ON lost: OFF, OFF in a row means a
    closure was missed — recovered (3 pulses) and flagged; a naive reader counts 2."""
    seq = [(True, 0), (False, 10), (True, 20), (False, 30), (True, 40), (False, 50)]
    edges = [Transition("100", s, float(t)) for k, (s, t) in enumerate(seq) if k != 2]
    project = PulseReader()
    project.read(edges)
    naive = PulseReader(ReaderSettings(recover_missed=False))
    naive.read(edges)
    assert project.pulses("100") == 3 and project.recovered("100") == 1
    assert [g.reason for g in project.gaps("100")] == ["missed-edge"]
    assert naive.pulses("100") == 2


def test_s13_2_restart_keeps_the_count_and_flags_the_gap():
    """Pulses of Kh = 10 every 60 s (600 W); the reader is down from 125 s to 190 s, and
    boots reading the output closed (the closure at 180 s happened while down): the
    project's reader recovers it (4 pulses to 240 s) and flags 65 s of gap at 600 W
    (10.83 Wh); a count-since-boot reader has 1."""
    edges = [Transition("10", on, t) for k in range(5) for on, t in ((True, 60.0 * k), (False, 60.0 * k + 30))]
    before = [e for e in edges if e.time_s < 125]
    after = [e for e in edges if e.time_s > 190]
    readers = {}
    for keep in (True, False):
        r = PulseReader(ReaderSettings(keep_count=keep))
        r.read(before)
        r.restart(125.0, 190.0, {"10": True})
        r.read(after)
        r.finish(260.0)
        readers[keep] = r
    assert readers[True].pulses("10") == 4           # 60, 120, 180 (recovered), 240 (0 s was the first edge: counted)
    gap = readers[True].gaps("10")[0]
    assert (gap.reason, gap.start_s, gap.end_s) == ("reader-down", 125.0, 190.0)
    assert gap.estimated_wh == pytest.approx(600 * 65 / 3600)
    assert readers[False].pulses("10") == 1          # 240 only


def test_s13_2_silence_while_drawing_power_is_a_gap():
    edges = [Transition("10", on, t) for k in range(4) for on, t in ((True, 10.0 * k), (False, 10.0 * k + 5))]
    edges.append(Transition("10", True, 500.0))
    r = PulseReader()
    r.read(edges)
    r.finish(600.0)
    assert [(g.reason, g.start_s, g.end_s, g.power_before_w) for g in r.gaps()] == [("silence", 30.0, 500.0, 3600.0)]


def test_s13_2_bad_input_is_a_clear_error():
    with pytest.raises(PulseError, match="debounce"):
        ReaderSettings(debounce_s=-1)
    with pytest.raises(PulseError, match="edge"):
        ReaderSettings(edge="both")
    r = PulseReader()
    with pytest.raises(PulseError, match="give its Kh"):
        r.read([Transition("counter", True, 1.0)])
    r.read([Transition("10", True, 5.0)])
    with pytest.raises(PulseError, match="time order"):
        r.read([Transition("10", False, 6.0), Transition("10", True, 1.0)])
    r.finish(10.0)
    assert r.pulses("10") == 1                       # the refused batch changed nothing
    with pytest.raises(PulseError, match="not decreasing"):
        expected_pulses(10.0, 5.0, 10)
    assert expected_pulses(7.0, 31.0, 10) == 3 - 0


def test_s13_2_read_pulses_command_reconciles_a_simulate_file(tmp_path):
    out = tmp_path / "edges.csv"
    sim = CliRunner().invoke(main, ["simulate", "--household", "--duration", "6h", "--phasor", "--json",
                                    "--pulses-out", str(out)])
    assert sim.exit_code == 0, sim.output
    registered = json.loads(sim.stdout)["registered_wh"]
    result = CliRunner().invoke(main, ["read-pulses", str(out), "--register-start", "0",
                                       "--register-end", repr(registered), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    for row in payload["reconciliation"]:
        assert row["exact"], row
        assert row["counted_pulses"] == math.floor(registered / row["kh_wh"])
    bad = CliRunner().invoke(main, ["read-pulses", str(out), "--debounce-ms", "-3"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


# ----------------------------------------------------------------------------- S13.2, any register path
@settings(max_examples=40, deadline=None)
@given(start_wh=st.floats(0.0, 5000.0), watts=st.lists(st.floats(0.0, 20_000.0), min_size=1, max_size=30),
       cycles_per_step=st.integers(1, 600), bounce_ms=st.floats(0.0, 5.0))
def test_s13_2_any_register_path_with_bounce_counts_exactly(start_wh, watts, cycles_per_step, bounce_ms):
    """The meter's own transition finder over a random power path from a random register
    (pulses ≥ 0.9 s wide at ≤ 20 kW on Kh = 10), each edge chattering for up to 5 ms: the
    20 ms reader counts floor(E_end/Kh) − floor(E_start/Kh) on every output."""
    import numpy as np

    from minimeter.lab.pulse_bench import bounced
    from minimeter.meter.outputs import find_transitions
    from minimeter.meter.register import QUANTA_PER_WH

    power = np.repeat(np.asarray(watts), cycles_per_step)
    duration = np.full(power.size, 1 / 60)
    start = np.arange(power.size) / 60
    quanta = np.floor(power * duration / 3600 * QUANTA_PER_WH).astype(np.int64)
    before = int(start_wh * QUANTA_PER_WH)
    edges = sorted((e for kh in (10, 100, 1000) for e in find_transitions(str(kh), kh, before, quanta, start, duration)),
                   key=lambda e: e.time_s)
    reader = PulseReader()
    reader.read(bounced(edges, bounce_ms / 1000, 4) if bounce_ms else edges)
    reader.finish(float(start[-1] + 1))
    after = before + int(quanta.sum())
    for kh in (10, 100, 1000):                              # floor(E/Kh) on the exact integer register
        assert reader.pulses(str(kh)) == after // (kh * QUANTA_PER_WH) - before // (kh * QUANTA_PER_WH)


def test_s13_2_read_pulses_refuses_a_file_that_is_not_edges(tmp_path):
    """Not an edge file, a bad row, a JSON line that is not a record: one line naming the
    file and line, exit status 2, no traceback."""
    cases = {"notes.csv": "a,b\n1,2\n", "bad.csv": "time,time_s,output,state,cause\n,1.0,10,MAYBE,energy\n",
             "bad.jsonl": '{"time_s": 1.0, "output": "10", "state": "ON"}\n[1, 2]\n'}
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = CliRunner().invoke(main, ["read-pulses", str(path)])
        assert result.exit_code == 2, (name, result.output)
        assert "Traceback" not in result.output and str(path) in result.output
    assert "bad.csv:2: state 'MAYBE'" in CliRunner().invoke(main, ["read-pulses", str(tmp_path / "bad.csv")]).output
