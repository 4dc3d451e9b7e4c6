"""The one training driver: epochs, evaluation, metrics, checkpoints, progress.

It is written once for every target. A target supplies the steps (see
``target.py``); the driver decides the batches (``data.batches``, from the seed
only), so both targets see the same examples in the same order.

In a data-parallel run (``TrainOptions.world``) every process runs this driver on the
same global batches; the target takes its own share and returns global metric sums
(``target.py``), so nothing here depends on the world but who writes: rank 0 alone
makes the run folder and writes metrics, weights, checkpoints, vocabulary files and the
summary, and shows progress. The run folder is decided on rank 0 and handed to the
others through ``TrainOptions.agree`` (a broadcast the target's framework provides).

Every epoch ends with an evaluation of the held-out splits: the validation split, if
the spec has one (``dsl/monitor.py``), then the test split. The validation split's
monitored metric decides the best epoch, whose weights go to ``best.safetensors``, and
with ``train.early_stopping`` when the run stops (``early_stopping.py``); the test
split decides nothing. Every rank sees the same all-reduced metrics, so every rank
stops at the same epoch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsl import Graph, Spec
from dsl.errors import SpecSchemaError, UsageError
from dsl.monitor import watch_of
from dsl.objectives import Objective, resolve_objective

from .checkpoint import Checkpoint, Position, RunConfig, check_resumable, save_checkpoint, spec_sha256
from .data import (
    DEFAULT_DATA_DIR,
    Dataset,
    Split,
    Stream,
    draw_columns,
    epoch_batches,
    epoch_columns,
    epoch_split,
    load_dataset,
    padded_batches,
    with_columns,
)
from .data.draws import EVAL_EPOCH
from .early_stopping import EarlyStopping
from .guard import Epoch, Guard
from .metrics import epoch_metrics
from .progress import Progress
from .run_log import RunLog
from .runs import plan_run_dir, start_run_dir
from .schedules import schedule_tables
from .split_metrics import split_metrics
from .target import Target, check_device, make_target
from .weights import init_weights, save_weights, write_atomic
from .world import World

EVAL_BATCH_SIZE = 1000
BEST = "best.safetensors"
"""The best epoch's weights, beside ``weights.safetensors`` (the last epoch's), in a run with a validation split."""
CHECKPOINT_SECONDS = 30.0
"""Default time between checkpoints (``--checkpoint-every`` not given)."""


def _one_process(value):
    """One process's ``TrainOptions.agree``: the value itself."""
    return value


@dataclass
class TrainOptions:
    """Command-line overrides of the spec's ``train`` section, and where things go."""

    target: str = "jax"
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    precision: str | None = None  # --precision: overrides train.precision
    seed: int = 0
    out_dir: Path | None = None  # None: runs/<spec name>-<target>, numbered -2, -3, ... past existing runs
    overwrite: bool = False  # replace a run in an explicit out_dir instead of refusing
    data_dir: Path = DEFAULT_DATA_DIR
    dataset: str | None = None
    progress: bool | None = None  # None: a bar on a terminal, a line per epoch otherwise
    disabled_passes: tuple[str, ...] = ()  # ("all",) for --no-optimize
    target_options: dict = field(default_factory=dict)
    checkpoint_every: int | None = None  # steps between checkpoints; None: every CHECKPOINT_SECONDS of training
    spec_path: Path | None = None  # recorded in the checkpoint, with the spec's text, for --resume
    spec_text: str | None = None
    world: World = field(default_factory=World)  # this process among a data-parallel run's; rank 0 writes
    agree: Callable[[Any], Any] = field(default=_one_process, repr=False)  # rank 0's value on every rank


def resolve_train_spec(spec: Spec, options: TrainOptions):
    """The spec's train section with the command-line overrides applied."""
    if spec.train is None:
        raise SpecSchemaError("spec has no train section; add train: {loss: ..., optimizer: ...}",
                              spec.source.locate(()))
    train = spec.train
    updates = {k: v for k, v in (("epochs", options.epochs), ("batch_size", options.batch_size)) if v is not None}
    if options.precision is not None:
        updates["precision"] = options.precision
    if options.lr is not None:
        optimizer = train.optimizer
        updates["optimizer"] = type(optimizer)(optimizer.name, optimizer.params.model_copy(update={"lr": options.lr}))
    return train.model_copy(update=updates)


def train(spec: Spec, graph: Graph, options: TrainOptions, resume: Checkpoint | None = None) -> dict:
    """Trains from the seed's initial weights, or continues ``resume`` (a checkpoint read with its tensors)
    in ``options.out_dir``; writes metrics, weights, checkpoints and a summary to the run folder."""
    wall_start = time.perf_counter()
    recipe = resolve_train_spec(spec, options)
    if resume is not None:
        check_resumable(resume, options.out_dir)
    out = Path(options.out_dir) if resume else _run_dir(options, Path("runs") / f"{spec.name}-{options.target}")
    writes = options.world.writes
    objective = resolve_objective(spec, graph)
    check_device(options.target, options.target_options.get("device", "auto"))  # before the data is read
    dataset = load_dataset(spec, graph, data_dir=options.data_dir, name=options.dataset, seed=options.seed)
    plan = _Plan.of(len(dataset.train), recipe.batch_size, recipe.epochs, options.max_steps)
    run = _run_config(spec, options, plan, len(dataset.train))
    if resume is not None:
        _check_same_run(resume.run, run, out)
    schedules = schedule_tables(spec, recipe, objective.phases, plan.total_steps, plan.steps_per_epoch)
    target = make_target(options.target, graph, recipe, seed=options.seed, disabled_passes=options.disabled_passes,
                         objective=objective, schedules=schedules, **_target_options(options))
    target.load_state(init_weights(graph, options.seed))
    train_data = target.put(epoch_split(dataset, objective, options.seed, 1))
    held_out = _put_held_out(target, objective, dataset, options.seed)
    batch = recipe.batch_size
    sizes = [min(batch, len(dataset.train))] + ([len(dataset.train) % batch] if len(dataset.train) % batch else [])
    eval_size = min(EVAL_BATCH_SIZE, len(dataset.test))
    compile_seconds = target.compile(train_data, held_out[-1].data, sizes, eval_size)
    position = _restore(target, graph, resume) if resume else _start(out, writes)
    for file, data in dataset.files.items() if writes else ():  # what predict needs besides the weights: vocabulary
        write_atomic(out / file, data)
    watch = watch_of(spec, graph)
    stopping = EarlyStopping.resumed(watch, resume.monitor if resume else None) if watch else None
    log = RunLog(out, writes, resume.position if resume else None)
    guard = Guard(target, graph, objective, dataset, options.seed, out, replays=options.world.size == 1)
    checkpoints = _Checkpoints(out, run, options.spec_text, options.checkpoint_every, writes, stopping,
                               lambda at: log.running(at.step, epoch_metrics(objective, at.sums, at.seen)), guard)
    session = _Session(target, objective, train_data, held_out, dataset, eval_size, out, options.seed, batch, plan,
                       checkpoints, spec.name, wall_start - position.seconds, log, guard, writes, stopping)
    record = {}
    with log, Progress(plan.epochs, plan.steps_per_epoch, enabled=options.progress, shown=writes) as progress:
        for epoch in range(position.epochs_done + 1, plan.epochs + 1):
            record, position = session.epoch(epoch, position, progress)
            if stopping and stopping.stopped:
                break
    metrics = {k: v for k, v in record.items()
               if k.startswith(("train_", "val_", "test_")) and k != "train_samples_per_sec"}
    summary = {"spec": spec.name, "target": target.name, "out": str(out), "dataset": dataset.name, "seed": options.seed,
               "device": target.device_name, "precision": recipe.precision,
               "epochs": plan.epochs, "steps": position.step, "batch_size": batch, **metrics,
               "train_samples_per_sec": session.timing.rate, "compile_seconds": compile_seconds,
               "wall_seconds": time.perf_counter() - wall_start}
    if stopping is not None:
        summary |= stopping.summary()
    if resume is not None:
        summary["resumed_at_step"] = resume.position.step
    if options.world.size > 1:
        summary["world_size"] = options.world.size
    if writes:
        write_atomic(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def _run_dir(options: TrainOptions, default: Path) -> Path:
    """The new run's folder (``plan_run_dir``), decided on rank 0 and agreed by every rank, as is its refusal."""
    planned = None
    if options.world.writes:
        try:
            planned = plan_run_dir(options.out_dir, default, options.overwrite)
        except UsageError as err:
            planned = err
    planned = options.agree(planned)
    if isinstance(planned, UsageError):
        raise UsageError(str(planned))
    return planned


def _target_options(options: TrainOptions) -> dict:
    """The target's options and this process's ``world`` (both targets take it; one process: ``World()``)."""
    return {**options.target_options, "world": options.world}


@dataclass(frozen=True)
class _Plan:
    """How many steps a run takes: full epochs, cut short by ``--max-steps``."""

    steps_per_epoch: int
    total_steps: int
    epochs: int

    @classmethod
    def of(cls, examples: int, batch_size: int, epochs: int, max_steps: int | None) -> _Plan:
        steps_per_epoch = math.ceil(examples / batch_size)
        total = min(epochs * steps_per_epoch, max_steps or math.inf)
        return cls(steps_per_epoch, total, math.ceil(total / steps_per_epoch))


def _run_config(spec: Spec, options: TrainOptions, plan: _Plan, examples: int) -> RunConfig:
    text = options.spec_text
    return RunConfig(spec.name, str(options.spec_path) if options.spec_path else None,
                     spec_sha256(text) if text is not None else None, options.target, options.seed, options.epochs,
                     options.max_steps, options.batch_size, options.lr, options.dataset, str(options.data_dir),
                     tuple(options.disabled_passes), dict(options.target_options), options.checkpoint_every,
                     examples, plan.total_steps, options.world.size, options.precision)


def _check_same_run(saved: RunConfig, now: RunConfig, out: Path) -> None:
    """The dataset a resumed run reads must be the size it was: the batch order depends on it; and the workers
    as many (the shards, the dropout draws and the per-replica BatchNorm statistics depend on them)."""
    if saved.world_size != now.world_size:
        raise UsageError(f"--resume {out}: the run trained in {saved.world_size} worker process(es), this one has "
                         f"{now.world_size}; resume with --nproc {saved.world_size}")
    if (saved.train_examples, saved.total_steps) != (now.train_examples, now.total_steps):
        raise UsageError(f"--resume {out}: the run trained on {saved.train_examples:,} examples "
                         f"({saved.total_steps:,} steps), the dataset now has {now.train_examples:,}; "
                         f"resume with the same data (--data-dir)")


def _start(out: Path, writes: bool = True) -> Position:
    if writes:
        start_run_dir(out)
    return Position()


def _restore(target: Target, graph: Graph, checkpoint: Checkpoint) -> Position:
    """Loads the checkpoint into the target (``RunLog`` drops the metrics of epochs it did not finish)."""
    target.load_state(checkpoint.weights(graph))
    target.load_optimizer_state(checkpoint.optimizer(graph))
    return checkpoint.position


class _Checkpoints:
    """When to write the run's checkpoint, and writing it.

    ``every`` steps, on multiples of it; with ``every=None`` (the default) after
    ``CHECKPOINT_SECONDS`` of training, checked at the driver's chunks of 25 steps.
    Always at the end of an epoch. The seconds spent writing are kept out of throughput.
    Only where ``writes`` (rank 0): writing is no collective, so a time-based checkpoint
    that comes due on one rank only is fine. A state that is not finite is never written:
    ``guard`` stops the run instead.
    """

    def __init__(self, out: Path, run: RunConfig, spec_text: str | None, every: int | None, writes: bool = True,
                 stopping: EarlyStopping | None = None,
                 log_running: Callable[[Position], None] = lambda position: None, guard: Guard | None = None):
        self.out, self.run, self.spec_text, self.every, self.writes = out, run, spec_text, every, writes
        self.stopping = stopping  # its state as of the last epoch finished goes in every checkpoint
        self.log_running = log_running  # a mid-epoch position's running means, logged before it is saved
        self.guard = guard  # checks the state is finite before it is saved
        self.last = time.perf_counter()

    def steps_to_next(self, step: int) -> int:
        """Steps from ``step`` to the next step-based checkpoint (a large number when time-based)."""
        return self.every - step % self.every if self.every else 1 << 62

    def due(self, step: int) -> bool:
        if self.every:
            return step % self.every == 0
        return time.perf_counter() - self.last >= CHECKPOINT_SECONDS

    def write(self, target: Target, position: Position, state: tuple[dict, dict] | None = None) -> float:
        """Writes the checkpoint; returns the seconds it took. ``state``: the weights and optimizer state the
        caller exported and checked already (an epoch's end); else they are exported and checked here."""
        if not self.writes:
            return 0.0
        start = time.perf_counter()
        if state is None:
            state = target.export_state(), target.export_optimizer_state()
            if self.guard:
                self.guard.check_state(*state, position.step)
        weights, optimizer = state
        if position.batch:
            self.log_running(position)
        save_checkpoint(self.out, weights, optimizer, self.run, position, self.spec_text,
                        self.stopping.state() if self.stopping else None)
        self.last = time.perf_counter()
        return self.last - start


@dataclass(frozen=True)
class _HeldOut:
    """A held-out split where the evaluation step reads it: rows ``start`` on of ``data``; ``name`` prefixes its
    metrics (``val``, ``test``)."""

    name: str
    split: Split | Stream
    data: object
    start: int = 0


def _put_held_out(target: Target, objective: Objective, dataset: Dataset, seed: int) -> list[_HeldOut]:
    """The validation split (if any), then the test split, on the target, with their drawn columns (the same every
    evaluation). Held in memory, the two share one set of arrays, the test rows first, so the one evaluation step
    compiled for the test split's arrays reads both."""
    test = with_columns(dataset.test, draw_columns(objective, len(dataset.test), seed, EVAL_EPOCH))
    if dataset.val is None:
        return [_HeldOut("test", dataset.test, target.put(test))]
    val = with_columns(dataset.val, draw_columns(objective, len(dataset.val), seed, EVAL_EPOCH))
    if isinstance(test, Stream):
        return [_HeldOut("val", dataset.val, target.put(val)), _HeldOut("test", dataset.test, target.put(test))]
    both = target.put({k: np.concatenate([test[k], val[k]]) for k in test})
    return [_HeldOut("val", dataset.val, both, len(dataset.test)), _HeldOut("test", dataset.test, both)]


@dataclass
class _Session:
    """This process's share of a run: the target and its data, the run folder, the plan and the clock."""

    target: Target
    objective: Objective
    train_data: object
    held_out: list[_HeldOut]  # evaluated after every epoch, in order: the validation split (if any), the test split
    dataset: Dataset
    eval_size: int
    out: Path
    seed: int
    batch_size: int
    plan: _Plan
    checkpoints: _Checkpoints
    spec_name: str
    clock_start: float  # perf_counter time the run would have started at, had it never stopped
    log: RunLog  # each epoch's record: metrics.jsonl and TensorBoard (rank 0 only)
    guard: Guard  # stops the run where its sums or state are not finite
    writes: bool = True  # rank 0: writes metrics and weights
    stopping: EarlyStopping | None = None  # with a validation split: the best epoch, and when to stop
    timing: _Throughput = field(default_factory=lambda: _Throughput())

    def epoch(self, epoch: int, position: Position, progress: Progress) -> tuple[dict, Position]:
        """Trains the rest of ``epoch`` from ``position``, evaluates, and records it everywhere."""
        first_step = position.step - position.batch
        if epoch > 1 and (self.objective.drawn or self.dataset.augment):
            self.train_data = self.epoch_data(epoch)
        batches = epoch_batches(len(self.dataset.train), self.batch_size, self.seed, epoch)
        batches = batches[: self.plan.total_steps - first_step]
        progress.start_epoch(epoch, len(batches))
        progress.advance(position.batch, position.seen)
        position = self.steps(batches, position, progress)
        state = self.target.export_state(), self.target.export_optimizer_state()  # once for every file below
        self.guard.check_state(*state, position.step)  # before anything is evaluated or written from the state
        held_out = {k: v for held in self.held_out for k, v in _evaluate(self.target, self.objective, held,
                                                                          self.eval_size).items()}
        seen = position.seen
        train = epoch_metrics(self.objective, position.sums, seen)
        record = {"epoch": epoch, "steps": position.step, **{f"train_{k}": v for k, v in train.items()}, **held_out,
                  **_learning_rates(self.target, position.step),
                  "train_samples_per_sec": self.timing.rate, "seconds": self.seconds()}
        self.log.epoch(record)
        if self.writes:
            save_weights(self.out / "weights.safetensors", state[0], {"spec": self.spec_name, "epoch": str(epoch)})
        self.watch(epoch, record, state[0])
        position = Position(position.step, epoch, seconds=self.seconds())
        self.checkpoints.write(self.target, position, state)
        progress.epoch_done(record)
        return record, position

    def watch(self, epoch: int, record: dict, weights: dict) -> None:
        """Gives the epoch's monitored metric to early stopping; a new best's weights go to ``best.safetensors``
        (before the checkpoint that records it: a run killed between the two redoes the epoch and writes it again)."""
        if self.stopping is None:
            return
        monitor = self.stopping.watch.monitor
        value = record[monitor]
        if self.stopping.update(epoch, value) and self.writes:
            save_weights(self.out / BEST, weights,
                         {"spec": self.spec_name, "epoch": str(epoch), "monitor": monitor, "value": repr(value)})

    def epoch_data(self, epoch: int):
        """The training data for ``epoch``: fresh noise and augmentation, functions of (seed, epoch).

        Held in memory, only the columns that change are put again (the augmented input:
        one numpy pass over the split, see ``data/augment.py``); a ``Stream`` is remade,
        and augments each batch it gathers.
        """
        if isinstance(self.train_data, dict):
            return {**self.train_data, **self.target.put(epoch_columns(self.dataset, self.objective, self.seed, epoch))}
        return self.target.put(epoch_split(self.dataset, self.objective, self.seed, epoch))

    def steps(self, batches: list, position: Position, progress: Progress) -> Position:
        """Runs ``batches[position.batch:]``, the process's first step as untimed warm-up, checkpointing
        on the way; returns the position at the end, with the epoch's sums (one host sync per checkpoint)."""
        i, step = position.batch, position.step
        sums, seen = dict(position.sums), position.seen
        guard = self.guard
        guard.watch(Epoch(position.epochs_done + 1, batches, step - i, self.train_data))
        if not self.timing.warmed_up and i < len(batches):
            step_sums = {k: float(v) for k, v in self.target.train_steps(self.train_data, batches[i:i + 1]).items()}
            guard.check_sums(step_sums, step + 1)  # waited for the step already (asynchronous)
            sums = _add(sums, step_sums)
            self.timing.warmed_up = True
            seen, i, step = seen + len(batches[i]), i + 1, step + 1
            progress.advance(1, len(batches[i - 1]))
        tic, timed, paused, pending = time.perf_counter(), 0, 0.0, (None, step)
        while i < len(batches):
            chunk = batches[i:i + min(progress.chunk, self.checkpoints.steps_to_next(step))]
            chunk_sums = self.target.train_steps(self.train_data, chunk)
            guard.check_sums(*pending)  # the chunk before: done while this one was dispatched, so no pipeline stall
            pending = chunk_sums, step + len(chunk)
            sums = _add(sums, chunk_sums)
            size = sum(len(b) for b in chunk)
            seen, timed, i, step = seen + size, timed + size, i + len(chunk), step + len(chunk)
            progress.advance(len(chunk), size, lambda: timed / (time.perf_counter() - tic - paused))
            if i < len(batches) and self.checkpoints.due(step):
                sums = {k: float(v) for k, v in sums.items()}
                guard.check_sums(sums, step)
                paused += self.checkpoints.write(self.target, Position(step, position.epochs_done, i, sums,
                                                                       seen, self.seconds()))
        sums = {k: float(v) for k, v in sums.items()}  # one host sync per epoch
        guard.check_sums(sums, step)
        self.timing.add(timed, time.perf_counter() - tic - paused)
        return Position(step, position.epochs_done, i, sums, seen)

    def seconds(self) -> float:
        return time.perf_counter() - self.clock_start


def _learning_rates(target: Target, steps: int) -> dict[str, float]:
    """The lr of the epoch's last step: ``lr``, or ``lr_<model>`` per model of several."""
    rates = target.hyperparameters(range(steps - 1, steps))
    return {f"lr_{model}" if model else "lr": float(values["lr"][0]) for model, values in rates.items()}


def _add(sums: dict, more: dict) -> dict:
    """Metric sums plus more: floats, or a target's tensors (no host sync)."""
    return {**sums, **{k: sums[k] + v if k in sums else v for k, v in more.items()}}


def _evaluate(target: Target, objective: Objective, held: _HeldOut, batch_size: int) -> dict:
    """A held-out split's loss and metrics, named ``<split>_<metric>``, over batches of exactly ``batch_size`` rows
    (the shape the evaluation step was compiled for; the padding is masked)."""
    index, mask = padded_batches(len(held.split), batch_size, held.start)
    sums = target.evaluate(held.data, index, mask)
    means = epoch_metrics(objective, sums, len(held.split)) | split_metrics(target, objective, held.split,
                                                                            batch_size)
    return {f"{held.name}_{k}": v for k, v in means.items()}


def evaluate(spec: Spec, graph: Graph, target_name: str, state, *, data_dir=DEFAULT_DATA_DIR,
             dataset: str | None = None, batch_size: int = EVAL_BATCH_SIZE, dtype: str = "float32",
             device: str = "auto", split: str = "test", seed: int = 0) -> dict:
    """Test-split (or ``split="val"``: validation-split, carved for ``seed``) loss and metrics of the given
    canonical weights on a target (in ``dtype``, on ``device``)."""
    recipe = resolve_train_spec(spec, TrainOptions())  # the loss to report comes from the train section
    objective = resolve_objective(spec, graph)
    data = load_dataset(spec, graph, data_dir=data_dir, name=dataset, seed=seed)
    target = make_target(target_name, graph, recipe, objective=objective, dtype=dtype, device=device)
    target.load_state(state)
    held = next((h for h in _put_held_out(target, objective, data, seed) if h.name == split), None)
    if held is None:
        raise UsageError(f"spec {spec.name} has no {split} split; give data.validation_split (or data.validation)")
    result = _evaluate(target, objective, held, min(batch_size, len(held.split)))
    return {"target": target_name, "dataset": data.name, "examples": len(held.split), **result}


class _Throughput:
    """Samples per second over timed steps only (no warm-up, no compilation, no evaluation)."""

    def __init__(self):
        self.samples, self.seconds, self.warmed_up = 0, 0.0, False

    def add(self, samples: int, seconds: float) -> None:
        self.samples += samples
        self.seconds += seconds

    @property
    def rate(self) -> float | None:
        """None where nothing was timed (a one-step run is all warm-up): reported as n/a, never as 0."""
        return self.samples / self.seconds if self.samples and self.seconds > 0 else None
