from torch import nn

from dsl import Node


def conv2d(node: Node) -> nn.Module:
    p = node.params
    return nn.Conv2d(p.in_channels, p.out_channels, p.kernel_size, stride=p.stride, padding=p.padding,
                     dilation=p.dilation, groups=p.groups, bias=p.bias, padding_mode=p.padding_mode)


LOWERINGS = {"conv2d": conv2d}
