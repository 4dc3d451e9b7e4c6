"""Joining a multi-host JAX run: ``jax.distributed.initialize``, then this process's ``World``.

Every host runs the same ``dslc train`` with the same spec and flags, plus
``--coordinator HOST:PORT --num-processes N --process-id I`` (process 0 listens on
HOST:PORT). Without the flags, JAX's own variable ``JAX_COORDINATOR_ADDRESS`` also
starts a multi-host run, and JAX fills in the process count and id from a cluster
it recognizes (SLURM, Open MPI, Kubernetes, ...); JAX reads no variable for those two
outside such a cluster. After joining, ``jax.devices()`` lists every host's devices
and the target's mesh takes each process's local ones (``mesh.py``); the driver
writes only where ``World.writes`` (process 0). On the CPU, processes exchange
gradients through gloo, JAX's default CPU collectives.
"""

from __future__ import annotations

import jax

from dsl import UsageError

from ..world import World


def join(coordinator: str | None, num_processes: int | None, process_id: int | None) -> World:
    """``jax.distributed.initialize`` with the given values (None: JAX's environment); this process's World."""
    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise UsageError(f"--process-id must lie in 0..{num_processes - 1} (--num-processes {num_processes}); "
                         f"got {process_id}")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except (ValueError, RuntimeError) as err:
        raise UsageError(f"joining the multi-host JAX run failed: {_first_line(err)} (give --coordinator HOST:PORT "
                         f"--num-processes N --process-id I on every host)") from None
    return World(jax.process_index(), jax.process_count())


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
