"""The benchmarked models: their dslc spec and which hand-written references exist.

A model is named by a key (``mlp``, ``cnn``) or by a spec path; a spec with no
hand-written references here is benchmarked on dslc's two targets only (add its
references to ``bench/references/`` and a row here to compare it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelDef:
    key: str
    spec: str
    reference: str | None  # the key the reference modules know this model by; None: no references
    steps: int             # timed steps per run in a full benchmark
    smoke_steps: int


MODELS = {
    # 937 full batches of 64 = one MNIST epoch (60,000 examples, the last partial batch dropped).
    "mlp": ModelDef("mlp", "specs/mnist_mlp.yaml", "mlp", steps=937, smoke_steps=10),
    # The CNN runs ~3-5k samples/s on a 2-core CPU; 200 steps is ~3-6 s per run.
    "cnn": ModelDef("cnn", "specs/mnist_cnn.yaml", "cnn", steps=200, smoke_steps=5),
}


def resolve(name: str) -> ModelDef:
    if name in MODELS:
        return MODELS[name]
    for model in MODELS.values():
        if Path(name).resolve() == Path(model.spec).resolve():
            return model
    if Path(name).suffix in (".yaml", ".yml") and Path(name).exists():
        return ModelDef(Path(name).stem, name, None, steps=200, smoke_steps=5)
    raise SystemExit(f"unknown model {name!r}: use {', '.join(MODELS)} or a spec path")


def load(model: ModelDef):
    """(spec, graph, input shape, number of classes) of the model's dslc spec."""
    import dsl

    spec, graph = dsl.load(model.spec)
    (_, input_type), = graph.inputs
    return spec, graph, tuple(input_type.shape), int(graph.output_type.shape[0])
