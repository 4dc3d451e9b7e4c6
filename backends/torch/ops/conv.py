from torch import nn

from dsl import Node


def _conv(cls):
    """torch.nn's own Conv1d or Conv2d, built with the node's resolved arguments."""
    def lower(node: Node) -> nn.Module:
        p = node.params
        return cls(p.in_channels, p.out_channels, p.kernel_size, stride=p.stride, padding=p.padding,
                   dilation=p.dilation, groups=p.groups, bias=p.bias, padding_mode=p.padding_mode)

    return lower


def conv_transpose2d(node: Node) -> nn.Module:
    p = node.params
    return nn.ConvTranspose2d(p.in_channels, p.out_channels, p.kernel_size, stride=p.stride, padding=p.padding,
                              output_padding=p.output_padding, groups=p.groups, bias=p.bias, dilation=p.dilation)


LOWERINGS = {"conv2d": _conv(nn.Conv2d), "conv1d": _conv(nn.Conv1d), "conv_transpose2d": conv_transpose2d}
