"""Greedy decoding and the sequence metrics, on hand-made scores where the right answer is known."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest

import cli
import dsl
from backends.data import load_dataset, speech
from backends.decode import ctc_best_path, greedy, references, until_eos
from backends.sequence_metrics import SEQUENCE_METRICS, bleu, cer, sequence_accuracy, wer
from backends.weights import save_weights
from dsl.decoding import DECODE_METRICS, CtcDecodeSpec, DecodeSpec, GreedySpec
from tests.conftest import REPO


def one_hot_scores(ids: np.ndarray, vocabulary: int) -> np.ndarray:
    return np.eye(vocabulary)[ids]


def test_greedy_feeds_each_step_its_own_argmax_and_stops_at_eos():
    """A 'model' that predicts token+1 at each position: from bos 1 it writes 2 (eos) for row 0 and counts for row 1."""
    spec = GreedySpec(tokens="tgt", mask="tgt_mask", bos=1, eos=2, pad=0)
    seen = []

    def run(columns):
        seen.append((columns["tgt"].copy(), columns["tgt_mask"].copy()))
        shift = columns["offset"][:, None]
        return {"logits": one_hot_scores(np.clip(columns["tgt"] + shift, 0, 9), 10)}

    out = greedy(run, {"offset": np.array([1, 3])}, spec, "logits", length=5)
    assert out.tolist() == [[2, 0, 0, 0], [4, 7, 9, 9]]
    assert until_eos(out, 2) == [[], [4, 7, 9, 9]]
    tokens, mask = seen[1]
    assert tokens.tolist() == [[1, 2, 0, 0, 0], [1, 4, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 0, 0, 0]] * 2  # step 1 sees positions 0 and 1


def test_greedy_stops_early_when_every_row_is_done():
    calls = []

    def run(columns):
        calls.append(1)
        return {"y": one_hot_scores(np.full_like(columns["t"], 2), 4)}

    out = greedy(run, {"t0": np.zeros(3)}, GreedySpec(tokens="t", bos=1, eos=2), "y", length=8)
    assert len(calls) == 1 and out[:, 0].tolist() == [2, 2, 2] and (out[:, 1:] == 0).all()


def test_ctc_best_path_merges_repeats_and_drops_blanks_within_each_length():
    frames = np.array([[0, 3, 3, 0, 3, 5, 5, 0], [4, 4, 4, 0, 0, 4, 1, 1]])
    paths = ctc_best_path(one_hot_scores(frames, 6), CtcDecodeSpec(blank=0), lengths=np.array([8, 6]))
    assert paths == [[3, 3, 5], [4, 4]]


def test_references_drop_padding_and_eos():
    assert references(np.array([[5, 6, 2, -100], [7, 2, -100, -100]]), (2, -100)) == [[5, 6], [7]]


def test_metrics_agree_with_hand_counts():
    refs, hyps = [[1, 2, 3, 4], [5, 6]], [[1, 2, 4], [5, 6]]
    assert cer(hyps, refs) == pytest.approx(1 / 6)  # one deletion over six reference tokens
    assert wer(hyps, refs) == pytest.approx(1 / 6)
    assert sequence_accuracy(hyps, refs) == 0.5
    assert bleu(refs, refs) == pytest.approx(100.0)
    long_refs = [list(range(1, 11)), list(range(20, 30))]
    one_wrong = [r[:-1] + [99] for r in long_refs]
    two_wrong = [[99] + r[1:-1] + [99] for r in long_refs]
    assert 0 < bleu(two_wrong, long_refs) < bleu(one_wrong, long_refs) < 100


def test_every_decode_metric_has_one_implementation():
    assert set(SEQUENCE_METRICS) == set(DECODE_METRICS)


def test_decode_spec_takes_exactly_one_decoder_and_metrics_need_a_reference():
    with pytest.raises(ValueError, match="exactly one decoder"):
        DecodeSpec()
    with pytest.raises(ValueError, match="reference"):
        DecodeSpec(ctc=CtcDecodeSpec(), metrics=["cer"])
    assert DecodeSpec(ctc=CtcDecodeSpec(), reference="transcript", metrics=["cer"]).mode == "ctc"


# --- the decode verb and eval's decode metrics, on tiny models whose weights are set by hand ---

GREEDY = """\
name: tiny_greedy
inputs:
  source: {shape: [6], dtype: int64}
  source_mask: {shape: [6], dtype: int64, mask: keep}
  target_in: {shape: [6], dtype: int64}
  target_mask: {shape: [6], dtype: int64, mask: keep}
model:
  - embedding: {num_embeddings: 6, embedding_dim: 12, padding_idx: 0, inputs: [source], name: source_embedding}
  - embedding: {num_embeddings: 6, embedding_dim: 12, inputs: [target_in], name: target_embedding}
  - add: {inputs: [source_embedding, target_embedding]}
  - linear: {out_features: 6, bias: false, name: logits}
data: {dataset: reverse, columns: {target_out: logits}, train_size: 8, test_size: 24}
train: {loss: {cross_entropy: {class_axis: -1}}, metrics: [accuracy], optimizer: adam}
decode:
  greedy: {tokens: target_in, mask: target_mask, bos: 1, eos: 2}
  reference: target_out
  metrics: [sequence_accuracy, bleu]
"""


def copy_weights() -> dict[str, np.ndarray]:
    """A model that copies instead of reversing, so it is right on palindromes only. Position t's scores are
    W [onehot(target_in[t]), onehot(source[t])]: 10 for the source's id there, and 1 for eos after a real token,
    so it writes the source and stops at its first padding."""
    w = np.zeros((6, 12), np.float32)
    w[[3, 4, 5], [9, 10, 11]] = 10
    w[2, [3, 4, 5]] = 1
    eye = np.eye(6, 12, dtype=np.float32)
    return {"source_embedding.weight": np.roll(eye, 6, axis=1) * (np.arange(6) > 0)[:, None],
            "target_embedding.weight": eye, "logits.weight": w}


def numpy_greedy_run(weights: dict[str, np.ndarray]):
    """The same model in numpy: the decode loop's reference forward."""
    def run(columns):
        x = weights["target_embedding.weight"][columns["target_in"]] + weights["source_embedding.weight"][
            columns["source"]]
        return {"logits": x @ weights["logits.weight"].T}
    return run


CTC = """\
name: tiny_ctc
input: {shape: [40, 8]}
model: [{linear: {out_features: 6, name: scores}}]
data: {dataset: synthetic_speech, columns: {frames: input, transcript: scores}, train_size: 8, test_size: 32}
train: {loss: {ctc: {blank: 0, input_lengths: frame_lengths}}, optimizer: adam}
decode:
  ctc: {blank: 0, lengths: frame_lengths}
  reference: transcript
  metrics: [cer, wer]
"""


def ctc_weights() -> dict[str, np.ndarray]:
    """A nearest-pattern classifier of synthetic_speech's frames: argmax of p·x − |p|²/2 is the nearest p."""
    patterns = np.random.default_rng(speech.PATTERN_SEED).standard_normal((6, 8)).astype(np.float32)
    patterns[0] = 0
    return {"scores.weight": patterns, "scores.bias": -(patterns ** 2).sum(1) / 2}


def write_spec(tmp_path: Path, text: str, weights: dict[str, np.ndarray]) -> tuple[Path, Path]:
    (tmp_path / "spec.yaml").write_text(text)
    save_weights(tmp_path / "w.safetensors", weights)
    return tmp_path / "spec.yaml", tmp_path / "w.safetensors"


def run_cli(args: list) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue()


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_decode_verb_writes_each_rows_greedy_sequence(tmp_path, target):
    """Each source copied up to its first padding; row 2 fills all 5 steps without an eos."""
    spec, weights = write_spec(tmp_path, GREEDY, copy_weights())
    source = np.array([[3, 4, 5, 0, 0, 0], [4, 0, 0, 0, 0, 0], [5, 5, 3, 4, 4, 0]])
    np.savez(tmp_path / "x.npz", source=source, source_mask=source > 0)
    base = ["decode", spec, "--target", target, "--weights", weights, "--input", tmp_path / "x.npz"]
    assert run_cli(base + ["--output", tmp_path / "y.npz"]) == (0, f"wrote {tmp_path / 'y.npz'}: 3 sequences of "
                                                                   f"at most 5 tokens\n")
    with np.load(tmp_path / "y.npz") as y:
        assert y["tokens"].tolist() == [[3, 4, 5, 0, 0], [4, 0, 0, 0, 0], [5, 5, 3, 4, 4]]
        assert y["lengths"].tolist() == [3, 1, 5]
    assert run_cli(base) == (0, "3 4 5\n4\n5 5 3 4 4\n")


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_eval_reports_the_decode_metrics_of_the_test_split(tmp_path, target):
    """The numbers are sacrebleu's and exact match's over the same loop run with a numpy forward."""
    spec_path, weights = write_spec(tmp_path, GREEDY, copy_weights())
    code, out = run_cli(["eval", spec_path, "--target", target, "--weights", weights])
    result = json.loads(out)
    spec, graph = dsl.load(spec_path)
    columns = load_dataset(spec, graph).test.columns
    given = {k: columns[k] for k in ("source", "source_mask")}
    hypotheses = until_eos(greedy(numpy_greedy_run(copy_weights()), given, spec.decode.greedy, "logits", 6), 2)
    truth = references(columns["logits"], (0, 2, -100))
    assert 0 < sum(map(len, hypotheses)) and 0 < sequence_accuracy(hypotheses, truth) < 1  # a test with teeth
    assert result["test_sequence_accuracy"] == sequence_accuracy(hypotheses, truth)
    assert result["test_bleu"] == pytest.approx(bleu(hypotheses, truth), abs=1e-9)
    assert code == 0 and result["examples"] == 24 and "test_accuracy" in result


def test_ctc_decode_and_eval_read_the_frame_lengths(tmp_path):
    """Nearest-pattern frames, collapsed: CER and WER as jiwer gives them over the test split."""
    spec_path, weights = write_spec(tmp_path, CTC, ctc_weights())
    spec, graph = dsl.load(spec_path)
    columns = load_dataset(spec, graph).test.columns
    w = ctc_weights()
    scores = columns["input"] @ w["scores.weight"].T + w["scores.bias"]
    hypotheses = ctc_best_path(scores, CtcDecodeSpec(), columns["frame_lengths"])
    truth = references(columns["scores"], (0,))
    assert 0 < cer(hypotheses, truth) < 0.2
    result = json.loads(run_cli(["eval", spec_path, "--target", "torch", "--weights", weights])[1])
    assert result["test_cer"] == pytest.approx(cer(hypotheses, truth), abs=1e-12)
    assert result["test_wer"] == pytest.approx(wer(hypotheses, truth), abs=1e-12)
    np.savez(tmp_path / "x.npz", input=columns["input"][:5], frame_lengths=columns["frame_lengths"][:5])
    code, _ = run_cli(["decode", spec_path, "--weights", weights, "--input", tmp_path / "x.npz", "--output",
                       tmp_path / "y.npy"])
    assert code == 0 and np.load(tmp_path / "y.npy").tolist() == [
        h + [0] * (max(map(len, hypotheses[:5])) - len(h)) for h in hypotheses[:5]]


# --- acceptance: specs/transformer_translate learns to reverse, and decodes alike on both targets ---

TRANSLATE = REPO / "specs" / "transformer_translate.yaml"


@pytest.fixture(scope="module")
def translate_runs(tmp_path_factory) -> dict[str, tuple[dict, float]]:
    """Each target trained once (the spec's 4 epochs of 8,192 pairs): its summary and wall seconds.

    torch trains with one thread, as ``dslc train --threads 1``: with its default two on this shared 2-core CPU
    the same run took 440 s instead of 57 s (32 samples/s)."""
    import torch

    from backends.loop import TrainOptions, train

    spec, graph = dsl.load(TRANSLATE)
    runs, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for target in ("torch", "jax"):
            out, start = tmp_path_factory.mktemp(target), time.perf_counter()
            runs[target] = train(spec, graph, TrainOptions(target=target, out_dir=out, progress=False)), \
                time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("target", ["torch", "jax"])
def test_transformer_translate_reaches_the_token_accuracy_bar(translate_runs, target):
    """Measured on a 2-core CPU shared with other work: torch 0.9973 in 57 s and JAX 0.9949 in 67 s (``dslc
    train --threads 1``, load average 7-8); here torch 0.9973 in 23 s, JAX 0.9882 in 32 s (load average 4)."""
    summary, seconds = translate_runs[target]
    assert summary["test_accuracy"] >= 0.95 and seconds < 300


@pytest.mark.slow
def test_transformer_translate_decodes_the_same_sequences_on_both_targets(translate_runs):
    """Greedy decoding of the test split from torch's trained weights, run on each target. Measured: the same
    512 sequences on both, 0.982 of them exact, BLEU 98.93."""
    from backends.decoding_run import decode_test_split, score
    from backends.weights import load_weights

    spec, graph = dsl.load(TRANSLATE)
    state = load_weights(Path(translate_runs["torch"][0]["out"]) / "weights.safetensors", graph)
    decoded = {t: decode_test_split(spec, graph, t, state, data_dir="data") for t in ("torch", "jax")}
    assert decoded["torch"][0] == decoded["jax"][0]  # every token of every sequence
    scores = score(spec, *decoded["torch"])
    assert scores["test_sequence_accuracy"] >= 0.9 and scores["test_bleu"] >= 90
