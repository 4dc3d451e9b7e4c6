"""The one training driver: epochs, evaluation, metrics, checkpoints, progress.

It is written once for every target. A target supplies the steps (see
``target.py``); the driver decides the batches (``data.batches``, from the seed
only), so both targets see the same examples in the same order.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from dsl import Graph, Spec
from dsl.errors import SpecSchemaError

from .data import DEFAULT_DATA_DIR, Dataset, epoch_batches, eval_batches, load_dataset
from .progress import Progress
from .runs import plan_run_dir, start_run_dir
from .target import Target, make_target
from .weights import init_weights, save_weights, write_atomic

EVAL_BATCH_SIZE = 1000


@dataclass
class TrainOptions:
    """Command-line overrides of the spec's ``train`` section, and where things go."""

    target: str = "jax"
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    out_dir: Path | None = None  # None: runs/<spec name>-<target>, numbered -2, -3, ... past existing runs
    overwrite: bool = False  # replace a run in an explicit out_dir instead of refusing
    data_dir: Path = DEFAULT_DATA_DIR
    dataset: str | None = None
    progress: bool | None = None  # None: a bar on a terminal, a line per epoch otherwise
    disabled_passes: tuple[str, ...] = ()  # ("all",) for --no-optimize
    target_options: dict = field(default_factory=dict)


def resolve_train_spec(spec: Spec, options: TrainOptions):
    """The spec's train section with the command-line overrides applied."""
    if spec.train is None:
        raise SpecSchemaError("spec has no train section; add train: {loss: ..., optimizer: ...}",
                              spec.source.locate(()))
    train = spec.train
    updates = {k: v for k, v in (("epochs", options.epochs), ("batch_size", options.batch_size)) if v is not None}
    if options.lr is not None:
        optimizer = train.optimizer
        updates["optimizer"] = type(optimizer)(optimizer.name, optimizer.params.model_copy(update={"lr": options.lr}))
    return train.model_copy(update=updates)


def train(spec: Spec, graph: Graph, options: TrainOptions) -> dict:
    """Trains from the seed's initial weights; writes metrics, weights and a summary to the run folder."""
    wall_start = time.perf_counter()
    recipe = resolve_train_spec(spec, options)
    out = plan_run_dir(options.out_dir, Path("runs") / f"{spec.name}-{options.target}", options.overwrite)
    dataset = load_dataset(spec, graph, data_dir=options.data_dir, name=options.dataset, seed=options.seed)
    target = make_target(options.target, graph, recipe, seed=options.seed, disabled_passes=options.disabled_passes,
                         **options.target_options)
    target.load_state(init_weights(graph, options.seed))
    train_data = target.put(dataset.train.x, dataset.train.y)
    test_data = target.put(dataset.test.x, dataset.test.y)
    batch = recipe.batch_size
    sizes = [min(batch, len(dataset.train))] + ([len(dataset.train) % batch] if len(dataset.train) % batch else [])
    eval_size = min(EVAL_BATCH_SIZE, len(dataset.test))
    compile_seconds = target.compile(train_data, test_data, sizes, eval_size)

    start_run_dir(out)
    (out / "metrics.jsonl").write_text("")
    steps_per_epoch = math.ceil(len(dataset.train) / batch)
    total_steps = min(recipe.epochs * steps_per_epoch, options.max_steps or math.inf)
    epochs = math.ceil(total_steps / steps_per_epoch)
    timing = _Throughput()
    step = 0
    record = {}
    with Progress(epochs, steps_per_epoch, enabled=options.progress) as progress:
        for epoch in range(1, epochs + 1):
            batches = epoch_batches(len(dataset.train), batch, options.seed, epoch)[: total_steps - step]
            progress.start_epoch(epoch, len(batches))
            loss_sum, correct, seen = _run_epoch(target, train_data, batches, timing, progress)
            step += len(batches)
            test = _evaluate(target, test_data, dataset, eval_size)
            record = {"epoch": epoch, "steps": step, "train_loss": float(loss_sum) / seen,
                      "train_accuracy": float(correct) / seen, **test,
                      "train_samples_per_sec": timing.rate, "seconds": time.perf_counter() - wall_start}
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            save_weights(out / "weights.safetensors", target.export_state(), {"spec": spec.name, "epoch": str(epoch)})
            progress.epoch_done(record)
    summary = {"spec": spec.name, "target": target.name, "out": str(out), "dataset": dataset.name, "seed": options.seed,
               "epochs": epochs, "steps": step, "batch_size": batch,
               "train_loss": record["train_loss"], "train_accuracy": record["train_accuracy"],
               "test_loss": record["test_loss"], "test_accuracy": record["test_accuracy"],
               "train_samples_per_sec": timing.rate, "compile_seconds": compile_seconds,
               "wall_seconds": time.perf_counter() - wall_start}
    write_atomic(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def _run_epoch(target: Target, data, batches, timing: _Throughput, progress: Progress):
    """Runs an epoch's steps; the run's first step is warm-up, left out of the throughput."""
    loss_sum = correct = 0.0
    seen = 0
    start = 0
    if not timing.warmed_up:
        loss_sum, correct = target.train_steps(data, batches[:1])
        float(loss_sum)  # waits for the step: asynchronous targets would otherwise not be done
        timing.warmed_up = True
        seen, start = len(batches[0]), 1
        progress.advance(1, seen)
    tic = time.perf_counter()
    timed = 0
    for i in range(start, len(batches), progress.chunk):
        chunk = batches[i:i + progress.chunk]
        chunk_loss, chunk_correct = target.train_steps(data, chunk)
        loss_sum, correct = loss_sum + chunk_loss, correct + chunk_correct
        size = sum(len(b) for b in chunk)
        seen, timed = seen + size, timed + size
        progress.advance(len(chunk), size, lambda: timed / (time.perf_counter() - tic))
    loss_sum, correct = float(loss_sum), float(correct)  # one host sync per epoch
    timing.add(timed, time.perf_counter() - tic)
    return loss_sum, correct, seen


def _evaluate(target: Target, data, dataset: Dataset, batch_size: int) -> dict:
    index, mask = eval_batches(len(dataset.test), batch_size)
    loss_sum, correct = target.evaluate(data, index, mask)
    n = len(dataset.test)
    return {"test_loss": float(loss_sum) / n, "test_accuracy": float(correct) / n}


def evaluate(spec: Spec, graph: Graph, target_name: str, state, *, data_dir=DEFAULT_DATA_DIR,
             dataset: str | None = None, batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """Test-split loss and accuracy of the given canonical weights on a target."""
    recipe = resolve_train_spec(spec, TrainOptions())  # the loss to report comes from the train section
    data = load_dataset(spec, graph, data_dir=data_dir, name=dataset)
    target = make_target(target_name, graph, recipe)
    target.load_state(state)
    result = _evaluate(target, target.put(data.test.x, data.test.y), data, min(batch_size, len(data.test)))
    return {"target": target_name, "dataset": data.name, "examples": len(data.test), **result}


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
