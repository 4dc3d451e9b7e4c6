"""torch.nn.LSTM and torch.nn.GRU themselves, batch first, returning their outputs as one flat tuple.

Subclasses add no parameter and rename none, so the state_dict keys are torch's and a
``torch.nn.LSTM``/``GRU`` checkpoint loads strictly. ``forward`` flattens torch's
``(output, (h_n, c_n))`` into ``(output, h_n, c_n)``, the graph's outputs in order,
and moves the states' batch axis first ([N, D·num_layers, H]; docs/PARITY.md §10).
"""

import torch
from torch import nn

from dsl import Node


class LSTM(nn.LSTM):
    """torch.nn.LSTM with outputs ``(output, h_n, c_n)``, all batch first."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        output, (h_n, c_n) = super().forward(x)
        return output, h_n.transpose(0, 1), c_n.transpose(0, 1)


class GRU(nn.GRU):
    """torch.nn.GRU with outputs ``(output, h_n)``, both batch first."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output, h_n = super().forward(x)
        return output, h_n.transpose(0, 1)


def _recurrent(cls):
    def lower(node: Node) -> nn.Module:
        p = node.params
        return cls(p.input_size, p.hidden_size, num_layers=p.num_layers, bias=p.bias, batch_first=True,
                   dropout=p.dropout, bidirectional=p.bidirectional)

    return lower


LOWERINGS = {"lstm": _recurrent(LSTM), "gru": _recurrent(GRU)}
