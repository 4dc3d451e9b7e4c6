"""Building one-layer graphs from the op catalog's examples, for catalog-driven tests."""

from __future__ import annotations

import numpy as np

import dsl
from dsl.ops import Example
from dsl.schema import Spec


def single_op_graph(op: str, example: Example, dtype: str = "float32") -> dsl.Graph:
    layer = {op: dict(example.params)} if example.params else op
    input_dtype = example.input_dtype or dtype  # integer ids keep their dtype; float ops take the test's
    spec = Spec.model_validate({"name": f"{op}_example", "input": {"shape": list(example.input), "dtype": input_dtype},
                                "model": [layer]})
    return dsl.build_graph(spec)


def example_cases():
    """(id, op, example) for every example of every op, for pytest.mark.parametrize."""
    return [(f"{name}-{i}", name, ex) for name, op in dsl.OPS.items() for i, ex in enumerate(op.examples)]


def example_input(example: Example, batch: int, dtype: str, rng) -> np.ndarray:
    """A batch for the example: standard normal floats, or integer ids in ``range(example.input_high)``."""
    if example.input_dtype:
        return rng.integers(0, example.input_high, (batch, *example.input)).astype(example.input_dtype)
    return rng.standard_normal((batch, *example.input)).astype(dtype)
