from torch import nn

from dsl import Node


def _batch_norm(cls):
    """torch.nn's own layer: its state_dict holds the buffers under the canonical names."""
    def lower(node: Node) -> nn.Module:
        p = node.params
        return cls(p.num_features, eps=p.eps, momentum=p.momentum, affine=p.affine,
                   track_running_stats=p.track_running_stats)

    return lower


def layer_norm(node: Node) -> nn.Module:
    p = node.params
    return nn.LayerNorm(p.normalized_shape, eps=p.eps, elementwise_affine=p.elementwise_affine, bias=p.bias)


def group_norm(node: Node) -> nn.Module:
    p = node.params
    return nn.GroupNorm(p.num_groups, p.num_channels, eps=p.eps, affine=p.affine)


def instance_norm2d(node: Node) -> nn.Module:
    p = node.params
    return nn.InstanceNorm2d(p.num_features, eps=p.eps, momentum=p.momentum, affine=p.affine,
                             track_running_stats=p.track_running_stats)


LOWERINGS = {
    "batch_norm2d": _batch_norm(nn.BatchNorm2d),
    "batch_norm1d": _batch_norm(nn.BatchNorm1d),
    "layer_norm": layer_norm,
    "group_norm": group_norm,
    "instance_norm2d": instance_norm2d,
}
