"""The piecewise activations agree with torch exactly at their kinks and thresholds.

The op parity tests draw standard-normal inputs, which almost never land on x = ±3, 0
or 6, nor past softplus's threshold. Here the inputs sit exactly there (and one float64
step either side), and values and input gradients are compared element by element
with torch through both lowerings, in float64, where jax.nn's own definitions are off
(the last test measures by how much).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from dsl.ops import Example
from tests.helpers import single_op_graph
from tests.test_op_parity import run_jax, run_torch

RTOL = 1e-13
"""Rounding only: torch's vectorized kernels and XLA differ by at most 4.1e-16 relative (softplus, float64)."""


def around(*points: float) -> list[float]:
    """Each point and its float64 neighbours: a kink's two sides and the kink itself.

    0's neighbours are ±1e-300, not ±5e-324: XLA on CPU flushes subnormals to zero and
    torch does not (relu6(5e-324) is 0 in JAX, 5e-324 in torch), a difference of no kink.
    """
    def step(p, toward):
        return np.copysign(1e-300, toward) if p == 0 else np.nextafter(p, toward)

    return [v for p in points for v in (step(p, -np.inf), p, step(p, np.inf))]


CASES = [
    ("relu6", {}, around(0.0, 6.0) + [-1.0, 3.0, 7.0]),
    ("hardsigmoid", {}, around(-3.0, 3.0) + [-4.0, 0.0, 1.0, 4.0]),
    ("hardswish", {}, around(-3.0, 3.0) + [-4.0, 0.0, 1.0, 4.0]),
    ("elu", {}, around(0.0) + [-0.0, -30.0, -1.0, 1.0]),
    ("elu", {"alpha": 0.5}, around(0.0) + [-0.0, -1.0, 1.0]),
    ("softplus", {}, around(20.0) + [-30.0, -1.0, 0.0, 1.0, 20.5, 40.0]),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, around(2.5) + [-3.0, 0.0, 1.0, 4.0]),
    ("softplus", {"beta": 0.5, "threshold": -1.0}, around(-2.0) + [-3.0, 0.0, 1.0]),  # a negative threshold
]


@pytest.mark.parametrize("op, params, points", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_values_and_gradients_match_torch_at_kinks_and_thresholds(op, params, points):
    graph = single_op_graph(op, Example((len(points),), params), "float64")
    x = np.array([points], np.float64)
    ones = np.ones_like(x)  # sum(output) as the objective: the gradient is the derivative itself
    out_t, (dx_t,), _, _ = run_torch(graph, {}, x, ones, "float64")
    out_j, (dx_j,), _, _ = run_jax(graph, {}, x, ones)
    np.testing.assert_allclose(out_j, out_t, rtol=RTOL, atol=0)
    np.testing.assert_allclose(dx_j, dx_t, rtol=RTOL, atol=0)


def test_torch_gradients_at_the_kinks_are_the_ones_the_lowerings_copy():
    """torch 2.14.1's formulas, pinned: a change in torch shows here before it shows as a parity failure."""
    x = torch.tensor([-3.0, 0.0, 3.0, 6.0], dtype=torch.float64, requires_grad=True)
    gradients = {}
    for name, fn in [("relu6", torch.nn.functional.relu6), ("hardsigmoid", torch.nn.functional.hardsigmoid),
                     ("hardswish", torch.nn.functional.hardswish)]:
        (dx,) = torch.autograd.grad(fn(x).sum(), x)
        gradients[name] = dx.tolist()
    one_sixth_f32 = float(np.float32(1 / 6))
    assert gradients == {"relu6": [0.0, 0.0, 1.0, 0.0], "hardsigmoid": [0.0, one_sixth_f32, 0.0, 0.0],
                         "hardswish": [0.0, 0.5, 1.0, 1.0]}


def test_jax_nn_differs_from_torch_where_the_lowerings_replace_it():
    """Why hardsigmoid, elu and softplus are not jax.nn's: the differences, measured in float64 (all above RTOL)."""
    x = jnp.array([1.0, 20.5], jnp.float64)
    delu = jax.grad(lambda v: jax.nn.elu(v).sum())(jnp.array([-30.0], jnp.float64))
    assert delu[0] / np.exp(-30.0) - 1 == pytest.approx(1.664e-4, rel=1e-3)  # expm1(x) + 1 cancels
    dsig = jax.grad(lambda v: jax.nn.hard_sigmoid(v).sum())(x)
    assert float(np.float32(1 / 6)) - dsig[0] == pytest.approx(4.967e-9, rel=1e-3)  # torch's float32 1/6
    assert jax.nn.softplus(x)[1] - 20.5 == pytest.approx(1.2502e-9, rel=1e-3)  # torch returns x past threshold 20
    assert 1.0 - jax.grad(lambda v: jax.nn.softplus(v).sum())(x)[1] == pytest.approx(1.2502e-9, rel=1e-3)
