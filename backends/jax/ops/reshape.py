from dsl import Node

from .base import JaxOp


def _flatten(node: Node, x, *, train: bool):
    """Flattens in channels-first order: the layout machinery hands this op NCHW."""
    start, end = node.params.start_dim, node.params.end_dim
    return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])


LOWERINGS = {"flatten": JaxOp(_flatten, "channels_first")}
