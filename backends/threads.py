"""How many CPU threads the frameworks use: ``--threads N``, by default the cores this process may use.

torch sizes its intra-op pool from the machine's cores, and XLA its CPU pool too,
whatever the process's CPU affinity or container quota. On a machine shared with
another busy process that oversubscribes the cores: the torch target measured 304
samples/s with its default threads and 20,762 with one thread (digits_cnn, 2 cores,
a second process busy). So the default here is the cores this process may actually
use, and ``--threads 1`` is the advice for a busy machine.

XLA reads ``PJRT_NPROC`` when its CPU client starts (measured here: a 1500² matmul
chain takes 1.54 s with 1 and 0.72 s with 2), so ``use_threads`` must run before
the first JAX computation; torch takes ``torch.set_num_threads`` at any time, and
``OMP_NUM_THREADS`` before it is imported.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup (container) quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, _cgroup_quota() or cores))


def _cgroup_quota() -> int | None:
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else math.ceil(int(quota) / int(period))


def use_threads(count: int | None = None) -> int:
    """Sets both frameworks' CPU thread count (default: ``$DSLC_THREADS``, else ``available_cores()``); returns it.

    ``DSLC_THREADS`` is for a parent that runs several dslc processes side by side on
    the same cores (the test suite's parallel workers set it to their share).
    """
    count = count or int(os.environ.get("DSLC_THREADS") or 0) or available_cores()
    os.environ["PJRT_NPROC"] = str(count)
    os.environ["OMP_NUM_THREADS"] = str(count)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
    return count
