"""StableHLO through ``jax.export``: the JAX target's Flax module with its weights bound, serialized.

The weights are constants of the exported function, so the file is the whole model: a
runtime calls it with the inputs alone, positionally in the spec's order. The batch axis
of every input is the one symbolic dimension ``b`` (``jax.export.symbolic_args_specs``), so
the file runs on any batch size. It is lowered for the CPU, where ``dslc export`` runs it
back (``jax.export.deserialize``) to verify it; integer inputs take JAX's default integer
width (int32 unless ``jax_enable_x64`` is set), declared int64 ids included.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from jax import export

from dsl import Graph
from dsl.errors import UsageError
from dsl.graph import Node

PLATFORMS = ("cpu",)


def write(fmt: str, target, inputs: tuple[np.ndarray, ...], names, path: Path) -> None:
    """Exports the target's model in evaluation mode, traced with ``inputs``' dtypes and a symbolic batch."""
    variables = target.variables
    apply = jax.jit(lambda *xs: target.model.apply(variables, *xs))
    specs = export.symbolic_args_specs(inputs, "b, ...")
    try:
        exported = export.export(apply, platforms=PLATFORMS)(*specs)
    except Exception as err:  # jax.export's: a shape it cannot keep symbolic, a primitive it cannot lower
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise UsageError(f"{fmt} export failed: jax.export cannot export this model ({first})") from None
    path.write_bytes(exported.serialize())


def run(fmt: str, path: Path, inputs: tuple[np.ndarray, ...]):
    """The deserialized function's outputs on ``inputs``, on the CPU: one array, or a dict by output name."""
    exported = export.deserialize(bytearray(path.read_bytes()))
    with jax.default_device(jax.devices("cpu")[0]):
        return jax.tree.map(np.asarray, exported.call(*inputs))


def unsupported(fmt: str, graph: Graph, node: Node) -> tuple[str, str] | None:
    """None: every catalog example exports to StableHLO with a symbolic batch and matches (measured)."""
    return None
