"""Optimization passes: graph rewrites that make the lowered models faster, never different.

A pass is a named function ``Graph -> Graph`` that keeps everything a user can
observe: the model's output, its gradients, the weights and their names. Each target
runs the passes that pay off for it (``Pass.targets``); ``dslc train/check
--no-optimize`` turns them all off and ``--no-optimize NAME[,NAME]`` some of them,
so a slowdown or a mismatch can be bisected to one pass. Every pass is proven by the
op parity tests (each backend lowered with its passes) and by ``dslc check``, which
lowers both targets with their passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from .errors import DslcError
from .graph import Graph, Node


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Graph], Graph]
    targets: tuple[str, ...]
    doc: str


@dataclass(frozen=True)
class Hint:
    """A mark a pass leaves on a node for one backend's lowering: one name, one meaning, one target.

    ``channels_last`` once meant "flatten reads (H, W, C)" to the JAX lowering and "NHWC
    memory" to the torch one; a hint set for one backend could then be read by the
    other. ``tests/test_passes.py`` checks that every hint a lowering reads is declared
    here for that lowering's backend.
    """

    name: str
    target: str
    meaning: str


HINTS = {h.name: h for h in (
    Hint("blocks", "jax", "a max-pool whose windows tile the input: fused element-wise maxima"),
    Hint("flatten_hwc", "jax", "a flatten read only by linear layers keeps channels-last (H, W, C) feature order"),
    Hint("gemm_weight_grad", "jax", "a convolution takes its weight gradient as GEMMs over its input's taps"),
    Hint("nhwc_memory", "torch", "a convolution or pool runs on torch.channels_last memory; values stay NCHW"),
    Hint("inplace", "torch", "a relu overwrites its input, which nothing else reads (torchvision's inplace ReLU)"),
)}
"""Hint name -> Hint."""


def _mark(graph: Graph, hint: str, applies: Callable[[Node], bool]) -> Graph:
    """Adds ``hint`` to every node ``applies`` to: how the lowering-choice passes speak to a backend."""
    if hint not in HINTS:
        raise ValueError(f"hint '{hint}' is not declared in HINTS")
    return replace(graph, nodes=tuple(replace(n, hints=n.hints + (hint,)) if applies(n) else n for n in graph.nodes))


def pool_before_activation(graph: Graph) -> Graph:
    """``relu`` then ``max_pool2d`` becomes ``max_pool2d`` then ``relu``.

    Both are monotone, so the values are equal, and the gradient reaches the same
    element (a window of negatives has zero gradient either way); the ReLU then runs
    on the pooled tensor, a quarter of the values for a 2×2 pool. Only ReLU is
    moved: for leaky ReLU or saturating activations, float rounding can make
    distinct inputs tie after the activation and send the gradient elsewhere.

    torch runs the MNIST CNN 1.6x faster with it. JAX does not run it: XLA already
    fuses the ReLU into the convolution's output, and the swapped graph measured
    ~25% slower there.
    """
    nodes, outputs = list(graph.nodes), dict(graph.outputs)
    i = 0
    while i < len(nodes) - 1:
        act, pool = nodes[i], nodes[i + 1]
        consumers = [n for n in nodes if act.name in n.inputs]
        if act.op != "relu" or pool.op != "max_pool2d" or consumers != [pool] or act.name in outputs.values() \
                or pool.inputs != (act.name,):
            i += 1
            continue
        nodes[i] = replace(pool, inputs=act.inputs)
        nodes[i + 1] = replace(act, inputs=(pool.name,), output=pool.output)
        nodes[i + 2:] = [replace(n, inputs=tuple(act.name if x == pool.name else x for x in n.inputs))
                         for n in nodes[i + 2:]]
        outputs = {k: act.name if v == pool.name else v for k, v in outputs.items()}
        i += 2
    return replace(graph, nodes=tuple(nodes), outputs=tuple(outputs.items()))


def max_pool_blocks(graph: Graph) -> Graph:
    """Marks max-pools whose windows tile the input (stride = kernel, no padding, no dilation).

    XLA lowers a general max-pool's gradient to a slow select-and-scatter; a tiling
    pool is a handful of element-wise maxima over strided slices, which fuse. The JAX
    lowering keeps torch's tie rule (the gradient goes to the first maximum).
    """
    def tiles(node: Node) -> bool:
        p = node.params
        return (node.op == "max_pool2d" and p.stride == p.kernel_size and p.padding == (0, 0)
                and p.dilation == (1, 1) and not p.ceil_mode)

    return _mark(graph, "blocks", tiles)


def flatten_channels_last(graph: Graph) -> Graph:
    """Lets a full ``flatten`` read by ``linear`` layers keep a channels-last backend's (H, W, C) order.

    The linear's kernel rows are then stored in that order (the weight converters
    permute them; canonical weights keep torch's (C, H, W) order), and no transpose
    runs between the convolutions and the classifier.
    """
    def eligible(node: Node) -> bool:
        consumers = [n for n in graph.nodes if node.name in n.inputs]
        return (node.op == "flatten" and node.params.start_dim == 1 and node.output.rank == 1
                and node.name not in dict(graph.outputs).values() and bool(consumers)
                and all(n.op == "linear" for n in consumers))

    return _mark(graph, "flatten_hwc", eligible)


GEMM_WEIGHT_GRAD_MAX_PATCH = 27  # values per window: 3x3 over RGB
TAP_GEMM_MIN_PIXELS = 64  # output pixels per example
TAP_GEMM_CHANNELS = (64, 128)  # input channels times the stride's area


def conv_weight_grad_gemm(graph: Graph) -> Graph:
    """Marks the convolutions whose weight gradient XLA's CPU backend computes slower than matrix products do.

    XLA computes a weight gradient as a convolution over transposed copies of the
    output gradient, 2-4x the forward's time. Two kinds of convolution (one group)
    are marked, by measurements on a 2-core CPU (``backends/jax/ops/conv_gemm.py``):

    - small windows, kh·kw·Cin <= 27: the MNIST CNN's first convolution's weight
      gradient takes 1.6 ms of a 6.5 ms step as XLA's convolution, ~0.3 ms as one
      product over explicit patches;
    - Cin·sh·sw in 64..128 with at least 64 output pixels: one product per tap.
      ResNet-20's 64-channel 8×8 convolutions take 13.5 instead of 20.2 ms (batch
      128). Outside that band the products were slower: 16 channels at 32×32 (45
      against 30 ms), 512 channels at 2×2, 256 at 4×4.
    """
    def small(p) -> bool:
        return p.in_channels * p.kernel_size[0] * p.kernel_size[1] <= GEMM_WEIGHT_GRAD_MAX_PATCH

    def banded(p, output) -> bool:
        low, high = TAP_GEMM_CHANNELS
        pixels = output.shape[-1] * output.shape[-2]
        return low <= p.in_channels * p.stride[0] * p.stride[1] <= high and pixels >= TAP_GEMM_MIN_PIXELS

    def marked(node: Node) -> bool:
        p = node.params
        return node.op == "conv2d" and p.groups == 1 and (small(p) or banded(p, node.output))

    return _mark(graph, "gemm_weight_grad", marked)


def channels_last(graph: Graph) -> Graph:
    """Marks the ops of an image model to run on channels-last (NHWC) memory.

    Shapes and values stay NCHW; only the memory order changes. torch's CPU kernels
    (oneDNN) are fastest on it: max_pool2d over the MNIST CNN's activations takes
    0.26 ms instead of 4 ms on this 2-core machine, and the whole step ~1.5x less;
    ResNet-20's step 1.4x less (bench, 2026-11-27).

    Every op of ``NHWC_INPUTS`` with 4-D inputs is marked, so each 4-D tensor that
    meets another is in the same memory format. In an earlier version only the
    convolutions and pools were marked: in resnet_tiny, channels-last and contiguous
    tensors then met in the same BatchNorm/add backward, and torch 2.14.1's CPU kernels
    returned float32 gradients 2.2e-2 off the float64 ones (1e-6 without the pass).
    Graphs with an op outside ``CHANNELS_LAST_SAFE`` are not marked at all.
    """
    if any(n.op not in CHANNELS_LAST_SAFE for n in graph.nodes):
        return graph
    shapes = {name: t for name, t in graph.inputs} | {n.name: n.output for n in graph.nodes}
    return _mark(graph, "nhwc_memory", lambda n: n.op in NHWC_INPUTS and all(shapes[i].rank == 3 for i in n.inputs))


NHWC_INPUTS = frozenset({"conv2d", "max_pool2d", "avg_pool2d", "batch_norm2d", "add", "adaptive_avg_pool2d"})
"""Ops whose 4-D inputs the ``channels_last`` pass puts in NHWC memory; element-wise ops keep their input's."""

CHANNELS_LAST_SAFE = NHWC_INPUTS | {
    "linear", "identity", "flatten", "dropout", "batch_norm1d",
    "relu", "leaky_relu", "gelu", "tanh", "sigmoid", "silu", "softmax", "log_softmax",
}
"""Ops of the graphs the ``channels_last`` pass was proven on (``dslc check`` in float32 and float64)."""


def relu_inplace(graph: Graph) -> Graph:
    """Marks ReLUs that may overwrite their input, as torchvision's ``nn.ReLU(inplace=True)`` does.

    Safe where the ReLU is the input's only reader, the input is no model output, and
    the op that made it does not keep its own output for its backward pass
    (``INPLACE_PRODUCERS``: convolutions, BatchNorm, linear and add keep their inputs;
    sigmoid or tanh would be corrupted, and torch's autograd would raise). One
    activation-sized allocation less per ReLU: ResNet-20's step on 2 CPU cores ran
    1.6% faster (385 against 379 samples/s, interleaved). ``dslc check``'s search for the
    first diverging layer copies each layer's output in a hook as it finishes, before the
    ReLU runs.
    """
    producers = {n.name: n for n in graph.nodes}
    outputs = set(dict(graph.outputs).values())

    def eligible(node: Node) -> bool:
        source = node.inputs[0] if node.op == "relu" and len(node.inputs) == 1 else None
        return (source in producers and producers[source].op in INPLACE_PRODUCERS and source not in outputs
                and [n.name for n in graph.nodes if source in n.inputs] == [node.name])

    return _mark(graph, "inplace", eligible)


INPLACE_PRODUCERS = frozenset({"conv1d", "conv2d", "conv_transpose2d", "batch_norm1d", "batch_norm2d", "linear",
                               "add"})
"""Ops whose backward reads their inputs, never their output: a ReLU may overwrite what they return."""


PASSES = {p.name: p for p in (
    Pass("pool_before_activation", pool_before_activation, ("torch",),
         "relu -> max_pool2d runs as max_pool2d -> relu (ReLU on 4x fewer values)"),
    Pass("max_pool_blocks", max_pool_blocks, ("jax",),
         "tiling max-pools lower to fused element-wise maxima instead of select-and-scatter"),
    Pass("flatten_channels_last", flatten_channels_last, ("jax",),
         "flatten -> linear keeps NHWC order; the linear's kernel rows are permuted instead"),
    Pass("conv_weight_grad_gemm", conv_weight_grad_gemm, ("jax",),
         "convolutions XLA is slow for compute their weight gradient as matrix products over the input's taps"),
    Pass("channels_last", channels_last, ("torch",),
         "convolutions and pools run on NHWC memory (torch.channels_last), where oneDNN is fastest"),
    Pass("relu_inplace", relu_inplace, ("torch",),
         "a ReLU overwrites its input where nothing else reads it (one activation-sized buffer less)"),
)}
"""Pass name -> Pass, in the order they run."""


def passes_for(target: str, disabled: Iterable[str] = ()) -> list[str]:
    """Names of the passes ``target`` runs, minus ``disabled`` ('all' disables every pass)."""
    disabled = set(disabled)
    unknown = disabled - set(PASSES) - {"all"}
    if unknown:
        raise DslcError(f"unknown pass {', '.join(sorted(unknown))}; passes: {', '.join(PASSES)}")
    if "all" in disabled:
        return []
    return [name for name, p in PASSES.items() if target in p.targets and name not in disabled]


def optimize(graph: Graph, names: Iterable[str]) -> Graph:
    """Runs the named passes in catalog order."""
    names = set(names)
    for name, p in PASSES.items():
        if name in names:
            graph = p.run(graph)
    return graph
