"""Fleet scaling (issue 13): meter-years per second of the household population
(examples/fleets/street.toml's model, no faults) run

  * in-process (the baseline: the same meters, one after the other, no Dask),
  * on a local Dask cluster of 1 worker process,
  * on a local Dask cluster of 2 worker processes,

each meter on the phasor path and diagnosed, exactly as `minimeter fleet run` does (the
Parquet writing included for the clusters). Prints meter-years per second (simulated
meter-time / wall time), the ratios 2 workers : 1 worker and 1 worker : in-process, the
peak resident memory of each worker (and of this process for the baseline), and the
projected wall time of 10,000 meter-years at the 2-worker rate. Each kind is run
``--repeats`` times (on one cluster, after its start-up): min and median wall time, the
rates from the min.

Each run starts after its cluster is up and every worker has run one short meter (imports,
the compiled kernel loaded; that start-up is not in the rate, it is printed). The
meters of a run are distinct (meter i of the fleet), the same ones in every run.

With ``--serve N`` it measures the live fleet instead (issue 13: 1,000 meters at speed 1
within 50 % of one core): ``minimeter fleet serve``'s FleetServer with N meters, each
persisted in its own store, on Modbus (every unit id) and the web index, at speed 1, for
``--seconds`` of wall time after start-up; prints the process's CPU time over that wall
time (% of one core: the run ends by committing every meter, as a stop does) and the
latest a meter's wake came. ``--mqtt mosquitto`` publishes every meter to a Mosquitto
broker this script starts on a free loopback port (Debian's: ``sh
scripts/install-test-services.sh``) and stops, and prints the broker's own CPU; ``--mqtt URL``
to a broker of your own.

Usage: python benchmarks/fleet_scaling.py [--meters 16] [--repeats 3] [--period 365d] [--partition 1] [--kwh-only]
       python benchmarks/fleet_scaling.py --serve 1000 [--seconds 60] [--mqtt mosquitto | --mqtt mqtt://HOST:PORT/BASE]
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

from minimeter.fleet.cluster import dask_client
from minimeter.fleet.meter_run import run_partition
from minimeter.fleet.run import run_fleet
from minimeter.formats.fleet import parse_fleet

YEAR_S = 365 * 86400.0
FLEET = """
name = "bench"
seed = 1
period = "{period}"
quantities = {quantities}
[population]
meters = {meters}
models = {{ "7B" = 0.7, "6S" = 0.2, "MO" = 0.1 }}
ct_ratings = {{ "200A" = 0.8, "100A" = 0.2 }}
services = {{ split = 0.8, network = 0.2 }}
"""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _warm() -> None:
    """Imports and the compiled kernel loaded, one short meter run (each worker, and here)."""
    tiny = parse_fleet(FLEET.format(period="1min", meters=1, quantities="true"))
    run_partition(tiny, [0])


def in_process(fleet, repeats: int) -> list[float]:
    """Wall times [s] of ``repeats`` runs of the fleet in this process."""
    _warm()
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_partition(fleet, list(range(fleet.meters)))
        walls.append(time.perf_counter() - t0)
    return walls


def on_cluster(fleet, workers: int, partition: int, repeats: int) -> tuple[list[float], float, list[float], float]:
    """(wall of each of ``repeats`` runs on one cluster [s], start-up [s], peak RSS per worker [MB],
    the least CPU this process — the client and the scheduler — took in a run [s])."""
    t0 = time.perf_counter()
    with dask_client(workers=workers) as client:
        client.run(_warm)                            # workers up, imports and kernel loaded
        started = time.perf_counter() - t0
        walls, client_cpu = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as out:
                t1, cpu1 = time.perf_counter(), time.process_time()
                run_fleet(fleet, out, client, partition_meters=partition)
                walls.append(time.perf_counter() - t1)
                client_cpu.append(time.process_time() - cpu1)
        memory = sorted(client.run(_peak_rss_mb).values())
    return walls, started, memory, min(client_cpu)


MOSQUITTO = "/usr/sbin/mosquitto"          # Debian's (scripts/install-test-services.sh)


@contextlib.contextmanager
def mosquitto(workdir: str | Path) -> Iterator[str]:
    """A Mosquitto broker of this process's own on a free loopback port (anonymous, no
    persistence, queues deep enough for a thousand devices' retained configs), its
    configuration and log in ``workdir``; yields its URL, stops it on exit — and, where
    util-linux's ``setpriv`` is there (Linux), also when this process dies without a word
    (``kill -9``): the broker is started with a parent-death signal, so none is left behind."""
    exe = shutil.which("mosquitto") or MOSQUITTO
    setpriv = shutil.which("setpriv")
    orphan_guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
    port = _free_port()
    conf, log = Path(workdir) / "mosquitto.conf", Path(workdir) / "mosquitto.log"
    # ``user``: this process's own, so a broker started as root keeps its credentials (one that
    # changes them loses its parent-death signal)
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"user {getpass.getuser()}\nmax_queued_messages 1000000\n"
                    "log_dest stderr\nlog_type error\nlog_type warning\n")
    with open(log, "wb") as err:
        broker = subprocess.Popen([*orphan_guard, exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 10.0
        while not _listening(port):
            if broker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on 127.0.0.1:{port}: {log.read_text().strip()}")
            time.sleep(0.02)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def serve(meters: int, seconds: float, mqtt_url: str | None) -> None:
    """The live fleet's CPU (see the module's docstring); ``mqtt_url`` 'mosquitto': a broker of its own."""
    if mqtt_url == "mosquitto":
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        with tempfile.TemporaryDirectory() as workdir, mosquitto(workdir) as url:
            serve(meters, seconds, f"{url}/minimeter")
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        broker_cpu = (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
        print(f"(the broker, in its own process: {broker_cpu:.2f} s CPU over its whole life, start and stop included)")
        return
    import threading

    from minimeter.fleet.serve import FleetServer, ServeOptions

    fleet = parse_fleet(FLEET.format(period="1d", meters=meters, quantities="true"))
    with tempfile.TemporaryDirectory() as db:
        t0 = time.perf_counter()
        server = FleetServer(fleet, ServeOptions(port=_free_port(), modbus_port=_free_port(), speed=1.0, db_dir=db,
                                                 mqtt_url=mqtt_url))
        server.start()
        print(f"{meters} live meters, stores in {db}{', MQTT ' + mqtt_url if mqtt_url else ''}: started in "
              f"{time.perf_counter() - t0:.1f} s")
        try:
            server.run(threading.Event(), seconds=server.options.tick_s)     # every meter's first wake (kernels compiled)
            server.max_lag_s = 0.0
            usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            server.run(threading.Event(), seconds=seconds)
            usage1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall0
        finally:
            server.stop()
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    print(f"speed 1, {wall:.1f} s wall: CPU {cpu:.2f} s = {100 * cpu / wall:.1f} % of one core; "
          f"wakes at most {server.max_lag_s:.2f} s late; peak RSS {_peak_rss_mb():.0f} MB; {_load()}")


def _load() -> str:
    """The 1-minute load average (the figures are only indicative on a shared machine)."""
    return f"load average {os.getloadavg()[0]:.2f}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meters", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind (min and median printed)")
    parser.add_argument("--period", default="365d")
    parser.add_argument("--partition", type=int, default=1, help="meters per Dask task")
    parser.add_argument("--kwh-only", action="store_true",
                        help="meters without the S12.2 quantities (fleet key quantities = false)")
    parser.add_argument("--serve", type=int, default=0, metavar="N", help="measure N live meters instead")
    parser.add_argument("--seconds", type=float, default=60.0, help="(--serve) wall seconds measured")
    parser.add_argument("--mqtt", default=None, metavar="URL",
                        help="(--serve) publish to this broker too; 'mosquitto': to one this script starts")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.seconds, args.mqtt)
        return
    fleet = parse_fleet(FLEET.format(period=args.period, meters=args.meters,
                                     quantities="false" if args.kwh_only else "true"))
    meter_years = fleet.meters * fleet.period_s / YEAR_S
    print(f"{fleet.meters} household meters × {fleet.period_s / 86400:g} d = {meter_years:.5f} meter-years per run"
          f"{' (kWh registers only)' if args.kwh_only else ' (with the S12.2 registers)'}")
    print(f"wall s min / median of {args.repeats}; rates from the min")
    walls = in_process(fleet, args.repeats)
    rates = {"in-process": meter_years / min(walls)}
    print(f"in-process      {min(walls):6.2f} / {statistics.median(walls):6.2f} s  {rates['in-process']:.5f} "
          f"meter-years/s  peak RSS {_peak_rss_mb():.0f} MB")
    for workers in (1, 2):
        walls, started, memory, client_cpu = on_cluster(fleet, workers, args.partition, args.repeats)
        rates[workers] = meter_years / min(walls)
        print(f"{workers} worker(s)     {min(walls):6.2f} / {statistics.median(walls):6.2f} s  {rates[workers]:.5f} "
              f"meter-years/s  (cluster start-up {started:.1f} s)  peak RSS per worker "
              f"{', '.join(f'{m:.0f}' for m in memory)} MB; client and scheduler {client_cpu:.2f} s CPU")
    print(f"ratio 2 workers : 1 worker     {rates[2] / rates[1]:.2f}")
    print(f"ratio 1 worker : in-process    {rates[1] / rates['in-process']:.2f}")
    print(f"10,000 meter-years at the 2-worker rate: {10_000 / rates[2] / 3600:.2f} h; {_load()}")


if __name__ == "__main__":
    main()
