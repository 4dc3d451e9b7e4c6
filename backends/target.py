"""The contract between the one training driver and each backend.

A target owns a model and its optimizer state in its framework's native form. The
driver (``backends/loop.py``) and the parity checker (``backends/parity.py``) only
talk to it in numpy and canonical state dicts, so both targets run the same loop on
the same batches.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np

from dsl import Graph
from dsl.objectives import Objective
from dsl.passes import optimize, passes_for
from dsl.schema import TrainSpec

from .weights import StateDict

TARGETS = ("torch", "jax")


class Target(Protocol):
    """A batch is a dict of named arrays (``dsl/objectives.py``: model inputs by input name, targets
    by output name, drawn columns); data is such a dict for a whole split, put where the steps read
    it; index batches select its rows. Steps return dicts of metric sums (``Objective.metric_names``)
    and the counts some are means over (``Objective.counts``); ``metrics.epoch_metrics`` divides them.
    """

    name: str
    device_name: str  # where it runs, as summary.json records it: 'cpu', 'cuda:0 (NVIDIA H100 ...)'

    def load_state(self, state: StateDict) -> None:
        """Sets the weights from canonical arrays and resets the optimizers."""

    def export_state(self) -> StateDict:
        """The weights as canonical arrays."""

    def export_optimizer_state(self) -> dict[str, np.ndarray]:
        """The optimizers' state in canonical form (``optimizer_state.py``): torch's entries by weight name."""

    def load_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        """Sets the optimizer state (and the step count) from canonical arrays; call after ``load_state``."""

    def put(self, columns: dict[str, np.ndarray]) -> Any:
        """Moves named columns (a split, or drawn ones) to where the steps read them (device memory, tensors)."""

    def compile(self, train_data: Any, test_data: Any, batch_sizes: list[int], eval_batch_size: int) -> float:
        """Prepares the steps for these batch sizes; returns seconds spent compiling."""

    def train_steps(self, data: Any, batches: list[np.ndarray]) -> dict[str, Any]:
        """Every phase of the objective per index batch; returns metric sums without a host sync."""

    def hyperparameters(self, steps: range) -> dict[str, dict[str, np.ndarray]]:
        """By trained model ('' for the one), the learning rate each of the optimizer steps ``steps`` (0-based,
        as counted since the run began) uses, under ``lr``, and under ``momentum`` the momentum one_cycle cycles
        (SGD's, Adam's beta1) where it does; read from what the target's step reads (a scheduled model's table,
        ``schedules``), so ``dslc check`` compares the two targets' sequences."""

    def evaluate(self, data: Any, index: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        """Metric sums over padded index batches, ignoring masked rows."""

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Model outputs in evaluation mode; the driver's split metrics (auc) score the test split with it."""

    def forward(self, x: np.ndarray, capture: bool = False, train: bool = False
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Outputs in evaluation (or training) mode and, with ``capture``, every node's output (channels-first).

        A probe: buffers a training-mode forward updates (BatchNorm's statistics) are left as they were.
        """

    def loss_and_grads(self, batch: dict[str, np.ndarray], phase: int = 0, train: bool = True
                       ) -> tuple[float, StateDict]:
        """Mean loss of one phase of the objective on one batch, and its gradient for every weight that
        phase updates (canonical names and layouts); a probe too."""


def make_target(name: str, graph: Graph, train: TrainSpec | None, *, seed: int = 0, dtype: str = "float32",
                disabled_passes: tuple[str, ...] = (), passes: list[str] | None = None,
                objective: Objective | None = None, **options) -> Target:
    """Builds the named target on the graph optimized by its passes; its framework is imported only now.

    ``objective`` (``resolve_objective``) is what it trains and evaluates; None only
    runs the model. ``disabled_passes``: pass names to skip, or ``("all",)``
    (``--no-optimize``); ``passes`` replaces the target's own list. A spec with a
    schedule trains only with ``schedules=`` (``backends/schedules.schedule_tables``).
    """
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
    graph = optimize(graph, passes_for(name, disabled_passes) if passes is None else passes)
    module = importlib.import_module(f"backends.{name}.target")
    return module.TARGET(graph, train, seed=seed, dtype=dtype, objective=objective, **options)


def check_device(name: str, device: str) -> None:
    """Refuses ``device`` (``cpu|cuda|auto``) where the target's framework lacks it: one ``UsageError`` line,
    raised before any data is read or anything compiled."""
    if device != "auto":
        importlib.import_module(f"backends.{name}.device").resolve_device(device)
