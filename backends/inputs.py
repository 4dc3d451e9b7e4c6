"""Model inputs and outputs as the targets pass them: one array, or a tuple of arrays (several inputs).

A one-input model keeps taking a bare array everywhere (datasets, ``predict``), so
only models with several inputs see tuples, in the spec's declared order. Outputs
are one array, or a dict by output name. Framework-free: both targets use these.
"""

from __future__ import annotations


def as_tuple(x) -> tuple:
    """The positional arguments for a model: ``(x,)`` for one input."""
    return x if isinstance(x, tuple) else (x,)


def map_inputs(fn, x):
    """``fn`` applied to each input array, keeping the one-array or tuple form."""
    return tuple(fn(a) for a in x) if isinstance(x, tuple) else fn(x)


def map_outputs(fn, out):
    """``fn`` applied to each output, keeping the one-array or dict form."""
    return {k: fn(v) for k, v in out.items()} if isinstance(out, dict) else fn(out)


def join_outputs(chunks: list):
    """Outputs of consecutive batches joined along the batch axis: arrays, or dicts of arrays by output name."""
    import numpy as np

    if isinstance(chunks[0], dict):
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return np.concatenate(chunks)
