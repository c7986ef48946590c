"""Helpers for the live-meter tests (no tests here): free ports, installations with
constant loads, a ``minimeter run`` subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from minimeter.meter.register import QUANTA_PER_WH         # the register's quantum: 2⁻⁴⁰ Wh
from minimeter.sources.installation import default_installation
from minimeter.sources.service import Load

REPO = Path(__file__).resolve().parents[1]
MINIMETER = str(Path(sys.executable).with_name("minimeter"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def constant_installation(*loads: tuple[float, str], pf: float = 1.0):
    """The default 7B / 200 A / 120-240 V split-phase installation with constant loads
    given as (watts, connection)."""
    return default_installation().with_loads(
        tuple(Load(w, pf, connection=conn, name=f"{w:g} W on {conn}") for w, conn in loads))


def start_run(*args: str, env: dict | None = None) -> subprocess.Popen:
    """``minimeter run --no-panel ARGS`` in the background (stdout+stderr to a pipe)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.Popen([MINIMETER, "run", "--no-panel", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=full_env)


def wait_http(url: str, timeout_s: float = 20.0, proc: subprocess.Popen | None = None) -> dict:
    """GET ``url`` as JSON, retrying until it answers (or fail after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"minimeter run exited early ({proc.returncode}): {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return json.loads(resp.read())
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s: {last}")


def stop_run(proc: subprocess.Popen, timeout_s: float = 20.0) -> str:
    """SIGTERM, wait, return the output."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
        raise AssertionError(f"minimeter run did not stop within {timeout_s} s on SIGTERM:\n{out}")
    return out


def lcd_from_quanta(quanta: int) -> str:
    """The LCD computed here, independently: kWh truncated to 0.1, six digits + one decimal."""
    tenths = quanta // (100 * QUANTA_PER_WH) % 10_000_000
    return f"{tenths // 10:06d}.{tenths % 10}"
