"""The train section of a generated spec: losses that fit its outputs, metrics that fit the losses, an optimizer
that fits its tables."""

from __future__ import annotations

from hypothesis import strategies as st

from dsl import METRICS
from dsl.tensors import TensorType

from .draws import pick
from .spec import Block, GenSpec, Item

BATCH = 4
"""The batch of every generated train section (and of its check)."""


def losses_for(kind: TensorType) -> list:
    """Losses that fit an output (README, "Losses and metrics"): mse and bce_with_logits on any float output,
    cross_entropy with a class axis (1, or -1 from rank 2), ctc on [N, T, C] with C >= 2."""
    options = ["mse", "bce_with_logits"]
    if kind.rank >= 1:
        options += ["cross_entropy", {"cross_entropy": {"label_smoothing": 0.1}}]
    if kind.rank >= 2:
        options.append({"cross_entropy": {"class_axis": -1}})
    if kind.rank == 2 and kind.shape[-1] >= 2:
        options.append("ctc")
    return options


def metrics_for(loss, kind: TensorType) -> list[str]:
    """The metrics whose catalog entry takes the loss; iou only on per-position classes or bce, auc on one logit."""
    name = loss if isinstance(loss, str) else next(iter(loss))
    found = [m for m, d in METRICS.items() if name in d.losses]
    if not (name == "bce_with_logits" or kind.rank >= 2):
        found = [m for m in found if m != "iou"]
    if kind.shape not in ((), (1,)):
        found = [m for m, d in ((m, METRICS[m]) for m in found) if d.per != "split"]
    return found


def draw_optimizer(draw, sparse: bool):
    """An optimizer with a small learning rate; a model with sparse tables gets sparse_adam or plain SGD."""
    lr = draw(st.sampled_from([0.1, 0.01, 0.001]))
    if sparse:
        return draw(st.sampled_from([{"sparse_adam": {"lr": lr}}, {"sgd": {"lr": lr}}]))
    name = pick(draw, ["sgd", "adam", "adamw", "momentum"])
    decay = {"weight_decay": 0.01} if draw(st.integers(0, 3)) == 0 else {}
    if name == "momentum":
        return {"sgd": {"lr": lr, "momentum": 0.9, "nesterov": draw(st.booleans())} | decay}
    return {name: {"lr": lr} | decay}


def _sparse(items: list[Item], blocks: dict[str, Block]) -> bool:
    """Whether a kept layer (in a sequential or a block too) has a sparse table."""
    for item in items:
        if item.args.get("sparse") is True and item.when is not False:
            return True
        if item.body and _sparse(item.body, blocks):
            return True
        if item.op in blocks and _sparse(blocks[item.op].model, blocks):
            return True
    return False


def draw_train(draw, spec: GenSpec, outputs: dict[str, TensorType]) -> dict:
    """The train section: a loss per output, sometimes metrics and loss weights, an optimizer, ``BATCH``."""
    losses = {name: pick(draw, losses_for(kind)) for name, kind in outputs.items()}
    train = {"loss": losses if spec.outputs else next(iter(losses.values())),
             "optimizer": draw_optimizer(draw, _sparse(spec.model, spec.blocks)), "batch_size": BATCH}
    metrics = {name: draw(st.lists(st.sampled_from(found), unique=True, max_size=2))
               for name, kind in outputs.items() if (found := metrics_for(losses[name], kind))}
    if metrics and draw(st.booleans()):
        train["metrics"] = metrics if spec.outputs else next(iter(metrics.values()))
    if spec.outputs and draw(st.booleans()):
        train["loss_weights"] = {name: draw(st.sampled_from([0.5, 1.0, 2.0])) for name in outputs}
    return train
