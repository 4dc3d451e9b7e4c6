"""Every op, in every configuration its catalog entry lists, computes the same in torch and JAX.

Both lowerings get the same canonical weights and input; outputs are compared, then
the gradients of sum(output · R) for a random cotangent R, with respect to the input
and to every parameter (converted back to canonical layout), and the buffers after
the forward pass (BatchNorm's running statistics move in training mode). Each case
runs in evaluation mode and, where the layer has buffers, in training mode too: an
op without state computes the same in both modes, and a stochastic one (dropout)
cannot be compared in training mode, since the random streams differ. Errors are
relative to the largest torch value, in float32 and float64.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import dsl
from backends.jax import FlaxModel, state_from_variables, variables_from_state
from backends.torch import build_module, export_state
from backends.weights import init_weights
from dsl.ops import FLOAT
from dsl.passes import optimize, passes_for
from tests.helpers import example_cases, example_inputs, single_op_graph

# CI runs every example in float64, the strict proof of the same function; float32 (dtype plumbing, reduced
# precision) runs under ``pytest -m slow``, and for the whole zoo in tests/test_parity_check.py.
TOLERANCE = {"float32": (1e-5, 1e-4), "float64": (1e-10, 1e-10)}  # (outputs, gradients)
BATCH = 3


def relative_error(value, reference) -> float:
    value, reference = np.asarray(value, np.float64), np.asarray(reference, np.float64)
    assert value.shape == reference.shape
    scale = np.abs(reference).max(initial=0.0)
    diff = np.abs(value - reference).max(initial=0.0)
    return diff / scale if scale else diff


def run_torch(graph, state, xs, cotangent, dtype, passes=True, train=False):
    """(output, each input's gradient (None for integer ids), weight gradients, state after the forward pass)."""
    graph = optimize(graph, passes_for("torch")) if passes else graph
    module = build_module(graph, state, dtype=dtype).train(train)
    xs_t = tuple(torch.from_numpy(x).requires_grad_(x.dtype.kind == "f") for x in _tuple(xs))
    out = module(*xs_t)
    (out * torch.from_numpy(cotangent)).sum().backward()
    grads = {k: p.grad.to_dense().numpy() for k, p in module.named_parameters()}  # sparse: true tables densified
    return out.detach().numpy(), tuple(_input_grad(x) for x in xs_t), grads, export_state(module)


def _input_grad(x: torch.Tensor) -> np.ndarray | None:
    """None for integer ids and masks; zeros for a float input the output does not depend on (position_embedding
    reads only its length), where torch leaves ``grad`` unset and JAX gives zeros."""
    if not x.requires_grad:
        return None
    return np.zeros(x.shape, x.detach().numpy().dtype) if x.grad is None else x.grad.numpy()


def run_jax(graph, state, xs, cotangent, passes=True, train=False):
    graph = optimize(graph, passes_for("jax")) if passes else graph
    model = FlaxModel(graph)
    variables = variables_from_state(graph, state)
    collections = [c for c in variables if c != "params"]
    xs = _tuple(xs)

    @jax.jit
    def forward(params, *xs):
        """Output and the collections a training-mode forward updates."""
        return model.apply({**variables, "params": params}, *xs, train=train, mutable=collections if train else False)

    out, updated = forward(variables["params"], *xs) if train else (forward(variables["params"], *xs), {})
    floats = [i for i, x in enumerate(xs) if x.dtype.kind == "f"]  # integer ids have no gradient

    def objective(params, float_xs):
        full = list(xs)
        for i, x in zip(floats, float_xs):
            full[i] = x
        return jnp.sum(_output(forward(params, *full), train) * cotangent)

    gradients = jax.jit(jax.grad(objective, argnums=(0, 1)))
    param_grads, float_grads = gradients(variables["params"], [xs[i] for i in floats])
    dxs = [None] * len(xs)
    for i, g in zip(floats, float_grads):
        dxs[i] = np.asarray(g)
    after = state_from_variables(graph, {**variables, **updated})
    return np.asarray(out), tuple(dxs), state_from_variables(graph, {"params": param_grads}), after


def _output(result, train: bool):
    return result[0] if train else result


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


def mode_cases():
    """Every lowering case in evaluation mode, and in training mode where the layer has buffers."""
    def stateful(op, example) -> bool:
        return any(not w.trainable for w in single_op_graph(op, example).state_dict_spec().values())

    return [(*case, mode) for case in lowering_cases() for mode in ("eval", "train")
            if mode == "eval" or (stateful(case[1], case[2]) and not dsl.OPS[case[1]].stochastic)]


LOWERING_CASES = mode_cases()


@pytest.mark.parametrize("dtype", [pytest.param("float32", marks=pytest.mark.slow), "float64"])
@pytest.mark.parametrize("case, op, example, passes, mode", LOWERING_CASES,
                         ids=[f"{c[0]}-{c[4]}" for c in LOWERING_CASES])
def test_op_matches_between_backends(case, op, example, passes, mode, dtype):
    graph = single_op_graph(op, example, dtype)
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    state = init_weights(graph, seed=1, dtype=dtype)
    xs = example_inputs(example, BATCH, dtype, rng)
    cotangent = rng.standard_normal((BATCH, *graph.output_type.shape)).astype(dtype)

    out_t, dxs_t, grads_t, after_t = run_torch(graph, state, xs, cotangent, dtype, passes, mode == "train")
    out_j, dxs_j, grads_j, after_j = run_jax(graph, state, xs, cotangent, passes, mode == "train")

    out_tol, grad_tol = TOLERANCE[dtype]
    assert out_j.shape == out_t.shape == (BATCH, *graph.output_type.shape)
    assert out_j.dtype == out_t.dtype == np.dtype(dtype)
    assert relative_error(out_j, out_t) <= out_tol
    for x, dx_j, dx_t in zip(xs, dxs_j, dxs_t, strict=True):
        assert (dx_j is None) == (dx_t is None) == (x.dtype.kind != "f")
        if dx_t is not None:
            assert relative_error(dx_j, dx_t) <= grad_tol
    spec = graph.state_dict_spec()
    assert set(grads_j) == set(grads_t) == {k for k, w in spec.items() if w.trainable}
    for key in grads_t:
        assert relative_error(grads_j[key], grads_t[key]) <= grad_tol, key
    assert list(after_j) == list(after_t) == list(spec)  # torch's state_dict order
    for key in (k for k, w in spec.items() if not w.trainable):
        assert after_j[key].dtype == after_t[key].dtype == np.dtype(dtype if spec[key].dtype == FLOAT else "int64")
        assert relative_error(after_j[key], after_t[key]) <= out_tol, key


MAX_POOL_CASES = [c for c in example_cases() if c[1] in ("max_pool2d", "max_pool1d")]


@pytest.mark.parametrize("case, op, example", MAX_POOL_CASES, ids=[c[0] for c in MAX_POOL_CASES])
def test_max_pool_gradient_goes_to_the_same_element_when_values_tie(case, op, example):
    """Images have flat regions; torch sends a tied window's gradient to its first maximum, and so must JAX."""
    graph = single_op_graph(op, example, "float64")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (BATCH, *example.input)).astype("float64")  # many ties
    cotangent = rng.standard_normal((BATCH, *graph.output_type.shape))
    _, (dx_t,), _, _ = run_torch(graph, {}, x, cotangent, "float64", passes=False)
    for passes in (True, False):
        _, (dx_j,), _, _ = run_jax(graph, {}, x, cotangent, passes)
        np.testing.assert_array_equal(dx_j, dx_t)
