from torch import nn

from dsl import Node


def adaptive_avg_pool2d(node: Node) -> nn.Module:
    return nn.AdaptiveAvgPool2d(node.params.output_size)


def adaptive_max_pool2d(node: Node) -> nn.Module:
    return nn.AdaptiveMaxPool2d(node.params.output_size)


def upsample(node: Node) -> nn.Module:
    p = node.params
    return nn.Upsample(p.size, p.scale_factor, mode=p.mode, align_corners=p.align_corners)


def zero_pad2d(node: Node) -> nn.Module:
    return nn.ZeroPad2d(node.params.padding)


LOWERINGS = {"adaptive_avg_pool2d": adaptive_avg_pool2d, "adaptive_max_pool2d": adaptive_max_pool2d,
             "upsample": upsample, "zero_pad2d": zero_pad2d}
