from torch import nn

from dsl import Node


def _batch_norm(cls):
    """torch.nn's own layer: its state_dict holds the buffers under the canonical names."""
    def lower(node: Node) -> nn.Module:
        p = node.params
        return cls(p.num_features, eps=p.eps, momentum=p.momentum, affine=p.affine,
                   track_running_stats=p.track_running_stats)

    return lower


LOWERINGS = {"batch_norm2d": _batch_norm(nn.BatchNorm2d), "batch_norm1d": _batch_norm(nn.BatchNorm1d)}
