"""The non-finite guard: a run whose loss, gradients or weights turn NaN or Inf stops with one line.

The line names the step and the first layer where it happened, the last good
checkpoint, and what to change (``DivergedError``, exit status 1); nothing is written
from the broken state: no checkpoint, weights file or metrics line.

**Watching** adds no host sync to the steps. The driver hands the guard the metric
sums of each chunk of steps after it has dispatched the next chunk, so reading them
waits only for work that is already done while the device runs the next (JAX's
dispatch stays a chunk ahead); a NaN or Inf anywhere in a chunk's steps shows in its
sums. Before the driver writes a checkpoint, weights or a metrics line it has the
state checked too: a gradient that turns the weights non-finite in an epoch's last
step leaves every loss of the epoch finite.

**Explaining** happens once, after the fact. The last good state is the run's
checkpoint (written at every epoch end, and never from a non-finite state), or the
initial weights where none was written yet; it lies in the current epoch. The guard
loads it and replays the epoch's batches from there one step at a time (batch order
and dropout are functions of seed and step, so the replay trains exactly as the run
did), probing each step before taking it with the per-layer capture ``dslc check``
uses (``Target.loss_and_grads``, ``Target.forward(capture=True)``). At the first
step whose loss or gradient is not finite it names a batch column that is not (the
data's fault), else the first node (graph order) whose output is not, else the layer
nearest the loss whose weight gradient is not (the backward pass reached it first:
the non-finite value entered there). The replay costs about a probe and a step per
step since the last good state: at most ``--checkpoint-every`` steps, or about 30 s of
training with the default time-based checkpoints.

A data-parallel run (world size > 1) stops on the same global sums on every rank but
names no layer: its ranks cannot replay alone, so the line says to train in one
process for that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsl import DivergedError, Graph
from dsl.objectives import Objective

from .checkpoint import CHECKPOINT, Checkpoint, read_checkpoint
from .data import Dataset, epoch_split
from .data.stream import Stream
from .optimizer_state import PREFIX
from .target import Target
from .weights import init_weights

ADVICE = "lower the learning rate or clip gradients (train.clip_grad_norm)"


@dataclass(frozen=True)
class Epoch:
    """The epoch being trained, as a replay needs it."""

    number: int
    batches: list[np.ndarray]  # all its index batches
    first_step: int  # optimizer steps done before its first batch
    data: Any  # its training data on the target


@dataclass
class Guard:
    """Checks a run's sums and state (``check_sums``, ``check_state``) and explains the first non-finite one."""

    target: Target
    graph: Graph
    objective: Objective
    dataset: Dataset
    seed: int
    out: Path
    replays: bool = True  # False in a data-parallel run: no layer diagnosis
    epoch: Epoch | None = None  # set by ``watch`` as each epoch starts

    def watch(self, epoch: Epoch) -> None:
        self.epoch = epoch

    def check_sums(self, sums: dict | None, step: int) -> None:
        """Raises ``DivergedError`` when a metric sum of the steps up to ``step`` is not finite (None: nothing
        to check). Reading them waits for those steps: pass a chunk's sums once the next chunk is dispatched."""
        bad = first_nonfinite_sum(sums or {})
        if bad is not None:
            raise self.diverged(step, f"the training {bad[0]} is {bad[1]}")

    def check_state(self, weights: dict[str, np.ndarray], optimizer: dict[str, np.ndarray], step: int) -> None:
        """Raises ``DivergedError`` when a weight, buffer or optimizer entry after ``step`` steps is not finite."""
        bad = first_nonfinite(weights) or first_nonfinite(optimizer)
        if bad is not None:
            raise self.diverged(step, f"{layer_of(bad[0])} is {bad[1]}")

    def diverged(self, step: int, seen: str) -> DivergedError:
        """The error for a divergence noticed after ``step`` steps (``seen``: what was not finite): the step and
        layer found by a replay, or what was seen when a replay is impossible or finds nothing."""
        found = self._replay(step) if self.replays else None
        checkpoint = self._checkpoint()
        epoch = self.epoch.number
        if found is not None:
            where = f"at step {found[0]} (epoch {epoch}): {found[1]}"
        elif self.replays:
            where = f"at or before step {step} (epoch {epoch}): {seen} (a replay from the last good state did not " \
                    "reproduce it: nondeterministic arithmetic?)"
        else:
            where = f"at or before step {step} (epoch {epoch}): {seen}"
        hint = "" if self.replays else "; rerun in one process (no --nproc) to name the step and layer"
        return DivergedError(f"training diverged {where}; {_last_good(self.out, checkpoint)}{hint}; {ADVICE}")

    # the replay ----------------------------------------------------------
    def _checkpoint(self) -> Checkpoint | None:
        """The run's last checkpoint (header only) where there is one, else None."""
        return read_checkpoint(self.out) if (self.out / CHECKPOINT).is_file() else None

    def _replay(self, upto: int) -> tuple[int, str] | None:
        """(step, what was not finite) for the first bad step after the last good state, up to ``upto``;
        None where the last good state is not in this epoch or the replay finds nothing."""
        start = self._restore()
        if start is None:
            return None
        epoch, host = self.epoch, epoch_split(self.dataset, self.objective, self.seed, self.epoch.number)
        for i in range(start, upto - epoch.first_step):
            found = self._replay_step(_gather(host, epoch.batches[i]), epoch.batches[i])
            if found:
                return epoch.first_step + i + 1, found
        return None

    def _replay_step(self, batch: dict[str, np.ndarray], index: np.ndarray) -> str | None:
        """Takes the step on ``batch`` as the run did, probed; what was not finite in it, or None."""
        several = len(self.target.phases) > 1
        before = (self.target.export_state(), self.target.export_optimizer_state()) if several else None
        problem = self._probe(batch, 0)
        if problem:
            return problem
        bad = first_nonfinite_sum(self.target.train_steps(self.epoch.data, [index]))
        broken = first_nonfinite(self.target.export_state()) or first_nonfinite(self.target.export_optimizer_state())
        if bad is None and broken is None:
            return None
        return (several and self._later_phases(batch, before)) or (
            f"{layer_of(broken[0])} became {broken[1]}" if broken else f"the training {bad[0]} is {bad[1]}")

    def _later_phases(self, batch: dict[str, np.ndarray], before: tuple[dict, dict]) -> str | None:
        """Probes each later phase of a step that went wrong (a GAN's generator step) from the state it started
        from: the models of the earlier phases as the step left them, the others as they were before it."""
        phases, after = self.target.phases, self.target.export_state()
        for phase in range(1, len(phases)):
            updated = tuple(f"{model}." for model, _ in phases[:phase])
            self.target.load_state({k: after[k] if k.startswith(updated) else v for k, v in before[0].items()})
            self.target.load_optimizer_state(before[1])  # the step count, which dropout's draws depend on
            problem = self._probe(batch, phase)
            if problem:
                return problem
        return None

    def _restore(self) -> int | None:
        """Loads the last good state into the target; returns the epoch's batch it continues with (None: that
        state is not in this epoch, and the replay would not be exact)."""
        epoch, graph = self.epoch, self.graph
        if (self.out / CHECKPOINT).is_file():
            checkpoint = read_checkpoint(self.out, tensors=True)
            position = checkpoint.position
            if position.epochs_done != epoch.number - 1 or position.step - position.batch != epoch.first_step:
                return None
            self.target.load_state(checkpoint.weights(graph))
            self.target.load_optimizer_state(checkpoint.optimizer(graph))
            return position.batch
        if epoch.first_step != 0:
            return None
        self.target.load_state(init_weights(graph, self.seed))  # as the run started; fresh optimizers, step 0
        return 0

    def _probe(self, batch: dict[str, np.ndarray], phase: int) -> str | None:
        """What is not finite in phase ``phase`` of the next step on ``batch`` (a layer's output, the loss, or a
        layer's gradient); None when all is finite."""
        loss, grads = self.target.loss_and_grads(batch, phase)
        gradient = first_nonfinite(grads, last=True)
        if math.isfinite(loss) and gradient is None:
            return None
        phases = self.target.phases
        return self._explain(batch, loss, gradient) + (f" in the {phases[phase][0]} step" if len(phases) > 1 else "")

    def _explain(self, batch: dict[str, np.ndarray], loss: float, gradient: tuple[str, str] | None) -> str:
        """A batch column that is not finite (the data's fault); else the first node (graph order) whose
        training-mode output is not; else, for a loss that is not, the largest output it was computed from; else
        the gradient."""
        column = first_nonfinite(batch)
        if column:
            return f"the batch's column '{column[0]}' holds {column[1]} (in the data)"
        outputs = self._outputs(batch)
        for node in self.target.graph.nodes:
            for value in node.value_names:
                if value in outputs and not np.isfinite(outputs[value]).all():
                    return f"layer '{node.name}' ({node.op}) output is {_kind(outputs[value])}"
        if math.isfinite(loss):
            return f"the gradient of {layer_of(gradient[0])} is {gradient[1]}"
        if not outputs:
            return f"the loss is {_kind(loss)}"
        largest = max(outputs, key=lambda value: _max_abs(outputs[value]))
        return f"the loss is {_kind(loss)} though every output is finite (layer '{largest}' reaches " \
               f"{_max_abs(outputs[largest]):.1e})"

    def _outputs(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every node's training-mode output on the batch's model inputs, by value name ({} where the batch lacks
        an input the whole graph reads)."""
        names = [name for name, _ in self.target.graph.inputs]
        if not all(name in batch for name in names):
            return {}
        x = batch[names[0]] if len(names) == 1 else tuple(batch[n] for n in names)
        return self.target.forward(x, capture=True, train=True)[1]


def first_nonfinite_sum(sums: dict) -> tuple[str, str] | None:
    """(name, 'nan' | 'inf') of the first metric sum that is not finite (floats or a target's scalars)."""
    for name, value in sums.items():
        value = float(value)
        if not math.isfinite(value):
            return name, _kind(value)
    return None


def first_nonfinite(arrays: dict[str, np.ndarray], last: bool = False) -> tuple[str, str] | None:
    """(key, 'nan' | 'inf' | '-inf') of the first float array (the last with ``last``) holding a value that is
    not finite."""
    for key in reversed(arrays) if last else arrays:
        values = np.asarray(arrays[key])
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            return key, _kind(values)
    return None


def layer_of(key: str) -> str:
    """A weight's or optimizer entry's name as the line shows it: its layer, then the key itself
    (``optimizer.fc1.weight.exp_avg`` is layer fc1's)."""
    layer = key.removeprefix(PREFIX).rsplit(".", 2 if key.startswith(PREFIX) else 1)[0]
    return f"layer '{layer}' ({key})"


def _max_abs(values: np.ndarray) -> float:
    return float(np.max(np.abs(values), initial=0.0)) if np.asarray(values).dtype.kind in "fc" else 0.0


def _kind(values) -> str:
    """'nan' where any value is NaN, else 'inf' or '-inf'."""
    values = np.asarray(values)
    if np.isnan(values).any():
        return "nan"
    return "inf" if np.isposinf(values).any() else "-inf"


def _gather(split, index: np.ndarray) -> dict[str, np.ndarray]:
    """One host batch of a training split (in memory, or a ``Stream``), as the target gathers it."""
    return split.gather(index) if isinstance(split, Stream) else {k: np.asarray(v)[index] for k, v in split.items()}


def _last_good(out: Path, checkpoint: Checkpoint | None) -> str:
    if checkpoint is None:
        return f"it diverged before the first checkpoint of {out}"
    return f"the last good checkpoint is {out / CHECKPOINT} (step {checkpoint.position.step})"
