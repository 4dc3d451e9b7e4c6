"""The bench's hand-written references train exactly as dslc's targets do.

In float64 (so that rounding cannot hide a difference, nor grow into one), from the
same canonical weights over the same index batches, each step's loss of torch-ref,
flax-ref and both dslc targets agree (to 1e-6 relative: torch-ref sums its losses in a
float32 tensor; the others agree to ~1e-12), with each model's spec optimizer
(Adam for mlp, cnn and the LSTM; SGD with momentum and torch's coupled weight decay
for ResNet-20; AdamW for BERT; Adam and binary cross-entropy for DeepFM). BERT is
also checked against transformers' own ``BertForSequenceClassification`` (hf-torch; its float64 losses equal the
hand-written torch model's exactly). BERT's dropout is turned off for the
comparison (each framework draws its own masks): the references are built with
``dropout=0.0`` and dslc's graph is ``backends.parity.deterministic``'s, the one
``dslc check`` compares; the bench itself trains with the spec's dropout. In float32
ResNet-20's losses drift apart within a few steps at lr 0.1 (float32 against float64
of one implementation does too; see bench/README.md), so the bench's loss column
cannot show this for it.

DeepFM is also checked in float32 and evaluation mode, the precision the bench runs:
each reference's logits and loss against dslc's lowering on the same framework, from
weights whose tables are scaled up so that every term of the logit counts.
"""

import numpy as np
import pytest

from backends.parity import deterministic
from backends.target import make_target
from backends.weights import init_weights
from bench.data import model_data, run_batches
from bench.models import load, resolve
from bench.references import flax_ref, torch_ref
from dsl.objectives import resolve_objective

EXAMPLES, BATCH, STEPS = 64, 16, 3


def _no_dropout(model) -> dict:
    return {"dropout": 0.0} if model.reference in ("bert", "deepfm") else {}


def _double(t):
    """float64 for float tensors (inputs, 0/1 labels); ids and class ids keep their integer dtype."""
    return t.double() if t.is_floating_point() else t


def _torch_ref(model, state, data, batches, hf=False):
    import torch

    module, optimizer = torch_ref.build(model.reference, state, model.optimizer, hf=hf, **_no_dropout(model))
    module.double()  # in place: the optimizer keeps the same parameters
    x, y = _double(torch.from_numpy(data.x)), _double(torch.from_numpy(data.y))
    x = (x, *map(torch.from_numpy, data.extra.values())) if data.extra else x
    return [torch_ref.train_in_memory(module, optimizer, x, y, [b])[0] for b in batches]


def _flax_ref(model, state, data, batches):
    import jax.numpy as jnp

    inputs = (data.x, *data.extra.values()) if data.extra else data.x
    trainer = flax_ref.Trainer(model.reference, inputs, data.y, state, model.optimizer, batch_size=BATCH,
                               dtype=jnp.float64, **_no_dropout(model))
    return [trainer.train([b])[0] for b in batches]


def _dslc(target, model, state, data, batches):
    spec, graph = load(model)
    graph = deterministic(graph)[0]
    t = make_target(target, graph, spec.train, seed=0, dtype="float64", objective=resolve_objective(spec, graph))
    t.load_state(state)
    columns = t.put({graph.inputs[0][0]: data.x, **data.extra, graph.outputs[0][0]: data.y})
    return [float(t.train_steps(columns, [b])["loss"]) / len(b) for b in batches]


@pytest.mark.parametrize("key", ["mlp", *(pytest.param(k, marks=pytest.mark.slow) for k in ("cnn", "lstm", "bert",
                                                                                          "deepfm", "resnet20"))])
# CI: mlp; the others (cnn 9 s, lstm 12 s, deepfm 10 s, bert 17 s, resnet20) under -m slow, before a bench run
def test_references_train_as_dslc(key):
    model = resolve(key)
    state = init_weights(load(model)[1], 0)
    data = model_data(model, EXAMPLES, 0)
    steps = 2 if key in ("lstm", "bert") else STEPS  # float64 recurrences and attention are slow on the CPU
    batches = run_batches(EXAMPLES, steps, 0, 0, BATCH)
    expected = _torch_ref(model, state, data, batches)
    others = [("flax-ref", _flax_ref), ("dslc-torch", lambda *a: _dslc("torch", *a)),
              ("dslc-jax", lambda *a: _dslc("jax", *a))]
    if key == "bert":
        others.append(("hf-torch", lambda *a: _torch_ref(*a, hf=True)))
    for name, train in others:
        losses = train(model, state, data, batches)
        np.testing.assert_allclose(losses, expected, rtol=1e-6, err_msg=f"{key}: {name} against torch-ref")


def _deepfm_state() -> dict:
    """DeepFM's canonical weights with its two tables drawn at a scale where they matter: at init the first-order
    table is zeros and the embeddings' xavier std is 0.003, so a reference that dropped a term or misplaced a
    field's offset would still match dslc's logits."""
    state = init_weights(load(resolve("deepfm"))[1], 0)
    rng = np.random.default_rng(1)
    for name, std in (("field_bias.weight", 0.5), ("embeddings.weight", 0.3)):
        state[name] = rng.normal(0, std, state[name].shape).astype(np.float32)
    return state


def _torch_outputs(model, state, x, y) -> tuple[np.ndarray, float]:
    """torch-ref's logits and mean loss in evaluation mode, float32."""
    import torch

    module, _ = torch_ref.build("deepfm", state, model.optimizer)
    with torch.no_grad():
        logits = module.eval()(*map(torch.from_numpy, x))
        return logits.numpy(), float(torch_ref._loss(logits, torch.from_numpy(y)))


def _flax_outputs(model, state, x, y) -> tuple[np.ndarray, float]:
    """flax-ref's logits and mean loss in evaluation mode (``train=False``), float32."""
    import jax.numpy as jnp

    params, _ = flax_ref.params_from_torch("deepfm", state)
    logits = flax_ref.DeepFM().apply({"params": params}, *flax_ref.model_inputs(x, jnp.float32), train=False)
    return np.asarray(logits), float(flax_ref._loss(logits, jnp.asarray(y)))


@pytest.mark.parametrize("target", ["torch", pytest.param("jax", marks=pytest.mark.slow)])  # jax: 18 s
def test_deepfm_references_compute_dslc_logits(target):
    """torch-ref against dslc's torch lowering, flax-ref against its JAX one, in float32 and evaluation mode:
    logits within 1e-5 of the largest |logit| (parity's float32 output tolerance; measured: identical), the
    mean binary cross-entropy to 1e-6 relative, with dropout in the graph (evaluation mode turns it off)."""
    model = resolve("deepfm")
    spec, graph = load(model)
    state, data = _deepfm_state(), model_data(model, 256, 0)
    x = (data.x, data.extra["sparse"])
    logits, loss = {"torch": _torch_outputs, "jax": _flax_outputs}[target](model, state, x, data.y)
    dslc = make_target(target, graph, spec.train, seed=0, objective=resolve_objective(spec, graph))
    dslc.load_state(state)
    expected = np.asarray(dslc.forward(x)[0])
    assert np.abs(expected).max() > 5  # every term counts: the tables' scale reaches the logits
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    batch = {"dense": data.x, "sparse": data.extra["sparse"], "logit": data.y}
    np.testing.assert_allclose(loss, dslc.loss_and_grads(batch, train=False)[0], rtol=1e-6)
