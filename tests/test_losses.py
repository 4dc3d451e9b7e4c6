"""Sequence losses and metrics against torch's own functions, and their epoch means.

Each lowering is compared with the torch function a hand-written training loop
calls (``F.cross_entropy`` with ``ignore_index``, ``F.ctc_loss`` on time-first
log-probabilities): the loss and its gradient with respect to the logits, in float64
to 1e-10 and float32 to 1e-5. The epoch means are checked by hand: a token-level mean
is not a mean of batch means, and perplexity is exp of it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dsl
from backends.jax.training import JAX_LOSSES, JAX_METRICS
from backends.loop import evaluate
from backends.metrics import epoch_metrics
from backends.parity import check, make_batch
from backends.torch import build_module
from backends.torch.training import TORCH_LOSSES, TORCH_METRICS
from backends.weights import init_weights
from dsl.objectives import resolve_objective
from dsl.schema import ChoiceSpec
from dsl.training import LOSSES

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def choice(name: str, **params) -> ChoiceSpec:
    return ChoiceSpec(name, LOSSES[name].params(**params))


def torch_and_jax(loss: ChoiceSpec, logits: np.ndarray, y: np.ndarray, **columns):
    """(loss, gradient w.r.t. the logits) of each lowering's batch mean: torch's ``mean``, JAX's rows reduced as
    the JAX objective reduces them (summed over counted targets, or averaged over rows)."""
    x = torch.tensor(logits, requires_grad=True)
    value, _ = TORCH_LOSSES[loss.name](loss.params).mean(x, torch.from_numpy(y),
                                                         **{k: torch.from_numpy(v) for k, v in columns.items()})
    value.backward()

    def mean(out, y, columns):
        values, counts = JAX_LOSSES[loss.name](loss.params)(out, y, **columns)
        return values.mean() if counts is None else values.sum() / counts.sum().astype(values.dtype)

    j_value, j_grad = jax.jit(jax.value_and_grad(mean))(logits, y, columns)  # one compilation, not one per op
    return (value.item(), x.grad.numpy()), (float(j_value), np.asarray(j_grad))


def assert_close(got, want, dtype):
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# --- cross_entropy ----------------------------------------------------------------------------------------------

def padded_targets(rng, shape, classes, ignore_index):
    """Class ids with a tail of each row ignored (padding), and one row all ignored but the first position."""
    y = rng.integers(0, classes, shape)
    y[0, shape[1] // 2:] = ignore_index
    y[1, 1:] = ignore_index
    return y


@pytest.mark.parametrize("class_axis, smoothing, ignore_index, dtype", [
    (1, 0.0, -100, "float64"), (-1, 0.0, -100, "float32"), (-1, 0.1, 0, "float64"), (1, 0.2, 3, "float32")])
def test_cross_entropy_is_torchs_mean_over_the_targets_it_does_not_ignore(dtype, class_axis, smoothing,
                                                                          ignore_index):
    rng = np.random.default_rng(1)
    n, t, c = 4, 6, 5
    logits = rng.standard_normal((n, c, t) if class_axis == 1 else (n, t, c)).astype(dtype) * 3
    y = padded_targets(rng, (n, t), c, ignore_index)
    x = torch.tensor(logits, requires_grad=True)
    reference = F.cross_entropy(x if class_axis == 1 else x.permute(0, 2, 1), torch.from_numpy(y),
                                ignore_index=ignore_index, label_smoothing=smoothing)  # torch's layout [N, C, T]
    reference.backward()
    loss = choice("cross_entropy", class_axis=class_axis, label_smoothing=smoothing, ignore_index=ignore_index)
    for value, grad in torch_and_jax(loss, logits, y):
        assert_close(value, reference.item(), dtype)
        assert_close(grad, x.grad.numpy(), dtype)
    ignored = x.grad.numpy()[0, :, t // 2:] if class_axis == 1 else x.grad.numpy()[0, t // 2:]
    assert (ignored == 0).all()  # ignored targets give no gradient


def test_accuracy_and_perplexity_count_tokens_and_skip_ignored_ones():
    """Hand-counted: 3 counted tokens in row 0 (2 correct), 1 in row 1 (correct), the rest ignored."""
    logits = np.log(np.array([[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [1, 1, 1]],
                              [[0.5, 0.25, 0.25], [1, 1, 1], [1, 1, 1], [1, 1, 1]]]))  # [N=2, T=4, V=3]
    y = np.array([[0, 1, 1, -100], [0, -100, -100, -100]])
    loss = choice("cross_entropy", class_axis=-1)
    nll = -np.log([0.7, 0.8, 0.2, 0.5])
    mask = np.array([1.0, 0.0])  # evaluation's padding-row mask: row 1 left out
    torch_args, jax_args = (torch.from_numpy(logits), torch.from_numpy(y)), (jnp.asarray(logits), jnp.asarray(y))
    assert float(TORCH_METRICS["accuracy"](loss, *torch_args)) == 3
    assert float(TORCH_METRICS["accuracy"](loss, *torch_args, torch.from_numpy(mask))) == 2
    np.testing.assert_allclose(JAX_METRICS["accuracy"](loss, *jax_args), [2, 1])
    within = choice("cross_entropy", class_axis=-1, ignore_index=1)  # a class id: its correct predictions skipped
    assert float(TORCH_METRICS["accuracy"](within, *torch_args)) == 2
    np.testing.assert_allclose(JAX_METRICS["accuracy"](within, *jax_args), [1, 1])
    assert float(TORCH_METRICS["perplexity"](loss, *torch_args)) == pytest.approx(nll.sum(), abs=1e-12)
    np.testing.assert_allclose(JAX_METRICS["perplexity"](loss, *jax_args), [nll[:3].sum(), nll[3]], atol=1e-12)


SEQUENCE_SPEC = """
name: tagger
inputs:
  ids: {shape: [6], dtype: int64}
  attention_mask: {shape: [6], dtype: int64, mask: keep}
model:
  - embedding: {num_embeddings: 12, embedding_dim: 8, inputs: [ids], name: tokens}
  - embedding: {num_embeddings: 2, embedding_dim: 8, inputs: [attention_mask], name: padding}
  - add: {inputs: [tokens, padding]}
  - linear: {out_features: 5, name: head}
data: {dataset: npz, path: DATA}
train:
  loss: {cross_entropy: {class_axis: -1}}
  optimizer: adam
  metrics: [accuracy, perplexity]
"""


def test_epoch_metrics_are_token_level_means_and_perplexity_is_exp_of_the_mean_loss():
    """Two batches: 1 token with loss 4, then 3 tokens with loss 0 each: the epoch's loss is 1 per token, not
    the mean of the batch means (2)."""
    spec, graph = dsl.loads(SEQUENCE_SPEC.replace("DATA", "x.npz"))
    objective = resolve_objective(spec, graph)
    assert objective.metric_names == ("loss", "accuracy", "perplexity") and objective.counts == ("targets",)
    sums = {"loss": 4.0 + 0.0, "targets": 1 + 3, "accuracy": 0 + 3, "perplexity": 4.0 + 0.0}
    means = epoch_metrics(objective, sums, examples=2)
    assert means == {"loss": 1.0, "accuracy": 0.75, "perplexity": pytest.approx(math.e, abs=1e-12)}
    assert math.isnan(epoch_metrics(objective, {**sums, "targets": 0}, 2)["loss"])  # all ignored: torch's nan


@pytest.fixture(scope="module")
def padded_npz(tmp_path_factory):
    """A tagging dataset padded to 6 tokens: targets -100 and attention_mask 0 on the padding."""
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("tags")
    arrays = {}
    for split, count in (("train", 8), ("test", 12)):
        lengths = rng.integers(1, 7, count)
        real = np.arange(6)[None, :] < lengths[:, None]
        arrays[f"ids_{split}"] = np.where(real, rng.integers(1, 12, (count, 6)), 0)
        arrays[f"attention_mask_{split}"] = real.astype(np.int64)
        arrays[f"head_{split}"] = np.where(real, rng.integers(0, 5, (count, 6)), -100)
    np.savez(folder / "tags.npz", **arrays)
    return folder / "tags.npz", arrays


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_test_metrics_of_padded_sequences_are_token_level_on_both_targets(padded_npz, target):
    """``dslc eval`` on -100-padded targets: loss, accuracy and perplexity over the real tokens of the whole
    test split, recomputed here with F.cross_entropy from the model's logits."""
    path, arrays = padded_npz
    spec, graph = dsl.loads(SEQUENCE_SPEC.replace("DATA", str(path)))
    state = init_weights(graph, seed=0)
    result = evaluate(spec, graph, target, state, batch_size=5)  # 3 batches, the last one padded
    module = build_module(graph, state)
    with torch.no_grad():
        logits = module(torch.from_numpy(arrays["ids_test"]), torch.from_numpy(arrays["attention_mask_test"]))
    y = torch.from_numpy(arrays["head_test"])
    loss = F.cross_entropy(logits.reshape(-1, 5), y.reshape(-1)).item()
    kept = y != -100
    accuracy = ((logits.argmax(-1) == y) & kept).sum().item() / kept.sum().item()
    assert result["test_loss"] == pytest.approx(loss, rel=1e-5)
    assert result["test_perplexity"] == pytest.approx(math.exp(loss), rel=1e-5)
    assert result["test_accuracy"] == pytest.approx(accuracy, abs=1e-9)


# --- ctc --------------------------------------------------------------------------------------------------------

def ctc_case(dtype: str, blank: int = 0):
    """Logits [4, 8, 5] and targets padded with the blank: lengths 4 (all one label: 7 frames needed, 5 given:
    impossible), 2, 3 and 0, over 5, 8, 6 and 3 frames."""
    rng = np.random.default_rng(0)
    labels = np.array([c for c in range(5) if c != blank])
    targets = np.full((4, 4), blank)
    for row, length in enumerate((4, 2, 3, 0)):
        targets[row, :length] = rng.choice(labels, length)
    targets[0] = labels[0]
    return rng.standard_normal((4, 8, 5)).astype(dtype) * 2, targets, np.array([5, 8, 6, 3])


def torch_ctc(logits, targets, frames, blank, zero_infinity, reduction="mean"):
    """The reference: what a torch user writes, time-first log-probabilities and explicit lengths."""
    x = torch.tensor(logits, requires_grad=True)
    loss = F.ctc_loss(F.log_softmax(x, -1).permute(1, 0, 2), torch.from_numpy(targets), torch.from_numpy(frames),
                      torch.from_numpy((targets != blank).sum(1)), blank=blank, reduction=reduction,
                      zero_infinity=zero_infinity)
    if reduction == "mean":
        loss.backward()
    return x, loss


@pytest.mark.parametrize("dtype, zero_infinity, blank", [("float32", False, 0), ("float64", False, 0),
                                                        ("float64", True, 2)])
def test_ctc_is_torchs_ctc_loss_with_its_infinities(dtype, zero_infinity, blank):
    logits, targets, frames = ctc_case(dtype, blank)
    x, reference = torch_ctc(logits, targets, frames, blank, zero_infinity)
    loss = choice("ctc", blank=blank, zero_infinity=zero_infinity, input_lengths="frames")
    for value, grad in torch_and_jax(loss, logits, targets, input_lengths=frames):
        assert_close(value, reference.item(), dtype)  # inf, or the mean with row 0 at 0
        assert_close(grad, x.grad.numpy(), dtype)  # NaN on row 0's 5 frames without zero_infinity, as torch
    assert np.isnan(x.grad.numpy()[0, :5]).all() != zero_infinity and not np.isnan(x.grad.numpy()[1:]).any()
    per_row = torch_ctc(logits, targets, frames, blank, zero_infinity, "none")[1].detach().numpy()
    rows, counts = jax.jit(JAX_LOSSES["ctc"](loss.params))(logits, targets, input_lengths=frames)
    assert counts is None  # a mean over examples of each loss over its target length
    assert_close(np.asarray(rows), per_row / np.maximum((targets != blank).sum(1), 1), dtype)


def test_ctc_without_input_lengths_reads_every_frame():
    logits, targets, _ = ctc_case("float64")
    x, reference = torch_ctc(logits, targets, np.full(4, 8), 0, False)
    for value, grad in torch_and_jax(choice("ctc"), logits, targets):
        assert_close(value, reference.item(), "float64")
        assert_close(grad, x.grad.numpy(), "float64")


CTC_SPEC = """
name: ctc_tiny
input: {shape: [9, 4]}
model:
  - linear: {out_features: 6}
data: {dataset: synthetic, train_size: 64, test_size: 16}
train:
  loss: {ctc: {blank: 5, input_lengths: frames}}
  optimizer: sgd
  batch_size: 8
"""


def test_ctc_reads_its_frame_counts_from_the_batch():
    """The objective asks the data for the ``frames`` column; dslc check and the synthetic dataset draw targets
    padded with the blank (5) and frame counts that can hold them."""
    from backends.data import load_dataset

    spec, graph = dsl.loads(CTC_SPEC)
    objective = resolve_objective(spec, graph)
    assert objective.extras == (("frames", dsl.TensorType((), "int64")),)
    assert objective.terms[0].columns == (("input_lengths", "frames"),)
    drawn = make_batch(graph, objective, 32, "float64", np.random.default_rng(0))
    made = load_dataset(spec, graph).train
    for batch in (drawn, made.columns):
        lengths = (batch["linear_1"] != 5).sum(1)
        assert batch["linear_1"].shape[1:] == (3,) and lengths.min() >= 1 and len(set(lengths)) == 3
        assert (batch["linear_1"][:, 0] != 5).all()  # labels first, then the blank
        assert (batch["frames"] >= 2 * lengths).all() and (batch["frames"] <= 9).all()


@pytest.mark.slow
def test_dslc_check_passes_for_ctc_with_frame_counts():
    spec, graph = dsl.loads(CTC_SPEC)
    for dtype in ("float32", "float64"):
        report = check(spec, graph, dtype=dtype, steps=2)
        assert report.ok, report.failures


# --- padding-mask inputs ----------------------------------------------------------------------------------------

def test_mask_inputs_are_drawn_as_masks_and_reach_both_targets():
    """``dslc check`` draws attention_mask as ones then zeros (at least one real token a row) and feeds it, as
    int64, to an embedding on both targets; predict takes the .npz of both named inputs."""
    from backends.parity import make_inputs
    from backends.predict import predict

    spec, graph = dsl.loads(SEQUENCE_SPEC.replace("DATA", "x.npz"))
    ids, mask = make_inputs(graph, 64, "float64", np.random.default_rng(0))
    assert mask.dtype == np.int64 and set(np.unique(mask)) == {0, 1}
    assert (mask[:, 0] == 1).all() and (np.diff(mask, axis=1) <= 0).all()  # real tokens first, then padding
    assert len(set(mask.sum(1))) > 3
    state = init_weights(graph, seed=0)
    outs = {t: predict(spec, graph, t, state, {"ids": ids, "attention_mask": mask}) for t in ("torch", "jax")}
    np.testing.assert_allclose(outs["jax"], outs["torch"], rtol=1e-5, atol=1e-6)
    flipped = predict(spec, graph, "torch", state, {"ids": ids, "attention_mask": 1 - mask})
    assert np.abs(flipped - outs["torch"]).min() > 0  # every position reads its mask value


def test_bool_masks_that_mark_padding_are_drawn_true_at_the_end_and_stay_bool_on_both_targets():
    from backends.parity import make_inputs
    from backends.target import make_target

    spec, graph = dsl.loads("""
name: padded
inputs:
  ids: {shape: [6], dtype: int64}
  padding_mask: {shape: [6], dtype: bool, mask: ignore}
model: [embedding: {num_embeddings: 12, embedding_dim: 4, inputs: [ids]}]
""")
    _, padding = make_inputs(graph, 64, "float32", np.random.default_rng(0))
    assert padding.dtype == bool and not padding[:, 0].any() and (np.diff(padding.astype(int), axis=1) >= 0).all()
    assert padding[:, -1].any() and not padding.all(axis=1).any()  # some rows padded, none all padding
    assert make_target("torch", graph, None).put({"m": padding})["m"].dtype == torch.bool
    assert make_target("jax", graph, None).put({"m": padding})["m"].dtype == jnp.bool_
