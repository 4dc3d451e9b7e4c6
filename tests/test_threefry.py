"""The fused Threefry draws (backends/jax/threefry.py) are jax.random's own draws, and dslc's JAX Dropout is
linen's nn.Dropout: the same mask from the same rng, in float32 and float64 (jax_enable_x64) alike."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from backends.jax import threefry
from backends.jax.ops.dropout import Dropout

SHAPES = [(7,), (32, 2, 16, 16), (2, 3, 4, 5, 6)]


@pytest.fixture(params=[False, True], ids=["float32", "float64"])
def x64(request):
    """Runs the test without and with jax_enable_x64 (the suite's conftest turns it on)."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", request.param)
    yield request.param
    jax.config.update("jax_enable_x64", before)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, pytest.param(12345, marks=pytest.mark.slow)])  # each case 5-7 s
def test_bits_are_jax_random_bits(shape, seed):
    key = jax.random.key(seed)
    ours = jax.jit(threefry.random_bits, static_argnums=1)(key, shape)
    assert np.array_equal(ours, jax.random.bits(key, shape, jnp.uint32))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", [0.1, pytest.param(0.9, marks=pytest.mark.slow)])
def test_bernoulli_is_jax_random_bernoulli(x64, shape, p):
    key = jax.random.fold_in(jax.random.key(3), len(shape))
    ours = jax.jit(threefry.bernoulli, static_argnums=(1, 2))(key, p, shape)
    assert np.array_equal(ours, jax.random.bernoulli(key, p, shape))
    if ours.size > 100:
        assert abs(float(ours.mean()) - p) < 0.05  # a real draw: neither all False nor all True


def test_raw_uint32_key_and_other_impl_fall_back_to_the_same_draws():
    raw = jax.random.PRNGKey(7)
    assert np.array_equal(threefry.bernoulli(raw, 0.3, (64,)), jax.random.bernoulli(raw, 0.3, (64,)))
    rbg = jax.random.key(7, impl="rbg")
    assert np.array_equal(threefry.bernoulli(rbg, 0.3, (64,)), jax.random.bernoulli(rbg, 0.3, (64,)))


class _Pair(nn.Module):
    """Two unnamed dropouts, one broadcast over axis 1: auto-named Dropout_0 and Dropout_1 in both classes."""

    cls: type

    @nn.compact
    def __call__(self, x):
        return self.cls(0.25, deterministic=False)(x) + self.cls(0.6, broadcast_dims=(1,), deterministic=False)(x * 2)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dropout_is_linen_dropout(x64, dtype):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 16, 5)), dtype if x64 else jnp.float32)
    rngs = {"dropout": jax.random.key(11)}
    ours = _Pair(Dropout).apply({}, x, rngs=rngs)
    theirs = _Pair(nn.Dropout).apply({}, x, rngs=rngs)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    assert 0.1 < float((ours == 0).mean()) < 0.2  # zero where both dropped: 0.25 · 0.6 = 0.15 expected


def test_dropout_edges_and_gradient():
    x = jnp.arange(1.0, 7.0, dtype=jnp.float32)
    rngs = {"dropout": jax.random.key(0)}
    assert np.array_equal(Dropout(0.0).apply({}, x, rngs=rngs), x)
    assert np.array_equal(Dropout(0.5, deterministic=True).apply({}, x), x)
    assert np.array_equal(Dropout(1.0).apply({}, x, rngs=rngs), np.zeros(6))
    y, grad = jax.value_and_grad(lambda v: Dropout(0.5).apply({}, v, rngs=rngs).sum())(x)
    kept = np.asarray(Dropout(0.5).apply({}, x, rngs=rngs)) != 0
    assert np.array_equal(grad, np.where(kept, 2.0, 0.0))  # the gradient is the mask over the keep probability
