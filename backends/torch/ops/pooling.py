from torch import nn

from dsl import Node


def max_pool2d(node: Node) -> nn.Module:
    p = node.params
    return nn.MaxPool2d(p.kernel_size, p.stride, p.padding, p.dilation, ceil_mode=p.ceil_mode)


def avg_pool2d(node: Node) -> nn.Module:
    p = node.params
    return nn.AvgPool2d(p.kernel_size, p.stride, p.padding, ceil_mode=p.ceil_mode,
                        count_include_pad=p.count_include_pad, divisor_override=p.divisor_override)


LOWERINGS = {"max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d}
