"""What the compiled sample path costs before its first chunk (issue 12).

Runs a fresh interpreter twice against an empty numba cache directory: the first pays
the compile (a fresh checkout, once), the second loads the cached machine code (every
later process, and every test after the first). Prints wall and CPU seconds of the
import and of the first ``measure_chunk`` call, and the ratio cold / cached.

Usage: python benchmarks/kernel_compile.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

PROBE = """
import time
t0, c0 = time.perf_counter(), time.process_time()
import numpy as np
from minimeter.meter.metrology import LineCycleState, measure_chunk
t1, c1 = time.perf_counter(), time.process_time()
v = np.cos(np.arange(4000) * 2 * np.pi / 133.3)[None].repeat(2, 0)
measure_chunk(v, v, LineCycleState.start(2, 8000.0))
t2, c2 = time.perf_counter(), time.process_time()
print(t1 - t0, c1 - c0, t2 - t1, c2 - c1)
"""


def probe(cache_dir: str) -> list[float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return [float(x) for x in out.stdout.split()]


def main() -> None:
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = probe(cache_dir)
        cached = probe(cache_dir)
    for name, (iw, ic, fw, fc) in (("cold (compile)", cold), ("cached", cached)):
        print(f"{name:15s}: import {iw:5.2f} s wall ({ic:5.2f} s CPU); first measure_chunk {fw:6.2f} s wall "
              f"({fc:6.2f} s CPU)")
    print(f"first call cold / cached: {cold[3] / cached[3]:.0f}× (CPU); the compile is paid once per checkout")


if __name__ == "__main__":
    main()
