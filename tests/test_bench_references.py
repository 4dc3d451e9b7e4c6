"""The bench's hand-written references train exactly as dslc's targets do.

In float64 (so that rounding cannot hide a difference, nor grow into one), from the
same canonical weights over the same index batches, each step's loss of torch-ref,
flax-ref and both dslc targets agree (to 1e-6 relative: torch-ref sums its losses in a
float32 tensor; the others agree to ~1e-12), with each model's spec optimizer
(Adam for mlp and cnn; SGD with momentum and torch's coupled weight decay for
ResNet-20). In float32 ResNet-20's losses drift apart within a few steps at lr 0.1
(float32 against float64 of one implementation does too; see bench/README.md), so
the bench's loss column cannot show this for it.
"""

import numpy as np
import pytest

from backends.target import make_target
from backends.weights import init_weights
from bench.data import make_data, run_batches
from bench.models import load, resolve
from bench.references import flax_ref, torch_ref
from dsl.objectives import resolve_objective

EXAMPLES, BATCH, STEPS = 64, 16, 3


def _torch_ref(model, state, data, batches):
    import torch

    module, optimizer = torch_ref.build(model.reference, state, model.optimizer)
    module.double()  # in place: the optimizer keeps the same parameters
    x, y = torch.from_numpy(data.x).double(), torch.from_numpy(data.y)
    return [torch_ref.train_in_memory(module, optimizer, x, y, [b])[0] for b in batches]


def _flax_ref(model, state, data, batches):
    import jax.numpy as jnp

    trainer = flax_ref.Trainer(model.reference, data.x, data.y, state, model.optimizer, batch_size=BATCH,
                               dtype=jnp.float64)
    return [trainer.train([b])[0] for b in batches]


def _dslc(target, model, state, data, batches):
    spec, graph = load(model)
    t = make_target(target, graph, spec.train, seed=0, dtype="float64", objective=resolve_objective(spec, graph))
    t.load_state(state)
    columns = t.put({graph.inputs[0][0]: data.x, graph.outputs[0][0]: data.y})
    return [float(t.train_steps(columns, [b])["loss"]) / len(b) for b in batches]


@pytest.mark.parametrize("key", ["mlp", "cnn", pytest.param("resnet20", marks=pytest.mark.slow)])
def test_references_train_as_dslc(key):
    model = resolve(key)
    state = init_weights(load(model)[1], 0)
    data = make_data(EXAMPLES, 0, model.shape, model.classes)
    batches = run_batches(EXAMPLES, STEPS, 0, 0, BATCH)
    expected = _torch_ref(model, state, data, batches)
    for name, losses in (("flax-ref", _flax_ref(model, state, data, batches)),
                         ("dslc-torch", _dslc("torch", model, state, data, batches)),
                         ("dslc-jax", _dslc("jax", model, state, data, batches))):
        np.testing.assert_allclose(losses, expected, rtol=1e-6, err_msg=f"{key}: {name} against torch-ref")
