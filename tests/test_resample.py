"""The resampling ops match torch over a grid of sizes, in values and gradients, float32 and float64.

Each case calls the two lowerings directly (torch's module on NCHW, the JAX op on NHWC, the
layout it declares) and compares the output and the gradient of sum(output · R) for a random
cotangent R. The grid holds the sizes where the traps are: adaptive bins that overlap
(7 → 3, 5 → 2, 6 → 4) or repeat (3 → 5), nearest indices from a non-integer scale factor
(torch uses 1/scale_factor, not in/out), and negative bilinear sources clamped to 0.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import dsl
from backends.jax.ops import JAX_OPS
from backends.torch.ops import TORCH_OPS
from dsl.ops import Example
from tests.helpers import single_op_graph

# Relative to the largest torch value, outputs and gradients. Measured over this grid with two seeds: at most 4.1e-7
# in float32 (bilinear; adaptive avg 1.9e-7, nearest and max 1.2e-7: sums rounded in another order) and 5.6e-16 in
# float64.
TOLERANCE = {"float32": 1e-6, "float64": 1e-13}

# Each case compiles once (about 1 s on the shared 2-core CPU), so the grid pairs sizes rather than taking every
# product: each size below appears on both axes.
ADAPTIVE = [((7, 5), (3, 2)), ((5, 7), (2, 3)), ((6, 3), (4, 5)), ((3, 6), (5, 4)), ((8, 4), (4, 1)), ((7, 6), (3, 4))]
NEAREST = [((5, 6), {"scale_factor": 1.7}), ((7, 5), {"scale_factor": [1.3, 0.75]}), ((3, 4), {"scale_factor": 2}),
           ((6, 3), {"scale_factor": 2.5}), ((7, 5), {"scale_factor": [0.5, 1 / 3]}), ((5, 6), {"size": [3, 5]}),
           ((3, 4), {"size": [10, 7]})]
BILINEAR = [((5, 6), {"scale_factor": 1.7}), ((7, 5), {"scale_factor": [1.3, 0.75]}), ((3, 4), {"scale_factor": 2}),
            ((5, 6), {"scale_factor": [0.6, 3]}), ((6, 3), {"size": [10, 7]}), ((7, 5), {"size": [3, 5]})]
UPSAMPLE = ([(image, {**resize, "mode": "nearest"}) for image, resize in NEAREST]
            + [(image, {**resize, "mode": "bilinear", "align_corners": corners})
               for corners in (False, True) for image, resize in BILINEAR])


def both(op: str, shape: tuple[int, ...], params: dict, x: np.ndarray, cotangent_seed: int = 0):
    """((output, input gradient) from torch, the same from JAX), both NCHW, float64 for comparing."""
    node = single_op_graph(op, Example(shape, params), x.dtype.name).nodes[0]
    rng = np.random.default_rng(cotangent_seed)
    cotangent = rng.standard_normal((len(x), *node.output.shape)).astype(x.dtype)
    x_t = torch.from_numpy(x).requires_grad_()
    out_t = TORCH_OPS[op](node)(x_t)
    (out_t * torch.from_numpy(cotangent)).sum().backward()
    assert JAX_OPS[op].layout == "channels_last"
    out_j, dx_j = jax.jit(lambda v, r: jax_value_and_gradient(op, node, v, r))(x.transpose(0, 2, 3, 1),
                                                                              cotangent.transpose(0, 2, 3, 1))
    torch_pair = (out_t.detach().numpy(), x_t.grad.numpy())
    return torch_pair, (np.asarray(out_j).transpose(0, 3, 1, 2), np.asarray(dx_j).transpose(0, 3, 1, 2))


def jax_value_and_gradient(op: str, node: dsl.Node, x, cotangent):
    """The JAX op's output on NHWC ``x`` and the gradient of sum(output · cotangent), in one compiled call."""
    out, pullback = jax.vjp(lambda v: JAX_OPS[op].apply(node, v, train=False), x)
    return out, pullback(cotangent)[0]


def relative_error(value, reference) -> float:
    assert value.shape == reference.shape
    return float(np.abs(value - reference).max() / np.abs(reference).max())


def mismatches(op: str, shape: tuple[int, ...], params: dict, dtype: str) -> list[str]:
    """What differs between torch and JAX for one case ([] when nothing does), out of tolerance."""
    x = np.random.default_rng(1).standard_normal((2, *shape)).astype(dtype)
    (out_t, dx_t), (out_j, dx_j) = both(op, shape, params, x)
    errors = {"output": relative_error(out_j, out_t), "gradient": relative_error(dx_j, dx_t)}
    return [f"{op} {shape} {params}: {what} off by {e:.1e}" for what, e in errors.items() if e > TOLERANCE[dtype]]


def case_id(case) -> str:
    (h, w), params = case
    return f"{h}x{w}-" + "-".join(f"{k}={v}" for k, v in params.items())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["adaptive_avg_pool2d", "adaptive_max_pool2d"])
@pytest.mark.parametrize("image, out", ADAPTIVE, ids=[f"{h}x{w}-to-{oh}x{ow}" for (h, w), (oh, ow) in ADAPTIVE])
def test_adaptive_pools_match_torch_over_the_size_grid(image, out, op, dtype):
    assert mismatches(op, (2, *image), {"output_size": list(out)}, dtype) == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("image, params", UPSAMPLE, ids=[case_id(c) for c in UPSAMPLE])
def test_upsample_matches_torch_over_sizes_scale_factors_and_modes(image, params, dtype):
    assert mismatches("upsample", (2, *image), params, dtype) == []


def test_a_non_integer_scale_factor_reads_torchs_source_pixels_not_in_over_out():
    """5 · 1.7 = 8.5 → 8 rows; torch steps 1/1.7 = 0.588 through the input, not 5/8 = 0.625 (row 5 reads 2, not 3)."""
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    (out_t, _), (out_j, _) = both("upsample", (1, 5, 1), {"scale_factor": [1.7, 1]}, x)
    assert out_t[0, 0, :, 0].tolist() == out_j[0, 0, :, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 4]
    (out_t, _), (out_j, _) = both("upsample", (1, 5, 1), {"size": [8, 1]}, x)  # with size: in/out
    assert out_t[0, 0, :, 0].tolist() == out_j[0, 0, :, 0].tolist() == [0, 0, 1, 1, 2, 3, 3, 4]


@pytest.mark.parametrize("size", [(7, 3), (6, 4), (3, 5), (5, 1), (4, 4)])
def test_adaptive_max_sends_tied_gradients_to_torchs_element(size):
    """0/1 images tie in almost every bin; torch's gradient goes to each bin's first maximum (row-major)."""
    h, out = size
    x = np.random.default_rng(0).integers(0, 2, (2, 3, h, h + 1)).astype("float64")
    (_, dx_t), (_, dx_j) = both("adaptive_max_pool2d", (3, h, h + 1), {"output_size": out}, x)
    np.testing.assert_allclose(dx_j, dx_t, rtol=1e-12, atol=0)  # where bins overlap, sums may round apart


@pytest.mark.parametrize("padding", [1, [2, 0, 1, 3], [-1, 2, 0, -2], [-2, -1, -1, -3]])
def test_zero_pad_matches_torch_and_negative_padding_crops(padding):
    assert mismatches("zero_pad2d", (2, 5, 6), {"padding": padding}, "float64") == []


@pytest.mark.parametrize("op", ["adaptive_avg_pool2d", "adaptive_max_pool2d"])
def test_a_global_pool_is_one_reduction_with_no_gather(op):
    """Output 1x1 (a classifier's global pool) is a mean or an argmax over H·W, not a gather per bin."""
    node = single_op_graph(op, Example((16, 7, 7), {"output_size": 1})).nodes[0]
    jaxpr = jax.make_jaxpr(lambda v: JAX_OPS[op].apply(node, v, train=False))(jnp.zeros((2, 7, 7, 16), jnp.float32))
    primitives = {e.primitive.name for e in jaxpr.jaxpr.eqns}
    assert "gather" not in primitives and primitives & {"reduce_sum", "argmax"}


SPEC = """\
name: t
input: {{shape: [3, 8, 8]}}
model:
  - {layer}
"""


@pytest.mark.parametrize("layer, at, message", [
    ("upsample: {size: 4, scale_factor: 2}", "2}",
     "upsample_1 (upsample): give exactly one of size and scale_factor (as torch.nn.Upsample)"),
    ("upsample: {mode: bilinear}", "{mode",
     "upsample_1 (upsample): give exactly one of size and scale_factor (as torch.nn.Upsample)"),
    ("upsample: {scale_factor: 2, align_corners: false}", "false",
     "upsample_1 (upsample): align_corners applies only to mode: bilinear (torch raises for nearest)"),
    ("upsample: {scale_factor: 0.1}", "0.1",
     "upsample_1 (upsample): scale_factor [0.1, 0.1] turns [N, 3, 8, 8] into [0, 0]: an empty image"),
    ("zero_pad2d: {padding: [-4, -4, 0, 0]}", "[-4",
     "zero_pad2d_1 (zero_pad2d): padding [-4, -4, 0, 0] (left, right, top, bottom) crops [N, 3, 8, 8] to [8, 0]: "
     "an empty image"),
])
def test_a_wrong_resize_is_one_located_line(layer, at, message):
    """The error points at the offending value (``at``), or at the layer when no one value is to blame."""
    text = SPEC.format(layer=layer)
    with pytest.raises(dsl.SpecError) as info:
        dsl.loads(text)
    assert str(info.value) == f"<string>:4:{text.splitlines()[3].index(at) + 1}: {message}"


@pytest.mark.parametrize("layer, fragment", [
    ("adaptive_avg_pool2d: {output_size: null}", "expected a positive integer or a list of two"),
    ("adaptive_max_pool2d: {output_size: [2, 0]}", "expected a positive integer (null in a list keeps that axis)"),
    ("upsample: {scale_factor: [2, -1]}", "expected a positive number or a list of 2 of them"),
    ("zero_pad2d: {padding: [1, 2]}", "expected an integer or a list of 4 of them"),
])
def test_malformed_sizes_are_refused_by_the_schema(layer, fragment):
    with pytest.raises(dsl.SpecError) as info:
        dsl.loads(SPEC.format(layer=layer))
    assert fragment in str(info.value) and str(info.value).startswith("<string>:4:")


def test_null_keeps_an_axis_and_a_global_pool_keeps_torchs_shape():
    _, graph = dsl.loads(SPEC.format(layer="adaptive_avg_pool2d: {output_size: [null, 3]}"))
    assert graph.output_type.shape == (3, 8, 3) and graph.nodes[0].params.output_size == (8, 3)
    _, graph = dsl.loads(SPEC.format(layer="adaptive_max_pool2d: {output_size: 1}"))
    assert graph.output_type.shape == (3, 1, 1)
