"""Greedy decoding and the sequence metrics, on hand-made scores where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from backends.decode import ctc_best_path, greedy, references, until_eos
from backends.sequence_metrics import SEQUENCE_METRICS, bleu, cer, sequence_accuracy, wer
from dsl.decoding import DECODE_METRICS, CtcDecodeSpec, DecodeSpec, GreedySpec


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
