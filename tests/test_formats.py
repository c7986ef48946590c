"""The user's text formats (minimeter.formats): each parser's accepted forms, with the
values worked out by hand, and its errors — the project's own, one line, naming what is
wrong."""

from __future__ import annotations

import math
import re

import pytest

from minimeter.errors import InvalidLoad, MinimeterError
from minimeter.formats import (InvalidFormat, parse_duration_s, parse_fault, parse_harmonic, parse_load,
                               parse_power_factor, parse_profile_load)
from minimeter.formats.installation import parse_installation
from minimeter.formats.reference_run import InvalidReferenceRun, load_reference_run
from minimeter.formats.toml import TomlReader, key_text, line_of
from minimeter.sources.service import Harmonic, Load, Service
from minimeter.sources.wiring import Fault, InvalidInstallation


# --------------------------------------------------------------------------- accepted forms
def _load(text: str, watts: float, connection: str = "L1", pf: float = 1.0, leading: bool = False,
          harmonics: tuple = ()) -> Load:
    return Load(watts, pf, leading, connection, harmonics, name=text)


ACCEPTED = [
    # durations [s]
    (parse_duration_s, "90s", 90.0), (parse_duration_s, "90 sec", 90.0), (parse_duration_s, "15 min", 900.0),
    (parse_duration_s, "15m", 900.0), (parse_duration_s, "2h", 7200.0), (parse_duration_s, "1.5h", 5400.0),
    (parse_duration_s, "1d", 86400.0), (parse_duration_s, "60", 60.0), (parse_duration_s, "0.5", 0.5),
    (parse_duration_s, "2H", 7200.0), (parse_duration_s, 60, 60.0), (parse_duration_s, 0.25, 0.25),
    # power factors: (PF, leading)
    (parse_power_factor, "0.9lag", (0.9, False)), (parse_power_factor, "0.9lead", (0.9, True)),
    (parse_power_factor, "0.8 LEAD", (0.8, True)), (parse_power_factor, "1", (1.0, False)),
    (parse_power_factor, "0.5", (0.5, False)), (parse_power_factor, 0.95, (0.95, False)),
    (parse_power_factor, 1, (1.0, False)),
    # harmonics
    (parse_harmonic, "h5=0.3@30", Harmonic(5, 0.3, 30.0)), (parse_harmonic, "h3=0.3", Harmonic(3, 0.3, 0.0)),
    (parse_harmonic, "5=0.1", Harmonic(5, 0.1, 0.0)), (parse_harmonic, "H7 = 0.05 @ -90", Harmonic(7, 0.05, -90.0)),
    # loads
    (parse_load, "1500@L1,pf=0.8lag,h3=0.3,h5=0.1@30",
     _load("1500@L1,pf=0.8lag,h3=0.3,h5=0.1@30", 1500.0, "L1", 0.8, False, (Harmonic(3, 0.3), Harmonic(5, 0.1, 30.0)))),
    (parse_load, "4800@L1-L2", _load("4800@L1-L2", 4800.0, "L1-L2")),
    (parse_load, "600W@l2,pf=0.9lead", _load("600W@l2,pf=0.9lead", 600.0, "L2", 0.9, True)),
    (parse_load, "100", _load("100", 100.0)),
    (parse_load, "-3000@L1-L2", _load("-3000@L1-L2", -3000.0, "L1-L2")),          # generation
    # faults
    (parse_fault, "ct-reversed", Fault("ct-reversed")),
    (parse_fault, "ct-reversed:ct=CT2", Fault("ct-reversed", (("ct", "CT2"),))),
    (parse_fault, "ct-reversed ct=CT2", Fault("ct-reversed", (("ct", "CT2"),))),     # the web panel's spelling
    (parse_fault, "over-current:amps=250,connection=L1-L2",
     Fault("over-current", (("amps", 250.0), ("connection", "L1-L2")))),
    (parse_fault, "supply-voltage volts=100", Fault("supply-voltage", (("volts", 100.0),))),
    (parse_fault, "frequency:hz=45", Fault("frequency", (("hz", 45.0),))),
]


@pytest.mark.parametrize("parse, text, expected", ACCEPTED, ids=lambda x: getattr(x, "__name__", None))
def test_accepted_forms(parse, text, expected):
    assert parse(text) == expected


def test_a_time_of_zero_is_allowed_where_asked():
    assert parse_duration_s("0", allow_zero=True) == 0.0
    assert parse_duration_s("18h", allow_zero=True) == 64800.0


def test_a_load_draws_the_current_its_text_says():
    """4800@L1-L2 on a 120/240 V split service: 4800 W / 240 V = 20 A rms at PF 1."""
    load = parse_load("4800@L1-L2")
    volts_rms, _ = Service("split").connection_voltage(load.connection)
    assert load.watts / volts_rms == pytest.approx(20.0, rel=1e-12)


def test_profile_loads(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("time_s,watts\n0,100\n3600,300\n", encoding="utf-8")
    load = parse_profile_load(f"{path}@L2,pf=0.9lag")
    assert load.profile is not None and list(load.profile.values) == [100.0, 300.0]
    assert (load.watts, load.connection, load.power_factor) == (0.0, "L2", 0.9)
    with pytest.raises(InvalidLoad, match="profile .*nope.csv"):
        parse_profile_load(str(tmp_path / "nope.csv"))
    with pytest.raises(InvalidLoad, match="connection 'L9'"):
        parse_profile_load(f"{path}@L9")


# --------------------------------------------------------------------------- errors
REFUSED = [
    (parse_duration_s, "soon", InvalidFormat, "'soon' is not a duration — e.g. 60s"),
    (parse_duration_s, "5 weeks", InvalidFormat, "not a duration"),
    (parse_duration_s, "-5s", InvalidFormat, "not a duration"),
    (parse_duration_s, "0s", InvalidFormat, "must be positive"),
    (parse_duration_s, 0, InvalidFormat, "must be positive"),
    (parse_duration_s, math.inf, InvalidFormat, "must be positive"),
    (parse_power_factor, "lots", InvalidFormat, "'lots' is not a power factor such as 0.9"),
    (parse_power_factor, "0.9lagging", InvalidFormat, "not a power factor"),
    (parse_power_factor, "1.5", InvalidFormat, "'1.5' is outside (0, 1]"),
    (parse_power_factor, 0, InvalidFormat, "0 is outside"),
    (parse_power_factor, "0lead", InvalidFormat, "is outside"),
    (parse_harmonic, "h5", InvalidFormat, "not a harmonic — expected hN=MAG[@DEG]"),
    (parse_harmonic, "hx=0.3", InvalidFormat, "not a harmonic"),
    (parse_harmonic, "h5=big", InvalidFormat, "not a harmonic"),
    (parse_harmonic, "h1=0.3", InvalidFormat, "order must be an integer ≥ 2"),
    (parse_harmonic, "h5=-0.3", InvalidFormat, "magnitude must be ≥ 0"),
    (parse_load, "lots@L1", InvalidLoad, "'lots' in load 'lots@L1' is not a number of watts"),
    (parse_load, "100@L3", InvalidLoad, "connection 'L3' in '100@L3' unknown — valid: L1, L2, L1-L2"),
    (parse_load, "100@N", InvalidLoad, "connection 'N'"),
    (parse_load, "100@L1,pf=2", InvalidLoad, "'pf=2' in load '100@L1,pf=2' not understood: '2' is outside (0, 1]"),
    (parse_load, "100@L1,pf=0.9sideways", InvalidLoad, "is not a power factor"),
    (parse_load, "100@L1,h5", InvalidLoad, "'h5' in load '100@L1,h5' not understood"),
    (parse_load, "100@L1,colour=red", InvalidLoad, "'colour=red' in load '100@L1,colour=red' not understood — WATTS"),
    (parse_load, "inf@L1", InvalidLoad, "load 'inf@L1': load watts must be finite"),
    (parse_fault, "ct-melted", InvalidInstallation, "fault 'ct-melted' unknown — valid: ct-reversed"),
    (parse_fault, "ct-reversed:colour=red", InvalidInstallation,
     "fault 'ct-reversed' takes no parameter 'colour' — its parameters: ct"),
    (parse_fault, "neutral-missing:ct=CT1", InvalidInstallation, "it takes none"),
    (parse_fault, "ct-reversed:CT2", InvalidInstallation, "fault parameter 'CT2' in 'ct-reversed:CT2' must be NAME=VALUE"),
    (parse_fault, "frequency:hz=fast", InvalidInstallation, "fault parameter 'hz=fast' in 'frequency:hz=fast' needs a number"),
]


@pytest.mark.parametrize("parse, text, error, needle", REFUSED, ids=lambda x: getattr(x, "__name__", None))
def test_refused_forms_are_the_projects_one_line_errors(parse, text, error, needle):
    with pytest.raises(error, match=re.escape(needle)) as info:
        parse(text)
    assert isinstance(info.value, MinimeterError) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- the TOML reader
TEXT = """\
# a comment
name = "t"

[meter]
model = "7B"

[[load]]
watts = 100

[[load]]
watts = 200   # the second load
power_factor = 0.9
"""


@pytest.mark.parametrize("key, line", [
    (("name",), 2), (("meter",), 4), (("meter", "model"), 5), (("load", 0), 7), (("load", 0, "watts"), 8),
    (("load", 1), 10), (("load", 1, "watts"), 11), (("load", 1, "power_factor"), 12),
    (("load", 1, "harmonics"), 10),           # not written: the table's header
    (("nowhere",), None),
])
def test_a_key_is_found_on_its_line(key, line):
    assert line_of(TEXT.splitlines(), key) == line


def test_key_text_is_one_based():
    assert key_text(("load", 1, "power_factor")) == "load[2].power_factor"
    assert key_text(("service", "voltage_harmonics", 0, "order")) == "service.voltage_harmonics[1].order"


def test_a_toml_key_on_line_n_is_reported_as_line_n():
    """power_factor = "x" is on line 12: the error says t.toml:12."""
    r = TomlReader("t.toml", TEXT.replace("power_factor = 0.9", "power_factor = 'x'"), InvalidInstallation)
    with pytest.raises(InvalidInstallation) as info:
        r.number(r.data["load"][1], ("load", 1, "power_factor"), lo=0.0, hi=1.0)
    assert str(info.value) == "t.toml:12: load[2].power_factor: expected a number, got 'x'"


def test_the_reader_checks_types_and_ranges():
    r = TomlReader("t.toml", TEXT, InvalidInstallation)
    load = r.data["load"][1]
    with pytest.raises(InvalidInstallation, match=r"^t\.toml:12: load\[2\]\.power_factor: 0\.9 is outside 0 … 0\.5$"):
        r.number(load, ("load", 1, "power_factor"), lo=0.0, hi=0.5)
    with pytest.raises(InvalidInstallation, match=r"^t\.toml:10: load\[2\]\.name: missing \(required\)$"):
        r.string(load, ("load", 1, "name"))
    with pytest.raises(InvalidInstallation, match=r"^t\.toml:11: load\[2\]\.watts: unknown key — valid here: name$"):
        r.known(load, ("load", 1), ("name",))
    assert [key for key, _ in r.tables("load")] == [("load", 0), ("load", 1)]
    assert r.number(load, ("load", 1, "amps"), None) is None


def test_the_reader_without_lines_names_file_and_key():
    r = TomlReader("run.toml", "frequency_hz = 600\n", InvalidReferenceRun, locate=False)
    with pytest.raises(InvalidReferenceRun, match=r"^run\.toml: frequency_hz: 600 is outside 40 … 70$"):
        r.number(r.data, ("frequency_hz",), 60.0, 40.0, 70.0)


def test_invalid_toml_is_the_files_own_error():
    with pytest.raises(InvalidInstallation, match=r"^t\.toml: not valid TOML"):
        TomlReader("t.toml", "[meter\n", InvalidInstallation)


# --------------------------------------------------------------------------- the two files use it
def test_an_installation_file_error_names_file_line_and_key():
    text = "[meter]\nmodel = '7B'\n\n[[load]]\nwatts = 100\nconnection = 'L1'\n\n[[load]]\nwatts = 100\n" \
           "connection = 'L3'\n"
    with pytest.raises(InvalidInstallation, match=r"^t\.toml:10: load\[2\]\.connection: 'L3' is not one of: L1, L2, L1-L2$"):
        parse_installation(text, "t.toml")


def test_an_installation_on_an_impossible_connection():
    """A 240 V load on a 1-phase 2-wire service: there is no L2."""
    text = "[meter]\nmodel = 'MO'\n\n[service]\nkind = 'single'\n\n[[load]]\nwatts = 100\nconnection = 'L1-L2'\n"
    with pytest.raises(InvalidInstallation, match=r"^t\.toml:9: load\[1\]\.connection: 'L1-L2': a single"):
        parse_installation(text, "t.toml")


def test_installation_durations_and_power_factors_come_from_the_shared_parsers():
    inst = parse_installation("duration = '15 min'\n[[load]]\nwatts = 100\npower_factor = '0.8lead'\n", "t.toml")
    assert inst.duration_s == 900.0
    assert (inst.loads[0].power_factor, inst.loads[0].leading) == (0.8, True)
    assert inst.name == "t"


def test_a_reference_run_error_names_file_and_key(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('format = "minimeter-reference-run"\n[[step]]\nrecording = "r.wav"\nvolt_rms = 1\n')
    with pytest.raises(InvalidReferenceRun, match=r": step\[1\]\.volt_rms: unknown key — valid here: amps_rms"):
        load_reference_run(path)
    with pytest.raises(InvalidReferenceRun, match="no such reference-run file"):
        load_reference_run(tmp_path / "nope.toml")
