"""The benchmarked models: their dslc spec, which hand-written references exist, and the
settings every variant trains with.

A model is named by a key (``mlp``, ``cnn``, ``resnet20``, ``bert``, ``lstm``, ``deepfm``) or by a spec path; a spec
with no hand-written references here is benchmarked on dslc's two targets only (add
its references to ``bench/references/`` and a row here to compare it).

The spec is the single source of truth for what is trained: batch size, optimizer,
input shape and class count are read from it (``resolve``), and the references build
the same optimizer from the same arguments. dslc's optimizer arguments are
torch.optim's own names (``lr``, ``momentum``, ``nesterov``, ``weight_decay``;
``betas``, ``eps``), so a torch reference passes them through as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

ALL_REFERENCES = ("torch-ref", "hf-torch", "torch-dataloader", "flax-ref", "flax-ref-host", "keras-jax", "keras-torch")
HF_MODELS = ("bert",)
"""Reference keys with a Hugging Face transformers model (the ``hf-torch`` variant)."""


@dataclass(frozen=True)
class Entry:
    """One benchmarked model as this file lists it; ``resolve`` makes it a ``ModelDef`` with what its spec says."""

    spec: str
    reference: str | None  # the key the reference modules know this model by; None: no references
    steps: int             # timed steps per run in a full benchmark
    smoke_steps: int
    examples: int = 60000  # synthetic training examples (``--examples`` overrides)
    skipped: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # variant -> why it does not run


@dataclass(frozen=True)
class Optimizer:
    """The spec's optimizer: its dslc name (``sgd``, ``adam``, ``adamw``) and arguments in torch.optim's names."""

    name: str
    params: MappingProxyType


@dataclass(frozen=True, kw_only=True)
class ModelDef(Entry):
    """An ``Entry`` with its key and what its spec says."""

    key: str
    batch_size: int                # from the spec's train section
    optimizer: Optimizer           # from the spec's train section
    shape: tuple[int, ...]         # one example, channels first (the spec's first input)
    classes: int                   # the spec's output features; 1 for one logit per example ([N], binary)
    vocab: int | None              # token models: the table size of the embedding reading the first input
    fields: tuple[int, ...] | None  # click models: the per-field vocab of the categorical input


_NO_KERAS = "no Keras ResNet-20 reference (optional; not written)"
_NO_LOADER = "the article's pipeline reads single-channel (MNIST) images"
_SEQUENCE_SKIPS = {"torch-dataloader": _NO_LOADER, "keras-jax": "no Keras sequence references (not written)",
                   "keras-torch": "no Keras sequence references (not written)"}
_RECOMMENDER_SKIPS = {"torch-dataloader": "the article's pipeline reads images, not click logs",
                      "keras-jax": "no Keras recommender references (not written)",
                      "keras-torch": "no Keras recommender references (not written)"}

MODELS = MappingProxyType({
    # 937 full batches of 64 = one MNIST epoch (60,000 examples, the last partial batch dropped).
    "mlp": Entry("specs/mnist_mlp.yaml", "mlp", steps=937, smoke_steps=10),
    # The CNN runs ~3-5k samples/s on a 2-core CPU; 200 steps is ~3-6 s per run.
    "cnn": Entry("specs/mnist_cnn.yaml", "cnn", steps=200, smoke_steps=5),
    # ~1.4 s per step of 128 on a 2-core CPU: 5 steps is ~7 s per run. 10,000 CIFAR-shaped
    # examples (123 MB as float32) are 78 batches of 128.
    "resnet20": Entry("specs/resnet20_cifar.yaml", "resnet20", steps=5, smoke_steps=1, examples=10000,
                    skipped=MappingProxyType({
                        "torch-dataloader": _NO_LOADER, "keras-jax": _NO_KERAS, "keras-torch": _NO_KERAS})),
    # BERT-tiny (Hugging Face's BertForSequenceClassification shapes), sequences of 128, batch 32, AdamW.
    # 4,096 planted_tokens-shaped examples (the spec's train_size) are 128 batches of 32.
    "bert": Entry("specs/bert_tiny_hf.yaml", "bert", steps=20, smoke_steps=2, examples=4096,
                  skipped=MappingProxyType(_SEQUENCE_SKIPS)),
    # A 2-layer LSTM(40 -> 128) over 50 frames, batch 64, Adam. 60 steps (~3 s a run): at 20 (~1 s) one
    # variant's runs spread from 763 to 1472 samples/s on the shared 2-core CPU, at 60 from 1311 to 1440.
    "lstm": Entry("specs/lstm_classifier.yaml", "lstm", steps=60, smoke_steps=2, examples=4096,
                  skipped=MappingProxyType(_SEQUENCE_SKIPS)),
    # DeepFM over 13 dense features and 26 categorical fields (224,556 ids), batch 1024, Adam. 65,536
    # planted_clicks-shaped examples are 64 batches. 25 steps (one of dslc JAX's multi-step calls): ~2 s for
    # the JAX variants (~70 ms a step) and ~5-10 s for the torch ones (~0.2-0.4 s a step) on a 2-core CPU.
    "deepfm": Entry("specs/deepfm_criteo.yaml", "deepfm", steps=25, smoke_steps=2, examples=65536,
                    skipped=MappingProxyType(_RECOMMENDER_SKIPS)),
})


def resolve(name: str) -> ModelDef:
    if name in MODELS:
        return _define(name, MODELS[name])
    for key, entry in MODELS.items():
        if Path(name).resolve() == Path(entry.spec).resolve():
            return _define(key, entry)
    if Path(name).suffix in (".yaml", ".yml") and Path(name).exists():
        none = MappingProxyType(dict.fromkeys(ALL_REFERENCES, "no hand-written reference for this model"))
        return _define(Path(name).stem, Entry(name, None, steps=200, smoke_steps=5, skipped=none))
    raise SystemExit(f"unknown model {name!r}: use {', '.join(MODELS)} or a spec path")


def _define(key: str, entry: Entry) -> ModelDef:
    spec, graph = load_spec(entry.spec)
    (_, input_type) = graph.inputs[0]
    optimizer = spec.train.optimizer
    listed = {f.name: getattr(entry, f.name) for f in fields(Entry)}
    if entry.reference not in HF_MODELS:
        listed["skipped"] = MappingProxyType({"hf-torch": "no Hugging Face model", **entry.skipped})
    return ModelDef(**listed, key=key, batch_size=spec.train.batch_size,
                    optimizer=Optimizer(optimizer.name, _reference_params(optimizer.params)),
                    shape=tuple(input_type.shape), classes=_classes(graph), vocab=_vocab(graph), fields=_fields(graph))


def _reference_params(params) -> MappingProxyType:
    """The optimizer's arguments as the hand-written references pass them to torch.optim and optax: without
    ``no_decay`` (dslc's parameter groups, which the references do not write; a bench spec that sets it is
    refused rather than compared with references that decay every weight)."""
    if getattr(params, "no_decay", None):
        raise SystemExit("bench: the hand-written references decay every weight; drop no_decay from the spec")
    return MappingProxyType(params.model_dump(exclude={"no_decay"}))


def _classes(graph) -> int:
    """The output's features: class logits [N, C], or 1 for one binary logit per example [N]."""
    shape = graph.output_type.shape
    return int(shape[0]) if shape else 1


def _vocab(graph) -> int | None:
    """The size of the embedding table reading the first input (token ids), if one does."""
    first = graph.inputs[0][0]
    tables = [n.params.num_embeddings for n in graph.nodes if n.op == "embedding" and first in n.inputs]
    return tables[0] if tables else None


def _fields(graph) -> tuple[int, ...] | None:
    """The per-field vocab of an input that declares one (a click model's categorical fields), if any."""
    declared = [t.vocab for _, t in graph.inputs if isinstance(t.vocab, tuple)]
    return declared[0] if declared else None


@lru_cache(maxsize=8)
def load_spec(path: str):
    """(spec, graph) of a dslc spec, loaded once per process."""
    import dsl

    return dsl.load(path)


def load(model: ModelDef):
    """(spec, graph) of the model's dslc spec."""
    return load_spec(model.spec)
