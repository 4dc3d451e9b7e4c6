"""What a loss takes as targets, given the output it reads: one rule for the data checks, the synthetic dataset
and ``dslc check``.

cross_entropy's classes lie on ``class_axis`` of the batched output: 1 (torch's
``[N, C, d1, ...]``) or -1 (``[N, T, V]``, sequence logits as Transformer and Keras code
writes them). Its targets are class ids shaped like the output without that axis, where
``ignore_index`` marks positions that count for nothing (padding). ctc reads logits
``[N, T, C]`` and label sequences ``[N, S]`` of any length S, padded at the end with the
blank. The other losses take values shaped like the output.
"""

from __future__ import annotations

from .schema import ChoiceSpec
from .tensors import TensorType


def class_count(loss: ChoiceSpec, out: TensorType) -> int:
    """The classes of a classification output: the size of its class axis (ctc's: the last, blank included)."""
    return out.shape[_class_axis(loss, out)]


def target_shape(loss: ChoiceSpec, out: TensorType) -> tuple[int, ...] | None:
    """One example's target shape; None where any length goes (ctc's label sequences)."""
    if loss.name == "ctc":
        return None
    if loss.name != "cross_entropy":
        return out.shape
    axis = _class_axis(loss, out)
    return out.shape[:axis] + out.shape[axis + 1:]


def _class_axis(loss: ChoiceSpec, out: TensorType) -> int:
    """The class axis of one example's shape (the batch axis left out): class_axis 1 is its first, -1 its last."""
    return 0 if loss.name == "cross_entropy" and loss.params.class_axis == 1 else out.rank - 1
