"""torch data parallel: starting the workers, their process group, and the collectives the target needs.

``dslc train --target torch --nproc N`` starts N worker processes through torch's own
elastic launcher (``elastic_launch``, what ``torchrun`` runs: a standalone c10d
rendezvous on localhost, a free port), each running the same ``train`` on the same
global batches; ``run_worker`` is also what an external ``torchrun ... cli.py train``
runs in each of its processes (``WORLD_SIZE`` > 1 in the environment). Each worker
joins a process group (gloo on CPU, NCCL for CUDA tensors on ``cuda:LOCAL_RANK``),
which is destroyed when its training ends.

The workers are forked, not spawned: the launcher process has imported torch but never
touched CUDA or run a parallel op, and a fork skips each worker's 3-4 s of importing
torch again (measured on this 2-core machine: 2 workers doing one all-reduce took 3.5 s
forked, 11.5 s spawned).

A failing worker surfaces as one line: the launcher's ``ChildFailedError`` is read for
the first failure's message (a ``DslcError`` a worker raised keeps its text), and the
launcher's own log lines and tracebacks are silenced.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace

import torch
import torch.distributed as dist

from dsl.errors import DivergedError, DslcError, UsageError

from ..world import World

_USER_ERRORS = {"DslcError: ": UsageError, "DivergedError: ": DivergedError}
"""A worker's error message prefix (its class name) -> the error the launcher raises with its text."""


class WorkerFailed(DslcError):
    """A worker of a data-parallel run failed with an error that is not the user's (a crash, a bug)."""


def launch(nproc: int, options, resume: bool = False, threads: int | None = None) -> dict:
    """Trains ``options`` (a ``TrainOptions``, its spec given as ``spec_text``; ``resume``: continue the
    checkpoint in ``out_dir``) in ``nproc`` worker processes on this host; returns rank 0's summary.
    ``threads``: torch threads per worker (default: this process's cores shared among the workers)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from ..threads import available_cores

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"dslc-{os.getpid()}",
                          rdzv_backend="c10d", rdzv_endpoint=f"localhost:{_free_port()}", max_restarts=0,
                          monitor_interval=0.1, start_method="fork")
    for name in ("torch.distributed.elastic", "torch.multiprocessing"):  # their tracebacks: we report one line
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        results = elastic_launch(config, _worker)(options, resume, threads or max(1, available_cores() // nproc))
    except ChildFailedError as err:
        raise _first_failure(err) from None
    return results[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _worker(options, resume: bool, threads: int) -> dict | None:
    """One launched worker: its thread count, then ``run_worker``; a user's error keeps its text through
    the launcher (its message is ``<class name>: <text>``)."""
    torch.set_num_threads(threads)
    try:
        return run_worker(options, resume)
    except DivergedError as err:  # keeps its class, and so the CLI's exit status 1
        raise DivergedError(str(err)) from None
    except DslcError as err:
        raise DslcError(str(err)) from None


def _first_failure(err) -> DslcError:
    """The error of the worker that failed first (then the lowest rank), as one line."""
    rank, failure = min(err.failures.items(), key=lambda item: (item[1].timestamp, item[0]))
    message = failure.message.get("message", "") if isinstance(failure.message, dict) else str(failure.message)
    for prefix, error in _USER_ERRORS.items():
        if message.startswith(prefix):
            return error(message[len(prefix):])
    first = message.strip().splitlines()[0] if message.strip() else f"exit code {failure.exitcode}"
    return WorkerFailed(f"worker {rank} failed: {first}")


def run_worker(options, resume: bool = False, world: World | None = None) -> dict | None:
    """This process's share of a data-parallel run (``world``: default torchrun's environment): joins the
    process group, trains, leaves it; returns the summary on rank 0, None on the others."""
    import dsl

    from ..checkpoint import read_checkpoint
    from ..loop import train

    world = world or World.from_env()
    cuda = _uses_cuda(options.target_options.get("device"))
    if cuda:
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", rank=world.rank, world_size=world.size)
    try:
        spec, graph = dsl.loads(options.spec_text, str(options.spec_path or "<spec>"))
        resume = read_checkpoint(options.out_dir, tensors=True) if resume else None
        summary = train(spec, graph, replace(options, world=world, agree=agree), resume=resume)
    finally:
        dist.destroy_process_group()
    return summary if world.writes else None


def _uses_cuda(device: str | None) -> bool:
    """Whether the target will run on CUDA: ``device`` cuda, or auto (None) with a GPU present."""
    return device == "cuda" or (device in (None, "auto") and torch.cuda.is_available())


def agree(value):
    """Rank 0's ``value`` on every rank (``broadcast_object_list``): what the driver decides once, such as
    the run folder."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sums(sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Metric sums added over the ranks in one collective (as float64, exact for the counts), in their dtypes."""
    if not sums:
        return sums
    flat = torch.stack([v.detach().to(torch.float64).reshape(()) for v in sums.values()])
    dist.all_reduce(flat)
    return {k: flat[i].to(v.dtype) for i, (k, v) in enumerate(sums.items())}


def all_reduce_count(count: torch.Tensor) -> torch.Tensor:
    """A count summed over the ranks (a new tensor; differentiable paths are not involved)."""
    total = count.detach().clone()
    dist.all_reduce(total)
    return total


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) on every rank, as DDP sends them before each forward."""
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def global_batch_norm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` with its BatchNorm layers normalizing by the global batch's statistics (``train.sync_batch_norm``).

    On CUDA torch's ``SyncBatchNorm.convert_sync_batchnorm``; torch's ``SyncBatchNorm``
    refuses CPU tensors ("expected input tensor to be on GPU"), so on CPU each layer
    becomes a ``GlobalBatchNorm`` with the same parameters, buffers and names.
    """
    if device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
            module.add_module(name, GlobalBatchNorm.of(child, device))
        else:
            global_batch_norm(child, device)
    return module


class _SumOverRanks(torch.autograd.Function):
    """``all_reduce`` (sum) with its gradient: every rank's output is the sum of every rank's input, so each
    input's gradient is the sum of every rank's output gradient. What ``torch.distributed.nn.functional.
    all_reduce`` does; torch 2.14 deprecates that public function (a warning per worker) for a private one."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are over every rank's rows: ``SyncBatchNorm``'s math for gloo/CPU.

    Two passes (the global mean, then the global mean of squared deviations) through
    ``_SumOverRanks``, whose backward adds the gradients over the ranks, so the gradient
    is the 1-process one of the global batch; the running variance is updated unbiased
    (n / (n - 1)), as torch's BatchNorm does.
    """

    @classmethod
    def of(cls, bn: torch.nn.modules.batchnorm._BatchNorm, device: torch.device) -> GlobalBatchNorm:
        new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        new.load_state_dict(bn.state_dict())
        return new.to(device, bn.running_mean.dtype if bn.running_mean is not None else None).train(bn.training)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return torch.nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                                  False, 0.0, self.eps)
        all_reduce = _SumOverRanks.apply
        dims, shape = [0, *range(2, x.dim())], (1, -1) + (1,) * (x.dim() - 2)
        count = all_reduce_count(torch.tensor(float(x.numel() // x.shape[1]), device=x.device, dtype=x.dtype))
        mean = all_reduce(x.sum(dims)) / count
        centered = x - mean.reshape(shape)
        var = all_reduce((centered * centered).sum(dims)) / count
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach() * count / (count - 1).clamp(min=1))
        y = centered * torch.rsqrt(var + self.eps).reshape(shape)
        return y * self.weight.reshape(shape) + self.bias.reshape(shape) if self.affine else y

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(unbiased_var, factor)
