"""What a real-time live meter costs: CPU seconds per wall second (issue 12 item 5).

Three measurements of the built-in household 7B at ``--speed 1``, each over
``--seconds`` of wall time (60 by default), after start-up (the child process: from
:data:`SETTLE_S` after it says it runs, past its first wakes and lazy imports):

  * ``minimeter run --speed 1 --no-store --hours 0 --no-panel`` as a child process, with
    its web panel and Modbus server on free ports: the CPU time of all its threads
    (``/proc/PID/task/*/schedstat``, nanoseconds) over the wall time;
  * ``LiveMeter.run`` alone, in this process (``time.process_time``);
  * the previous design's ``LiveMeter.run`` (``src/minimeter/live/runner.py`` at the git
    revision ``--previous``, default ``69be3e1``: a 20 ms poll), the same way — the baseline.

Prints each as a percentage of one core, the per-wake cost, and the ratio of the
previous design's to this one's. The target (issue 12): ≤ 0.1 % of a core.

Usage: python benchmarks/live_cpu.py [--seconds 60] [--previous 69be3e1]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from minimeter.meter._kernels import warm

REPO = Path(__file__).resolve().parents[1]
MINIMETER = str(Path(sys.executable).with_name("minimeter"))
SETTLE_S = 8.0                     # start measuring after this [s wall]: past MAX_TICK_S, the first wakes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far [ns]."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            pass                                          # a thread that just ended
    return total


def measure_cli(seconds: float) -> tuple[float, float]:
    """(CPU s, wall s) of ``minimeter run --speed 1`` after its start-up."""
    args = [MINIMETER, "run", "--speed", "1", "--no-store", "--hours", "0", "--no-panel",
            "--port", str(_free_port()), "--modbus-port", str(_free_port())]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:                          # started: it says how it runs
            if line.startswith("Running"):
                break
        else:
            raise SystemExit(f"minimeter run did not start: {proc.wait()}")
        time.sleep(SETTLE_S)                              # past the first wakes (lazy imports, first feeds)
        cpu0, wall0 = _cpu_ns(proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = _cpu_ns(proc.pid), time.monotonic()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    return (cpu1 - cpu0) / 1e9, wall1 - wall0


def _runner_module(revision: str | None):
    """``minimeter.live.runner`` now, or as it was at git ``revision``."""
    if revision is None:
        from minimeter.live import runner  # noqa: PLC0415
        return runner
    text = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:src/minimeter/live/runner.py"],
                          capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "runner_previous.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("minimeter.live._runner_previous", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                       # (its dataclasses look themselves up)
    spec.loader.exec_module(module)
    return module


def measure_api(revision: str | None, seconds: float) -> tuple[float, float, int]:
    """(CPU s, wall s, snapshots published) of ``LiveMeter.run`` at speed 1, in process."""
    from minimeter.sources.installation import default_installation  # noqa: PLC0415

    runner = _runner_module(revision)
    live = runner.LiveMeter(default_installation(), speed=1)

    class Count:
        n = 0

        def update(self, snapshot) -> None:
            Count.n += 1

    live.add_sink(Count())
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    cpu0, wall0 = time.process_time(), time.monotonic()
    live.run(stop, hours=0)
    return time.process_time() - cpu0, time.monotonic() - wall0, Count.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="wall seconds per measurement")
    parser.add_argument("--previous", default="69be3e1", help="git revision of the previous design's runner "
                        "(69be3e1: the last with the 20 ms poll)")
    opts = parser.parse_args()
    print(f"live meter at --speed 1, household 7B, {opts.seconds:g} s wall per measurement, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    cpu, wall = measure_cli(opts.seconds)
    print(f"  minimeter run --speed 1 --no-store (web + Modbus): {cpu:.4f} CPU s / {wall:.1f} wall s = "
          f"{100 * cpu / wall:.4f} % of a core")
    warm()          # the compiled kernels' load, once per process, is not the live meter's running cost
    cpu_new, wall_new, n_new = measure_api(None, opts.seconds)
    print(f"  LiveMeter.run, this design:     {cpu_new:.4f} CPU s / {wall_new:.1f} s = {100 * cpu_new / wall_new:.4f} % "
          f"of a core; {n_new} snapshots, {1e6 * cpu_new / max(n_new, 1):.0f} µs each")
    try:
        cpu_old, wall_old, n_old = measure_api(opts.previous, opts.seconds)
    except (subprocess.CalledProcessError, ImportError, AttributeError, TypeError) as exc:
        print(f"  previous design ({opts.previous}): not measurable here ({exc})")
        return
    print(f"  LiveMeter.run, previous design ({opts.previous}): {cpu_old:.4f} CPU s / {wall_old:.1f} s = "
          f"{100 * cpu_old / wall_old:.4f} % of a core; {n_old} snapshots, {1e6 * cpu_old / max(n_old, 1):.0f} µs each")
    print(f"  ratio previous / this design: {(cpu_old / wall_old) / (cpu_new / wall_new):.1f}×")
    target = "met" if cpu / wall <= 0.001 else "NOT met"
    print(f"  target ≤ 0.1 % of a core for minimeter run --speed 1: {target}")


if __name__ == "__main__":
    main()
