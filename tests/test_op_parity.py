"""Every op, in every configuration its catalog entry lists, computes the same in torch and JAX.

Both lowerings get the same canonical weights and input; outputs are compared, then
the gradients of sum(output · R) for a random cotangent R, with respect to the input
and to every weight (converted back to canonical layout). Errors are relative to the
largest torch value, in float32 and float64.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from backends.jax import FlaxModel, state_from_variables, variables_from_state
from backends.torch import build_module
from backends.weights import init_weights
from dsl.passes import optimize, passes_for
from tests.helpers import example_cases, single_op_graph

TOLERANCE = {"float32": (1e-5, 1e-4), "float64": (1e-10, 1e-10)}  # (outputs, gradients)
BATCH = 3


def relative_error(value, reference) -> float:
    value, reference = np.asarray(value, np.float64), np.asarray(reference, np.float64)
    assert value.shape == reference.shape
    scale = np.abs(reference).max(initial=0.0)
    diff = np.abs(value - reference).max(initial=0.0)
    return diff / scale if scale else diff


def run_torch(graph, state, xs, cotangent, dtype, passes=True):
    """Output, the gradient for each input (a tuple), and every weight's gradient."""
    graph = optimize(graph, passes_for("torch")) if passes else graph
    module = build_module(graph, state, dtype=dtype).eval()
    xs_t = tuple(torch.from_numpy(x).requires_grad_(True) for x in _tuple(xs))
    out = module(*xs_t)
    (out * torch.from_numpy(cotangent)).sum().backward()
    grads = {k: p.grad.numpy() for k, p in module.named_parameters()}
    return out.detach().numpy(), tuple(x.grad.numpy() for x in xs_t), grads


def run_jax(graph, state, xs, cotangent, passes=True):
    graph = optimize(graph, passes_for("jax")) if passes else graph
    model = FlaxModel(graph)
    variables = variables_from_state(graph, state)
    out = model.apply(variables, *_tuple(xs))

    def objective(params, xs):
        return jnp.sum(model.apply({**variables, "params": params}, *xs) * cotangent)

    param_grads, x_grads = jax.grad(objective, argnums=(0, 1))(variables["params"], _tuple(xs))
    return np.asarray(out), tuple(map(np.asarray, x_grads)), state_from_variables(graph, {"params": param_grads})


def _tuple(xs):
    return xs if isinstance(xs, tuple) else (xs,)


def lowering_cases():
    """Every example as shipped (with the passes), and again without them where a pass changes it."""
    cases = [(*case, True) for case in example_cases()]
    for case in example_cases():
        graph = single_op_graph(case[1], case[2])
        if any(optimize(graph, passes_for(t)) != graph for t in ("torch", "jax")):
            cases.append((case[0] + "-plain", *case[1:], False))
    return cases


LOWERING_CASES = lowering_cases()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case, op, example, passes", LOWERING_CASES, ids=[c[0] for c in LOWERING_CASES])
def test_op_matches_between_backends(case, op, example, passes, dtype):
    graph = single_op_graph(op, example, dtype)
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    state = init_weights(graph, seed=1, dtype=dtype)
    xs = tuple(rng.standard_normal((BATCH, *shape)).astype(dtype) for shape in example.inputs)
    cotangent = rng.standard_normal((BATCH, *graph.output_type.shape)).astype(dtype)

    out_t, dxs_t, grads_t = run_torch(graph, state, xs, cotangent, dtype, passes)
    out_j, dxs_j, grads_j = run_jax(graph, state, xs, cotangent, passes)

    out_tol, grad_tol = TOLERANCE[dtype]
    assert out_j.shape == out_t.shape == (BATCH, *graph.output_type.shape)
    assert out_j.dtype == out_t.dtype == np.dtype(dtype)
    assert relative_error(out_j, out_t) <= out_tol
    for dx_j, dx_t in zip(dxs_j, dxs_t, strict=True):
        assert relative_error(dx_j, dx_t) <= grad_tol
    assert set(grads_j) == set(grads_t) == set(graph.state_dict_spec())
    for key in grads_t:
        assert relative_error(grads_j[key], grads_t[key]) <= grad_tol, key


@pytest.mark.parametrize("case, op, example", [c for c in example_cases() if c[1] == "max_pool2d"],
                         ids=[c[0] for c in example_cases() if c[1] == "max_pool2d"])
def test_max_pool_gradient_goes_to_the_same_element_when_values_tie(case, op, example):
    """Images have flat regions; torch sends a tied window's gradient to its first maximum, and so must JAX."""
    graph = single_op_graph(op, example, "float64")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (BATCH, *example.input)).astype("float64")  # many ties
    cotangent = rng.standard_normal((BATCH, *graph.output_type.shape))
    _, (dx_t,), _ = run_torch(graph, {}, x, cotangent, "float64", passes=False)
    for passes in (True, False):
        _, (dx_j,), _ = run_jax(graph, {}, x, cotangent, passes)
        np.testing.assert_array_equal(dx_j, dx_t)
