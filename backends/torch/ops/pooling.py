from torch import nn

from dsl import Node


def _max_pool(cls):
    def lower(node: Node) -> nn.Module:
        p = node.params
        return cls(p.kernel_size, p.stride, p.padding, p.dilation, ceil_mode=p.ceil_mode)

    return lower


def avg_pool2d(node: Node) -> nn.Module:
    p = node.params
    return nn.AvgPool2d(p.kernel_size, p.stride, p.padding, ceil_mode=p.ceil_mode,
                        count_include_pad=p.count_include_pad, divisor_override=p.divisor_override)


def avg_pool1d(node: Node) -> nn.Module:
    """torch.nn.AvgPool1d, which has no divisor_override."""
    p = node.params
    return nn.AvgPool1d(p.kernel_size, p.stride, p.padding, ceil_mode=p.ceil_mode,
                        count_include_pad=p.count_include_pad)


LOWERINGS = {"max_pool2d": _max_pool(nn.MaxPool2d), "avg_pool2d": avg_pool2d,
             "max_pool1d": _max_pool(nn.MaxPool1d), "avg_pool1d": avg_pool1d}
