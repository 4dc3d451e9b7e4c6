"""torch lowerings of the training vocabulary: losses, optimizers, the metrics' per-batch sums."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from dsl.schema import ChoiceSpec


def _per_example(losses: torch.Tensor) -> torch.Tensor:
    return losses.reshape(len(losses), -1).mean(1)


class TorchLoss(NamedTuple):
    """A lowered loss. ``mean(out, y, **columns)`` is the batch's loss exactly as torch reduces it (what
    training minimizes) and the targets it is a mean over (None: the examples); ``rows(out, y, **columns)``
    gives per row the loss summed over those targets (or the example's loss) and their count (or None), for
    evaluation over masked rows. ``columns`` are the batch columns the loss reads besides ``y`` (``Term.columns``).
    """

    mean: Callable
    rows: Callable


def _cross_entropy(p):
    """torch's F.cross_entropy with ignore_index (reduction 'mean': over the targets it does not ignore)."""
    def mean(out, y):
        loss = F.cross_entropy(*_flat(p, out, y), ignore_index=p.ignore_index, label_smoothing=p.label_smoothing)
        return loss, (y != p.ignore_index).sum()

    def rows(out, y):
        losses = F.cross_entropy(*_flat(p, out, y), ignore_index=p.ignore_index, label_smoothing=p.label_smoothing,
                                 reduction="none")
        return losses.reshape(len(y), -1).sum(1), (y != p.ignore_index).reshape(len(y), -1).sum(1)

    return TorchLoss(mean, rows)


def _flat(p, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets as F.cross_entropy takes them: class axis -1 flattened to [N·T, V] and [N·T], as
    Hugging Face's models do (the same mean, and torch's fastest layout); class axis 1 as they are."""
    return (out.reshape(-1, out.shape[-1]), y.reshape(-1)) if p.class_axis == -1 else (out, y)


def _ctc(p):
    """torch's F.ctc_loss on batch-first logits: log_softmax over the classes, then time first as torch wants it.

    Targets are [N, S] padded with the blank, which is never a label, so each example's
    target length is its count of other ids; ``input_lengths`` is its frame count
    (default: all T). reduction 'mean' is torch's: each loss over its target length
    (at least 1), then the batch mean.
    """
    def ctc(out, y, input_lengths, reduction):
        frames = input_lengths if input_lengths is not None else torch.full((len(y),), out.shape[1], device=y.device)
        return F.ctc_loss(F.log_softmax(out, -1).transpose(0, 1), y, frames, ctc_target_lengths(y, p.blank),
                          blank=p.blank, reduction=reduction, zero_infinity=p.zero_infinity)

    def rows(out, y, input_lengths=None):
        return ctc(out, y, input_lengths, "none") / ctc_target_lengths(y, p.blank).clamp(min=1), None

    return TorchLoss(lambda out, y, input_lengths=None: (ctc(out, y, input_lengths, "mean"), None), rows)


def ctc_target_lengths(y: torch.Tensor, blank: int) -> torch.Tensor:
    return (y != blank).sum(1)


def _elementwise(fn):
    def make(p):
        return TorchLoss(lambda out, y: (fn(out, y), None), lambda out, y: (_per_example(fn(out, y, reduction="none")),
                                                                            None))

    return make


TORCH_LOSSES = {
    "cross_entropy": _cross_entropy,
    "ctc": _ctc,
    "mse": _elementwise(F.mse_loss),
    "bce_with_logits": _elementwise(F.binary_cross_entropy_with_logits),
}
"""Loss name -> (params -> ``TorchLoss``)."""


def _adam(cls):
    def make(parameters, sparse, p, no_decay=frozenset()):
        return cls(param_groups(parameters, no_decay), lr=p.lr, betas=p.betas, eps=p.eps,
                   weight_decay=p.weight_decay, fused=True)

    return make


def _sgd(parameters, sparse, p, no_decay=frozenset()):
    """torch's SGD; unfused where a table has sparse gradients, which the fused kernel refuses (plain SGD's step
    is the same either way: p - lr·g)."""
    return torch.optim.SGD(param_groups(parameters, no_decay), lr=p.lr, momentum=p.momentum, nesterov=p.nesterov,
                           weight_decay=p.weight_decay, fused=not sparse & parameters.keys())


def param_groups(parameters: dict[str, torch.nn.Parameter], no_decay: set[str]) -> list:
    """The parameters, or with ``no_decay`` two param groups as torch users write them: the decayed weights, then
    the others with weight_decay 0 (a group left empty is left out: torch refuses one)."""
    if not no_decay:
        return list(parameters.values())
    decayed = [p for k, p in parameters.items() if k not in no_decay]
    kept = [p for k, p in parameters.items() if k in no_decay]
    return [g for g in ({"params": decayed}, {"params": kept, "weight_decay": 0.0}) if g["params"]]


class SparseAdam:
    """torch's ``SparseAdam`` on the sparse tables and fused ``Adam`` on every other weight, stepped as one.

    The pairing torch users write (SparseAdam refuses dense gradients, Adam sparse
    ones), with what the target uses of an optimizer: ``state`` by parameter,
    ``zero_grad``, ``step``, and ``parts`` for loading state (``load_entries``).
    """

    def __init__(self, parameters: dict, sparse: set[str], p, no_decay=frozenset()):
        tables = [w for k, w in parameters.items() if k in sparse]
        rest = [w for k, w in parameters.items() if k not in sparse]
        self.parts = [torch.optim.SparseAdam(tables, lr=p.lr, betas=p.betas, eps=p.eps)]
        if rest:
            self.parts.append(torch.optim.Adam(rest, lr=p.lr, betas=p.betas, eps=p.eps, fused=True))

    @property
    def param_groups(self) -> list[dict]:
        """Every part's param groups: where a schedule sets the lr of all of them."""
        return [group for part in self.parts for group in part.param_groups]

    @property
    def state(self) -> dict:
        """Each parameter's state, read from its part (a copy of the mapping: torch's are defaultdicts, which a
        lookup would fill)."""
        return {param: state for part in self.parts for param, state in part.state.items()}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()


TORCH_OPTIMIZERS = {
    "sgd": _sgd,
    "adam": _adam(torch.optim.Adam),
    "adamw": _adam(torch.optim.AdamW),
    "sparse_adam": SparseAdam,
}
"""Optimizer name -> (parameters by weight name, the sparse tables' names, params) -> optimizer. ``fused=True``:
torch's fastest implementation, one kernel for all parameters (on CPU too), with the same update rule as the
default one."""


def make_optimizer(optimizer: ChoiceSpec, parameters: dict[str, torch.nn.Parameter], sparse: set[str],
                   no_decay: set[str] = frozenset()):
    """``sparse``: the weights whose gradients are sparse (``Weight.sparse``: embeddings with ``sparse: true``);
    ``no_decay``: the weights in a second param group without weight decay (``dsl/decay.py``)."""
    return TORCH_OPTIMIZERS[optimizer.name](parameters, sparse, optimizer.params, no_decay)


def clip_gradients(parameters, train) -> None:
    """torch's own clipping of one optimizer's gradients, before its step: ``clip_grad_norm_`` (global L2 norm,
    its 1e-6 epsilon) or ``clip_grad_value_``, with the foreach kernels; nothing when the spec asks for neither."""
    if train.clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(parameters, train.clip_grad_norm, foreach=True)
    elif train.clip_grad_value is not None:
        torch.nn.utils.clip_grad_value_(parameters, train.clip_grad_value, foreach=True)


def set_hyperparameters(optimizer, lr: float, momentum: float | None) -> None:
    """Sets every param group's lr (and one_cycle's momentum: Adam's beta1, or SGD's momentum) for the next step,
    as a torch scheduler does between steps."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if momentum is not None and "betas" in group:
            group["betas"] = (momentum, *group["betas"][1:])
        elif momentum is not None:
            group["momentum"] = momentum


def load_entries(optimizer, entries: dict[torch.nn.Parameter, dict[str, torch.Tensor]]) -> None:
    """Sets each parameter's state through ``load_state_dict``, torch's own path: it casts the entries to the
    parameter's dtype and device and puts a fused kernel's ``step`` where it reads it (float32, on the device)."""
    for part in getattr(optimizer, "parts", (optimizer,)):
        saved = part.state_dict()
        ids = {id(p): i for i, p in enumerate(p for group in part.param_groups for p in group["params"])}
        saved["state"] = {ids[id(p)]: e for p, e in entries.items() if id(p) in ids}
        part.load_state_dict(saved)
        if isinstance(part, torch.optim.SparseAdam):
            for state in part.state.values():  # its own type, a Python int: the bias correction is then in double
                state["step"] = int(state["step"])


def entry_array(value) -> np.ndarray:
    """One state entry as the canonical array: a tensor's values, or SparseAdam's int ``step`` as float32 (Adam's
    type, so the two optimizers' states read alike)."""
    if isinstance(value, torch.Tensor):
        return np.array(value.detach().cpu().numpy(), order="C")
    return np.array(value, np.float32)


def _predicted(loss: ChoiceSpec, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels: the argmax over the class axis, or the logit's sign for bce_with_logits."""
    if loss.name == "cross_entropy":
        return out.argmax(loss.params.class_axis), y
    return out > 0, y > 0.5


def _accuracy(loss: ChoiceSpec, out, y, mask=None) -> torch.Tensor:
    """Correct predictions: over the targets cross_entropy counts (ignore_index skipped), or per example
    averaged over its positions (bce_with_logits)."""
    predicted, true = _predicted(loss, out, y)
    if loss.name == "cross_entropy":
        correct = predicted == true
        if 0 <= loss.params.ignore_index < out.shape[loss.params.class_axis]:  # else no prediction equals it
            correct &= y != loss.params.ignore_index  # one kernel less a step for the default -100
        return correct.sum() if mask is None else masked_sum(correct.reshape(len(y), -1).sum(1), mask)
    per_example = _per_example((predicted == true).to(out.dtype))
    return per_example.sum() if mask is None else masked_sum(per_example, mask)


def _iou(loss: ChoiceSpec, out, y, mask=None) -> torch.Tensor:
    """Each example's foreground intersection over union (foreground: class ids other than 0, or 1 for
    bce_with_logits), 1 where prediction and target are both empty; summed over examples."""
    predicted, true = (t.reshape(len(t), -1) != 0 for t in _predicted(loss, out, y))
    inter, union = ((m.sum(1)).to(out.dtype) for m in (predicted & true, predicted | true))
    per_example = torch.where(union > 0, inter / union.clamp(min=1), 1.0)
    return per_example.sum() if mask is None else masked_sum(per_example, mask)


def _perplexity(loss: ChoiceSpec, out, y, mask=None) -> torch.Tensor:
    """The cross entropy summed over the counted targets, without label smoothing; the driver divides by
    their count and takes exp (``backends/metrics.py``)."""
    p = loss.params
    nll = F.cross_entropy(*_flat(p, out, y), ignore_index=p.ignore_index, reduction="none")
    return nll.sum() if mask is None else masked_sum(nll.reshape(len(y), -1).sum(1), mask)


def masked_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The sum of per-row values over the rows ``mask`` keeps (weights 1), so an infinite loss on a padding row
    (mask 0) adds nothing rather than NaN."""
    return torch.where(mask > 0, values * mask, 0.0).sum()


def _example_mean(fn):
    """A metric that is each example's mean of ``fn(out, y, reduction='none')`` over its positions, summed over
    the (kept) rows: the driver divides by the examples (and takes sqrt for rmse)."""
    def metric(loss: ChoiceSpec, out, y, mask=None) -> torch.Tensor:
        per_example = _per_example(fn(out, y, reduction="none"))
        return per_example.sum() if mask is None else masked_sum(per_example, mask)

    return metric


TORCH_METRICS = {"accuracy": _accuracy, "iou": _iou, "perplexity": _perplexity,
                 "rmse": _example_mean(F.mse_loss), "mae": _example_mean(F.l1_loss),
                 "logloss": _example_mean(F.binary_cross_entropy_with_logits)}
"""Metric name -> (loss spec, outputs, targets, row mask or None) -> the batch's sum
(``dsl.training.METRICS`` says what the driver divides it by); auc is no sum (``backends/split_metrics.py``)."""
