"""Lowers a ``Graph`` to a native ``torch.fx.GraphModule``.

torch.fx turns the graph into a real ``forward`` (``print(module.code)`` shows it),
which is as fast as hand-written code, works with ``torch.compile`` and
``torch.save``, and names each layer's submodule by its node name, so
``state_dict()`` keys are the canonical ones (``conv1.weight``). Dotted node names
(``layer1.0.conv1``) become real nested submodules (``add_module`` refuses dots), as
in a hand-written model, and ``call_module`` targets their qualified names.

``forward`` takes the model's inputs positionally, in declared order (the fx
placeholders carry their names), and returns one tensor, or a dict of tensors by
output name when the spec declares several outputs.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch import nn

from dsl import Graph

from ..weights import StateDict, check_state_dict
from .ops import TORCH_OPS

DTYPES = {"float32": torch.float32, "float64": torch.float64, "int32": torch.int32, "int64": torch.int64,
          "bool": torch.bool}


def build_module(graph: Graph, weights: StateDict | None = None, dtype: str = "float32") -> torch.fx.GraphModule:
    """The model as a torch module; torch's default init unless ``weights`` are given.

    Example:
        >>> spec, graph = dsl.load("specs/mnist_cnn.yaml")
        >>> model = build_module(graph)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    root = nn.Module()
    module = torch.fx.GraphModule(root, _fx_graph(graph, root), class_name=_class_name(graph.name)).to(DTYPES[dtype])
    if weights is not None:
        load_state(module, graph, weights)
    return module


def build_models(graph: Graph, module: torch.fx.GraphModule) -> dict[str, torch.fx.GraphModule]:
    """Each model of ``graph.model_names`` as its own module, sharing ``module``'s parameters and buffers.

    ``module`` (``build_module(graph)``) runs all models side by side and owns the
    weights; a GAN's objective calls the generator and the discriminator separately.
    """
    if not graph.models:
        return {"": module}
    return {m: torch.fx.GraphModule(module, _fx_graph(graph.submodel(m)), class_name=_class_name(m))
            for m in graph.models}


def _fx_graph(graph: Graph, root: nn.Module | None = None) -> torch.fx.Graph:
    """The fx graph of ``graph``; with ``root``, each layer's new submodule is attached there too."""
    fx = torch.fx.Graph()
    values = {name: fx.placeholder(name.replace(".", "_")) for name, _ in graph.inputs}
    for node in graph.nodes:
        inputs = tuple(values[i] for i in node.inputs)
        if "nhwc_memory" in node.hints:  # the channels_last pass: same values, NHWC memory
            inputs = tuple(fx.call_method("contiguous", (x,), {"memory_format": torch.channels_last}) for x in inputs)
        if root is not None:
            module = TORCH_OPS[node.op](node)
            _attach(root, node.name, module.to(memory_format=torch.channels_last) if "nhwc_memory" in node.hints
                    else module)
        out = fx.call_module(node.name, inputs)
        if node.more:  # several outputs: the module returns a tuple; node, node[1], ... are its items
            for k, value in enumerate(node.value_names):
                values[value] = fx.call_function(operator.getitem, (out, k))
        else:
            values[node.name] = out
    outputs = {name: values[value] for name, value in graph.outputs}
    fx.output(next(iter(outputs.values())) if len(outputs) == 1 else outputs)
    return fx


def _attach(root: nn.Module, name: str, module: nn.Module) -> None:
    """Adds ``module`` at dotted ``name``, creating the containers on its path (``layer1``, then ``0``)."""
    *path, local = name.split(".")
    parent = root
    for part in path:
        if part not in parent._modules:
            parent.add_module(part, nn.Module())
        parent = parent._modules[part]
    parent.add_module(local, module)


def load_state(module: nn.Module, graph: Graph, weights: StateDict) -> None:
    """Copies canonical weights into the module (casting to its dtype)."""
    check_state_dict(graph, weights)
    # load_state_dict copies into the module's parameters, on its device and in its memory format
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}, strict=True)


def export_state(module: nn.Module) -> StateDict:
    """A copy of the module's state dict as C-ordered numpy arrays (whatever the tensors' memory format).

    Always a copy: ``Tensor.numpy()`` shares memory with the parameter, which the next
    optimizer step would change under the caller.
    """
    return {k: np.array(v.detach().cpu().numpy(), order="C") for k, v in module.state_dict().items()}


def _class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_")) or "Model"
