"""Canonical optimizer state: torch's ``optimizer.state_dict()`` entries, keyed by weight name.

torch keys its optimizer state by integer ids (the parameter's position in the
param groups), which silently breaks when a model's parameter order changes; optax
keeps whole trees (``ScaleByAdamState(count, mu, nu)``, ``TraceState(trace)``). The
canonical form names each entry after the weight it belongs to, in the weights'
canonical (torch) layout, so it moves between targets like the weights do:

- ``optimizer.<weight>.<entry>``: torch's per-parameter entries. sgd with momentum:
  ``momentum_buffer`` (absent before the first step, as in torch, where a missing
  buffer and a zero one give the same first step: buf = g); adam and adamw: ``step``
  (float32, 0-d, as torch stores it), ``exp_avg``, ``exp_avg_sq``; sparse_adam: the
  same three for every weight, SparseAdam's on the sparse tables (whose ``step``
  torch keeps as a Python int, stored here as float32 like Adam's).
- ``optimizer.step``: the optimizer steps taken (int64, 0-d); sgd has no per-weight
  step, and dropout's per-step randomness is derived from it.

Only trainable weights have optimizer state; buffers (``Weight.trainable=False``)
have none. This module imports neither torch nor JAX.
"""

from __future__ import annotations

import numpy as np

from dsl import Graph, WeightsError

PREFIX = "optimizer."
STEP = "optimizer.step"

ENTRIES = {"sgd": ("momentum_buffer",), "adam": ("step", "exp_avg", "exp_avg_sq"),
           "adamw": ("step", "exp_avg", "exp_avg_sq"), "sparse_adam": ("step", "exp_avg", "exp_avg_sq")}
"""Optimizer name -> torch's per-parameter state entries, in torch's order."""

OptimizerState = dict[str, np.ndarray]


def entry_key(weight: str, entry: str) -> str:
    return f"{PREFIX}{weight}.{entry}"


def trainable_names(graph: Graph) -> list[str]:
    """The weights an optimizer updates, in state-dict order (buffers excluded)."""
    return [key for key, weight in graph.state_dict_spec().items() if weight.trainable]


def sparse_names(graph: Graph) -> set[str]:
    """The weights with sparse gradients (``Weight.sparse``: tables of embeddings with ``sparse: true``)."""
    return {key for key, weight in graph.state_dict_spec().items() if weight.sparse}


def step_array(step: int) -> np.ndarray:
    return np.array(step, np.int64)


def entries_of(state: OptimizerState, weight: str, optimizer: str) -> dict[str, np.ndarray]:
    """The entries ``state`` holds for one weight ({} before the first step)."""
    return {entry: state[entry_key(weight, entry)] for entry in ENTRIES[optimizer]
            if entry_key(weight, entry) in state}


def check_optimizer_state(graph: Graph, optimizer: str, state: OptimizerState, origin: str = "optimizer state") -> None:
    """Raises ``WeightsError`` unless ``state`` is canonical state of this optimizer for this model.

    Checked: the global step is there, every name belongs to a trainable weight and an
    entry this optimizer has, all weights or none have state, each with all of its
    entries, and shapes match the weights (a 0-d ``step``).
    """
    spec = graph.state_dict_spec()
    if STEP not in state:
        raise WeightsError(f"{origin}: no {STEP}")
    allowed = {entry_key(w, e): w for w in trainable_names(graph) for e in ENTRIES[optimizer]}
    unexpected = [k for k in state if k != STEP and k not in allowed]
    if unexpected:
        raise WeightsError(f"{origin}: unexpected {', '.join(unexpected[:5])} for {optimizer} on model "
                           f"'{graph.name}'")
    counts = {len(entries_of(state, w, optimizer)) for w in trainable_names(graph)}
    if len(counts) > 1:
        raise WeightsError(f"{origin}: some weights have {optimizer} state and some do not; a step updates all")
    for weight in trainable_names(graph):
        found = entries_of(state, weight, optimizer)
        if found and len(found) != len(ENTRIES[optimizer]):
            raise WeightsError(f"{origin}: {weight} has {', '.join(found)} but not all of "
                               f"{', '.join(ENTRIES[optimizer])}")
        for entry, value in found.items():
            shape = () if entry == "step" else tuple(spec[weight].shape)
            if tuple(np.shape(value)) != shape:
                raise WeightsError(f"{origin}: {entry_key(weight, entry)} has shape {list(np.shape(value))}, "
                                   f"expected {list(shape)}")


def of_model(state: OptimizerState, model: str) -> OptimizerState:
    """The entries of one model's optimizer (a spec with several models has one per model), and the step."""
    prefix = f"{PREFIX}{model}." if model else PREFIX
    return {k: v for k, v in state.items() if k == STEP or k.startswith(prefix)}
