"""How many devices XLA's CPU platform shows: one, unless asked for more before JAX starts.

XLA's CPU client reads ``--xla_force_host_platform_device_count=N`` from ``XLA_FLAGS``
once, when it starts, and shows one CPU device without it; so ``dslc train --devices
N`` must set it before JAX is imported (``cli.py`` calls ``use_host_devices`` where it
calls ``threads.use_threads``). The N devices share the process's CPU threads: they
make a data-parallel run on one machine possible to test, not faster. On a GPU
platform the flag is harmless (the mesh takes the GPUs). A count the user already put
in ``XLA_FLAGS`` is kept: their setting wins, and ``--devices`` above it is refused
by the target with the number JAX has.
"""

from __future__ import annotations

import os

HOST_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def use_host_devices(count: int | None, environ=os.environ) -> None:
    """Asks XLA's CPU platform for ``count`` devices (appended to any ``XLA_FLAGS``); nothing for None or 1."""
    flags = environ.get("XLA_FLAGS", "")
    if count is None or count < 2 or HOST_DEVICE_FLAG in flags:
        return
    environ["XLA_FLAGS"] = f"{flags} {HOST_DEVICE_FLAG}={count}".strip()


def more_devices_hint(count: int) -> str:
    """How to get ``count`` devices: the CPU flag (dslc sets it unless ``XLA_FLAGS`` already has one)."""
    return (f"on the CPU, XLA shows {count} devices when started with XLA_FLAGS={HOST_DEVICE_FLAG}={count} "
            f"(dslc train --devices sets it, unless XLA_FLAGS already sets the count); on GPUs, --devices "
            f"counts the GPUs this process sees")
