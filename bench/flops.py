"""The FLOP limit: how many samples/s a model could train at if every multiply-add ran at sgemm peak.

Counted from the graph: each conv, linear, recurrent layer (its input and hidden
projections at every step) and attention (QKᵀ and PV) costs 2·MACs forward, as much again for
its weight gradient, and as much again for its input gradient unless it reads the
model's input (no gradient is needed there). Element-wise work is left out, so the
limit is optimistic.
"""

from __future__ import annotations

import math
import time

from dsl import INPUT, Graph
from dsl.ops.recurrent import GATES


def forward_flops(node, graph: Graph) -> float:
    p = node.params
    if node.op == "linear":
        return 2.0 * p.in_features * p.out_features * math.prod(node.output.shape[:-1])
    if node.op == "conv2d":
        return 2.0 * math.prod(node.output.shape) * p.in_channels // p.groups * math.prod(p.kernel_size)
    if node.op in GATES:
        return _recurrent_flops(p, GATES[node.op], steps=node.output.shape[0])
    if node.op == "scaled_dot_product_attention":
        length, features = node.output.shape[-2:]
        return 4.0 * length * length * features
    return 0.0


def _recurrent_flops(p, gates: int, steps: int) -> float:
    directions = 2 if p.bidirectional else 1
    inputs = [p.input_size] + [directions * p.hidden_size] * (p.num_layers - 1)
    return sum(2.0 * steps * directions * gates * p.hidden_size * (n + p.hidden_size) for n in inputs)


def training_flops_per_example(graph: Graph) -> float:
    total = 0.0
    for node in graph.nodes:
        flops = forward_flops(node, graph)
        total += flops * (2 if node.inputs == (INPUT,) else 3)
    return total


def sgemm_peak_gflops(size: int = 1536, repeats: int = 5) -> float:
    """Best of a few float32 matrix products in torch (all threads): this machine's practical peak."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = math.inf
    for _ in range(repeats):
        tic = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - tic)
    return 2 * size**3 / best / 1e9
