"""conv_transpose2d is torch.nn.ConvTranspose2d over the whole argument grid, refusals included.

stride (1, 2, 3) × padding (0, 1, 2) × output_padding (0, 1, 2) × kernel (1, 2, 3, 4) ×
dilation (1, 2), on a 3×4 input: 216 combinations. torch is the oracle: where its
forward pass raises (output_padding not below stride or dilation; an output smaller
than 1), dslc must refuse the spec with one located line pointing at the argument;
everywhere else the JAX lowering must give torch's values and its gradients with
respect to the input and the weight, in float32 and float64 (tolerances: those of
tests/test_op_parity.py, relative to the largest torch value). The 152 compared cases
take ~3 CPU-minutes here (eager JAX, one lowering per case and dtype); the 64 refusals ~10 s.
CI compares kernel 3 at dilation 1, and at dilation 2 with stride 2 (24 cases, every stride, padding, output_padding and
dilation among them); ``pytest -m slow`` adds the other 128.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import dsl
from backends.weights import init_weights
from dsl.ops import Example
from tests.helpers import single_op_graph
from tests.test_op_parity import BATCH, TOLERANCE, relative_error, run_jax, run_torch

INPUT = (2, 3, 4)  # (C, H, W): small, and not square
OUT_CHANNELS = 3
GRID = [dict(zip(("stride", "padding", "output_padding", "kernel_size", "dilation"), values))
        for values in itertools.product((1, 2, 3), (0, 1, 2), (0, 1, 2), (1, 2, 3, 4), (1, 2))]


def _id(args: dict) -> str:
    return "s{stride}-p{padding}-op{output_padding}-k{kernel_size}-d{dilation}".format(**args)


def torch_refuses(args: dict) -> bool:
    layer = torch.nn.ConvTranspose2d(INPUT[0], OUT_CHANNELS, **args)
    try:
        layer(torch.zeros(1, *INPUT))
    except RuntimeError:
        return True
    return False


REFUSED = [a for a in GRID if torch_refuses(a)]  # 64 of 216
ACCEPTED = [a for a in GRID if a not in REFUSED]
IN_CI = [a for a in ACCEPTED if a["kernel_size"] == 3 and (a["dilation"] == 1 or a["stride"] == 2)]
CASES = [pytest.param(a, marks=() if a in IN_CI else pytest.mark.slow) for a in ACCEPTED]


def _spec(args: dict) -> str:
    inline = ", ".join(f"{key}: {value}" for key, value in args.items())
    return (f"name: t\ninput: {{shape: {list(INPUT)}}}\nmodel:\n"
            f"  - conv_transpose2d: {{out_channels: {OUT_CHANNELS}, {inline}}}\n")


@pytest.mark.parametrize("args", REFUSED, ids=_id)
def test_dslc_refuses_what_torch_refuses_at_the_argument(args):
    """One located line: the column of output_padding's value when torch's output_padding rule fails, else padding's."""
    text = _spec(args)
    blamed = "output_padding" if args["output_padding"] >= max(args["stride"], args["dilation"]) else "padding"
    line = text.splitlines()[3]
    column = line.index(f" {blamed}: ") + len(f" {blamed}: ") + 1
    with pytest.raises(dsl.SpecError) as raised:
        dsl.loads(text)
    message = str(raised.value)
    assert message.startswith(f"<string>:4:{column}: conv_transpose2d_1 (conv_transpose2d): {blamed} "), message
    assert "\n" not in message


@pytest.mark.parametrize("args", CASES, ids=_id)
def test_values_and_gradients_match_torch(args):
    example = Example(INPUT, {"out_channels": OUT_CHANNELS, **args})
    for dtype in ("float32", "float64"):
        graph = single_op_graph("conv_transpose2d", example, dtype)
        rng = np.random.default_rng(0)
        state = init_weights(graph, seed=1, dtype=dtype)
        x = rng.standard_normal((BATCH, *INPUT)).astype(dtype)
        cotangent = rng.standard_normal((BATCH, *graph.output_type.shape)).astype(dtype)
        out_t, (dx_t,), grads_t, _ = run_torch(graph, state, x, cotangent, dtype)
        out_j, (dx_j,), grads_j, _ = run_jax(graph, state, x, cotangent)
        out_tol, grad_tol = TOLERANCE[dtype]
        assert out_j.shape == out_t.shape and out_j.dtype == np.dtype(dtype)
        assert relative_error(out_j, out_t) <= out_tol, dtype
        assert relative_error(dx_j, dx_t) <= grad_tol, dtype
        assert set(grads_j) == set(grads_t) == {"conv_transpose2d_1.weight", "conv_transpose2d_1.bias"}
        for key in grads_t:
            assert relative_error(grads_j[key], grads_t[key]) <= grad_tol, (dtype, key)


def test_the_grid_covers_both_refusals_and_most_combinations_run():
    """Guards the grid itself: both of torch's rules fire, and most combinations are compared."""
    assert any(a["output_padding"] >= max(a["stride"], a["dilation"]) for a in REFUSED)
    assert any(a["output_padding"] < max(a["stride"], a["dilation"]) for a in REFUSED)  # output too small
    assert len(GRID) == 216 and len(ACCEPTED) == 152
    assert {tuple(sorted({a[k] for a in IN_CI})) for k in ("stride", "padding", "output_padding", "dilation")} == {
        (1, 2, 3), (0, 1, 2), (1, 2)} | {(0, 1, 2)}
