"""How one ``dslc train`` is spread: torch DDP worker processes, or a JAX device mesh and hosts.

The command line names the workers (``--nproc N``, ``--devices N``, ``--coordinator
...``); this module checks that they fit the target and starts the run the right way:
one process (``loop.train``), N torch workers (``torch/distributed.launch``), this
process as one worker of an external ``torchrun`` (``torch/distributed.run_worker``),
or one process of a multi-host JAX run (``jax/distributed.join`` gives its ``World``).
Frameworks are imported only when a run needs them.
"""

from __future__ import annotations

import os

from dsl.errors import UsageError

from .world import World


def jax_devices(target: str, devices: int | None) -> dict:
    """``--devices N``: the JAX target's mesh option for training, all local devices when not given; a count
    JAX does not have is refused before any data loads."""
    if target != "jax":
        if devices is not None:
            raise UsageError("--devices applies to --target jax; torch runs one process per device: use --nproc N")
        return {}
    if devices is not None:
        from .jax.mesh import mesh_devices

        mesh_devices(devices)
    return {"devices": devices}


def jax_world(target: str, coordinator: str | None, num_processes: int | None, process_id: int | None) -> World:
    """This process's place in a multi-host JAX run (``--coordinator``, or JAX's ``JAX_COORDINATOR_ADDRESS``),
    joined here; one process otherwise."""
    if coordinator is None and num_processes is None and process_id is None \
            and "JAX_COORDINATOR_ADDRESS" not in os.environ:
        return World()
    if target != "jax":
        raise UsageError("--coordinator, --num-processes and --process-id apply to --target jax; "
                         "a multi-node torch run is started by torchrun")
    from .jax.distributed import join

    return join(coordinator, num_processes, process_id)


def torch_workers(target: str, nproc: int | None, resumed: int | None = None) -> int:
    """The torch worker processes this command starts: ``--nproc``, a resumed run's own count, or 1; 0 when
    it runs as one worker of an external ``torchrun`` (``WORLD_SIZE`` > 1), which started the others."""
    if nproc and target != "torch":
        raise UsageError("--nproc applies to --target torch; a JAX run uses this host's devices (--devices N)")
    under_torchrun = World.from_env().size > 1
    if nproc and under_torchrun:
        raise UsageError("--nproc under torchrun: torchrun starts the workers (--nproc-per-node)")
    if target != "torch":
        return 1
    return 0 if under_torchrun else nproc or resumed or 1


def train(spec, graph, options, checkpoint=None, workers: int = 1, threads: int | None = None) -> dict | None:
    """Runs the training ``workers`` says (``torch_workers``); rank 0's summary, None on the other ranks."""
    if workers == 1:
        from .loop import train as train_here

        return train_here(spec, graph, options, resume=checkpoint)
    from .torch.distributed import launch, run_worker

    if workers > 1:
        return launch(workers, options, resume=checkpoint is not None, threads=threads)
    return run_worker(options, resume=checkpoint is not None)
