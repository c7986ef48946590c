"""``minimeter read-pulses`` (SPEC S13.2): an AMR pulse reader on the meter's output edges —
from a ``--pulses-out`` file or live from the MQTT edges topic — and ``minimeter
pulse-bench`` (S13.3, :mod:`minimeter.lab.pulse_bench`)."""

from __future__ import annotations

import csv
import json
import queue
import threading
import time
from itertools import islice
from typing import Iterator

import click
from rich.console import Console
from rich.table import Table

from minimeter.errors import MinimeterError
from minimeter.formats import parse_duration_s
from minimeter.lab.pulses import PulseError, PulseReader, ReaderSettings, edge_from_record, read_edges
from minimeter.live.mqtt import device_base_topic, parse_broker_url     # the publisher's topic rule, one place
from minimeter.meter.outputs import Transition
from minimeter.cli._args import parsed

BATCH_EDGES = 10_000


class EdgeSubscription:
    """The live meter's edges from its MQTT edges topic (the publisher's: ``<base>/<node
    id>/edges``, ``<base>/edges`` when the base already ends in the node id; one JSON edge
    record per message, S13.1), queued in arrival order. A message that is not an edge
    record is counted in ``refused`` and skipped."""

    def __init__(self, url: str, *, node_id: str = "minimeter", topic: str | None = None) -> None:
        import paho.mqtt.client as paho

        broker = parse_broker_url(url)
        self.topic = topic or f"{device_base_topic(broker.base_topic, node_id)}/edges"
        self.refused = 0
        self._queue: queue.Queue[Transition] = queue.Queue()
        self._ready = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"minimeter-reader-{time.monotonic_ns()}")
        if broker.username:
            self._client.username_pw_set(broker.username, broker.password)
        self._client.on_connect = lambda client, *_: client.subscribe(self.topic, qos=1)
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = self._on_message
        try:
            self._client.connect(broker.host, broker.port)
        except OSError as exc:
            raise PulseError(f"cannot reach the broker {broker.host}:{broker.port}: {exc.strerror or exc}") from None
        self._client.loop_start()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        if not self._ready.wait(timeout_s):
            self.close()
            raise PulseError(f"the broker did not acknowledge the subscription to {self.topic} in {timeout_s:g} s")

    def _on_message(self, client, userdata, message) -> None:
        try:
            record = json.loads(message.payload)
            if not isinstance(record, dict):
                raise PulseError("not an object")
            self._queue.put(edge_from_record(record, message.topic))
        except (ValueError, MinimeterError):
            self.refused += 1

    def edges(self, wait_s: float = 0.0) -> list[Transition]:
        """The edges received so far (waiting up to ``wait_s`` for the first one)."""
        out: list[Transition] = []
        try:
            out.append(self._queue.get(timeout=wait_s) if wait_s > 0 else self._queue.get_nowait())
            while True:
                out.append(self._queue.get_nowait())
        except queue.Empty:
            return out

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _batches(edges: Iterator[Transition]) -> Iterator[list[Transition]]:
    while batch := list(islice(edges, BATCH_EDGES)):
        yield batch


def _listen(reader: PulseReader, url: str, node_id: str, topic: str | None, listen_s: float) -> None:
    sub = EdgeSubscription(url, node_id=node_id, topic=topic)
    try:
        sub.wait_ready()
        deadline = time.monotonic() + listen_s
        while (left := deadline - time.monotonic()) > 0:
            reader.read(sub.edges(wait_s=min(left, 0.5)))
    finally:
        sub.close()


def _kh_pairs(texts: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for text in texts:
        name, eq, value = text.partition("=")
        if not (eq and name.strip() and value.strip().isdigit()):
            raise click.BadParameter(f"{text!r} must be OUTPUT=KH, e.g. counter=100", param_hint="--kh")
        out[name.strip()] = int(value)
    return out


def _payload(reader: PulseReader, register_start, register_end) -> dict:
    outputs = []
    for name in reader.outputs:
        power = reader.power(name)
        outputs.append({"output": name, "kh_wh": reader.kh_of(name), "pulses": reader.pulses(name),
                        "energy_wh": reader.energy_wh(name), "recovered": reader.recovered(name),
                        "ignored_power_edges": reader.ignored_power_edges(name),
                        "rejected_edges": reader.rejected_edges(name),
                        "last_power_w": power[-1][1] if power else None,
                        "intervals": [{"start_s": s, "energy_wh": wh} for s, wh in reader.intervals(name)]})
    payload = {"settings": reader.settings.__dict__, "edges": reader.edges_seen, "outputs": outputs,
               "gaps": [{**g.__dict__, "estimated_wh": g.estimated_wh} for g in reader.gaps()]}
    if register_start is not None and register_end is not None:
        payload["reconciliation"] = [reader.reconcile(name, register_start, register_end).as_dict()
                                     for name in reader.outputs]
    return payload


def _print(console: Console, payload: dict) -> None:
    table = Table(title=f"{payload['edges']:,} edge(s) read")
    for head in ("output", "Kh [Wh]", "pulses", "energy [Wh]", "recov.", "power edges", "filtered", "power [W]"):
        table.add_column(head, justify="right")
    for row in payload["outputs"]:
        last = row["last_power_w"]
        table.add_row(row["output"], str(row["kh_wh"]), f"{row['pulses']:,}", f"{row['energy_wh']:,.0f}",
                      str(row["recovered"]), str(row["ignored_power_edges"]), str(row["rejected_edges"]),
                      "—" if last is None else f"{last:,.1f}")
    console.print(table)
    for rec in payload.get("reconciliation", ()):
        verdict = "[green]exact[/]" if rec["exact"] else f"[red]{rec['difference_pulses']:+d} pulse(s)[/]"
        console.print(f"output {rec['output']}: register {rec['register_start_wh']:,.3f} → {rec['register_end_wh']:,.3f} Wh "
                      f"expects {rec['expected_pulses']:,} pulse(s), counted {rec['counted_pulses']:,}: {verdict}")
    for gap in payload["gaps"][:10]:
        console.print(f"  gap on output {gap['output']}: {gap['reason']} {gap['start_s']:.3f}–{gap['end_s']:.3f} s, "
                      f"at {gap['power_before_w']:.0f} W before: up to {gap['estimated_wh']:.1f} Wh")
    if len(payload["gaps"]) > 10:
        console.print(f"  … {len(payload['gaps']) - 10} more gap(s)")


def _write_intervals(path: str, payload: dict) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["output", "start_s", "energy_wh"])
        for row in payload["outputs"]:
            for item in row["intervals"]:
                out.writerow([row["output"], item["start_s"], item["energy_wh"]])


@click.command("read-pulses")
@click.argument("edges_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--mqtt", "mqtt_url", default=None, metavar="URL",
              help="Read the live meter's edges from its MQTT edges topic: mqtt://host[:port][/base].")
@click.option("--node-id", default="minimeter", show_default=True, help="The live meter's MQTT node id.")
@click.option("--topic", default=None, help="The edges topic (default: <base>/<node id>/edges).")
@click.option("--listen", "listen", default="60s", show_default=True, help="With --mqtt: how long to listen.")
@click.option("--debounce-ms", type=float, default=20.0, show_default=True,
              help="Minimum pulse width: a level must hold this long to count [ms].")
@click.option("--edge", type=click.Choice(["rising", "falling"]), default="rising", show_default=True,
              help="The edge that marks a pulse.")
@click.option("--count-power-edges", is_flag=True, help="Count the edges of power loss/restore too (a naive reader).")
@click.option("--kh", "kh_pairs", multiple=True, metavar="OUTPUT=KH", help="Kh of an output not named by it (counter=100).")
@click.option("--register-start", type=float, default=None, help="Register reading at the start [Wh], to reconcile.")
@click.option("--register-end", type=float, default=None, help="Register reading at the end [Wh], to reconcile.")
@click.option("--intervals-out", type=click.Path(dir_okay=False), default=None, help="Write 15-minute intervals (CSV).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON only.")
def read_pulses_command(edges_file, mqtt_url, node_id, topic, listen, debounce_ms, edge, count_power_edges, kh_pairs,
                        register_start, register_end, intervals_out, as_json) -> None:
    """Count the meter's output pulses as an AMR reader would (S13.2): energy, 15-minute
    intervals, power from the pulse period, gaps, and the reconciliation with a register
    read at start and end."""
    if (edges_file is None) == (mqtt_url is None):
        raise click.UsageError("give an edges file or --mqtt URL (one of them)")
    try:
        settings = ReaderSettings(name="read-pulses", edge=edge, debounce_s=debounce_ms / 1000.0,
                                  count_power_edges=count_power_edges)
    except PulseError as exc:
        raise click.BadParameter(str(exc), param_hint="--debounce-ms") from None
    reader = PulseReader(settings, kh_wh=_kh_pairs(kh_pairs))
    if edges_file is not None:
        for batch in _batches(read_edges(edges_file)):
            reader.read(batch)
    else:
        _listen(reader, mqtt_url, node_id, topic, parsed(parse_duration_s, listen, "--listen"))
    reader.finish()
    payload = _payload(reader, register_start, register_end)
    if intervals_out:
        _write_intervals(intervals_out, payload)
    if as_json:
        click.echo(json.dumps(payload, indent=1))
    else:
        _print(Console(highlight=False), payload)


@click.command("pulse-bench")
@click.option("--out", "out_dir", default="pulse-bench", show_default=True, type=click.Path(file_okay=False),
              help="Directory for index.html (table, plot, advice) and pulse_bench.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores and the advice as JSON only.")
def pulse_bench_command(out_dir, as_json) -> None:
    """The pulse-reading conformance bench (S13.3): the meter's own edges (a household day
    with ten power cycles; the largest meter at full load) through contact bounce, reader
    restarts and missed edges, read by the project's reader and the common naive ones,
    each total scored against the register."""
    from minimeter.lab.pulse_bench import advice_rows, run_bench, table_rows, write_report

    scores = run_bench()
    advice = advice_rows()
    paths = write_report(scores, advice, out_dir)
    if as_json:
        click.echo(json.dumps({"scores": [s.as_dict() for s in scores], "advice": advice,
                               "html": str(paths["html"])}, indent=1))
        return
    console = Console(highlight=False)
    header, body = table_rows(scores)
    table = Table(title="Counted pulses against the register (counted − floor(E_end/Kh) + floor(E_start/Kh))")
    for k, head in enumerate(header):
        table.add_column(head, justify="left" if k < 2 else "right")
    for row in body:
        table.add_row(*(f"[green]{c}[/]" if c == "exact" else c for c in row))
    console.print(table)
    for a in advice:
        console.print(f"Kh = {a['kh_wh']:>4} Wh at full load {a['full_load_w']:,.0f} W: pulses "
                      f"{a['pulse_width_s'] * 1000:,.1f} ms wide — the longest safe filter is just under that")
    console.print(f"report: {paths['html']}")


COMMANDS = [read_pulses_command, pulse_bench_command]
