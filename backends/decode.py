"""Greedy decoding, written once over a target's forward (``dsl/decoding.py`` says what each mode does).

``run(columns) -> outputs`` is any evaluation-mode forward taking named input
arrays and giving named output arrays, so the same loop decodes on both targets and
the two token sequences can be compared one for one. The autoregressive loop runs
the whole model once per generated token at the input's fixed length (the shapes
never change, so a jit-compiled forward compiles once); that is O(T²) work against a
cached decoder's O(T), and plain to verify.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dsl.decoding import CtcDecodeSpec, GreedySpec

Run = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def greedy(run: Run, columns: dict[str, np.ndarray], spec: GreedySpec, output: str, length: int) -> np.ndarray:
    """The generated tokens [N, L] (without ``bos``), ``pad`` after each row's ``eos``.

    ``columns`` holds every other model input; ``length`` is the ``tokens`` input's.
    """
    n = len(next(iter(columns.values())))
    steps = min(spec.max_length or length - 1, length - 1)
    tokens = first_tokens(spec, n, length)
    done = np.zeros(n, bool)
    for t in range(steps):
        scores = run(step_inputs(columns, spec, tokens, t))[output]
        chosen = np.where(done, spec.pad, scores[:, t].argmax(-1))
        tokens[:, t + 1] = chosen
        done |= chosen == spec.eos
        if done.all():
            break
    return tokens[:, 1:steps + 1]


def first_tokens(spec: GreedySpec, n: int, length: int) -> np.ndarray:
    """The ``tokens`` input as decoding starts: ``bos``, then ``pad``."""
    tokens = np.full((n, length), spec.pad, np.int64)
    tokens[:, 0] = spec.bos
    return tokens


def step_inputs(columns: dict, spec: GreedySpec, tokens: np.ndarray, t: int) -> dict[str, np.ndarray]:
    """The model's inputs at step t: ``columns``, the tokens so far, and their mask (1 up to t) if it reads one."""
    inputs = dict(columns, **{spec.tokens: tokens.copy()})
    if spec.mask is not None:
        inputs[spec.mask] = np.broadcast_to(np.arange(tokens.shape[1]) <= t, tokens.shape).astype(np.int64)
    return inputs


def ctc_best_path(scores: np.ndarray, spec: CtcDecodeSpec, lengths: np.ndarray | None = None) -> list[list[int]]:
    """Per frame argmax, repeats merged, blanks dropped; frames past ``lengths`` ignored."""
    best = scores.argmax(-1)
    lengths = np.full(len(best), best.shape[1]) if lengths is None else np.asarray(lengths)
    sequences = []
    for row, valid in zip(best, lengths):
        row = row[:valid]
        keep = np.ones(len(row), bool)
        keep[1:] = row[1:] != row[:-1]
        sequences.append([int(c) for c in row[keep & (row != spec.blank)]])
    return sequences


def until_eos(tokens: np.ndarray, eos: int) -> list[list[int]]:
    """Each row's tokens before its first ``eos`` (the whole row when it has none)."""
    rows = []
    for row in tokens:
        stop = np.flatnonzero(row == eos)
        rows.append([int(t) for t in row[:stop[0] if len(stop) else len(row)]])
    return rows


def references(column: np.ndarray, drop: tuple[int, ...]) -> list[list[int]]:
    """True sequences from a padded target column: the ids other than ``drop`` (padding, eos, -100), in order."""
    return [[int(t) for t in row if int(t) not in drop] for row in column]
