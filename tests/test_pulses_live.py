"""SPEC S13.1–S13.2, live: the running meter's edges published on its MQTT edges topic (a
real amqtt broker) and read by the pulse reader, reconciled with the register at the end."""

from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner

pytest.importorskip("amqtt.broker")

from minimeter.cli import main  # noqa: E402
from minimeter.cli.pulses import EdgeSubscription  # noqa: E402
from minimeter.lab.pulses import PulseReader  # noqa: E402
from minimeter.live.mqtt import HomeAssistantPublisher  # noqa: E402
from minimeter.live.runner import LiveMeter  # noqa: E402

from .test_live_support import constant_installation  # noqa: E402
from .test_mqtt import broker_url  # noqa: E402,F401  (the broker fixture)


class Collect:
    """A sink keeping every edge the runner pushed (to know how many to wait for)."""

    def __init__(self) -> None:
        self.edges = []

    def update(self, snapshot) -> None:
        self.edges.extend(snapshot.transitions)


def _drain(sub: EdgeSubscription, want: int, timeout_s: float = 20.0) -> list:
    got, deadline = [], time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        got += sub.edges(wait_s=0.2)
    return got


def test_s13_2_live_edges_over_mqtt_reconcile_with_the_register(broker_url):  # noqa: F811
    """1500 W on L1 and 700 W on L2 for one hour: 2200 Wh — 220 pulses of Kh = 10, 22 of
    Kh = 100, 2 of Kh = 1000, each exactly floor(E_end/Kh) from the register at the end."""
    sub = EdgeSubscription(broker_url, node_id="mm_edges")
    sub.wait_ready()
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    pub = HomeAssistantPublisher(broker_url, node_id="mm_edges", elements=2, min_interval_s=0.0)
    pub.start()
    collect = Collect()
    try:
        live.add_sink(collect)
        live.add_sink(pub)
        live.advance_to(3600.0)
        end = live.publish()
        edges = _drain(sub, len(collect.edges))
    finally:
        pub.stop()
        sub.close()
    assert len(edges) == len(collect.edges) > 0 and sub.refused == 0
    reader = PulseReader()
    reader.read(edges)
    reader.finish(end.time_s)
    e_end = end.watt_hours
    assert e_end == pytest.approx(2200.0, abs=10.0)
    for output, pulses in (("10", 220), ("100", 22), ("1000", 2)):
        rec = reader.reconcile(output, 0.0, e_end)
        assert rec.exact and rec.counted_pulses == rec.expected_pulses
        assert abs(rec.expected_pulses - pulses) <= 1
    assert reader.power("10")[-1][1] == pytest.approx(2200.0, rel=1e-3)     # 10 Wh every 16.36 s


def test_s13_2_read_pulses_command_listens_on_mqtt(broker_url):  # noqa: F811
    """The command subscribes, the live meter runs 10 minutes (2200 W: 366.7 Wh) while it
    listens, and its count reconciles with the register it is given."""
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    state = {}

    def run_meter():
        time.sleep(2.5)                                   # the command has subscribed by then
        pub = HomeAssistantPublisher(broker_url, node_id="mm_cli", elements=2, min_interval_s=0.0)
        pub.start()
        live.add_sink(pub)
        live.advance_to(600.0)
        state["end"] = live.publish()
        time.sleep(1.0)
        pub.stop()

    thread = threading.Thread(target=run_meter)
    thread.start()
    result = CliRunner().invoke(main, ["read-pulses", "--mqtt", broker_url, "--node-id", "mm_cli", "--listen", "8s",
                                       "--register-start", "0", "--register-end", "366.6", "--json"])
    thread.join()
    assert result.exit_code == 0, result.output
    assert state["end"].watt_hours == pytest.approx(2200 * 600 / 3600, abs=0.1)
    payload = json.loads(result.stdout)
    assert all(row["exact"] for row in payload["reconciliation"]), payload["reconciliation"]
    assert {row["output"]: row["counted_pulses"] for row in payload["reconciliation"]} == {"10": 36, "100": 3,
                                                                                         "1000": 0}
