"""torch lowerings of the training vocabulary: losses, optimizers, the accuracy count."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dsl.schema import ChoiceSpec


def _per_example(losses: torch.Tensor) -> torch.Tensor:
    return losses.reshape(len(losses), -1).mean(1)


def _cross_entropy(p):
    def loss(out, y, reduction="mean"):
        losses = F.cross_entropy(out, y, label_smoothing=p.label_smoothing, reduction=reduction)
        return losses if reduction == "mean" else _per_example(losses)

    return loss


def _elementwise(fn):
    def make(p):
        def loss(out, y, reduction="mean"):
            losses = fn(out, y, reduction=reduction)
            return losses if reduction == "mean" else _per_example(losses)

        return loss

    return make


TORCH_LOSSES = {
    "cross_entropy": _cross_entropy,
    "mse": _elementwise(F.mse_loss),
    "bce_with_logits": _elementwise(F.binary_cross_entropy_with_logits),
}
"""Loss name -> (params -> loss(out, y, reduction)); reduction 'mean' or 'none' (one value per example)."""


def _adam(cls):
    def make(parameters, p):
        return cls(parameters, lr=p.lr, betas=p.betas, eps=p.eps, weight_decay=p.weight_decay, fused=True)

    return make


TORCH_OPTIMIZERS = {
    "sgd": lambda parameters, p: torch.optim.SGD(parameters, lr=p.lr, momentum=p.momentum, nesterov=p.nesterov,
                                                 weight_decay=p.weight_decay, fused=True),
    "adam": _adam(torch.optim.Adam),
    "adamw": _adam(torch.optim.AdamW),
}
"""Optimizer name -> (parameters, params -> optimizer). ``fused=True``: torch's fastest implementation,
one kernel for all parameters (on CPU too), with the same update rule as the default one."""



def make_optimizer(optimizer: ChoiceSpec, parameters):
    return TORCH_OPTIMIZERS[optimizer.name](parameters, optimizer.params)


def _predicted(loss: str, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels: the argmax over the class axis, or the logit's sign for bce_with_logits."""
    return (out.argmax(1), y) if loss == "cross_entropy" else (out > 0, y > 0.5)


def _accuracy(loss: str, out, y, mask=None) -> torch.Tensor:
    """Correct predictions, averaged within an example when it has several (per-pixel classes)."""
    if loss == "cross_entropy" and out.ndim == 2 and mask is None:
        return (out.argmax(1) == y).sum()  # the common case, in two kernels: it runs every step
    predicted, true = _predicted(loss, out, y)
    per_example = _per_example((predicted == true).to(out.dtype))
    return (per_example * mask).sum() if mask is not None else per_example.sum()


def _iou(loss: str, out, y, mask=None) -> torch.Tensor:
    """Each example's foreground intersection over union (foreground: class ids other than 0, or 1 for
    bce_with_logits), 1 where prediction and target are both empty; summed over examples."""
    predicted, true = (t.reshape(len(t), -1) != 0 for t in _predicted(loss, out, y))
    inter, union = ((m.sum(1)).to(out.dtype) for m in (predicted & true, predicted | true))
    per_example = torch.where(union > 0, inter / union.clamp(min=1), 1.0)
    return (per_example * mask).sum() if mask is not None else per_example.sum()


TORCH_METRICS = {"accuracy": _accuracy, "iou": _iou}
"""Metric name -> (loss name, outputs, targets, mask or None) -> the batch's sum of per-example values."""
