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


def correct_count(loss: str, out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Correct predictions, averaged within an example when it has several (per-pixel classes)."""
    if loss == "cross_entropy" and out.ndim == 2 and mask is None:
        return (out.argmax(1) == y).sum()  # the common case, in two kernels: it runs every step
    if loss == "cross_entropy":
        hits = out.argmax(1) == y
    elif loss == "bce_with_logits":
        hits = (out > 0) == (y > 0.5)
    else:
        return torch.zeros((), dtype=out.dtype)
    per_example = _per_example(hits.to(out.dtype))
    return (per_example * mask).sum() if mask is not None else per_example.sum()
