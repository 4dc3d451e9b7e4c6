"""Building one-layer graphs from the op catalog's examples, for catalog-driven tests."""

from __future__ import annotations

import numpy as np

import dsl
from dsl.objectives import resolve_objective
from dsl.ops import Example
from dsl.schema import Spec


def single_op_graph(op: str, example: Example, dtype: str = "float32") -> dsl.Graph:
    """A one-layer graph; an example with several inputs reads them named ``a``, ``b``, ``c``, ..."""
    dtypes = example.dtypes(dtype)  # integer ids and masks keep their dtype; floats take the test's
    if not example.more_inputs:
        layer = {op: dict(example.params)} if example.params else op
        spec = {"name": f"{op}_example", "model": [layer],
                "input": {"shape": list(example.input), "dtype": dtypes[0], **_vocab(example)}}
    else:
        names = [chr(ord("a") + i) for i in range(len(example.inputs))]
        spec = {"name": f"{op}_example",
                "inputs": {n: {"shape": list(s), "dtype": d, **(_vocab(example) if i == 0 else {})}
                           for i, (n, s, d) in enumerate(zip(names, example.inputs, dtypes))},
                "model": [{op: {**example.params, "inputs": names}}]}
    graph = dsl.build_graph(Spec.model_validate(spec))
    node = graph.nodes[0]
    if not node.more:
        return graph
    # Several outputs: each is flattened and all are concatenated, so one output (and its gradient) covers every
    # value in order; a lowering that swapped two would differ.
    layer = spec["model"][0]
    layer = {op: {**dict(layer[op] or {}), "name": "op"}} if isinstance(layer, dict) else {op: {"name": "op"}}
    values = ["op"] + [f"op[{k}]" for k in range(1, len(node.value_names))]
    flat = [{"flatten": {"inputs": [value], "name": f"flat{k}"}} for k, value in enumerate(values)]
    spec["model"] = [layer, *flat, {"concat": {"inputs": [f"flat{k}" for k in range(len(flat))], "dim": 1}}]
    return dsl.build_graph(Spec.model_validate(spec))


def _vocab(example: Example) -> dict:
    """The first input's ``vocab:`` as a spec declares it (a list per field), or nothing."""
    vocab = example.vocab
    return {} if vocab is None else {"vocab": list(vocab) if isinstance(vocab, tuple) else vocab}


def example_cases():
    """(id, op, example) for every example of every op, for pytest.mark.parametrize."""
    return [(f"{name}-{i}", name, ex) for name, op in dsl.OPS.items() for i, ex in enumerate(op.examples)]


def example_inputs(example: Example, batch: int, dtype: str, rng) -> tuple[np.ndarray, ...]:
    """A batch per input: standard normal floats, integer ids in ``range(example.input_high)``, or padding masks."""
    return tuple(_draw(example, i, (batch, *s), dtype, rng) for i, s in enumerate(example.inputs))


def _draw(example: Example, index: int, shape: tuple[int, ...], dtype: str, rng) -> np.ndarray:
    if index in example.masks:
        return padding_mask(rng, *shape, example.params.get("mask", "keep")).astype(example.mask_dtype)
    if example.input_dtype:
        return rng.integers(0, np.asarray(example.id_high), shape).astype(example.input_dtype)
    return rng.standard_normal(shape).astype(dtype)


def padding_mask(rng, batch: int, length: int, meaning: str = "keep") -> np.ndarray:
    """[batch, length] bool: real tokens then trailing padding, 1 to ``length`` real ones per row; True marks a real
    token for ``keep``, padding for ``ignore``.

    Row 0 has one real token and the last row none padded, so a batch holds both: a
    batch of one-token rows would make every key's gradient zero (a softmax over one
    key), where float64 rounding leaves 1e-17 to compare relatively.
    """
    lengths = rng.integers(1, length + 1, batch)
    lengths[0], lengths[-1] = 1, length
    real = np.arange(length) < lengths[:, None]
    return real if meaning == "keep" else ~real


def make_trainer(name: str, spec: Spec, graph: dsl.Graph, **kw):
    """``make_target`` with the spec's resolved objective, so the target can train and evaluate."""
    from backends.target import make_target

    return make_target(name, graph, spec.train, objective=resolve_objective(spec, graph), **kw)


def columns(graph: dsl.Graph, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """A supervised batch of a one-input, one-output model: ``x`` by input name, ``y`` by output name."""
    return {graph.inputs[0][0]: x, graph.outputs[0][0]: y}


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Each scalar tag's (step, value) pairs in a folder of event files, as TensorBoard's own reader sees them
    (a resumed run's purge applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
