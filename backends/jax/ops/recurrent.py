"""LSTM and GRU as torch computes them, over torch-layout weights held as Flax params.

Flax's cells differ from torch's: linen's LSTMCell keeps one bias per gate and its
carry is (c, h); nnx's GRUCell has no ``b_hn`` at all (docs/PARITY.md §10). So the
module here keeps torch's own entries (``weight_ih_l0``, ``bias_hh_l0_reverse``, ...)
as its params, named as in the state dict, and runs torch's formulas in torch's
order, in a ``lax.scan`` over time carrying the states, each step projecting its
own input (W_ih x_t + b_ih) as well as the hidden state. Projecting every step's
input first, as one [N·T, F] × [F, G·H] matmul (torch's CPU path does), was slower
in XLA on the CPU: forward + backward of one LSTM layer (N 64, T 50, F 40, H 128,
float32, 1 thread on a busy 2-core machine) took 69-76 ms, against 45 ms with the
projection in the step (linen's cells do it there: 39-40 ms), and the bench's LSTM
trained at 0.71x the hand-written Flax model's speed, 0.90x after (bench/README.md);
one direction on plain matmuls with Wᵀ taken once outside the scan (``_affine``;
32.3 -> 28.6 ms a layer, idle) then brought it to 1.00x. Squeezing the direction
axis alone, or transposing alone, changed nothing: XLA runs the stacked [D, N, ...]
einsum as a batched matmul, slower than a plain one. A one-direction LSTM layer has
its own backward pass (``lstm_layer``: weight gradients as three products after the
reverse scan, not accumulated inside it), and there projecting every input up front wins.
Measured and dropped (2-layer LSTM(40 -> 128), T 50, N 64): saving fewer arrays from
the forward scan (15 -> 20-23 ms a layer), one fused gate kernel through tanh(x) =
2·sigmoid(2x) − 1, scan unrolling, and a wavefront running all layers in one scan of
T + L − 1 steps (the bench at 0.75x: per-iteration overhead is under 3% of the step,
and the upper layers' input projections move into the loop).
Two directions run in one scan, over weights stacked on a leading axis, the
backward one reading time reversed: half the sequential steps of two scans, and
half the compilations.
Layers are stacked, each reading the previous one's output (directions
concatenated), with dropout between them while training.

Each layer is one jitted function. Eagerly (the op parity tests), an unjitted scan
closing over the weights was compiled anew on every call: 0.6 s each on this
2-core CPU, 6-10 s for a 2-layer bidirectional example's forward and gradients;
jitted and with both directions in one scan, 2-2.5 s CPU time per example.
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from dsl import Node
from dsl.ops.recurrent import GATES

from .base import JaxOp
from .dropout import Dropout


def _lstm_step(project_hidden):
    """torch's LSTM cell given the input's projection xw: gates = (W_hh h + b_hh) + xw, then i, f, g, o."""
    def step(carry, xw):
        h, c = carry
        i, f, g, o = jnp.split(project_hidden(h) + xw, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    return step


def _gru_step(project_hidden):
    """torch's GRU cell: the reset gate scales W_hn h + b_hn, and h' = (h - n)·z + n."""
    def step(carry, xw):
        (h,) = carry
        xr, xz, xn = jnp.split(xw, 3, axis=-1)
        hr, hz, hn = jnp.split(project_hidden(h), 3, axis=-1)
        r, z = jax.nn.sigmoid(hr + xr), jax.nn.sigmoid(hz + xz)
        n = jnp.tanh(xn + hn * r)
        h = (h - n) * z + n
        return (h,), h

    return step


STEPS = {"lstm": (_lstm_step, 2), "gru": (_gru_step, 1)}
"""Per op: its cell, and how many states it carries (LSTM h and c, GRU h)."""


def _stacked_affine(weight, bias):
    """x ↦ x Wᵀ + b per direction: x [D, N, F], weight [D, G·H, F], bias [D, G·H] or None."""
    def affine(x):
        y = jnp.einsum("dnf,dgf->dng", x, weight)
        return y if bias is None else y + bias[:, None, :]

    return affine


def _affine(weight, bias):
    """x ↦ x Wᵀ + b for one direction, with Wᵀ taken once, outside the scan: x [N, F], weight [G·H, F].

    One LSTM layer's forward + backward (N 64, T 50, F 40, H 128, float32, idle 2-core
    CPU) took 28.8 ms this way against 32.3 ms through the stacked [D, ...] einsum,
    whose batched matmuls XLA's CPU backend runs slower than plain ones.
    """
    kernel = weight.T

    def affine(x):
        y = x @ kernel
        return y if bias is None else y + bias

    return affine


def _with_input(step, project_input):
    """The cell ``step`` given x_t instead of its projection x_t W_ihᵀ + b_ih."""
    def with_input(carry, x):
        return step(carry, project_input(x))

    return with_input


def _flip_backward(a, directions: int):
    """Reverses time (axis 1) for the backward direction (index 1 of axis 0), so one scan runs both."""
    return a if directions == 1 else jnp.stack([a[0], jnp.flip(a[1], axis=0)])


@functools.partial(jax.jit, static_argnames=("cell",))
def _layer(cell: str, x, weights: dict):
    """One layer: (output [N, T, D·H], final states, each [D, N, H]).

    ``weights`` hold each entry stacked over the directions ([D, ...]). Two directions
    run in one ``lax.scan``, the backward one reading time reversed and its outputs
    reversed back; one direction runs on plain [N, ...] arrays (``_affine``).
    """
    if weights["weight_hh"].shape[0] == 1:
        return _one_direction(cell, x, {k: w[0] for k, w in weights.items()})
    make_step, states = STEPS[cell]
    w_hh = weights["weight_hh"]
    directions, _, hidden = w_hh.shape
    step = _with_input(make_step(_stacked_affine(w_hh, weights.get("bias_hh"))),
                       _stacked_affine(weights["weight_ih"], weights.get("bias_ih")))
    xs = jnp.broadcast_to(jnp.swapaxes(x, 0, 1), (directions, x.shape[1], x.shape[0], x.shape[2]))
    xs = jnp.swapaxes(_flip_backward(xs, directions), 0, 1)  # [T, D, N, F]
    zeros = jnp.zeros((directions, x.shape[0], hidden), x.dtype)
    final, ys = jax.lax.scan(step, (zeros,) * states, xs)
    ys = _flip_backward(jnp.swapaxes(ys, 0, 1), directions)  # [D, T, N, H]
    return jnp.transpose(ys, (2, 1, 0, 3)).reshape(x.shape[0], x.shape[1], directions * hidden), final


def _one_direction(cell: str, x, weights: dict):
    if cell == "lstm":
        no_bias = jnp.zeros(weights["weight_hh"].shape[0], x.dtype)
        bias = sum((weights[k] for k in ("bias_ih", "bias_hh") if k in weights), no_bias)
        ys, h, c = lstm_layer(x, weights["weight_ih"], weights["weight_hh"], bias)
        return ys, (h[None], c[None])
    make_step, states = STEPS[cell]
    hidden = weights["weight_hh"].shape[1]
    step = _with_input(make_step(_affine(weights["weight_hh"], weights.get("bias_hh"))),
                       _affine(weights["weight_ih"], weights.get("bias_ih")))
    zeros = jnp.zeros((x.shape[0], hidden), x.dtype)
    final, ys = jax.lax.scan(step, (zeros,) * states, jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(ys, 0, 1), tuple(state[None] for state in final)


@jax.custom_vjp
def lstm_layer(x, w_ih, w_hh, bias):
    """One direction of torch's LSTM, batch first: (output [N, T, H], h_n [N, H], c_n [N, H]).

    ``bias`` is b_ih + b_hh (their gradients are equal). Written with its own backward
    pass (``_lstm_backward``), as cuDNN and oneDNN write theirs: the reverse scan carries
    only (dh, dc) and keeps each step's gate gradients; the weight and input gradients
    are then three matrix products over all T·N rows at once. Autodiff of the scan
    instead accumulates W_ih's and W_hh's gradients inside the loop, two small
    products per step. One layer's forward + backward (N 64, T 50, H 128, float32,
    2-core CPU): 28.5 -> 27.1 ms at 40 inputs, 35.4 -> 31.4 ms at 128.
    """
    return _lstm_forward(x, w_ih, w_hh, bias)[0]


def _lstm_gates(pre, c):
    """torch's gate order i, f, g, o: the activated gates, the new cell state and its tanh."""
    i, f, g, o = jnp.split(pre, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = f * c + i * g
    return (i, f, g, o), c, jnp.tanh(c)


def _lstm_forward(x, w_ih, w_hh, bias):
    """The layer, projecting every step's input at once, and what the backward pass reads (time first)."""
    n, t, _ = x.shape
    xw = (x.swapaxes(0, 1).reshape(t * n, -1) @ w_ih.T + bias).reshape(t, n, -1)  # x is the narrower to transpose
    kernel = w_hh.T

    def step(carry, xw_t):
        h, c = carry
        gates, c, tanh_c = _lstm_gates(h @ kernel + xw_t, c)
        h = gates[3] * tanh_c
        return (h, c), (h, c, *gates, tanh_c)

    zeros = jnp.zeros((n, w_hh.shape[1]), x.dtype)
    (h, c), saved = jax.lax.scan(step, (zeros, zeros), xw)
    return (saved[0].swapaxes(0, 1), h, c), (x, w_ih, w_hh, saved)


def _previous(a):
    """The value one step earlier along time (axis 0), zeros before the first step."""
    return jnp.concatenate([jnp.zeros_like(a[:1]), a[:-1]])


def _lstm_backward(residuals, cotangents):
    x, w_ih, w_hh, (hs, cs, i, f, g, o, tanh_c) = residuals
    d_ys, d_hn, d_cn = cotangents
    n, t, _ = x.shape

    def step(carry, saved):
        dh, dc = carry
        dy, c_prev, i, f, g, o, tanh_c = saved
        dh = dh + dy
        dc = dc + dh * o * (1 - tanh_c * tanh_c)
        d_gates = jnp.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                                   dh * tanh_c * o * (1 - o)], axis=-1)
        return (d_gates @ w_hh, dc * f), d_gates

    _, d_gates = jax.lax.scan(step, (d_hn, d_cn), (d_ys.swapaxes(0, 1), _previous(cs), i, f, g, o, tanh_c),
                              reverse=True)
    d_gates = d_gates.reshape(t * n, -1)  # time-major rows
    d_w_hh = d_gates.T @ _previous(hs).reshape(t * n, -1)
    d_w_ih = d_gates.T @ x.swapaxes(0, 1).reshape(t * n, -1)
    d_x = (d_gates @ w_ih).reshape(t, n, -1).swapaxes(0, 1)
    return d_x, d_w_ih, d_w_hh, d_gates.sum(0)


lstm_layer.defvjp(_lstm_forward, _lstm_backward)


class Recurrent(nn.Module):
    """torch.nn.LSTM/GRU (batch first): returns (output, h_n[, c_n]), the states [N, D·num_layers, H]."""

    cell: str
    hidden_size: int
    num_layers: int
    bias: bool
    bidirectional: bool
    dropout: float

    @nn.compact
    def __call__(self, x, *, train: bool):
        finals = []
        for layer in range(self.num_layers):
            if layer and self.dropout:
                x = Dropout(self.dropout, deterministic=not train)(x)
            x, final = _layer(self.cell, x, self._weights(layer, x.shape[-1]))
            finals.append(final)
        return (x, *(jnp.swapaxes(jnp.concatenate(states), 0, 1) for states in zip(*finals)))

    def _weights(self, layer: int, inputs: int) -> dict:
        """One layer's params under torch's names, initialized U(±1/√H) as torch does, stacked over directions."""
        rows = GATES[self.cell] * self.hidden_size
        shapes = {"weight_ih": (rows, inputs), "weight_hh": (rows, self.hidden_size)}
        if self.bias:
            shapes |= {"bias_ih": (rows,), "bias_hh": (rows,)}
        init = _torch_uniform(self.hidden_size)
        suffixes = [f"_l{layer}", f"_l{layer}_reverse"][: 1 + self.bidirectional]
        return {kind: jnp.stack([self.param(kind + s, init, shape) for s in suffixes])
                for kind, shape in shapes.items()}


def _torch_uniform(hidden_size: int):
    bound = 1 / np.sqrt(hidden_size)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _recurrent(node: Node, x, *, train: bool):
    p = node.params
    return Recurrent(node.op, p.hidden_size, p.num_layers, p.bias, p.bidirectional, p.dropout,
                     name=node.local_name)(x, train=train)


_KEY = re.compile(r"(weight|bias)_(ih|hh)_l(\d+)(_reverse)?")
_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _torch_order(key: str) -> tuple:
    """Sort key of torch's state_dict order: layer, then direction, then w_ih, w_hh, b_ih, b_hh."""
    kind, side, layer, reverse = _KEY.fullmatch(key).groups()
    return int(layer), bool(reverse), _KINDS.index(f"{kind}_{side}")


def _from_flax(variables, received):
    """The params are torch's entries already; JAX's pytrees sort dict keys, so torch's order is restored."""
    params = variables["params"]
    return {k: params[k] for k in sorted(params, key=_torch_order)}


LOWERINGS = {
    name: JaxOp(_recurrent, "channels_first", lambda w, received: {"params": dict(w)}, _from_flax)
    for name in ("lstm", "gru")
}
