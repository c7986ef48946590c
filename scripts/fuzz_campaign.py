"""A long fuzz campaign (issue 9, SPEC S15.1): N cases per target, each case either
returning or raising the project's own error.

Targets are the modules ``scripts/fuzz_targets/*.py``, each with
``run_case(rng: numpy.random.Generator) -> None``. Case ``i`` of a target runs with
``numpy.random.default_rng([seed, i])``, so any finding is replayed with ``--replay``.

Each target runs in a worker subprocess whose address space is capped with
``resource.setrlimit(RLIMIT_AS)`` (``--memory-mib``). The worker reports every case on
a pipe; the parent is the watchdog: a case silent for ``--seconds-per-case`` is a hang,
the worker is killed and a new one goes on from the next case. Printed per target:
cases, clean errors (a MinimeterError), raw tracebacks (anything else, MemoryError
included), hangs, and the worker's peak resident memory.

    .venv/bin/python scripts/fuzz_campaign.py --cases 100000 --targets readers,formats
    .venv/bin/python scripts/fuzz_campaign.py --replay readers 1234
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import select
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TARGETS_DIR = Path(__file__).resolve().parent / "fuzz_targets"


def target_names() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.py") if not p.stem.startswith("_"))


def load_target(name: str):
    spec = importlib.util.spec_from_file_location(f"fuzz_target_{name}", TARGETS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the worker
def worker(name: str, start: int, stop: int, seed: int, memory_mib: int) -> None:
    """Run cases start … stop−1, one line per case on stdout: ``i ok|clean|raw KIND``;
    at the end ``peak KiB``."""
    import warnings

    import numpy as np

    from minimeter.errors import MinimeterError

    limit = memory_mib << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")
    run_case = load_target(name).run_case
    _compile_kernels()
    out = sys.stdout
    for i in range(start, stop):
        try:
            run_case(np.random.default_rng([seed, i]))
            status = "ok"
        except MinimeterError as exc:
            status = "clean" if "\n" not in str(exc) else "raw MultiLineMinimeterError"
        except BaseException as exc:                       # noqa: BLE001 - every other exception is a finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            status = f"raw {type(exc).__name__}"
        out.write(f"{i} {status}\n")
        out.flush()
    out.write(f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\n")
    out.flush()


def _compile_kernels() -> None:
    """Compile the sample path's kernel (numba, cached on disk) before the first case, in
    the first case's grace period: a cold compile (~10–20 s) is not a hang of the case
    that happens to feed samples first."""
    import numpy as np

    from minimeter.meter.metrology import LineCycleState, measure_chunk

    for elements in (1, 2):
        measure_chunk(np.zeros((elements, 8)), np.zeros((elements, 8)), LineCycleState.start(elements, 1000.0))


# --------------------------------------------------------------------------- the watchdog
@dataclass
class Tally:
    cases: int = 0
    ok: int = 0
    clean: int = 0
    raw: Counter = field(default_factory=Counter)
    hangs: list = field(default_factory=list)
    first_raw: dict = field(default_factory=dict)      # kind → first case number
    peak_kib: int = 0
    seconds: float = 0.0


def _spawn(name: str, start: int, stop: int, args) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--worker", name, str(start), str(stop), "--seed", str(args.seed),
           "--memory-mib", str(args.memory_mib)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)


def run_target(name: str, args) -> Tally:
    tally = Tally()
    began = time.monotonic()
    next_case = 0
    while next_case < args.cases:
        proc = _spawn(name, next_case, args.cases, args)
        expected = next_case
        while True:
            # the first case of a worker also pays for its imports: give it longer
            timeout = args.seconds_per_case + (30.0 if expected == next_case else 0.0)
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            if not ready:                                   # a hang: kill, note it, go on after it
                proc.kill()
                proc.wait()
                tally.hangs.append(expected)
                tally.cases += 1
                next_case = expected + 1
                break
            line = proc.stdout.readline()
            if not line:                                    # the worker died (a crash in C, the OOM killer)
                proc.wait()
                tally.raw[f"worker died ({proc.returncode})"] += 1
                tally.first_raw.setdefault(f"worker died ({proc.returncode})", expected)
                tally.cases += 1
                next_case = expected + 1
                break
            word, rest = line.split(" ", 1)
            if word == "peak":
                tally.peak_kib = max(tally.peak_kib, int(rest))
                proc.wait()
                next_case = args.cases
                break
            tally.cases += 1
            status = rest.strip()
            if status == "ok":
                tally.ok += 1
            elif status == "clean":
                tally.clean += 1
            else:
                kind = status.removeprefix("raw ")
                tally.raw[kind] += 1
                tally.first_raw.setdefault(kind, int(word))
            expected = int(word) + 1
            if args.progress and tally.cases % 10000 == 0:
                print(f"  {name}: {tally.cases:,} cases …", file=sys.stderr, flush=True)
    tally.seconds = time.monotonic() - began
    return tally


def print_table(results: dict[str, Tally]) -> None:
    print(f"{'target':<14}{'cases':>10}{'returned':>10}{'clean errors':>14}{'raw tracebacks':>16}{'hangs':>7}"
          f"{'peak memory':>13}{'time':>9}")
    for name, t in results.items():
        print(f"{name:<14}{t.cases:>10,}{t.ok:>10,}{t.clean:>14,}{sum(t.raw.values()):>16,}{len(t.hangs):>7,}"
              f"{t.peak_kib / 1024:>10.0f} MiB{t.seconds:>8.0f}s")
    for name, t in results.items():
        for kind, count in t.raw.most_common():
            print(f"  {name}: {count} × {kind} (first: --replay {name} {t.first_raw[kind]})")
        if t.hangs:
            print(f"  {name}: hangs at cases {t.hangs[:10]}")


def replay(name: str, case: int, seed: int, memory_mib: int) -> None:
    """Rerun one case under the workers' memory limit and show what it raises."""
    import numpy as np

    limit = memory_mib << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        load_target(name).run_case(np.random.default_rng([seed, case]))
        print("returned")
    except Exception:                                       # noqa: BLE001 - show whatever it is
        traceback.print_exc()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases per target (default 100,000)")
    parser.add_argument("--targets", default=None, help=f"comma-separated (default all: {','.join(target_names())})")
    parser.add_argument("--seconds-per-case", type=float, default=10.0, help="a case silent this long is a hang")
    parser.add_argument("--memory-mib", type=int, default=2048, help="address-space limit of a worker [MiB]")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--worker", nargs=3, metavar=("TARGET", "START", "STOP"), help=argparse.SUPPRESS)
    parser.add_argument("--replay", nargs=2, metavar=("TARGET", "CASE"), help="rerun one case and show its traceback")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]), args.seed, args.memory_mib)
        return 0
    if args.replay:
        replay(args.replay[0], int(args.replay[1]), args.seed, args.memory_mib)
        return 0
    names = args.targets.split(",") if args.targets else target_names()
    unknown = [n for n in names if n not in target_names()]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)} — known: {', '.join(target_names())}")
    results = {}
    for name in names:
        results[name] = run_target(name, args)
    print(f"fuzz campaign: {args.cases:,} cases per target, seed {args.seed}, "
          f"{args.seconds_per_case:g} s per case, {args.memory_mib} MiB per worker, python {sys.version.split()[0]}")
    print_table(results)
    failed = any(t.raw or t.hangs for t in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
