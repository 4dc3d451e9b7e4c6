"""Building one-layer graphs from the op catalog's examples, for catalog-driven tests."""

from __future__ import annotations

import dsl
from dsl.ops import Example
from dsl.schema import Spec


def single_op_graph(op: str, example: Example, dtype: str = "float32") -> dsl.Graph:
    """A one-layer graph; a merge op's example reads inputs named ``a``, ``b``, ``c``, ..."""
    if not example.more_inputs:
        layer = {op: dict(example.params)} if example.params else op
        spec = {"name": f"{op}_example", "input": {"shape": list(example.input), "dtype": dtype}, "model": [layer]}
    else:
        names = [chr(ord("a") + i) for i in range(len(example.inputs))]
        spec = {"name": f"{op}_example", "inputs": {n: {"shape": list(s), "dtype": dtype}
                                                    for n, s in zip(names, example.inputs)},
                "model": [{op: {**example.params, "inputs": names}}]}
    return dsl.build_graph(Spec.model_validate(spec))


def example_cases():
    """(id, op, example) for every example of every op, for pytest.mark.parametrize."""
    return [(f"{name}-{i}", name, ex) for name, op in dsl.OPS.items() for i, ex in enumerate(op.examples)]
