"""The Dask cluster a fleet or an archive runs on (SPEC S14.2): a local cluster of worker
processes on this machine's cores by default, or an existing cluster by its scheduler
address (``tcp://HOST:PORT``).

Workers run one task at a time (one thread each): the meter is pure Python and numpy
work that holds the GIL, so processes, not threads, give parallelism.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from minimeter.errors import MinimeterError

MAX_WORKERS = 256
# Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
# mmap threshold: every numpy array over 128 KiB is then mapped and unmapped afresh, and a
# meter-year runs ~25 % slower (benchmarks/fleet_scaling.py). Our workers keep glibc's
# adaptive default (None unsets the variable), and no statistical profiler samples them
# (no dashboard shows it).
WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                 "distributed.worker.profile.enabled": False}


class ClusterError(MinimeterError, RuntimeError):
    """The cluster cannot be reached or started."""


def default_workers() -> int:
    """This machine's cores (the ones this process may use)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:          # not Linux
        return max(os.cpu_count() or 1, 1)


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator["object"]:
    """A ``distributed.Client``: on the cluster at ``scheduler``, or on a local cluster of
    ``workers`` processes (default: :func:`default_workers`) closed on leaving."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if workers is not None:
            raise ClusterError("--workers applies to the local cluster; an existing cluster (--scheduler) "
                               "has its own workers")
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    n = default_workers() if workers is None else workers
    if not 1 <= n <= MAX_WORKERS:
        raise ClusterError(f"--workers {n} is outside 1 … {MAX_WORKERS}")
    # the scheduler's HTTP server on a free port (it would take 8787), no dashboard
    with dask.config.set(WORKER_CONFIG), LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False}, silence_logs=40) as cluster, Client(cluster) as client:
        yield client


__all__ = ["ClusterError", "dask_client", "default_workers"]
